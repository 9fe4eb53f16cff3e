//! Store and forward: links hand frames to [`Adapter::accept`], which appends them to the
//! spool; one forwarder task publishes what the spool holds, in order, in batches, each frame
//! with the de-duplication id `<adapter>:<spool id>:<sequence>`, and moves the spool's ack
//! mark only once the bus has stored the whole batch. While the bus is away the forwarder
//! retries with backoff and the spool fills (up to its bound); when it returns the backlog
//! goes out in order. A batch re-sent after a lost ack is stored once (JetStream drops the
//! duplicate ids): after a failed publish the forwarder re-sends exactly the messages it sent.
//!
//! With [`AdapterConfig::bundle`] above 1 the frames of a batch go out as
//! [bundles](ami_bus::bundle) of up to that many frames of one protocol (each protocol's frames
//! in spool order), the bundle named `<adapter>:<spool id>:<first sequence>+<count>`; every
//! frame inside keeps its own id, so the host's outputs are named after the frame either way.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use ami_bus::trace::TraceContext;
use ami_bus::{Bus, Message, RawFrame, Topology, bundle};
use tokio::sync::{Notify, watch};

use crate::spool::{Spool, SpoolError, SpoolFrame, SpoolRecord};

/// How an adapter forwards.
#[derive(Clone, Debug)]
pub struct AdapterConfig {
    /// The adapter's name (subject token and part of every frame id).
    pub name: String,
    /// Frames per publish batch.
    pub batch: usize,
    /// Most frames per message: 1 publishes every frame alone, more bundles a batch's frames
    /// of one protocol into messages of up to this many frames (at most
    /// [`bundle::MAX_FRAMES`]) and [`BUNDLE_BYTES`].
    pub bundle: usize,
    /// Bound of the spool on disk.
    pub spool_bytes: u64,
    /// First and longest wait between retries while the bus is away.
    pub retry: (Duration, Duration),
}

impl AdapterConfig {
    /// Defaults for an adapter named `name`.
    pub fn new(name: &str) -> Self {
        AdapterConfig {
            name: name.to_owned(),
            batch: 1000,
            bundle: 1,
            spool_bytes: 1 << 30,
            retry: (Duration::from_millis(100), Duration::from_secs(5)),
        }
    }
}

/// Most payload bytes in one bundle (frames with their ids and metadata), well under NATS'
/// default 1 MiB message limit; a single frame larger than this goes alone in its bundle.
pub const BUNDLE_BYTES: usize = 256 * 1024;

/// Counters of an adapter.
#[derive(Debug, Default)]
pub struct AdapterStats {
    /// Frames accepted into the spool.
    pub accepted: AtomicU64,
    /// Frames refused (spool full, frame too large).
    pub refused: AtomicU64,
    /// Frames the bus stored.
    pub forwarded: AtomicU64,
    /// Frames the bus already had (re-sent after a lost ack).
    pub duplicates: AtomicU64,
    /// Failed publish attempts.
    pub publish_errors: AtomicU64,
    /// Whether the last publish succeeded.
    pub connected: AtomicBool,
}

impl AdapterStats {
    /// The counters as OpenMetrics text, labelled with the adapter's name.
    pub fn openmetrics(&self, adapter: &str, pending: u64, spool_bytes: u64) -> String {
        let l = format!(
            "{{adapter=\"{}\"}}",
            adapter.replace(['"', '\\', '\n'], "_")
        );
        let mut s = String::new();
        for (name, help, v) in [
            (
                "ami_adapter_frames_accepted",
                "frames accepted into the spool",
                self.accepted.load(Ordering::Relaxed),
            ),
            (
                "ami_adapter_frames_refused",
                "frames refused by the spool",
                self.refused.load(Ordering::Relaxed),
            ),
            (
                "ami_adapter_frames_forwarded",
                "frames stored by the bus",
                self.forwarded.load(Ordering::Relaxed),
            ),
            (
                "ami_adapter_frames_duplicate",
                "frames the bus already had",
                self.duplicates.load(Ordering::Relaxed),
            ),
            (
                "ami_adapter_publish_errors",
                "failed publish attempts",
                self.publish_errors.load(Ordering::Relaxed),
            ),
        ] {
            s.push_str(&format!(
                "# TYPE {name} counter\n# HELP {name} {help}\n{name}_total{l} {v}\n"
            ));
        }
        s.push_str(&format!(
            "# TYPE ami_adapter_spool_pending gauge\nami_adapter_spool_pending{l} {pending}\n# TYPE ami_adapter_spool_bytes gauge\nami_adapter_spool_bytes{l} {spool_bytes}\n# TYPE ami_adapter_connected gauge\nami_adapter_connected{l} {}\n",
            u8::from(self.connected.load(Ordering::Relaxed))
        ));
        s
    }
}

struct Shared {
    config: AdapterConfig,
    spool: Mutex<Spool>,
    appended: Notify,
    stats: AdapterStats,
}

fn lock(m: &Mutex<Spool>) -> MutexGuard<'_, Spool> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// An adapter's spool and forwarder.
#[derive(Clone)]
pub struct Adapter {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Adapter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Adapter")
            .field("name", &self.shared.config.name)
            .finish_non_exhaustive()
    }
}

impl Adapter {
    /// Opens the adapter's spool in `dir`.
    pub fn open(config: AdapterConfig, dir: &Path) -> Result<Adapter, SpoolError> {
        let spool = Spool::open(dir, config.spool_bytes)?;
        Ok(Adapter {
            shared: Arc::new(Shared {
                config,
                spool: Mutex::new(spool),
                appended: Notify::new(),
                stats: AdapterStats::default(),
            }),
        })
    }

    /// The adapter's name.
    pub fn name(&self) -> &str {
        &self.shared.config.name
    }

    /// Its counters.
    pub fn stats(&self) -> &AdapterStats {
        &self.shared.stats
    }

    /// Frames in the spool not yet stored by the bus.
    pub fn pending(&self) -> u64 {
        lock(&self.shared.spool).pending()
    }

    /// Counters and spool state as OpenMetrics text.
    pub fn metrics_text(&self) -> String {
        let (pending, bytes) = {
            let s = lock(&self.shared.spool);
            (s.pending(), s.bytes())
        };
        self.shared
            .stats
            .openmetrics(&self.shared.config.name, pending, bytes)
    }

    /// Takes frames from a link: they are on disk when this returns. Frames without a trace
    /// context get a new one.
    pub fn accept(&self, mut frames: Vec<SpoolFrame>) -> Result<u64, SpoolError> {
        for f in &mut frames {
            if f.traceparent.is_none() {
                // The frame's trace starts here: a span of its own when OpenTelemetry exports,
                // else a new W3C context that the host continues all the same.
                let span = tracing::info_span!(
                    "ami.adapter.receive",
                    adapter = %self.shared.config.name,
                    protocol = %f.protocol,
                );
                let tc = ami_telemetry::context_of(&span).unwrap_or_else(TraceContext::new_root);
                f.traceparent = Some(tc.header());
            }
        }
        let n = frames.len() as u64;
        let result = lock(&self.shared.spool).append(&frames);
        match &result {
            Ok(_) => {
                self.shared.stats.accepted.fetch_add(n, Ordering::Relaxed);
                self.shared.appended.notify_one();
            }
            Err(_) => {
                self.shared.stats.refused.fetch_add(n, Ordering::Relaxed);
            }
        }
        result
    }

    fn to_raw(&self, spool_id: &str, r: SpoolRecord) -> RawFrame {
        let name = &self.shared.config.name;
        RawFrame {
            id: format!("{name}:{spool_id}:{}", r.seq),
            protocol: r.frame.protocol,
            adapter: name.clone(),
            meter_hint: r.frame.meter_hint,
            received_at_ms: r.frame.received_at_ms,
            traceparent: r.frame.traceparent,
            rssi_dbm: r.frame.rssi_dbm,
            data: r.frame.data,
        }
    }

    /// The messages of one batch of spool records: a message per frame, or bundles of up to
    /// `bundle` frames per protocol; each message with the number of frames it carries.
    fn messages(
        &self,
        spool_id: &str,
        records: Vec<SpoolRecord>,
        topology: &Topology,
    ) -> Vec<(Message, u64)> {
        let cfg = &self.shared.config;
        if cfg.bundle <= 1 {
            return records
                .into_iter()
                .map(|r| (self.to_raw(spool_id, r).to_message(topology), 1))
                .collect();
        }
        // Per protocol, in order of first appearance, frames in spool order.
        let mut groups: Vec<(String, Vec<(u64, RawFrame)>)> = Vec::new();
        for r in records {
            let seq = r.seq;
            let f = self.to_raw(spool_id, r);
            match groups.iter_mut().find(|(p, _)| *p == f.protocol) {
                Some((_, g)) => g.push((seq, f)),
                None => groups.push((f.protocol.clone(), vec![(seq, f)])),
            }
        }
        let mut out = Vec::new();
        for (_, group) in groups {
            let mut start = 0;
            while start < group.len() {
                let mut end = start;
                let mut bytes = 0;
                let most = cfg.bundle.min(bundle::MAX_FRAMES);
                while end < group.len()
                    && end - start < most
                    && (end == start || bytes + bundle::encoded_len(&group[end].1) <= BUNDLE_BYTES)
                {
                    bytes += bundle::encoded_len(&group[end].1);
                    end += 1;
                }
                let part = &group[start..end];
                let frames: Vec<RawFrame> = part.iter().map(|(_, f)| f.clone()).collect();
                let first = part.first().map_or(0, |(seq, _)| *seq);
                let id = format!("{}:{spool_id}:{first}+{}", cfg.name, frames.len());
                match bundle::to_message(&frames, &id, topology) {
                    Ok(m) => out.push((m, frames.len() as u64)),
                    Err(e) => {
                        // A frame no bundle can carry (a field past its length prefix) goes
                        // alone, where the headers carry it.
                        tracing::warn!(adapter = %cfg.name, error = %e, "frames sent one by one");
                        out.extend(frames.into_iter().map(|f| (f.to_message(topology), 1)));
                    }
                }
                start = end;
            }
        }
        out
    }

    /// Forwards the spool to `bus` until `stop` turns true, then returns once the batch in
    /// flight is settled (stored or left in the spool for next time).
    pub async fn forward(&self, bus: Bus, mut stop: watch::Receiver<bool>) {
        let cfg = &self.shared.config;
        let mut backoff = cfg.retry.0;
        // A batch whose publish failed: re-sent as it was, so its ids de-duplicate.
        let mut retry: Option<(Vec<(Message, u64)>, u64)> = None;
        loop {
            if *stop.borrow() {
                return;
            }
            let (msgs, last) = match retry.take() {
                Some(batch) => batch,
                None => {
                    let read = {
                        let shared = Arc::clone(&self.shared);
                        let batch = cfg.batch.max(1);
                        tokio::task::spawn_blocking(move || {
                            let mut s = lock(&shared.spool);
                            let id = s.id().to_owned();
                            s.unacked(batch).map(|r| (id, r))
                        })
                        .await
                    };
                    let (spool_id, records) = match read {
                        Ok(Ok(r)) => r,
                        Ok(Err(e)) => {
                            tracing::error!(adapter = %cfg.name, error = %e, "cannot read the spool");
                            sleep_or_stop(&mut stop, backoff).await;
                            backoff = (backoff * 2).min(cfg.retry.1);
                            continue;
                        }
                        Err(e) => {
                            tracing::error!(adapter = %cfg.name, error = %e, "spool reader failed");
                            return;
                        }
                    };
                    let Some(last) = records.last().map(|r| r.seq) else {
                        let appended = self.shared.appended.notified();
                        tokio::select! {
                            () = appended => {}
                            () = tokio::time::sleep(Duration::from_millis(200)) => {}
                            _ = stop.changed() => {}
                        }
                        continue;
                    };
                    let topology = bus.topology().clone();
                    (self.messages(&spool_id, records, &topology), last)
                }
            };
            let n: u64 = msgs.iter().map(|(_, k)| k).sum();
            let publish: Vec<Message> = msgs.iter().map(|(m, _)| m.clone()).collect();
            match bus.publish_batch(publish).await {
                Ok(report) => {
                    let stats = &self.shared.stats;
                    let duplicate_frames: u64 = report
                        .duplicate_at
                        .iter()
                        .filter_map(|&i| msgs.get(i).map(|(_, k)| *k))
                        .sum();
                    stats
                        .forwarded
                        .fetch_add(n - duplicate_frames.min(n), Ordering::Relaxed);
                    stats
                        .duplicates
                        .fetch_add(duplicate_frames, Ordering::Relaxed);
                    stats.connected.store(true, Ordering::Relaxed);
                    backoff = cfg.retry.0;
                    let shared = Arc::clone(&self.shared);
                    let acked =
                        tokio::task::spawn_blocking(move || lock(&shared.spool).ack(last)).await;
                    match acked {
                        Ok(Ok(())) => {}
                        Ok(Err(e)) => {
                            tracing::error!(adapter = %cfg.name, error = %e, "cannot record the ack in the spool; the frames will be re-sent and de-duplicated")
                        }
                        Err(e) => {
                            tracing::error!(adapter = %cfg.name, error = %e, "spool ack task failed")
                        }
                    }
                    tracing::debug!(adapter = %cfg.name, frames = n, messages = msgs.len(), last, "forwarded");
                }
                Err(e) => {
                    let stats = &self.shared.stats;
                    stats.publish_errors.fetch_add(1, Ordering::Relaxed);
                    if stats.connected.swap(false, Ordering::Relaxed) {
                        tracing::warn!(adapter = %cfg.name, error = %e, "bus unreachable; frames stay in the spool");
                    }
                    retry = Some((msgs, last));
                    sleep_or_stop(&mut stop, backoff).await;
                    backoff = (backoff * 2).min(cfg.retry.1);
                }
            }
        }
    }
}

async fn sleep_or_stop(stop: &mut watch::Receiver<bool>, d: Duration) {
    tokio::select! {
        () = tokio::time::sleep(d) => {}
        _ = stop.changed() => {}
    }
}
