//! Frame bundles: several raw frames of one protocol from one adapter in one message.
//!
//! A concentrator or a busy adapter has frames by the hundred at once; one JetStream message
//! (and one ack) per frame would make the broker's per-message cost the platform's ceiling. A
//! bundle travels on the same subject as its frames would (`<root>.raw.<protocol>.<adapter>`)
//! with the header `Ami-Bundle: <count>` and a `Nats-Msg-Id` of its own; each frame inside
//! keeps its own id, so the host names every output after the frame, exactly as for a frame
//! sent alone, and a frame re-sent in a different bundle still yields its outputs once.
//!
//! Payload (all integers big-endian):
//!
//! ```text
//! "AMB1"  magic and version
//! u32     frame count
//! per frame:
//!   u16 + bytes   frame id (UTF-8)
//!   i64           received at, ms since the Unix epoch
//!   u8            flags: bit 0 meter hint, bit 1 traceparent, bit 2 RSSI; other bits 0
//!   [u16 + bytes] meter hint (UTF-8)        if bit 0
//!   [u8 + bytes]  traceparent (ASCII)       if bit 1
//!   [i16]         RSSI in dBm               if bit 2
//!   u32 + bytes   the frame
//! ```
//!
//! Reading a bundle checks every length against what is left before it slices, so a hostile
//! or cut payload is refused with the offset where it broke, never read past its end.

use bytes::Bytes;

use crate::envelope::{EnvelopeError, RawFrame};
use crate::message::{Headers, Message, header};
use crate::subjects::Topology;

/// The payload's first four bytes.
pub const MAGIC: &[u8; 4] = b"AMB1";

/// Header of a bundle message: how many frames it carries.
pub const BUNDLE_HEADER: &str = "Ami-Bundle";

/// Most frames one bundle may carry (and a reader accepts).
pub const MAX_FRAMES: usize = 65_536;

/// Longest protocol or adapter name a bundle's headers may give (each frame carries a copy).
pub const MAX_NAME: usize = 128;

const FLAG_METER: u8 = 1;
const FLAG_TRACE: u8 = 2;
const FLAG_RSSI: u8 = 4;

/// Why a frame cannot go into a bundle.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BundleError {
    /// No frames.
    #[error("a bundle needs at least one frame")]
    Empty,
    /// More frames than [`MAX_FRAMES`].
    #[error("{0} frames is more than a bundle carries ({MAX_FRAMES})")]
    TooMany(usize),
    /// Frames of different protocols or adapters.
    #[error("frame {id} is {protocol}/{adapter}, not the bundle's {want_protocol}/{want_adapter}")]
    Mixed {
        /// The odd frame's id.
        id: String,
        /// Its protocol.
        protocol: String,
        /// Its adapter.
        adapter: String,
        /// The bundle's protocol.
        want_protocol: String,
        /// The bundle's adapter.
        want_adapter: String,
    },
    /// A field longer than its length prefix can say.
    #[error("frame {id}: {field} is {len} bytes, more than a bundle can carry")]
    TooLong {
        /// The frame's id.
        id: String,
        /// Which field.
        field: &'static str,
        /// Its length.
        len: usize,
    },
}

/// Bytes `frame` takes in a bundle's payload (the payload is 8 bytes plus these).
pub fn encoded_len(f: &RawFrame) -> usize {
    2 + f.id.len()
        + 8
        + 1
        + f.meter_hint.as_ref().map_or(0, |m| 2 + m.len())
        + f.traceparent.as_ref().map_or(0, |t| 1 + t.len())
        + if f.rssi_dbm.is_some() { 2 } else { 0 }
        + 4
        + f.data.len()
}

/// The message carrying `frames` (one protocol, one adapter, in order) as one bundle with
/// the de-duplication id `id`.
pub fn to_message(
    frames: &[RawFrame],
    id: &str,
    topology: &Topology,
) -> Result<Message, BundleError> {
    let first = frames.first().ok_or(BundleError::Empty)?;
    if frames.len() > MAX_FRAMES {
        return Err(BundleError::TooMany(frames.len()));
    }
    let size: usize = frames.iter().map(encoded_len).sum();
    let mut out = Vec::with_capacity(8 + size);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&(frames.len() as u32).to_be_bytes());
    for f in frames {
        if f.protocol != first.protocol || f.adapter != first.adapter {
            return Err(BundleError::Mixed {
                id: f.id.clone(),
                protocol: f.protocol.clone(),
                adapter: f.adapter.clone(),
                want_protocol: first.protocol.clone(),
                want_adapter: first.adapter.clone(),
            });
        }
        let too_long = |field, len| BundleError::TooLong {
            id: f.id.clone(),
            field,
            len,
        };
        let id_len = u16::try_from(f.id.len()).map_err(|_| too_long("id", f.id.len()))?;
        out.extend_from_slice(&id_len.to_be_bytes());
        out.extend_from_slice(f.id.as_bytes());
        out.extend_from_slice(&f.received_at_ms.to_be_bytes());
        let flags = if f.meter_hint.is_some() {
            FLAG_METER
        } else {
            0
        } | if f.traceparent.is_some() {
            FLAG_TRACE
        } else {
            0
        } | if f.rssi_dbm.is_some() { FLAG_RSSI } else { 0 };
        out.push(flags);
        if let Some(m) = &f.meter_hint {
            let len = u16::try_from(m.len()).map_err(|_| too_long("meter hint", m.len()))?;
            out.extend_from_slice(&len.to_be_bytes());
            out.extend_from_slice(m.as_bytes());
        }
        if let Some(t) = &f.traceparent {
            let len = u8::try_from(t.len()).map_err(|_| too_long("traceparent", t.len()))?;
            out.push(len);
            out.extend_from_slice(t.as_bytes());
        }
        if let Some(r) = f.rssi_dbm {
            out.extend_from_slice(&r.to_be_bytes());
        }
        let len = u32::try_from(f.data.len()).map_err(|_| too_long("frame", f.data.len()))?;
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(&f.data);
    }
    let headers = Headers::new()
        .with(header::MSG_ID, id)
        .with(header::PROTOCOL, first.protocol.clone())
        .with(header::ADAPTER, first.adapter.clone())
        .with(BUNDLE_HEADER, frames.len().to_string());
    Ok(Message {
        subject: topology.raw(&first.protocol, &first.adapter),
        headers,
        payload: Bytes::from(out),
    })
}

/// Whether `msg` is a bundle (it has the `Ami-Bundle` header).
pub fn is_bundle(msg: &Message) -> bool {
    msg.headers.get(BUNDLE_HEADER).is_some()
}

/// The frames of a raw-frame message: the one frame of a plain message, or every frame of a
/// bundle, in order.
pub fn frames_of(msg: &Message) -> Result<Vec<RawFrame>, EnvelopeError> {
    if is_bundle(msg) {
        from_message(msg)
    } else {
        RawFrame::from_message(msg).map(|f| vec![f])
    }
}

/// The frames of a bundle message.
pub fn from_message(msg: &Message) -> Result<Vec<RawFrame>, EnvelopeError> {
    let h = &msg.headers;
    let need = |name: &'static str| h.get(name).ok_or(EnvelopeError::MissingHeader(name));
    let protocol = name(need(header::PROTOCOL)?, header::PROTOCOL)?;
    let adapter = name(need(header::ADAPTER)?, header::ADAPTER)?;
    let declared = need(BUNDLE_HEADER)?;
    let count: usize = declared
        .trim()
        .parse()
        .ok()
        .filter(|n| (1..=MAX_FRAMES).contains(n))
        .ok_or_else(|| EnvelopeError::BadHeader {
            name: BUNDLE_HEADER,
            value: declared.to_owned(),
        })?;
    let mut r = Reader {
        buf: &msg.payload,
        at: 0,
    };
    if r.take(4)? != MAGIC.as_slice() {
        return Err(EnvelopeError::Body(
            "a bundle must start with \"AMB1\"".into(),
        ));
    }
    let n = r.u32()? as usize;
    if n != count {
        return Err(EnvelopeError::Body(format!(
            "the payload holds {n} frames, the {BUNDLE_HEADER} header says {count}"
        )));
    }
    let mut frames = Vec::with_capacity(count.min(r.left() / 19 + 1));
    for _ in 0..count {
        let id = r.text16("frame id")?;
        if id.is_empty() {
            return Err(r.bad("a frame with an empty id".into()));
        }
        let received_at_ms = r.i64()?;
        let flags = r.u8()?;
        if flags & !(FLAG_METER | FLAG_TRACE | FLAG_RSSI) != 0 {
            return Err(r.bad(format!("unknown flags {flags:#04x} of frame {id}")));
        }
        let meter_hint = if flags & FLAG_METER != 0 {
            Some(r.text16("meter hint")?)
        } else {
            None
        };
        let traceparent = if flags & FLAG_TRACE != 0 {
            let len = r.u8()? as usize;
            let t = r.text(len, "traceparent")?;
            if !t.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(r.bad(format!("traceparent of frame {id} is not printable ASCII")));
            }
            Some(t)
        } else {
            None
        };
        let rssi_dbm = if flags & FLAG_RSSI != 0 {
            Some(i16::from_be_bytes(r.array()?))
        } else {
            None
        };
        let len = r.u32()? as usize;
        let start = r.at;
        r.take(len)?;
        frames.push(RawFrame {
            id,
            protocol: protocol.to_owned(),
            adapter: adapter.to_owned(),
            meter_hint,
            received_at_ms,
            traceparent,
            rssi_dbm,
            data: msg.payload.slice(start..start + len),
        });
    }
    if r.left() != 0 {
        return Err(r.bad(format!("{} bytes after the last frame", r.left())));
    }
    Ok(frames)
}

/// A protocol or adapter name from a bundle's headers: at most [`MAX_NAME`] bytes (each frame
/// of the bundle carries a copy), no whitespace, control characters or subject wildcards.
fn name<'a>(value: &'a str, header: &'static str) -> Result<&'a str, EnvelopeError> {
    let ok = !value.is_empty()
        && value.len() <= MAX_NAME
        && !value
            .chars()
            .any(|c| c.is_control() || c.is_whitespace() || matches!(c, '*' | '>'));
    if ok {
        Ok(value)
    } else {
        Err(EnvelopeError::BadHeader {
            name: header,
            value: value.chars().take(MAX_NAME).collect(),
        })
    }
}

/// A bounds-checked cursor over a bundle's payload.
struct Reader<'a> {
    buf: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn left(&self) -> usize {
        self.buf.len() - self.at
    }

    fn bad(&self, what: String) -> EnvelopeError {
        EnvelopeError::Body(format!("bundle at byte {}: {what}", self.at))
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], EnvelopeError> {
        if n > self.left() {
            return Err(self.bad(format!("needs {n} bytes, {} left", self.left())));
        }
        let s = &self.buf[self.at..self.at + n];
        self.at += n;
        Ok(s)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], EnvelopeError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    fn u8(&mut self) -> Result<u8, EnvelopeError> {
        Ok(self.array::<1>()?[0])
    }

    fn u32(&mut self) -> Result<u32, EnvelopeError> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    fn i64(&mut self) -> Result<i64, EnvelopeError> {
        Ok(i64::from_be_bytes(self.array()?))
    }

    /// `len` bytes of UTF-8 without control characters (they travel on in message headers,
    /// where CR and LF would break the protocol).
    fn text(&mut self, len: usize, field: &str) -> Result<String, EnvelopeError> {
        let at = self.at;
        let bytes = self.take(len)?;
        let text = std::str::from_utf8(bytes).map_err(|_| {
            EnvelopeError::Body(format!("bundle at byte {at}: {field} is not UTF-8"))
        })?;
        if text.chars().any(char::is_control) {
            return Err(EnvelopeError::Body(format!(
                "bundle at byte {at}: {field} holds a control character"
            )));
        }
        Ok(text.to_owned())
    }

    fn text16(&mut self, field: &str) -> Result<String, EnvelopeError> {
        let len = u16::from_be_bytes(self.array()?) as usize;
        self.text(len, field)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn frame(i: usize) -> RawFrame {
        RawFrame {
            id: format!("dcu-1:s:{i}"),
            protocol: "dlms".into(),
            adapter: "dcu-1".into(),
            meter_hint: i.is_multiple_of(2).then(|| format!("M{i}")),
            received_at_ms: 1_700_000_000_000 + i as i64,
            traceparent: i
                .is_multiple_of(3)
                .then(|| "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".into()),
            rssi_dbm: i.is_multiple_of(5).then_some(-(i as i16)),
            data: Bytes::from(vec![i as u8; i % 7]),
        }
    }

    #[test]
    fn round_trip_keeps_every_frame_and_field() {
        let t = Topology::default();
        let frames: Vec<RawFrame> = (0..50).map(frame).collect();
        let m = to_message(&frames, "dcu-1:s:0+50", &t).unwrap();
        assert_eq!(m.subject, "ami.raw.dlms.dcu-1");
        assert_eq!(m.msg_id(), Some("dcu-1:s:0+50"));
        assert_eq!(m.headers.get(BUNDLE_HEADER), Some("50"));
        assert!(is_bundle(&m));
        assert_eq!(frames_of(&m).unwrap(), frames);
        // A plain frame's message reads as that one frame.
        let one = frame(3).to_message(&t);
        assert!(!is_bundle(&one));
        assert_eq!(frames_of(&one).unwrap(), vec![frame(3)]);
    }

    #[test]
    fn a_bundle_is_one_protocol_and_adapter() {
        let t = Topology::default();
        let mut other = frame(1);
        other.protocol = "dsmr".into();
        assert!(matches!(
            to_message(&[frame(0), other], "x", &t),
            Err(BundleError::Mixed { .. })
        ));
        assert_eq!(to_message(&[], "x", &t), Err(BundleError::Empty));
    }

    #[test]
    fn hostile_bundles_are_refused_with_the_place() {
        let t = Topology::default();
        let frames: Vec<RawFrame> = (0..4).map(frame).collect();
        let good = to_message(&frames, "b", &t).unwrap();
        // Cut anywhere: an error, never a panic or a frame read past the end.
        for cut in 0..good.payload.len() {
            let mut m = good.clone();
            m.payload = good.payload.slice(..cut);
            assert!(from_message(&m).is_err(), "cut at {cut}");
        }
        // Trailing bytes, a count that disagrees, an absurd count, a bad magic.
        let mut m = good.clone();
        let mut p = good.payload.to_vec();
        p.push(0);
        m.payload = Bytes::from(p);
        assert!(
            matches!(from_message(&m), Err(EnvelopeError::Body(e)) if e.contains("after the last frame"))
        );
        let mut m = good.clone();
        m.headers.insert(BUNDLE_HEADER, "5");
        assert!(matches!(from_message(&m), Err(EnvelopeError::Body(e)) if e.contains("says 5")));
        for bad in ["0", "-1", "many", "4294967296"] {
            let mut m = good.clone();
            m.headers.insert(BUNDLE_HEADER, bad);
            assert!(matches!(
                from_message(&m),
                Err(EnvelopeError::BadHeader { .. })
            ));
        }
        let mut m = good.clone();
        let mut p = good.payload.to_vec();
        p[3] = b'9';
        m.payload = Bytes::from(p);
        assert!(matches!(from_message(&m), Err(EnvelopeError::Body(e)) if e.contains("AMB1")));
        let mut m = good;
        m.headers = Headers::new().with(BUNDLE_HEADER, "4");
        assert_eq!(
            from_message(&m),
            Err(EnvelopeError::MissingHeader(header::PROTOCOL))
        );
    }

    #[test]
    fn names_and_header_bound_fields_are_checked() {
        let t = Topology::default();
        let good = to_message(&[frame(0)], "b", &t).unwrap();
        for bad in ["", "a*", "dcu 1", "x\r\ny", &"a".repeat(MAX_NAME + 1)] {
            let mut m = good.clone();
            m.headers.insert(header::ADAPTER, bad);
            assert!(
                matches!(from_message(&m), Err(EnvelopeError::BadHeader { .. })),
                "{bad:?}"
            );
        }
        // A CR/LF in an id, a meter hint or a traceparent would break the headers the host
        // puts them in: refused.
        for (field, f) in [
            (
                "frame id",
                RawFrame {
                    id: "a\r\nb".into(),
                    ..frame(0)
                },
            ),
            (
                "meter hint",
                RawFrame {
                    meter_hint: Some("M\n1".into()),
                    ..frame(0)
                },
            ),
            (
                "traceparent",
                RawFrame {
                    traceparent: Some("00 x".into()),
                    ..frame(0)
                },
            ),
            (
                "empty id",
                RawFrame {
                    id: String::new(),
                    ..frame(0)
                },
            ),
        ] {
            let m = to_message(&[f], "b", &t).unwrap();
            assert!(
                matches!(from_message(&m), Err(EnvelopeError::Body(_))),
                "{field}"
            );
        }
    }

    proptest! {
        #[test]
        fn random_payloads_never_panic(payload in proptest::collection::vec(any::<u8>(), 0..512), count in 1usize..8) {
            let m = Message {
                subject: "ami.raw.dlms.a".into(),
                headers: Headers::new()
                    .with(header::PROTOCOL, "dlms")
                    .with(header::ADAPTER, "a")
                    .with(BUNDLE_HEADER, count.to_string()),
                payload: Bytes::from(payload),
            };
            let _ = from_message(&m);
        }

        #[test]
        fn mutated_bundles_never_panic(i in 0usize..200, b in any::<u8>()) {
            let frames: Vec<RawFrame> = (0..6).map(frame).collect();
            let mut m = to_message(&frames, "b", &Topology::default()).unwrap();
            let mut p = m.payload.to_vec();
            let at = i % p.len();
            p[at] = b;
            m.payload = Bytes::from(p);
            if let Ok(back) = from_message(&m) {
                prop_assert_eq!(back.len(), 6);
            }
        }
    }
}
