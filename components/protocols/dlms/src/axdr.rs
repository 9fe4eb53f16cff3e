//! A-XDR encoded COSEM data (IEC 62056-6-2, Green Book 9.5): the `Data` CHOICE with every
//! simple and structured type, compact arrays with their type description, and delta types.
//!
//! Decoding borrows strings from the input and allocates only the tree. Lengths and element
//! counts are attacker-controlled: each is checked against the bytes left before anything is
//! allocated (every element takes at least one byte), and nesting is limited to
//! [`MAX_DEPTH`], so a frame can neither exhaust memory nor the stack.

use ami_domain::DecodeError;

use crate::cursor::Cursor;

/// Deepest nesting of arrays and structures accepted.
pub const MAX_DEPTH: usize = 32;

/// A COSEM data value.
#[derive(Clone, Debug, PartialEq)]
pub enum Data<'a> {
    /// null-data (0).
    Null,
    /// array (1).
    Array(Vec<Data<'a>>),
    /// structure (2).
    Structure(Vec<Data<'a>>),
    /// boolean (3).
    Boolean(bool),
    /// bit-string (4): the number of bits and the bytes holding them.
    BitString {
        /// Number of bits.
        bits: usize,
        /// The bits, first bit in the most significant bit of the first byte.
        bytes: &'a [u8],
    },
    /// double-long (5).
    DoubleLong(i32),
    /// double-long-unsigned (6).
    DoubleLongUnsigned(u32),
    /// octet-string (9).
    OctetString(&'a [u8]),
    /// visible-string (10).
    VisibleString(&'a [u8]),
    /// utf8-string (12).
    Utf8String(&'a [u8]),
    /// bcd (13): one byte, two BCD digits.
    Bcd(u8),
    /// integer (15).
    Integer(i8),
    /// long (16).
    Long(i16),
    /// unsigned (17).
    Unsigned(u8),
    /// long-unsigned (18).
    LongUnsigned(u16),
    /// long64 (20).
    Long64(i64),
    /// long64-unsigned (21).
    Long64Unsigned(u64),
    /// enum (22).
    Enum(u8),
    /// float32 (23).
    Float32(f32),
    /// float64 (24).
    Float64(f64),
    /// date-time (25), 12 bytes (see [`crate::datetime`]).
    DateTime([u8; 12]),
    /// date (26), 5 bytes.
    Date([u8; 5]),
    /// time (27), 4 bytes.
    Time([u8; 4]),
    /// delta-integer (28).
    DeltaInteger(i8),
    /// delta-long (29).
    DeltaLong(i16),
    /// delta-double-long (30).
    DeltaDoubleLong(i32),
    /// delta-unsigned (31).
    DeltaUnsigned(u8),
    /// delta-long-unsigned (32).
    DeltaLongUnsigned(u16),
    /// delta-double-long-unsigned (33).
    DeltaDoubleLongUnsigned(u32),
    /// dont-care (255).
    DontCare,
}

impl<'a> Data<'a> {
    /// Decodes one value from the front of `bytes`; returns it and the bytes after it.
    pub fn parse(bytes: &'a [u8]) -> Result<(Data<'a>, &'a [u8]), DecodeError> {
        let mut cur = Cursor::new(bytes);
        let d = parse_data(&mut cur, 0)?;
        Ok((d, cur.rest()))
    }

    /// Decodes exactly one value: trailing bytes are `Malformed`.
    pub fn parse_all(bytes: &'a [u8]) -> Result<Data<'a>, DecodeError> {
        let (d, rest) = Self::parse(bytes)?;
        if !rest.is_empty() {
            return Err(DecodeError::Malformed(format!(
                "{} bytes after the A-XDR data",
                rest.len()
            )));
        }
        Ok(d)
    }

    /// The value as an integer, for every integral type (delta types included).
    pub fn as_i128(&self) -> Option<i128> {
        Some(match *self {
            Data::Boolean(b) => i128::from(b),
            Data::DoubleLong(v) | Data::DeltaDoubleLong(v) => i128::from(v),
            Data::DoubleLongUnsigned(v) | Data::DeltaDoubleLongUnsigned(v) => i128::from(v),
            Data::Integer(v) | Data::DeltaInteger(v) => i128::from(v),
            Data::Long(v) | Data::DeltaLong(v) => i128::from(v),
            Data::Unsigned(v) | Data::DeltaUnsigned(v) | Data::Enum(v) => i128::from(v),
            Data::LongUnsigned(v) | Data::DeltaLongUnsigned(v) => i128::from(v),
            Data::Long64(v) => i128::from(v),
            Data::Long64Unsigned(v) => i128::from(v),
            Data::Bcd(v) => i128::from((v >> 4) * 10 + (v & 0x0F)),
            _ => return None,
        })
    }

    /// The bytes of an octet-, visible- or utf8-string.
    pub fn as_bytes(&self) -> Option<&'a [u8]> {
        match *self {
            Data::OctetString(b) | Data::VisibleString(b) | Data::Utf8String(b) => Some(b),
            _ => None,
        }
    }

    /// The elements of an array or structure.
    pub fn elements(&self) -> Option<&[Data<'a>]> {
        match self {
            Data::Array(v) | Data::Structure(v) => Some(v),
            _ => None,
        }
    }
}

/// Appends an A-XDR length: one byte below 0x80, else `0x80 | n` and `n` big-endian bytes.
pub fn encode_length(n: usize, out: &mut Vec<u8>) {
    if n < 0x80 {
        out.push(n as u8);
    } else {
        let bytes = (n as u64).to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        let tail = bytes.get(skip..).unwrap_or_default();
        out.push(0x80 | tail.len() as u8);
        out.extend_from_slice(tail);
    }
}

impl Data<'_> {
    /// Appends the value's A-XDR encoding (tag and content); [`Data::parse`] reads it back.
    /// Compact arrays are not made: arrays are encoded element by element.
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Data::Null => out.push(0),
            Data::Array(items) | Data::Structure(items) => {
                out.push(if matches!(self, Data::Array(_)) { 1 } else { 2 });
                encode_length(items.len(), out);
                for i in items {
                    i.encode(out);
                }
            }
            Data::Boolean(b) => out.extend_from_slice(&[3, u8::from(*b)]),
            Data::BitString { bits, bytes } => {
                out.push(4);
                encode_length(*bits, out);
                let n = bits.div_ceil(8);
                out.extend_from_slice(bytes.get(..n).unwrap_or(bytes));
                out.resize(out.len() + n.saturating_sub(bytes.len()), 0);
            }
            Data::DoubleLong(v) => tagged(out, 5, &v.to_be_bytes()),
            Data::DoubleLongUnsigned(v) => tagged(out, 6, &v.to_be_bytes()),
            Data::OctetString(b) | Data::VisibleString(b) | Data::Utf8String(b) => {
                out.push(match self {
                    Data::OctetString(_) => 9,
                    Data::VisibleString(_) => 10,
                    _ => 12,
                });
                encode_length(b.len(), out);
                out.extend_from_slice(b);
            }
            Data::Bcd(v) => tagged(out, 13, &[*v]),
            Data::Integer(v) => tagged(out, 15, &v.to_be_bytes()),
            Data::Long(v) => tagged(out, 16, &v.to_be_bytes()),
            Data::Unsigned(v) => tagged(out, 17, &[*v]),
            Data::LongUnsigned(v) => tagged(out, 18, &v.to_be_bytes()),
            Data::Long64(v) => tagged(out, 20, &v.to_be_bytes()),
            Data::Long64Unsigned(v) => tagged(out, 21, &v.to_be_bytes()),
            Data::Enum(v) => tagged(out, 22, &[*v]),
            Data::Float32(v) => tagged(out, 23, &v.to_be_bytes()),
            Data::Float64(v) => tagged(out, 24, &v.to_be_bytes()),
            Data::DateTime(b) => tagged(out, 25, b),
            Data::Date(b) => tagged(out, 26, b),
            Data::Time(b) => tagged(out, 27, b),
            Data::DeltaInteger(v) => tagged(out, 28, &v.to_be_bytes()),
            Data::DeltaLong(v) => tagged(out, 29, &v.to_be_bytes()),
            Data::DeltaDoubleLong(v) => tagged(out, 30, &v.to_be_bytes()),
            Data::DeltaUnsigned(v) => tagged(out, 31, &[*v]),
            Data::DeltaLongUnsigned(v) => tagged(out, 32, &v.to_be_bytes()),
            Data::DeltaDoubleLongUnsigned(v) => tagged(out, 33, &v.to_be_bytes()),
            Data::DontCare => out.push(255),
        }
    }

    /// The A-XDR encoding as a new vector.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode(&mut out);
        out
    }
}

fn tagged(out: &mut Vec<u8>, tag: u8, content: &[u8]) {
    out.push(tag);
    out.extend_from_slice(content);
}

fn depth_check(depth: usize) -> Result<(), DecodeError> {
    if depth >= MAX_DEPTH {
        return Err(DecodeError::Malformed(format!(
            "A-XDR data nested deeper than {MAX_DEPTH}"
        )));
    }
    Ok(())
}

fn parse_data<'a>(cur: &mut Cursor<'a>, depth: usize) -> Result<Data<'a>, DecodeError> {
    let tag = cur.u8("A-XDR data tag")?;
    match tag {
        1 | 2 => {
            depth_check(depth)?;
            let what = if tag == 1 { "array" } else { "structure" };
            // Each element takes at least its tag byte: `length` bounds the count.
            let n = cur.length(what)?;
            let mut items = Vec::with_capacity(n);
            for _ in 0..n {
                items.push(parse_data(cur, depth + 1)?);
            }
            Ok(if tag == 1 {
                Data::Array(items)
            } else {
                Data::Structure(items)
            })
        }
        4 => {
            let bits = cur.raw_length("bit-string")?;
            let bytes = cur.take(bits.div_ceil(8), "bit-string")?;
            Ok(Data::BitString { bits, bytes })
        }
        9 => Ok(Data::OctetString(cur.octets("octet-string")?)),
        10 => Ok(Data::VisibleString(cur.octets("visible-string")?)),
        12 => Ok(Data::Utf8String(cur.octets("utf8-string")?)),
        19 => compact_array(cur, depth),
        _ => simple(cur, tag),
    }
}

/// A value of a type without length or elements (also the elements of compact arrays).
fn simple<'a>(cur: &mut Cursor<'a>, tag: u8) -> Result<Data<'a>, DecodeError> {
    Ok(match tag {
        0 => Data::Null,
        3 => Data::Boolean(cur.u8("boolean")? != 0),
        5 => Data::DoubleLong(i32::from_be_bytes(cur.array("double-long")?)),
        6 => Data::DoubleLongUnsigned(cur.u32("double-long-unsigned")?),
        13 => Data::Bcd(cur.u8("bcd")?),
        15 => Data::Integer(i8::from_be_bytes(cur.array("integer")?)),
        16 => Data::Long(i16::from_be_bytes(cur.array("long")?)),
        17 => Data::Unsigned(cur.u8("unsigned")?),
        18 => Data::LongUnsigned(cur.u16("long-unsigned")?),
        20 => Data::Long64(i64::from_be_bytes(cur.array("long64")?)),
        21 => Data::Long64Unsigned(cur.u64("long64-unsigned")?),
        22 => Data::Enum(cur.u8("enum")?),
        23 => Data::Float32(f32::from_be_bytes(cur.array("float32")?)),
        24 => Data::Float64(f64::from_be_bytes(cur.array("float64")?)),
        25 => Data::DateTime(cur.array("date-time")?),
        26 => Data::Date(cur.array("date")?),
        27 => Data::Time(cur.array("time")?),
        28 => Data::DeltaInteger(i8::from_be_bytes(cur.array("delta-integer")?)),
        29 => Data::DeltaLong(i16::from_be_bytes(cur.array("delta-long")?)),
        30 => Data::DeltaDoubleLong(i32::from_be_bytes(cur.array("delta-double-long")?)),
        31 => Data::DeltaUnsigned(cur.u8("delta-unsigned")?),
        32 => Data::DeltaLongUnsigned(cur.u16("delta-long-unsigned")?),
        33 => Data::DeltaDoubleLongUnsigned(cur.u32("delta-double-long-unsigned")?),
        255 => Data::DontCare,
        other => {
            return Err(DecodeError::Malformed(format!(
                "unknown A-XDR data tag {other}"
            )));
        }
    })
}

/// The type description of a compact array's elements.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TypeDescription {
    /// A simple or string type, by its tag.
    Simple(u8),
    /// An array of a fixed number of elements of one type.
    Array(u16, Box<TypeDescription>),
    /// A structure of these types.
    Structure(Vec<TypeDescription>),
}

fn type_description(cur: &mut Cursor<'_>, depth: usize) -> Result<TypeDescription, DecodeError> {
    depth_check(depth)?;
    let tag = cur.u8("compact-array type description")?;
    Ok(match tag {
        1 => {
            let n = cur.u16("compact-array array type")?;
            let inner = type_description(cur, depth + 1)?;
            if n == 0 {
                return Err(DecodeError::Malformed(
                    "compact-array: empty array type".into(),
                ));
            }
            TypeDescription::Array(n, Box::new(inner))
        }
        2 => {
            let n = cur.length("compact-array structure type")?;
            if n == 0 {
                return Err(DecodeError::Malformed(
                    "compact-array: empty structure type".into(),
                ));
            }
            let mut fields = Vec::with_capacity(n);
            for _ in 0..n {
                fields.push(type_description(cur, depth + 1)?);
            }
            TypeDescription::Structure(fields)
        }
        // Types that take no bytes would let a few bytes stand for unbounded elements.
        0 | 255 | 19 => {
            return Err(DecodeError::Malformed(format!(
                "compact-array: element type {tag} not allowed"
            )));
        }
        t => TypeDescription::Simple(t),
    })
}

fn typed<'a>(
    cur: &mut Cursor<'a>,
    td: &TypeDescription,
    depth: usize,
) -> Result<Data<'a>, DecodeError> {
    depth_check(depth)?;
    match td {
        TypeDescription::Simple(t) => match t {
            4 => {
                let bits = cur.raw_length("bit-string")?;
                let bytes = cur.take(bits.div_ceil(8), "bit-string")?;
                Ok(Data::BitString { bits, bytes })
            }
            9 => Ok(Data::OctetString(cur.octets("octet-string")?)),
            10 => Ok(Data::VisibleString(cur.octets("visible-string")?)),
            12 => Ok(Data::Utf8String(cur.octets("utf8-string")?)),
            t => simple(cur, *t),
        },
        TypeDescription::Array(n, inner) => {
            // Every element takes at least one byte (no zero-size types are described).
            let n = usize::from(*n);
            if n > cur.remaining() {
                return Err(DecodeError::Truncated(format!(
                    "compact-array: {n} elements, {} bytes left",
                    cur.remaining()
                )));
            }
            let mut items = Vec::with_capacity(n);
            for _ in 0..n {
                items.push(typed(cur, inner, depth + 1)?);
            }
            Ok(Data::Array(items))
        }
        TypeDescription::Structure(fields) => {
            let mut items = Vec::with_capacity(fields.len().min(cur.remaining()));
            for f in fields {
                items.push(typed(cur, f, depth + 1)?);
            }
            Ok(Data::Structure(items))
        }
    }
}

fn compact_array<'a>(cur: &mut Cursor<'a>, depth: usize) -> Result<Data<'a>, DecodeError> {
    depth_check(depth)?;
    let td = type_description(cur, depth + 1)?;
    let contents = cur.octets("compact-array contents")?;
    let mut inner = Cursor::new(contents);
    let mut items = Vec::new();
    while !inner.is_empty() {
        let before = inner.remaining();
        items.push(typed(&mut inner, &td, depth + 1)?);
        if inner.remaining() >= before {
            return Err(DecodeError::Malformed(
                "compact-array: element of no bytes".into(),
            ));
        }
    }
    Ok(Data::Array(items))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simple_types() {
        assert_eq!(
            Data::parse_all(&[6, 0, 0, 0x13, 0x91]),
            Ok(Data::DoubleLongUnsigned(5009))
        );
        assert_eq!(Data::parse_all(&[16, 0xFF, 0xFE]), Ok(Data::Long(-2)));
        assert_eq!(
            Data::parse_all(&[9, 2, 0xAB, 0xCD]),
            Ok(Data::OctetString(&[0xAB, 0xCD]))
        );
        assert_eq!(
            Data::parse_all(&[2, 2, 15, 0xFF, 22, 0x1B]),
            Ok(Data::Structure(vec![Data::Integer(-1), Data::Enum(27)]))
        );
        assert_eq!(
            Data::parse_all(&[4, 0x0A, 0xFF, 0xC0]),
            Ok(Data::BitString {
                bits: 10,
                bytes: &[0xFF, 0xC0]
            })
        );
        assert_eq!(
            Data::parse_all(&[23, 0x3F, 0xC0, 0, 0]),
            Ok(Data::Float32(1.5))
        );
    }

    #[test]
    fn compact_array_of_structures() {
        // compact-array of structure{long-unsigned, octet-string}: two elements.
        let bytes = [
            19, 2, 2, 18, 9,  // type description
            10, // contents length
            0, 1, 2, 0xAA, 0xBB, // element 1
            0, 2, 1, 0xCC, 0xDD, // element 2 (octet-string of 1, then ... )
        ];
        let d = Data::parse_all(&bytes);
        assert!(d.is_err() || matches!(d, Ok(Data::Array(_))));
        let bytes = [19, 2, 2, 18, 9, 9, 0, 1, 1, 0xAA, 0, 2, 2, 0xBB, 0xCC];
        assert_eq!(
            Data::parse_all(&bytes),
            Ok(Data::Array(vec![
                Data::Structure(vec![Data::LongUnsigned(1), Data::OctetString(&[0xAA])]),
                Data::Structure(vec![
                    Data::LongUnsigned(2),
                    Data::OctetString(&[0xBB, 0xCC])
                ]),
            ]))
        );
    }

    #[test]
    fn hostile_counts_fail_without_allocating() {
        assert!(matches!(
            Data::parse(&[1, 0x84, 0xFF, 0xFF, 0xFF, 0xFF]),
            Err(DecodeError::Truncated(_))
        ));
        let deep = [1u8, 1].repeat(100);
        assert!(matches!(Data::parse(&deep), Err(DecodeError::Malformed(_))));
        assert!(matches!(
            Data::parse(&[19, 0, 4, 0, 0, 0, 0]),
            Err(DecodeError::Malformed(_))
        ));
        assert!(matches!(Data::parse(&[7]), Err(DecodeError::Malformed(_))));
    }
}
