//! What can go wrong in the MDMS, and the one place where it becomes a gRPC status.

use ami_mdms_store::StoreError;
use ami_plugin_host::CallError;

/// An MDMS error.
#[derive(Debug, thiserror::Error)]
pub enum MdmsError {
    /// The request is malformed (bad OBIS code, empty range, unknown enum).
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// The caller is not known.
    #[error("unauthenticated: {0}")]
    Unauthenticated(String),
    /// The caller may not do this.
    #[error("permission denied: {0}")]
    PermissionDenied(String),
    /// The meter, exception, edit or plugin does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// The data is not in a state that allows it: unvalidated or missing intervals for a bill,
    /// an edit already reviewed, a self-approval.
    #[error("failed precondition: {0}")]
    FailedPrecondition(String),
    /// A rule or tariff component refused its parameters or input.
    #[error("plugin {plugin} refused: {reason}")]
    PluginRefused {
        /// `name@version`.
        plugin: String,
        /// Its typed error.
        reason: String,
    },
    /// A rule or tariff component failed in the sandbox (time, memory, trap).
    #[error("plugin call failed: {0}")]
    PluginCall(#[from] CallError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The bus failed.
    #[error("bus: {0}")]
    Bus(#[from] ami_bus::BusError),
    /// Configuration is unusable.
    #[error("config: {0}")]
    Config(String),
    /// Serving failed.
    #[error("server: {0}")]
    Server(String),
}

impl From<MdmsError> for tonic::Status {
    fn from(e: MdmsError) -> Self {
        use tonic::Code;
        let code = match &e {
            MdmsError::InvalidRequest(_) => Code::InvalidArgument,
            MdmsError::Unauthenticated(_) => Code::Unauthenticated,
            MdmsError::PermissionDenied(_) => Code::PermissionDenied,
            MdmsError::NotFound(_) => Code::NotFound,
            MdmsError::FailedPrecondition(_) => Code::FailedPrecondition,
            MdmsError::PluginRefused { .. } => Code::InvalidArgument,
            MdmsError::PluginCall(_) => Code::Internal,
            MdmsError::Store(StoreError::Invalid(_)) => Code::InvalidArgument,
            MdmsError::Store(StoreError::NotFound(_)) => Code::NotFound,
            MdmsError::Store(StoreError::Conflict(_)) => Code::FailedPrecondition,
            MdmsError::Store(_) | MdmsError::Bus(_) => Code::Unavailable,
            MdmsError::Config(_) | MdmsError::Server(_) => Code::Internal,
        };
        tonic::Status::new(code, e.to_string())
    }
}

/// A result with [`MdmsError`].
pub type Result<T, E = MdmsError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;
    use tonic::Code;

    #[test]
    fn errors_map_to_the_codes_clients_expect() {
        let cases = [
            (MdmsError::InvalidRequest("x".into()), Code::InvalidArgument),
            (
                MdmsError::Unauthenticated("x".into()),
                Code::Unauthenticated,
            ),
            (
                MdmsError::PermissionDenied("x".into()),
                Code::PermissionDenied,
            ),
            (MdmsError::NotFound("x".into()), Code::NotFound),
            (
                MdmsError::FailedPrecondition("x".into()),
                Code::FailedPrecondition,
            ),
            (
                MdmsError::Store(StoreError::Conflict("x".into())),
                Code::FailedPrecondition,
            ),
            (
                MdmsError::Store(StoreError::NotFound("x".into())),
                Code::NotFound,
            ),
            (
                MdmsError::Store(StoreError::UnsupportedUrl("x".into())),
                Code::Unavailable,
            ),
        ];
        for (e, code) in cases {
            let text = e.to_string();
            let status = tonic::Status::from(e);
            assert_eq!(status.code(), code, "{text}");
            assert_eq!(status.message(), text);
        }
    }
}
