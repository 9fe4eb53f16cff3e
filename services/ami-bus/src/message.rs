//! A message on the bus (subject, headers, payload) and a delivery waiting for its ack.

use bytes::Bytes;

/// Header names ami puts on its messages.
pub mod header {
    /// JetStream's de-duplication id.
    pub const MSG_ID: &str = "Nats-Msg-Id";
    /// The protocol of a raw frame (exact, where the subject holds it as a token).
    pub const PROTOCOL: &str = "Ami-Protocol";
    /// The adapter that received a frame.
    pub const ADAPTER: &str = "Ami-Adapter";
    /// The meter the adapter believes sent a frame.
    pub const METER: &str = "Ami-Meter";
    /// When the adapter received a frame, ms since the Unix epoch.
    pub const RECEIVED_AT: &str = "Ami-Received-At";
    /// Received signal strength of a frame that came over radio, in whole dBm (`-87`). A
    /// value that is not an `i16` is ignored by `RawFrame::from_message` (with a warning): the
    /// frame itself is good.
    pub const RSSI_DBM: &str = "Ami-Rssi-Dbm";
    /// Why a frame is a dead letter.
    pub const DEAD_REASON: &str = "Ami-Dead-Reason";
    /// The class of failure of a dead letter (`decode`, `sandbox`, `envelope`, `no-decoder`,
    /// `no-meter`).
    pub const DEAD_KIND: &str = "Ami-Dead-Kind";
    /// The plugin (name@version) that handled a frame.
    pub const PLUGIN: &str = "Ami-Plugin";
    /// The subject a dead letter was first published on.
    pub const ORIGINAL_SUBJECT: &str = "Ami-Original-Subject";
    /// W3C trace context.
    pub const TRACEPARENT: &str = "traceparent";
}

/// Message headers, in order; names compare case-insensitively.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Headers(Vec<(String, String)>);

impl Headers {
    /// No headers.
    pub fn new() -> Self {
        Headers(Vec::new())
    }

    /// The first value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Sets `name` to `value`, replacing earlier values.
    pub fn insert(&mut self, name: &str, value: impl Into<String>) {
        self.0.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        self.0.push((name.to_owned(), value.into()));
    }

    /// Builder form of [`Headers::insert`].
    #[must_use]
    pub fn with(mut self, name: &str, value: impl Into<String>) -> Self {
        self.insert(name, value);
        self
    }

    /// Every header.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// One message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    /// Where it goes.
    pub subject: String,
    /// Its headers.
    pub headers: Headers,
    /// Its body.
    pub payload: Bytes,
}

impl Message {
    /// Its de-duplication id, if it has one.
    pub fn msg_id(&self) -> Option<&str> {
        self.headers.get(header::MSG_ID)
    }
}

/// A message handed to a consumer; the consumer acks it once its effects are durable.
#[derive(Debug)]
pub struct Delivery {
    /// The message.
    pub message: Message,
    /// How many times it has been delivered (1 the first time).
    pub delivered: u64,
    /// Its sequence in the stream.
    pub stream_seq: u64,
    pub(crate) acker: Acker,
}

#[allow(
    clippy::large_enum_variant,
    reason = "one per delivery, moved rather than copied; boxing would add an allocation per message"
)]
pub(crate) enum Acker {
    /// The in-process bus delivers once; nothing to acknowledge.
    Local,
    /// JetStream: `+ACK` to the reply subject.
    Nats(async_nats::jetstream::message::Acker),
}

impl std::fmt::Debug for Acker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Acker::Local => "Acker::Local",
            Acker::Nats(_) => "Acker::Nats",
        })
    }
}

impl Delivery {
    /// Acknowledges the message: it will not be delivered again.
    pub async fn ack(self) -> Result<(), crate::BusError> {
        match self.acker {
            Acker::Local => Ok(()),
            Acker::Nats(a) => a
                .ack()
                .await
                .map_err(|e| crate::BusError::Ack(e.to_string())),
        }
    }

    /// Splits the message from its ack handle.
    pub fn into_parts(self) -> (Message, AckHandle) {
        (self.message, AckHandle(self.acker))
    }
}

/// The ack half of a [`Delivery`], kept while its message is being processed.
#[derive(Debug)]
pub struct AckHandle(Acker);

impl AckHandle {
    /// Acknowledges the message.
    pub async fn ack(self) -> Result<(), crate::BusError> {
        match self.0 {
            Acker::Local => Ok(()),
            Acker::Nats(a) => a
                .ack()
                .await
                .map_err(|e| crate::BusError::Ack(e.to_string())),
        }
    }
}
