//! Values inside parentheses: decimal numbers with an optional `*unit`.
//!
//! `001581.123*kWh` is the number `1581.123` in kWh, held as `1581123 Wh` (the prefix moves
//! into the scale, as everywhere in ami). A value without `*unit` is a count.

use ami_domain::{Quantity, Unit};

/// A decimal number: an optional sign, digits, and an optional `.`/`,` fraction. `None` for
/// anything else (hex identifiers, empty values) and for numbers of more than 18 significant
/// digits. Same result as [`Quantity`]'s `FromStr`, without going through `str`.
pub fn number(text: &[u8]) -> Option<Quantity> {
    let (negative, body) = match text.split_first() {
        Some((b'-', rest)) => (true, rest),
        Some((b'+', rest)) => (false, rest),
        _ => (false, text),
    };
    // Up to 18 digits cannot overflow nor exceed 18 significant digits: one plain pass.
    if body.len() <= 18 {
        let mut mantissa = 0i64;
        let mut fraction: Option<usize> = None;
        for (k, &b) in body.iter().enumerate() {
            match b {
                b'0'..=b'9' => mantissa = mantissa * 10 + i64::from(b - b'0'),
                b'.' | b',' if fraction.is_none() => fraction = Some(body.len() - k - 1),
                _ => return None,
            }
        }
        if body.len() == usize::from(fraction.is_some()) {
            return None;
        }
        let scale = fraction.unwrap_or(0) as i8;
        return Some(Quantity::new(
            if negative { -mantissa } else { mantissa },
            -scale,
        ));
    }
    let mut mantissa = 0i64;
    let mut significant = 0usize;
    let mut fraction: Option<usize> = None;
    for &b in body {
        match b {
            b'0'..=b'9' => {
                if let Some(f) = fraction.as_mut() {
                    *f += 1;
                    significant += 1;
                } else if mantissa != 0 || b != b'0' {
                    significant += 1;
                }
                if significant > 18 {
                    return slow_number(text);
                }
                mantissa = mantissa * 10 + i64::from(b - b'0');
            }
            b'.' | b',' if fraction.is_none() => fraction = Some(0),
            _ => return None,
        }
    }
    let digits = body.len() - usize::from(fraction.is_some());
    if digits == 0 {
        return None;
    }
    let scale = i8::try_from(fraction.unwrap_or(0)).ok()?;
    Some(Quantity::new(
        if negative { -mantissa } else { mantissa },
        -scale,
    ))
}

/// Numbers with trailing fractional zeros beyond 18 digits (`0.1000000000000000000`).
fn slow_number(text: &[u8]) -> Option<Quantity> {
    std::str::from_utf8(text).ok()?.parse().ok()
}

/// A unit symbol: the base unit and the power of ten of its prefix.
pub fn unit(symbol: &[u8]) -> Option<(Unit, i8)> {
    Some(match symbol {
        b"kWh" => (Unit::WattHour, 3),
        b"kW" => (Unit::Watt, 3),
        b"V" => (Unit::Volt, 0),
        b"A" => (Unit::Ampere, 0),
        b"m3" => (Unit::CubicMetre, 0),
        b"s" => (Unit::Second, 0),
        b"Wh" => (Unit::WattHour, 0),
        b"W" => (Unit::Watt, 0),
        b"kvarh" => (Unit::VarHour, 3),
        b"kvar" => (Unit::Var, 3),
        b"GJ" => (Unit::Joule, 9),
        _ => return Unit::parse_symbol(std::str::from_utf8(symbol).ok()?).ok(),
    })
}

/// A non-negative integer without sign or fraction, as counts and group headers print them.
pub fn integer(text: &[u8]) -> Option<u64> {
    if text.is_empty() || text.len() > 19 || !text.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(
        text.iter()
            .fold(0u64, |acc, &b| acc * 10 + u64::from(b - b'0')),
    )
}

/// A measured value `number[*unit]` in base units, or `None` when the number or the unit is
/// not one we read.
pub fn measured(text: &[u8]) -> Option<(Quantity, Unit)> {
    let (digits, symbol) = match text.iter().position(|&b| b == b'*') {
        Some(star) => (text.get(..star)?, Some(text.get(star + 1..)?)),
        None => (text, None),
    };
    let value = number(digits)?;
    match symbol {
        None => Some((value, Unit::Count)),
        Some(symbol) => {
            let (unit, prefix) = unit(symbol)?;
            Some((value.shifted(prefix)?, unit))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measured_values() {
        assert_eq!(
            measured(b"12345.678*kWh"),
            Some((Quantity::new(12_345_678, 0), Unit::WattHour))
        );
        assert_eq!(
            measured(b"240.860*GJ"),
            Some((Quantity::new(240_860_000_000, 0), Unit::Joule))
        );
        assert_eq!(
            measured(b"00015"),
            Some((Quantity::new(15, 0), Unit::Count))
        );
        assert_eq!(
            measured(b"0229.0*V"),
            Some((Quantity::new(229, 0), Unit::Volt))
        );
        assert_eq!(measured(b"4B38"), None);
        assert_eq!(measured(b""), None);
        assert_eq!(measured(b"*kWh"), None);
        assert_eq!(measured(b"1*furlong"), None);
        assert_eq!(measured(b"1.2.3*kWh"), None);
        assert_eq!(measured(b"3960221976967177082151037881335713"), None);
    }

    #[test]
    fn numbers_match_the_domain_parser() {
        for text in [
            "0",
            "00012.345",
            "-1.5",
            "+3",
            "0000.00",
            ".5",
            "5.",
            "1,25",
            "",
            ".",
            "-",
            "+",
            "1.2.3",
            "abc",
            "1e3",
            "999999999999999999",
            "9999999999999999999",
            "0000000000000000000000001",
            "0.1000000000000000000000",
            "1.0000000000000000001",
            "0.000000000000000001",
            "12345678901234567.8",
            "123456789012345678",
            "1234567890123456789",
            "1234567890123456.78",
            "-99999999999999999",
            "1,,2",
            "1.,2",
            "+.",
            "-0",
        ] {
            let want = text.parse::<Quantity>().ok();
            let got = number(text.as_bytes());
            assert_eq!(got, want, "{text:?}");
            if let (Some(g), Some(w)) = (got, want) {
                assert_eq!((g.mantissa, g.scale), (w.mantissa, w.scale), "{text:?}");
            }
        }
    }

    #[test]
    fn units_match_the_domain_parser() {
        for symbol in [
            "kWh", "kW", "V", "A", "m3", "s", "Wh", "W", "kvarh", "kvar", "GJ", "Hz", "varh", "",
        ] {
            assert_eq!(
                unit(symbol.as_bytes()),
                Unit::parse_symbol(symbol).ok(),
                "{symbol:?}"
            );
        }
        assert_eq!(unit(b"furlong"), None);
        assert_eq!(unit(b"\xff"), None);
    }

    #[test]
    fn integers() {
        assert_eq!(integer(b"003"), Some(3));
        assert_eq!(integer(b"18446744073709551615"), None);
        assert_eq!(
            integer(b"9999999999999999999"),
            Some(9_999_999_999_999_999_999)
        );
        assert_eq!(integer(b"1.0"), None);
        assert_eq!(integer(b""), None);
    }
}
