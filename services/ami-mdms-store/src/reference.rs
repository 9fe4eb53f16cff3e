//! The raw bulk-insert rates the store is measured against, on the same rows and server: a
//! binary `COPY` into a plain PostgreSQL table with the store's primary key, and multi-row
//! `INSERT`s in large transactions into a plain SQLite table. No versions, no idempotence,
//! no partitions: the ceiling for this data on this machine.

use std::path::Path;
use std::str::FromStr;
use std::time::{Duration, Instant};

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
use sqlx::{Connection, Executor};

use crate::error::{Result, StoreError};
use crate::model::{IntervalReading, register_key};
use crate::postgres::{COPY_COLUMNS, copy_binary};

/// Times a binary `COPY` of `rows` in chunks of `batch` into a new table `table` of the
/// database at `url` (which must not have it), and checks every row arrived.
pub async fn pg_copy(
    url: &str,
    table: &str,
    rows: &[IntervalReading],
    batch: usize,
) -> Result<Duration> {
    let mut c = sqlx::PgConnection::connect(url).await?;
    c.execute(sqlx::AssertSqlSafe(format!(
        "CREATE TABLE {table} (meter text NOT NULL, register bigint NOT NULL,
            ts timestamptz NOT NULL, mantissa bigint NOT NULL, exponent smallint NOT NULL,
            unit smallint NOT NULL, quality integer NOT NULL,
            PRIMARY KEY (meter, register, ts))"
    )))
    .await?;
    let statement = format!("COPY {table} {COPY_COLUMNS} FROM STDIN (FORMAT binary)");
    let started = Instant::now();
    for chunk in rows.chunks(batch.max(1)) {
        let mut copy = c.copy_in_raw(&statement).await?;
        copy.send(copy_binary(chunk)).await?;
        copy.finish().await?;
    }
    let took = started.elapsed();
    let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT count(*) FROM {table}")))
        .fetch_one(&mut c)
        .await?;
    c.close().await?;
    if usize::try_from(n).ok() != Some(rows.len()) {
        return Err(StoreError::Corrupt(format!(
            "raw copy stored {n} of {} rows",
            rows.len()
        )));
    }
    Ok(took)
}

/// Times `INSERT`s of `rows` (500 rows per statement, `per_tx` rows per transaction) into a
/// new plain table in a new SQLite file at `path`, WAL mode as the store uses it.
pub async fn sqlite_insert(
    path: &Path,
    rows: &[IntervalReading],
    per_tx: usize,
) -> Result<Duration> {
    let options = SqliteConnectOptions::from_str("sqlite:")?
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal);
    let mut c = sqlx::SqliteConnection::connect_with(&options).await?;
    c.execute(
        "CREATE TABLE raw_insert (meter TEXT NOT NULL, register INTEGER NOT NULL, ts INTEGER NOT NULL,
            mantissa INTEGER NOT NULL, exponent INTEGER NOT NULL, unit INTEGER NOT NULL,
            quality INTEGER NOT NULL, PRIMARY KEY (meter, register, ts)) WITHOUT ROWID",
    )
    .await?;
    const PER_STMT: usize = 500;
    let full = {
        let mut sql = String::from("INSERT INTO raw_insert VALUES ");
        for i in 0..PER_STMT {
            sql.push_str(if i == 0 {
                "(?,?,?,?,?,?,?)"
            } else {
                ",(?,?,?,?,?,?,?)"
            });
        }
        sql
    };
    let started = Instant::now();
    for tx_rows in rows.chunks(per_tx.max(1)) {
        let mut tx = c.begin().await?;
        for stmt_rows in tx_rows.chunks(PER_STMT) {
            let sql = if stmt_rows.len() == PER_STMT {
                full.clone()
            } else {
                let mut s = String::from("INSERT INTO raw_insert VALUES ");
                for i in 0..stmt_rows.len() {
                    s.push_str(if i == 0 {
                        "(?,?,?,?,?,?,?)"
                    } else {
                        ",(?,?,?,?,?,?,?)"
                    });
                }
                s
            };
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for r in stmt_rows {
                q = q
                    .bind(r.meter.as_str())
                    .bind(register_key(r.reading.register))
                    .bind(r.reading.ts_ms)
                    .bind(r.reading.value.mantissa)
                    .bind(i32::from(r.reading.value.scale))
                    .bind(i32::from(r.reading.unit as u8))
                    .bind(i32::from(r.reading.quality.0));
            }
            q.execute(&mut *tx).await?;
        }
        tx.commit().await?;
    }
    let took = started.elapsed();
    c.close().await?;
    Ok(took)
}
