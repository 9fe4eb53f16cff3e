//! The wired M-Bus data link layer (EN 13757-2, FT 1.2): the long frame
//! `68 L L 68 C A CI data CS 16` with its arithmetic checksum; single characters (`E5`) and
//! short frames (`10 C A CS 16`) carry no application data.

use ami_domain::DecodeError;

/// A checked long (or control) frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WiredFrame<'a> {
    /// The C field.
    pub c: u8,
    /// The primary address.
    pub a: u8,
    /// The CI field.
    pub ci: u8,
    /// The bytes after the CI field, up to the checksum.
    pub data: &'a [u8],
}

/// Whether `frame` starts like a wired frame (long/control frame start `68 L L 68`, short
/// frame `10`, or the single character `E5`).
pub fn looks_wired(frame: &[u8]) -> bool {
    match frame {
        [0x68, l1, l2, 0x68, ..] => l1 == l2,
        [0xE5] => true,
        [0x10, _, _, _, 0x16] => true,
        _ => false,
    }
}

/// Checks the framing and checksum of a long frame; bytes after the stop byte are ignored.
pub fn parse(frame: &[u8]) -> Result<WiredFrame<'_>, DecodeError> {
    match frame {
        [0xE5] => {
            return Err(DecodeError::Unsupported(
                "single character E5 (acknowledgement): no application data".into(),
            ));
        }
        [0x10, ..] => {
            return Err(DecodeError::Unsupported(
                "short frame: no application data".into(),
            ));
        }
        _ => {}
    }
    let [0x68, l, l2, 0x68, rest @ ..] = frame else {
        return Err(DecodeError::Malformed(
            "not a long frame (68 L L 68)".into(),
        ));
    };
    if l != l2 {
        return Err(DecodeError::Malformed(format!(
            "length fields differ: {l} and {l2}"
        )));
    }
    let l = usize::from(*l);
    if l < 3 {
        return Err(DecodeError::Malformed(format!(
            "length {l}: shorter than C, A and CI"
        )));
    }
    let (Some(user), Some(&cs), Some(&stop)) = (rest.get(..l), rest.get(l), rest.get(l + 1)) else {
        return Err(DecodeError::Truncated(format!(
            "long frame of length {l} has {} bytes after its start",
            rest.len()
        )));
    };
    let sum = user.iter().fold(0u8, |s, b| s.wrapping_add(*b));
    if sum != cs {
        return Err(DecodeError::Checksum(format!(
            "checksum 0x{cs:02X}, computed 0x{sum:02X}"
        )));
    }
    if stop != 0x16 {
        return Err(DecodeError::Malformed(format!(
            "stop byte 0x{stop:02X}, not 0x16"
        )));
    }
    match user {
        [c, a, ci, data @ ..] => Ok(WiredFrame {
            c: *c,
            a: *a,
            ci: *ci,
            data,
        }),
        _ => Err(DecodeError::Truncated("long frame without CI".into())),
    }
}
