//! Readings from the bus into the store: a durable consumer on the readings stream (shared by
//! every MDMS replica), one store transaction per fetched batch, and the batch's messages
//! acknowledged only after its rows are committed, so a crash redelivers rather than loses.
//!
//! A message that is not a readings envelope, or whose readings the store refuses (a
//! timestamp out of range, an oversized meter id), goes to the dead-letter stream with the
//! reason and is acknowledged; the rest of its batch is stored. A store that is down stops
//! the acknowledgements: the messages come again once it is back.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use ami_bus::envelope::{DeadKind, ReadingsMessage, dead_letter};
use ami_bus::trace::TraceContext;
use ami_bus::{Bus, ConsumerSettings, Delivery, Message, StreamKind, header};
use ami_mdms_store::{AnyStore, Catalog, IntervalReading, MeterDataStore, StoreError};
use tokio::sync::{Mutex, watch};

use crate::error::Result;

/// Counters of a consumer, readable while it runs.
#[derive(Debug, Default)]
pub struct ConsumeStats {
    /// Messages settled (stored or dead-lettered, then acknowledged).
    pub messages: AtomicU64,
    /// Readings handed to the store.
    pub readings: AtomicU64,
    /// New originals stored.
    pub inserted: AtomicU64,
    /// Readings already stored.
    pub duplicates: AtomicU64,
    /// Conflicting re-reads kept as versions.
    pub conflicts: AtomicU64,
    /// Messages dead-lettered.
    pub dead: AtomicU64,
    /// Store batches committed.
    pub batches: AtomicU64,
    /// Nanoseconds spent in the store.
    pub store_ns: AtomicU64,
    /// Store failures (batches retried).
    pub store_errors: AtomicU64,
}

/// The readings consumer.
pub struct ReadingsConsumer {
    bus: Bus,
    store: Arc<AnyStore>,
    durable: String,
    batch: usize,
    ack_wait: Duration,
    stats: Arc<ConsumeStats>,
    seen: Mutex<HashSet<String>>,
}

impl ReadingsConsumer {
    /// A consumer named `durable` fetching up to `batch` messages at a time.
    pub fn new(bus: Bus, store: Arc<AnyStore>, durable: &str, batch: usize) -> Self {
        Self {
            bus,
            store,
            durable: durable.to_owned(),
            batch: batch.max(1),
            ack_wait: Duration::from_secs(30),
            stats: Arc::new(ConsumeStats::default()),
            seen: Mutex::new(HashSet::new()),
        }
    }

    /// How long a fetched message may stay unacknowledged before JetStream delivers it again
    /// (30 s by default; applies when the durable consumer is created).
    pub fn with_ack_wait(mut self, ack_wait: Duration) -> Self {
        self.ack_wait = ack_wait;
        self
    }

    /// Its counters.
    pub fn stats(&self) -> Arc<ConsumeStats> {
        Arc::clone(&self.stats)
    }

    /// Consumes until `stop` turns true.
    pub async fn run(&self, mut stop: watch::Receiver<bool>) -> Result<()> {
        let mut settings = ConsumerSettings::new(&self.durable);
        settings.filter = Some(format!("{}.readings.>", self.bus.topology().root()));
        settings.ack_wait = self.ack_wait;
        let consumer = self.bus.consumer(StreamKind::Readings, &settings).await?;
        while !*stop.borrow() {
            let fetched = tokio::select! {
                f = consumer.fetch(self.batch, Duration::from_millis(200)) => f,
                _ = stop.changed() => break,
            };
            let deliveries = match fetched {
                Ok(d) => d,
                Err(e) => {
                    tracing::warn!(error = %e, "fetching readings failed; retrying");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    continue;
                }
            };
            if deliveries.is_empty() {
                continue;
            }
            if let Err(e) = self.settle(deliveries).await {
                // Unacknowledged: JetStream delivers them again after the ack wait.
                self.stats.store_errors.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(error = %e, "storing a readings batch failed; it will be redelivered");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
        Ok(())
    }

    /// Stores one fetched batch, dead-letters what cannot be stored, then acknowledges all.
    pub async fn settle(&self, deliveries: Vec<Delivery>) -> Result<()> {
        let topology = self.bus.topology().clone();
        let mut dead: Vec<Message> = Vec::new();
        let mut parsed: Vec<(usize, Vec<IntervalReading>)> = Vec::with_capacity(deliveries.len());
        for (i, d) in deliveries.iter().enumerate() {
            match parse(&d.message) {
                Ok(rows) => parsed.push((i, rows)),
                Err(reason) => dead.push(dead_letter(
                    &topology,
                    &d.message,
                    DeadKind::Envelope,
                    &reason,
                    None,
                )),
            }
        }
        let rows: Vec<IntervalReading> =
            parsed.iter().flat_map(|(_, r)| r.iter().cloned()).collect();
        // One span per message, child of the trace its frame started at the adapter; each
        // ends when the batch is committed and acknowledged.
        let _spans: Vec<tracing::Span> = parsed
            .iter()
            .filter_map(|(i, _)| {
                let parent = deliveries[*i]
                    .message
                    .headers
                    .get(header::TRACEPARENT)
                    .and_then(TraceContext::parse)?;
                let span = tracing::info_span!(
                    "ami.mdms.store",
                    meter = deliveries[*i]
                        .message
                        .headers
                        .get(header::METER)
                        .unwrap_or(""),
                    batch = deliveries.len(),
                );
                ami_telemetry::set_parent_from(&span, &parent).ok()?;
                Some(span)
            })
            .collect();
        let started = Instant::now();
        match self.store.ingest(&rows).await {
            Ok(report) => self.count(&report, rows.len()),
            Err(StoreError::Invalid(_)) => {
                // One message carries something the store refuses: find it, store the rest.
                for (i, rows) in &parsed {
                    match self.store.ingest(rows).await {
                        Ok(report) => self.count(&report, rows.len()),
                        Err(StoreError::Invalid(why)) => dead.push(dead_letter(
                            &topology,
                            &deliveries[*i].message,
                            DeadKind::Refused,
                            &why.to_string(),
                            None,
                        )),
                        Err(e) => return Err(e.into()),
                    }
                }
            }
            Err(e) => return Err(e.into()),
        }
        self.touch_meters(&rows).await?;
        self.stats.store_ns.fetch_add(
            u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
        self.stats.batches.fetch_add(1, Ordering::Relaxed);
        if !dead.is_empty() {
            self.stats
                .dead
                .fetch_add(dead.len() as u64, Ordering::Relaxed);
            self.bus.publish_batch(dead).await?;
        }
        let n = deliveries.len() as u64;
        for d in deliveries {
            d.ack().await?;
        }
        self.stats.messages.fetch_add(n, Ordering::Relaxed);
        Ok(())
    }

    fn count(&self, report: &ami_mdms_store::IngestReport, rows: usize) {
        self.stats
            .readings
            .fetch_add(rows as u64, Ordering::Relaxed);
        self.stats
            .inserted
            .fetch_add(report.inserted as u64, Ordering::Relaxed);
        self.stats
            .duplicates
            .fetch_add(report.duplicates as u64, Ordering::Relaxed);
        self.stats
            .conflicts
            .fetch_add(report.conflicts as u64, Ordering::Relaxed);
    }

    /// Records meters seen for the first time in the catalog.
    async fn touch_meters(&self, rows: &[IntervalReading]) -> Result<()> {
        let new: Vec<String> = {
            let seen = self.seen.lock().await;
            let mut new: Vec<String> = rows
                .iter()
                .filter(|r| !seen.contains(&r.meter))
                .map(|r| r.meter.clone())
                .collect();
            new.sort_unstable();
            new.dedup();
            new
        };
        if new.is_empty() {
            return Ok(());
        }
        self.store
            .touch_meters(&new, ami_domain::time::now_ms())
            .await?;
        self.seen.lock().await.extend(new);
        Ok(())
    }
}

/// The interval readings of one readings message, or why it is unusable.
fn parse(msg: &Message) -> Result<Vec<IntervalReading>, String> {
    let m =
        ReadingsMessage::from_message(msg).map_err(|e| format!("not a readings message: {e}"))?;
    m.readings
        .iter()
        .map(|w| {
            w.to_reading()
                .map(|reading| IntervalReading {
                    meter: m.meter.clone(),
                    reading,
                })
                .map_err(|e| format!("reading of meter {}: {e}", m.meter))
        })
        .collect()
}
