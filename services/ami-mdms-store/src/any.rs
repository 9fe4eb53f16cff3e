//! One type over both backends, chosen at run time from a URL, for binaries whose store is
//! configuration (`ami mdms --store postgres://... | sqlite:path | sqlite::memory:`).

use ami_domain::Obis;

use crate::error::{Result, StoreError};
use crate::model::{IngestReport, IntervalReading, NewVersion, Span, StoredReading, View};
use crate::{MeterDataStore, PgStore, SqliteStore};

/// A [`PgStore`] or a [`SqliteStore`].
pub enum AnyStore {
    /// PostgreSQL.
    Postgres(PgStore),
    /// Embedded SQLite.
    Sqlite(SqliteStore),
}

impl AnyStore {
    /// Opens the store a URL names: `postgres://` or `postgresql://` (a pool of
    /// `max_connections`), `sqlite::memory:`, or `sqlite:<path>` / `sqlite://<path>` (a file,
    /// created if missing). Call [`MeterDataStore::migrate`] before use.
    pub async fn open(url: &str, max_connections: u32) -> Result<Self> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(Self::Postgres(
                PgStore::connect(url, max_connections).await?,
            ));
        }
        if url == "sqlite::memory:" {
            return Ok(Self::Sqlite(SqliteStore::in_memory().await?));
        }
        if let Some(path) = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
            .filter(|p| !p.is_empty())
        {
            return Ok(Self::Sqlite(SqliteStore::open(path).await?));
        }
        Err(StoreError::UnsupportedUrl(url.to_owned()))
    }
}

impl MeterDataStore for AnyStore {
    async fn migrate(&self) -> Result<()> {
        match self {
            Self::Postgres(s) => s.migrate().await,
            Self::Sqlite(s) => s.migrate().await,
        }
    }

    async fn ingest(&self, batch: &[IntervalReading]) -> Result<IngestReport> {
        match self {
            Self::Postgres(s) => s.ingest(batch).await,
            Self::Sqlite(s) => s.ingest(batch).await,
        }
    }

    async fn readings(
        &self,
        meter: &str,
        register: Obis,
        span: Span,
        view: View,
    ) -> Result<Vec<StoredReading>> {
        match self {
            Self::Postgres(s) => s.readings(meter, register, span, view).await,
            Self::Sqlite(s) => s.readings(meter, register, span, view).await,
        }
    }

    async fn add_version(
        &self,
        meter: &str,
        register: Obis,
        ts_ms: i64,
        version: &NewVersion,
    ) -> Result<u32> {
        match self {
            Self::Postgres(s) => s.add_version(meter, register, ts_ms, version).await,
            Self::Sqlite(s) => s.add_version(meter, register, ts_ms, version).await,
        }
    }

    async fn history(&self, meter: &str, register: Obis, ts_ms: i64) -> Result<Vec<StoredReading>> {
        match self {
            Self::Postgres(s) => s.history(meter, register, ts_ms).await,
            Self::Sqlite(s) => s.history(meter, register, ts_ms).await,
        }
    }
}
