//! `ami bench ingest`: frames/s and readings/s end to end through NATS JetStream (adapter
//! spool -> NATS -> host decoding with the components -> readings on NATS), where the time
//! goes per stage, and, in the same run, the raw JetStream publish and consume rates of this
//! machine on the same frames, for comparison.

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use ami_adapter::{Adapter, AdapterConfig, SpoolFrame};
use ami_bus::{
    Bus, ConsumerSettings, Message, NatsBus, RawFrame, StreamKind, StreamSettings, Topology,
};
use ami_ingest::{Ingest, IngestConfig};
use ami_plugin_host::MemoryKeyStore;
use ami_sim::{Fleet, FleetConfig};
use anyhow::{Context, Result, bail};
use bytes::Bytes;
use tokio::sync::watch;

use crate::paths::PathArgs;
use crate::platform::runtime;

/// Arguments of `ami bench ingest`.
#[derive(clap::Args)]
pub struct IngestBenchArgs {
    /// NATS server with JetStream.
    #[arg(long, env = "NATS_URL", default_value = "nats://127.0.0.1:4222")]
    nats_url: String,
    /// Frames to send.
    #[arg(long, default_value_t = 100_000)]
    frames: usize,
    /// Meters in the simulated fleet (each sends one frame per tick).
    #[arg(long, default_value_t = 2000)]
    meters: usize,
    /// Only DSMR meters (else an even mix of DSMR, DLMS, wM-Bus and IEC 62056-21).
    #[arg(long)]
    dsmr_only: bool,
    /// Frames per batch: adapter publish, host fetch.
    #[arg(long, default_value_t = 1000)]
    batch: usize,
    /// Host replicas (tasks in this process sharing the durable consumer).
    #[arg(long, default_value_t = 1)]
    replicas: usize,
}

fn rate(n: usize, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64().max(1e-9)
}

/// Runs `ami bench ingest`.
pub fn run(args: IngestBenchArgs, paths: &PathArgs) -> Result<ExitCode> {
    if args.frames == 0 || args.meters == 0 || args.batch == 0 || args.replicas == 0 {
        bail!("--frames, --meters, --batch and --replicas must be above zero");
    }
    runtime()?.block_on(bench(args, paths))
}

async fn bench(args: IngestBenchArgs, paths: &PathArgs) -> Result<ExitCode> {
    // The frames: the simulator's fleet, ticked until there are enough.
    let mut config = if args.dsmr_only {
        FleetConfig::dsmr(args.meters)
    } else {
        FleetConfig {
            meters: args.meters,
            ..FleetConfig::default()
        }
    };
    config.seed = 7;
    let mut fleet = Fleet::with_config(&config)?;
    let keys = Arc::new(MemoryKeyStore::new());
    for (meter, role, key) in fleet.key_entries() {
        keys.insert(&meter, role, key);
    }
    let host = Arc::new(paths.host(keys)?);
    let mut frames = Vec::with_capacity(args.frames);
    let mut ts = 1_763_000_000_000i64;
    while frames.len() < args.frames {
        ts += 900_000;
        for u in fleet.tick(ts, 900_000).uplinks {
            if frames.len() < args.frames {
                frames.push(SpoolFrame {
                    protocol: u.protocol.name().to_owned(),
                    meter_hint: None,
                    received_at_ms: u.ts_ms,
                    traceparent: None,
                    rssi_dbm: None,
                    data: Bytes::from(u.bytes),
                });
            }
        }
    }
    let n = frames.len();
    let bytes: usize = frames.iter().map(|f| f.data.len()).sum();
    println!(
        "ami bench ingest: {n} frames ({} bytes on average) from {} simulated meters{}, NATS at {}",
        bytes / n,
        args.meters,
        if args.dsmr_only {
            " (DSMR)"
        } else {
            " (DSMR, DLMS, wM-Bus, IEC 62056-21)"
        },
        args.nats_url
    );
    let root = format!("bench{}", std::process::id());

    // 1. Raw JetStream: publish the same frames (pipelined acks, same batch), then consume them
    //    with a pull consumer (fetch batches, ack each).
    let raw_bus =
        NatsBus::connect(&args.nats_url, Topology::new(&format!("{root}raw")), 4096).await?;
    raw_bus.ensure_streams(&StreamSettings::default()).await?;
    let topo = raw_bus.topology().clone();
    let msgs: Vec<Message> = frames
        .iter()
        .enumerate()
        .map(|(i, f)| {
            RawFrame {
                id: format!("raw:{i}"),
                protocol: f.protocol.clone(),
                adapter: "bench".into(),
                meter_hint: None,
                received_at_ms: f.received_at_ms,
                traceparent: None,
                rssi_dbm: None,
                data: f.data.clone(),
            }
            .to_message(&topo)
        })
        .collect();
    let t = Instant::now();
    for chunk in msgs.chunks(args.batch) {
        raw_bus.publish_batch(chunk.to_vec()).await?;
    }
    let raw_publish = t.elapsed();
    let consumer = raw_bus
        .consumer(StreamKind::Raw, &ConsumerSettings::new("bench-raw"))
        .await?;
    let t = Instant::now();
    let mut got = 0;
    while got < n {
        let batch = consumer.fetch(args.batch, Duration::from_secs(2)).await?;
        if batch.is_empty() {
            bail!("raw consume stalled at {got} of {n}");
        }
        got += batch.len();
        for d in batch {
            d.ack().await?;
        }
    }
    let raw_consume = t.elapsed();
    raw_bus.delete_streams().await?;

    // 2. End to end: adapter spool -> NATS -> host -> readings on NATS.
    let nats = NatsBus::connect(&args.nats_url, Topology::new(&format!("{root}e2e")), 4096).await?;
    nats.ensure_streams(&StreamSettings::default()).await?;
    let bus = Bus::Nats(nats.clone());
    let spool = tempfile::tempdir().context("spool dir")?;
    let adapter = Adapter::open(
        AdapterConfig {
            batch: args.batch,
            ..AdapterConfig::new("bench")
        },
        spool.path(),
    )?;
    let t = Instant::now();
    for chunk in frames.chunks(args.batch) {
        adapter.accept(chunk.to_vec())?;
    }
    let spool_append = t.elapsed();
    let (stop_tx, stop) = watch::channel(false);
    let mut stats = Vec::new();
    let mut tasks = Vec::new();
    let t = Instant::now();
    {
        let (a, b, s) = (adapter.clone(), bus.clone(), stop.clone());
        tasks.push(tokio::spawn(async move { a.forward(b, s).await }));
    }
    for _ in 0..args.replicas {
        let ingest = Ingest::new(
            bus.clone(),
            Arc::clone(&host),
            IngestConfig {
                durable: "bench-host".into(),
                batch: args.batch,
                ..IngestConfig::default()
            },
        );
        stats.push(ingest.stats());
        let s = stop.clone();
        tasks.push(tokio::spawn(async move {
            let _ = ingest.run(s).await;
        }));
    }
    let mut forwarded_at = None;
    loop {
        tokio::time::sleep(Duration::from_millis(20)).await;
        if forwarded_at.is_none() && adapter.pending() == 0 {
            forwarded_at = Some(t.elapsed());
        }
        let handled: u64 = stats
            .iter()
            .map(|s| s.decoded.load(Ordering::Relaxed) + s.dead.load(Ordering::Relaxed))
            .sum();
        if handled >= n as u64 {
            break;
        }
        if t.elapsed() > Duration::from_secs(600) {
            bail!("end to end stalled at {handled} of {n} frames");
        }
    }
    let e2e = t.elapsed();
    let _ = stop_tx.send(true);
    for task in tasks {
        let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
    }
    let readings_msgs = nats.stream_messages(StreamKind::Readings).await?;
    let dead_msgs = nats.stream_messages(StreamKind::Dead).await?;
    nats.delete_streams().await?;

    let sum = |f: fn(&ami_ingest::IngestStats) -> u64| stats.iter().map(|s| f(s)).sum::<u64>();
    let readings = sum(|s| s.readings.load(Ordering::Relaxed));
    let decoded = sum(|s| s.decoded.load(Ordering::Relaxed));
    let ms = |ns: u64| ns as f64 / 1e6;
    println!();
    println!("| path | frames | seconds | frames/s | readings/s |");
    println!("| --- | ---: | ---: | ---: | ---: |");
    println!(
        "| raw JetStream publish (batches of {}, pipelined acks) | {n} | {:.2} | {:.0} | |",
        args.batch,
        raw_publish.as_secs_f64(),
        rate(n, raw_publish)
    );
    println!(
        "| raw JetStream pull consume (fetch {}, ack each) | {n} | {:.2} | {:.0} | |",
        args.batch,
        raw_consume.as_secs_f64(),
        rate(n, raw_consume)
    );
    println!(
        "| adapter spool append (fsync per batch) | {n} | {:.2} | {:.0} | |",
        spool_append.as_secs_f64(),
        rate(n, spool_append)
    );
    println!(
        "| **end to end**: spool -> NATS -> host ({} replica{}) -> readings on NATS | {n} | {:.2} | {:.0} | {:.0} |",
        args.replicas,
        if args.replicas == 1 { "" } else { "s" },
        e2e.as_secs_f64(),
        rate(n, e2e),
        rate(readings as usize, e2e)
    );
    let slower_raw = rate(n, raw_publish).min(rate(n, raw_consume));
    println!();
    println!(
        "end to end / slower raw path (min of publish, consume) = {:.2}; frames decoded {decoded}, readings {readings}, readings messages stored {readings_msgs}, dead letters {dead_msgs}",
        rate(n, e2e) / slower_raw
    );
    if let Some(f) = forwarded_at {
        println!(
            "adapter had forwarded everything after {:.2} s",
            f.as_secs_f64()
        );
    }
    println!(
        "host time per stage (summed over replicas): fetch {:.0} ms, decode {:.0} ms, publish outputs {:.0} ms, ack {:.0} ms",
        ms(sum(|s| s.fetch_ns.load(Ordering::Relaxed))),
        ms(sum(|s| s.decode_ns.load(Ordering::Relaxed))),
        ms(sum(|s| s.publish_ns.load(Ordering::Relaxed))),
        ms(sum(|s| s.ack_ns.load(Ordering::Relaxed))),
    );
    Ok(ExitCode::SUCCESS)
}
