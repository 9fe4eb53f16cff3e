//! Decimal quantities as scaled integers: `mantissa * 10^scale`, never a binary float.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

/// A decimal number held as `mantissa * 10^scale`.
///
/// This is the DLMS scaler-unit idea applied everywhere: `12.345 kWh` is mantissa `12345`,
/// scale `0`, unit Wh, or mantissa `12345`, scale `-3` in kWh terms. Equality and ordering are
/// numeric (`1.50 == 1.5`), so two decoders that scale differently still agree.
#[derive(Clone, Copy, Debug, Default)]
pub struct Quantity {
    /// The integer digits.
    pub mantissa: i64,
    /// The power of ten applied to the mantissa.
    pub scale: i8,
}

/// Why a text is not a decimal number we can hold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuantityError {
    /// Not a decimal number (`[+-]digits[.digits]`).
    #[error("not a decimal number: {0:?}")]
    Syntax(String),
    /// More significant digits than an i64 holds.
    #[error("decimal number out of range: {0:?}")]
    Range(String),
}

impl Quantity {
    /// `mantissa * 10^scale`.
    pub const fn new(mantissa: i64, scale: i8) -> Self {
        Self { mantissa, scale }
    }

    /// The same number with trailing zeros of the mantissa moved into the scale.
    pub fn normalized(self) -> Self {
        let mut q = self;
        if q.mantissa == 0 {
            return Self::new(0, 0);
        }
        while q.mantissa % 10 == 0 && q.scale < i8::MAX {
            q.mantissa /= 10;
            q.scale += 1;
        }
        q
    }

    /// The same number at another scale, if it is exact and fits.
    pub fn rescaled(self, scale: i8) -> Option<Self> {
        let diff = i32::from(self.scale) - i32::from(scale);
        let mantissa = if diff >= 0 {
            let factor = 10i64.checked_pow(u32::try_from(diff).ok()?)?;
            self.mantissa.checked_mul(factor)?
        } else {
            let factor = 10i64.checked_pow(u32::try_from(-diff).ok()?)?;
            if self.mantissa % factor != 0 {
                return None;
            }
            self.mantissa / factor
        };
        Some(Self::new(mantissa, scale))
    }

    /// This number multiplied by `10^by` (a unit prefix such as k = 3).
    pub fn shifted(self, by: i8) -> Option<Self> {
        Some(Self::new(self.mantissa, self.scale.checked_add(by)?))
    }

    /// An approximation as f64, for display and analytics only, never for storage or billing.
    pub fn to_f64(self) -> f64 {
        self.mantissa as f64 * 10f64.powi(i32::from(self.scale))
    }
}

impl PartialEq for Quantity {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Quantity {}

impl PartialOrd for Quantity {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Quantity {
    fn cmp(&self, other: &Self) -> Ordering {
        let (a, b) = (self.normalized(), other.normalized());
        match a.mantissa.signum().cmp(&b.mantissa.signum()) {
            Ordering::Equal => {}
            o => return o,
        }
        let low = a.scale.min(b.scale);
        match (a.rescaled(low), b.rescaled(low)) {
            (Some(x), Some(y)) => x.mantissa.cmp(&y.mantissa),
            // One side overflows at the common scale: it is the larger in magnitude.
            (None, Some(_)) => {
                if a.mantissa > 0 {
                    Ordering::Greater
                } else {
                    Ordering::Less
                }
            }
            (Some(_), None) => {
                if b.mantissa > 0 {
                    Ordering::Less
                } else {
                    Ordering::Greater
                }
            }
            (None, None) => a.scale.cmp(&b.scale),
        }
    }
}

impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let neg = self.mantissa < 0;
        let digits = self.mantissa.unsigned_abs().to_string();
        let sign = if neg { "-" } else { "" };
        if self.scale >= 0 {
            let zeros = if self.mantissa == 0 {
                0
            } else {
                usize::from(self.scale.unsigned_abs())
            };
            return write!(f, "{sign}{digits}{}", "0".repeat(zeros));
        }
        let frac = usize::from(self.scale.unsigned_abs());
        if digits.len() > frac {
            let (int, dec) = digits.split_at(digits.len() - frac);
            write!(f, "{sign}{int}.{dec}")
        } else {
            write!(f, "{sign}0.{}{digits}", "0".repeat(frac - digits.len()))
        }
    }
}

impl Quantity {
    /// A decimal number straight from ASCII bytes: an optional sign, digits, and an optional
    /// `.`/`,` fraction (`001581.123`, as meters print them). The same result as `FromStr`,
    /// without UTF-8 validation or allocation on the common path; `None` for anything else.
    pub fn from_ascii(text: &[u8]) -> Option<Quantity> {
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
                        return std::str::from_utf8(text).ok()?.parse().ok();
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
}

impl FromStr for Quantity {
    type Err = QuantityError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let syntax = || QuantityError::Syntax(text.to_owned());
        let (neg, body) = match text.as_bytes().first() {
            Some(b'-') => (true, &text[1..]),
            Some(b'+') => (false, &text[1..]),
            _ => (false, text),
        };
        let (int, frac) = match body.split_once(['.', ',']) {
            Some((i, f)) => (i, f),
            None => (body, ""),
        };
        if (int.is_empty() && frac.is_empty())
            || !int.bytes().all(|b| b.is_ascii_digit())
            || !frac.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(syntax());
        }
        let int = int.trim_start_matches('0');
        let digits = |frac: &str| -> Option<i64> {
            int.bytes().chain(frac.bytes()).try_fold(0i64, |m, b| {
                m.checked_mul(10)?.checked_add(i64::from(b - b'0'))
            })
        };
        // Trailing fractional zeros carry no value: drop them only if the digits do not fit.
        let (mut mantissa, frac) = match digits(frac) {
            Some(m) => (m, frac),
            None => {
                let trimmed = frac.trim_end_matches('0');
                let m = digits(trimmed).ok_or_else(|| QuantityError::Range(text.to_owned()))?;
                (m, trimmed)
            }
        };
        if neg {
            mantissa = -mantissa;
        }
        let scale = i8::try_from(frac.len()).map_err(|_| syntax())?;
        Ok(Self::new(mantissa, -scale))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn from_ascii_reads_as_from_str() {
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
            let got = Quantity::from_ascii(text.as_bytes());
            assert_eq!(got, want, "{text:?}");
            if let (Some(g), Some(w)) = (got, want) {
                assert_eq!((g.mantissa, g.scale), (w.mantissa, w.scale), "{text:?}");
            }
        }
    }

    fn q(s: &str) -> Quantity {
        s.parse().unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn parses_meter_text() {
        assert_eq!(q("00012.345"), Quantity::new(12345, -3));
        assert_eq!(q("-1.5").mantissa, -15);
        assert_eq!(q("+3"), Quantity::new(3, 0));
        assert_eq!(q("0000.00"), Quantity::new(0, 0));
        assert_eq!(q(".5"), Quantity::new(5, -1));
        assert!("".parse::<Quantity>().is_err());
        assert!("1.2.3".parse::<Quantity>().is_err());
        assert!("abc".parse::<Quantity>().is_err());
        assert!("-".parse::<Quantity>().is_err());
        assert!("99999999999999999999".parse::<Quantity>().is_err());
    }

    #[test]
    fn displays_as_decimal() {
        assert_eq!(Quantity::new(12345, -3).to_string(), "12.345");
        assert_eq!(Quantity::new(-5, -2).to_string(), "-0.05");
        assert_eq!(Quantity::new(12, 2).to_string(), "1200");
        assert_eq!(Quantity::new(0, 3).to_string(), "0");
        assert_eq!(Quantity::new(1010, -3).to_string(), "1.010");
    }

    #[test]
    fn compares_numerically() {
        assert_eq!(q("1.50"), q("1.5"));
        assert_eq!(
            Quantity::new(1001, 0),
            Quantity::new(1001, -3).shifted(3).unwrap_or_default()
        );
        assert!(q("1.5") < q("1.51"));
        assert!(q("-2") < q("1"));
        assert!(Quantity::new(1, 100) > Quantity::new(i64::MAX, 0));
    }

    proptest! {
        #[test]
        fn display_round_trips(m in any::<i64>().prop_filter("abs", |m| *m != i64::MIN), s in -18i8..0) {
            let v = Quantity::new(m, s);
            prop_assert_eq!(v.to_string().parse::<Quantity>(), Ok(v));
        }

        #[test]
        fn parse_never_panics(s in "[-+0-9.,a-z]{0,30}") {
            let _ = s.parse::<Quantity>();
        }
    }
}
