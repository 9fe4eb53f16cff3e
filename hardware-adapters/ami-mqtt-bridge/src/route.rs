//! From an MQTT message to a spool frame: the first route whose filter matches the topic
//! names the protocol and the payload form; the payload gives the frame's bytes (and perhaps
//! the meter); the topic level the route names gives the meter otherwise.
//!
//! Every decode is bounded by the payload (which the broker connection already bounds) and
//! fails with a [`PayloadError`] that says what is wrong; nothing here panics.

use ami_adapter::SpoolFrame;
use base64::Engine as _;
use bytes::Bytes;
use serde::Deserialize;

use crate::config::{PayloadFormat, Route};

/// Why a payload gives no frame.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PayloadError {
    /// The payload is empty (or only whitespace).
    #[error("empty payload")]
    Empty,
    /// Hex text that is not hex.
    #[error("not hex: {0}")]
    Hex(String),
    /// Base64 text that is not base64.
    #[error("not base64: {0}")]
    Base64(String),
    /// JSON that is not the expected object.
    #[error("not a frame object: {0}")]
    Json(String),
    /// Text forms must be UTF-8.
    #[error("text payload is not UTF-8")]
    NotText,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonFrame {
    data: String,
    #[serde(default)]
    encoding: Option<String>,
    #[serde(default)]
    meter: Option<String>,
}

fn text(payload: &[u8]) -> Result<&str, PayloadError> {
    let t = std::str::from_utf8(payload)
        .map_err(|_| PayloadError::NotText)?
        .trim();
    if t.is_empty() {
        return Err(PayloadError::Empty);
    }
    Ok(t)
}

fn from_hex(t: &str) -> Result<Vec<u8>, PayloadError> {
    hex::decode(t).map_err(|e| PayloadError::Hex(e.to_string()))
}

fn from_base64(t: &str) -> Result<Vec<u8>, PayloadError> {
    base64::engine::general_purpose::STANDARD
        .decode(t)
        .map_err(|e| PayloadError::Base64(e.to_string()))
}

/// The frame's bytes and the meter the payload names, per `format`.
pub fn decode_payload(
    format: PayloadFormat,
    payload: &[u8],
) -> Result<(Vec<u8>, Option<String>), PayloadError> {
    match format {
        PayloadFormat::Raw => {
            if payload.is_empty() {
                return Err(PayloadError::Empty);
            }
            Ok((payload.to_vec(), None))
        }
        PayloadFormat::Hex => Ok((from_hex(text(payload)?)?, None)),
        PayloadFormat::Base64 => Ok((from_base64(text(payload)?)?, None)),
        PayloadFormat::Json => {
            let j: JsonFrame =
                serde_json::from_slice(payload).map_err(|e| PayloadError::Json(e.to_string()))?;
            let data = j.data.trim();
            if data.is_empty() {
                return Err(PayloadError::Empty);
            }
            let bytes = match j.encoding.as_deref().unwrap_or("base64") {
                "base64" => from_base64(data)?,
                "hex" => from_hex(data)?,
                other => {
                    return Err(PayloadError::Json(format!(
                        "encoding {other:?} (hex or base64)"
                    )));
                }
            };
            Ok((bytes, j.meter.filter(|m| !m.is_empty())))
        }
    }
}

/// What became of a message.
#[derive(Debug, PartialEq, Eq)]
pub enum Routed {
    /// A frame for the adapter.
    Frame(SpoolFrame),
    /// No route matches the topic.
    Unrouted,
    /// The route matched; the payload is bad.
    Bad(PayloadError),
}

/// Maps messages to frames by the routes, first match wins.
#[derive(Clone, Debug)]
pub struct Router {
    routes: Vec<Route>,
}

impl Router {
    /// A router over `routes`.
    pub fn new(routes: Vec<Route>) -> Self {
        Router { routes }
    }

    /// The routes.
    pub fn routes(&self) -> &[Route] {
        &self.routes
    }

    /// The frame of the message on `topic`, received at `received_at_ms`.
    pub fn route(&self, topic: &str, payload: &[u8], received_at_ms: i64) -> Routed {
        let Some(r) = self
            .routes
            .iter()
            .find(|r| rumqttc::matches(topic, &r.filter))
        else {
            return Routed::Unrouted;
        };
        match decode_payload(r.payload, payload) {
            Ok((data, meter)) => {
                let meter = meter.or_else(|| {
                    r.meter_level
                        .and_then(|l| topic.split('/').nth(l))
                        .filter(|m| !m.is_empty())
                        .map(str::to_owned)
                });
                Routed::Frame(SpoolFrame {
                    protocol: r.protocol.clone(),
                    meter_hint: meter,
                    received_at_ms,
                    traceparent: None,
                    rssi_dbm: None,
                    data: Bytes::from(data),
                })
            }
            Err(e) => Routed::Bad(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn router() -> Router {
        let r = |filter: &str, protocol: &str, payload, meter_level| Route {
            filter: filter.into(),
            protocol: protocol.into(),
            payload,
            meter_level,
        };
        Router::new(vec![
            r("dcu/+/p1", "dsmr", PayloadFormat::Raw, Some(1)),
            r("dcu/+/wmbus", "wmbus", PayloadFormat::Hex, None),
            r("dcu/+/iec", "iec62056-21", PayloadFormat::Base64, Some(1)),
            r("dcu/#", "dlms", PayloadFormat::Json, Some(1)),
        ])
    }

    fn frame(r: Routed) -> SpoolFrame {
        match r {
            Routed::Frame(f) => f,
            other => panic!("expected a frame, got {other:?}"),
        }
    }

    #[test]
    fn each_form_gives_the_frame() {
        let r = router();
        let f = frame(r.route("dcu/m-1/p1", b"/ABC5\r\n!\r\n", 7));
        assert_eq!(
            (f.protocol.as_str(), f.meter_hint.as_deref()),
            ("dsmr", Some("m-1"))
        );
        assert_eq!(f.data.as_ref(), b"/ABC5\r\n!\r\n");
        assert_eq!(f.received_at_ms, 7);
        let f = frame(r.route("dcu/x/wmbus", b" 2e44a511 \n", 0));
        assert_eq!(f.data.as_ref(), [0x2e, 0x44, 0xa5, 0x11]);
        assert_eq!(f.meter_hint, None);
        let f = frame(r.route("dcu/m-2/iec", b"AQID", 0));
        assert_eq!(f.data.as_ref(), [1, 2, 3]);
        let f = frame(r.route(
            "dcu/m-3/other",
            br#"{"data":"0a0b","encoding":"hex","meter":"E1"}"#,
            0,
        ));
        assert_eq!(
            (f.protocol.as_str(), f.meter_hint.as_deref()),
            ("dlms", Some("E1"))
        );
        assert_eq!(f.data.as_ref(), [0x0a, 0x0b]);
        let f = frame(r.route("dcu/m-3/other", br#"{"data":"AQID"}"#, 0));
        assert_eq!(
            (f.data.as_ref(), f.meter_hint.as_deref()),
            (&[1u8, 2, 3][..], Some("m-3"))
        );
    }

    #[test]
    fn bad_payloads_and_strangers() {
        let r = router();
        assert_eq!(r.route("other/x", b"1", 0), Routed::Unrouted);
        assert!(matches!(
            r.route("dcu/x/wmbus", b"zz", 0),
            Routed::Bad(PayloadError::Hex(_))
        ));
        assert!(matches!(
            r.route("dcu/x/wmbus", b"  ", 0),
            Routed::Bad(PayloadError::Empty)
        ));
        assert!(matches!(
            r.route("dcu/x/wmbus", b"\xff\xfe", 0),
            Routed::Bad(PayloadError::NotText)
        ));
        assert!(matches!(
            r.route("dcu/x/iec", b"!!", 0),
            Routed::Bad(PayloadError::Base64(_))
        ));
        assert!(matches!(
            r.route("dcu/x/p1", b"", 0),
            Routed::Bad(PayloadError::Empty)
        ));
        assert!(matches!(
            r.route("dcu/x/y", b"{\"data\":1}", 0),
            Routed::Bad(PayloadError::Json(_))
        ));
        assert!(matches!(
            r.route("dcu/x/y", br#"{"data":"AA","encoding":"rot13"}"#, 0),
            Routed::Bad(PayloadError::Json(_))
        ));
    }

    proptest! {
        #[test]
        fn random_payloads_never_panic(payload in proptest::collection::vec(any::<u8>(), 0..2048), topic in "[a-z/+#]{0,20}") {
            let r = router();
            for t in ["dcu/a/p1", "dcu/a/wmbus", "dcu/a/iec", "dcu/a/b", topic.as_str()] {
                let _ = r.route(t, &payload, 0);
            }
        }

        #[test]
        fn hex_and_base64_round_trip(data in proptest::collection::vec(any::<u8>(), 1..512)) {
            let r = router();
            let f = frame(r.route("dcu/a/wmbus", hex::encode(&data).as_bytes(), 0));
            prop_assert_eq!(f.data.as_ref(), data.as_slice());
            let b64 = base64::engine::general_purpose::STANDARD.encode(&data);
            let f = frame(r.route("dcu/a/iec", b64.as_bytes(), 0));
            prop_assert_eq!(f.data.as_ref(), data.as_slice());
            let j = serde_json::json!({"data": b64}).to_string();
            let f = frame(r.route("dcu/a/x", j.as_bytes(), 0));
            prop_assert_eq!(f.data.as_ref(), data.as_slice());
        }
    }
}
