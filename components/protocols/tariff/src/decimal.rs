//! Exact decimal arithmetic for billing: `mantissa * 10^exponent` in `i128`, every operation
//! checked, rounding only where a bill says so.
//!
//! Money is rounded **half-even** (banker's rounding: a tie goes to the even neighbour, so
//! `0.125` becomes `0.12` and `0.135` becomes `0.14`) to the currency's minor unit, once per
//! line item; the total is the sum of the rounded lines, so a bill always adds up. Energies and
//! demands are never rounded: determinants carry their exact value.

use std::cmp::Ordering;

use ami_domain::Quantity;

use crate::TariffError;

/// An exact decimal: `m * 10^e`.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Dec {
    m: i128,
    e: i32,
}

fn overflow(what: &str) -> TariffError {
    TariffError::Overflow(what.to_owned())
}

fn pow10(n: u32) -> Option<i128> {
    10i128.checked_pow(n)
}

impl Dec {
    /// Zero.
    pub(crate) const ZERO: Dec = Dec { m: 0, e: 0 };

    /// `m * 10^e`.
    pub(crate) const fn new(m: i128, e: i32) -> Self {
        Self { m, e }
    }

    /// A whole number.
    pub(crate) const fn int(m: i128) -> Self {
        Self { m, e: 0 }
    }

    /// The exact value of a quantity.
    pub(crate) fn from_q(q: Quantity) -> Self {
        Self {
            m: i128::from(q.mantissa),
            e: i32::from(q.scale),
        }
    }

    /// The sign: -1, 0 or 1.
    pub(crate) fn signum(self) -> i128 {
        self.m.signum()
    }

    /// Both numbers at their common (smaller) exponent.
    fn align(a: Dec, b: Dec, what: &str) -> Result<(i128, i128, i32), TariffError> {
        if a.m == 0 {
            return Ok((0, b.m, b.e));
        }
        if b.m == 0 {
            return Ok((a.m, 0, a.e));
        }
        let e = a.e.min(b.e);
        let up = |x: Dec| -> Result<i128, TariffError> {
            let by = u32::try_from(x.e - e).map_err(|_| overflow(what))?;
            pow10(by)
                .and_then(|p| x.m.checked_mul(p))
                .ok_or_else(|| overflow(what))
        };
        Ok((up(a)?, up(b)?, e))
    }

    /// `self + other`, exact.
    pub(crate) fn add(self, other: Dec, what: &str) -> Result<Dec, TariffError> {
        let (a, b, e) = Self::align(self, other, what)?;
        let m = a.checked_add(b).ok_or_else(|| overflow(what))?;
        Ok(Dec { m, e })
    }

    /// `self - other`, exact.
    pub(crate) fn sub(self, other: Dec, what: &str) -> Result<Dec, TariffError> {
        let (a, b, e) = Self::align(self, other, what)?;
        let m = a.checked_sub(b).ok_or_else(|| overflow(what))?;
        Ok(Dec { m, e })
    }

    /// `self * other`, exact.
    pub(crate) fn mul(self, other: Dec, what: &str) -> Result<Dec, TariffError> {
        if self.m == 0 || other.m == 0 {
            return Ok(Dec::ZERO);
        }
        let m = self.m.checked_mul(other.m).ok_or_else(|| overflow(what))?;
        let e = self.e.checked_add(other.e).ok_or_else(|| overflow(what))?;
        Ok(Dec { m, e })
    }

    /// `-self`.
    pub(crate) fn neg(self, what: &str) -> Result<Dec, TariffError> {
        let m = self.m.checked_neg().ok_or_else(|| overflow(what))?;
        Ok(Dec { m, e: self.e })
    }

    /// Numeric comparison.
    pub(crate) fn cmp(self, other: Dec, what: &str) -> Result<Ordering, TariffError> {
        if self.m.signum() != other.m.signum() {
            return Ok(self.m.signum().cmp(&other.m.signum()));
        }
        let (a, b, _) = Self::align(self, other, what)?;
        Ok(a.cmp(&b))
    }

    /// The smaller of two numbers.
    pub(crate) fn min(self, other: Dec, what: &str) -> Result<Dec, TariffError> {
        Ok(if self.cmp(other, what)? == Ordering::Greater {
            other
        } else {
            self
        })
    }

    /// The value as an integer, if it is one and fits.
    pub(crate) fn to_int(self) -> Option<i128> {
        if self.e >= 0 {
            pow10(u32::try_from(self.e).ok()?).and_then(|p| self.m.checked_mul(p))
        } else {
            let p = pow10(u32::try_from(-i64::from(self.e)).ok()?);
            match p {
                Some(p) if self.m % p == 0 => Some(self.m / p),
                Some(_) => None,
                // 10^-e beyond i128: only zero divides exactly.
                None => (self.m == 0).then_some(0),
            }
        }
    }

    /// The value rounded half-even to exponent `e` (e.g. `-2` for cents).
    pub(crate) fn round_half_even(self, e: i32, what: &str) -> Result<Dec, TariffError> {
        if self.e >= e {
            let by = u32::try_from(self.e - e).map_err(|_| overflow(what))?;
            if self.m == 0 {
                return Ok(Dec { m: 0, e });
            }
            let m = pow10(by)
                .and_then(|p| self.m.checked_mul(p))
                .ok_or_else(|| overflow(what))?;
            return Ok(Dec { m, e });
        }
        let by = u32::try_from(i64::from(e) - i64::from(self.e)).map_err(|_| overflow(what))?;
        // |m| < 2^127 < 0.5 * 10^39: dividing by 10^39 or more always rounds to zero.
        let Some(p) = pow10(by) else {
            return Ok(Dec { m: 0, e });
        };
        let (q, r) = (self.m / p, self.m % p);
        // 2|r| < 2 * 10^38 fits in u128.
        let twice = r.unsigned_abs() * 2;
        let p_abs = p.unsigned_abs();
        let away = match twice.cmp(&p_abs) {
            Ordering::Greater => true,
            Ordering::Equal => q % 2 != 0,
            Ordering::Less => false,
        };
        let m = if away { q + self.m.signum() } else { q };
        Ok(Dec { m, e })
    }

    /// The quantity of exactly this value at exponent `e` (which must be exact and fit).
    pub(crate) fn to_quantity_at(self, e: i32, what: &str) -> Result<Quantity, TariffError> {
        let scale = i8::try_from(e).map_err(|_| overflow(what))?;
        let at = if self.m == 0 {
            Dec { m: 0, e }
        } else if self.e >= e {
            self.round_half_even(e, what)?
        } else {
            return Err(overflow(what));
        };
        let mantissa = i64::try_from(at.m).map_err(|_| overflow(what))?;
        Ok(Quantity::new(mantissa, scale))
    }

    /// The exact value as a quantity, at exponent `prefer` or finer (`-3`: kWh to the Wh).
    pub(crate) fn to_quantity(self, prefer: i32, what: &str) -> Result<Quantity, TariffError> {
        if self.m == 0 {
            return self.to_quantity_at(prefer, what);
        }
        let mut x = self;
        while x.m % 10 == 0 && x.e < prefer {
            x.m /= 10;
            x.e += 1;
        }
        if x.e > prefer
            && let Ok(q) = x.to_quantity_at(prefer, what)
        {
            return Ok(q);
        }
        // Too coarse to show at `prefer` without overflow, or finer than `prefer`.
        while x.m % 10 == 0 {
            x.m /= 10;
            x.e = x.e.checked_add(1).ok_or_else(|| overflow(what))?;
        }
        let scale = i8::try_from(x.e).map_err(|_| overflow(what))?;
        let mantissa = i64::try_from(x.m).map_err(|_| overflow(what))?;
        Ok(Quantity::new(mantissa, scale))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(m: i128, e: i32) -> Dec {
        Dec::new(m, e)
    }

    fn q(m: i64, s: i8) -> Quantity {
        Quantity::new(m, s)
    }

    #[test]
    fn rounds_half_even_to_cents() {
        let r = |m, e| {
            d(m, e)
                .round_half_even(-2, "t")
                .unwrap()
                .to_quantity_at(-2, "t")
                .unwrap()
        };
        assert_eq!(r(125, -3), q(12, -2)); // 0.125 -> 0.12 (tie, 2 is even)
        assert_eq!(r(135, -3), q(14, -2)); // 0.135 -> 0.14 (tie, 3 is odd)
        assert_eq!(r(1251, -4), q(13, -2)); // 0.1251 -> 0.13 (above the tie)
        assert_eq!(r(-125, -3), q(-12, -2)); // symmetric about zero
        assert_eq!(r(-135, -3), q(-14, -2));
        assert_eq!(r(-1249, -4), q(-12, -2));
        assert_eq!(r(7, 1), q(7000, -2)); // 70 -> 70.00
        assert_eq!(r(1, -60), q(0, -2)); // far below a cent
        assert_eq!(r(i128::MAX, -50), q(0, -2));
    }

    #[test]
    fn sums_across_scales_exactly() {
        let s = d(1, -3)
            .add(d(2, 0), "t")
            .unwrap()
            .add(d(5, 1), "t")
            .unwrap();
        assert_eq!(s.to_quantity(-3, "t").unwrap(), q(52001, -3));
        assert_eq!(
            d(120, 0).to_quantity(-3, "t").unwrap(),
            q(120_000, -3),
            "whole numbers shown to the thousandth"
        );
        assert_eq!(d(15, -7).to_quantity(-3, "t").unwrap(), q(15, -7));
    }

    #[test]
    fn overflow_is_an_error_not_a_panic() {
        assert!(matches!(
            d(1, 127).add(d(1, -128), "x"),
            Err(TariffError::Overflow(_))
        ));
        assert!(matches!(
            d(i128::MAX, 0).add(d(1, 0), "x"),
            Err(TariffError::Overflow(_))
        ));
        assert!(matches!(
            d(i128::from(i64::MAX), 0)
                .mul(d(i128::from(i64::MAX), 0), "x")
                .and_then(|x| x.mul(d(4, 0), "x")),
            Err(TariffError::Overflow(_))
        ));
        assert!(
            d(1, 0).add(d(0, 100), "x").is_ok(),
            "zero aligns with anything"
        );
        assert!(matches!(
            d(1, 200).to_quantity(-3, "x"),
            Err(TariffError::Overflow(_))
        ));
    }

    #[test]
    fn integers_are_recognised() {
        assert_eq!(d(1500, -2).to_int(), Some(15));
        assert_eq!(d(1501, -2).to_int(), None);
        assert_eq!(d(3, 2).to_int(), Some(300));
        assert_eq!(d(3, 100).to_int(), None);
        assert_eq!(d(0, -100).to_int(), Some(0));
    }
}
