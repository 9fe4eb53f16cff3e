//! Data set addresses: the OBIS codes of IEC 62056-61 in the full and reduced forms meters
//! print (`1-0:1.8.1*255`, `1.8.1`, `C.1.0`, `F.F`, `6.8*01`), mapped onto [`Obis`].
//!
//! * `A-B:` is optional; without it A = 1 and B = 0, the convention of [`Obis`]'s own parser
//!   (the readout does not say the medium).
//! * One to four dot-separated groups `C[.D[.E[.F]]]`, then optionally `*F` or `&F`; a group
//!   that is absent is 255 ("not used").
//! * Groups C to F may be the letters IEC 62056-61 reserves: `C` = 96 (general service
//!   entries), `F` = 97 (error registers), `L` = 98 (lists), `P` = 99 (data profiles).
//! * Numeric groups are 1 to 3 decimal digits, at most 255.

use ami_domain::Obis;

/// The longest address text accepted (`255-255:255.255.255*255` has 23 characters; the
/// standard allows 16).
pub const MAX_LEN: usize = 32;

/// Why an address is not an OBIS code, in words.
pub type Reason = &'static str;

/// Parses an address into an OBIS code.
pub fn parse(text: &[u8]) -> Result<Obis, Reason> {
    match parse_fast(text) {
        Some(obis) => Ok(obis),
        None => parse_checked(text),
    }
}

/// One pass over a well-formed address; `None` for anything else, which [`parse_checked`]
/// then reads or explains.
pub(crate) fn parse_fast(text: &[u8]) -> Option<Obis> {
    if text.len() > MAX_LEN {
        return None;
    }
    let (a, b, mut i) = match text.iter().position(|&b| b == b':') {
        Some(colon) => {
            let mut i = 0;
            let a = fast_number(text, &mut i)?;
            if text.get(i) != Some(&b'-') {
                return None;
            }
            i += 1;
            let b = fast_number(text, &mut i)?;
            if i != colon {
                return None;
            }
            (a, b, colon + 1)
        }
        None => (1, 0, 0),
    };
    let mut groups = [255u8; 4];
    let mut count = 0;
    loop {
        let slot = groups.get_mut(count)?;
        *slot = fast_group(text, &mut i)?;
        count += 1;
        match text.get(i) {
            None => break,
            Some(b'.') => i += 1,
            Some(b'*' | b'&') if count < 4 => {
                i += 1;
                let f = fast_group(text, &mut i)?;
                if i != text.len() {
                    return None;
                }
                groups[3] = f;
                break;
            }
            Some(_) => return None,
        }
    }
    let [c, d, e, f] = groups;
    Some(Obis::new(a, b, c, d, e, f))
}

/// A value group C to F at `i` (a letter or up to three digits), `i` moved past it.
fn fast_group(text: &[u8], i: &mut usize) -> Option<u8> {
    let letter = match text.get(*i)? {
        b'C' => 96,
        b'F' => 97,
        b'L' => 98,
        b'P' => 99,
        _ => return fast_number(text, i),
    };
    *i += 1;
    Some(letter)
}

/// One to three digits at `i`, at most 255, `i` moved past them (a fourth digit is left for
/// the caller to refuse).
fn fast_number(text: &[u8], i: &mut usize) -> Option<u8> {
    let mut value = 0u16;
    let start = *i;
    while *i - start < 3
        && let Some(&d @ b'0'..=b'9') = text.get(*i)
    {
        value = value * 10 + u16::from(d - b'0');
        *i += 1;
    }
    if *i == start {
        return None;
    }
    u8::try_from(value).ok()
}

/// The full parser, with a reason for every refusal.
fn parse_checked(text: &[u8]) -> Result<Obis, Reason> {
    if text.is_empty() {
        return Err("empty address");
    }
    if text.len() > MAX_LEN {
        return Err("address longer than 32 characters");
    }
    let (ab, rest) = match text.iter().position(|&b| b == b':') {
        Some(i) => (text.get(..i), text.get(i + 1..).unwrap_or_default()),
        None => (None, text),
    };
    let (a, b) = match ab {
        Some(ab) => {
            let dash = ab
                .iter()
                .position(|&b| b == b'-')
                .ok_or("A-B part without '-'")?;
            let a = ab.get(..dash).unwrap_or_default();
            let b = ab.get(dash + 1..).unwrap_or_default();
            (number(a)?, number(b)?)
        }
        None => (1, 0),
    };
    let (cdef, f) = match rest.iter().position(|&b| b == b'*' || b == b'&') {
        Some(i) => (
            rest.get(..i).unwrap_or_default(),
            Some(group(rest.get(i + 1..).unwrap_or_default())?),
        ),
        None => (rest, None),
    };
    let mut groups = [255u8; 4];
    let mut count = 0;
    for g in cdef.split(|&b| b == b'.') {
        let slot = groups
            .get_mut(count)
            .ok_or("more than four groups after A-B")?;
        *slot = group(g)?;
        count += 1;
    }
    let [c, d, e, f4] = groups;
    let f = match (f, count) {
        (Some(_), 4) => return Err("group F given twice"),
        (Some(f), _) => f,
        (None, _) => f4,
    };
    Ok(Obis::new(a, b, c, d, e, f))
}

/// A value group C to F: a number or one of the letters C, F, L, P.
fn group(text: &[u8]) -> Result<u8, Reason> {
    match text {
        b"C" => Ok(96),
        b"F" => Ok(97),
        b"L" => Ok(98),
        b"P" => Ok(99),
        _ => number(text),
    }
}

/// A group of 1 to 3 decimal digits, at most 255.
fn number(text: &[u8]) -> Result<u8, Reason> {
    if text.is_empty() {
        return Err("empty group");
    }
    if text.len() > 3 || !text.iter().all(u8::is_ascii_digit) {
        return Err("group is not a number from 0 to 255 nor one of C, F, L, P");
    }
    let value = text
        .iter()
        .fold(0u16, |acc, &d| acc * 10 + u16::from(d - b'0'));
    u8::try_from(value).map_err(|_| "group greater than 255")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obis(text: &str) -> Result<Obis, Reason> {
        parse(text.as_bytes())
    }

    #[test]
    fn full_and_reduced_forms() {
        assert_eq!(obis("1-0:1.8.1*255"), Ok(Obis::new(1, 0, 1, 8, 1, 255)));
        assert_eq!(obis("0-1:24.2.1"), Ok(Obis::new(0, 1, 24, 2, 1, 255)));
        assert_eq!(obis("1.8.1"), Ok(Obis::new(1, 0, 1, 8, 1, 255)));
        assert_eq!(obis("6.8"), Ok(Obis::new(1, 0, 6, 8, 255, 255)));
        assert_eq!(obis("6.26*01"), Ok(Obis::new(1, 0, 6, 26, 255, 1)));
        assert_eq!(obis("1.8.0.101"), Ok(Obis::new(1, 0, 1, 8, 0, 101)));
        assert_eq!(obis("0.0"), Ok(Obis::new(1, 0, 0, 0, 255, 255)));
        assert_eq!(obis("1-0:1.8.0&02"), Ok(Obis::new(1, 0, 1, 8, 0, 2)));
    }

    #[test]
    fn letters() {
        assert_eq!(obis("C.1.0"), Ok(Obis::new(1, 0, 96, 1, 0, 255)));
        assert_eq!(obis("F.F"), Ok(Obis::new(1, 0, 97, 97, 255, 255)));
        assert_eq!(obis("F"), Ok(Obis::new(1, 0, 97, 255, 255, 255)));
        assert_eq!(obis("0-0:F.F.0*255"), Ok(Obis::new(0, 0, 97, 97, 0, 255)));
        assert_eq!(obis("P.01"), Ok(Obis::new(1, 0, 99, 1, 255, 255)));
        assert_eq!(obis("L.2.1"), Ok(Obis::new(1, 0, 98, 2, 1, 255)));
    }

    #[test]
    fn the_fast_path_agrees_with_the_full_parser() {
        let alphabet = b"0123456789CFLPX.-:*&";
        // Every text of up to five characters from `alphabet`, and longer ones built from
        // pieces meters print.
        let mut texts: Vec<Vec<u8>> = vec![Vec::new()];
        let mut level = vec![Vec::new()];
        for _ in 0..5 {
            level = level
                .iter()
                .flat_map(|t: &Vec<u8>| {
                    alphabet.iter().map(move |&c| {
                        let mut t = t.clone();
                        t.push(c);
                        t
                    })
                })
                .collect();
            texts.extend(level.iter().cloned());
        }
        let pieces: [&[u8]; 12] = [
            b"1", b"0", b"255", b"256", b"0001", b"-", b":", b".", b"*", b"&", b"C", b"96",
        ];
        for a in pieces {
            for b in pieces {
                for c in pieces {
                    for d in pieces {
                        texts.push([a, b, c, d].concat());
                        texts.push([b"1-0:".as_slice(), a, b, c, d].concat());
                        texts.push([a, b"-", b, b":", c, b".", d, b".0*", a].concat());
                    }
                }
            }
        }
        for t in texts {
            if let Some(fast) = parse_fast(&t) {
                assert_eq!(
                    Ok(fast),
                    parse_checked(&t),
                    "{:?}",
                    String::from_utf8_lossy(&t)
                );
            }
        }
    }

    #[test]
    fn garbage() {
        for bad in [
            "",
            "X",
            "1.8.256",
            "1..0",
            "1.8.",
            "C-0:1.8.0",
            "1:1.8.0",
            "1-0:",
            "1.2.3.4.5",
            "1.2.3.4*5",
            "1.8.0*",
            "1.8.0**1",
            "abc",
            "1 .8",
            "0001.8.0",
            "1-0-0:1.8",
        ] {
            assert!(obis(bad).is_err(), "{bad:?} accepted");
        }
    }
}
