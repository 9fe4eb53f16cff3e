//! Checksums that several meter wire formats share.

/// CRC-16/ARC lookup tables for slicing by 8: `CRC_TABLES[k][b]` is the CRC of byte `b`
/// followed by `k` zero bytes.
const CRC_TABLES: [[u16; 256]; 8] = {
    let mut t = [[0u16; 256]; 8];
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
        t[0][i] = crc;
        i += 1;
    }
    let mut k = 1;
    while k < 8 {
        let mut i = 0;
        while i < 256 {
            let prev = t[k - 1][i];
            t[k][i] = (prev >> 8) ^ t[0][(prev & 0xFF) as usize];
            i += 1;
        }
        k += 1;
    }
    t
};

/// CRC-16/ARC of `data` (polynomial 0x8005 reflected, initial value 0, no final XOR), eight
/// bytes per step: the checksum of DSMR P1 telegrams and IEC 62056-21 mode D data readouts.
pub fn crc16_arc(data: &[u8]) -> u16 {
    let [t0, t1, t2, t3, t4, t5, t6, t7] = &CRC_TABLES;
    let mut chunks = data.chunks_exact(8);
    let mut crc = 0u16;
    for c in &mut chunks {
        let &[b0, b1, b2, b3, b4, b5, b6, b7] = c else {
            continue;
        };
        let [lo, hi] = crc.to_le_bytes();
        crc = t7[usize::from(lo ^ b0)]
            ^ t6[usize::from(hi ^ b1)]
            ^ t5[usize::from(b2)]
            ^ t4[usize::from(b3)]
            ^ t3[usize::from(b4)]
            ^ t2[usize::from(b5)]
            ^ t1[usize::from(b6)]
            ^ t0[usize::from(b7)];
    }
    chunks
        .remainder()
        .iter()
        .fold(crc, |crc, &b| (crc >> 8) ^ t0[usize::from((crc as u8) ^ b)])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The textbook bitwise CRC-16/ARC.
    fn crc16_bitwise(data: &[u8]) -> u16 {
        let mut crc = 0u16;
        for &b in data {
            crc ^= u16::from(b);
            for _ in 0..8 {
                crc = if crc & 1 != 0 {
                    (crc >> 1) ^ 0xA001
                } else {
                    crc >> 1
                };
            }
        }
        crc
    }

    #[test]
    fn crc_check_value() {
        // CRC-16/ARC catalogue check value.
        assert_eq!(crc16_arc(b"123456789"), 0xBB3D);
        assert_eq!(crc16_arc(b""), 0);
        let data: Vec<u8> = (0..300u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        for len in 0..data.len() {
            let part = data.get(..len).unwrap_or_default();
            assert_eq!(crc16_arc(part), crc16_bitwise(part), "length {len}");
        }
    }
}
