//! The errors of the store: input it refuses (before touching the database), and database,
//! migration and stored-data failures.

/// Why the store refused an input; nothing was written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidInput {
    /// A reading (at `index` in its batch) or a call names no meter.
    #[error("empty meter id (batch index {index})")]
    EmptyMeter {
        /// Position in the batch (0 for single calls).
        index: usize,
    },
    /// A meter id longer than [`crate::MAX_METER_LEN`] bytes or with control characters.
    #[error(
        "bad meter id {meter:?} (batch index {index}): at most 64 bytes, no control characters"
    )]
    BadMeter {
        /// The meter id as given.
        meter: String,
        /// Position in the batch.
        index: usize,
    },
    /// A value's decimal exponent outside [`crate::EXPONENT_RANGE`].
    #[error("exponent {exponent} out of range -18..=18 for meter {meter:?} (batch index {index})")]
    ExponentOutOfRange {
        /// The meter of the reading.
        meter: String,
        /// The exponent given.
        exponent: i8,
        /// Position in the batch.
        index: usize,
    },
    /// A timestamp outside [`crate::TS_RANGE_MS`] (years 1970 to 2199).
    #[error(
        "timestamp {ts_ms} ms out of range (years 1970-2199) for meter {meter:?} (batch index {index})"
    )]
    TimestampOutOfRange {
        /// The meter of the reading.
        meter: String,
        /// The timestamp given, Unix milliseconds.
        ts_ms: i64,
        /// Position in the batch.
        index: usize,
    },
    /// A query span whose end is not after its start.
    #[error("empty span: {after_ms} is not before {until_ms}")]
    EmptySpan {
        /// Exclusive start, Unix milliseconds.
        after_ms: i64,
        /// Inclusive end, Unix milliseconds.
        until_ms: i64,
    },
    /// A required text field is empty.
    #[error("{0} must not be empty")]
    EmptyField(&'static str),
    /// A new version names nobody as its author.
    #[error("a new version needs an actor (who made it)")]
    EmptyActor,
    /// New versions come from VEE or people; received values only come through ingest.
    #[error("a new version must be estimated or edited, not received")]
    ReceivedVersion,
}

/// A failure of a store operation.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The input was refused; see [`InvalidInput`].
    #[error("invalid input: {0}")]
    Invalid(#[from] InvalidInput),
    /// The database failed or refused a statement.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// Applying the schema migrations failed.
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A stored row holds a value this version of ami cannot read (unknown unit or source).
    #[error("stored row unreadable: {0}")]
    Corrupt(String),
    /// The record asked for does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// The record is not in a state that allows the change (an edit already reviewed).
    #[error("conflict: {0}")]
    Conflict(String),
    /// The store URL names no backend we have.
    #[error("unsupported store url {0:?}: expected postgres://, sqlite: or sqlite::memory:")]
    UnsupportedUrl(String),
}

/// Results of store operations.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;
