//! Wired M-Bus vectors: libmbus (`rscada/libmbus`) normalized XML (`.norm.xml`) as JSON,
//! `{"SlaveInformation": {...}, "DataRecords": [{"Function", "StorageNumber", "Tariff",
//! "Device", "Unit", "Quantity", "Value"}, ...]}`.
//!
//! * `SlaveInformation.Id` (and `Manufacturer`) give [`Expect::Meter`] in ami-mbus's form
//!   `MMM-IIIIIIII` (the identification number zero-padded to 8 digits; without a
//!   manufacturer, the fixed-structure frames, the number alone).
//! * Every record whose `Value` is a number and whose `Quantity` is a measurement becomes an
//!   [`Expect::Number`]: the value as libmbus prints it (normalized: `Wh`, `J`, `m^3`, `W`,
//!   `°C`, `K`, `m^3/h`, `V`, `A`, `s`, ...; `l` and `kWh` of fixed-structure frames are
//!   converted to `m3` and `Wh`), the unit through [`Unit::parse_symbol`], and the register
//!   by ami-mbus's OBIS convention (see `ami_mbus::mapping`): medium → A, `Device` → B,
//!   quantity → C.D, `Function` → D for maximum (6), minimum (3) and error-state (9) values,
//!   `Tariff` → E, `StorageNumber` → F (255 for 0). Quantities with a plain-text unit
//!   (libmbus prints the text as the quantity and `-` as unit), manufacturer-specific and
//!   reserved VIFs are numbers in [`Unit::Other`]. Identifiers (fabrication number,
//!   versions, customer, error flags, digital inputs, medium ...), dates and
//!   manufacturer-specific data are attributes in ami and are not asserted here: libmbus
//!   prints identifiers as floats and its hex dumps are where libmbus and its published XML
//!   disagree (`peer_disagreement`); the published XML is what this file holds.
//!
//! # Matching ([`check`])
//!
//! libmbus identifies a record by medium, quantity, function, storage, tariff and device,
//! and prints neither its VIFEs nor more than six decimals. So [`check`] (not the generic
//! one) compares numbers at that resolution: a reading matches a fact when its register is
//! the fact's, or the fact's with the VIFE distinctions ami makes and libmbus does not
//! (qualified records at C + 100; backward energy, VIFE `0x3C`, at C = 2 instead of 1;
//! per-phase values, VIFE `0xFC 0x01`-`0x03`, at C + 20 × phase), its
//! unit is the fact's, and its value is within libmbus's printed precision (5e-7) plus
//! single precision (a relative 2^-23: libmbus prints the binary value of 32-bit reals with
//! `%f`, ami keeps their shortest decimal form).
//!
//! * Two frames (Elster F96 Plus, ABB F95) send their error-state power and flow as BCD
//!   with non-decimal digits (`BD EB DD DD`: an error marker, not a number); libmbus turns
//!   the hex digits into a number (`13131113`), ami gives the raw bytes as an attribute.
//!   Those records ([`NON_DECIMAL_BCD`]) are not asserted.
//! * A frame libmbus rejects (`expected.error`, the `test/error-frames` parse errors) must
//!   fail to decode. An application-error frame (CI `0x70`, `SlaveInformation.Error`) is a
//!   valid frame: ami reports it as an [`EventKind::Alarm`] event, which is asserted.

use ami_domain::{DecodeError, Decoded, EventKind, Obis, Quantity, Unit};
use serde_json::Value;

use crate::{Expect, Expectations, Outcome, PeerFormat, Vector, VectorError};

/// libmbus's normalized JSON.
pub struct Libmbus;

/// The OBIS A group of a libmbus medium text.
pub fn medium_group(medium: &str) -> u8 {
    let m = medium.to_ascii_lowercase();
    if m.contains("electricity") {
        1
    } else if m.starts_with("gas") {
        7
    } else if m.starts_with("heat cost") {
        4
    } else if m.starts_with("heat") {
        6
    } else if m.starts_with("cooling") {
        5
    } else if m.starts_with("warm water") || m.starts_with("hot water") {
        9
    } else if m.starts_with("water") || m.starts_with("cold water") {
        8
    } else {
        0
    }
}

/// (C, D) of a libmbus quantity name that is a measurement, in a meter of medium group
/// `a` (ami-mbus's table).
fn codes(quantity: &str, a: u8) -> Option<(u8, u8)> {
    Some(match quantity {
        "Energy" => (1, 8),
        "Volume" => match a {
            8 | 9 => (1, 0),
            7 => (3, 0),
            _ => (2, 8),
        },
        "Mass" => (4, 8),
        "Power" if a == 1 => (1, 7),
        "Power" => (8, 7),
        "Volume flow" => (9, 7),
        "Mass flow" => (5, 7),
        "Flow temperature" => (10, 7),
        "Return temperature" => (11, 7),
        "Temperature difference" => (12, 7),
        "External temperature" => (13, 7),
        "Voltage" => (12, 7),
        "Current" => (11, 7),
        "Pressure" => (15, 7),
        "H.C.A." => (1, 0),
        "On time" => (96, 8),
        "Operating time" => (96, 9),
        "Averaging Duration" => (96, 10),
        "Actuality Duration" => (96, 11),
        "Reset counter" => (96, 12),
        "Cumulation counter" => (96, 13),
        "Dimensionless" => (96, 14),
        "Manufacturer specific" => (128, 1),
        "Reserved" => (128, 2),
        _ => return None,
    })
}

/// Identifiers and states: attributes in ami, not asserted.
const ATTRIBUTES: &[&str] = &[
    "Fabrication No",
    "(Enhanced) Identification",
    "Bus Address",
    "Firmware version",
    "Software version",
    "Hardware version",
    "Model / Version",
    "Parameter set identification",
    "Customer location",
    "Customer",
    "Error flags",
    "Digital Input",
    "Digital Output",
    "Medium",
    "Manufacturer",
    "Access Number",
    "Special supplier information",
    "Time point (date)",
    "Time point (date & time)",
];

/// Vectors whose records of this function hold BCD with non-decimal digits, which libmbus
/// prints as numbers (see the module documentation).
pub const NON_DECIMAL_BCD: &[(&str, &str)] = &[
    (
        "libmbus-test-frames-ELS_Elster-F96-Plus",
        "Value during error state",
    ),
    ("libmbus-test-frames-abb_f95", "Value during error state"),
];

fn field<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

fn number_field(v: &Value, key: &str) -> u8 {
    field(v, key)
        .and_then(|s| s.parse::<u64>().ok())
        .map_or(0, |n| u8::try_from(n).unwrap_or(254).min(254))
}

/// A libmbus unit text as a base unit and prefix.
fn unit(text: &str) -> Option<(Unit, i8)> {
    let t = text.replace("Â°", "°").replace('^', "");
    match t.as_str() {
        "Units for H.C.A." | "" => Some((Unit::Count, 0)),
        "l" => Some((Unit::CubicMetre, -3)),
        "-" | "Reserved" => Some((Unit::Other, 0)),
        other => Unit::parse_symbol(other).ok(),
    }
}

impl PeerFormat for Libmbus {
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
            .ok_or_else(|| bad("no expected".into()))?;
        let mut out = Expectations::default();
        if exp.get("error").is_some() {
            out.expect_error = true;
            return Ok(out);
        }
        let slave = exp
            .get("SlaveInformation")
            .ok_or_else(|| bad("no SlaveInformation".into()))?;
        if field(slave, "Error").is_some() {
            out.facts.push(Expect::Event(EventKind::Alarm));
            return Ok(out);
        }
        if let Some(id) = field(slave, "Id") {
            let id = format!("{id:0>8}");
            out.facts
                .push(Expect::Meter(match field(slave, "Manufacturer") {
                    Some(m) => format!("{m}-{id}"),
                    None => id,
                }));
        }
        let a = medium_group(field(slave, "Medium").unwrap_or_default());
        for r in exp
            .get("DataRecords")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let (Some(function), Some(value), Some(unit_text)) =
                (field(r, "Function"), field(r, "Value"), field(r, "Unit"))
            else {
                continue;
            };
            if NON_DECIMAL_BCD.contains(&(v.id.as_str(), function)) {
                continue;
            }
            let d_function = match function {
                "Instantaneous value" | "Actual value" => None,
                "Maximum value" => Some(6),
                "Minimum value" => Some(3),
                "Value during error state" => Some(9),
                _ => continue,
            };
            let Ok(q) = value.parse::<Quantity>() else {
                continue;
            };
            let quantity = field(r, "Quantity");
            let (c, d) = match quantity {
                // Fixed-structure counters: the unit says what they are.
                None => match unit_text {
                    "kWh" | "Wh" | "MWh" | "J" | "kJ" | "MJ" | "GJ" => (1, 8),
                    "l" | "m^3" | "m3" => codes("Volume", a).unwrap_or((2, 8)),
                    "W" | "kW" | "MW" => codes("Power", a).unwrap_or((8, 7)),
                    _ => continue,
                },
                Some(name) if ATTRIBUTES.contains(&name) => continue,
                Some(name) => match codes(name, a) {
                    Some(cd) => cd,
                    // A plain-text unit: libmbus prints it as the quantity.
                    None if unit_text == "-" => (128, 0),
                    None => return Err(bad(format!("unknown libmbus quantity {name:?}"))),
                },
            };
            let d = match d_function {
                Some(fd) if c != 96 && c != 128 => fd,
                _ => d,
            };
            let unit_text = if c == 128 { "-" } else { unit_text };
            let Some((unit, prefix)) = unit(unit_text) else {
                return Err(bad(format!("unknown libmbus unit {unit_text:?}")));
            };
            let value = q
                .shifted(prefix)
                .ok_or_else(|| bad("value out of range".into()))?;
            let f = match number_field(r, "StorageNumber") {
                0 => 255,
                s => s,
            };
            let register = Obis::new(
                a,
                number_field(r, "Device"),
                c,
                d,
                number_field(r, "Tariff"),
                f,
            );
            out.facts.push(Expect::Number {
                register,
                value,
                unit,
                ts_ms: None,
            });
        }
        Ok(out)
    }
}

/// Whether a reading's register is the fact's at libmbus's resolution (see the module
/// documentation).
fn same_record(fact: Obis, got: Obis) -> bool {
    if fact == got {
        return true;
    }
    let (f, g) = (fact.to_bytes(), got.to_bytes());
    let rest_equal = f[0] == g[0] && f[1] == g[1] && f[3] == g[3] && f[4] == g[4] && f[5] == g[5];
    let base = |c: u8| if c >= 100 { c - 100 } else { c };
    let c = base(g[2]);
    let phase = c > f[2] && (c - f[2]) % 20 == 0 && (c - f[2]) / 20 <= 3;
    rest_equal && (c == f[2] || phase || (f[2] == 1 && c == 2 && f[3] == g[3]))
}

fn close(fact: Quantity, got: Quantity) -> bool {
    let (w, g) = (fact.to_f64(), got.to_f64());
    fact == got || (g - w).abs() <= 5e-7 + w.abs() * 1.2e-7
}

/// libmbus's matching rule (see the module documentation).
pub fn check(expect: &Expectations, got: &Result<Decoded, DecodeError>) -> Outcome {
    let d = match (got, expect.expect_error, &expect.skip) {
        (_, _, Some(why)) => return Outcome::Skip(why.clone()),
        (Err(_), true, None) => return Outcome::Pass,
        (Ok(_), true, None) => {
            return Outcome::Fail(vec!["decoded, but libmbus rejects this frame".into()]);
        }
        (Err(e), false, None) => return Outcome::Fail(vec![format!("decode failed: {e}")]),
        (Ok(d), false, None) => d,
    };
    let mut errors = Vec::new();
    for fact in &expect.facts {
        match fact {
            Expect::Number {
                register,
                value,
                unit,
                ..
            } => {
                let candidates: Vec<_> = d
                    .readings
                    .iter()
                    .filter(|r| same_record(*register, r.register) && r.unit == *unit)
                    .collect();
                if !candidates.iter().any(|r| close(*value, r.value)) {
                    let seen: Vec<String> = candidates
                        .iter()
                        .map(|r| format!("{} {}", r.value.normalized(), r.register))
                        .collect();
                    errors.push(format!(
                        "{register}: expected {} {unit}, got [{}]",
                        value.normalized(),
                        seen.join(", ")
                    ));
                }
            }
            Expect::Meter(m) => {
                if d.meter.as_deref() != Some(m.as_str()) {
                    errors.push(format!("meter: expected {m:?}, got {:?}", d.meter));
                }
            }
            Expect::Event(kind) => {
                if !d.events.iter().any(|e| e.kind == *kind) {
                    errors.push(format!("no {} event", kind.name()));
                }
            }
            Expect::Text { .. } => {}
        }
    }
    if expect.facts.is_empty() {
        errors.push("the vector asserts nothing".into());
    }
    if errors.is_empty() {
        Outcome::Pass
    } else {
        Outcome::Fail(errors)
    }
}
