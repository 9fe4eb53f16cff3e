//! The IEC 62056-47 wrapper (DLMS over TCP/UDP): version 0x0001, source and destination
//! wPort, length of the APDU that follows.

use ami_domain::DecodeError;

use crate::cursor::Cursor;

/// The wrapper version every peer sends.
pub const VERSION: u16 = 0x0001;

/// The 8-byte wrapper header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// Version (0x0001).
    pub version: u16,
    /// Source wPort.
    pub source_wport: u16,
    /// Destination wPort.
    pub destination_wport: u16,
    /// Length of the APDU.
    pub length: u16,
}

/// Reads the header and returns it with the APDU (exactly `length` bytes; bytes after it,
/// the next wrapper frame of a stream, are ignored).
pub fn parse(bytes: &[u8]) -> Result<(Header, &[u8]), DecodeError> {
    let mut cur = Cursor::new(bytes);
    let header = Header {
        version: cur.u16("wrapper version")?,
        source_wport: cur.u16("wrapper source wPort")?,
        destination_wport: cur.u16("wrapper destination wPort")?,
        length: cur.u16("wrapper length")?,
    };
    if header.version != VERSION {
        return Err(DecodeError::Unsupported(format!(
            "wrapper version {}",
            header.version
        )));
    }
    let apdu = cur.take(
        usize::from(header.length),
        "wrapper APDU (by its length field)",
    )?;
    Ok((header, apdu))
}

/// Encodes a wrapper frame: header and `apdu`. An APDU longer than the 16-bit length field
/// can say is `Malformed`.
pub fn encode(
    source_wport: u16,
    destination_wport: u16,
    apdu: &[u8],
) -> Result<Vec<u8>, DecodeError> {
    let length = u16::try_from(apdu.len()).map_err(|_| {
        DecodeError::Malformed(format!(
            "wrapper APDU of {} bytes (at most 65535)",
            apdu.len()
        ))
    })?;
    let mut out = Vec::with_capacity(8 + apdu.len());
    for v in [VERSION, source_wport, destination_wport, length] {
        out.extend_from_slice(&v.to_be_bytes());
    }
    out.extend_from_slice(apdu);
    Ok(out)
}

/// Bytes the wrapper frame at the start of `bytes` takes, once its header has come.
pub fn frame_len(bytes: &[u8]) -> Option<usize> {
    let len: [u8; 2] = bytes.get(6..8)?.try_into().ok()?;
    Some(8 + usize::from(u16::from_be_bytes(len)))
}
