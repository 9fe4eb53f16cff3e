//! The two checksums a readout can carry: the block check character of protocol modes A to E
//! and the CRC-16 of DSMR-like mode D data readouts.

/// Block check character (IEC 62056-21 §6.3.1): the XOR of `bytes`.
///
/// For a data message it is computed over every byte after STX up to and including ETX
/// (or EOT for a partial block).
pub fn bcc(bytes: &[u8]) -> u8 {
    bytes.iter().fold(0, |acc, b| acc ^ b)
}

const CRC16_ARC_TABLE: [u16; 256] = {
    let mut table = [0u16; 256];
    let mut i = 0;
    while i < 256 {
        let mut crc = i as u16;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xA001
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

/// CRC-16/ARC (polynomial 0x8005 reflected, initial value 0, no final XOR), the checksum a
/// mode D (P1/DLDE) data readout sends as four hex digits after `!`, computed over `/` up to
/// and including `!`.
pub fn crc16_arc(bytes: &[u8]) -> u16 {
    bytes.iter().fold(0u16, |crc, &b| {
        let index = usize::from((crc ^ u16::from(b)) & 0xFF);
        (crc >> 8) ^ CRC16_ARC_TABLE.get(index).copied().unwrap_or(0)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc16_arc_check_value() {
        // The catalogue check value of CRC-16/ARC.
        assert_eq!(crc16_arc(b"123456789"), 0xBB3D);
        assert_eq!(crc16_arc(b""), 0);
    }

    #[test]
    fn bcc_is_xor() {
        assert_eq!(bcc(&[0x01, 0x02, 0x04]), 0x07);
        assert_eq!(bcc(b""), 0);
    }
}
