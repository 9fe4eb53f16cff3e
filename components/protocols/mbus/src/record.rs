//! Data records of the application layer (EN 13757-3 §6): DIF and DIFEs (data type,
//! function, storage number, tariff, subunit), the VIB ([`crate::vif`]) and the value in its
//! data type (integers of 8 to 64 bits, BCD, 32-bit reals, variable length), plus the
//! manufacturer-specific tail after DIF `0x0F`/`0x1F`.
//!
//! [`Records`] walks the records once, without copying the data; an error ends the walk.

use ami_domain::DecodeError;

use crate::vif::{self, Vib};

/// At most this many DIFEs follow a DIF.
pub const MAX_DIFE: usize = 10;

/// The DIF function field.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Function {
    /// Instantaneous (current) value.
    Instantaneous,
    /// Maximum value.
    Maximum,
    /// Minimum value.
    Minimum,
    /// Value during error state.
    Error,
}

/// A record's value, as its data field codes it.
#[derive(Clone, Debug, PartialEq)]
pub enum Value<'a> {
    /// No data (data field 0 or 8, selection for readout).
    None,
    /// A binary or BCD integer.
    Int(i64),
    /// A 32-bit IEEE 754 real.
    Real(f32),
    /// BCD with a digit that is not decimal (an error or "not available" marker): the raw
    /// bytes, as sent.
    InvalidBcd(&'a [u8]),
    /// Variable-length text (LVAR 0x00-0xBF), in reading order (the wire sends it last
    /// character first).
    Text(String),
    /// Variable-length binary data, or an integer too long for 64 bits, as sent.
    Bytes(&'a [u8]),
}

/// One data record.
#[derive(Clone, Debug, PartialEq)]
pub struct Record<'a> {
    /// The DIF byte.
    pub dif: u8,
    /// The data field (DIF bits 0-3).
    pub data_field: u8,
    /// The function field.
    pub function: Function,
    /// The storage number (0 = current value).
    pub storage: u64,
    /// The tariff (0 = total).
    pub tariff: u32,
    /// The subunit (device) number.
    pub subunit: u32,
    /// The value information block.
    pub vib: Vib,
    /// The data bytes as sent (after the LVAR byte for variable length).
    pub data: &'a [u8],
    /// The decoded value.
    pub value: Value<'a>,
}

/// One item of the record sequence.
#[derive(Clone, Debug, PartialEq)]
pub enum Item<'a> {
    /// A data record.
    Record(Record<'a>),
    /// Manufacturer-specific data (DIF `0x0F`, or `0x1F` when more records follow in the
    /// next telegram) up to the end of the application data.
    ManufacturerData {
        /// DIF `0x1F`.
        more_follow: bool,
        /// The bytes after the DIF.
        data: &'a [u8],
    },
}

/// The records of an application-layer payload.
#[derive(Clone, Debug)]
pub struct Records<'a> {
    data: &'a [u8],
    pos: usize,
    done: bool,
}

impl<'a> Records<'a> {
    /// The records in `data` (the plaintext after the transport header).
    pub fn new(data: &'a [u8]) -> Self {
        Self {
            data,
            pos: 0,
            done: false,
        }
    }
}

fn take<'a>(
    data: &'a [u8],
    pos: &mut usize,
    n: usize,
    what: &str,
) -> Result<&'a [u8], DecodeError> {
    let end = pos
        .checked_add(n)
        .filter(|e| *e <= data.len())
        .ok_or_else(|| DecodeError::Truncated(format!("record ends in its {what}")))?;
    let s = data.get(*pos..end).unwrap_or_default();
    *pos = end;
    Ok(s)
}

/// A little-endian two's-complement integer of 1 to 8 bytes.
pub fn int_le(b: &[u8]) -> i64 {
    let mut v: u64 = 0;
    for (i, &x) in b.iter().take(8).enumerate() {
        v |= u64::from(x) << (8 * i);
    }
    let bits = 8 * b.len().min(8) as u32;
    if bits == 0 || bits == 64 {
        return v as i64;
    }
    let shift = 64 - bits;
    ((v << shift) as i64) >> shift
}

/// A little-endian BCD number; a high nibble `F` in the last byte makes it negative
/// (EN 13757-3 type A). `None` if a digit is not decimal.
pub fn bcd_le(b: &[u8]) -> Option<i64> {
    let mut v: i64 = 0;
    let mut negative = false;
    for (i, &x) in b.iter().enumerate().rev() {
        let (hi, lo) = (x >> 4, x & 0x0F);
        if i + 1 == b.len() && hi == 0x0F {
            negative = true;
        } else if hi > 9 {
            return None;
        } else {
            v = v.checked_mul(10)?.checked_add(i64::from(hi))?;
        }
        if lo > 9 {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(i64::from(lo))?;
    }
    Some(if negative { -v } else { v })
}

impl<'a> Records<'a> {
    fn record(&mut self, dif: u8) -> Result<Record<'a>, DecodeError> {
        let d = self.data;
        let mut pos = self.pos;
        let mut storage = u64::from((dif >> 6) & 1);
        let (mut tariff, mut subunit) = (0u32, 0u32);
        let mut ext = dif & 0x80 != 0;
        let mut n = 0;
        while ext {
            if n >= MAX_DIFE {
                return Err(DecodeError::Malformed(format!(
                    "more than {MAX_DIFE} DIFEs"
                )));
            }
            let dife = *d
                .get(pos)
                .ok_or_else(|| DecodeError::Truncated("record ends in its DIFE".into()))?;
            pos += 1;
            storage |= u64::from(dife & 0x0F) << (1 + 4 * n);
            tariff |= u32::from((dife >> 4) & 3) << (2 * n);
            subunit |= u32::from((dife >> 6) & 1) << n;
            ext = dife & 0x80 != 0;
            n += 1;
        }
        let vib = vif::parse(d, &mut pos)?;
        let data_field = dif & 0x0F;
        let (data, value) = match data_field {
            0x0 | 0x8 => (d.get(pos..pos).unwrap_or_default(), Value::None),
            0x1..=0x4 | 0x6 | 0x7 => {
                let len = match data_field {
                    0x6 => 6,
                    0x7 => 8,
                    l => usize::from(l),
                };
                let b = take(d, &mut pos, len, "data")?;
                (b, Value::Int(int_le(b)))
            }
            0x5 => {
                let b = take(d, &mut pos, 4, "data")?;
                let a: [u8; 4] = b.try_into().unwrap_or_default();
                (b, Value::Real(f32::from_le_bytes(a)))
            }
            0x9..=0xC | 0xE => {
                let len = match data_field {
                    0xE => 6,
                    l => usize::from(l - 8),
                };
                let b = take(d, &mut pos, len, "data")?;
                (b, bcd_le(b).map_or(Value::InvalidBcd(b), Value::Int))
            }
            0xD => {
                let lvar = *take(d, &mut pos, 1, "data")?
                    .first()
                    .ok_or_else(|| DecodeError::Truncated("record ends in its data".into()))?;
                let len = match lvar {
                    0x00..=0xBF => usize::from(lvar),
                    0xC0..=0xC9 => usize::from(lvar - 0xC0),
                    0xD0..=0xD9 => usize::from(lvar - 0xD0),
                    0xE0..=0xEF => usize::from(lvar - 0xE0),
                    0xF0..=0xF4 => 4 * usize::from(lvar - 0xEC),
                    0xF5 => 48,
                    0xF6 => 64,
                    _ => {
                        return Err(DecodeError::Malformed(format!(
                            "reserved variable-length code 0x{lvar:02X}"
                        )));
                    }
                };
                let b = take(d, &mut pos, len, "data")?;
                let value = match lvar {
                    0x00..=0xBF => Value::Text(b.iter().rev().map(|&c| char::from(c)).collect()),
                    0xC0..=0xC9 => bcd_le(b).map_or(Value::InvalidBcd(b), Value::Int),
                    0xD0..=0xD9 => bcd_le(b).map_or(Value::InvalidBcd(b), |v| Value::Int(-v)),
                    0xE0..=0xE8 => Value::Int(int_le(b)),
                    _ => Value::Bytes(b),
                };
                (b, value)
            }
            _ => {
                return Err(DecodeError::Malformed(format!("reserved DIF 0x{dif:02X}")));
            }
        };
        self.pos = pos;
        Ok(Record {
            dif,
            data_field,
            function: match (dif >> 4) & 3 {
                0 => Function::Instantaneous,
                1 => Function::Maximum,
                2 => Function::Minimum,
                _ => Function::Error,
            },
            storage,
            tariff,
            subunit,
            vib,
            data,
            value,
        })
    }
}

impl<'a> Iterator for Records<'a> {
    type Item = Result<Item<'a>, DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.done {
                return None;
            }
            let Some(&dif) = self.data.get(self.pos) else {
                self.done = true;
                return None;
            };
            self.pos += 1;
            match dif {
                0x2F => continue,
                0x0F | 0x1F => {
                    self.done = true;
                    return Some(Ok(Item::ManufacturerData {
                        more_follow: dif == 0x1F,
                        data: self.data.get(self.pos..).unwrap_or_default(),
                    }));
                }
                // Global readout request: no VIB, no data.
                0x7F | 0xFF => continue,
                _ => {
                    let r = self.record(dif);
                    if r.is_err() {
                        self.done = true;
                    }
                    return Some(r.map(Item::Record));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers() {
        assert_eq!(int_le(&[0xFF]), -1);
        assert_eq!(int_le(&[0x34, 0x12]), 0x1234);
        assert_eq!(bcd_le(&[0x78, 0x56, 0x34, 0x12]), Some(12_345_678));
        assert_eq!(bcd_le(&[0x12, 0xF0]), Some(-12));
        assert_eq!(bcd_le(&[0x1A]), None);
    }

    #[test]
    fn walk() -> Result<(), DecodeError> {
        // 0C 13 volume BCD8, 2F filler, 0F manufacturer data.
        let data = [0x0C, 0x13, 0x21, 0x43, 0x00, 0x00, 0x2F, 0x0F, 0xAA];
        let items: Vec<Item<'_>> = Records::new(&data).collect::<Result<_, _>>()?;
        assert_eq!(items.len(), 2);
        assert!(matches!(&items[0], Item::Record(r) if r.value == Value::Int(4321)));
        assert!(matches!(
            &items[1],
            Item::ManufacturerData { data: [0xAA], .. }
        ));
        Ok(())
    }
}
