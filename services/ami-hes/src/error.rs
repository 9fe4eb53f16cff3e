//! The one error type of the HES, and its mapping to gRPC status codes ([`HesError::code`]),
//! made in this one place for every service.

use crate::model::MeterStatus;

/// A failure of a HES operation.
#[derive(Debug, thiserror::Error)]
pub enum HesError {
    /// The caller's input is wrong (a bad field, a bad CSV header, a key of the wrong length).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// What the call names does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// What the call would create exists already.
    #[error("already exists: {0}")]
    AlreadyExists(String),
    /// A meter status change the lifecycle does not allow.
    #[error("meter {serial}: status {from} cannot become {to}")]
    InvalidTransition {
        /// The meter.
        serial: String,
        /// Its status.
        from: MeterStatus,
        /// The status asked for.
        to: MeterStatus,
    },
    /// No credentials, or credentials nobody issued.
    #[error("unauthenticated: {0}")]
    Unauthenticated(String),
    /// The caller is known but lacks the role the call needs.
    #[error("permission denied: {principal} needs role {needed}")]
    PermissionDenied {
        /// Who called.
        principal: String,
        /// The role the call needs.
        needed: &'static str,
    },
    /// A key record does not open under the configured master key (wrong master key, or a
    /// tampered record).
    #[error(
        "key record {record} does not open: wrapped under master key {stored_id}, configured master key is {configured_id} (wrong master key or tampered record)"
    )]
    KeyUnwrap {
        /// Which record (meter, role, version).
        record: String,
        /// The master key id stored with the record.
        stored_id: String,
        /// The id of the master key in use.
        configured_id: String,
    },
    /// Configuration is missing or wrong (master key, tokens, database URL, listen address).
    #[error("configuration: {0}")]
    Config(String),
    /// The database failed or refused a statement.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// Applying the schema migrations failed.
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A stored row holds a value this version cannot read.
    #[error("stored row unreadable: {0}")]
    Corrupt(String),
    /// The message bus failed.
    #[error("bus: {0}")]
    Bus(#[from] ami_bus::BusError),
    /// The gRPC transport failed (bind, serve).
    #[error("transport: {0}")]
    Transport(String),
    /// A command cannot be made for this meter or at this time (no route in the registry, a
    /// retired meter, commands off because the HES runs without a bus).
    #[error("command refused: {0}")]
    CommandRefused(String),
    /// The command engine refused or failed.
    #[error("{0}")]
    Command(#[from] ami_commands::EngineError),
}

/// Results of HES operations.
pub type Result<T, E = HesError> = std::result::Result<T, E>;

impl HesError {
    /// The gRPC status code of this error: the single mapping of the HES.
    pub fn code(&self) -> tonic::Code {
        use tonic::Code;
        match self {
            HesError::InvalidArgument(_) => Code::InvalidArgument,
            HesError::NotFound(_) => Code::NotFound,
            HesError::AlreadyExists(_) => Code::AlreadyExists,
            HesError::InvalidTransition { .. } => Code::FailedPrecondition,
            HesError::Unauthenticated(_) => Code::Unauthenticated,
            HesError::PermissionDenied { .. } => Code::PermissionDenied,
            HesError::KeyUnwrap { .. } => Code::FailedPrecondition,
            HesError::Config(_) => Code::FailedPrecondition,
            HesError::Database(_)
            | HesError::Migrate(_)
            | HesError::Corrupt(_)
            | HesError::Transport(_) => Code::Internal,
            HesError::Bus(_) => Code::Unavailable,
            HesError::CommandRefused(_) => Code::FailedPrecondition,
            HesError::Command(e) => {
                use ami_commands::EngineError as E;
                match e {
                    // The engine's role check, and the four-eyes rule: the requester of a bulk
                    // disconnect may not approve it.
                    E::Forbidden { .. } | E::SameApprover(..) => Code::PermissionDenied,
                    // A disconnect of several meters without a second approval.
                    E::ApprovalRequired(_) | E::InvalidState(_) => Code::FailedPrecondition,
                    E::NotFound(_) => Code::NotFound,
                    E::Invalid(_) => Code::InvalidArgument,
                    E::Store(_) => Code::Internal,
                    E::Bus(_) => Code::Unavailable,
                }
            }
        }
    }
}

impl From<HesError> for tonic::Status {
    /// The caller's errors carry their message; internal failures are logged here and answered
    /// with a generic message, so no database detail leaks to a client.
    fn from(e: HesError) -> Self {
        let code = e.code();
        match code {
            tonic::Code::Internal | tonic::Code::Unavailable => {
                tracing::error!(error = %e, "hes call failed");
                tonic::Status::new(code, "internal error")
            }
            _ => tonic::Status::new(code, e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ami_commands::EngineError;
    use tonic::Code;

    #[test]
    fn every_error_maps_to_its_code() {
        let cases: Vec<(HesError, Code)> = vec![
            (HesError::InvalidArgument("x".into()), Code::InvalidArgument),
            (HesError::NotFound("m".into()), Code::NotFound),
            (HesError::AlreadyExists("m".into()), Code::AlreadyExists),
            (
                HesError::InvalidTransition {
                    serial: "m".into(),
                    from: MeterStatus::Retired,
                    to: MeterStatus::Commissioned,
                },
                Code::FailedPrecondition,
            ),
            (
                HesError::Unauthenticated("no".into()),
                Code::Unauthenticated,
            ),
            (
                HesError::PermissionDenied {
                    principal: "p".into(),
                    needed: "admin",
                },
                Code::PermissionDenied,
            ),
            (
                HesError::KeyUnwrap {
                    record: "r".into(),
                    stored_id: "a".into(),
                    configured_id: "b".into(),
                },
                Code::FailedPrecondition,
            ),
            (HesError::Config("c".into()), Code::FailedPrecondition),
            (HesError::Database(sqlx::Error::RowNotFound), Code::Internal),
            (HesError::Corrupt("c".into()), Code::Internal),
            (HesError::Transport("t".into()), Code::Internal),
            (
                HesError::Bus(ami_bus::BusError::Connect("n".into())),
                Code::Unavailable,
            ),
            (
                HesError::CommandRefused("r".into()),
                Code::FailedPrecondition,
            ),
            (
                EngineError::Forbidden {
                    principal: "p".into(),
                    action: "a",
                    needs: "operator",
                }
                .into(),
                Code::PermissionDenied,
            ),
            (
                EngineError::SameApprover("b".into(), "p".into()).into(),
                Code::PermissionDenied,
            ),
            (
                EngineError::ApprovalRequired(3).into(),
                Code::FailedPrecondition,
            ),
            (
                EngineError::InvalidState("s".into()).into(),
                Code::FailedPrecondition,
            ),
            (EngineError::NotFound("c".into()).into(), Code::NotFound),
            (
                EngineError::Invalid("i".into()).into(),
                Code::InvalidArgument,
            ),
            (
                EngineError::Store(ami_commands::StoreError::Database("d".into())).into(),
                Code::Internal,
            ),
            (
                EngineError::Bus(ami_bus::BusError::Connect("n".into())).into(),
                Code::Unavailable,
            ),
        ];
        for (e, code) in cases {
            let text = e.to_string();
            let status = tonic::Status::from(e);
            assert_eq!(status.code(), code, "{text}");
            if code == Code::Internal || code == Code::Unavailable {
                assert_eq!(status.message(), "internal error");
            } else {
                assert_eq!(status.message(), text);
            }
        }
    }
}
