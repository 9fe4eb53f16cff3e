//! IEC 62056-21 readouts: the `expected` of smartmeter-obis (`Apollon77/smartmeter-obis`,
//! D0Protocol parse) and of amshan (`toreamun/amshan`, `DataReadout` + `AutoDecoder`).
//!
//! Canonical terms are those of the `ami-iec62056-21` decoder: a value with a known unit is a
//! number in the base unit (prefix moved into the scale); every other value (no unit, an
//! unknown unit, a date, an empty `()`) is text exactly as sent; a reduced address without
//! `A-B:` is `1-0:`, a missing group is 255.
//!
//! smartmeter-obis (`expected.obis`: key → `rawValue` + `values`):
//! * Keys are `A-B:C.D.E*F` with groups left out (`6-0:6.8`, `97`). The peer puts the medium
//!   its test configured ("OBIS medium fallback = N" in `expected_origin`) on addresses that
//!   have none; a key `N-0:` with N ≠ 1 is read back as such an address (`1-0:`).
//! * `rawValue` holds the parenthesised values joined by ", ". A value `number*unit` with a
//!   unit we know is an [`Expect::Number`], its number the peer's parsed JSON number where
//!   the peer gives one per value, else the raw digits. Everything else is [`Expect::Text`],
//!   including the peer's `&` compounds of heat meters (`088*C&082*C`), which it splits and
//!   the decoder keeps whole.
//! * The meter is the first non-empty value of 96.1.0, 96.1.255, 96.1.1, 0.0.0, 0.0.255
//!   (B = 0, F = 255): ami's rule applied to the peer's parse.
//! * `bcc.bcc_ok == false` (the published BCC is not the XOR of the bytes) is a negative case.
//!
//! amshan (`expected.decoded`, keyed by field name or by `C.D.E`):
//! * amshan drops groups A and B; they are taken from the frame's own address for that
//!   C.D.E (an error if the frame does not hold it exactly once).
//! * kW, kWh, kvar, kvarh values are `int(float(text) * 1000)` in W, Wh, var, varh, which can
//!   fall one below the exact value (`518.309 kVArh` gives 518308). A fact is kept only when
//!   exactly one 3-decimal value gives the integer: the two that are ambiguous in the file
//!   assert nothing. V and A values are floats, other values text. The unit follows from the
//!   OBIS code (active/reactive power and energy, current, voltage).
//! * `meter_datetime` (a local time without zone, derived from `0-0:1.0.0`) and the
//!   identification fields assert nothing; without a `meter_id`/`meter_type` field the
//!   identification without `/` is the meter.
//! * `is_valid == false` is a negative case.

use ami_domain::{Obis, Quantity, Unit};
use serde_json::Value;

use crate::{Expect, Expectations, PeerFormat, Vector, VectorError};

/// smartmeter-obis and amshan, told apart by the shape of `expected`.
pub struct Iec6205621;

impl PeerFormat for Iec6205621 {
    fn expectations(&self, vector: &Vector) -> Result<Expectations, VectorError> {
        let expected = vector
            .raw
            .get("expected")
            .ok_or_else(|| error(vector, "no expected"))?;
        if let Some(obis) = expected.get("obis") {
            smartmeter_obis(vector, obis)
        } else if let Some(decoded) = expected.get("decoded") {
            amshan(vector, expected, decoded)
        } else {
            Err(error(
                vector,
                "expected has neither obis (smartmeter-obis) nor decoded (amshan)",
            ))
        }
    }
}

fn error(vector: &Vector, reason: impl Into<String>) -> VectorError {
    VectorError::Expected {
        id: vector.id.clone(),
        reason: reason.into(),
    }
}

/// The registers that name the meter, most specific first (C, D, E; B = 0, F = 255).
const METER_REGISTERS: [(u8, u8, u8); 5] =
    [(96, 1, 0), (96, 1, 255), (96, 1, 1), (0, 0, 0), (0, 0, 255)];

fn smartmeter_obis(vector: &Vector, obis: &Value) -> Result<Expectations, VectorError> {
    let map = obis
        .as_object()
        .ok_or_else(|| error(vector, "expected.obis is not an object"))?;
    let fallback = medium_fallback(vector);
    let mut facts = Vec::new();
    let mut firsts: Vec<(Obis, &str)> = Vec::new();
    for (key, entry) in map {
        let mut register =
            parse_key(key).ok_or_else(|| error(vector, format!("OBIS key {key:?}")))?;
        if let Some(medium) = fallback
            && medium != 1
            && register.a == medium
            && register.b == 0
        {
            register.a = 1;
        }
        let raw = entry
            .get("rawValue")
            .and_then(Value::as_str)
            .ok_or_else(|| error(vector, format!("{key}: no rawValue")))?;
        let values = entry
            .get("values")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default();
        let groups: Vec<&str> = raw.split(", ").collect();
        let aligned = groups.len() == values.len() && !raw.contains('&');
        for (k, group) in groups.iter().enumerate() {
            let peer_number = values
                .get(k)
                .filter(|_| aligned)
                .and_then(|v| v.get("value"))
                .filter(|v| v.is_number())
                .map(Value::to_string);
            facts.push(value_fact(register, group, peer_number));
        }
        if let Some(first) = groups.first() {
            firsts.push((register, first.trim()));
        }
    }
    let meter = METER_REGISTERS.iter().find_map(|&(c, d, e)| {
        firsts
            .iter()
            .find(|(r, v)| r.b == 0 && r.f == 255 && (r.c, r.d, r.e) == (c, d, e) && !v.is_empty())
            .map(|(_, v)| (*v).to_owned())
    });
    facts.extend(meter.map(Expect::Meter));
    let bcc_ok = vector
        .raw
        .get("bcc")
        .and_then(|b| b.get("bcc_ok"))
        .and_then(Value::as_bool)
        .unwrap_or(true);
    Ok(Expectations {
        facts,
        expect_error: !bcc_ok,
        skip: None,
    })
}

/// The medium smartmeter-obis's test put on addresses without one ("OBIS medium fallback = N").
fn medium_fallback(vector: &Vector) -> Option<u8> {
    let origin = vector.raw.get("expected_origin").and_then(Value::as_str)?;
    let (_, rest) = origin.split_once("medium fallback = ")?;
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// A smartmeter-obis key `A-B:C.D.E*F` with groups left out.
fn parse_key(key: &str) -> Option<Obis> {
    let (ab, rest) = match key.split_once(':') {
        Some((ab, rest)) => (Some(ab), rest),
        None => (None, key),
    };
    let (a, b) = match ab {
        Some(ab) => {
            let (a, b) = ab.split_once('-')?;
            (a.parse().ok()?, b.parse().ok()?)
        }
        None => (1, 0),
    };
    let (cdef, f) = match rest.split_once('*') {
        Some((cdef, f)) => (cdef, Some(f.parse::<u8>().ok()?)),
        None => (rest, None),
    };
    let mut groups = [255u8; 4];
    let mut count = 0;
    for part in cdef.split('.') {
        *groups.get_mut(count)? = part.parse().ok()?;
        count += 1;
    }
    let [c, d, e, f4] = groups;
    let f = match (f, count) {
        (Some(_), 4) => return None,
        (Some(f), _) => f,
        (None, _) => f4,
    };
    Some(Obis::new(a, b, c, d, e, f))
}

/// One parenthesised value: a number where it has a unit we know, else text.
fn value_fact(register: Obis, text: &str, peer_number: Option<String>) -> Expect {
    if !text.contains('&')
        && let Some((number, unit)) = text.split_once('*')
        && let Some((unit, prefix)) = unit_of(unit.trim())
    {
        let digits = peer_number.unwrap_or_else(|| number.trim().to_owned());
        if let Some(value) = digits
            .parse::<Quantity>()
            .ok()
            .and_then(|q| q.shifted(prefix))
        {
            return Expect::Number {
                register,
                value,
                unit,
                ts_ms: None,
            };
        }
    }
    Expect::Text {
        register,
        value: text.to_owned(),
    }
}

/// A unit symbol, including the spellings meters print that [`Unit::parse_symbol`] lacks.
fn unit_of(symbol: &str) -> Option<(Unit, i8)> {
    let parsed = Unit::parse_symbol(symbol)
        .ok()
        .filter(|(u, _)| !matches!(u, Unit::Count | Unit::Other));
    parsed.or(match symbol {
        "m3ph" => Some((Unit::CubicMetrePerHour, 0)),
        "sec" | "secs" => Some((Unit::Second, 0)),
        "Deg" => Some((Unit::Degree, 0)),
        _ => None,
    })
}

/// amshan's field names and the C.D.E codes they stand for (`amshan/obis_map.py`).
const AMSHAN_NAMES: &[(&str, &[&str])] = &[
    ("list_ver_id", &["0.2.129"]),
    ("meter_id", &["96.1.0", "0.0.5"]),
    ("meter_type", &["96.1.7", "96.1.1"]),
    ("active_power_import", &["1.7.0"]),
    ("active_power_import_l1", &["21.7.0"]),
    ("active_power_import_l2", &["41.7.0"]),
    ("active_power_import_l3", &["61.7.0"]),
    ("active_power_export", &["2.7.0"]),
    ("active_power_export_l1", &["22.7.0"]),
    ("active_power_export_l2", &["42.7.0"]),
    ("active_power_export_l3", &["62.7.0"]),
    ("reactive_power_import", &["3.7.0"]),
    ("reactive_power_import_l1", &["23.7.0"]),
    ("reactive_power_import_l2", &["43.7.0"]),
    ("reactive_power_import_l3", &["63.7.0"]),
    ("reactive_power_export", &["4.7.0"]),
    ("reactive_power_export_l1", &["24.7.0"]),
    ("reactive_power_export_l2", &["44.7.0"]),
    ("reactive_power_export_l3", &["64.7.0"]),
    ("current_l1", &["31.7.0"]),
    ("current_l2", &["51.7.0"]),
    ("current_l3", &["71.7.0"]),
    ("voltage_l1", &["32.7.0"]),
    ("voltage_l2", &["52.7.0"]),
    ("voltage_l3", &["72.7.0"]),
    ("active_power_import_total", &["1.8.0"]),
    ("active_power_export_total", &["2.8.0"]),
    ("reactive_power_import_total", &["3.8.0"]),
    ("reactive_power_export_total", &["4.8.0"]),
];

/// amshan fields that assert nothing here: a zone-less local time and the identification parts.
const AMSHAN_IGNORED: [&str; 3] = ["meter_datetime", "meter_manufacturer_id", "meter_type_id"];

fn amshan(vector: &Vector, expected: &Value, decoded: &Value) -> Result<Expectations, VectorError> {
    let fields = decoded
        .as_object()
        .ok_or_else(|| error(vector, "expected.decoded is not an object"))?;
    let frame = vector
        .raw
        .get("frame_text")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let mut facts = Vec::new();
    for (name, value) in fields {
        if AMSHAN_IGNORED.contains(&name.as_str()) {
            continue;
        }
        let own = [name.as_str()];
        let codes: &[&str] = AMSHAN_NAMES
            .iter()
            .find(|(n, _)| n == name)
            .map_or(&own, |(_, codes)| codes);
        let register = codes
            .iter()
            .find_map(|cde| register_in_frame(frame, cde))
            .ok_or_else(|| {
                error(
                    vector,
                    format!("{name}: the frame holds none of {codes:?} exactly once"),
                )
            })?;
        match value {
            Value::String(text) => facts.push(Expect::Text {
                register,
                value: text.clone(),
            }),
            Value::Number(n) if n.is_i64() => {
                let unit = power_unit(register)
                    .ok_or_else(|| error(vector, format!("{name}: integer of no power/energy")))?;
                if let Some(exact) = n.as_i64().and_then(amshan_exact) {
                    facts.push(Expect::Number {
                        register,
                        value: Quantity::new(exact, 0),
                        unit,
                        ts_ms: None,
                    });
                }
            }
            Value::Number(n) => {
                let unit = float_unit(register)
                    .ok_or_else(|| error(vector, format!("{name}: float of an unknown unit")))?;
                let value = n
                    .to_string()
                    .parse::<Quantity>()
                    .map_err(|e| error(vector, format!("{name}: {e}")))?;
                facts.push(Expect::Number {
                    register,
                    value,
                    unit,
                    ts_ms: None,
                });
            }
            Value::Null => {}
            other => return Err(error(vector, format!("{name}: unexpected value {other}"))),
        }
    }
    let names_meter = fields.contains_key("meter_id") || fields.contains_key("meter_type");
    if !names_meter && let Some(ident) = expected.get("identification").and_then(Value::as_str) {
        let ident = ident.trim_start_matches('/').trim();
        if !ident.is_empty() {
            facts.push(Expect::Meter(ident.to_owned()));
        }
    }
    let valid = expected
        .get("is_valid")
        .and_then(Value::as_bool)
        .unwrap_or(true);
    Ok(Expectations {
        facts,
        expect_error: !valid,
        skip: None,
    })
}

/// The register `A-B:C.D.E` whose C.D.E is `cde`, if exactly one line of the frame starts
/// with it.
fn register_in_frame(frame: &str, cde: &str) -> Option<Obis> {
    let mut groups = cde.split('.').map(|g| g.parse::<u8>().ok());
    let (c, d, e) = (groups.next()??, groups.next()??, groups.next()??);
    let mut found = frame.lines().filter_map(|line| {
        let (ab, rest) = line.trim().split_once(':')?;
        rest.strip_prefix(cde)?.strip_prefix('(')?;
        let (a, b) = ab.split_once('-')?;
        Some(Obis::new(a.parse().ok()?, b.parse().ok()?, c, d, e, 255))
    });
    let first = found.next()?;
    found.next().is_none().then_some(first)
}

const ACTIVE: [u8; 10] = [1, 2, 15, 16, 21, 22, 41, 42, 61, 62];
const REACTIVE: [u8; 8] = [3, 4, 23, 24, 43, 44, 63, 64];

/// The base unit of amshan's integers (converted from kW, kWh, kvar, kvarh).
fn power_unit(r: Obis) -> Option<Unit> {
    match (ACTIVE.contains(&r.c), REACTIVE.contains(&r.c), r.d) {
        (true, _, 7) => Some(Unit::Watt),
        (true, _, 8) => Some(Unit::WattHour),
        (_, true, 7) => Some(Unit::Var),
        (_, true, 8) => Some(Unit::VarHour),
        _ => None,
    }
}

/// The unit of amshan's floats (V, A, var, varh).
fn float_unit(r: Obis) -> Option<Unit> {
    match (r.c, r.d) {
        (31 | 51 | 71 | 11, 7) => Some(Unit::Ampere),
        (32 | 52 | 72 | 12, 7) => Some(Unit::Volt),
        _ => power_unit(r).filter(|u| matches!(u, Unit::Var | Unit::VarHour)),
    }
}

/// The exact value behind amshan's `int(float(text) * 1000)`, if only one 3-decimal text
/// gives `n`.
fn amshan_exact(n: i64) -> Option<i64> {
    let gives_n = |c: i64| {
        let text = format!(
            "{}{}.{:03}",
            if c < 0 { "-" } else { "" },
            c.unsigned_abs() / 1000,
            c.unsigned_abs() % 1000
        );
        text.parse::<f64>().is_ok_and(|x| (x * 1000.0) as i64 == n)
    };
    let mut candidates = [n.checked_sub(1), Some(n), n.checked_add(1)]
        .into_iter()
        .flatten()
        .filter(|&c| gives_n(c));
    let first = candidates.next()?;
    candidates.next().is_none().then_some(first)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys() {
        assert_eq!(parse_key("6-0:6.8*1"), Some(Obis::new(6, 0, 6, 8, 255, 1)));
        assert_eq!(parse_key("97"), Some(Obis::new(1, 0, 97, 255, 255, 255)));
        assert_eq!(
            parse_key("0-0:96.1.255*255"),
            Some(Obis::new(0, 0, 96, 1, 255, 255))
        );
        assert_eq!(parse_key("x"), None);
    }

    #[test]
    fn amshan_truncation() {
        assert_eq!(amshan_exact(896_020), Some(896_020));
        // 518.308 and 518.309 kVArh both give 518308.
        assert_eq!(amshan_exact(518_308), None);
    }
}
