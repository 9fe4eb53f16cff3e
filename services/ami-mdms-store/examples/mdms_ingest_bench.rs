//! Ingest rates of the MDMS store against a reference, in one run:
//!
//! 1. raw binary `COPY` into a plain PostgreSQL table with primary key (meter, register, ts),
//!    the ceiling for this data on this server;
//! 2. the same rows through `PgStore::ingest` (monthly partitions, the optimistic direct
//!    COPY), then the same rows again (every batch a re-delivery: all duplicates), then the
//!    rows through the staging path alone (COPY into staging, idempotent merge) in a fresh
//!    schema;
//! 3. the same rows through `SqliteStore::ingest` (a WAL file in a temporary directory).
//!
//! Data: 15-minute interval ends crossing a month boundary, many meters with four registers
//! each, delivered the way a head-end sends them (every meter's registers for one interval,
//! then the next interval), in batches of `--batch` rows, one transaction each.
//!
//! ```sh
//! cargo run --release -p ami-mdms-store --example mdms_ingest_bench -- --rows 1000000
//! ```
//!
//! Options: `--rows N` (1,000,000), `--batch N` (10,000), `--intervals N` per meter (96),
//! `--pg URL` (server, without database; `postgres://postgres@127.0.0.1:5432`), `--skip-sqlite`.

use std::time::Instant;

use ami_domain::time::unix_ms;
use ami_domain::{Obis, Quality, Quantity, Reading, Unit};
use ami_mdms_store::{IntervalReading, MeterDataStore, PgStore, SqliteStore};
use anyhow::{Context, bail};
use sqlx::{AssertSqlSafe, Connection, Executor};

struct Options {
    rows: usize,
    batch: usize,
    intervals: usize,
    pg: String,
    sqlite: bool,
    postgres: bool,
    sqlite_tx: usize,
}

fn options() -> anyhow::Result<Options> {
    let mut o = Options {
        rows: 1_000_000,
        batch: 10_000,
        intervals: 96,
        pg: "postgres://postgres@127.0.0.1:5432".into(),
        sqlite: true,
        postgres: true,
        sqlite_tx: ami_mdms_store::sqlite::ROWS_PER_TX,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().with_context(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--rows" => o.rows = value()?.parse()?,
            "--batch" => o.batch = value()?.parse()?,
            "--intervals" => o.intervals = value()?.parse()?,
            "--pg" => o.pg = value()?,
            "--skip-sqlite" => o.sqlite = false,
            "--skip-postgres" => o.postgres = false,
            "--sqlite-tx" => o.sqlite_tx = value()?.parse()?,
            other => bail!("unknown option {other:?} (see the example's doc comment)"),
        }
    }
    if o.rows == 0 || o.batch == 0 || o.intervals == 0 {
        bail!("--rows, --batch and --intervals must be positive");
    }
    Ok(o)
}

/// Interval data as a head-end delivers it: interval by interval, every meter's registers.
fn fleet(o: &Options) -> Vec<IntervalReading> {
    let registers = [
        (Obis::new(1, 0, 1, 8, 0, 255), Unit::WattHour),
        (Obis::new(1, 0, 2, 8, 0, 255), Unit::WattHour),
        (Obis::new(1, 0, 3, 8, 0, 255), Unit::VarHour),
        (Obis::new(1, 0, 4, 8, 0, 255), Unit::VarHour),
    ];
    let meters = o.rows.div_ceil(registers.len() * o.intervals);
    let ids: Vec<String> = (0..meters)
        .map(|m| format!("ESMR-{:010}", 4_530_000_000u64 + m as u64))
        .collect();
    // Half a day before a month's end, so the data spans two partitions.
    let start = unix_ms(2026, 10, 31, 12, 0, 0);
    let mut out = Vec::with_capacity(o.rows);
    'fill: for i in 0..o.intervals {
        let ts_ms = start + (i as i64 + 1) * 900_000;
        for (m, id) in ids.iter().enumerate() {
            for (k, (register, unit)) in registers.iter().enumerate() {
                if out.len() == o.rows {
                    break 'fill;
                }
                // Cumulative registers: a meter-specific base growing with each interval.
                let base = (m as i64 * 7_919 + k as i64 * 104_729) % 10_000_000;
                out.push(IntervalReading {
                    meter: id.clone(),
                    reading: Reading {
                        register: *register,
                        value: Quantity::new(base + i as i64 * (50 + (m as i64 % 200)), 0),
                        unit: *unit,
                        ts_ms,
                        quality: Quality::VALID,
                    },
                });
            }
        }
    }
    out
}

async fn checkpoint(url: &str) -> anyhow::Result<()> {
    let mut c = sqlx::PgConnection::connect(url).await?;
    c.execute("CHECKPOINT").await?;
    c.close().await?;
    Ok(())
}

async fn raw_copy(url: &str, data: &[IntervalReading], batch: usize) -> anyhow::Result<f64> {
    let took = ami_mdms_store::reference::pg_copy(url, "raw_copy", data, batch).await?;
    Ok(data.len() as f64 / took.as_secs_f64())
}

async fn store_ingest<S: MeterDataStore>(
    store: &S,
    data: &[IntervalReading],
    batch: usize,
) -> anyhow::Result<f64> {
    store.migrate().await?;
    let started = Instant::now();
    let mut inserted = 0;
    for chunk in data.chunks(batch) {
        inserted += store.ingest(chunk).await?.inserted;
    }
    let secs = started.elapsed().as_secs_f64();
    anyhow::ensure!(
        inserted == data.len(),
        "store inserted {inserted} of {} rows",
        data.len()
    );
    Ok(data.len() as f64 / secs)
}

async fn redeliver<S: MeterDataStore>(
    store: &S,
    data: &[IntervalReading],
    batch: usize,
) -> anyhow::Result<f64> {
    let started = Instant::now();
    let mut duplicates = 0;
    for chunk in data.chunks(batch) {
        duplicates += store.ingest(chunk).await?.duplicates;
    }
    let secs = started.elapsed().as_secs_f64();
    anyhow::ensure!(
        duplicates == data.len(),
        "{duplicates} of {} rows were duplicates",
        data.len()
    );
    Ok(data.len() as f64 / secs)
}

fn line(what: &str, figure: String) {
    println!("{what:<40} {figure:>14}");
}

fn rate(r: f64) -> String {
    if r >= 1e6 {
        format!("{:.2}M rows/s", r / 1e6)
    } else {
        format!("{:.0}k rows/s", r / 1e3)
    }
}

/// The PostgreSQL figures, in a database of their own, dropped at the end.
async fn postgres(o: &Options, data: &[IntervalReading]) -> anyhow::Result<()> {
    let db = format!("ami_mdms_bench_{}", std::process::id());
    let admin = format!("{}/postgres", o.pg);
    let url = format!("{}/{db}", o.pg);
    {
        let mut c = sqlx::PgConnection::connect(&admin)
            .await
            .with_context(|| format!("PostgreSQL at {}", o.pg))?;
        c.execute(AssertSqlSafe(format!("CREATE DATABASE {db}")))
            .await?;
        c.close().await?;
    }
    let outcome = async {
        checkpoint(&url).await?;
        let raw = raw_copy(&url, data, o.batch).await?;
        line("postgres raw COPY (plain table, PK)", rate(raw));
        checkpoint(&url).await?;
        let store = PgStore::connect(&url, 2).await?;
        let pg = store_ingest(&store, data, o.batch).await?;
        store.close().await;
        line("postgres store ingest", rate(pg));
        line("store / raw", format!("{:.2}", pg / raw));
        // The same rows again: every batch is now a re-delivery (all duplicates).
        checkpoint(&url).await?;
        let store = PgStore::connect(&url, 2).await?;
        let again = redeliver(&store, data, o.batch).await?;
        store.close().await;
        line("postgres re-delivery (all duplicates)", rate(again));
        // The staging path alone, into a fresh schema.
        let mut c = sqlx::PgConnection::connect(&url).await?;
        c.execute("DROP TABLE interval_reading, reading_version, _sqlx_migrations")
            .await?;
        c.close().await?;
        checkpoint(&url).await?;
        let store = PgStore::connect(&url, 2).await?.staging_only();
        let staged = store_ingest(&store, data, o.batch).await?;
        store.close().await;
        line("postgres store ingest, staging only", rate(staged));
        line("staging only / raw", format!("{:.2}", staged / raw));
        anyhow::Ok(())
    }
    .await;
    {
        let mut c = sqlx::PgConnection::connect(&admin).await?;
        c.execute(AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {db} WITH (FORCE)"
        )))
        .await?;
        c.close().await?;
    }
    outcome?;
    Ok(())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let o = options()?;
    let data = fleet(&o);
    let meters = data.len().div_ceil(4 * o.intervals);
    println!(
        "{} rows: {} meters x 4 registers x {} quarter-hours, batches of {}",
        data.len(),
        meters,
        o.intervals,
        o.batch
    );

    if o.postgres {
        postgres(&o, &data).await?;
    }

    if o.sqlite {
        let dir = tempfile::tempdir()?;
        let store = SqliteStore::open(dir.path().join("bench.db"))
            .await?
            .rows_per_tx(o.sqlite_tx);
        let lite = store_ingest(&store, &data, o.batch).await?;
        store.close().await;
        line("sqlite store ingest (WAL file)", rate(lite));
    }
    Ok(())
}
