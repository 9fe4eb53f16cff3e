//! NATS JetStream: the production bus.
//!
//! Streams are created (or updated) from [`StreamSettings`]; publishing is pipelined (every
//! message of a batch is sent before any ack is awaited, up to the context's in-flight bound,
//! with back-pressure beyond it) and every message carries its `Nats-Msg-Id`, so a re-sent batch
//! is stored once. Consumers are durable pull consumers with explicit acks: several replicas
//! bound to the same durable share its messages, and a message not acked within `ack_wait` is
//! delivered again.

use std::str::FromStr;

use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream::{self, consumer, stream};
use futures_util::StreamExt;

use crate::message::{Acker, Delivery, Headers, Message};
use crate::subjects::{StreamKind, Topology};
use crate::{BusError, PublishReport};

/// How the streams are created.
#[derive(Clone, Debug)]
pub struct StreamSettings {
    /// How long raw frames are kept (they can be replayed into a new decoder version).
    pub raw_max_age: Duration,
    /// How long readings, events, commands and dead letters are kept.
    pub max_age: Duration,
    /// JetStream's de-duplication window by `Nats-Msg-Id`.
    pub duplicate_window: Duration,
    /// Replicas per stream (1 on a single server, 3 in a cluster).
    pub replicas: usize,
    /// Bytes per stream (-1: no limit); old messages are discarded beyond it.
    pub max_bytes: i64,
}

impl Default for StreamSettings {
    fn default() -> Self {
        StreamSettings {
            raw_max_age: Duration::from_secs(7 * 24 * 3600),
            max_age: Duration::from_secs(7 * 24 * 3600),
            duplicate_window: Duration::from_secs(10 * 60),
            replicas: 1,
            max_bytes: -1,
        }
    }
}

/// How a durable consumer is created.
#[derive(Clone, Debug)]
pub struct ConsumerSettings {
    /// Its durable name; replicas with the same name share its messages.
    pub durable: String,
    /// Subject filter within the stream (`None`: all of it).
    pub filter: Option<String>,
    /// Unacknowledged messages allowed at once, over all replicas (back-pressure).
    pub max_ack_pending: i64,
    /// How long a delivered message may stay unacknowledged before it is delivered again.
    pub ack_wait: Duration,
}

impl ConsumerSettings {
    /// A consumer named `durable` with the defaults.
    pub fn new(durable: &str) -> Self {
        ConsumerSettings {
            durable: durable.to_owned(),
            filter: None,
            max_ack_pending: 20_000,
            ack_wait: Duration::from_secs(30),
        }
    }
}

/// A connection to NATS with JetStream.
#[derive(Clone, Debug)]
pub struct NatsBus {
    client: async_nats::Client,
    js: jetstream::Context,
    topology: Topology,
    /// Publish acks awaited at most at once; a batch larger than this waits for the oldest.
    max_in_flight: usize,
}

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// Awaits one publish ack into the report.
async fn settle(
    report: &mut PublishReport,
    (at, ack): (usize, jetstream::context::PublishAckFuture),
) -> Result<(), BusError> {
    let ack = ack.await.map_err(|e| BusError::Publish(err(e)))?;
    if ack.duplicate {
        report.duplicates += 1;
        report.duplicate_at.push(at);
    } else {
        report.stored += 1;
    }
    Ok(())
}

impl NatsBus {
    /// Connects to `url`; publishes keep up to `max_in_flight` acks pending.
    pub async fn connect(
        url: &str,
        topology: Topology,
        max_in_flight: usize,
    ) -> Result<Self, BusError> {
        let client = async_nats::ConnectOptions::new()
            .name("ami")
            .retry_on_initial_connect()
            .connection_timeout(Duration::from_secs(5))
            .connect(url)
            .await
            .map_err(|e| BusError::Connect(format!("{url}: {e}")))?;
        Ok(Self::from_client(client, topology, max_in_flight))
    }

    /// Wraps a connected client.
    pub fn from_client(
        client: async_nats::Client,
        topology: Topology,
        max_in_flight: usize,
    ) -> Self {
        let js = jetstream::ContextBuilder::new()
            .timeout(Duration::from_secs(10))
            .max_ack_inflight(max_in_flight.max(1))
            .backpressure_on_inflight(true)
            .build(client.clone());
        NatsBus {
            client,
            js,
            topology,
            max_in_flight: max_in_flight.max(1),
        }
    }

    /// The names in use.
    pub fn topology(&self) -> &Topology {
        &self.topology
    }

    /// The underlying client (for core NATS requests and subscriptions).
    pub fn client(&self) -> &async_nats::Client {
        &self.client
    }

    /// The JetStream context.
    pub fn jetstream(&self) -> &jetstream::Context {
        &self.js
    }

    /// Creates the platform's streams, or updates them to `settings`.
    pub async fn ensure_streams(&self, settings: &StreamSettings) -> Result<(), BusError> {
        for kind in StreamKind::ALL {
            let config = stream::Config {
                name: self.topology.stream(kind),
                subjects: self.topology.stream_subjects(kind),
                max_age: if kind == StreamKind::Raw {
                    settings.raw_max_age
                } else {
                    settings.max_age
                },
                duplicate_window: settings.duplicate_window,
                num_replicas: settings.replicas,
                max_bytes: settings.max_bytes,
                storage: stream::StorageType::File,
                discard: stream::DiscardPolicy::Old,
                ..Default::default()
            };
            match self.js.get_stream(&config.name).await {
                Ok(_) => {
                    self.js
                        .update_stream(&config)
                        .await
                        .map_err(|e| BusError::Stream(config.name.clone(), err(e)))?;
                }
                Err(_) => {
                    self.js
                        .create_stream(config.clone())
                        .await
                        .map_err(|e| BusError::Stream(config.name.clone(), err(e)))?;
                }
            }
        }
        Ok(())
    }

    /// Deletes the platform's streams (tests, and `ami` tooling that resets a namespace).
    pub async fn delete_streams(&self) -> Result<(), BusError> {
        for kind in StreamKind::ALL {
            let name = self.topology.stream(kind);
            if self.js.get_stream(&name).await.is_ok() {
                self.js
                    .delete_stream(&name)
                    .await
                    .map_err(|e| BusError::Stream(name.clone(), err(e)))?;
            }
        }
        Ok(())
    }

    /// Publishes `msgs`, pipelined: all are sent, then every ack is awaited. Fails on the first
    /// message the server did not store; the caller re-sends the batch, which the
    /// `Nats-Msg-Id`s make safe.
    pub async fn publish_batch(&self, msgs: Vec<Message>) -> Result<PublishReport, BusError> {
        let mut pending = std::collections::VecDeque::with_capacity(msgs.len());
        let mut report = PublishReport::default();
        for (at, msg) in msgs.into_iter().enumerate() {
            // The context holds back a publish while `max_in_flight` acks are outstanding, and
            // an ack settles only when its future is awaited: take the oldest first, so a
            // batch larger than the window flows instead of waiting on itself.
            if pending.len() >= self.max_in_flight
                && let Some(ack) = pending.pop_front()
            {
                settle(&mut report, ack).await?;
            }
            // async-nats panics on a header name or value it cannot send (CR, LF, ...):
            // convert fallibly, so such a message fails its publish instead of the task.
            let mut headers = HeaderMap::new();
            for (n, v) in msg.headers.iter() {
                let name = async_nats::HeaderName::from_str(n)
                    .map_err(|e| BusError::Publish(format!("header name {n:?}: {e}")))?;
                let value = async_nats::HeaderValue::from_str(v)
                    .map_err(|e| BusError::Publish(format!("header {n} value {v:?}: {e}")))?;
                headers.insert(name, value);
            }
            let publish = jetstream::message::PublishMessage::build()
                .payload(msg.payload)
                .headers(headers);
            let ack = self
                .js
                .send_publish(msg.subject, publish)
                .await
                .map_err(|e| BusError::Publish(err(e)))?;
            pending.push_back((at, ack));
        }
        for ack in pending {
            settle(&mut report, ack).await?;
        }
        Ok(report)
    }

    /// The durable pull consumer on `kind`'s stream, created if missing.
    pub async fn consumer(
        &self,
        kind: StreamKind,
        settings: &ConsumerSettings,
    ) -> Result<NatsConsumer, BusError> {
        let name = self.topology.stream(kind);
        let stream = self
            .js
            .get_stream(&name)
            .await
            .map_err(|e| BusError::Stream(name.clone(), err(e)))?;
        let config = consumer::pull::Config {
            durable_name: Some(settings.durable.clone()),
            filter_subject: settings.filter.clone().unwrap_or_default(),
            ack_policy: consumer::AckPolicy::Explicit,
            ack_wait: settings.ack_wait,
            max_ack_pending: settings.max_ack_pending,
            deliver_policy: consumer::DeliverPolicy::All,
            ..Default::default()
        };
        let inner = stream
            .get_or_create_consumer(&settings.durable, config)
            .await
            .map_err(|e| BusError::Consumer(settings.durable.clone(), err(e)))?;
        Ok(NatsConsumer { inner })
    }

    /// Messages stored in `kind`'s stream now.
    pub async fn stream_messages(&self, kind: StreamKind) -> Result<u64, BusError> {
        let name = self.topology.stream(kind);
        let mut s = self
            .js
            .get_stream(&name)
            .await
            .map_err(|e| BusError::Stream(name.clone(), err(e)))?;
        let info = s
            .info()
            .await
            .map_err(|e| BusError::Stream(name.clone(), err(e)))?;
        Ok(info.state.messages)
    }
}

/// A durable pull consumer.
#[derive(Debug, Clone)]
pub struct NatsConsumer {
    inner: consumer::Consumer<consumer::pull::Config>,
}

impl NatsConsumer {
    /// Up to `max` messages, waiting up to `wait` for them.
    pub async fn fetch(&self, max: usize, wait: Duration) -> Result<Vec<Delivery>, BusError> {
        let mut batch = self
            .inner
            .fetch()
            .max_messages(max.max(1))
            .expires(wait.max(Duration::from_millis(10)))
            .messages()
            .await
            .map_err(|e| BusError::Fetch(err(e)))?;
        let mut out = Vec::with_capacity(max);
        while let Some(next) = batch.next().await {
            let msg = next.map_err(|e| BusError::Fetch(err(e)))?;
            let (delivered, stream_seq) = msg
                .info()
                .map(|i| (u64::try_from(i.delivered).unwrap_or(1), i.stream_sequence))
                .unwrap_or((1, 0));
            let (m, acker) = msg.split();
            let mut headers = Headers::new();
            if let Some(h) = &m.headers {
                for (name, values) in h.iter() {
                    for v in values {
                        headers.insert(name.as_ref(), v.as_str());
                    }
                }
            }
            out.push(Delivery {
                message: Message {
                    subject: m.subject.to_string(),
                    headers,
                    payload: m.payload,
                },
                delivered,
                stream_seq,
                acker: Acker::Nats(acker),
            });
        }
        Ok(out)
    }
}
