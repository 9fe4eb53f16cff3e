//! The wireless M-Bus data link layer (EN 13757-4): the link header `L C M A` (manufacturer,
//! identification number, version, device type), and the CRC blocks of frame formats A and
//! B when the frame still has them (receivers such as wmbusmeters log frames with the CRCs
//! removed; both forms are accepted). Bytes after the length the L field gives (RSSI, LQI
//! appended by receivers) are ignored.

use std::borrow::Cow;

use ami_domain::DecodeError;

/// The link (DLL) header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LinkHeader {
    /// The L field.
    pub l: u8,
    /// The C field.
    pub c: u8,
    /// The manufacturer field as sent (little endian).
    pub manufacturer: u16,
    /// The identification number, the 4 bytes as sent (little endian; BCD for most meters).
    pub id: u32,
    /// The version.
    pub version: u8,
    /// The device type (medium).
    pub device_type: u8,
}

/// The three letters of a manufacturer field (`KAM`): 5 bits per letter, `A` = 1.
pub fn manufacturer_code(m: u16) -> [u8; 3] {
    let l = |shift: u16| 64 + ((m >> shift) & 0x1F) as u8;
    [l(10), l(5), l(0)]
}

/// A meter identity: `MMM-IIIIIIII` (manufacturer letters, the identification number's
/// eight hex digits as printed on the meter), e.g. `KAM-12345678`.
pub fn meter_id(manufacturer: u16, id: u32) -> String {
    let m = manufacturer_code(manufacturer);
    let letters: String = m.iter().map(|&c| char::from(c)).collect();
    format!("{letters}-{id:08X}")
}

impl LinkHeader {
    /// The M and A fields as one address (the same shape the long transport header carries).
    pub fn address(&self) -> crate::tpl::Address {
        crate::tpl::Address {
            id: self.id,
            manufacturer: self.manufacturer,
            version: self.version,
            device_type: self.device_type,
        }
    }

    /// The 8 bytes of M and A as sent, for IVs.
    pub fn address_bytes(&self) -> [u8; 8] {
        self.address().bytes()
    }

    /// The meter identity (see [`meter_id`]).
    pub fn meter(&self) -> String {
        self.address().meter()
    }
}

/// How the frame arrived.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameFormat {
    /// Without CRCs (as receivers log it).
    Stripped,
    /// Format A: a CRC after the 10-byte first block and after every 16 bytes.
    A,
    /// Format B: the L field counts the CRCs; one CRC after at most 128 bytes, one at the end.
    B,
}

/// A checked wireless frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WirelessFrame<'a> {
    /// The link header.
    pub header: LinkHeader,
    /// The CRC layout found.
    pub format: FrameFormat,
    /// The CI field and everything after it (CRCs removed).
    pub body: Cow<'a, [u8]>,
}

/// CRC-16/EN-13757 (polynomial 0x3D65, initial 0, final XOR 0xFFFF), as sent big endian.
pub fn crc16(data: &[u8]) -> u16 {
    let mut crc: u16 = 0;
    for &b in data {
        crc ^= u16::from(b) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x3D65
            } else {
                crc << 1
            };
        }
    }
    !crc
}

fn crc_ok(block: &[u8], crc: &[u8]) -> bool {
    crc16(block).to_be_bytes() == crc
}

/// Format A: strips the CRCs if the length fits and every CRC matches.
fn strip_a(frame: &[u8], l: usize) -> Option<Result<Vec<u8>, DecodeError>> {
    let data_len = l + 1;
    let rest = data_len.checked_sub(10)?;
    let expected = 12 + rest + 2 * rest.div_ceil(16);
    if frame.len() != expected {
        return None;
    }
    let mut out = Vec::with_capacity(data_len);
    let mut pos = 0;
    let mut block = 10;
    while pos < frame.len() {
        let end = (pos + block).min(frame.len().saturating_sub(2));
        let (Some(b), Some(c)) = (frame.get(pos..end), frame.get(end..end + 2)) else {
            return Some(Err(DecodeError::Truncated("format A block".into())));
        };
        if !crc_ok(b, c) {
            return Some(Err(DecodeError::Checksum(format!(
                "format A block CRC at byte {end}"
            ))));
        }
        out.extend_from_slice(b);
        pos = end + 2;
        block = 16;
    }
    Some(Ok(out))
}

/// Format B: the CRCs are inside L; strips them if they all match.
fn strip_b(frame: &[u8]) -> Option<Vec<u8>> {
    let n = frame.len();
    if n < 12 {
        return None;
    }
    if n <= 128 {
        let (b, c) = (frame.get(..n - 2)?, frame.get(n - 2..)?);
        return crc_ok(b, c).then(|| b.to_vec());
    }
    let (b2, c2) = (frame.get(..126)?, frame.get(126..128)?);
    let (b3, c3) = (frame.get(128..n - 2)?, frame.get(n - 2..)?);
    if crc_ok(b2, c2) && crc_ok(b3, c3) && !b3.is_empty() {
        let mut out = b2.to_vec();
        out.extend_from_slice(b3);
        Some(out)
    } else {
        None
    }
}

/// Reads the link header and removes the CRC blocks, if any.
pub fn parse(frame: &[u8]) -> Result<WirelessFrame<'_>, DecodeError> {
    let &[l, c, m0, m1, i0, i1, i2, i3, version, device_type, ..] = frame else {
        return Err(DecodeError::Truncated(format!(
            "{} bytes: shorter than the link header",
            frame.len()
        )));
    };
    let header = LinkHeader {
        l,
        c,
        manufacturer: u16::from_le_bytes([m0, m1]),
        id: u32::from_le_bytes([i0, i1, i2, i3]),
        version,
        device_type,
    };
    let l = usize::from(l);
    let (format, data): (FrameFormat, Cow<'_, [u8]>) = if frame.len() == l + 1 {
        match strip_b(frame) {
            Some(d) => (FrameFormat::B, Cow::Owned(d)),
            None => (FrameFormat::Stripped, Cow::Borrowed(frame)),
        }
    } else if frame.len() < l + 1 {
        return Err(DecodeError::Truncated(format!(
            "L field {l}, but only {} bytes follow it",
            frame.len() - 1
        )));
    } else {
        match strip_a(frame, l) {
            Some(r) => (FrameFormat::A, Cow::Owned(r?)),
            // Receivers append RSSI / LQI bytes: what the L field does not count is ignored.
            None => (
                FrameFormat::Stripped,
                Cow::Borrowed(frame.get(..l + 1).unwrap_or_default()),
            ),
        }
    };
    if data.len() < 11 {
        return Err(DecodeError::Truncated(
            "no CI field after the link header".into(),
        ));
    }
    let body = match data {
        Cow::Borrowed(b) => Cow::Borrowed(b.get(10..).unwrap_or_default()),
        Cow::Owned(mut v) => {
            v.drain(..10);
            Cow::Owned(v)
        }
    };
    Ok(WirelessFrame {
        header,
        format,
        body,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manufacturer_letters() {
        assert_eq!(&manufacturer_code(0x2C2D), b"KAM");
        assert_eq!(meter_id(0x2C2D, 0x1234_5678), "KAM-12345678");
    }

    #[test]
    fn crc_check_value() {
        // CRC-16/EN-13757 check value of "123456789".
        assert_eq!(crc16(b"123456789"), 0xC2B7);
    }
}
