//! DSMR P1 vectors: `dsmr_parser` (`ndokter/dsmr_parser`) `Telegram.to_json()` output.
//!
//! `expected` maps dsmr-parser's object names to `{"value": .., "unit": ..}` (plus
//! `"datetime"` for values with their own time), with the M-Bus objects grouped under
//! `MBUS_DEVICES` by `CHANNEL_ID`. Each name is mapped to its OBIS code (dsmr-parser's
//! `obis_references`); M-Bus names take the channel as group B. Where dsmr-parser's pattern
//! admits two codes (`MBUS_METER_READING` is `24.2.1` or `24.2.3`, `MBUS_EQUIPMENT_IDENTIFIER`
//! is `96.1.0` or `96.1.1`), the code the telegram contains is the one its value came from.
//!
//! * Numbers become [`Expect::Number`] (value from the JSON number's text, unit prefix moved
//!   into the scale, no unit = count). A value without its own `datetime` is expected at the
//!   telegram time `P1_MESSAGE_TIMESTAMP` when the telegram has one.
//! * Strings become [`Expect::Text`]; so do numbers of names that are text in DSMR
//!   (`TEXT_MESSAGE_CODE`). Enumeration codes (device type, switch and valve position) are
//!   [`Expect::Text`] when dsmr-parser gives the string, a count when it gives a number.
//! * `null` values assert nothing.
//! * A non-empty `POWER_EVENT_FAILURE_LOG` is an [`EventKind::PowerDown`] event;
//!   `BELGIUM_MAXIMUM_DEMAND_13_MONTHS` entries are readings of `0-0:98.1.0` at their
//!   `datetime`.
//! * The encrypted (DLMS general-glo-ciphering) frame is a skip: the dlms decoder decrypts
//!   it. Its facts are still given (read against `expected_plaintext`), so a test can check
//!   the plaintext telegram with them.
//!
//! A name not in the table is an error, so a new vector cannot pass by asserting less.

use ami_domain::{EventKind, Obis, Quantity, Unit};
use serde_json::{Map, Value};

use crate::{Expect, Expectations, PeerFormat, Vector, VectorError};

/// dsmr-parser's JSON.
pub struct DsmrParser;

/// Why the encrypted frame is skipped.
pub const ENCRYPTED_SKIP: &str = "encrypted DSMR (DLMS general-glo-ciphering): decrypted by the \
    dlms decoder, which hands the plaintext telegram to the dsmr decoder";

#[derive(Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// A measured value.
    Number,
    /// Text in DSMR, whatever the JSON type.
    Text,
    /// An enumeration code: text as a string, count as a number.
    Code,
}

const fn o(a: u8, b: u8, c: u8, d: u8, e: u8) -> Obis {
    Obis::new(a, b, c, d, e, 255)
}

use Shape::{Code, Number, Text};

/// dsmr-parser name, candidate OBIS codes (group B is replaced by the M-Bus channel inside
/// `MBUS_DEVICES`), shape.
#[rustfmt::skip]
const NAMES: &[(&str, &[Obis], Shape)] = &[
    ("P1_MESSAGE_HEADER", &[o(1, 3, 0, 2, 8)], Text),
    ("EQUIPMENT_IDENTIFIER", &[o(0, 0, 96, 1, 1)], Text),
    ("BELGIUM_EQUIPMENT_IDENTIFIER", &[o(0, 0, 96, 1, 1)], Text),
    ("BELGIUM_VERSION_INFORMATION", &[o(0, 0, 96, 1, 4)], Text),
    ("EQUIPMENT_IDENTIFIER_GAS", &[o(0, 0, 96, 1, 0)], Text),
    ("EQUIPMENT_SERIAL_NUMBER", &[o(0, 0, 96, 1, 0)], Text),
    ("COSEM_LOGICAL_DEVICE_NAME", &[o(0, 0, 42, 0, 0)], Text),
    ("LUXEMBOURG_EQUIPMENT_IDENTIFIER", &[o(0, 0, 42, 0, 0)], Text),
    ("Q3D_EQUIPMENT_IDENTIFIER", &[o(1, 0, 0, 0, 0)], Text),
    ("Q3D_EQUIPMENT_STATE", &[o(1, 0, 96, 5, 5)], Text),
    ("Q3D_EQUIPMENT_SERIALNUMBER", &[o(0, 0, 96, 1, 255)], Text),
    ("ELECTRICITY_ACTIVE_TARIFF", &[o(0, 0, 96, 14, 0)], Text),
    ("TEXT_MESSAGE_CODE", &[o(0, 0, 96, 13, 1)], Text),
    ("TEXT_MESSAGE", &[o(0, 0, 96, 13, 0)], Text),
    ("ACTUAL_SWITCH_POSITION", &[o(0, 0, 96, 3, 10)], Code),
    ("ACTUAL_TRESHOLD_ELECTRICITY", &[o(0, 0, 17, 0, 0)], Number),
    ("ELECTRICITY_IMPORTED_TOTAL", &[o(1, 0, 1, 8, 0)], Number),
    ("ELECTRICITY_USED_TARIFF_1", &[o(1, 0, 1, 8, 1)], Number),
    ("ELECTRICITY_USED_TARIFF_2", &[o(1, 0, 1, 8, 2)], Number),
    ("ELECTRICITY_USED_TARIFF_3", &[o(1, 0, 1, 8, 3)], Number),
    ("ELECTRICITY_USED_TARIFF_4", &[o(1, 0, 1, 8, 4)], Number),
    ("ELECTRICITY_EXPORTED_TOTAL", &[o(1, 0, 2, 8, 0)], Number),
    ("ELECTRICITY_DELIVERED_TARIFF_1", &[o(1, 0, 2, 8, 1)], Number),
    ("ELECTRICITY_DELIVERED_TARIFF_2", &[o(1, 0, 2, 8, 2)], Number),
    ("ELECTRICITY_DELIVERED_TARIFF_3", &[o(1, 0, 2, 8, 3)], Number),
    ("ELECTRICITY_DELIVERED_TARIFF_4", &[o(1, 0, 2, 8, 4)], Number),
    ("ELECTRICITY_REACTIVE_IMPORTED_TOTAL", &[o(1, 0, 3, 8, 0)], Number),
    ("ELECTRICITY_REACTIVE_IMPORTED_TARIFF_1", &[o(1, 0, 3, 8, 1)], Number),
    ("ELECTRICITY_REACTIVE_IMPORTED_TARIFF_2", &[o(1, 0, 3, 8, 2)], Number),
    ("ELECTRICITY_REACTIVE_EXPORTED_TOTAL", &[o(1, 0, 4, 8, 0)], Number),
    ("ELECTRICITY_REACTIVE_EXPORTED_TARIFF_1", &[o(1, 0, 4, 8, 1)], Number),
    ("ELECTRICITY_REACTIVE_EXPORTED_TARIFF_2", &[o(1, 0, 4, 8, 2)], Number),
    ("ELECTRICITY_REACTIVE_TOTAL_Q1", &[o(1, 0, 5, 8, 0)], Number),
    ("ELECTRICITY_REACTIVE_TOTAL_Q2", &[o(1, 0, 6, 8, 0)], Number),
    ("ELECTRICITY_REACTIVE_TOTAL_Q3", &[o(1, 0, 7, 8, 0)], Number),
    ("ELECTRICITY_REACTIVE_TOTAL_Q4", &[o(1, 0, 8, 8, 0)], Number),
    ("ELECTRICITY_COMBINED", &[o(1, 0, 15, 8, 0)], Number),
    ("CURRENT_ELECTRICITY_USAGE", &[o(1, 0, 1, 7, 0)], Number),
    ("CURRENT_ELECTRICITY_DELIVERY", &[o(1, 0, 2, 7, 0)], Number),
    ("CURRENT_REACTIVE_IMPORTED", &[o(1, 0, 3, 7, 0)], Number),
    ("CURRENT_REACTIVE_EXPORTED", &[o(1, 0, 4, 7, 0)], Number),
    ("INSTANTANEOUS_REACTIVE_POWER_Q1", &[o(1, 0, 5, 7, 0)], Number),
    ("INSTANTANEOUS_REACTIVE_POWER_Q2", &[o(1, 0, 6, 7, 0)], Number),
    ("INSTANTANEOUS_REACTIVE_POWER_Q3", &[o(1, 0, 7, 7, 0)], Number),
    ("INSTANTANEOUS_REACTIVE_POWER_Q4", &[o(1, 0, 8, 7, 0)], Number),
    ("INSTANTANEOUS_REACTIVE_POWER_L1_POSITIVE", &[o(1, 0, 23, 7, 0)], Number),
    ("INSTANTANEOUS_REACTIVE_POWER_L1_NEGATIVE", &[o(1, 0, 24, 7, 0)], Number),
    ("INSTANTANEOUS_REACTIVE_POWER_L2_POSITIVE", &[o(1, 0, 43, 7, 0)], Number),
    ("INSTANTANEOUS_REACTIVE_POWER_L2_NEGATIVE", &[o(1, 0, 44, 7, 0)], Number),
    ("INSTANTANEOUS_REACTIVE_POWER_L3_POSITIVE", &[o(1, 0, 63, 7, 0)], Number),
    ("INSTANTANEOUS_REACTIVE_POWER_L3_NEGATIVE", &[o(1, 0, 64, 7, 0)], Number),
    ("SHORT_POWER_FAILURE_COUNT", &[o(0, 0, 96, 7, 21)], Number),
    ("LONG_POWER_FAILURE_COUNT", &[o(0, 0, 96, 7, 9)], Number),
    ("VOLTAGE_SAG_L1_COUNT", &[o(1, 0, 32, 32, 0)], Number),
    ("VOLTAGE_SAG_L2_COUNT", &[o(1, 0, 52, 32, 0)], Number),
    ("VOLTAGE_SAG_L3_COUNT", &[o(1, 0, 72, 32, 0)], Number),
    ("VOLTAGE_SWELL_L1_COUNT", &[o(1, 0, 32, 36, 0)], Number),
    ("VOLTAGE_SWELL_L2_COUNT", &[o(1, 0, 52, 36, 0)], Number),
    ("VOLTAGE_SWELL_L3_COUNT", &[o(1, 0, 72, 36, 0)], Number),
    ("INSTANTANEOUS_VOLTAGE_L1", &[o(1, 0, 32, 7, 0)], Number),
    ("INSTANTANEOUS_VOLTAGE_L2", &[o(1, 0, 52, 7, 0)], Number),
    ("INSTANTANEOUS_VOLTAGE_L3", &[o(1, 0, 72, 7, 0)], Number),
    ("INSTANTANEOUS_CURRENT_L1", &[o(1, 0, 31, 7, 0)], Number),
    ("INSTANTANEOUS_CURRENT_L2", &[o(1, 0, 51, 7, 0)], Number),
    ("INSTANTANEOUS_CURRENT_L3", &[o(1, 0, 71, 7, 0)], Number),
    ("INSTANTANEOUS_ACTIVE_POWER_L1_POSITIVE", &[o(1, 0, 21, 7, 0)], Number),
    ("INSTANTANEOUS_ACTIVE_POWER_L2_POSITIVE", &[o(1, 0, 41, 7, 0)], Number),
    ("INSTANTANEOUS_ACTIVE_POWER_L3_POSITIVE", &[o(1, 0, 61, 7, 0)], Number),
    ("INSTANTANEOUS_ACTIVE_POWER_L1_NEGATIVE", &[o(1, 0, 22, 7, 0)], Number),
    ("INSTANTANEOUS_ACTIVE_POWER_L2_NEGATIVE", &[o(1, 0, 42, 7, 0)], Number),
    ("INSTANTANEOUS_ACTIVE_POWER_L3_NEGATIVE", &[o(1, 0, 62, 7, 0)], Number),
    ("INSTANTANEOUS_POWER_FACTOR_TOTAL", &[o(1, 0, 13, 7, 0)], Number),
    ("INSTANTANEOUS_POWER_FACTOR_L1", &[o(1, 0, 33, 7, 0)], Number),
    ("INSTANTANEOUS_POWER_FACTOR_L2", &[o(1, 0, 53, 7, 0)], Number),
    ("INSTANTANEOUS_POWER_FACTOR_L3", &[o(1, 0, 73, 7, 0)], Number),
    ("FREQUENCY", &[o(1, 0, 14, 7, 0)], Number),
    ("FUSE_THRESHOLD_L1", &[o(1, 0, 31, 4, 0)], Number),
    ("FUSE_THRESHOLD_L2", &[o(1, 0, 51, 4, 0)], Number),
    ("FUSE_THRESHOLD_L3", &[o(1, 0, 71, 4, 0)], Number),
    ("BELGIUM_CURRENT_AVERAGE_DEMAND", &[o(1, 0, 1, 4, 0)], Number),
    ("BELGIUM_MAXIMUM_DEMAND_MONTH", &[o(1, 0, 1, 6, 0)], Number),
    // M-Bus (group B = channel).
    ("DEVICE_TYPE", &[o(0, 1, 24, 1, 0)], Code),
    ("MBUS_DEVICE_TYPE", &[o(0, 1, 24, 1, 0)], Code),
    ("VALVE_POSITION_GAS", &[o(0, 1, 24, 4, 0)], Code),
    ("MBUS_VALVE_POSITION", &[o(0, 1, 24, 4, 0)], Code),
    ("MBUS_EQUIPMENT_IDENTIFIER", &[o(0, 1, 96, 1, 0), o(0, 1, 96, 1, 1)], Text),
    ("HOURLY_GAS_METER_READING", &[o(0, 1, 24, 2, 1)], Number),
    ("GAS_METER_READING", &[o(0, 1, 24, 3, 0)], Number),
    ("MBUS_METER_READING", &[o(0, 1, 24, 2, 1), o(0, 1, 24, 2, 3)], Number),
];

/// 0-0:98.1.0, the Belgian monthly maximum demand history.
const MAX_DEMAND_HISTORY: Obis = o(0, 0, 98, 1, 0);

struct Reader<'a> {
    id: &'a str,
    /// The telegram text, to tell which of two candidate codes a value came from.
    telegram: String,
    /// `P1_MESSAGE_TIMESTAMP`, the time of values without their own.
    telegram_ts: Option<i64>,
}

impl Reader<'_> {
    fn bad(&self, reason: String) -> VectorError {
        VectorError::Expected {
            id: self.id.to_owned(),
            reason,
        }
    }

    /// The candidate the telegram contains (`\nA-B:C.D.E(` or `...*F(`), else the first.
    fn pick(&self, candidates: &[Obis], channel: Option<u8>) -> Option<Obis> {
        let with_channel = |o: &Obis| channel.map_or(*o, |b| o.with_channel(b));
        if let [only] = candidates {
            return Some(with_channel(only));
        }
        candidates
            .iter()
            .map(with_channel)
            .find(|o| {
                let code = format!("\n{}-{}:{}.{}.{}", o.a, o.b, o.c, o.d, o.e);
                self.telegram.contains(&format!("{code}("))
                    || self.telegram.contains(&format!("{code}*"))
            })
            .or_else(|| candidates.first().map(with_channel))
    }

    fn time(&self, item: &Value, key: &str) -> Result<Option<i64>, VectorError> {
        match item.get(key) {
            Some(Value::String(t)) => ami_domain::time::parse_rfc3339(t)
                .map(Some)
                .ok_or_else(|| self.bad(format!("{key} {t:?} is not a date-time"))),
            _ => Ok(None),
        }
    }

    fn number(
        &self,
        item: &Value,
        n: &serde_json::Number,
    ) -> Result<(Quantity, Unit), VectorError> {
        let unit = match item.get("unit") {
            Some(Value::String(u)) => u.as_str(),
            _ => "",
        };
        let (unit, prefix) = Unit::parse_symbol(unit).map_err(|e| self.bad(e.to_string()))?;
        let value = decimal(&n.to_string())
            .and_then(|q| q.shifted(prefix))
            .ok_or_else(|| self.bad(format!("value {n} is not a decimal we hold")))?;
        Ok((value, unit))
    }

    /// The fact of one `{"value", "unit"[, "datetime"]}` item, `None` for a null value.
    fn fact(
        &self,
        name: &str,
        item: &Value,
        channel: Option<u8>,
    ) -> Result<Option<Expect>, VectorError> {
        let (_, candidates, shape) = NAMES
            .iter()
            .find(|(n, _, _)| *n == name)
            .ok_or_else(|| self.bad(format!("dsmr-parser name {name} has no OBIS mapping")))?;
        let register = self
            .pick(candidates, channel)
            .ok_or_else(|| self.bad(format!("{name}: no register")))?;
        let text = |value: String| Ok(Some(Expect::Text { register, value }));
        match (item.get("value"), shape) {
            (None | Some(Value::Null), _) => Ok(None),
            (Some(Value::String(s)), Text | Code) => text(s.clone()),
            (Some(Value::Number(n)), Text) => text(n.to_string()),
            (Some(Value::Number(n)), Number | Code) => {
                let (value, unit) = self.number(item, n)?;
                let ts_ms = match self.time(item, "datetime")? {
                    Some(t) => Some(t),
                    None if item.get("datetime").is_none() => self.telegram_ts,
                    None => None,
                };
                Ok(Some(Expect::Number {
                    register,
                    value,
                    unit,
                    ts_ms,
                }))
            }
            (Some(other), _) => Err(self.bad(format!("{name}: unexpected value {other}"))),
        }
    }

    fn facts(&self, expected: &Map<String, Value>) -> Result<Vec<Expect>, VectorError> {
        let mut facts = Vec::new();
        for (name, item) in expected {
            match name.as_str() {
                // The time of the other values (see `telegram_ts`), not a fact by itself.
                "P1_MESSAGE_TIMESTAMP" => {}
                "POWER_EVENT_FAILURE_LOG" => {
                    if item
                        .get("buffer")
                        .and_then(Value::as_array)
                        .is_some_and(|b| !b.is_empty())
                    {
                        facts.push(Expect::Event(EventKind::PowerDown));
                    }
                }
                "BELGIUM_MAXIMUM_DEMAND_13_MONTHS" => {
                    for entry in item.as_array().into_iter().flatten() {
                        let Some(Value::Number(n)) = entry.get("value") else {
                            continue;
                        };
                        let (value, unit) = self.number(entry, n)?;
                        facts.push(Expect::Number {
                            register: MAX_DEMAND_HISTORY,
                            value,
                            unit,
                            ts_ms: self.time(entry, "datetime")?,
                        });
                    }
                }
                "MBUS_DEVICES" => {
                    for device in item.as_array().into_iter().flatten() {
                        let channel = device
                            .get("CHANNEL_ID")
                            .and_then(Value::as_u64)
                            .and_then(|c| u8::try_from(c).ok())
                            .ok_or_else(|| {
                                self.bad(format!("M-Bus device without CHANNEL_ID: {device}"))
                            })?;
                        for (name, item) in device.as_object().into_iter().flatten() {
                            if name != "CHANNEL_ID" {
                                facts.extend(self.fact(name, item, Some(channel))?);
                            }
                        }
                    }
                }
                _ => facts.extend(self.fact(name, item, None)?),
            }
        }
        Ok(facts)
    }
}

/// A JSON number's text (`1.001`, `6545766.0`, `2317482647`, `1e-7`) as a decimal.
fn decimal(text: &str) -> Option<Quantity> {
    match text.split_once(['e', 'E']) {
        Some((m, e)) => m.parse::<Quantity>().ok()?.shifted(e.parse().ok()?),
        None => text.parse().ok(),
    }
}

impl PeerFormat for DsmrParser {
    fn expectations(&self, vector: &Vector) -> Result<Expectations, VectorError> {
        let encrypted = vector.key.is_some() || vector.frame.first() == Some(&0xDB);
        let telegram = if encrypted {
            vector
                .raw
                .get("expected_plaintext")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        } else {
            String::from_utf8_lossy(&vector.frame).into_owned()
        };
        let mut reader = Reader {
            id: &vector.id,
            telegram,
            telegram_ts: None,
        };
        let expected = vector
            .raw
            .get("expected")
            .and_then(Value::as_object)
            .ok_or_else(|| reader.bad("no expected object".into()))?;
        if let Some(stamp) = expected.get("P1_MESSAGE_TIMESTAMP") {
            reader.telegram_ts = reader.time(stamp, "value")?;
        }
        Ok(Expectations {
            facts: reader.facts(expected)?,
            expect_error: false,
            skip: encrypted.then(|| ENCRYPTED_SKIP.to_owned()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_numbers_as_decimals() {
        assert_eq!(decimal("1.001"), Some(Quantity::new(1001, -3)));
        assert_eq!(decimal("6545766.0"), Some(Quantity::new(6_545_766, 0)));
        assert_eq!(decimal("1e-7"), Some(Quantity::new(1, -7)));
        assert_eq!(decimal("2.5E3"), Some(Quantity::new(2500, 0)));
        assert_eq!(decimal("x"), None);
    }

    #[test]
    fn names_are_unique() {
        for (i, (name, candidates, _)) in NAMES.iter().enumerate() {
            assert!(!candidates.is_empty(), "{name}");
            assert!(
                NAMES.iter().skip(i + 1).all(|(n, _, _)| n != name),
                "{name} twice"
            );
        }
    }
}
