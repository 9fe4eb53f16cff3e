//! Byte scanning a word at a time, without `unsafe` and without dependencies, so that it is
//! as quick in `wasm32` as natively: finding a byte (the end line's `!`) and counting one
//! (line ends).

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// The first position of `needle` in `haystack`.
pub(crate) fn find(haystack: &[u8], needle: u8) -> Option<usize> {
    let pattern = ONES * u64::from(needle);
    let mut chunks = haystack.chunks_exact(8);
    let mut offset = 0;
    for chunk in &mut chunks {
        let Ok(bytes) = <[u8; 8]>::try_from(chunk) else {
            break;
        };
        let word = u64::from_le_bytes(bytes) ^ pattern;
        // A high bit set for each zero byte of `word` (bytes above the first zero may be
        // flagged wrongly; the lowest flag is always right).
        let zero = word.wrapping_sub(ONES) & !word & HIGHS;
        if zero != 0 {
            return Some(offset + (zero.trailing_zeros() / 8) as usize);
        }
        offset += 8;
    }
    chunks
        .remainder()
        .iter()
        .position(|&b| b == needle)
        .map(|k| offset + k)
}

/// How many times `needle` occurs in `haystack`.
pub(crate) fn count(haystack: &[u8], needle: u8) -> usize {
    const LOWS: u64 = !HIGHS;
    let pattern = ONES * u64::from(needle);
    let mut chunks = haystack.chunks_exact(8);
    let mut n = 0;
    for chunk in &mut chunks {
        let Ok(bytes) = <[u8; 8]>::try_from(chunk) else {
            break;
        };
        let word = u64::from_le_bytes(bytes) ^ pattern;
        // Exactly the zero bytes of `word` get their high bit set (no carries across bytes).
        let zero = !(((word & LOWS) + LOWS) | word | LOWS);
        // One 1 per zero byte, summed into the top byte.
        n += ((zero >> 7).wrapping_mul(ONES) >> 56) as usize;
    }
    n + chunks.remainder().iter().filter(|&&b| b == needle).count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_and_counts_like_the_plain_loops() {
        let data: Vec<u8> = (0..200u32)
            .map(|i| {
                [b'a', b'\n', b'!', 0x80, 0xFF, 0x00]
                    [(i.wrapping_mul(2_654_435_761) >> 29) as usize % 6]
            })
            .collect();
        for start in 0..data.len() {
            for end in start..data.len().min(start + 40) {
                let hay = data.get(start..end).unwrap_or_default();
                for needle in [b'!', b'\n', 0x00, 0xFF, 0x80, b'z'] {
                    assert_eq!(find(hay, needle), hay.iter().position(|&b| b == needle));
                    assert_eq!(
                        count(hay, needle),
                        hay.iter().filter(|&&b| b == needle).count()
                    );
                }
            }
        }
    }
}
