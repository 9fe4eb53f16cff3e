//! Meter events: taken from the host's events stream (`<root>.events.<kind>.<meter>`, an
//! [`ami_bus::EventMessage`] each), resolved to registry meters, stored once, streamed to
//! subscribers and fed to the [`OutageDetector`].
//!
//! [`EventHub::ingest`] is the entry point (tests and the in-process default call it
//! directly); [`consume`] runs it over a durable bus consumer (NATS JetStream or the local
//! bus), acknowledging each batch only once it is stored.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use ami_bus::{Consumer, Delivery, EventMessage};
use tokio::sync::broadcast;

use crate::error::Result;
use crate::model::{EventFilter, NewEvent, StoredEvent, now_ms};
use crate::outage::{OutageDetector, is_down, is_up};
use crate::store::RegistryStore;

/// Stores, streams and correlates meter events.
pub struct EventHub<S> {
    store: Arc<S>,
    outages: Arc<OutageDetector<S>>,
    stream: broadcast::Sender<StoredEvent>,
}

impl<S> std::fmt::Debug for EventHub<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EventHub")
    }
}

impl<S: RegistryStore> EventHub<S> {
    /// A hub over the store, feeding `outages`.
    pub fn new(store: Arc<S>, outages: Arc<OutageDetector<S>>) -> Self {
        let (stream, _) = broadcast::channel(4096);
        EventHub {
            store,
            outages,
            stream,
        }
    }

    /// The outage detector it feeds.
    pub fn outages(&self) -> &Arc<OutageDetector<S>> {
        &self.outages
    }

    /// Every event stored from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<StoredEvent> {
        self.stream.subscribe()
    }

    /// Stored events matching a filter, newest first.
    pub async fn query(&self, filter: &EventFilter) -> Result<Vec<StoredEvent>> {
        self.store.query_events(filter).await
    }

    /// Takes a batch of events: resolves each meter (serial or protocol identity) in the
    /// registry, stores the batch (a redelivered event is stored once and not seen again),
    /// publishes the new ones and feeds power events to the outage detector. Returns the
    /// events stored now.
    pub async fn ingest(&self, batch: &[EventMessage]) -> Result<Vec<StoredEvent>> {
        let mut events = Vec::with_capacity(batch.len());
        let mut meters = Vec::with_capacity(batch.len());
        for e in batch {
            let meter = self.store.meter(&e.meter).await?;
            events.push(NewEvent {
                frame: e.frame.clone(),
                meter: e.meter.clone(),
                serial: meter.as_ref().map(|m| m.serial.clone()),
                kind: e.kind.clone(),
                ts_ms: e.ts_ms,
                code: e.code,
                source: e.source.clone(),
                duration_s: e.duration_s,
            });
            meters.push(meter);
        }
        let stored = self.store.insert_events(&events, now_ms()).await?;
        for s in &stored {
            let _ = self.stream.send(s.clone());
            let e = &s.event;
            if is_down(&e.kind) || is_up(&e.kind) {
                let meter = events
                    .iter()
                    .position(|x| x == e)
                    .and_then(|i| meters.get(i))
                    .and_then(Option::as_ref);
                self.outages
                    .observe(meter, &e.meter, &e.kind, e.ts_ms)
                    .await;
            }
        }
        Ok(stored)
    }
}

/// Runs `hub` over a bus consumer until `shutdown` resolves: fetches batches, ingests them,
/// acks them once stored. Messages that are not event envelopes are logged and acked (they
/// would never parse); a store failure leaves the batch unacknowledged, to be redelivered.
pub async fn consume<S: RegistryStore>(
    consumer: Consumer,
    hub: Arc<EventHub<S>>,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<()> {
    tokio::pin!(shutdown);
    loop {
        let batch = tokio::select! {
            _ = &mut shutdown => return Ok(()),
            b = consumer.fetch(500, Duration::from_millis(500)) => b,
        };
        let deliveries: Vec<Delivery> = match batch {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(error = %e, "event fetch failed");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        if deliveries.is_empty() {
            continue;
        }
        let mut msgs = Vec::with_capacity(deliveries.len());
        for d in &deliveries {
            match EventMessage::from_message(&d.message) {
                Ok(m) => msgs.push(m),
                Err(e) => {
                    tracing::warn!(subject = %d.message.subject, error = %e, "not an event message")
                }
            }
        }
        match hub.ingest(&msgs).await {
            Ok(_) => {
                for d in deliveries {
                    if let Err(e) = d.ack().await {
                        tracing::warn!(error = %e, "event ack failed");
                    }
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "storing events failed; they will be redelivered");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}
