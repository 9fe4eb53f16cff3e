//! Wireless M-Bus vectors: wmbusmeters (`wmbusmeters/wmbusmeters`) driver test JSON, one
//! flat object of driver fields (`total_m3`, `target_m3`, `flow_temperature_c`,
//! `total_energy_consumption_kwh`, `current_power_consumption_kw`, ...).
//!
//! wmbusmeters names fields per driver, not per record, so the register cannot be
//! predicted. The rule here: every numeric field whose name ends in a unit suffix is an
//! [`Expect::Number`] whose value and unit must be found **among the decoder's readings,
//! whatever their register** ([`check`] applies that rule; the `register` of these facts is
//! a placeholder, `0-0:0.0.0.0`). A reading matches when its unit converts to the field's
//! (`kwh` ← Wh, J; `kw` ← W, J/h; `m3` ← m3, l; `m3h`; `c`; `k`; `v`; `a`; `hz`; `bar`;
//! `kvarh`; `kvah`; `kvar`; `kva`; `hca`, `rh`: counts and percent; `h`, `s`, `d`: time in
//! any of s, min, h, d) and the converted value is within a relative 1e-6 of the field's
//! (wmbusmeters prints binary doubles; ami keeps decimals). Fields with other suffixes
//! (`_counter`, `_nr`, `_factor`, `_y`, `_pct`, `_dbm`, `_ppm`), text, booleans and `null`
//! assert nothing: they are driver-specific derivations.
//!
//! * `id` (with the manufacturer of the address that carries it: the long transport header
//!   for wired frames and CI `0x72`, else the link header) gives [`Expect::Meter`]
//!   (`MMM-IIIIIIII`).
//! * Frames marked `payload_already_decrypted` are checked like plaintext frames: the
//!   decoder must accept a payload behind an encryption flag that is already plaintext
//!   (TPL: starts with `2F 2F`; ELL: its payload CRC matches), as wmbusmeters does.
//! * Frames with proprietary encryption or framing are skips with the reason: Apator NA-1
//!   and other manufacturer-specific CIs (`0xA0`-`0xB7`), DES (security modes 2 and 3), the
//!   Engelmann proprietary CI `0x73`, compact frames (CI `0x79`).

use ami_domain::{DecodeError, Decoded, Obis, Quantity, Unit};
use serde_json::Value;

use crate::{Expect, Expectations, Outcome, PeerFormat, Vector, VectorError};

/// wmbusmeters' JSON.
pub struct Wmbusmeters;

/// The placeholder register of wmbusmeters facts (matched by value and unit only).
pub const ANY_REGISTER: Obis = Obis::new(0, 0, 0, 0, 0, 0);

/// A field-name suffix as (unit, factor from the reading's base unit to the suffix unit).
fn suffix_unit(name: &str) -> Option<Unit> {
    let suffix = name.rsplit('_').next()?;
    Some(match suffix {
        "kwh" => Unit::WattHour,
        "kw" => Unit::Watt,
        "m3" => Unit::CubicMetre,
        "m3h" => Unit::CubicMetrePerHour,
        "c" => Unit::Celsius,
        "k" => Unit::Kelvin,
        "v" => Unit::Volt,
        "a" => Unit::Ampere,
        "hz" => Unit::Hertz,
        "bar" => Unit::Bar,
        "kvarh" => Unit::VarHour,
        "kvah" => Unit::VoltAmpereHour,
        "kvar" => Unit::Var,
        "kva" => Unit::VoltAmpere,
        "hca" => Unit::Count,
        "rh" => Unit::Percent,
        "h" => Unit::Hour,
        "s" => Unit::Second,
        "d" => Unit::Day,
        _ => return None,
    })
}

/// The prefix of the suffix unit (`kwh` is kWh).
fn suffix_prefix(name: &str) -> i8 {
    match name.rsplit('_').next() {
        Some("kwh" | "kw" | "kvarh" | "kvah" | "kvar" | "kva") => 3,
        _ => 0,
    }
}

fn manufacturer(m0: u8, m1: u8) -> String {
    let m = u16::from_le_bytes([m0, m1]);
    [10u16, 5, 0]
        .iter()
        .map(|s| char::from(64 + ((m >> s) & 0x1F) as u8))
        .collect()
}

/// The manufacturer of the address wmbusmeters takes the id from.
fn meter_manufacturer(frame: &[u8]) -> Option<String> {
    match frame {
        // A long transport header after ELL-I.
        [
            _,
            _,
            _,
            _,
            _,
            _,
            _,
            _,
            _,
            _,
            0x8C,
            _,
            _,
            0x72,
            _,
            _,
            _,
            _,
            m0,
            m1,
            ..,
        ] => Some(manufacturer(*m0, *m1)),
        [0x68, l1, l2, 0x68, _, _, 0x72, _, _, _, _, m0, m1, ..] if l1 == l2 => {
            Some(manufacturer(*m0, *m1))
        }
        [_, _, _, _, _, _, _, _, _, _, 0x72, _, _, _, _, m0, m1, ..] => {
            Some(manufacturer(*m0, *m1))
        }
        [_, _, m0, m1, ..] => Some(manufacturer(*m0, *m1)),
        _ => None,
    }
}

fn skip_reason(v: &Vector) -> Option<String> {
    let ci = match v.frame.as_slice() {
        [0x68, l1, l2, 0x68, _, _, ci, ..] if l1 == l2 => *ci,
        f => *f.get(10)?,
    };
    let after_ell = v
        .raw
        .get("header")
        .and_then(|h| h.get("ci_after_ell"))
        .and_then(Value::as_str)
        .and_then(|c| u8::from_str_radix(c, 16).ok());
    let mode = v
        .raw
        .get("header")
        .and_then(|h| h.get("security_mode"))
        .and_then(Value::as_u64);
    if matches!(ci, 0xA0..=0xB7) || matches!(after_ell, Some(0xA0..=0xB7)) {
        return Some(format!(
            "manufacturer-specific CI 0x{ci:02X}: proprietary format/encryption (Apator NA-1, \
             Diehl PRIOS, ...), decoded by wmbusmeters' drivers only"
        ));
    }
    if matches!(mode, Some(2 | 3)) {
        return Some("DES encryption (security mode 2/3): not supported".into());
    }
    if ci == 0x73 && v.frame.first() != Some(&0x68) {
        return Some("Engelmann proprietary CI 0x73 encryption".into());
    }
    if ci == 0x79 || after_ell == Some(0x79) || !v.preceding.is_empty() {
        return Some("compact frame (CI 0x79): needs its full frame".into());
    }
    None
}

impl PeerFormat for Wmbusmeters {
    fn check(&self, expect: &Expectations, got: &Result<Decoded, DecodeError>) -> Outcome {
        check(expect, got)
    }

    fn expectations(&self, v: &Vector) -> Result<Expectations, VectorError> {
        let bad = |reason: String| VectorError::Expected {
            id: v.id.clone(),
            reason,
        };
        let exp = v
            .raw
            .get("expected")
            .and_then(Value::as_object)
            .ok_or_else(|| bad("no expected object".into()))?;
        let mut out = Expectations {
            skip: skip_reason(v),
            ..Expectations::default()
        };
        if let (Some(id), Some(m)) = (
            exp.get("id").and_then(Value::as_str),
            meter_manufacturer(&v.frame),
        ) {
            out.facts
                .push(Expect::Meter(format!("{m}-{}", id.to_ascii_uppercase())));
        }
        for (name, value) in exp {
            let Value::Number(n) = value else { continue };
            let Some(unit) = suffix_unit(name) else {
                continue;
            };
            let value = n
                .to_string()
                .parse::<Quantity>()
                .ok()
                .and_then(|q| q.shifted(suffix_prefix(name)));
            let Some(value) = value else { continue };
            out.facts.push(Expect::Number {
                register: ANY_REGISTER,
                value,
                unit,
                ts_ms: None,
            });
        }
        Ok(out)
    }
}

/// A reading's value in `want` (a base unit), if the units convert.
fn converted(value: f64, unit: Unit, want: Unit) -> Option<f64> {
    use Unit::*;
    let secs = |u: Unit| match u {
        Second => Some(1.0),
        Minute => Some(60.0),
        Hour => Some(3600.0),
        Day => Some(86_400.0),
        _ => None,
    };
    Some(match (unit, want) {
        (u, w) if u == w => value,
        (Joule, WattHour) => value / 3600.0,
        (JoulePerHour, Watt) => value / 3600.0,
        (Litre, CubicMetre) => value / 1000.0,
        // wmbusmeters gives temperature differences in `_c` fields.
        (Kelvin, Celsius) => value,
        (u, w) => value * secs(u)? / secs(w)?,
    })
}

fn found(value: Quantity, unit: Unit, got: &Decoded) -> bool {
    let want = value.to_f64();
    got.readings.iter().any(|r| {
        converted(r.value.to_f64(), r.unit, unit)
            .is_some_and(|g| (g - want).abs() <= 1e-6 * want.abs().max(1e-3))
    })
}

/// The wmbusmeters rule: numbers by value and unit anywhere among the readings, the meter
/// exactly (see the module documentation).
pub fn check(expect: &Expectations, got: &Result<Decoded, DecodeError>) -> Outcome {
    if let Some(why) = &expect.skip {
        return Outcome::Skip(why.clone());
    }
    let d = match got {
        Ok(d) => d,
        Err(e) => return Outcome::Fail(vec![format!("decode failed: {e}")]),
    };
    let errors: Vec<String> = expect
        .facts
        .iter()
        .filter_map(|f| match f {
            Expect::Number { value, unit, .. } => (!found(*value, *unit, d))
                .then(|| format!("no reading of {} {unit}", value.normalized())),
            Expect::Meter(m) => (d.meter.as_deref() != Some(m.as_str()))
                .then(|| format!("meter: expected {m:?}, got {:?}", d.meter)),
            _ => None,
        })
        .collect();
    if errors.is_empty() {
        Outcome::Pass
    } else {
        Outcome::Fail(errors)
    }
}
