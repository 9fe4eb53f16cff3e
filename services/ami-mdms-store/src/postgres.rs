//! The PostgreSQL backend, for production: interval data in a table range-partitioned by
//! month on the interval end (partitions made on demand by ingest), later versions in a
//! history table, bulk ingest by binary `COPY` into a per-connection staging table followed by
//! one `INSERT ... SELECT ... ON CONFLICT DO NOTHING` - or, for a batch of only new readings
//! (the normal case), one `COPY` straight into the partitioned table under a savepoint, which
//! any already-stored key fails whole, sending the batch down the staging path.
//!
//! Schema: `migrations/postgres/`. Values are BIGINT mantissa + SMALLINT exponent, times are
//! `timestamptz` (carried as microseconds, never through floats), registers are the six OBIS
//! groups packed into a BIGINT ([`crate::register_key`]).

use std::collections::{BTreeSet, HashSet};
use std::str::FromStr;
use std::sync::{Mutex, PoisonError};

use ami_domain::time::civil_from_days;
use ami_domain::{Obis, Quality, Quantity};
use sqlx::encode::IsNull;
use sqlx::error::BoxDynError;
use sqlx::postgres::types::Oid;
use sqlx::postgres::{
    PgArgumentBuffer, PgConnectOptions, PgConnection, PgPool, PgPoolOptions, PgTypeInfo,
    PgValueFormat, PgValueRef, Postgres,
};
use sqlx::{AssertSqlSafe, Connection, Decode, Encode, Executor, Type};

use crate::MeterDataStore;
use crate::error::{Result, StoreError};
use crate::model::{
    self, CONFLICTING_REREAD, INGEST_ACTOR, IngestReport, IntervalReading, NewVersion, Provenance,
    Source, Span, StoredReading, View, quality_code, register_key,
};

/// Advisory-lock namespace serialising version numbering per meter.
const LOCK_VERSIONS: i32 = 0x414d_4901;
/// Advisory-lock namespace serialising partition creation per month.
const LOCK_PARTITIONS: i32 = 0x414d_4902;
/// Bytes of COPY data gathered before each send.
const COPY_CHUNK: usize = 1 << 20;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");

/// Made on every new connection: where a batch lands before it is merged.
const CREATE_STAGING: &str = "CREATE TEMP TABLE IF NOT EXISTS ami_staging (
    meter text NOT NULL, register bigint NOT NULL, ts timestamptz NOT NULL,
    mantissa bigint NOT NULL, exponent smallint NOT NULL, unit smallint NOT NULL,
    quality integer NOT NULL) ON COMMIT DELETE ROWS";

const COPY_STAGING: &str = "COPY ami_staging (meter, register, ts, mantissa, exponent, unit, quality) FROM STDIN (FORMAT binary)";

const COPY_DIRECT: &str = "COPY interval_reading (meter, register, ts, mantissa, exponent, unit, quality) FROM STDIN (FORMAT binary)";

const INSERT_ORIGINALS: &str =
    "INSERT INTO interval_reading (meter, register, ts, mantissa, exponent, unit, quality)
    SELECT meter, register, ts, mantissa, exponent, unit, quality FROM ami_staging
    ORDER BY meter, register, ts
    ON CONFLICT DO NOTHING";

/// Staged rows whose key has an original with another value, unit or quality.
macro_rules! differing {
    () => {
        "FROM ami_staging s JOIN interval_reading r
            ON r.meter = s.meter AND r.register = s.register AND r.ts = s.ts
         WHERE NOT (r.mantissa = s.mantissa AND r.exponent = s.exponent
                    AND r.unit = s.unit AND r.quality = s.quality)"
    };
}

const LOCK_DIFFERING: &str = concat!(
    "SELECT pg_advisory_xact_lock($1, h) FROM (SELECT DISTINCT hashtext(s.meter) AS h ",
    differing!(),
    " ORDER BY h) k"
);

/// $1 suspect flag, $2 actor, $3 reason.
const INSERT_REREADS: &str = concat!(
    "INSERT INTO reading_version
        (meter, register, ts, version, mantissa, exponent, unit, quality, source, actor, reason)
     SELECT s.meter, s.register, s.ts,
        COALESCE((SELECT max(v.version) FROM reading_version v
                  WHERE v.meter = s.meter AND v.register = s.register AND v.ts = s.ts), 1) + 1,
        s.mantissa, s.exponent, s.unit, s.quality | $1, 1, $2, $3 ",
    differing!(),
    " AND NOT EXISTS (SELECT 1 FROM reading_version v
            WHERE v.meter = s.meter AND v.register = s.register AND v.ts = s.ts AND v.source = 1
              AND v.mantissa = s.mantissa AND v.exponent = s.exponent AND v.unit = s.unit
              AND v.quality = (s.quality | $1))"
);

/// Columns of an original as a stored version (the parameter holds the ingest actor).
macro_rules! original_cols {
    ($actor:literal) => {
        concat!(
            "r.ts, 1::int4 AS version, r.mantissa, r.exponent, r.unit, r.quality, 1::int2 AS source, ",
            $actor,
            "::text AS actor, r.received_at AS at, NULL::text AS reason, NULL::text AS method"
        )
    };
}
macro_rules! version_cols {
    () => {
        "v.ts, v.version, v.mantissa, v.exponent, v.unit, v.quality, v.source, v.actor,
         v.recorded_at AS at, v.reason, v.method"
    };
}

const READ_RAW: &str = concat!(
    "SELECT ",
    original_cols!("$5"),
    " FROM interval_reading r
      WHERE r.meter = $1 AND r.register = $2 AND r.ts > $3 AND r.ts <= $4 ORDER BY r.ts"
);

/// Per interval, the most recently recorded of the original and its versions (the higher
/// version on a tie): an edit beats the original, and an original arriving after a gap was
/// estimated beats the estimate.
const READ_LATEST: &str = concat!(
    "SELECT DISTINCT ON (ts) * FROM (SELECT ",
    original_cols!("$5"),
    " FROM interval_reading r
      WHERE r.meter = $1 AND r.register = $2 AND r.ts > $3 AND r.ts <= $4
      UNION ALL SELECT ",
    version_cols!(),
    " FROM reading_version v
      WHERE v.meter = $1 AND v.register = $2 AND v.ts > $3 AND v.ts <= $4
     ) x ORDER BY ts, at DESC, version DESC"
);

const READ_HISTORY: &str = concat!(
    "SELECT * FROM (SELECT ",
    original_cols!("$4"),
    " FROM interval_reading r WHERE r.meter = $1 AND r.register = $2 AND r.ts = $3
      UNION ALL SELECT ",
    version_cols!(),
    " FROM reading_version v WHERE v.meter = $1 AND v.register = $2 AND v.ts = $3
     ) x ORDER BY version"
);

const INSERT_VERSION: &str = "INSERT INTO reading_version
        (meter, register, ts, version, mantissa, exponent, unit, quality, source, actor, reason, method)
    SELECT $1, $2, $3,
        COALESCE((SELECT max(version) FROM reading_version
                  WHERE meter = $1 AND register = $2 AND ts = $3), 1) + 1,
        $4, $5, $6, $7, $8, $9, $10, $11
    RETURNING version";

/// A `timestamptz` carried as Unix milliseconds, encoded and decoded in the binary format
/// (microseconds since 2000-01-01), so no time crate and no float is involved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct PgTs(pub i64);

/// 2000-01-01T00:00:00Z in Unix milliseconds.
const PG_EPOCH_MS: i64 = 946_684_800_000;
const TIMESTAMPTZ_OID: Oid = Oid(1184);

impl PgTs {
    fn micros(self) -> i64 {
        (self.0 - PG_EPOCH_MS).saturating_mul(1000)
    }
}

impl Type<Postgres> for PgTs {
    fn type_info() -> PgTypeInfo {
        PgTypeInfo::with_oid(TIMESTAMPTZ_OID)
    }

    fn compatible(ty: &PgTypeInfo) -> bool {
        *ty == PgTypeInfo::with_oid(TIMESTAMPTZ_OID)
    }
}

impl Encode<'_, Postgres> for PgTs {
    fn encode_by_ref(&self, buf: &mut PgArgumentBuffer) -> Result<IsNull, BoxDynError> {
        buf.extend(&self.micros().to_be_bytes());
        Ok(IsNull::No)
    }
}

impl Decode<'_, Postgres> for PgTs {
    fn decode(value: PgValueRef<'_>) -> Result<Self, BoxDynError> {
        if value.format() != PgValueFormat::Binary {
            return Err("timestamptz in text format".into());
        }
        let bytes: [u8; 8] = value
            .as_bytes()?
            .try_into()
            .map_err(|_| "timestamptz is not 8 bytes")?;
        let micros = i64::from_be_bytes(bytes);
        Ok(PgTs(micros.div_euclid(1000) + PG_EPOCH_MS))
    }
}

type VersionRow = (
    PgTs,
    i32,
    i64,
    i16,
    i16,
    i32,
    i16,
    String,
    PgTs,
    Option<String>,
    Option<String>,
);

fn stored(row: VersionRow) -> Result<StoredReading> {
    let (ts, version, mantissa, exponent, unit, quality, source, actor, at, reason, method) = row;
    Ok(StoredReading {
        ts_ms: ts.0,
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
            at_ms: at.0,
            reason,
            method,
        },
    })
}

/// The month a timestamp falls in, as `year * 12 + month - 1`.
fn month_of(ts_ms: i64) -> i64 {
    let (y, m, _) = civil_from_days(ts_ms.div_euclid(86_400_000));
    y * 12 + i64::from(m) - 1
}

/// The DDL of a month's partition (all numbers: nothing from input reaches the text).
fn partition_ddl(month: i64) -> String {
    let (y, m) = (month.div_euclid(12), month.rem_euclid(12) + 1);
    let (ny, nm) = ((month + 1).div_euclid(12), (month + 1).rem_euclid(12) + 1);
    format!(
        "CREATE TABLE IF NOT EXISTS interval_reading_p{y:04}{m:02} PARTITION OF interval_reading \
         FOR VALUES FROM ('{y:04}-{m:02}-01 00:00:00+00') TO ('{ny:04}-{nm:02}-01 00:00:00+00')"
    )
}

/// Appends rows to a binary COPY buffer (header written by the caller).
fn encode_row(buf: &mut Vec<u8>, r: &IntervalReading) {
    fn field(buf: &mut Vec<u8>, bytes: &[u8]) {
        // Lengths are small: meter ids are at most 64 bytes, the rest fixed.
        buf.extend_from_slice(&(bytes.len() as i32).to_be_bytes());
        buf.extend_from_slice(bytes);
    }
    let rd = &r.reading;
    buf.extend_from_slice(&7i16.to_be_bytes());
    field(buf, r.meter.as_bytes());
    field(buf, &register_key(rd.register).to_be_bytes());
    field(buf, &PgTs(rd.ts_ms).micros().to_be_bytes());
    field(buf, &rd.value.mantissa.to_be_bytes());
    field(buf, &i16::from(rd.value.scale).to_be_bytes());
    field(buf, &i16::from(rd.unit as u8).to_be_bytes());
    field(buf, &quality_code(rd.quality).to_be_bytes());
}

const COPY_HEADER: &[u8] = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0";

/// The columns of [`copy_binary`]'s rows, in order, as a `COPY` column list.
pub const COPY_COLUMNS: &str = "(meter, register, ts, mantissa, exponent, unit, quality)";

/// Binary `COPY` data (header, rows, trailer) of readings with the columns [`COPY_COLUMNS`]
/// typed text, bigint, timestamptz, bigint, smallint, smallint, integer: what ingest streams
/// into its staging table, public so the bench loads the same bytes into a plain table.
pub fn copy_binary<'a>(rows: impl IntoIterator<Item = &'a IntervalReading>) -> Vec<u8> {
    let mut buf = COPY_HEADER.to_vec();
    for r in rows {
        encode_row(&mut buf, r);
    }
    buf.extend_from_slice(&(-1i16).to_be_bytes());
    buf
}

/// Streams `rows` as binary COPY data into the table `statement` copies to.
async fn copy_rows(
    conn: &mut PgConnection,
    statement: &str,
    rows: &[&IntervalReading],
) -> Result<u64, sqlx::Error> {
    let mut copy = conn.copy_in_raw(statement).await?;
    let mut buf = Vec::with_capacity(COPY_CHUNK + 256);
    buf.extend_from_slice(COPY_HEADER);
    for r in rows {
        encode_row(&mut buf, r);
        if buf.len() >= COPY_CHUNK {
            copy.send(buf.as_slice()).await?;
            buf.clear();
        }
    }
    buf.extend_from_slice(&(-1i16).to_be_bytes());
    copy.send(buf.as_slice()).await?;
    copy.finish().await
}

fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.code().as_deref() == Some("23505"))
}

/// The PostgreSQL store: a connection pool and the months whose partitions exist.
pub struct PgStore {
    pool: PgPool,
    partitions: Mutex<HashSet<i64>>,
    direct_copy: bool,
}

impl PgStore {
    /// Connects with a pool of up to `max_connections` to `url`
    /// (`postgres://user@host:port/db`). Call [`MeterDataStore::migrate`] before use.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self> {
        let options = PgConnectOptions::from_str(url)?;
        let pool = PgPoolOptions::new()
            .max_connections(max_connections.max(1))
            .after_connect(|conn, _| {
                Box::pin(async move {
                    // Staging lives in local buffers: give a batch room before it spills.
                    conn.execute("SET temp_buffers = '64MB'").await?;
                    conn.execute(CREATE_STAGING).await?;
                    Ok(())
                })
            })
            .connect_with(options)
            .await?;
        Ok(Self {
            pool,
            partitions: Mutex::new(HashSet::new()),
            direct_copy: true,
        })
    }

    /// This store without the optimistic direct `COPY`: every batch goes through the staging
    /// table and the merge (for tests of that path, and for measuring it).
    pub fn staging_only(mut self) -> Self {
        self.direct_copy = false;
        self
    }

    /// The connection pool, for queries this API does not cover.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Closes the pool's connections.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Makes the monthly partitions that `batch` needs and that this store has not seen yet,
    /// each in a short transaction under an advisory lock so concurrent ingests (in this or
    /// other processes) never race on the catalog.
    async fn ensure_partitions(&self, batch: &[IntervalReading]) -> Result<()> {
        let months: BTreeSet<i64> = batch.iter().map(|r| month_of(r.reading.ts_ms)).collect();
        let missing: Vec<i64> = {
            let known = self
                .partitions
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            months.into_iter().filter(|m| !known.contains(m)).collect()
        };
        for month in missing {
            let mut tx = self.pool.begin().await?;
            sqlx::query("SELECT pg_advisory_xact_lock($1, $2)")
                .bind(LOCK_PARTITIONS)
                .bind(i32::try_from(month).unwrap_or(i32::MAX))
                .execute(&mut *tx)
                .await?;
            sqlx::raw_sql(AssertSqlSafe(partition_ddl(month)))
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            self.partitions
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(month);
        }
        Ok(())
    }
}

impl MeterDataStore for PgStore {
    async fn migrate(&self) -> Result<()> {
        MIGRATOR.run(&self.pool).await?;
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
        if batch.is_empty() {
            return Ok(report);
        }
        self.ensure_partitions(batch).await?;
        let mut tx = self.pool.begin().await?;
        for (i, round) in plan.rounds.iter().enumerate() {
            if round.is_empty() {
                continue;
            }
            if i > 0 {
                sqlx::query("DELETE FROM ami_staging")
                    .execute(&mut *tx)
                    .await?;
            }
            // The normal case, a round of readings never seen: one COPY straight into the
            // partitioned table under a savepoint. Any key already stored fails it on the
            // primary key, nothing of it is kept, and the round takes the staging path.
            if i == 0 && self.direct_copy {
                let mut savepoint = tx.begin().await?;
                match copy_rows(&mut savepoint, COPY_DIRECT, round).await {
                    Ok(n) => {
                        savepoint.commit().await?;
                        let inserted = usize::try_from(n).unwrap_or(usize::MAX);
                        report.add(IngestReport {
                            received: 0,
                            inserted,
                            conflicts: 0,
                            duplicates: round.len().saturating_sub(inserted),
                        });
                        continue;
                    }
                    Err(e) if is_unique_violation(&e) => savepoint.rollback().await?,
                    Err(e) => return Err(e.into()),
                }
            }
            copy_rows(&mut tx, COPY_STAGING, round).await?;

            let inserted = sqlx::query(INSERT_ORIGINALS)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            let inserted = usize::try_from(inserted).unwrap_or(usize::MAX);
            let mut conflicts = 0;
            if inserted < round.len() {
                sqlx::query(LOCK_DIFFERING)
                    .bind(LOCK_VERSIONS)
                    .execute(&mut *tx)
                    .await?;
                let n = sqlx::query(INSERT_REREADS)
                    .bind(quality_code(Quality::SUSPECT))
                    .bind(INGEST_ACTOR)
                    .bind(CONFLICTING_REREAD)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                conflicts = usize::try_from(n).unwrap_or(usize::MAX);
            }
            report.add(IngestReport {
                received: 0,
                inserted,
                conflicts,
                duplicates: round.len().saturating_sub(inserted + conflicts),
            });
        }
        tx.commit().await?;
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
            .bind(PgTs(span.after_ms))
            .bind(PgTs(span.until_ms))
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
        let mut tx = self.pool.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1, hashtext($2))")
            .bind(LOCK_VERSIONS)
            .bind(meter)
            .execute(&mut *tx)
            .await?;
        let number: i32 = sqlx::query_scalar(INSERT_VERSION)
            .bind(meter)
            .bind(register_key(register))
            .bind(PgTs(ts_ms))
            .bind(version.value.mantissa)
            .bind(i16::from(version.value.scale))
            .bind(i16::from(version.unit as u8))
            .bind(quality_code(version.stored_quality()))
            .bind(version.source.code())
            .bind(version.actor.as_str())
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
            .bind(PgTs(ts_ms))
            .bind(INGEST_ACTOR)
            .fetch_all(&self.pool)
            .await?;
        rows.into_iter().map(stored).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ami_domain::time::unix_ms;

    #[test]
    fn months_and_partition_bounds() {
        let m = month_of(unix_ms(2026, 12, 31, 23, 59, 0));
        assert_eq!(m, 2026 * 12 + 11);
        assert_eq!(month_of(unix_ms(2027, 1, 1, 0, 0, 0)), m + 1);
        let ddl = partition_ddl(m);
        assert!(ddl.contains("interval_reading_p202612"), "{ddl}");
        assert!(
            ddl.contains("FROM ('2026-12-01 00:00:00+00') TO ('2027-01-01 00:00:00+00')"),
            "{ddl}"
        );
    }

    #[test]
    fn suspect_is_the_flag_the_sql_sets() {
        assert_eq!(quality_code(Quality::SUSPECT), 1);
    }
}
