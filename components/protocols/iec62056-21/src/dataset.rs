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
        quantity_of_text(&self.text)
    }
}

/// [`DataValue::quantity`] of the value whose bytes are `bytes`, read without copying them
/// when they are ASCII (the usual case, where ISO 8859-1 and UTF-8 agree).
pub(crate) fn quantity_of(bytes: &[u8]) -> Option<(Quantity, Unit)> {
    let star = bytes.iter().position(|&b| b == b'*')?;
    if !bytes.is_ascii() {
        return quantity_of_text(&latin1(bytes));
    }
    let value = trim(bytes.get(..star)?);
    let unit = trim(bytes.get(star + 1..)?);
    let (unit, prefix) = match common_unit(unit) {
        Some(known) => known,
        None => {
            let unit = std::str::from_utf8(unit).ok()?;
            Unit::parse_symbol(unit).ok().or_else(|| alias(unit))?
        }
    };
    if matches!(unit, Unit::Count | Unit::Other) {
        return None;
    }
    let number = Quantity::from_ascii(value)?.shifted(prefix)?;
    Some((number, unit))
}

/// ASCII text without the white space `str::trim` removes around it.
fn trim(text: &[u8]) -> &[u8] {
    let space = |b: &u8| matches!(b, b'\t' | b'\n' | 0x0B | 0x0C | b'\r' | b' ');
    let start = text.iter().position(|b| !space(b)).unwrap_or(text.len());
    let end = text
        .iter()
        .rposition(|b| !space(b))
        .map_or(start, |k| k + 1);
    text.get(start..end).unwrap_or_default()
}

fn quantity_of_text(text: &str) -> Option<(Quantity, Unit)> {
    let (value, unit) = text.split_once('*')?;
    let unit = unit.trim();
    let (unit, prefix) = Unit::parse_symbol(unit).ok().or_else(|| alias(unit))?;
    if matches!(unit, Unit::Count | Unit::Other) {
        return None;
    }
    let number = value.trim().parse::<Quantity>().ok()?.shifted(prefix)?;
    Some((number, unit))
}

/// The units readouts print most, as [`Unit::parse_symbol`] reads them, without its error
/// path (which allocates) for the others.
fn common_unit(unit: &[u8]) -> Option<(Unit, i8)> {
    Some(match unit {
        b"kWh" => (Unit::WattHour, 3),
        b"kW" => (Unit::Watt, 3),
        b"Wh" => (Unit::WattHour, 0),
        b"W" => (Unit::Watt, 0),
        b"MWh" => (Unit::WattHour, 6),
        b"kvarh" => (Unit::VarHour, 3),
        b"kvar" => (Unit::Var, 3),
        b"V" => (Unit::Volt, 0),
        b"A" => (Unit::Ampere, 0),
        b"Hz" => (Unit::Hertz, 0),
        b"m3" => (Unit::CubicMetre, 0),
        _ => return None,
    })
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

/// Where [`parse_block`] puts what it reads.
pub(crate) trait Sink<'a> {
    /// A data set begins: its register; its values follow.
    fn data_set(&mut self, register: Obis);
    /// A value of the current data set: the bytes between the parentheses, which hold no
    /// control characters, `(` nor `!`.
    fn value(&mut self, text: &'a [u8]);
}

/// Collects [`DataSet`]s, each value copied as ISO 8859-1 text.
impl Sink<'_> for Vec<DataSet> {
    fn data_set(&mut self, register: Obis) {
        self.push(DataSet {
            register,
            values: Vec::with_capacity(1),
        });
    }

    fn value(&mut self, text: &[u8]) {
        if let Some(last) = self.last_mut() {
            last.values.push(DataValue { text: latin1(text) });
        }
    }
}

/// Parses data sets from `start` up to the end character `!` into `sink`; returns the index
/// of `!`.
pub(crate) fn parse_block<'a, S: Sink<'a>>(
    input: &'a [u8],
    start: usize,
    sink: &mut S,
) -> Result<usize, DecodeError> {
    let mut any = false;
    let mut i = start;
    loop {
        match input.get(i) {
            None => {
                return Err(DecodeError::Truncated(format!(
                    "data block from byte {start} ends at byte {i} without the end character '!'"
                )));
            }
            Some(b'!') => return Ok(i),
            Some(b'\r' | b'\n' | b' ' | b'\t') => i += 1,
            Some(b'(') => {
                // Address left out: more values of the previous data set.
                if !any {
                    return Err(DecodeError::Malformed(format!(
                        "value without an address at byte {i}"
                    )));
                }
                i = parse_values(input, i, sink)?;
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
                // A well-formed address, the usual case, is read in one pass; anything else
                // is checked byte by byte so that the error names what is wrong.
                let rest = input.get(i..).unwrap_or_default();
                let fast = rest
                    .iter()
                    .take(address::MAX_LEN + 1)
                    .position(|&b| b == b'(')
                    .and_then(|k| Some((i + k, address::parse_fast(rest.get(..k)?)?)));
                if let Some((open, register)) = fast {
                    sink.data_set(register);
                    any = true;
                    i = parse_values(input, open, sink)?;
                    continue;
                }
                let open = address_end(input, i)?;
                let text = input.get(i..open).unwrap_or_default();
                let register = address::parse(text).map_err(|reason| {
                    DecodeError::Malformed(format!(
                        "address {:?} at byte {i}: {reason}",
                        latin1(text)
                    ))
                })?;
                sink.data_set(register);
                any = true;
                i = parse_values(input, open, sink)?;
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
fn parse_values<'a, S: Sink<'a>>(
    input: &'a [u8],
    open: usize,
    sink: &mut S,
) -> Result<usize, DecodeError> {
    let mut i = open;
    while input.get(i) == Some(&b'(') {
        let value_start = i + 1;
        let rest = input.get(value_start..).unwrap_or_default();
        // The first byte that ends the value: ')' or one a value may not hold.
        let stop = rest
            .iter()
            .position(|&b| b == b')' || b < 0x20 || b == 0x7F || b == b'(' || b == b'!');
        let j = match stop {
            Some(k) => value_start + k,
            None => {
                return Err(DecodeError::Truncated(format!(
                    "input ends at byte {} inside the value opened at byte {i}",
                    input.len().max(value_start)
                )));
            }
        };
        match input.get(j) {
            Some(b')') => {}
            Some(&b) => {
                return Err(DecodeError::Malformed(format!(
                    "byte 0x{b:02x} at {j} inside the value opened at byte {i}"
                )));
            }
            None => {
                return Err(DecodeError::Truncated(format!(
                    "input ends at byte {j} inside the value opened at byte {i}"
                )));
            }
        }
        sink.value(rest.get(..j - value_start).unwrap_or_default());
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
    fn byte_quantities_match_the_text_ones() {
        for text in [
            "0029.055*MWh",
            "  80*Deg",
            "001.476*m3ph",
            "+000.8*A",
            "-1,5 * kWh ",
            "12*",
            "*kWh",
            "088*C&082*C",
            "12*furlong",
            "1.5*kW",
            "1.5*kvarh",
            "1.5*Hz",
            "1.5*m3",
            "1.5**kWh",
            ".5*V",
            "5.*V",
            ".*V",
            "-*V",
            "1.2.3*V",
            "9999999999999999999*Wh",
            "999999999999999999*Wh",
            "99999999999999999.9*Wh",
            "-0.00000000000000001*Wh",
            "1..2*Wh",
            "1,2.3*Wh",
            "0.1000000000000000000000*Wh",
            "0.00000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000001*Wh",
            "1\u{b}*W",
            "\u{a0}1*W",
            "1*\u{85}W",
        ] {
            let latin1: Vec<u8> = text.chars().map(|c| c as u8).collect();
            assert_eq!(quantity_of(&latin1), value(text).quantity(), "{text:?}");
        }
    }

    #[test]
    fn several_sets_per_line_and_several_values() -> Result<(), DecodeError> {
        let block = b"6.8(1*MWh)F(0)\r\n1.6.0(2*kW)(1703100930)\r\n(7)!x";
        let mut sets = Vec::new();
        let end = parse_block(block, 0, &mut sets)?;
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
            parse_block(b"1.8.0(1", 0, &mut Vec::<DataSet>::new()),
            Err(DecodeError::Truncated(_))
        ));
        assert!(matches!(
            parse_block(b"1.8.0(1)\r\n", 0, &mut Vec::<DataSet>::new()),
            Err(DecodeError::Truncated(_))
        ));
        assert!(matches!(
            parse_block(b"1.8", 0, &mut Vec::<DataSet>::new()),
            Err(DecodeError::Truncated(_))
        ));
        assert!(matches!(
            parse_block(b"XYZ(1)!", 0, &mut Vec::<DataSet>::new()),
            Err(DecodeError::Malformed(_))
        ));
        assert!(matches!(
            parse_block(b"(1)!", 0, &mut Vec::<DataSet>::new()),
            Err(DecodeError::Malformed(_))
        ));
        assert!(matches!(
            parse_block(b"1.8.0\r\n(1)!", 0, &mut Vec::<DataSet>::new()),
            Err(DecodeError::Malformed(_))
        ));
        assert!(matches!(
            parse_block(b"1.8.0(1\r\n)!", 0, &mut Vec::<DataSet>::new()),
            Err(DecodeError::Malformed(_))
        ));
        assert!(matches!(
            parse_block(b"1.8.0(1)\x03", 0, &mut Vec::<DataSet>::new()),
            Err(DecodeError::Malformed(_))
        ));
        assert!(matches!(
            parse_block(b"1.8.0(1)\x04", 0, &mut Vec::<DataSet>::new()),
            Err(DecodeError::Unsupported(_))
        ));
    }
}
