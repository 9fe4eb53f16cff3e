//! ANSI C12.18 packet vectors (`tests/vectors/ansi-c12/ansi-c12.jsonl`): packets from
//! esp-idf-ansic1218's tests, their fields decoded by termineter, as
//! `{"packet": {...}, "psem": {...}}` (or `{"packets": [...], "reassembled_data_hex": ...}`
//! for a multi-packet message).
//!
//! ami-ansi-c12 reports a frame's structure as attributes under `0-0:128.D.E` (its
//! `registers` module): D 18 the packet (`identity` E 1, `control` E 2 as two hex digits,
//! `sequence` E 3, `length` E 4, `data_hex` E 5, `crc_hex` E 6 in wire order), D 20 the PSEM
//! service (`service` or `response` E 1, `table_id` E 2, `offset` E 3, `count` E 4,
//! `data_hex` / `table_data_hex` E 5, `cksum` E 6). Each field becomes an [`Expect::Text`].
//!
//! * `password_hex` (the security service's password) is not asserted: ami never outputs
//!   credentials.
//! * `cksum_ok: false` or `crc_ok: false` mark a frame the decoder must reject.
//! * A multi-packet vector feeds its earlier packets as separate frames; the decoder is
//!   stateless per frame, so the facts are the last packet's; the reassembled message is
//!   checked by the crate's own test on the whole capture.

use ami_domain::Obis;
use serde_json::Value;

use crate::{Expect, Expectations, PeerFormat, Vector, VectorError};

/// The termineter-decoded packet vectors.
pub struct C1218Packets;

const fn o(d: u8, e: u8) -> Obis {
    Obis::new(0, 0, 128, d, e, 255)
}

/// Packet fields: JSON key, register.
const PACKET: &[(&str, Obis)] = &[
    ("identity", o(18, 1)),
    ("control", o(18, 2)),
    ("sequence", o(18, 3)),
    ("length", o(18, 4)),
    ("data_hex", o(18, 5)),
    ("crc_hex", o(18, 6)),
];

/// PSEM fields: JSON key, register.
const PSEM: &[(&str, Obis)] = &[
    ("service", o(20, 1)),
    ("response", o(20, 1)),
    ("table_id", o(20, 2)),
    ("offset", o(20, 3)),
    ("count", o(20, 4)),
    ("data_hex", o(20, 5)),
    ("table_data_hex", o(20, 5)),
    ("cksum", o(20, 6)),
];

fn text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.to_ascii_lowercase()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn facts(obj: &Value, fields: &[(&str, Obis)], out: &mut Expectations) {
    for (key, register) in fields {
        if let Some(value) = obj.get(*key).and_then(text) {
            out.facts.push(Expect::Text {
                register: *register,
                value,
            });
        }
    }
    for flag in ["crc_ok", "cksum_ok"] {
        if obj.get(flag).and_then(Value::as_bool) == Some(false) {
            out.expect_error = true;
        }
    }
}

impl PeerFormat for C1218Packets {
    fn expectations(&self, v: &Vector) -> Result<Expectations, VectorError> {
        let exp = v.raw.get("expected").ok_or_else(|| VectorError::Expected {
            id: v.id.clone(),
            reason: "no expected".into(),
        })?;
        let mut out = Expectations::default();
        let packet = exp.get("packet").or_else(|| {
            exp.get("packets")
                .and_then(Value::as_array)
                .and_then(|a| a.last())
        });
        match packet {
            Some(p) => facts(p, PACKET, &mut out),
            None => {
                return Err(VectorError::Expected {
                    id: v.id.clone(),
                    reason: "neither packet nor packets".into(),
                });
            }
        }
        if let Some(p) = exp.get("psem") {
            facts(p, PSEM, &mut out);
        }
        Ok(out)
    }
}
