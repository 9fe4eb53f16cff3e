//! Telegram framing: the `/ident` header, the data lines, the `!` end line and its CRC.
//!
//! ```text
//! /ISk5\2MT382-1000        header: '/', manufacturer (3), baud letter, identification
//!                          blank line
//! 1-3:0.2.8(50)            data lines
//! ...
//! !6EEE                    '!' then, from DSMR 4, a CRC16 as hex
//! ```
//!
//! The CRC is CRC-16/ARC (polynomial 0x8005 reflected = 0xA001, initial value 0, no final
//! XOR) over every byte from `/` through `!` inclusive. Telegrams without CRC (DSMR 2.2/3.0,
//! `!` then the line end) are accepted. A CRC printed with fewer than four digits (some
//! meters drop the leading zero) is accepted too, as `dsmr_parser` does. Lines end CR LF; LF
//! alone is accepted. The end line is the first line that starts with `!`; whatever follows
//! its line end (some EasyMeters send trailing bytes) is ignored.

use ami_domain::DecodeError;

use crate::scan;

pub use ami_domain::checksum::crc16_arc as crc16;

/// The first byte of a DLMS general-glo-ciphering APDU (encrypted P1 ports: Luxembourg
/// Smarty, Austrian and some other e-MUCS meters).
pub const GENERAL_GLO_CIPHERING: u8 = 0xDB;

/// Error text for an encrypted frame.
pub const ENCRYPTED: &str = "encrypted DSMR (DLMS general-glo-ciphering, tag 0xDB) is decoded \
    by the dlms decoder, which hands the decrypted plaintext telegram to this one";

/// A framed telegram: the parts between `/` and `!`, borrowed from the input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Telegram<'a> {
    /// The identification line after `/`, without the line end (`ISk5\2MT382-1000`): three
    /// manufacturer letters, the baud-rate letter, then the meter type. It names a model,
    /// not a meter.
    pub header: &'a [u8],
    /// The data lines, from the line after the header through the line end before `!`.
    pub body: &'a [u8],
    /// The CRC sent after `!`, if any (it has been verified).
    pub crc: Option<u16>,
    /// Number of line ends in the body (an upper bound for its data objects).
    pub lines: usize,
}

fn is_blank(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n' | 0)
}

/// Finds the telegram in `bytes`, checks its CRC and splits it.
///
/// Errors: [`DecodeError::Truncated`] when the input is empty or has no `!` line,
/// [`DecodeError::Checksum`] when the CRC does not match, [`DecodeError::Unsupported`] for an
/// encrypted frame, [`DecodeError::Malformed`] when it does not start with `/` or the CRC is
/// not hex.
pub fn frame(bytes: &[u8]) -> Result<Telegram<'_>, DecodeError> {
    let start = bytes
        .iter()
        .position(|&b| !is_blank(b))
        .ok_or_else(|| DecodeError::Truncated("empty telegram".into()))?;
    let rest = bytes.get(start..).unwrap_or_default();
    match rest.first() {
        Some(b'/') => {}
        Some(&GENERAL_GLO_CIPHERING) => return Err(DecodeError::Unsupported(ENCRYPTED.into())),
        Some(b) => {
            return Err(DecodeError::Malformed(format!(
                "a P1 telegram starts with '/', found byte 0x{b:02X} at offset {start}"
            )));
        }
        None => return Err(DecodeError::Truncated("empty telegram".into())),
    }

    // The '!' that starts a line (the first '!' right after a line end), the header's end
    // (the first line end, before it), and the number of lines in between.
    let mut bang = None;
    let mut from = 1;
    while let Some(k) = rest.get(from..).and_then(|r| scan::find(r, b'!')) {
        let k = from + k;
        if rest.get(k - 1) == Some(&b'\n') {
            bang = Some(k);
            break;
        }
        from = k + 1;
    }
    let Some(bang) = bang else {
        return Err(DecodeError::Truncated(format!(
            "no end line '!' in {} bytes after '/'",
            rest.len()
        )));
    };
    let head = rest.get(..bang).unwrap_or_default();
    let header_end = head
        .iter()
        .position(|&b| b == b'\n')
        .unwrap_or(bang.saturating_sub(1));
    let lines = scan::count(head, b'\n');

    let sent = read_crc(rest.get(bang + 1..).unwrap_or_default(), start + bang)?;
    if let Some(sent) = sent {
        let crc = crc16(rest.get(..=bang).unwrap_or_default());
        if sent != crc {
            return Err(DecodeError::Checksum(format!(
                "CRC16 after '!' is {sent:04X}, computed {crc:04X} over bytes {start}..={}",
                start + bang
            )));
        }
    }

    let header = rest.get(1..header_end).unwrap_or_default();
    let header = header.strip_suffix(b"\r").unwrap_or(header);
    let body = rest.get(header_end + 1..bang).unwrap_or_default();
    Ok(Telegram {
        header,
        body,
        crc: sent,
        lines: lines.saturating_sub(1),
    })
}

/// Reads the hex CRC after `!` (`after` starts right after it); `None` when there is none.
fn read_crc(after: &[u8], bang_offset: usize) -> Result<Option<u16>, DecodeError> {
    let digits = after.iter().take_while(|b| b.is_ascii_hexdigit()).count();
    if digits > 4 {
        return Err(DecodeError::Malformed(format!(
            "CRC after '!' at offset {bang_offset} has {digits} hex digits (at most 4)"
        )));
    }
    match after.get(digits) {
        None | Some(b'\r' | b'\n' | b' ' | b'\t' | 0) => {}
        Some(b) => {
            return Err(DecodeError::Malformed(format!(
                "CRC after '!' at offset {bang_offset}: unexpected byte 0x{b:02X}"
            )));
        }
    }
    let value = after
        .get(..digits)
        .unwrap_or_default()
        .iter()
        .fold(0u16, |acc, &b| (acc << 4) | u16::from(hex_value(b)));
    Ok((digits > 0).then_some(value))
}

fn hex_value(b: u8) -> u8 {
    match b {
        b'0'..=b'9' => b - b'0',
        b'a'..=b'f' => b - b'a' + 10,
        b'A'..=b'F' => b - b'A' + 10,
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_a_minimal_telegram() {
        let mut t = b"/ABC5Meter\r\n\r\n1-0:1.8.1(1*kWh)\r\n!".to_vec();
        let crc = crc16(&t);
        t.extend_from_slice(format!("{crc:04X}\r\n").as_bytes());
        let f = frame(&t);
        assert!(
            matches!(f, Ok(Telegram { crc: Some(c), .. }) if c == crc),
            "{f:?}"
        );
        if let Ok(f) = f {
            assert_eq!(f.header, b"ABC5Meter");
            assert_eq!(f.body, b"\r\n1-0:1.8.1(1*kWh)\r\n");
            assert_eq!(f.lines, 2);
        }
    }

    #[test]
    fn rejects_what_is_not_a_telegram() {
        assert!(matches!(frame(b""), Err(DecodeError::Truncated(_))));
        assert!(matches!(frame(b" \r\n"), Err(DecodeError::Truncated(_))));
        assert!(matches!(frame(b"/ABC5"), Err(DecodeError::Truncated(_))));
        assert!(frame(b"/ABC5\r\n!").is_ok());
        assert!(matches!(
            frame(b"x/ABC5\r\n!"),
            Err(DecodeError::Malformed(_))
        ));
        assert!(matches!(
            frame(b"\xdb\x08"),
            Err(DecodeError::Unsupported(_))
        ));
        assert!(matches!(
            frame(b"/ABC5\r\n!12345\r\n"),
            Err(DecodeError::Malformed(_))
        ));
        assert!(matches!(
            frame(b"/ABC5\r\n!12G4\r\n"),
            Err(DecodeError::Malformed(_))
        ));
        assert!(matches!(
            frame(b"/ABC5\r\n!1234\r\n"),
            Err(DecodeError::Checksum(_))
        ));
    }
}
