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
