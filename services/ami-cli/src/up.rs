//! `ami up`: the platform on one machine.
//!
//! The meter fleet simulator (DSMR, DLMS, wireless M-Bus and IEC 62056-21 meters, ciphered
//! where the protocol allows, with their keys in the host's key store) feeds an adapter, whose
//! spool forwards the frames to the bus; the ingest role decodes them with the installed
//! decoder components; the MDMS role stores every reading in its embedded store (SQLite under
//! `AMI_HOME`, or `--mdms-store`) and serves `ami.mdms.v1` over gRPC; a readings consumer keeps
//! the latest value per meter and register for the status line, and events and dead letters are
//! counted and shown. Without `NATS_URL` everything runs over the
//! in-process bus; with it, the same roles use NATS JetStream (and `nats sub 'ami.>'` shows the
//! traffic).

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ami_adapter::{Adapter, AdapterConfig, SpoolFrame};
use ami_bus::{Bus, ConsumerSettings, EventMessage, ReadingsMessage, StreamKind, header};
use ami_ingest::{Ingest, IngestConfig};
use ami_mdms::auth::Auth;
use ami_mdms::server::{Api, serve};
use ami_mdms::vee::RuleSets;
use ami_mdms::{ConsumeStats, Mdms, ReadingsConsumer};
use ami_mdms_store::{AnyStore, MeterDataStore};
use ami_plugin_host::MemoryKeyStore;
use ami_sim::{Fleet, FleetConfig};
use anyhow::{Context, Result, bail};
use tokio::sync::watch;

use crate::decode_cmd::now_ms;
use crate::paths::{PathArgs, ami_home};
use crate::platform::{BusArgs, runtime, stop_on_signal};

/// Arguments of `ami up`.
#[derive(clap::Args)]
pub struct UpArgs {
    /// Virtual meters in the fleet (an even mix of DSMR, DLMS, wM-Bus and IEC 62056-21).
    #[arg(long, default_value_t = 1000)]
    meters: usize,
    /// Only DSMR meters.
    #[arg(long)]
    dsmr_only: bool,
    /// Simulated seconds per tick (each meter reports once per tick).
    #[arg(long, default_value_t = 900)]
    step_s: u32,
    /// Ticks per wall-clock second.
    #[arg(long, default_value_t = 1.0)]
    rate: f64,
    /// Stop after this many ticks (0: run until Ctrl-C).
    #[arg(long, default_value_t = 0)]
    ticks: u64,
    /// Seed of the fleet.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Write the plugins' and pipeline's counters (OpenMetrics text) to this file every tick.
    #[arg(long)]
    metrics_file: Option<std::path::PathBuf>,
    /// Where the MDMS role serves `ami.mdms.v1` (open, one machine; port 0 picks a free one).
    #[arg(long, default_value = "127.0.0.1:50052")]
    mdms_listen: SocketAddr,
    /// The MDMS role's store: postgres://user@host/db or sqlite:<path>
    /// [default: sqlite:$AMI_HOME/mdms.db].
    #[arg(long, env = "AMI_MDMS_STORE")]
    mdms_store: Option<String>,
    #[command(flatten)]
    bus: BusArgs,
}

/// What the embedded readings consumer keeps.
#[derive(Default)]
struct Store {
    readings: u64,
    latest: HashMap<String, BTreeMap<String, (String, i64)>>,
    events: BTreeMap<String, u64>,
    dead: u64,
    dead_reasons: Vec<String>,
}

/// Runs `ami up`.
pub fn run(args: UpArgs, paths: &PathArgs) -> Result<ExitCode> {
    if args.meters == 0 || args.step_s == 0 {
        bail!("--meters and --step-s must be above zero");
    }
    if !(args.rate.is_finite() && (0.001..=1000.0).contains(&args.rate)) {
        bail!("--rate must be between 0.001 and 1000 ticks per second");
    }
    runtime()?.block_on(up(args, paths))
}

fn lock(s: &Mutex<Store>) -> std::sync::MutexGuard<'_, Store> {
    s.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

async fn up(args: UpArgs, paths: &PathArgs) -> Result<ExitCode> {
    let mut config = if args.dsmr_only {
        FleetConfig::dsmr(args.meters)
    } else {
        FleetConfig {
            meters: args.meters,
            ..FleetConfig::default()
        }
    };
    config.seed = args.seed;
    let mut fleet = Fleet::with_config(&config).context("fleet configuration")?;
    let keys = Arc::new(MemoryKeyStore::new());
    for (meter, role, key) in fleet.key_entries() {
        keys.insert(&meter, role, key);
    }
    let host = Arc::new(paths.host(keys)?);
    let mut protocols: Vec<&str> = fleet.meters.iter().map(|m| m.protocol.name()).collect();
    protocols.sort_unstable();
    protocols.dedup();
    for p in &protocols {
        if host.decoder_for(p).is_none() {
            bail!("no installed decoder for {p} (run `cargo xtask components`)");
        }
    }
    let bus = args.bus.connect(200_000).await?;
    let spool_dir = ami_home().join("spool").join("sim-1");
    // The simulated fleet is a concentrator's worth of meters: its frames go bundled.
    let adapter_config = AdapterConfig {
        bundle: 64,
        ..AdapterConfig::new("sim-1")
    };
    let adapter = Adapter::open(adapter_config, &spool_dir)
        .with_context(|| format!("spool {}", spool_dir.display()))?;
    let where_bus = match &args.bus.nats_url {
        Some(url) => format!(
            "NATS JetStream at {url} (streams {}_*; watch with `nats sub '{}.>'`)",
            bus.topology()
                .stream(StreamKind::Raw)
                .trim_end_matches("_RAW"),
            bus.topology().root()
        ),
        None => "the in-process bus (set NATS_URL to use NATS JetStream)".into(),
    };
    println!(
        "ami up: {} simulated meters ({}) -> adapter sim-1 (spool {}) -> {where_bus}",
        args.meters,
        protocols.join(", "),
        spool_dir.display()
    );
    println!(
        "  -> ingest with decoder components: {}",
        host.plugins()
            .iter()
            .filter(|p| protocols
                .iter()
                .any(|x| p.manifest().protocols.iter().any(|y| y == x)))
            .map(|p| format!("{}@{}", p.manifest().name, p.manifest().version))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!(
        "  -> readings, events, dead letters on {}.readings.<meter>, {}.events.<kind>.<meter>, {}.dead.<protocol>.<adapter>",
        bus.topology().root(),
        bus.topology().root(),
        bus.topology().root()
    );
    let (stop_tx, stop) = stop_on_signal();
    let mdms = start_mdms(&args, &bus, &host, &stop).await?;
    println!(
        "  -> MDMS: readings stored in {} (VEE and billing over the stored data); gRPC ami.mdms.v1 on {} (open on this machine; reflection on): `grpcurl -plaintext {} list`",
        mdms.store_url, mdms.addr, mdms.addr
    );
    println!("  one status line per tick; Ctrl-C stops (or --ticks N)");

    let store = Arc::new(Mutex::new(Store::default()));
    let ingest = Ingest::new(bus.clone(), Arc::clone(&host), IngestConfig::default());
    let ingest_stats = ingest.stats();
    let mut tasks = mdms.tasks;
    let mdms_stats = mdms.stats;
    {
        let (a, b, s) = (adapter.clone(), bus.clone(), stop.clone());
        tasks.push(tokio::spawn(async move { a.forward(b, s).await }));
    }
    {
        let s = stop.clone();
        tasks.push(tokio::spawn(async move {
            if let Err(e) = ingest.run(s).await {
                eprintln!("ami up: ingest stopped: {e}");
            }
        }));
    }
    tasks.push(tokio::spawn(consume_outputs(
        bus.clone(),
        Arc::clone(&store),
        stop.clone(),
    )));

    let step_ms = i64::from(args.step_s) * 1000;
    let mut sim_ms = now_ms() / step_ms * step_ms;
    let period = Duration::from_secs_f64(1.0 / args.rate);
    let started = Instant::now();
    let mut tick = 0u64;
    let mut sent = 0u64;
    let mut stop_watch = stop.clone();
    while (args.ticks == 0 || tick < args.ticks) && !*stop.borrow() {
        let due = tokio::time::Instant::from_std(started + period.mul_f64(tick as f64));
        tokio::select! {
            () = tokio::time::sleep_until(due) => {}
            _ = stop_watch.changed() => break,
        }
        sim_ms += step_ms;
        let t = fleet.tick(sim_ms, step_ms);
        let frames: Vec<SpoolFrame> = t.uplinks.into_iter().map(SpoolFrame::from).collect();
        sent += frames.len() as u64;
        if let Err(e) = adapter.accept(frames) {
            eprintln!("ami up: adapter refused frames: {e}");
        }
        status(
            tick,
            sim_ms,
            sent,
            &adapter,
            &ingest_stats,
            &store,
            &mdms_stats,
        );
        if let Some(path) = &args.metrics_file {
            let text = format!(
                "{}{}{}",
                host.metrics_text(),
                ingest_stats.openmetrics(),
                adapter.metrics_text()
            );
            let tmp = path.with_extension("tmp");
            std::fs::write(&tmp, text)
                .and_then(|()| std::fs::rename(&tmp, path))
                .with_context(|| format!("cannot write metrics to {}", path.display()))?;
        }
        tick += 1;
    }
    // Let the pipeline drain what was sent (bounded), then stop every role.
    let drain_until = Instant::now() + Duration::from_secs(10);
    while !*stop.borrow() && Instant::now() < drain_until {
        let handled = ingest_stats.decoded.load(Ordering::Relaxed)
            + ingest_stats.dead.load(Ordering::Relaxed);
        let done = handled >= sent
            && mdms_stats.readings.load(Ordering::Relaxed)
                >= ingest_stats.readings.load(Ordering::Relaxed)
            && {
                let s = lock(&store);
                s.dead >= ingest_stats.dead.load(Ordering::Relaxed)
                    && s.readings >= ingest_stats.readings.load(Ordering::Relaxed)
            };
        if done && adapter.pending() == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = stop_tx.send(true);
    for t in tasks {
        let _ = tokio::time::timeout(Duration::from_secs(10), t).await;
    }
    let s = lock(&store);
    println!(
        "stopped: {sent} frames sent, {} decoded into {} readings of {} meters, {} events, {} dead letters",
        ingest_stats.decoded.load(Ordering::Relaxed),
        s.readings,
        s.latest.len(),
        s.events.values().sum::<u64>(),
        s.dead
    );
    println!(
        "mdms: {} readings stored ({} new, {} already stored, {} versions) in {}, {} dead letters",
        mdms_stats.readings.load(Ordering::Relaxed),
        mdms_stats.inserted.load(Ordering::Relaxed),
        mdms_stats.duplicates.load(Ordering::Relaxed),
        mdms_stats.conflicts.load(Ordering::Relaxed),
        mdms.store_url,
        mdms_stats.dead.load(Ordering::Relaxed),
    );
    Ok(ExitCode::SUCCESS)
}

/// The MDMS role of `ami up`, running.
struct MdmsRole {
    store_url: String,
    addr: SocketAddr,
    stats: Arc<ConsumeStats>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

/// Opens the MDMS store, starts its readings consumer and its gRPC API (both stop with `stop`).
async fn start_mdms(
    args: &UpArgs,
    bus: &Bus,
    host: &Arc<ami_plugin_host::Host>,
    stop: &watch::Receiver<bool>,
) -> Result<MdmsRole> {
    let store_url = match &args.mdms_store {
        Some(s) => s.clone(),
        None => {
            let home = ami_home();
            std::fs::create_dir_all(&home)
                .with_context(|| format!("creating {}", home.display()))?;
            format!("sqlite:{}", home.join("mdms.db").display())
        }
    };
    let shown = store_url
        .split('@')
        .next_back()
        .unwrap_or(&store_url)
        .to_owned();
    let store = Arc::new(
        AnyStore::open(&store_url, 8)
            .await
            .with_context(|| format!("opening the MDMS store {shown}"))?,
    );
    store.migrate().await.context("migrating the MDMS store")?;
    let mdms = Arc::new(Mdms::new(
        Arc::clone(&store),
        Arc::clone(host),
        RuleSets::standard(),
        28,
    ));
    let consumer = ReadingsConsumer::new(bus.clone(), store, "ami-up-mdms", 1000);
    let stats = consumer.stats();
    let listener = tokio::net::TcpListener::bind(args.mdms_listen)
        .await
        .with_context(|| format!("MDMS gRPC on {}", args.mdms_listen))?;
    let addr = listener.local_addr()?;
    let consuming = {
        let stop = stop.clone();
        tokio::spawn(async move {
            if let Err(e) = consumer.run(stop).await {
                eprintln!("ami up: MDMS consumer stopped: {e}");
            }
        })
    };
    let serving = {
        let mut stop = stop.clone();
        let shutdown = async move {
            let _ = stop.wait_for(|s| *s).await;
        };
        tokio::spawn(async move {
            if let Err(e) = serve(Api::new(mdms, Auth::Open), listener, shutdown).await {
                eprintln!("ami up: MDMS API stopped: {e}");
            }
        })
    };
    Ok(MdmsRole {
        store_url: shown,
        addr,
        stats,
        tasks: vec![consuming, serving],
    })
}

fn status(
    tick: u64,
    sim_ms: i64,
    sent: u64,
    adapter: &Adapter,
    ingest: &ami_ingest::IngestStats,
    store: &Mutex<Store>,
    mdms: &ConsumeStats,
) {
    let s = lock(store);
    let sample = s
        .latest
        .iter()
        .min_by_key(|(m, _)| m.as_str())
        .and_then(|(m, regs)| {
            regs.iter()
                .find(|(r, _)| r.starts_with("1-0:1.8.") || r.starts_with("1-0:1.7.0"))
                .map(|(r, (v, _))| format!(" | {m} {r} = {v}"))
        })
        .unwrap_or_default();
    let events = if s.events.is_empty() {
        String::new()
    } else {
        format!(
            " ({})",
            s.events
                .iter()
                .map(|(k, n)| format!("{k} {n}"))
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    println!(
        "tick {tick:>4} {} | sent {sent} spooled {} decoded {} readings {} stored {} events {}{events} dead {} | meters {}{sample}",
        ami_domain::time::rfc3339(sim_ms),
        adapter.pending(),
        ingest.decoded.load(Ordering::Relaxed),
        s.readings,
        mdms.readings.load(Ordering::Relaxed),
        s.events.values().sum::<u64>(),
        s.dead,
        s.latest.len(),
    );
    for r in &s.dead_reasons {
        println!("    dead letter: {r}");
    }
}

/// The embedded consumer of readings, events and dead letters.
async fn consume_outputs(bus: Bus, store: Arc<Mutex<Store>>, stop: watch::Receiver<bool>) {
    let open = |kind, name: &str| {
        let bus = bus.clone();
        let settings = ConsumerSettings::new(name);
        async move { bus.consumer(kind, &settings).await }
    };
    let (Ok(readings), Ok(events), Ok(dead)) = (
        open(StreamKind::Readings, "ami-up-store").await,
        open(StreamKind::Events, "ami-up-events").await,
        open(StreamKind::Dead, "ami-up-dead").await,
    ) else {
        eprintln!("ami up: cannot open the output consumers");
        return;
    };
    while !*stop.borrow() {
        let wait = Duration::from_millis(100);
        if let Ok(batch) = readings.fetch(2000, wait).await {
            {
                let mut s = lock(&store);
                for d in &batch {
                    if let Ok(m) = ReadingsMessage::from_message(&d.message) {
                        s.readings += m.readings.len() as u64;
                        let regs = s.latest.entry(m.meter.clone()).or_default();
                        for r in &m.readings {
                            let value = match r.to_reading() {
                                Ok(x) => format!("{} {}", x.value, x.unit),
                                Err(_) => continue,
                            };
                            regs.insert(r.register.clone(), (value, r.ts_ms));
                        }
                    }
                }
            }
            for d in batch {
                let _ = d.ack().await;
            }
        }
        if let Ok(batch) = events.fetch(1000, Duration::ZERO).await {
            {
                let mut s = lock(&store);
                for d in &batch {
                    if let Ok(e) = EventMessage::from_message(&d.message) {
                        *s.events.entry(e.kind).or_default() += 1;
                    }
                }
            }
            for d in batch {
                let _ = d.ack().await;
            }
        }
        if let Ok(batch) = dead.fetch(1000, Duration::ZERO).await {
            {
                let mut s = lock(&store);
                s.dead_reasons.clear();
                for d in &batch {
                    s.dead += 1;
                    if s.dead_reasons.len() < 3 {
                        let h = &d.message.headers;
                        s.dead_reasons.push(format!(
                            "{} {}: {}",
                            h.get(header::PROTOCOL).unwrap_or("?"),
                            h.get(header::DEAD_KIND).unwrap_or("?"),
                            h.get(header::DEAD_REASON).unwrap_or("?")
                        ));
                    }
                }
            }
            for d in batch {
                let _ = d.ack().await;
            }
        }
    }
}
