//! What travels on the streams: raw frames (bytes plus headers), canonical readings and events
//! (JSON, so an operator can read them with `nats sub`), and dead letters (the frame as it came,
//! with the reason in headers).

use ami_domain::{Event, EventKind, Obis, Quality, Quantity, Reading, Unit};
use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::message::{Headers, Message, header};
use crate::subjects::Topology;

/// Why a message is not a well-formed envelope.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    /// A header the envelope needs is absent.
    #[error("header {0} is missing")]
    MissingHeader(&'static str),
    /// A header's value cannot be read.
    #[error("header {name} has a bad value {value:?}")]
    BadHeader {
        /// The header.
        name: &'static str,
        /// Its value.
        value: String,
    },
    /// The JSON body does not parse.
    #[error("bad body: {0}")]
    Body(String),
    /// A field of the body is out of its domain.
    #[error("bad field {field}: {value:?}")]
    Field {
        /// The field.
        field: &'static str,
        /// Its value.
        value: String,
    },
}

/// A raw frame as an adapter received it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawFrame {
    /// Unique id (`<adapter>:<sequence>`), the JetStream de-duplication id.
    pub id: String,
    /// Protocol name, as decoders' manifests name it (`dsmr`, `dlms`, `mbus`, ...).
    pub protocol: String,
    /// The adapter that received it.
    pub adapter: String,
    /// The meter the adapter believes sent it.
    pub meter_hint: Option<String>,
    /// When the adapter received it, ms since the Unix epoch, UTC.
    pub received_at_ms: i64,
    /// W3C trace context of the span that received it.
    pub traceparent: Option<String>,
    /// Received signal strength in dBm, for frames that came over radio and were measured.
    pub rssi_dbm: Option<i16>,
    /// The bytes.
    pub data: Bytes,
}

impl RawFrame {
    /// The message carrying it on `<root>.raw.<protocol>.<adapter>`.
    pub fn to_message(&self, topology: &Topology) -> Message {
        let mut headers = Headers::new()
            .with(header::MSG_ID, self.id.clone())
            .with(header::PROTOCOL, self.protocol.clone())
            .with(header::ADAPTER, self.adapter.clone())
            .with(header::RECEIVED_AT, self.received_at_ms.to_string());
        if let Some(m) = &self.meter_hint {
            headers.insert(header::METER, m.clone());
        }
        if let Some(t) = &self.traceparent {
            headers.insert(header::TRACEPARENT, t.clone());
        }
        if let Some(r) = self.rssi_dbm {
            headers.insert(header::RSSI_DBM, r.to_string());
        }
        Message {
            subject: topology.raw(&self.protocol, &self.adapter),
            headers,
            payload: self.data.clone(),
        }
    }

    /// Reads a frame back from its message.
    ///
    /// The RSSI header is optional metadata: a value that is not a whole number of dBm in
    /// `i16` range is logged as a warning and read as no RSSI, rather than refusing a frame
    /// whose bytes and required headers are good.
    pub fn from_message(msg: &Message) -> Result<RawFrame, EnvelopeError> {
        let h = &msg.headers;
        let need = |name: &'static str| h.get(name).ok_or(EnvelopeError::MissingHeader(name));
        let received = need(header::RECEIVED_AT)?;
        let rssi_dbm = h
            .get(header::RSSI_DBM)
            .and_then(|v| match v.trim().parse::<i16>() {
                Ok(r) => Some(r),
                Err(_) => {
                    tracing::warn!(
                        subject = %msg.subject,
                        msg_id = msg.msg_id().unwrap_or(""),
                        value = v,
                        "raw frame with a malformed {} header; read as no RSSI",
                        header::RSSI_DBM
                    );
                    None
                }
            });
        Ok(RawFrame {
            id: need(header::MSG_ID)?.to_owned(),
            protocol: need(header::PROTOCOL)?.to_owned(),
            adapter: need(header::ADAPTER)?.to_owned(),
            meter_hint: h.get(header::METER).map(str::to_owned),
            received_at_ms: received.parse().map_err(|_| EnvelopeError::BadHeader {
                name: header::RECEIVED_AT,
                value: received.to_owned(),
            })?,
            traceparent: h.get(header::TRACEPARENT).map(str::to_owned),
            rssi_dbm,
            data: msg.payload.clone(),
        })
    }
}

/// One reading on the wire.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireReading {
    /// OBIS code, `A-B:C.D.E*F`.
    pub register: String,
    /// Scaled integer: the value is `value * 10^scale` `unit`.
    pub value: i64,
    /// Power of ten.
    pub scale: i8,
    /// DLMS unit code.
    pub unit: u8,
    /// Interval end, ms since the Unix epoch, UTC.
    pub ts_ms: i64,
    /// Quality flag bits.
    pub quality: u16,
}

impl From<&Reading> for WireReading {
    fn from(r: &Reading) -> Self {
        WireReading {
            register: r.register.to_string(),
            value: r.value.mantissa,
            scale: r.value.scale,
            unit: r.unit as u8,
            ts_ms: r.ts_ms,
            quality: r.quality.0,
        }
    }
}

impl WireReading {
    /// The domain reading.
    pub fn to_reading(&self) -> Result<Reading, EnvelopeError> {
        let register: Obis = self.register.parse().map_err(|_| EnvelopeError::Field {
            field: "register",
            value: self.register.clone(),
        })?;
        let unit = Unit::from_code(self.unit).ok_or_else(|| EnvelopeError::Field {
            field: "unit",
            value: self.unit.to_string(),
        })?;
        Ok(Reading {
            register,
            value: Quantity {
                mantissa: self.value,
                scale: self.scale,
            },
            unit,
            ts_ms: self.ts_ms,
            quality: Quality(self.quality),
        })
    }
}

/// The readings of one decoded frame, on `<root>.readings.<meter>`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadingsMessage {
    /// The raw frame's id.
    pub frame: String,
    /// The meter.
    pub meter: String,
    /// The frame's protocol.
    pub protocol: String,
    /// The decoder that made them (`name@version`).
    pub decoder: String,
    /// When the adapter received the frame.
    pub received_at_ms: i64,
    /// The readings.
    pub readings: Vec<WireReading>,
    /// Non-numeric values: (register, text).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attributes: Vec<(String, String)>,
}

impl ReadingsMessage {
    /// The message on `<root>.readings.<meter>`, de-duplicated by the frame's id.
    pub fn to_message(&self, topology: &Topology, traceparent: Option<&str>) -> Message {
        let mut headers = Headers::new().with(header::MSG_ID, format!("{}:r", self.frame));
        if let Some(t) = traceparent {
            headers.insert(header::TRACEPARENT, t);
        }
        Message {
            subject: topology.readings(&self.meter),
            headers,
            payload: Bytes::from(serde_json::to_vec(self).unwrap_or_default()),
        }
    }

    /// Parses the body of a readings message.
    pub fn from_message(msg: &Message) -> Result<ReadingsMessage, EnvelopeError> {
        serde_json::from_slice(&msg.payload).map_err(|e| EnvelopeError::Body(e.to_string()))
    }
}

/// One event on the wire, on `<root>.events.<kind>.<meter>`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventMessage {
    /// The raw frame's id.
    pub frame: String,
    /// The meter.
    pub meter: String,
    /// What happened (`power-down`, `tamper`, ...).
    pub kind: String,
    /// When, ms since the Unix epoch, UTC.
    pub ts_ms: i64,
    /// The protocol's own event code.
    pub code: u32,
    /// The register it came from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Duration in seconds where the meter gives one.
    #[serde(default)]
    pub duration_s: u32,
}

impl EventMessage {
    /// The wire form of `event` from `meter`, decoded from frame `frame`.
    pub fn new(frame: &str, meter: &str, event: &Event) -> Self {
        EventMessage {
            frame: frame.to_owned(),
            meter: meter.to_owned(),
            kind: event.kind.name().to_owned(),
            ts_ms: event.ts_ms,
            code: event.code,
            source: event.source.map(|o| o.to_string()),
            duration_s: event.duration_s,
        }
    }

    /// The message, de-duplicated by frame id and position in the frame.
    pub fn to_message(
        &self,
        topology: &Topology,
        index: usize,
        traceparent: Option<&str>,
    ) -> Message {
        let mut headers = Headers::new().with(header::MSG_ID, format!("{}:e{index}", self.frame));
        if let Some(t) = traceparent {
            headers.insert(header::TRACEPARENT, t);
        }
        Message {
            subject: topology.event(&self.kind, &self.meter),
            headers,
            payload: Bytes::from(serde_json::to_vec(self).unwrap_or_default()),
        }
    }

    /// Parses the body of an event message.
    pub fn from_message(msg: &Message) -> Result<EventMessage, EnvelopeError> {
        serde_json::from_slice(&msg.payload).map_err(|e| EnvelopeError::Body(e.to_string()))
    }

    /// The event kind, if it is one ami knows.
    pub fn event_kind(&self) -> Option<EventKind> {
        EventKind::ALL.into_iter().find(|k| k.name() == self.kind)
    }
}

/// Why a frame became a dead letter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeadKind {
    /// The decoder rejected the frame (a typed decode error).
    Decode,
    /// The decoder's call failed in the sandbox (time, memory, trap, malformed result).
    Sandbox,
    /// The message is not a well-formed raw frame envelope.
    Envelope,
    /// No installed decoder serves the protocol.
    NoDecoder,
    /// Neither the frame nor the adapter names the meter.
    NoMeter,
    /// A downstream consumer refused the message's content (the store's checks).
    Refused,
}

impl DeadKind {
    /// Its name in the `Ami-Dead-Kind` header.
    pub const fn name(self) -> &'static str {
        match self {
            DeadKind::Decode => "decode",
            DeadKind::Sandbox => "sandbox",
            DeadKind::Envelope => "envelope",
            DeadKind::NoDecoder => "no-decoder",
            DeadKind::NoMeter => "no-meter",
            DeadKind::Refused => "refused",
        }
    }
}

/// The dead letter for `original` (its bytes and headers kept), on
/// `<root>.dead.<protocol>.<adapter>`.
pub fn dead_letter(
    topology: &Topology,
    original: &Message,
    kind: DeadKind,
    reason: &str,
    plugin: Option<&str>,
) -> Message {
    let h = &original.headers;
    let protocol = h.get(header::PROTOCOL).unwrap_or("unknown");
    let adapter = h.get(header::ADAPTER).unwrap_or("unknown");
    let mut headers = h.clone();
    let id = match h.get(header::MSG_ID) {
        Some(id) => format!("{id}:dead"),
        None => format!("{}:dead", original.subject),
    };
    headers.insert(header::MSG_ID, id);
    headers.insert(header::DEAD_KIND, kind.name());
    // Header values are one line; keep the reason readable and bounded.
    let reason: String = reason
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(1024)
        .collect();
    headers.insert(header::DEAD_REASON, reason);
    headers.insert(header::ORIGINAL_SUBJECT, original.subject.clone());
    if let Some(p) = plugin {
        headers.insert(header::PLUGIN, p);
    }
    Message {
        subject: topology.dead(protocol, adapter),
        headers,
        payload: original.payload.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame() -> RawFrame {
        RawFrame {
            id: "p1-a:42".into(),
            protocol: "dsmr".into(),
            adapter: "p1-a".into(),
            meter_hint: Some("E0025".into()),
            received_at_ms: 1_700_000_000_000,
            traceparent: Some("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".into()),
            rssi_dbm: None,
            data: Bytes::from_static(b"/ISK5\r\n!1234\r\n"),
        }
    }

    #[test]
    fn raw_frames_round_trip() {
        let t = Topology::default();
        let m = frame().to_message(&t);
        assert_eq!(m.subject, "ami.raw.dsmr.p1-a");
        assert_eq!(m.msg_id(), Some("p1-a:42"));
        assert_eq!(RawFrame::from_message(&m), Ok(frame()));
    }

    #[test]
    fn rssi_travels_in_its_header() {
        let t = Topology::default();
        let f = RawFrame {
            protocol: "wmbus".into(),
            rssi_dbm: Some(-87),
            ..frame()
        };
        let m = f.to_message(&t);
        assert_eq!(m.headers.get("Ami-Rssi-Dbm"), Some("-87"));
        assert_eq!(RawFrame::from_message(&m), Ok(f.clone()));
        // No header: no RSSI, and none is written for a frame without one.
        assert_eq!(frame().to_message(&t).headers.get(header::RSSI_DBM), None);
        for extreme in [i16::MIN, i16::MAX, 0] {
            let f = RawFrame {
                rssi_dbm: Some(extreme),
                ..frame()
            };
            assert_eq!(RawFrame::from_message(&f.to_message(&t)), Ok(f));
        }
        // A malformed value is read as no RSSI; the frame still reads.
        for bad in ["", "loud", "-87.5", "40000", "-", "0x10"] {
            let mut m = f.to_message(&t);
            m.headers.insert(header::RSSI_DBM, bad);
            let back = RawFrame::from_message(&m).unwrap();
            assert_eq!(back.rssi_dbm, None, "{bad:?}");
            assert_eq!(back.data, f.data);
        }
        let mut m = f.to_message(&t);
        m.headers.insert(header::RSSI_DBM, " -60 ");
        assert_eq!(RawFrame::from_message(&m).unwrap().rssi_dbm, Some(-60));
    }

    #[test]
    fn a_frame_without_its_headers_is_refused_clearly() {
        let mut m = frame().to_message(&Topology::default());
        m.headers = Headers::new().with(header::MSG_ID, "x");
        assert_eq!(
            RawFrame::from_message(&m),
            Err(EnvelopeError::MissingHeader(header::RECEIVED_AT))
        );
        m.headers = frame()
            .to_message(&Topology::default())
            .headers
            .with(header::RECEIVED_AT, "yesterday");
        assert!(matches!(
            RawFrame::from_message(&m),
            Err(EnvelopeError::BadHeader { .. })
        ));
    }

    #[test]
    fn readings_round_trip() {
        let r = Reading {
            register: Obis::new(1, 0, 1, 8, 1, 255),
            value: Quantity {
                mantissa: 123_456,
                scale: -3,
            },
            unit: Unit::WattHour,
            ts_ms: 1_700_000_000_000,
            quality: Quality::ESTIMATED,
        };
        let msg = ReadingsMessage {
            frame: "a:1".into(),
            meter: "E0025".into(),
            protocol: "dsmr".into(),
            decoder: "dsmr@0.1.0".into(),
            received_at_ms: 1,
            readings: vec![WireReading::from(&r)],
            attributes: vec![],
        };
        let m = msg.to_message(&Topology::default(), None);
        assert_eq!(m.subject, "ami.readings.e0025");
        assert_eq!(m.msg_id(), Some("a:1:r"));
        let back = ReadingsMessage::from_message(&m).unwrap();
        assert_eq!(back.readings[0].to_reading().unwrap(), r);
        let mut bad = back.readings[0].clone();
        bad.unit = 0;
        assert!(bad.to_reading().is_err());
    }

    #[test]
    fn dead_letters_keep_the_frame_and_say_why() {
        let t = Topology::default();
        let m = frame().to_message(&t);
        let d = dead_letter(
            &t,
            &m,
            DeadKind::Decode,
            "crc\nmismatch",
            Some("dsmr@0.1.0"),
        );
        assert_eq!(d.subject, "ami.dead.dsmr.p1-a");
        assert_eq!(d.payload, m.payload);
        assert_eq!(d.headers.get(header::DEAD_REASON), Some("crc mismatch"));
        assert_eq!(d.headers.get(header::DEAD_KIND), Some("decode"));
        assert_eq!(d.headers.get(header::PLUGIN), Some("dsmr@0.1.0"));
        assert_eq!(d.msg_id(), Some("p1-a:42:dead"));
    }
}
