//! `ami bench mdms`: readings/s from the bus into PostgreSQL and into the embedded store
//! through the MDMS consumer (one store transaction per fetched batch, acknowledged after
//! commit), each next to the raw bulk-insert rate of the same database on the same rows in the
//! same run (binary `COPY` for PostgreSQL, multi-row `INSERT`s for SQLite), and VEE
//! throughput through the installed Wasm rule pack.

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use ami_bus::{Bus, LocalBus, NatsBus, ReadingsMessage, StreamSettings, Topology, WireReading};
use ami_domain::time::unix_ms;
use ami_domain::{Obis, Quality, Quantity, Reading, Unit};
use ami_mdms::auth::{Principal, Role};
use ami_mdms::vee::RuleSets;
use ami_mdms::{Mdms, ReadingsConsumer};
use ami_mdms_store::{AnyStore, IntervalReading, MeterDataStore, Span, reference};
use ami_plugin_host::MemoryKeyStore;
use anyhow::{Context, Result, bail};
use sqlx::{Connection, Executor};
use tokio::sync::watch;

use crate::paths::PathArgs;
use crate::platform::runtime;

/// Arguments of `ami bench mdms`.
#[derive(clap::Args)]
pub struct MdmsBenchArgs {
    /// PostgreSQL server (a database of the bench's own is made and dropped).
    #[arg(
        long,
        env = "AMI_BENCH_PG",
        default_value = "postgres://postgres@127.0.0.1:5432"
    )]
    pg: String,
    /// NATS server with JetStream; `--local-bus` uses the in-process bus instead.
    #[arg(long, env = "NATS_URL", default_value = "nats://127.0.0.1:4222")]
    nats_url: String,
    /// Use the in-process bus (measures the store path without NATS).
    #[arg(long)]
    local_bus: bool,
    /// Meters.
    #[arg(long, default_value_t = 2000)]
    meters: usize,
    /// Quarter-hour intervals per meter (four registers each).
    #[arg(long, default_value_t = 96)]
    intervals: usize,
    /// Messages per consumer fetch (one store transaction).
    #[arg(long, default_value_t = 1000)]
    batch: usize,
    /// Meters given to the VEE run (a day each).
    #[arg(long, default_value_t = 500)]
    vee_meters: usize,
    /// Skip PostgreSQL.
    #[arg(long)]
    skip_postgres: bool,
}

const REGISTERS: [(Obis, Unit); 4] = [
    (Obis::new(1, 0, 1, 8, 0, 255), Unit::WattHour),
    (Obis::new(1, 0, 2, 8, 0, 255), Unit::WattHour),
    (Obis::new(1, 0, 3, 8, 0, 255), Unit::VarHour),
    (Obis::new(1, 0, 4, 8, 0, 255), Unit::VarHour),
];

/// 2026-10-31T12:00Z: the data crosses a month boundary (two partitions).
const START: i64 = unix_ms(2026, 10, 31, 12, 0, 0);

/// Interval energy per meter, register and interval, as head-ends deliver it: every meter's
/// registers of one interval, then the next interval. One message per meter and interval.
fn data(meters: usize, intervals: usize) -> Vec<(String, Vec<IntervalReading>)> {
    let ids: Vec<String> = (0..meters)
        .map(|m| format!("ESMR-{:010}", 4_530_000_000u64 + m as u64))
        .collect();
    let mut out = Vec::with_capacity(meters * intervals);
    for i in 0..intervals {
        let ts_ms = START + (i as i64 + 1) * 900_000;
        for (m, id) in ids.iter().enumerate() {
            let rows = REGISTERS
                .iter()
                .enumerate()
                .map(|(k, (register, unit))| IntervalReading {
                    meter: id.clone(),
                    reading: Reading {
                        register: *register,
                        value: Quantity::new(((m * 31 + k * 7 + i * 13) % 400) as i64 + 10, 0),
                        unit: *unit,
                        ts_ms,
                        quality: Quality::VALID,
                    },
                })
                .collect();
            out.push((format!("{id}:{i}"), rows));
        }
    }
    out
}

fn message(topology: &Topology, frame: &str, rows: &[IntervalReading]) -> ami_bus::Message {
    ReadingsMessage {
        frame: frame.to_owned(),
        meter: rows[0].meter.clone(),
        protocol: "dlms".into(),
        decoder: "bench@0".into(),
        received_at_ms: rows[0].reading.ts_ms,
        readings: rows.iter().map(|r| WireReading::from(&r.reading)).collect(),
        attributes: Vec::new(),
    }
    .to_message(topology, None)
}

fn rate(n: usize, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64().max(1e-9)
}

fn fmt_rate(r: f64) -> String {
    if r >= 1e6 {
        format!("{:.2}M/s", r / 1e6)
    } else {
        format!("{:.1}k/s", r / 1e3)
    }
}

/// Publishes the messages to a fresh bus, then times the MDMS consumer storing them all.
async fn through_consumer(
    args: &MdmsBenchArgs,
    store: Arc<AnyStore>,
    msgs: &[(String, Vec<IntervalReading>)],
) -> Result<Duration> {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    let root = format!("bench-mdms-{}-{nanos}", std::process::id());
    let topology = Topology::new(&root);
    let bus = if args.local_bus {
        Bus::Local(Arc::new(LocalBus::new(topology.clone(), msgs.len() + 10)))
    } else {
        let nats = NatsBus::connect(&args.nats_url, topology.clone(), 4096)
            .await
            .with_context(|| format!("NATS at {}", args.nats_url))?;
        nats.ensure_streams(&StreamSettings::default()).await?;
        Bus::Nats(nats)
    };
    for chunk in msgs.chunks(5000) {
        let batch = chunk
            .iter()
            .map(|(f, rows)| message(&topology, f, rows))
            .collect();
        bus.publish_batch(batch).await?;
    }
    let consumer = Arc::new(ReadingsConsumer::new(
        bus.clone(),
        store,
        "bench-mdms",
        args.batch,
    ));
    let stats = consumer.stats();
    let (stop, rx) = watch::channel(false);
    let started = Instant::now();
    let task = {
        let c = Arc::clone(&consumer);
        tokio::spawn(async move { c.run(rx).await })
    };
    let total = msgs.len() as u64;
    while stats.messages.load(Ordering::Relaxed) < total {
        if task.is_finished() {
            bail!("the consumer stopped early");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let took = started.elapsed();
    stop.send(true).ok();
    task.await??;
    let rows: usize = msgs.iter().map(|(_, r)| r.len()).sum();
    let inserted = stats.inserted.load(Ordering::Relaxed) as usize;
    if inserted != rows {
        bail!("the MDMS stored {inserted} of {rows} readings");
    }
    if let Bus::Nats(n) = &bus {
        n.delete_streams().await?;
    }
    Ok(took)
}

/// Runs `ami bench mdms`.
pub fn run(args: MdmsBenchArgs, paths: &PathArgs) -> Result<ExitCode> {
    if args.meters == 0 || args.intervals == 0 || args.batch == 0 {
        bail!("--meters, --intervals and --batch must be above zero");
    }
    runtime()?.block_on(async move {
        let msgs = data(args.meters, args.intervals);
        let rows: Vec<IntervalReading> = msgs.iter().flat_map(|(_, r)| r.iter().cloned()).collect();
        println!(
            "ami bench mdms: {} meters x {} intervals x {} registers = {} readings in {} messages, {} messages per store transaction, bus {}",
            args.meters,
            args.intervals,
            REGISTERS.len(),
            rows.len(),
            msgs.len(),
            args.batch,
            if args.local_bus { "in-process".to_owned() } else { format!("NATS JetStream at {}", args.nats_url) }
        );
        if !args.skip_postgres {
            let db = format!("ami_bench_mdms_{}", std::process::id());
            let mut admin = sqlx::PgConnection::connect(&format!("{}/postgres", args.pg)).await.context("PostgreSQL")?;
            admin.execute(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {db}"))).await?;
            admin.execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {db}"))).await?;
            let url = format!("{}/{db}", args.pg);
            let outcome = async {
                let raw = reference::pg_copy(&url, "raw_copy", &rows, args.batch * REGISTERS.len()).await?;
                let store = Arc::new(AnyStore::open(&url, 4).await?);
                store.migrate().await?;
                let mdms = through_consumer(&args, store, &msgs).await?;
                anyhow::Ok((raw, mdms))
            }
            .await;
            admin.execute(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"))).await?;
            let (raw, mdms) = outcome?;
            let (r, m) = (rate(rows.len(), raw), rate(rows.len(), mdms));
            println!("PostgreSQL");
            println!("  raw binary COPY, plain table with primary key   {:>12}", fmt_rate(r));
            println!("  MDMS ingest (bus -> consumer -> store)           {:>12}   {:.2} of raw", fmt_rate(m), m / r);
        }
        let dir = tempfile::tempdir()?;
        let raw = reference::sqlite_insert(&dir.path().join("raw.db"), &rows, 10_000).await?;
        let store = Arc::new(AnyStore::open(&format!("sqlite:{}", dir.path().join("mdms.db").display()), 4).await?);
        store.migrate().await?;
        let mdms = through_consumer(&args, Arc::clone(&store), &msgs).await?;
        let (r, m) = (rate(rows.len(), raw), rate(rows.len(), mdms));
        println!("SQLite (embedded store, WAL)");
        println!("  raw INSERTs, plain table with primary key        {:>12}", fmt_rate(r));
        println!("  MDMS ingest (bus -> consumer -> store)           {:>12}   {:.2} of raw", fmt_rate(m), m / r);

        // VEE: a day of each of the first meters, import register, through the rule pack.
        let host = Arc::new(paths.host(Arc::new(MemoryKeyStore::new()))?);
        let rules = RuleSets::standard();
        let missing: Vec<&str> = rules
            .rule_ids()
            .into_iter()
            .filter(|r| host.plugin_for_rule(ami_plugin_host::PluginKind::VeeRule, r).is_none())
            .collect();
        if !missing.is_empty() {
            bail!("no installed rule pack serves {} (run `cargo xtask components`)", missing.join(", "));
        }
        let rule_count = rules.for_class("default").len();
        let mdms = Mdms::new(store, host, rules, 0);
        let who = Principal { name: "bench".into(), roles: [Role::Operator].into() };
        let meters: Vec<String> = msgs.iter().take(args.vee_meters.min(args.meters)).map(|(_, r)| r[0].meter.clone()).collect();
        let started = Instant::now();
        let report = mdms
            .run_vee(&who, &meters, REGISTERS[0].0, Span::new(START, START + args.intervals as i64 * 900_000))
            .await?;
        let took = started.elapsed();
        println!("VEE, standard rule set ({rule_count} rules) through the Wasm rule pack");
        println!(
            "  store read + rules + findings written            {:>12}   ({} series, {} intervals, {} exceptions, {} estimates)",
            fmt_rate(rate(report.intervals as usize, took)),
            report.series,
            report.intervals,
            report.exceptions,
            report.estimates
        );
        Ok(ExitCode::SUCCESS)
    })
}
