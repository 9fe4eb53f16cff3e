//! HDLC frames of IEC 62056-46 (frame format type 3): flags, format field with segmentation
//! bit and length, address fields of 1, 2 or 4 bytes, control field, HCS and FCS
//! (CRC-16/X.25, the FCS-16 of RFC 1662).
//!
//! The frame is read by its length field, never by scanning for flags: DLMS HDLC does no byte
//! stuffing, so 0x7E and 0x7D occur inside the information field.

use ami_domain::DecodeError;

use crate::cursor::Cursor;

/// The opening and closing flag.
pub const FLAG: u8 = 0x7E;

const FCS_TABLE: [u16; 256] = {
    let mut table = [0u16; 256];
    let mut i = 0;
    while i < 256 {
        let mut crc = i as u16;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0x8408
            } else {
                crc >> 1
            };
            bit += 1;
        }
        table[i] = crc;
        i += 1;
    }
    table
};

/// CRC-16/X.25 (FCS-16 of RFC 1662): reflected polynomial 0x8408, init and xorout 0xFFFF.
/// It is sent least significant byte first.
pub fn fcs16(data: &[u8]) -> u16 {
    let crc = data.iter().fold(0xFFFFu16, |crc, &b| {
        (crc >> 8) ^ FCS_TABLE[usize::from((crc ^ u16::from(b)) & 0xFF)]
    });
    !crc
}

/// An HDLC address: the upper (logical) and, on server addresses of 2 or 4 bytes, the lower
/// (physical) part.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Address {
    /// Upper HDLC address: the logical device (server) or the client address.
    pub logical: u16,
    /// Lower HDLC address: the physical device, when the address has one.
    pub physical: Option<u16>,
    /// The field's size on the wire: 1, 2 or 4 bytes.
    pub size: u8,
}

/// What the control field says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Control {
    /// Information frame, with its send and receive sequence numbers.
    I {
        /// N(S).
        send: u8,
        /// N(R).
        receive: u8,
    },
    /// Receive ready.
    Rr {
        /// N(R).
        receive: u8,
    },
    /// Receive not ready.
    Rnr {
        /// N(R).
        receive: u8,
    },
    /// Set normal response mode.
    Snrm,
    /// Disconnect.
    Disc,
    /// Unnumbered acknowledge.
    Ua,
    /// Disconnected mode.
    Dm,
    /// Frame reject.
    Frmr,
    /// Unnumbered information (pushes).
    Ui,
    /// Any other control value.
    Other(u8),
}

impl Control {
    /// Decodes the control byte (the poll/final bit is [`Frame::poll_final`]).
    pub const fn from_byte(c: u8) -> Self {
        if c & 1 == 0 {
            return Control::I {
                send: (c >> 1) & 7,
                receive: c >> 5,
            };
        }
        if c & 3 == 1 {
            return match (c >> 2) & 3 {
                0 => Control::Rr { receive: c >> 5 },
                1 => Control::Rnr { receive: c >> 5 },
                _ => Control::Other(c),
            };
        }
        match c & !0x10 {
            0x83 => Control::Snrm,
            0x43 => Control::Disc,
            0x63 => Control::Ua,
            0x0F => Control::Dm,
            0x87 => Control::Frmr,
            0x03 => Control::Ui,
            _ => Control::Other(c),
        }
    }

    /// Whether frames of this kind carry an LLC header and an APDU.
    pub const fn carries_apdu(self) -> bool {
        matches!(self, Control::I { .. } | Control::Ui)
    }
}

/// One HDLC frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Frame<'a> {
    /// The segmentation bit: more segments of this APDU follow.
    pub segmented: bool,
    /// The frame length field (format byte through FCS).
    pub length: usize,
    /// Destination address.
    pub destination: Address,
    /// Source address.
    pub source: Address,
    /// The control byte as sent.
    pub control_byte: u8,
    /// The decoded control field.
    pub control: Control,
    /// The information field (empty when there is none).
    pub information: &'a [u8],
}

impl Frame<'_> {
    /// The poll/final bit.
    pub const fn poll_final(&self) -> bool {
        self.control_byte & 0x10 != 0
    }
}

fn address(cur: &mut Cursor<'_>, what: &str) -> Result<Address, DecodeError> {
    let mut bytes = [0u8; 4];
    let mut n = 0;
    loop {
        let b = cur.u8(what)?;
        if n == 4 {
            return Err(DecodeError::Malformed(format!(
                "{what}: longer than 4 bytes"
            )));
        }
        bytes[n] = b;
        n += 1;
        if b & 1 == 1 {
            break;
        }
    }
    let part = |hi: u8, lo: u8| (u16::from(hi >> 1) << 7) | u16::from(lo >> 1);
    Ok(match n {
        1 => Address {
            logical: u16::from(bytes[0] >> 1),
            physical: None,
            size: 1,
        },
        2 => Address {
            logical: u16::from(bytes[0] >> 1),
            physical: Some(u16::from(bytes[1] >> 1)),
            size: 2,
        },
        4 => Address {
            logical: part(bytes[0], bytes[1]),
            physical: Some(part(bytes[2], bytes[3])),
            size: 4,
        },
        _ => {
            return Err(DecodeError::Malformed(format!(
                "{what}: {n} bytes (1, 2 or 4 allowed)"
            )));
        }
    })
}

/// Reads one frame from the front of `bytes` (which starts with the opening flag); returns it
/// and the bytes after its closing flag.
pub fn parse(bytes: &[u8]) -> Result<(Frame<'_>, &[u8]), DecodeError> {
    let mut cur = Cursor::new(bytes);
    if cur.u8("HDLC flag")? != FLAG {
        return Err(DecodeError::Malformed(
            "HDLC frame does not start with 0x7E".into(),
        ));
    }
    let format = cur.u16("HDLC format field")?;
    if format >> 12 != 0xA {
        return Err(DecodeError::Unsupported(format!(
            "HDLC frame format type {} (only type 3, 0xA)",
            format >> 12
        )));
    }
    let segmented = format & 0x0800 != 0;
    let length = usize::from(format & 0x07FF);
    // The frame proper: format field through FCS.
    let body_len = length.checked_sub(2).ok_or_else(|| {
        DecodeError::Malformed(format!(
            "HDLC length {length} shorter than its format field"
        ))
    })?;
    let body = cur.take(body_len, "HDLC frame (by its length field)")?;
    let closing = cur.u8("HDLC closing flag")?;
    if closing != FLAG {
        return Err(DecodeError::Malformed(format!(
            "HDLC frame of length {length} not followed by a flag (0x{closing:02x})"
        )));
    }
    let rest = cur.rest();
    // `whole` = format field through FCS, for the checksums.
    let whole = bytes
        .get(1..1 + length)
        .ok_or_else(|| DecodeError::Truncated("HDLC frame shorter than its length field".into()))?;
    let mut f = Cursor::new(body);
    let destination = address(&mut f, "HDLC destination address")?;
    let source = address(&mut f, "HDLC source address")?;
    let control_byte = f.u8("HDLC control field")?;
    let header_len = 2 + usize::from(destination.size) + usize::from(source.size) + 1;
    let check = |data: &[u8], sent: &[u8], what: &str| -> Result<(), DecodeError> {
        let calc = fcs16(data).to_le_bytes();
        if calc != sent {
            return Err(DecodeError::Checksum(format!(
                "HDLC {what}: sent {:02x}{:02x}, computed {:02x}{:02x}",
                sent.first().copied().unwrap_or(0),
                sent.get(1).copied().unwrap_or(0),
                calc[0],
                calc[1]
            )));
        }
        Ok(())
    };
    let information = if f.remaining() == 2 {
        &[][..]
    } else {
        let hcs = f.take(2, "HDLC HCS")?;
        check(whole.get(..header_len).unwrap_or_default(), hcs, "HCS")?;
        let n = f
            .remaining()
            .checked_sub(2)
            .ok_or_else(|| DecodeError::Truncated("HDLC frame ends before its FCS".into()))?;
        f.take(n, "HDLC information field")?
    };
    let fcs = f.take(2, "HDLC FCS")?;
    check(whole.get(..length - 2).unwrap_or_default(), fcs, "FCS")?;
    Ok((
        Frame {
            segmented,
            length,
            destination,
            source,
            control_byte,
            control: Control::from_byte(control_byte),
            information,
        },
        rest,
    ))
}

/// The longest frame the 11-bit length field can say (format field through FCS).
pub const MAX_FRAME_LENGTH: usize = 0x07FF;

impl Address {
    /// A one-byte address (client addresses, and servers addressed by logical name only).
    pub const fn one(logical: u16) -> Self {
        Address {
            logical,
            physical: None,
            size: 1,
        }
    }

    /// A server address of `size` 1, 2 or 4 bytes.
    pub const fn server(logical: u16, physical: u16, size: u8) -> Self {
        Address {
            logical,
            physical: Some(physical),
            size,
        }
    }

    /// Appends the address in its wire form (the low bit of the last byte set).
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), DecodeError> {
        let physical = self.physical.unwrap_or(0);
        let too_big = |v: u16, max: u16, what: &str| {
            if v > max {
                Err(DecodeError::Malformed(format!(
                    "HDLC {what} address {v} does not fit {} bytes (at most {max})",
                    self.size
                )))
            } else {
                Ok(())
            }
        };
        match self.size {
            1 => {
                too_big(self.logical, 0x7F, "logical")?;
                out.push(((self.logical as u8) << 1) | 1);
            }
            2 => {
                too_big(self.logical, 0x7F, "logical")?;
                too_big(physical, 0x7F, "physical")?;
                out.push((self.logical as u8) << 1);
                out.push(((physical as u8) << 1) | 1);
            }
            4 => {
                too_big(self.logical, 0x3FFF, "logical")?;
                too_big(physical, 0x3FFF, "physical")?;
                out.push(((self.logical >> 7) as u8) << 1);
                out.push(((self.logical & 0x7F) as u8) << 1);
                out.push(((physical >> 7) as u8) << 1);
                out.push((((physical & 0x7F) as u8) << 1) | 1);
            }
            n => {
                return Err(DecodeError::Malformed(format!(
                    "HDLC address of {n} bytes (1, 2 or 4 allowed)"
                )));
            }
        }
        Ok(())
    }
}

/// Encodes one frame: flag, format (type 3, segmentation bit, length), destination, source,
/// control, HCS and information when there is information, FCS, flag. A frame longer than
/// the length field can say is `Malformed`.
pub fn encode(
    destination: &Address,
    source: &Address,
    control: u8,
    segmented: bool,
    information: &[u8],
) -> Result<Vec<u8>, DecodeError> {
    let mut head = Vec::with_capacity(16);
    destination.encode(&mut head)?;
    source.encode(&mut head)?;
    head.push(control);
    // format(2) + addresses + control, [HCS(2) + information], FCS(2)
    let length = 2
        + head.len()
        + if information.is_empty() {
            0
        } else {
            2 + information.len()
        }
        + 2;
    if length > MAX_FRAME_LENGTH {
        return Err(DecodeError::Malformed(format!(
            "HDLC frame of {length} bytes (at most {MAX_FRAME_LENGTH})"
        )));
    }
    let mut out = Vec::with_capacity(length + 2);
    out.push(FLAG);
    let format = 0xA000u16 | if segmented { 0x0800 } else { 0 } | length as u16;
    out.extend_from_slice(&format.to_be_bytes());
    out.extend_from_slice(&head);
    if !information.is_empty() {
        let hcs = fcs16(out.get(1..).unwrap_or_default());
        out.extend_from_slice(&hcs.to_le_bytes());
        out.extend_from_slice(information);
    }
    let fcs = fcs16(out.get(1..).unwrap_or_default());
    out.extend_from_slice(&fcs.to_le_bytes());
    out.push(FLAG);
    Ok(out)
}

/// How many bytes the frame that starts `bytes` (at its opening flag) takes, flags
/// included, once its format field has come: for reading frames off a stream.
pub fn frame_len(bytes: &[u8]) -> Option<usize> {
    match bytes {
        [FLAG, hi, lo, ..] => Some(usize::from(u16::from_be_bytes([*hi, *lo]) & 0x07FF) + 2),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_round_trips_the_snrm() -> Result<(), DecodeError> {
        let bytes = [0x7E, 0xA0, 0x08, 0x02, 0x23, 0x21, 0x93, 0xBD, 0x64, 0x7E];
        let f = encode(
            &Address::server(1, 17, 2),
            &Address::one(16),
            0x93,
            false,
            &[],
        )?;
        assert_eq!(f, bytes);
        assert_eq!(frame_len(&f), Some(f.len()));
        Ok(())
    }

    #[test]
    fn crc_x25_check_value() {
        assert_eq!(fcs16(b"123456789"), 0x906E);
    }

    #[test]
    fn snrm() -> Result<(), DecodeError> {
        let bytes = [0x7E, 0xA0, 0x08, 0x02, 0x23, 0x21, 0x93, 0xBD, 0x64, 0x7E];
        let (f, rest) = parse(&bytes)?;
        assert!(rest.is_empty());
        assert_eq!(f.control, Control::Snrm);
        assert_eq!(
            f.destination,
            Address {
                logical: 1,
                physical: Some(17),
                size: 2
            }
        );
        assert_eq!(
            f.source,
            Address {
                logical: 16,
                physical: None,
                size: 1
            }
        );
        assert!(f.information.is_empty());
        let mut bad = bytes;
        bad[7] ^= 1;
        assert!(matches!(parse(&bad), Err(DecodeError::Checksum(_))));
        Ok(())
    }
}
