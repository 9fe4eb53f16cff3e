//! The two checksums a readout can carry: the block check character of protocol modes A to E
//! and the CRC-16 of DSMR-like mode D data readouts.

/// Block check character (IEC 62056-21 §6.3.1): the XOR of `bytes`.
///
/// For a data message it is computed over every byte after STX up to and including ETX
/// (or EOT for a partial block).
pub fn bcc(bytes: &[u8]) -> u8 {
    bytes.iter().fold(0, |acc, b| acc ^ b)
}

/// CRC-16/ARC, the checksum a mode D (P1/DLDE) data readout sends as four hex digits after
/// `!`, computed over `/` up to and including `!`.
pub use ami_domain::checksum::crc16_arc;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bcc_is_xor() {
        assert_eq!(bcc(&[0x01, 0x02, 0x04]), 0x07);
        assert_eq!(bcc(b""), 0);
    }
}
