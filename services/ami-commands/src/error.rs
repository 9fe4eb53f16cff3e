//! The errors of the command engine and its stores.

use ami_bus::BusError;

/// What went wrong in a store.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The database refused or failed a statement.
    #[error("database: {0}")]
    Database(String),
    /// Migrations could not run.
    #[error("migration: {0}")]
    Migrate(String),
    /// A row could not be read back into its type.
    #[error("corrupt row: {0}")]
    Corrupt(String),
    /// Something that should exist does not.
    #[error("not found: {0}")]
    NotFound(String),
    /// Something that should be new exists.
    #[error("conflict: {0}")]
    Conflict(String),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        StoreError::Database(e.to_string())
    }
}

/// What the engine refuses or fails on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EngineError {
    /// The principal lacks the role the action needs.
    #[error("{principal} may not {action}: needs role {needs}")]
    Forbidden {
        /// Who asked.
        principal: String,
        /// What they asked.
        action: &'static str,
        /// The role it needs.
        needs: &'static str,
    },
    /// A disconnect of several meters needs a second approval: ask with
    /// `request_bulk_disconnect`.
    #[error("a disconnect of {0} meters needs a supervisor's second approval")]
    ApprovalRequired(usize),
    /// The approver is the requester.
    #[error("bulk request {0}: the second approval must come from someone other than {1}")]
    SameApprover(String, String),
    /// No such command, bulk request or campaign.
    #[error("not found: {0}")]
    NotFound(String),
    /// The object is not in a state that allows the action.
    #[error("invalid state: {0}")]
    InvalidState(String),
    /// The request itself is wrong.
    #[error("invalid request: {0}")]
    Invalid(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The bus failed.
    #[error(transparent)]
    Bus(#[from] BusError),
}
