//! The production pinger: outage pings are on-demand reads through the command engine, carried
//! by the in-process bus to an adapter's downlink whose meters answer or not. A meter answers
//! when its read is confirmed within the timeout; one that is silent, or whose link fails, does
//! not; one without a route cannot be pinged. Over the outage detector, a lone last gasp from a
//! meter that still answers is refuted, one from a silent meter is confirmed.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use ami_adapter::{Downlink, DownlinkConfig, LinkError, MeterLink};
use ami_bus::command::{AckResult, CommandKind};
use ami_bus::{Bus, EventMessage, LocalBus, Topology};
use ami_commands::{Engine, EngineConfig, MemoryStore, RetryPolicy, SegmentLimit};
use ami_hes::commands::{CommandPinger, Commands};
use ami_hes::outage::OutageScope;
use ami_hes::{EventHub, Meter, OutageConfig, OutageDetector, RegistryStore, SqliteStore};
use tokio::sync::watch;

const ADAPTER: &str = "a1";

/// Meters whose name starts with `up-` answer reads; `silent-` ones never answer (no supply:
/// their reads expire); `broken-` ones fail at once on the link (their reads fail after the
/// retries).
#[derive(Default)]
struct Grid {
    reads: AtomicU32,
}

impl MeterLink for Grid {
    async fn execute(&self, meter: &str, command: &CommandKind) -> Result<AckResult, LinkError> {
        self.reads.fetch_add(1, Ordering::Relaxed);
        if *command != CommandKind::ReadNow {
            return Err(LinkError::Unsupported(command.name().into()));
        }
        if meter.starts_with("silent-") {
            std::future::pending::<()>().await;
        }
        if meter.starts_with("broken-") {
            return Err(LinkError::Unreachable("no carrier".into()));
        }
        Ok(AckResult::Read {
            frame: meter.as_bytes().to_vec(),
            relay_closed: Some(true),
        })
    }
}

fn engine_config() -> EngineConfig {
    EngineConfig {
        retry: RetryPolicy {
            ack_timeout: Duration::from_millis(800),
            first_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(300),
            max_attempts: 3,
        },
        default_deadline: Duration::from_secs(60),
        tick: Duration::from_millis(50),
        segment_limit: SegmentLimit {
            burst: 100,
            per_second: 100.0,
        },
        durable: "hes-acks".into(),
    }
}

/// The engine and the adapter's downlink running over an in-process bus.
struct Running {
    commands: Arc<Commands>,
    link: Arc<Grid>,
    stop: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Running {
    async fn start() -> Running {
        let bus = Bus::Local(Arc::new(LocalBus::new(Topology::new("ping"), 10_000)));
        let key = ed25519_dalek::SigningKey::generate(&mut rand_core::OsRng);
        let engine = Engine::new(MemoryStore::new(), bus.clone(), key, engine_config());
        let mut cfg = DownlinkConfig::new(ADAPTER, vec![engine.verifying_key()]);
        // Longer than the pings' timeout allows for retries: a silent meter's read expires.
        cfg.link_timeout = Duration::from_millis(1500);
        let link = Arc::new(Grid::default());
        let downlink = Arc::new(Downlink::new(cfg, Arc::clone(&link)));
        let commands = Arc::new(Commands::Memory(engine));
        let (stop, rx) = watch::channel(false);
        let mut tasks = Vec::new();
        {
            let (c, rx) = (Arc::clone(&commands), rx.clone());
            tasks.push(tokio::spawn(async move { c.run(rx).await.unwrap() }));
        }
        tasks.push(tokio::spawn(async move { downlink.run(bus, rx).await }));
        // Both consumers exist before anything is sent (the in-process bus keeps only what a
        // consumer has still to read).
        tokio::time::sleep(Duration::from_millis(200)).await;
        Running {
            commands,
            link,
            stop,
            tasks,
        }
    }

    async fn stop(self) {
        let _ = self.stop.send(true);
        for t in self.tasks {
            t.await.unwrap();
        }
    }
}

fn routed(serial: &str, transformer: &str) -> Meter {
    let mut m = common::meter(serial, "F1", transformer);
    m.adapter = ADAPTER.into();
    m
}

fn set(names: &[&str]) -> HashSet<String> {
    names.iter().map(|s| (*s).to_owned()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn meters_that_answer_the_read_in_time_are_the_ones_answered() {
    let r = Running::start().await;
    let timeout = Duration::from_secs(2);
    let pinger = CommandPinger::new(Arc::clone(&r.commands), timeout);
    let mut unrouted = routed("up-nowhere", "T1");
    unrouted.adapter.clear();
    let meters = vec![
        routed("up-1", "T1"),
        routed("silent-1", "T1"),
        routed("up-2", "T1"),
        routed("broken-1", "T1"),
        routed("silent-2", "T1"),
        unrouted,
    ];
    let started = Instant::now();
    let answered = pinger.ping_meters(&meters).await;
    let took = started.elapsed();
    assert_eq!(answered, set(&["up-1", "up-2"]));
    assert!(
        took >= Duration::from_millis(1900) && took < timeout + Duration::from_secs(1),
        "waited for the silent meters until the timeout, no longer: {took:?}"
    );
    // Every routed meter was asked; the one without a route was not.
    assert!(r.link.reads.load(Ordering::Relaxed) >= 5);

    // All answering: the ping returns as soon as the reads are confirmed.
    let started = Instant::now();
    let answered = pinger
        .ping_meters(&[routed("up-3", "T1"), routed("up-4", "T1")])
        .await;
    assert_eq!(answered, set(&["up-3", "up-4"]));
    assert!(started.elapsed() < Duration::from_millis(1500));
    assert!(pinger.ping_meters(&[]).await.is_empty());
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_detector_confirms_outages_with_on_demand_reads() {
    let r = Running::start().await;
    let store = Arc::new(SqliteStore::in_memory().await.unwrap());
    store.migrate().await.unwrap();
    common::register(
        store.as_ref(),
        vec![
            routed("up-1", "T1"),
            routed("up-2", "T1"),
            routed("silent-1", "T2"),
            routed("up-3", "T2"),
        ],
    )
    .await;
    let pinger = CommandPinger::new(Arc::clone(&r.commands), Duration::from_secs(2));
    let det = Arc::new(OutageDetector::new(
        store.clone(),
        Arc::new(pinger),
        OutageConfig::default(),
    ));
    let hub = EventHub::new(store.clone(), det.clone());
    let t0 = 1_700_000_000_000;
    let gasp = |m: &str| EventMessage {
        frame: format!("{m}:gasp"),
        meter: m.into(),
        kind: "last-gasp".into(),
        ts_ms: t0,
        code: 0,
        source: None,
        duration_s: 0,
    };
    // up-1 sent a last gasp but still answers; silent-1 does not.
    hub.ingest(&[gasp("up-1"), gasp("silent-1")]).await.unwrap();
    det.tick(t0 + 61_000).await.unwrap();
    let active = det.outages(true).await.unwrap();
    assert_eq!(active.len(), 1, "{active:#?}");
    assert_eq!(
        (active[0].scope, active[0].node.as_str()),
        (OutageScope::Meter, "silent-1")
    );
    r.stop().await;
}
