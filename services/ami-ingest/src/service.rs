//! The ingest loop (`ami host`): fetch a batch of raw frames from the shared durable consumer,
//! decode it on a blocking thread, publish the readings, events and dead letters, and only then
//! ack the raw frames. The three stages overlap: the next batches are fetched (at most
//! [`PREFETCH`] ahead) while one decodes and the one before settles. A crash between publish and ack redelivers the batch; the outputs carry
//! ids derived from the frame's id, so JetStream stores them once. The consumer's
//! `max_ack_pending` bounds the frames in flight over all replicas: back-pressure, not memory.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use ami_bus::{AckHandle, Bus, BusError, Consumer, ConsumerSettings, Delivery, StreamKind};
use ami_plugin_host::Host;
use tokio::sync::watch;

use crate::decode::{BatchOutput, decode_batch};

/// Batches fetched ahead of the one decoding.
pub const PREFETCH: usize = 2;

/// How the ingest loop runs.
#[derive(Clone, Debug)]
pub struct IngestConfig {
    /// The durable consumer's name; every replica uses the same one to share the frames.
    pub durable: String,
    /// Frames fetched per batch.
    pub batch: usize,
    /// Frames per call into a decoder component.
    pub decode_chunk: usize,
    /// How long a fetch waits for frames.
    pub fetch_wait: Duration,
    /// Unacknowledged frames allowed over all replicas.
    pub max_ack_pending: i64,
    /// How long a frame may stay unacknowledged before it is redelivered.
    pub ack_wait: Duration,
}

impl Default for IngestConfig {
    fn default() -> Self {
        IngestConfig {
            durable: "ami-host".into(),
            batch: 1000,
            decode_chunk: 256,
            fetch_wait: Duration::from_millis(500),
            max_ack_pending: 20_000,
            ack_wait: Duration::from_secs(30),
        }
    }
}

/// Counters of one ingest replica; `*_ns` are time spent per stage.
#[derive(Debug, Default)]
pub struct IngestStats {
    /// Raw frames fetched (a bundle counts its frames).
    pub frames: AtomicU64,
    /// Frames decoded.
    pub decoded: AtomicU64,
    /// Readings published.
    pub readings: AtomicU64,
    /// Events published.
    pub events: AtomicU64,
    /// Frames sent to dead letters.
    pub dead: AtomicU64,
    /// Frames seen again after a redelivery.
    pub redelivered: AtomicU64,
    /// Outputs JetStream already had (a redelivered frame's).
    pub duplicate_outputs: AtomicU64,
    /// Failed publish or ack rounds.
    pub errors: AtomicU64,
    /// Time fetching.
    pub fetch_ns: AtomicU64,
    /// Time decoding.
    pub decode_ns: AtomicU64,
    /// Time publishing outputs.
    pub publish_ns: AtomicU64,
    /// Time acking.
    pub ack_ns: AtomicU64,
}

impl IngestStats {
    /// The counters as OpenMetrics text.
    pub fn openmetrics(&self) -> String {
        let mut s = String::new();
        for (name, v) in [
            ("ami_ingest_frames", &self.frames),
            ("ami_ingest_decoded", &self.decoded),
            ("ami_ingest_readings", &self.readings),
            ("ami_ingest_events", &self.events),
            ("ami_ingest_dead_letters", &self.dead),
            ("ami_ingest_redelivered", &self.redelivered),
            ("ami_ingest_duplicate_outputs", &self.duplicate_outputs),
            ("ami_ingest_errors", &self.errors),
        ] {
            s.push_str(&format!(
                "# TYPE {name} counter\n{name}_total {}\n",
                v.load(Ordering::Relaxed)
            ));
        }
        for (stage, v) in [
            ("fetch", &self.fetch_ns),
            ("decode", &self.decode_ns),
            ("publish", &self.publish_ns),
            ("ack", &self.ack_ns),
        ] {
            s.push_str(&format!(
                "ami_ingest_stage_seconds_total{{stage=\"{stage}\"}} {:.6}\n",
                v.load(Ordering::Relaxed) as f64 / 1e9
            ));
        }
        s
    }
}

fn add_elapsed(c: &AtomicU64, since: Instant) {
    c.fetch_add(since.elapsed().as_nanos() as u64, Ordering::Relaxed);
}

/// Why the ingest loop stopped.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// The consumer could not be made.
    #[error("cannot bind the raw-frame consumer: {0}")]
    Consumer(BusError),
}

/// One ingest replica.
pub struct Ingest {
    bus: Bus,
    host: Arc<Host>,
    config: IngestConfig,
    stats: Arc<IngestStats>,
}

impl Ingest {
    /// A replica decoding with `host`'s decoders.
    pub fn new(bus: Bus, host: Arc<Host>, config: IngestConfig) -> Self {
        Ingest {
            bus,
            host,
            config,
            stats: Arc::new(IngestStats::default()),
        }
    }

    /// Its counters.
    pub fn stats(&self) -> Arc<IngestStats> {
        Arc::clone(&self.stats)
    }

    /// Runs until `stop` turns true; the batch in hand is finished (published and acked)
    /// before it returns.
    pub async fn run(&self, stop: watch::Receiver<bool>) -> Result<(), IngestError> {
        let cfg = &self.config;
        let settings = ConsumerSettings {
            durable: cfg.durable.clone(),
            filter: Some(self.bus.topology().raw_all()),
            max_ack_pending: cfg.max_ack_pending,
            ack_wait: cfg.ack_wait,
        };
        let consumer = self
            .bus
            .consumer(StreamKind::Raw, &settings)
            .await
            .map_err(IngestError::Consumer)?;
        let (tx, mut batches) = tokio::sync::mpsc::channel(PREFETCH);
        let fetcher = tokio::spawn(fetch_loop(
            consumer,
            cfg.batch,
            cfg.fetch_wait,
            Arc::clone(&self.stats),
            stop.clone(),
            tx,
        ));
        let mut in_flight: Option<tokio::task::JoinHandle<()>> = None;
        // After `stop`, the fetcher ends and the batches it fetched are still finished here.
        while let Some(deliveries) = batches.recv().await {
            // Decode this batch while the previous one's outputs are being published and its
            // frames acked: at most one batch settles at a time, behind the one decoding.
            let Some((out, ackers)) = self.decode_stage(deliveries).await else {
                continue;
            };
            if let Some(prev) = in_flight.take() {
                let _ = prev.await;
            }
            let (bus, stats) = (self.bus.clone(), Arc::clone(&self.stats));
            in_flight = Some(tokio::spawn(settle(bus, stats, out, ackers)));
        }
        if let Some(prev) = in_flight.take() {
            let _ = prev.await;
        }
        let _ = fetcher.await;
        Ok(())
    }

    async fn decode_stage(
        &self,
        deliveries: Vec<ami_bus::Delivery>,
    ) -> Option<(BatchOutput, Vec<AckHandle>)> {
        let stats = &self.stats;
        let redelivered = deliveries.iter().filter(|d| d.delivered > 1).count();
        stats
            .redelivered
            .fetch_add(redelivered as u64, Ordering::Relaxed);
        let (msgs, ackers): (Vec<_>, Vec<_>) =
            deliveries.into_iter().map(|d| d.into_parts()).unzip();
        let t = Instant::now();
        let host = Arc::clone(&self.host);
        let topology = self.bus.topology().clone();
        let chunk = self.config.decode_chunk;
        let decoded =
            tokio::task::spawn_blocking(move || decode_batch(&host, &topology, &msgs, chunk)).await;
        add_elapsed(&stats.decode_ns, t);
        match decoded {
            Ok(o) => {
                stats.frames.fetch_add(o.frames, Ordering::Relaxed);
                Some((o, ackers))
            }
            Err(e) => {
                // The decode thread panicked: leave the frames unacked, they come back after
                // the ack wait (and a poison frame is isolated by the sandbox on the retry).
                stats.errors.fetch_add(1, Ordering::Relaxed);
                tracing::error!(error = %e, "decode task failed; the batch will be redelivered");
                None
            }
        }
    }
}

/// Fetches batches into `out` until `stop` turns true or the receiver is gone; a failed fetch
/// is retried with a backoff.
async fn fetch_loop(
    consumer: Consumer,
    batch: usize,
    wait: Duration,
    stats: Arc<IngestStats>,
    mut stop: watch::Receiver<bool>,
    out: tokio::sync::mpsc::Sender<Vec<Delivery>>,
) {
    let mut backoff = Duration::from_millis(100);
    while !*stop.borrow() {
        let t = Instant::now();
        let fetched = tokio::select! {
            r = consumer.fetch(batch, wait) => r,
            _ = stop.changed() => break,
        };
        add_elapsed(&stats.fetch_ns, t);
        match fetched {
            Ok(d) if d.is_empty() => {}
            Ok(d) => {
                backoff = Duration::from_millis(100);
                if out.send(d).await.is_err() {
                    break;
                }
            }
            Err(e) => {
                stats.errors.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(error = %e, "fetch failed; retrying");
                tokio::select! {
                    () = tokio::time::sleep(backoff) => {}
                    _ = stop.changed() => break,
                }
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
}

/// Publishes a batch's outputs, then acks its frames.
async fn settle(bus: Bus, stats: Arc<IngestStats>, out: BatchOutput, ackers: Vec<AckHandle>) {
    let t = Instant::now();
    let published = bus.publish_batch(out.messages).await;
    add_elapsed(&stats.publish_ns, t);
    match published {
        Ok(report) => {
            stats
                .duplicate_outputs
                .fetch_add(report.duplicates as u64, Ordering::Relaxed);
        }
        Err(e) => {
            stats.errors.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(error = %e, "publishing outputs failed; the batch will be redelivered");
            return;
        }
    }
    stats.decoded.fetch_add(out.decoded, Ordering::Relaxed);
    stats.readings.fetch_add(out.readings, Ordering::Relaxed);
    stats.events.fetch_add(out.events, Ordering::Relaxed);
    stats.dead.fetch_add(out.dead, Ordering::Relaxed);
    let t = Instant::now();
    let mut failed = 0u64;
    for a in ackers {
        if a.ack().await.is_err() {
            failed += 1;
        }
    }
    add_elapsed(&stats.ack_ns, t);
    if failed > 0 {
        stats.errors.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(
            failed,
            "acks failed; those frames will be redelivered and their outputs de-duplicated"
        );
    }
}
