//! Values inside parentheses: decimal numbers with an optional `*unit`.
//!
//! `001581.123*kWh` is the number `1581.123` in kWh, held as `1581123 Wh` (the prefix moves
//! into the scale, as everywhere in ami). A value without `*unit` is a count.

use ami_domain::{Quantity, Unit};

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
    let value = Quantity::from_ascii(digits)?;
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
