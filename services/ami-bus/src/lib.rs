//! The message bus of ami: how adapters, the host runtime and the services talk.
//!
//! Raw frames go up on `<root>.raw.<protocol>.<adapter>`, canonical readings and events come out
//! of the host on `<root>.readings.<meter>` and `<root>.events.<kind>.<meter>`, commands go down
//! on `<root>.cmd.<adapter>.<meter>`, and frames that cannot be decoded land on
//! `<root>.dead.<protocol>.<adapter>` with the reason. [`subjects`] makes every name;
//! [`envelope`] says what each message holds; a [`bundle`] carries many raw frames of one
//! protocol and adapter in one message.
//!
//! [`Bus`] is either NATS JetStream ([`nats`], production: durable pull consumers shared by
//! replicas, de-duplication by `Nats-Msg-Id`, explicit acks) or the in-process bus ([`local`],
//! the single-machine default of `ami up`), behind the same calls.

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod bundle;
pub mod command;
pub mod envelope;
pub mod local;
pub mod message;
pub mod nats;
pub mod subjects;
pub mod trace;

use std::sync::Arc;
use std::time::Duration;

pub use command::{
    AckResult, AckStatus, CommandAck, CommandError, CommandKind, CommandRequest, FailReason,
};
pub use envelope::{DeadKind, EventMessage, RawFrame, ReadingsMessage, WireReading};
pub use local::{LocalBus, LocalConsumer};
pub use message::{AckHandle, Delivery, Headers, Message, header};
pub use nats::{ConsumerSettings, NatsBus, NatsConsumer, StreamSettings};
pub use subjects::{StreamKind, Topology};

/// What went wrong on the bus.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BusError {
    /// No connection to NATS could be made.
    #[error("cannot connect to NATS at {0}")]
    Connect(String),
    /// A stream could not be created, read or updated.
    #[error("stream {0}: {1}")]
    Stream(String, String),
    /// A consumer could not be created.
    #[error("consumer {0}: {1}")]
    Consumer(String, String),
    /// No stream captures the subject.
    #[error("no stream captures subject {0}")]
    NoStream(String),
    /// A message was not stored.
    #[error("publish failed: {0}")]
    Publish(String),
    /// Messages could not be fetched.
    #[error("fetch failed: {0}")]
    Fetch(String),
    /// An ack could not be sent.
    #[error("ack failed: {0}")]
    Ack(String),
}

/// What a publish did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PublishReport {
    /// Messages stored.
    pub stored: usize,
    /// Messages dropped as duplicates of an id already stored.
    pub duplicates: usize,
    /// Positions in the batch of the messages found duplicates.
    pub duplicate_at: Vec<usize>,
}

/// The bus: NATS JetStream or the in-process default.
#[derive(Clone, Debug)]
#[allow(
    clippy::large_enum_variant,
    reason = "a long-lived handle made once per role"
)]
pub enum Bus {
    /// In-process.
    Local(Arc<LocalBus>),
    /// NATS JetStream.
    Nats(NatsBus),
}

impl Bus {
    /// The names in use.
    pub fn topology(&self) -> &Topology {
        match self {
            Bus::Local(b) => b.topology(),
            Bus::Nats(b) => b.topology(),
        }
    }

    /// Publishes `msgs`; returns once every one is stored (or found a duplicate).
    pub async fn publish_batch(&self, msgs: Vec<Message>) -> Result<PublishReport, BusError> {
        match self {
            Bus::Local(b) => b.publish_batch(msgs).await,
            Bus::Nats(b) => b.publish_batch(msgs).await,
        }
    }

    /// The durable consumer `settings.durable` on `kind`'s stream.
    pub async fn consumer(
        &self,
        kind: StreamKind,
        settings: &ConsumerSettings,
    ) -> Result<Consumer, BusError> {
        match self {
            Bus::Local(b) => Ok(Consumer::Local(b.consumer(
                kind,
                &settings.durable,
                settings.filter.clone(),
            )?)),
            Bus::Nats(b) => Ok(Consumer::Nats(b.consumer(kind, settings).await?)),
        }
    }
}

/// A durable consumer on either bus.
#[derive(Clone, Debug)]
#[allow(
    clippy::large_enum_variant,
    reason = "a long-lived handle made once per consumer"
)]
pub enum Consumer {
    /// In-process.
    Local(LocalConsumer),
    /// NATS JetStream.
    Nats(NatsConsumer),
}

impl Consumer {
    /// Up to `max` messages, waiting up to `wait`.
    pub async fn fetch(&self, max: usize, wait: Duration) -> Result<Vec<Delivery>, BusError> {
        match self {
            Consumer::Local(c) => c.fetch(max, wait).await,
            Consumer::Nats(c) => c.fetch(max, wait).await,
        }
    }
}

/// Whether `subject` matches the NATS pattern `filter` (`*` one token, `>` the rest).
pub fn subject_matches(filter: &str, subject: &str) -> bool {
    let mut f = filter.split('.');
    let mut s = subject.split('.');
    loop {
        match (f.next(), s.next()) {
            (Some(">"), Some(_)) => return true,
            (Some("*"), Some(_)) => {}
            (Some(a), Some(b)) if a == b => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::subject_matches;

    #[test]
    fn wildcards() {
        assert!(subject_matches("ami.raw.>", "ami.raw.dsmr.a"));
        assert!(!subject_matches("ami.raw.>", "ami.raw"));
        assert!(subject_matches("ami.*.dsmr.a", "ami.raw.dsmr.a"));
        assert!(!subject_matches("ami.*.dsmr", "ami.raw.dsmr.a"));
        assert!(subject_matches("ami.raw.dsmr.a", "ami.raw.dsmr.a"));
        assert!(!subject_matches("ami.raw.dsmr.b", "ami.raw.dsmr.a"));
    }
}
