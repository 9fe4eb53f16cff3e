//! The data block: data sets `address(value*unit)` on CR LF separated lines, several per line,
//! a data set with several values `address(value)(value)…`, up to the end character `!`.
//!
//! A value with a unit is a number (`0029.055*MWh`); every other value (no unit, an unknown
//! unit, a date, a serial number, a status word, an empty `()`) stays text, byte for byte.
//! Bytes are read as ISO 8859-1 (each byte one character), so no input is ever lost.

use ami_domain::{DecodeError, Obis, Quantity, Unit};

use crate::address;
use crate::frame::{EOT, ETX, STX};

/// One data set: a register and its values.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DataSet {
    /// The register, from the data set's address.
    pub register: Obis,
    /// The values in the order sent (a maximum-demand register sends the value and the time
    /// of the maximum, `(02.468*kW)(1703100930)`).
    pub values: Vec<DataValue>,
}

/// One value of a data set, as sent between `(` and `)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DataValue {
    /// The text between the parentheses, exactly as sent.
    pub text: String,
}

impl DataValue {
    /// The value part, before the first `*`.
    pub fn value(&self) -> &str {
        self.text.split_once('*').map_or(&self.text, |(v, _)| v)
    }

    /// The unit part, after the first `*`, if there is one.
    pub fn unit(&self) -> Option<&str> {
        self.text.split_once('*').map(|(_, u)| u)
    }

    /// The number and its base unit, the unit prefix moved into the number
    /// (`0029.055*MWh` is 29 055 000 Wh): only for a decimal value with a unit we know.
    pub fn quantity(&self) -> Option<(Quantity, Unit)> {
        let (value, unit) = self.text.split_once('*')?;
        let unit = unit.trim();
        let (unit, prefix) = Unit::parse_symbol(unit).ok().or_else(|| alias(unit))?;
        if matches!(unit, Unit::Count | Unit::Other) {
            return None;
        }
        let number = value.trim().parse::<Quantity>().ok()?.shifted(prefix)?;
        Some((number, unit))
    }
}

/// Unit spellings meters print that [`Unit::parse_symbol`] does not know.
fn alias(unit: &str) -> Option<(Unit, i8)> {
    Some(match unit {
        // Heat meters (Landis+Gyr UH50, Siemens 2WR5): flow in "m3ph".
        "m3ph" => (Unit::CubicMetrePerHour, 0),
        "sec" | "secs" => (Unit::Second, 0),
        "Deg" => (Unit::Degree, 0),
        _ => return None,
    })
}

/// Parses data sets from `start` up to the end character `!`; returns them and the index of `!`.
pub(crate) fn parse_block(
    input: &[u8],
    start: usize,
) -> Result<(Vec<DataSet>, usize), DecodeError> {
    let mut sets: Vec<DataSet> = Vec::new();
    let mut i = start;
    loop {
        match input.get(i) {
            None => {
                return Err(DecodeError::Truncated(format!(
                    "data block from byte {start} ends at byte {i} without the end character '!'"
                )));
            }
            Some(b'!') => return Ok((sets, i)),
            Some(b'\r' | b'\n' | b' ' | b'\t') => i += 1,
            Some(b'(') => {
                // Address left out: more values of the previous data set.
                let last = sets.last_mut().ok_or_else(|| {
                    DecodeError::Malformed(format!("value without an address at byte {i}"))
                })?;
                i = parse_values(input, i, &mut last.values)?;
            }
            Some(&EOT) => {
                return Err(DecodeError::Unsupported(format!(
                    "partial block (EOT at byte {i}): feed the blocks through Reassembler"
                )));
            }
            Some(&b @ (STX | ETX)) => {
                return Err(DecodeError::Malformed(format!(
                    "control character 0x{b:02x} at byte {i} before the end character '!'"
                )));
            }
            Some(_) => {
                let open = address_end(input, i)?;
                let text = input.get(i..open).unwrap_or_default();
                let register = address::parse(text).map_err(|reason| {
                    DecodeError::Malformed(format!(
                        "address {:?} at byte {i}: {reason}",
                        latin1(text)
                    ))
                })?;
                let mut values = Vec::with_capacity(1);
                i = parse_values(input, open, &mut values)?;
                sets.push(DataSet { register, values });
            }
        }
    }
}

/// The index of the `(` that ends the address starting at `start`.
fn address_end(input: &[u8], start: usize) -> Result<usize, DecodeError> {
    let mut i = start;
    loop {
        match input.get(i) {
            Some(b'(') => return Ok(i),
            None => {
                return Err(DecodeError::Truncated(format!(
                    "input ends at byte {i} inside the address starting at byte {start}"
                )));
            }
            Some(&b) if i - start < address::MAX_LEN && is_address_char(b) => i += 1,
            Some(&b) => {
                let seen = input.get(start..i).unwrap_or_default();
                return Err(DecodeError::Malformed(format!(
                    "address {:?} at byte {start}: byte 0x{b:02x} at {i} where '(' belongs",
                    latin1(seen)
                )));
            }
        }
    }
}

/// Printable ASCII other than the characters the standard excludes from addresses.
fn is_address_char(b: u8) -> bool {
    (0x21..=0x7E).contains(&b) && !matches!(b, b'(' | b')' | b'/' | b'!')
}

/// Parses `(value)` groups starting at the `(` at `open`; returns the index after the last `)`.
fn parse_values(
    input: &[u8],
    open: usize,
    values: &mut Vec<DataValue>,
) -> Result<usize, DecodeError> {
    let mut i = open;
    while input.get(i) == Some(&b'(') {
        let value_start = i + 1;
        let mut j = value_start;
        loop {
            match input.get(j) {
                Some(b')') => break,
                None => {
                    return Err(DecodeError::Truncated(format!(
                        "input ends at byte {j} inside the value opened at byte {i}"
                    )));
                }
                Some(&b) if b < 0x20 || b == 0x7F || b == b'(' || b == b'!' => {
                    return Err(DecodeError::Malformed(format!(
                        "byte 0x{b:02x} at {j} inside the value opened at byte {i}"
                    )));
                }
                Some(_) => j += 1,
            }
        }
        values.push(DataValue {
            text: latin1(input.get(value_start..j).unwrap_or_default()),
        });
        i = j + 1;
    }
    Ok(i)
}

/// Bytes as ISO 8859-1 text.
pub(crate) fn latin1(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        // ASCII, the usual case, is the same in both encodings.
        Ok(text) if bytes.is_ascii() => text.to_owned(),
        _ => bytes.iter().map(|&b| char::from(b)).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(text: &str) -> DataValue {
        DataValue { text: text.into() }
    }

    #[test]
    fn numbers_need_a_known_unit() {
        assert_eq!(
            value("0029.055*MWh").quantity(),
            Some((Quantity::new(29055, 3), Unit::WattHour))
        );
        assert_eq!(
            value("  80*Deg").quantity(),
            Some((Quantity::new(80, 0), Unit::Degree))
        );
        assert_eq!(
            value("001.476*m3ph").quantity(),
            Some((Quantity::new(1476, -3), Unit::CubicMetrePerHour))
        );
        assert_eq!(
            value("+000.8*A").quantity(),
            Some((Quantity::new(8, -1), Unit::Ampere))
        );
        assert_eq!(value("00010213").quantity(), None);
        assert_eq!(value("12*").quantity(), None);
        assert_eq!(value("088*C&082*C").quantity(), None);
        assert_eq!(value("12*furlong").quantity(), None);
        assert_eq!(value("V01.69#EEA3546C").value(), "V01.69#EEA3546C");
        assert_eq!(value("1.5*kW").unit(), Some("kW"));
    }

    #[test]
    fn several_sets_per_line_and_several_values() -> Result<(), DecodeError> {
        let block = b"6.8(1*MWh)F(0)\r\n1.6.0(2*kW)(1703100930)\r\n(7)!x";
        let (sets, end) = parse_block(block, 0)?;
        assert_eq!(block.get(end), Some(&b'!'));
        assert_eq!(sets.len(), 3);
        let texts: Vec<&str> = sets
            .iter()
            .flat_map(|s| s.values.iter().map(|v| v.text.as_str()))
            .collect();
        assert_eq!(texts, ["1*MWh", "0", "2*kW", "1703100930", "7"]);
        Ok(())
    }

    #[test]
    fn errors() {
        assert!(matches!(
            parse_block(b"1.8.0(1", 0),
            Err(DecodeError::Truncated(_))
        ));
        assert!(matches!(
            parse_block(b"1.8.0(1)\r\n", 0),
            Err(DecodeError::Truncated(_))
        ));
        assert!(matches!(
            parse_block(b"1.8", 0),
            Err(DecodeError::Truncated(_))
        ));
        assert!(matches!(
            parse_block(b"XYZ(1)!", 0),
            Err(DecodeError::Malformed(_))
        ));
        assert!(matches!(
            parse_block(b"(1)!", 0),
            Err(DecodeError::Malformed(_))
        ));
        assert!(matches!(
            parse_block(b"1.8.0\r\n(1)!", 0),
            Err(DecodeError::Malformed(_))
        ));
        assert!(matches!(
            parse_block(b"1.8.0(1\r\n)!", 0),
            Err(DecodeError::Malformed(_))
        ));
        assert!(matches!(
            parse_block(b"1.8.0(1)\x03", 0),
            Err(DecodeError::Malformed(_))
        ));
        assert!(matches!(
            parse_block(b"1.8.0(1)\x04", 0),
            Err(DecodeError::Unsupported(_))
        ));
    }
}
