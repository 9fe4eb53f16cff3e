//! `ami bench ingest`: frames/s and readings/s end to end through NATS JetStream (adapter
//! spool -> NATS -> host decoding with the components -> readings on NATS), where the time
//! goes per stage, and, in the same run, the raw JetStream publish and consume rates of this
//! machine on the same frames, for comparison, and the broker's own ceiling for this pipeline:
//! the same NATS work as end to end (publish the frames, consume them, publish the very readings
//! messages end to end produced, ack) with no decoding at all.

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
    /// Most frames per message from the adapter (1: every frame alone; more: bundles of one
    /// protocol's frames, as a concentrator's adapter sends them).
    #[arg(long, default_value_t = 64)]
    bundle: usize,
    /// Host replicas (tasks in this process sharing the durable consumer).
    #[arg(long, default_value_t = 1)]
    replicas: usize,
}

fn rate(n: usize, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64().max(1e-9)
}

/// Runs `ami bench ingest`.
pub fn run(args: IngestBenchArgs, paths: &PathArgs) -> Result<ExitCode> {
    if args.frames == 0
        || args.meters == 0
        || args.batch == 0
        || args.replicas == 0
        || args.bundle == 0
    {
        bail!("--frames, --meters, --batch, --bundle and --replicas must be above zero");
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
                frames.push(SpoolFrame::from(u));
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
    let raw_frames: Vec<RawFrame> = frames
        .iter()
        .enumerate()
        .map(|(i, f)| RawFrame {
            id: format!("raw:{i}"),
            protocol: f.protocol.clone(),
            adapter: "bench".into(),
            meter_hint: None,
            received_at_ms: f.received_at_ms,
            traceparent: None,
            rssi_dbm: None,
            data: f.data.clone(),
        })
        .collect();
    let msgs: Vec<Message> = raw_frames.iter().map(|f| f.to_message(&topo)).collect();
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

    // 1b. The same frames in the adapter's bundles: what the broker does per frame once it
    //     carries them bundled.
    let bundled_bus =
        NatsBus::connect(&args.nats_url, Topology::new(&format!("{root}rawb")), 4096).await?;
    bundled_bus
        .ensure_streams(&StreamSettings::default())
        .await?;
    let rounds = bundled(&raw_frames, args.batch, args.bundle, bundled_bus.topology())?;
    let t = Instant::now();
    for round in &rounds {
        bundled_bus.publish_batch(round.clone()).await?;
    }
    let bundled_publish = t.elapsed();
    let consumer = bundled_bus
        .consumer(StreamKind::Raw, &ConsumerSettings::new("bench-rawb"))
        .await?;
    let bundle_msgs: usize = rounds.iter().map(Vec::len).sum();
    let t = Instant::now();
    let (mut got, mut got_frames) = (0, 0);
    while got < bundle_msgs {
        let batch = consumer
            .fetch(
                args.batch.div_ceil(args.bundle).max(8),
                Duration::from_secs(2),
            )
            .await?;
        if batch.is_empty() {
            bail!("bundled raw consume stalled at {got} of {bundle_msgs} messages");
        }
        got += batch.len();
        for d in batch {
            got_frames += ami_bus::bundle::frames_of(&d.message)?.len();
            d.ack().await?;
        }
    }
    let bundled_consume = t.elapsed();
    if got_frames != n {
        bail!("bundled raw consume read {got_frames} frames of {n}");
    }
    bundled_bus.delete_streams().await?;

    // 2. End to end: adapter spool -> NATS -> host -> readings on NATS.
    let nats = NatsBus::connect(&args.nats_url, Topology::new(&format!("{root}e2e")), 4096).await?;
    nats.ensure_streams(&StreamSettings::default()).await?;
    let bus = Bus::Nats(nats.clone());
    let spool = tempfile::tempdir().context("spool dir")?;
    let adapter = Adapter::open(
        AdapterConfig {
            batch: args.batch,
            bundle: args.bundle,
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
                // Messages per fetch: about `batch` frames once they come bundled.
                batch: args.batch.div_ceil(args.bundle).max(8),
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
    let outputs = read_back(&nats, readings_msgs, args.batch).await?;
    nats.delete_streams().await?;

    // 3. The broker's ceiling: the NATS work of end to end without the host's.
    let relay = relay(&args, &root, &raw_frames, &outputs).await?;

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
        "| raw JetStream publish, the same frames in bundles of up to {} | {n} | {:.2} | {:.0} | |",
        args.bundle,
        bundled_publish.as_secs_f64(),
        rate(n, bundled_publish)
    );
    println!(
        "| raw JetStream pull consume of those bundles | {n} | {:.2} | {:.0} | |",
        bundled_consume.as_secs_f64(),
        rate(n, bundled_consume)
    );
    println!(
        "| NATS alone: publish while a consumer relays each frame's readings message, then acks (no decoding) | {n} | {:.2} | {:.0} | |",
        relay.as_secs_f64(),
        rate(n, relay)
    );
    println!(
        "| adapter spool append (fsync per batch) | {n} | {:.2} | {:.0} | |",
        spool_append.as_secs_f64(),
        rate(n, spool_append)
    );
    println!(
        "| **end to end**: spool -> NATS (bundles of up to {}) -> host ({} replica{}) -> readings on NATS | {n} | {:.2} | {:.0} | {:.0} |",
        args.bundle,
        args.replicas,
        if args.replicas == 1 { "" } else { "s" },
        e2e.as_secs_f64(),
        rate(n, e2e),
        rate(readings as usize, e2e)
    );
    let slower_raw = rate(n, raw_publish).min(rate(n, raw_consume));
    println!();
    println!(
        "end to end / slower raw path, a message per frame (min of publish, consume) = {:.2}; frames decoded {decoded}, readings {readings}, readings messages stored {readings_msgs}, dead letters {dead_msgs}",
        rate(n, e2e) / slower_raw
    );
    println!(
        "end to end / NATS alone doing the same messages = {:.2}: the share of the broker's ceiling that decoding and the host leave",
        rate(n, e2e) / rate(n, relay)
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

/// The readings messages end to end stored, in the order of the frames they came from: the
/// adapter names frame `i` `<adapter>:<spool>:<seq>` with `seq` counting up from the first, and
/// the host names its readings message `<frame id>:r`. Frames without readings have none.
async fn read_back(nats: &NatsBus, count: u64, batch: usize) -> Result<Vec<Option<Message>>> {
    let consumer = nats
        .consumer(
            StreamKind::Readings,
            &ConsumerSettings::new("bench-read-back"),
        )
        .await?;
    let mut by_seq = std::collections::BTreeMap::new();
    while (by_seq.len() as u64) < count {
        let got = consumer.fetch(batch, Duration::from_secs(2)).await?;
        if got.is_empty() {
            bail!(
                "reading back readings stalled at {} of {count}",
                by_seq.len()
            );
        }
        for d in got {
            let seq = d
                .message
                .msg_id()
                .and_then(|id| id.strip_suffix(":r"))
                .and_then(|id| id.rsplit(':').next())
                .and_then(|seq| seq.parse::<u64>().ok())
                .context("a readings message without its frame's id")?;
            by_seq.insert(seq, d.message.clone());
            d.ack().await?;
        }
    }
    let first = by_seq.keys().next().copied().unwrap_or(0);
    let last = by_seq.keys().next_back().copied().unwrap_or(0);
    Ok((first..=last).map(|seq| by_seq.remove(&seq)).collect())
}

/// The frames of each publish round as the adapter sends them: each `batch` of frames split
/// per protocol (in order of first appearance) into bundles of up to `bundle` frames, or a
/// message per frame when `bundle` is 1.
fn bundled(
    frames: &[RawFrame],
    batch: usize,
    bundle: usize,
    topology: &Topology,
) -> Result<Vec<Vec<Message>>> {
    let mut rounds = Vec::new();
    for chunk in frames.chunks(batch.max(1)) {
        if bundle <= 1 {
            rounds.push(chunk.iter().map(|f| f.to_message(topology)).collect());
            continue;
        }
        let mut groups: Vec<(&str, Vec<RawFrame>)> = Vec::new();
        for f in chunk {
            match groups.iter_mut().find(|(p, _)| *p == f.protocol) {
                Some((_, g)) => g.push(f.clone()),
                None => groups.push((f.protocol.as_str(), vec![f.clone()])),
            }
        }
        let mut round = Vec::new();
        for (_, g) in groups {
            for part in g.chunks(bundle) {
                let id = format!("{}+{}", part[0].id, part.len());
                round.push(ami_bus::bundle::to_message(part, &id, topology)?);
            }
        }
        rounds.push(round);
    }
    Ok(rounds)
}

/// The raw frames published as end to end sends them (bundled alike) by one task while one
/// pull consumer relays, for each frame, the readings message end to end made of it (same
/// subject, headers and payload, on fresh streams) and acks the message once its batch of
/// outputs is stored: the broker's work of end to end with no decoding. Returns the time
/// until every frame is relayed.
async fn relay(
    args: &IngestBenchArgs,
    root: &str,
    raw: &[RawFrame],
    outputs: &[Option<Message>],
) -> Result<Duration> {
    let bus =
        NatsBus::connect(&args.nats_url, Topology::new(&format!("{root}relay")), 4096).await?;
    bus.ensure_streams(&StreamSettings::default()).await?;
    let from = format!("{}.", Topology::new(&format!("{root}e2e")).root());
    let to = format!("{}.", bus.topology().root());
    let consumer = bus
        .consumer(StreamKind::Raw, &ConsumerSettings::new("bench-relay"))
        .await?;
    let rounds = bundled(raw, args.batch, args.bundle, bus.topology())?;
    let outputs: Vec<Option<Message>> = outputs
        .iter()
        .map(|m| {
            m.as_ref().map(|m| Message {
                subject: m.subject.replacen(&from, &to, 1),
                headers: m.headers.clone(),
                payload: m.payload.clone(),
            })
        })
        .collect();
    let t = Instant::now();
    let publisher = {
        let bus = bus.clone();
        tokio::spawn(async move {
            for round in rounds {
                bus.publish_batch(round).await?;
            }
            Ok::<_, ami_bus::BusError>(())
        })
    };
    let fetch = args.batch.div_ceil(args.bundle).max(8);
    let mut relayed = 0;
    while relayed < raw.len() {
        let batch = consumer.fetch(fetch, Duration::from_secs(5)).await?;
        if batch.is_empty() {
            bail!("relay stalled at {relayed} of {}", raw.len());
        }
        let mut out = Vec::new();
        for d in &batch {
            for f in ami_bus::bundle::frames_of(&d.message)? {
                relayed += 1;
                let i: Option<usize> = f.id.strip_prefix("raw:").and_then(|i| i.parse().ok());
                if let Some(m) = i.and_then(|i| outputs.get(i)).and_then(Option::as_ref) {
                    out.push(m.clone());
                }
            }
        }
        bus.publish_batch(out).await?;
        for d in batch {
            d.ack().await?;
        }
    }
    let took = t.elapsed();
    publisher.await??;
    bus.delete_streams().await?;
    Ok(took)
}
