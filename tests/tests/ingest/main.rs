//! End-to-end ingest: simulator -> adapter (spool) -> bus -> host (dsmr decoder component)
//! -> readings, events and dead letters on the bus. Against a real nats-server with JetStream
//! (the shared one with a subject root of each test's own, or a private one for fault tests),
//! and over the in-process bus of `ami up`.

#![allow(clippy::expect_used, clippy::panic, clippy::unwrap_used, missing_docs)]

mod faults;
mod pipeline;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ami_adapter::{Adapter, AdapterConfig, SpoolFrame};
use ami_bus::{
    Bus, Consumer, ConsumerSettings, Delivery, LocalBus, NatsBus, ReadingsMessage, StreamKind,
    StreamSettings, Topology, header,
};
use ami_e2e::nats::unique_root;
use ami_ingest::{Ingest, IngestConfig, IngestStats};
use ami_plugin_host::{Host, MemoryKeyStore};
use bytes::Bytes;
use tokio::sync::watch;

/// A host with the shipped dsmr decoder installed.
fn dsmr_host(dir: &std::path::Path) -> Arc<Host> {
    let key = ami_e2e::vendor();
    let host = ami_e2e::host(&[&key], Arc::new(MemoryKeyStore::new()));
    let pkg = ami_e2e::shipped_package(dir, "decoders/dsmr", "ami-decoder-dsmr", &key);
    host.install_dir(&pkg).expect("install dsmr decoder");
    Arc::new(host)
}

/// `meters` DSMR telegrams per tick for `ticks` ticks, as the simulator writes them, with
/// how many readings the native decoder finds in each (the count to expect downstream).
fn telegrams(meters: usize, ticks: usize) -> (Vec<SpoolFrame>, u64) {
    let mut fleet = ami_sim::Fleet::new(meters);
    let mut ts = 1_763_000_000_000i64;
    let mut frames = Vec::new();
    let mut readings = 0u64;
    for _ in 0..ticks {
        ts += 10_000;
        fleet.step(ts, 10_000);
        for m in &fleet.meters {
            let t = ami_sim::dsmr::telegram(m, ts);
            readings += ami_dsmr::decode(t.as_bytes(), ts)
                .expect("simulator telegram decodes natively")
                .readings
                .len() as u64;
            frames.push(SpoolFrame {
                protocol: "dsmr".into(),
                meter_hint: None,
                received_at_ms: ts,
                traceparent: None,
                rssi_dbm: None,
                data: Bytes::from(t.into_bytes()),
            });
        }
    }
    (frames, readings)
}

/// A NATS bus on `url` with streams of a fresh root.
async fn nats_bus(url: &str, tag: &str) -> NatsBus {
    let bus = NatsBus::connect(url, Topology::new(&unique_root(tag)), 4096)
        .await
        .expect("connect to NATS");
    bus.ensure_streams(&StreamSettings::default())
        .await
        .expect("create streams");
    bus
}

/// The running parts of a pipeline.
struct Running {
    stop: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    stats: Vec<Arc<IngestStats>>,
}

impl Running {
    async fn shutdown(self) -> Vec<Arc<IngestStats>> {
        self.stop.send(true).ok();
        for t in self.tasks {
            tokio::time::timeout(Duration::from_secs(20), t)
                .await
                .expect("task stops")
                .expect("task ok");
        }
        self.stats
    }
}

/// Starts the adapter's forwarder and `replicas` ingest replicas.
fn start(bus: &Bus, adapter: &Adapter, host: &Arc<Host>, replicas: usize) -> Running {
    let (stop, rx) = watch::channel(false);
    let mut tasks = Vec::new();
    let mut stats = Vec::new();
    {
        let a = adapter.clone();
        let b = bus.clone();
        let r = rx.clone();
        tasks.push(tokio::spawn(async move { a.forward(b, r).await }));
    }
    for _ in 0..replicas {
        let ingest = Ingest::new(
            bus.clone(),
            Arc::clone(host),
            IngestConfig {
                batch: 200,
                fetch_wait: Duration::from_millis(200),
                ack_wait: Duration::from_secs(5),
                ..IngestConfig::default()
            },
        );
        stats.push(ingest.stats());
        let r = rx.clone();
        tasks.push(tokio::spawn(async move {
            ingest.run(r).await.expect("ingest runs");
        }));
    }
    Running { stop, tasks, stats }
}

/// Everything on a stream, read by a fresh consumer until `want` messages arrived or
/// `timeout` passed with nothing new.
async fn drain(bus: &Bus, kind: StreamKind, want: usize, timeout: Duration) -> Vec<Delivery> {
    let c = bus
        .consumer(
            kind,
            &ConsumerSettings::new(&format!("check-{}", unique_root(""))),
        )
        .await
        .expect("check consumer");
    let mut out = Vec::new();
    let mut last_new = Instant::now();
    while out.len() < want && last_new.elapsed() < timeout {
        let got = c
            .fetch(1000, Duration::from_millis(200))
            .await
            .expect("fetch");
        if !got.is_empty() {
            last_new = Instant::now();
        }
        for d in got {
            out.push(d);
        }
    }
    // Anything beyond `want` would be a duplicate: look a little longer for one.
    let extra = c
        .fetch(1000, Duration::from_millis(300))
        .await
        .expect("fetch");
    out.extend(extra);
    out
}

/// What the readings stream holds, checked against what was sent.
struct ReadingsCheck {
    frames: HashSet<String>,
    readings: u64,
    messages: usize,
    meters: HashMap<String, usize>,
}

fn check_readings(deliveries: &[Delivery]) -> ReadingsCheck {
    let mut c = ReadingsCheck {
        frames: HashSet::new(),
        readings: 0,
        messages: deliveries.len(),
        meters: HashMap::new(),
    };
    for d in deliveries {
        let m = ReadingsMessage::from_message(&d.message).expect("readings message");
        assert!(
            d.message.headers.get(header::TRACEPARENT).is_some(),
            "trace context carried"
        );
        for r in &m.readings {
            r.to_reading().expect("well-formed reading");
        }
        c.readings += m.readings.len() as u64;
        *c.meters.entry(m.meter.clone()).or_default() += 1;
        c.frames.insert(m.frame);
    }
    c
}

/// An adapter sending up to `bundle` frames per message.
fn adapter(name: &str, dir: &std::path::Path, bundle: usize) -> Adapter {
    Adapter::open(
        AdapterConfig {
            bundle,
            ..AdapterConfig::new(name)
        },
        dir,
    )
    .expect("open adapter")
}

/// A consumer of the whole raw stream, made before the frames flow: it keeps them on the
/// in-process bus (which forgets what every consumer has read), and reads them on NATS.
async fn raw_checker(bus: &Bus) -> Consumer {
    bus.consumer(
        StreamKind::Raw,
        &ConsumerSettings::new(&format!("check-raw-{}", unique_root(""))),
    )
    .await
    .expect("raw check consumer")
}

/// The frames `checker` reads off the raw stream (a bundle counts its frames), each id once,
/// and how many messages carried them: proof that nothing was stored twice upstream of the
/// host.
async fn raw_frames_stored(checker: &Consumer, messages: usize) -> (usize, usize) {
    let mut ids = HashSet::new();
    let mut read = 0;
    let mut idle = 0;
    while read < messages && idle < 10 {
        let got = checker
            .fetch(1000, Duration::from_millis(300))
            .await
            .expect("fetch raw");
        idle = if got.is_empty() { idle + 1 } else { 0 };
        for d in got {
            read += 1;
            for f in ami_bus::bundle::frames_of(&d.message).expect("raw message reads") {
                assert!(ids.insert(f.id.clone()), "frame {} stored twice", f.id);
            }
            d.ack().await.expect("ack");
        }
    }
    (ids.len(), read)
}

/// Waits until `f` holds or `timeout` passes.
async fn eventually(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    f()
}

fn local_bus(tag: &str) -> Bus {
    Bus::Local(Arc::new(LocalBus::new(
        Topology::new(&unique_root(tag)),
        10_000,
    )))
}
