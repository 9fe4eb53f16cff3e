//! Decimal arithmetic for the rules: quantities brought to one scale as `i128` mantissas,
//! checked operations, rounding division and the way back to a [`Quantity`].
//!
//! Every value a rule adds, compares or divides is first aligned to the finest scale among the
//! quantities it works with (the smallest `scale`), so `12 Wh` and `12.5 Wh` become `120` and
//! `125` at scale `-1`. An `i64` mantissa moved by up to 19 decimal places still fits an
//! `i128`; quantities further apart than that cannot be aligned and the rule says so.

use ami_domain::Quantity;

use crate::RuleError;

/// Quantities aligned to one scale.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Scale(pub i8);

impl Scale {
    /// The finest (smallest) scale among the non-zero quantities; `0` when all are zero.
    pub(crate) fn finest(qs: impl IntoIterator<Item = Quantity>) -> Self {
        Scale(
            qs.into_iter()
                .filter(|q| q.mantissa != 0)
                .map(|q| q.scale)
                .min()
                .unwrap_or(0),
        )
    }

    /// `q`'s mantissa at this scale, if exact and within `i128`.
    pub(crate) fn mantissa(self, q: Quantity) -> Option<i128> {
        if q.mantissa == 0 {
            return Some(0);
        }
        let diff = i32::from(q.scale) - i32::from(self.0);
        let m = i128::from(q.mantissa);
        if diff >= 0 {
            m.checked_mul(10i128.checked_pow(u32::try_from(diff).ok()?)?)
        } else {
            let f = 10i128.checked_pow(u32::try_from(-diff).ok()?)?;
            (m % f == 0).then(|| m / f)
        }
    }

    /// Like [`Scale::mantissa`], as the rule's error naming `what` when it does not fit.
    pub(crate) fn of(self, q: Quantity, what: &str) -> Result<i128, RuleError> {
        self.mantissa(q).ok_or_else(|| {
            RuleError::Unsuitable(format!(
                "{what} {q} cannot be brought to the series' scale 10^{}",
                self.0
            ))
        })
    }

    /// A mantissa at this scale as a quantity, rounded half away from zero to fewer digits
    /// where it does not fit an `i64`, trailing zeros kept as they are.
    pub(crate) fn quantity(self, mut m: i128) -> Result<Quantity, RuleError> {
        let mut scale = self.0;
        loop {
            if let Ok(mantissa) = i64::try_from(m) {
                return Ok(Quantity::new(mantissa, scale));
            }
            m = div_round(m, 10).ok_or_else(overflow)?;
            scale = scale.checked_add(1).ok_or_else(overflow)?;
        }
    }
}

/// The error for arithmetic that leaves `i128`.
pub(crate) fn overflow() -> RuleError {
    RuleError::Unsuitable("values too large to add up within 128 bits".into())
}

/// `n / d` rounded half away from zero; `None` for `d <= 0` or overflow.
pub(crate) fn div_round(n: i128, d: i128) -> Option<i128> {
    if d <= 0 {
        return None;
    }
    let q = n.checked_div(d)?;
    let r = n.checked_rem(d)?;
    // |r| >= d - |r|, i.e. the remainder is at least half of d, without overflowing 2 * |r|.
    let up = r.unsigned_abs() >= d.unsigned_abs() - r.unsigned_abs();
    if r != 0 && up {
        if n < 0 {
            q.checked_sub(1)
        } else {
            q.checked_add(1)
        }
    } else {
        Some(q)
    }
}

/// A non-negative decimal ratio `num / den` (a factor or a percentage), `den` a power of ten.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Ratio {
    /// The numerator.
    pub num: i128,
    /// The denominator, at least 1.
    pub den: i128,
}

impl Ratio {
    /// `q` as an exact ratio.
    pub(crate) fn of(q: Quantity) -> Option<Self> {
        let m = i128::from(q.mantissa);
        let p = 10i128.checked_pow(u32::from(q.scale.unsigned_abs()))?;
        Some(if q.scale >= 0 {
            Ratio {
                num: m.checked_mul(p)?,
                den: 1,
            }
        } else {
            Ratio { num: m, den: p }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligns_to_the_finest_scale() {
        let s = Scale::finest([
            Quantity::new(12, 0),
            Quantity::new(125, -1),
            Quantity::new(0, -9),
        ]);
        assert_eq!(s, Scale(-1));
        assert_eq!(s.mantissa(Quantity::new(12, 0)), Some(120));
        assert_eq!(s.mantissa(Quantity::new(7, -2)), None);
        assert_eq!(s.mantissa(Quantity::new(70, -2)), Some(7));
        assert_eq!(Scale(-128).mantissa(Quantity::new(i64::MAX, 127)), None);
        assert_eq!(
            Scale(0).mantissa(Quantity::new(i64::MIN, 19)),
            Some(i128::from(i64::MIN) * 10i128.pow(19))
        );
    }

    #[test]
    fn rounds_half_away_from_zero() {
        assert_eq!(div_round(5, 2), Some(3));
        assert_eq!(div_round(-5, 2), Some(-3));
        assert_eq!(div_round(4, 3), Some(1));
        assert_eq!(div_round(-4, 3), Some(-1));
        assert_eq!(div_round(i128::MIN, 1), Some(i128::MIN));
        assert_eq!(div_round(i128::MIN, -1), None);
        assert_eq!(div_round(i128::MAX, i128::MAX), Some(1));
        assert_eq!(div_round(1, 0), None);
    }

    #[test]
    fn back_to_a_quantity() {
        assert_eq!(Scale(-1).quantity(125).unwrap(), Quantity::new(125, -1));
        let big = i128::from(i64::MAX) * 10 + 7;
        let q = Scale(0).quantity(big).unwrap();
        // 9223372036854775807.7 rounds to 9223372036854775808, one past i64: one more digit goes.
        assert_eq!((q.mantissa, q.scale), (922_337_203_685_477_581, 2));
        assert!(Scale(127).quantity(big).is_err());
    }

    #[test]
    fn ratios() {
        let r = Ratio::of(Quantity::new(25, -1)).unwrap();
        assert_eq!(r, Ratio { num: 25, den: 10 });
        assert_eq!(
            Ratio::of(Quantity::new(3, 2)).unwrap(),
            Ratio { num: 300, den: 1 }
        );
        assert_eq!(Ratio::of(Quantity::new(1, 127)), None);
    }
}
