//! DLMS/COSEM vectors (`tests/vectors/dlms/dlms.jsonl`): frames from dlms-cosem, amshan and the
//! Green Book, with `expected.published` (the source's test assertions), `expected.amshan`
//! (amshan 2.1.1 fields), `expected.dlms_cosem` (dlms-cosem 25.1.0 parse) and
//! `expected.gurux_xml` (gurux-dlms 1.0.203 translator XML).
//!
//! * **amshan fields** become facts: each name maps to its OBIS code (with the candidates
//!   meters use: group B = 0 or 1 (Kamstrup), Kaifa's `1-0:0.2.129` list version; the one
//!   the frame contains is chosen); numbers are [`Expect::Number`] in the base unit the name
//!   implies (W, var, A, V, Wh, varh), stamped with `meter_datetime` (a time without offset
//!   is read as UTC, as the decoder does); `list_ver_id`, `meter_id`, `meter_type` are
//!   [`Expect::Text`], and `meter_id` is also the [`Expect::Meter`].
//! * **dlms-cosem `body_parsed`** `[logical name, value, [scaler, unit]]` triples (when
//!   amshan says nothing) and **gurux-dlms XML** `{OctetString(6), number, {Int8, Enum}}`
//!   structures (when neither does) become numbers in the DLMS unit.
//! * **Ciphered pushes**: the system title is the [`Expect::Meter`]; a notification body that
//!   is not a list of objects is [`Expect::Text`] of `0-0:25.9.0.255` (its A-XDR hex, as the
//!   decoder keeps it).
//! * Decisions: Kaifa's `09 0C` notification date-time is accepted (amshan does; gurux-dlms
//!   and dlms-cosem reject it): its frames must decode to amshan's values, not fail.
//! * Skips, each with its reason: association and control frames, requests and responses
//!   that carry no meter data ([`CONTROL_SKIP`]); get-responses without their request
//!   ([`RESPONSE_SKIP`]); datablock fragments ([`BLOCK_SKIP`]); the bare A-XDR profile buffer
//!   ([`PROFILE_SKIP`]); the HDLC framing-only vector ([`FRAMING_SKIP`]). The crate's own
//!   tests check their fields.

use ami_domain::{Obis, Quantity, Unit};
use serde_json::{Map, Value};

use crate::{Expect, Expectations, PeerFormat, Vector, VectorError};

/// The DLMS peers' outputs.
pub struct DlmsPeers;

/// Why association and control frames are skipped.
pub const CONTROL_SKIP: &str = "association/control frame: no meter data (fields checked by \
    the ami-dlms unit tests)";
/// Why get-responses are skipped.
pub const RESPONSE_SKIP: &str = "get-response without its request: the attribute is named in \
    the request, the adapter pairs them (fields checked by the ami-dlms unit tests)";
/// Why datablock fragments are skipped.
pub const BLOCK_SKIP: &str = "get-response-with-datablock fragment: the adapter reassembles blocks (decoder answers Unsupported)";
/// Why the A-XDR buffer is skipped.
pub const PROFILE_SKIP: &str = "bare A-XDR profile buffer: its capture objects come from the \
    association (checked by ami-dlms's profile test)";
/// Why the HDLC framing vector is skipped.
pub const FRAMING_SKIP: &str = "HDLC framing only: the peers publish the payload, not its \
    values (payload checked by the ami-dlms tests)";

const fn o(a: u8, b: u8, c: u8, d: u8, e: u8) -> Obis {
    Obis::new(a, b, c, d, e, 255)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Shape {
    Number(Unit),
    Text,
}

/// amshan field name, candidate OBIS codes, shape.
#[rustfmt::skip]
const AMSHAN: &[(&str, &[Obis], Shape)] = &[
    ("list_ver_id", &[o(1, 1, 0, 2, 129), o(1, 0, 0, 2, 129)], Shape::Text),
    ("meter_id", &[o(0, 0, 96, 1, 0), o(1, 1, 0, 0, 5)], Shape::Text),
    ("meter_type", &[o(0, 0, 96, 1, 7), o(1, 1, 96, 1, 1)], Shape::Text),
    ("active_power_import", &[o(1, 0, 1, 7, 0), o(1, 1, 1, 7, 0)], Shape::Number(Unit::Watt)),
    ("active_power_export", &[o(1, 0, 2, 7, 0), o(1, 1, 2, 7, 0)], Shape::Number(Unit::Watt)),
    ("reactive_power_import", &[o(1, 0, 3, 7, 0), o(1, 1, 3, 7, 0)], Shape::Number(Unit::Var)),
    ("reactive_power_export", &[o(1, 0, 4, 7, 0), o(1, 1, 4, 7, 0)], Shape::Number(Unit::Var)),
    ("current_l1", &[o(1, 0, 31, 7, 0), o(1, 1, 31, 7, 0)], Shape::Number(Unit::Ampere)),
    ("current_l2", &[o(1, 0, 51, 7, 0), o(1, 1, 51, 7, 0)], Shape::Number(Unit::Ampere)),
    ("current_l3", &[o(1, 0, 71, 7, 0), o(1, 1, 71, 7, 0)], Shape::Number(Unit::Ampere)),
    ("voltage_l1", &[o(1, 0, 32, 7, 0), o(1, 1, 32, 7, 0)], Shape::Number(Unit::Volt)),
    ("voltage_l2", &[o(1, 0, 52, 7, 0), o(1, 1, 52, 7, 0)], Shape::Number(Unit::Volt)),
    ("voltage_l3", &[o(1, 0, 72, 7, 0), o(1, 1, 72, 7, 0)], Shape::Number(Unit::Volt)),
    ("active_power_import_l1", &[o(1, 0, 21, 7, 0)], Shape::Number(Unit::Watt)),
    ("active_power_export_l1", &[o(1, 0, 22, 7, 0)], Shape::Number(Unit::Watt)),
    ("reactive_power_import_l1", &[o(1, 0, 23, 7, 0)], Shape::Number(Unit::Var)),
    ("reactive_power_export_l1", &[o(1, 0, 24, 7, 0)], Shape::Number(Unit::Var)),
    ("active_power_import_l2", &[o(1, 0, 41, 7, 0)], Shape::Number(Unit::Watt)),
    ("active_power_export_l2", &[o(1, 0, 42, 7, 0)], Shape::Number(Unit::Watt)),
    ("reactive_power_import_l2", &[o(1, 0, 43, 7, 0)], Shape::Number(Unit::Var)),
    ("reactive_power_export_l2", &[o(1, 0, 44, 7, 0)], Shape::Number(Unit::Var)),
    ("active_power_import_l3", &[o(1, 0, 61, 7, 0)], Shape::Number(Unit::Watt)),
    ("active_power_export_l3", &[o(1, 0, 62, 7, 0)], Shape::Number(Unit::Watt)),
    ("reactive_power_import_l3", &[o(1, 0, 63, 7, 0)], Shape::Number(Unit::Var)),
    ("reactive_power_export_l3", &[o(1, 0, 64, 7, 0)], Shape::Number(Unit::Var)),
    ("active_power_import_total", &[o(1, 0, 1, 8, 0), o(1, 1, 1, 8, 0)], Shape::Number(Unit::WattHour)),
    ("active_power_export_total", &[o(1, 0, 2, 8, 0), o(1, 1, 2, 8, 0)], Shape::Number(Unit::WattHour)),
    ("reactive_power_import_total", &[o(1, 0, 3, 8, 0), o(1, 1, 3, 8, 0)], Shape::Number(Unit::VarHour)),
    ("reactive_power_export_total", &[o(1, 0, 4, 8, 0), o(1, 1, 4, 8, 0)], Shape::Number(Unit::VarHour)),
];

/// The `push setup` register the decoder keeps unlisted notification bodies under.
const PUSH_SETUP: Obis = o(0, 0, 25, 9, 0);

struct Reader<'a> {
    v: &'a Vector,
}

impl Reader<'_> {
    fn bad(&self, reason: String) -> VectorError {
        VectorError::Expected {
            id: self.v.id.clone(),
            reason,
        }
    }

    /// The candidate whose logical name the frame contains, else the first.
    fn pick(&self, candidates: &[Obis]) -> Option<Obis> {
        candidates
            .iter()
            .find(|c| {
                let ln = c.to_bytes();
                self.v.frame.windows(6).any(|w| w == ln)
            })
            .or_else(|| candidates.first())
            .copied()
    }

    fn amshan(&self, fields: &Map<String, Value>) -> Result<Vec<Expect>, VectorError> {
        let ts_ms = match fields.get("meter_datetime") {
            Some(Value::String(t)) => Some(
                ami_domain::time::parse_rfc3339(t)
                    .ok_or_else(|| self.bad(format!("meter_datetime {t:?}")))?,
            ),
            _ => None,
        };
        let mut facts = Vec::new();
        for (name, value) in fields {
            if matches!(name.as_str(), "meter_manufacturer" | "meter_datetime") {
                continue;
            }
            let (_, candidates, shape) = AMSHAN
                .iter()
                .find(|(n, _, _)| n == name)
                .ok_or_else(|| self.bad(format!("amshan field {name} has no OBIS mapping")))?;
            let register = self
                .pick(candidates)
                .ok_or_else(|| self.bad(format!("{name}: no register")))?;
            match (shape, value) {
                (Shape::Text, Value::String(s)) => {
                    if name == "meter_id" {
                        facts.push(Expect::Meter(s.clone()));
                    }
                    facts.push(Expect::Text {
                        register,
                        value: s.clone(),
                    });
                }
                (Shape::Number(unit), Value::Number(n)) => facts.push(Expect::Number {
                    register,
                    value: decimal(&n.to_string())
                        .ok_or_else(|| self.bad(format!("{name}: {n} is not a decimal")))?,
                    unit: *unit,
                    ts_ms,
                }),
                _ => return Err(self.bad(format!("{name}: unexpected value {value}"))),
            }
        }
        Ok(facts)
    }

    fn body_parsed(&self, items: &[Value]) -> Result<Vec<Expect>, VectorError> {
        let mut facts = Vec::new();
        for item in items {
            let Some([ln, Value::Number(n), Value::Array(su)]) = item.as_array().map(Vec::as_slice)
            else {
                continue;
            };
            let Some(register) = ln.get("octets").and_then(Value::as_str).and_then(obis_hex) else {
                continue;
            };
            let (Some(scaler), Some(unit)) = (
                su.first().and_then(Value::as_i64),
                su.get(1).and_then(Value::as_u64),
            ) else {
                continue;
            };
            facts.push(
                number(register, &n.to_string(), scaler, unit)
                    .ok_or_else(|| self.bad(format!("body_parsed value {n} {scaler} {unit}")))?,
            );
        }
        Ok(facts)
    }
}

fn number(register: Obis, mantissa: &str, scaler: i64, unit: u64) -> Option<Expect> {
    Some(Expect::Number {
        register,
        value: decimal(mantissa)?.shifted(i8::try_from(scaler).ok()?)?,
        unit: Unit::from_code(u8::try_from(unit).ok()?).unwrap_or(Unit::Other),
        ts_ms: None,
    })
}

fn obis_hex(h: &str) -> Option<Obis> {
    let b = hex::decode(h).ok()?;
    <[u8; 6]>::try_from(b.as_slice()).ok().map(Obis::from_bytes)
}

/// A JSON number's text as a decimal.
fn decimal(text: &str) -> Option<Quantity> {
    match text.split_once(['e', 'E']) {
        Some((m, e)) => m.parse::<Quantity>().ok()?.shifted(e.parse().ok()?),
        None => text.parse().ok(),
    }
}

/// The `Value="..."` of a gurux XML line.
fn xml_value(line: &str) -> Option<&str> {
    let start = line.find("Value=\"")? + 7;
    let rest = line.get(start..)?;
    rest.get(..rest.find('"')?)
}

/// `{OctetString(6), number, {Int8 scaler, Enum unit}}` structures of gurux-dlms XML.
fn gurux_registers(xml: &str) -> Vec<Expect> {
    let lines: Vec<&str> = xml
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("<!--"))
        .collect();
    let mut facts = Vec::new();
    for w in lines.windows(7) {
        let [open, ln, value, su, scaler, unit, _] = w else {
            continue;
        };
        if !open.starts_with("<Structure Qty=\"03\"")
            || !ln.starts_with("<OctetString ")
            || !su.starts_with("<Structure Qty=\"02\"")
            || !scaler.starts_with("<Int8 ")
            || !unit.starts_with("<Enum ")
        {
            continue;
        }
        let signed = value.starts_with("<Int");
        let unsigned = value.starts_with("<UInt");
        if !signed && !unsigned {
            continue;
        }
        let (Some(register), Some(raw), Some(s), Some(u)) = (
            xml_value(ln).and_then(obis_hex),
            xml_value(value).and_then(|v| u64::from_str_radix(v, 16).ok().map(|r| (r, v.len()))),
            xml_value(scaler).and_then(|v| u8::from_str_radix(v, 16).ok()),
            xml_value(unit).and_then(|v| u64::from_str_radix(v, 16).ok()),
        ) else {
            continue;
        };
        let (raw, digits) = raw;
        let v = if signed && digits < 16 && raw >> (digits * 4 - 1) & 1 == 1 {
            i128::from(raw) - (1i128 << (digits * 4))
        } else {
            i128::from(raw)
        };
        if let Some(f) = number(register, &v.to_string(), i64::from(s as i8), u) {
            facts.push(f);
        }
    }
    facts
}

/// The gurux service element (`DataNotification`, `Snrm`, `GetResponse`, ...), after the
/// framing elements.
fn gurux_service(xml: &str) -> Option<&str> {
    xml.split('<')
        .skip(1)
        .map(|t| t.split([' ', '>', '/']).next().unwrap_or_default())
        .find(|t| {
            !t.is_empty()
                && !t.starts_with("!--")
                && !matches!(
                    *t,
                    "HDLC" | "WRAPPER" | "TargetAddress" | "SourceAddress" | "FrameType" | "PDU"
                )
        })
}

impl PeerFormat for DlmsPeers {
    fn expectations(&self, v: &Vector) -> Result<Expectations, VectorError> {
        let r = Reader { v };
        let expected = v
            .raw
            .get("expected")
            .and_then(Value::as_object)
            .ok_or_else(|| r.bad("no expected object".into()))?;
        let xml = expected
            .get("gurux_xml")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let dc = expected.get("dlms_cosem");
        let skip = |why: &str| {
            Ok(Expectations {
                skip: Some(why.to_owned()),
                ..Expectations::default()
            })
        };
        // The ciphered APDU's decrypted service shows in gurux's comment: take the service
        // from the first element either way.
        match gurux_service(xml) {
            Some(
                "Snrm"
                | "Ua"
                | "Disc"
                | "AssociationRequest"
                | "AssociationResponse"
                | "GetRequest"
                | "SetRequest"
                | "SetResponse"
                | "ActionRequest"
                | "ActionResponse"
                | "InitiateRequest"
                | "InitiateResponse",
            ) => return skip(CONTROL_SKIP),
            Some("GetResponse") => {
                let fragment = xml.contains("GetResponsewithDataBlock") && xml.contains("<RawData");
                return skip(if fragment { BLOCK_SKIP } else { RESPONSE_SKIP });
            }
            Some("Array" | "Structure")
                if v.raw.get("layer").and_then(Value::as_str) == Some("axdr") =>
            {
                return skip(PROFILE_SKIP);
            }
            _ => {}
        }
        let mut facts = Vec::new();
        if let Some(fields) = expected.get("amshan").and_then(Value::as_object) {
            facts.extend(r.amshan(fields)?);
        } else if let Some(items) = dc
            .and_then(|d| d.get("body_parsed"))
            .and_then(Value::as_array)
        {
            facts.extend(r.body_parsed(items)?);
        } else {
            facts.extend(gurux_registers(xml));
        }
        if let Some(st) = dc
            .and_then(|d| d.pointer("/apdu/system_title/octets"))
            .and_then(Value::as_str)
        {
            facts.push(Expect::Meter(st.to_owned()));
        }
        let body = dc
            .and_then(|d| d.pointer("/plain_apdu/body/octets"))
            .or_else(|| dc.and_then(|d| d.pointer("/apdu/body/octets")))
            .and_then(Value::as_str);
        if let Some(body) = body.filter(|b| b.starts_with("09")) {
            facts.push(Expect::Text {
                register: PUSH_SETUP,
                value: body.to_owned(),
            });
        }
        if facts.is_empty() && expected.get("amshan_payload_hex").is_some() {
            return skip(FRAMING_SKIP);
        }
        Ok(Expectations {
            facts,
            expect_error: false,
            skip: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique() {
        for (i, (name, candidates, _)) in AMSHAN.iter().enumerate() {
            assert!(!candidates.is_empty(), "{name}");
            assert!(
                AMSHAN.iter().skip(i + 1).all(|(n, _, _)| n != name),
                "{name}"
            );
        }
    }

    #[test]
    fn gurux_structures() {
        let xml = "<Structure Qty=\"03\" >\r\n<!--1.0.31.7.0.255-->\r\n<OctetString Value=\"01001F0700FF\" />\r\n<Int16 Value=\"FFFE\" />\r\n<Structure Qty=\"02\" >\r\n<Int8 Value=\"FF\" />\r\n<Enum Value=\"21\" />\r\n</Structure>\r\n</Structure>";
        assert_eq!(
            gurux_registers(xml),
            vec![Expect::Number {
                register: o(1, 0, 31, 7, 0),
                value: Quantity::new(-2, -1),
                unit: Unit::Ampere,
                ts_ms: None,
            }]
        );
    }
}
