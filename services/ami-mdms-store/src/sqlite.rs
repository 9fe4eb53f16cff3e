//! The embedded backend, the single-machine default: SQLite in WAL mode (a file, or memory for
//! tests and demos), the same tables and semantics as PostgreSQL without partitions.
//!
//! Ingest writes in transactions of [`ROWS_PER_TX`] rows with multi-row `INSERT ... ON
//! CONFLICT DO NOTHING` statements; a chunk where some rows were not new goes once more
//! through a temporary staging table to find and keep conflicting re-reads. Writes go through
//! one dedicated connection (SQLite has one writer, and a connection keeps its page cache only
//! while no other connection writes); reads use a pool beside it under WAL.

use std::path::Path;
use std::str::FromStr;
use std::sync::OnceLock;
use std::time::Duration;

use ami_domain::time::now_ms;

use ami_domain::{Obis, Quality, Quantity};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Executor, Sqlite, Transaction};

use crate::MeterDataStore;
use crate::error::{Result, StoreError};
use crate::model::{
    self, CONFLICTING_REREAD, INGEST_ACTOR, IngestReport, IntervalReading, NewVersion, Provenance,
    Source, Span, StoredReading, View, quality_code, register_key,
};

/// Rows written per transaction, unless [`SqliteStore::rows_per_tx`] says otherwise.
pub const ROWS_PER_TX: usize = 10_000;
/// The largest multi-row statement, in rows (8 parameters each); smaller pieces are powers of two.
const MAX_ROWS_PER_STMT: usize = 256;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");

const CREATE_STAGING: &str = "CREATE TEMP TABLE IF NOT EXISTS ami_staging (
    meter TEXT NOT NULL, register INTEGER NOT NULL, ts INTEGER NOT NULL,
    mantissa INTEGER NOT NULL, exponent INTEGER NOT NULL, unit INTEGER NOT NULL,
    quality INTEGER NOT NULL, received_at INTEGER NOT NULL)";

/// `INSERT` statements of 1, 2, 4 ... [`MAX_ROWS_PER_STMT`] rows into `table`.
fn insert_sql(table: &'static str, rows: usize) -> &'static str {
    static ORIGINALS: OnceLock<Vec<String>> = OnceLock::new();
    static STAGING: OnceLock<Vec<String>> = OnceLock::new();
    let build = |table: &str, conflict: &str| {
        let mut all = Vec::new();
        let mut n = 1;
        while n <= MAX_ROWS_PER_STMT {
            let values = vec!["(?,?,?,?,?,?,?,?)"; n].join(",");
            all.push(format!(
                "INSERT INTO {table} (meter, register, ts, mantissa, exponent, unit, quality, received_at) VALUES {values}{conflict}"
            ));
            n *= 2;
        }
        all
    };
    let set = if table == "ami_staging" {
        STAGING.get_or_init(|| build("ami_staging", ""))
    } else {
        ORIGINALS.get_or_init(|| build("interval_reading", " ON CONFLICT DO NOTHING"))
    };
    let index = rows.max(1).ilog2() as usize;
    set.get(index).map_or("", String::as_str)
}

/// Staged rows whose key has an original with another value, unit or quality.
macro_rules! differing {
    () => {
        "FROM ami_staging s JOIN interval_reading r
            ON r.meter = s.meter AND r.register = s.register AND r.ts = s.ts
         WHERE NOT (r.mantissa = s.mantissa AND r.exponent = s.exponent
                    AND r.unit = s.unit AND r.quality = s.quality)"
    };
}

/// ?1 suspect flag, ?2 actor, ?3 reason.
const INSERT_REREADS: &str = concat!(
    "INSERT INTO reading_version
        (meter, register, ts, version, mantissa, exponent, unit, quality, source, actor,
         recorded_at, reason)
     SELECT s.meter, s.register, s.ts,
        COALESCE((SELECT max(v.version) FROM reading_version v
                  WHERE v.meter = s.meter AND v.register = s.register AND v.ts = s.ts), 1) + 1,
        s.mantissa, s.exponent, s.unit, s.quality | ?1, 1, ?2, s.received_at, ?3 ",
    differing!(),
    " AND NOT EXISTS (SELECT 1 FROM reading_version v
            WHERE v.meter = s.meter AND v.register = s.register AND v.ts = s.ts AND v.source = 1
              AND v.mantissa = s.mantissa AND v.exponent = s.exponent AND v.unit = s.unit
              AND v.quality = (s.quality | ?1))"
);

macro_rules! original_cols {
    ($actor:literal) => {
        concat!(
            "r.ts AS ts, 1 AS version, r.mantissa, r.exponent, r.unit, r.quality, 1 AS source, ",
            $actor,
            " AS actor, r.received_at AS at, NULL AS reason, NULL AS method"
        )
    };
}
macro_rules! version_cols {
    () => {
        "v.ts AS ts, v.version AS version, v.mantissa, v.exponent, v.unit, v.quality, v.source,
         v.actor, v.recorded_at AS at, v.reason, v.method"
    };
}

const READ_RAW: &str = concat!(
    "SELECT ",
    original_cols!("?5"),
    " FROM interval_reading r
      WHERE r.meter = ?1 AND r.register = ?2 AND r.ts > ?3 AND r.ts <= ?4 ORDER BY r.ts"
);

/// Per interval, the most recently recorded of the original and its versions (the higher
/// version on a tie), as on PostgreSQL.
const READ_LATEST: &str = concat!(
    "SELECT ts, version, mantissa, exponent, unit, quality, source, actor, at, reason, method
     FROM (SELECT *, row_number() OVER (PARTITION BY ts ORDER BY at DESC, version DESC) AS pick
           FROM (SELECT ",
    original_cols!("?5"),
    " FROM interval_reading r
      WHERE r.meter = ?1 AND r.register = ?2 AND r.ts > ?3 AND r.ts <= ?4
      UNION ALL SELECT ",
    version_cols!(),
    " FROM reading_version v
      WHERE v.meter = ?1 AND v.register = ?2 AND v.ts > ?3 AND v.ts <= ?4))
     WHERE pick = 1 ORDER BY ts"
);

const READ_HISTORY: &str = concat!(
    "SELECT * FROM (SELECT ",
    original_cols!("?4"),
    " FROM interval_reading r WHERE r.meter = ?1 AND r.register = ?2 AND r.ts = ?3
      UNION ALL SELECT ",
    version_cols!(),
    " FROM reading_version v WHERE v.meter = ?1 AND v.register = ?2 AND v.ts = ?3
     ) ORDER BY version"
);

const INSERT_VERSION: &str = "INSERT INTO reading_version
        (meter, register, ts, version, mantissa, exponent, unit, quality, source, actor,
         recorded_at, reason, method)
    SELECT ?1, ?2, ?3,
        COALESCE((SELECT max(version) FROM reading_version
                  WHERE meter = ?1 AND register = ?2 AND ts = ?3), 1) + 1,
        ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12
    RETURNING version";

type VersionRow = (
    i64,
    i32,
    i64,
    i16,
    i16,
    i32,
    i16,
    String,
    i64,
    Option<String>,
    Option<String>,
);

fn stored(row: VersionRow) -> Result<StoredReading> {
    let (ts, version, mantissa, exponent, unit, quality, source, actor, at, reason, method) = row;
    Ok(StoredReading {
        ts_ms: ts,
        value: Quantity::new(
            mantissa,
            i8::try_from(exponent)
                .map_err(|_| StoreError::Corrupt(format!("exponent {exponent} out of range")))?,
        ),
        unit: model::unit_from_code(unit)?,
        quality: model::quality_from_code(quality)?,
        version: model::version_from_code(version)?,
        provenance: Provenance {
            source: Source::from_code(source)?,
            actor,
            at_ms: at,
            reason,
            method,
        },
    })
}

/// Writes `rows` into `table` with as few statements as powers of two allow; returns the rows
/// the statements inserted.
async fn insert_rows(
    tx: &mut Transaction<'static, Sqlite>,
    table: &'static str,
    rows: &[&IntervalReading],
    received_at: i64,
) -> Result<u64> {
    let mut inserted = 0;
    let mut rest = rows;
    while !rest.is_empty() {
        let n = MAX_ROWS_PER_STMT.min(1 << rest.len().ilog2());
        let (head, tail) = rest.split_at(n);
        rest = tail;
        let mut q = sqlx::query::<Sqlite>(insert_sql(table, n));
        for r in head {
            let rd = &r.reading;
            q = q
                .bind(r.meter.as_str())
                .bind(register_key(rd.register))
                .bind(rd.ts_ms)
                .bind(rd.value.mantissa)
                .bind(i16::from(rd.value.scale))
                .bind(i16::from(rd.unit as u8))
                .bind(quality_code(rd.quality))
                .bind(received_at);
        }
        inserted += q.execute(&mut **tx).await?.rows_affected();
    }
    Ok(inserted)
}

/// The embedded store: a writer connection and a pool of readers on one SQLite database.
pub struct SqliteStore {
    /// Readers (the writer itself for an in-memory store).
    pool: SqlitePool,
    /// One connection for every write, so its page cache stays valid between transactions
    /// (SQLite drops a connection's cache whenever another connection wrote).
    writer: SqlitePool,
    rows_per_tx: usize,
}

impl SqliteStore {
    /// Opens (creating it if missing) the database file at `path`, in WAL mode.
    pub async fn open(path: impl AsRef<Path>) -> Result<Self> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal);
        let writer = Self::pool(options.clone(), 1).await?;
        let pool = Self::pool(options, 4).await?;
        Ok(Self::new(pool, writer))
    }

    /// A store in memory, gone when dropped: one connection holds the database.
    pub async fn in_memory() -> Result<Self> {
        let options = SqliteConnectOptions::from_str("sqlite::memory:")?;
        let pool = Self::pool(options, 1).await?;
        Ok(Self::new(pool.clone(), pool))
    }

    fn new(pool: SqlitePool, writer: SqlitePool) -> Self {
        Self {
            pool,
            writer,
            rows_per_tx: ROWS_PER_TX,
        }
    }

    async fn pool(options: SqliteConnectOptions, connections: u32) -> Result<SqlitePool> {
        let options = options
            .busy_timeout(Duration::from_secs(10))
            .pragma("temp_store", "memory")
            // 64 MiB of page cache: interval data arrives time-major but is keyed meter-major,
            // so each batch touches leaves all over the primary key.
            .pragma("cache_size", "-65536")
            // Checkpoint every ~40 MiB of WAL rather than 4 MiB: a page rewritten by many
            // transactions is copied back to the database file once per checkpoint.
            .pragma("wal_autocheckpoint", "10000");
        let pool = SqlitePoolOptions::new()
            .max_connections(connections)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .after_connect(|conn, _| {
                Box::pin(async move {
                    conn.execute(CREATE_STAGING).await?;
                    Ok(())
                })
            })
            .connect_with(options)
            .await?;
        Ok(pool)
    }

    /// This store writing `rows` rows per transaction (at least 1). Larger transactions
    /// rewrite each B-tree page less often when a batch's keys are spread over the table.
    pub fn rows_per_tx(mut self, rows: usize) -> Self {
        self.rows_per_tx = rows.max(1);
        self
    }

    /// The writer's connection pool (reads through it see every write made so far).
    pub(crate) fn writer(&self) -> &SqlitePool {
        &self.writer
    }

    /// The readers' connection pool, for queries this API does not cover.
    pub fn readers(&self) -> &SqlitePool {
        &self.pool
    }

    /// Closes the connections (an in-memory store loses its data).
    pub async fn close(&self) {
        self.writer.close().await;
        self.pool.close().await;
    }

    /// Writes one chunk of a round (keys unique) in one transaction.
    async fn ingest_chunk(&self, chunk: &[&IntervalReading]) -> Result<IngestReport> {
        let received_at = now_ms();
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        let inserted = insert_rows(&mut tx, "interval_reading", chunk, received_at).await?;
        let inserted = usize::try_from(inserted).unwrap_or(usize::MAX);
        let mut conflicts = 0;
        if inserted < chunk.len() {
            insert_rows(&mut tx, "ami_staging", chunk, received_at).await?;
            let n = sqlx::query(INSERT_REREADS)
                .bind(quality_code(Quality::SUSPECT))
                .bind(INGEST_ACTOR)
                .bind(CONFLICTING_REREAD)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            conflicts = usize::try_from(n).unwrap_or(usize::MAX);
            sqlx::query("DELETE FROM ami_staging")
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(IngestReport {
            received: 0,
            inserted,
            conflicts,
            duplicates: chunk.len().saturating_sub(inserted + conflicts),
        })
    }
}

impl MeterDataStore for SqliteStore {
    async fn migrate(&self) -> Result<()> {
        MIGRATOR.run(&self.writer).await?;
        Ok(())
    }

    async fn ingest(&self, batch: &[IntervalReading]) -> Result<IngestReport> {
        model::check_batch(batch)?;
        let plan = model::plan(batch);
        let mut report = IngestReport {
            received: batch.len(),
            duplicates: plan.duplicates,
            ..IngestReport::default()
        };
        for round in &plan.rounds {
            for chunk in round.chunks(self.rows_per_tx) {
                report.add(self.ingest_chunk(chunk).await?);
            }
        }
        Ok(report)
    }

    async fn readings(
        &self,
        meter: &str,
        register: Obis,
        span: Span,
        view: View,
    ) -> Result<Vec<StoredReading>> {
        model::check_meter(meter, 0)?;
        span.check()?;
        let sql = match view {
            View::Raw => READ_RAW,
            View::Latest => READ_LATEST,
        };
        let rows: Vec<VersionRow> = sqlx::query_as(sql)
            .bind(meter)
            .bind(register_key(register))
            .bind(span.after_ms)
            .bind(span.until_ms)
            .bind(INGEST_ACTOR)
            .fetch_all(&self.pool)
            .await?;
        rows.into_iter().map(stored).collect()
    }

    async fn add_version(
        &self,
        meter: &str,
        register: Obis,
        ts_ms: i64,
        version: &NewVersion,
    ) -> Result<u32> {
        version.check(meter, ts_ms)?;
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        let number: i32 = sqlx::query_scalar(INSERT_VERSION)
            .bind(meter)
            .bind(register_key(register))
            .bind(ts_ms)
            .bind(version.value.mantissa)
            .bind(i16::from(version.value.scale))
            .bind(i16::from(version.unit as u8))
            .bind(quality_code(version.stored_quality()))
            .bind(version.source.code())
            .bind(version.actor.as_str())
            .bind(now_ms())
            .bind(version.reason.as_deref())
            .bind(version.method.as_deref())
            .fetch_one(&mut *tx)
            .await?;
        tx.commit().await?;
        model::version_from_code(number)
    }

    async fn history(&self, meter: &str, register: Obis, ts_ms: i64) -> Result<Vec<StoredReading>> {
        model::check_meter(meter, 0)?;
        let rows: Vec<VersionRow> = sqlx::query_as(READ_HISTORY)
            .bind(meter)
            .bind(register_key(register))
            .bind(ts_ms)
            .bind(INGEST_ACTOR)
            .fetch_all(&self.pool)
            .await?;
        rows.into_iter().map(stored).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_statements_by_power_of_two() {
        assert!(
            insert_sql("interval_reading", 1)
                .ends_with("VALUES (?,?,?,?,?,?,?,?) ON CONFLICT DO NOTHING")
        );
        assert_eq!(insert_sql("ami_staging", 256).matches('(').count(), 257);
        assert_eq!(insert_sql("ami_staging", 4).matches("),(").count(), 3);
    }
}
