//! The billing period's interval grid and the complete energy series on it, per direction.

use std::collections::BTreeMap;

use ami_domain::time::rfc3339;

use crate::decimal::Dec;
use crate::{MAX_INTERVALS, TariffError, Usage};

/// Timestamps the crate accepts: years 1 to 9999.
const MIN_TS: i64 = -62_135_596_800_000;
const MAX_TS: i64 = 253_402_300_799_999;

/// The period `[start, end)` cut into `n` intervals of `iv` ms.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Period {
    pub(crate) start: i64,
    pub(crate) end: i64,
    pub(crate) iv: i64,
    pub(crate) n: usize,
}

impl Period {
    /// Checks the period against the interval length.
    pub(crate) fn new(start: i64, end: i64, minutes: i64) -> Result<Self, TariffError> {
        let bad = |m: String| TariffError::BadParameter(m);
        if !(MIN_TS..=MAX_TS).contains(&start) || !(MIN_TS..=MAX_TS).contains(&end) {
            return Err(bad(format!(
                "period {start}..{end} ms is outside the years 1 to 9999"
            )));
        }
        if end <= start {
            return Err(bad(format!(
                "period end {} is not after its start {}",
                rfc3339(end),
                rfc3339(start)
            )));
        }
        let iv = minutes * 60_000;
        let len = end - start;
        if len % iv != 0 {
            return Err(bad(format!(
                "period {}..{} is not a whole number of {minutes}-minute intervals",
                rfc3339(start),
                rfc3339(end)
            )));
        }
        if len / iv > MAX_INTERVALS {
            return Err(bad(format!(
                "period of {} intervals is longer than {MAX_INTERVALS}",
                len / iv
            )));
        }
        let n = usize::try_from(len / iv).map_err(|_| bad("period too long".into()))?;
        Ok(Self { start, end, iv, n })
    }

    /// The start of interval `i`.
    pub(crate) fn start_of(&self, i: usize) -> i64 {
        self.start + i64::try_from(i).unwrap_or(i64::MAX / 2) * self.iv
    }

    /// The end of interval `i` (its timestamp).
    pub(crate) fn end_of(&self, i: usize) -> i64 {
        self.start_of(i) + self.iv
    }
}

/// Which way the energy flows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Direction {
    /// `1-0:1.8.x`.
    Import,
    /// `1-0:2.8.x`.
    Export,
}

impl Direction {
    fn c(self) -> u8 {
        match self {
            Direction::Import => 1,
            Direction::Export => 2,
        }
    }

    fn word(self) -> &'static str {
        match self {
            Direction::Import => "import",
            Direction::Export => "export",
        }
    }
}

/// The energy of each interval of the period in `dir`, Wh; every interval must be present.
pub(crate) fn energy(
    usage: &[Usage],
    period: &Period,
    dir: Direction,
) -> Result<Vec<Dec>, TariffError> {
    // Rate register E -> value per interval.
    let mut regs: BTreeMap<u8, Vec<Option<Dec>>> = BTreeMap::new();
    for u in usage {
        let r = u.register;
        if r.a != 1 || r.c != dir.c() || r.d != 8 || u.ts <= period.start || u.ts > period.end {
            continue;
        }
        let off = u.ts - period.start;
        if off % period.iv != 0 {
            return Err(TariffError::BadUsage(format!(
                "{} interval ending {} is off the {}-minute grid of the period",
                r,
                rfc3339(u.ts),
                period.iv / 60_000
            )));
        }
        if u.value.mantissa < 0 {
            return Err(TariffError::BadUsage(format!(
                "{} interval ending {} is negative ({} Wh)",
                r,
                rfc3339(u.ts),
                u.value
            )));
        }
        let i = usize::try_from(off / period.iv - 1).unwrap_or(usize::MAX);
        let slot = regs
            .entry(r.e)
            .or_insert_with(|| vec![None; period.n])
            .get_mut(i)
            .ok_or_else(|| TariffError::BadUsage("interval outside the period".into()))?;
        if slot.is_some() {
            return Err(TariffError::BadUsage(format!(
                "{} interval ending {} is given twice",
                r,
                rfc3339(u.ts)
            )));
        }
        *slot = Some(Dec::from_q(u.value));
    }
    if regs.is_empty() {
        return Err(TariffError::MissingData(format!(
            "no {} usage (1-0:{}.8.x) in the period {}..{}",
            dir.word(),
            dir.c(),
            rfc3339(period.start),
            rfc3339(period.end)
        )));
    }
    // The total register alone if present, else the sum of the rate registers.
    if let Some(total) = regs.remove(&0) {
        regs = BTreeMap::from([(0, total)]);
    }
    let mut out = vec![Dec::ZERO; period.n];
    for (e, values) in &regs {
        let missing: Vec<usize> = values
            .iter()
            .enumerate()
            .filter(|(_, v)| v.is_none())
            .map(|(i, _)| i)
            .collect();
        if let Some(first) = missing.first() {
            return Err(TariffError::MissingData(format!(
                "1-0:{}.8.{e}: {} of {} intervals missing, the first ending {}",
                dir.c(),
                missing.len(),
                period.n,
                rfc3339(period.end_of(*first))
            )));
        }
        for (acc, v) in out.iter_mut().zip(values) {
            *acc = acc.add(v.unwrap_or_default(), "interval energy")?;
        }
    }
    Ok(out)
}

/// The sum of a series.
pub(crate) fn total(series: &[Dec], what: &str) -> Result<Dec, TariffError> {
    series
        .iter()
        .try_fold(Dec::ZERO, |acc, v| acc.add(*v, what))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ami_domain::{Obis, Quantity};

    fn u(c: u8, e: u8, ts_min: i64, wh: i64) -> Usage {
        Usage {
            register: Obis::new(1, 0, c, 8, e, 255),
            ts: ts_min * 60_000,
            value: Quantity::new(wh, 0),
        }
    }

    #[test]
    fn periods_are_checked() {
        assert!(Period::new(0, 0, 15).is_err());
        assert!(Period::new(0, 10 * 60_000, 15).is_err());
        assert!(Period::new(0, (MAX_INTERVALS + 1) * 5 * 60_000, 5).is_err());
        assert!(Period::new(0, MAX_INTERVALS * 5 * 60_000, 5).is_ok());
        assert!(Period::new(i64::MIN, 0, 15).is_err());
    }

    #[test]
    fn rate_registers_add_up_and_a_total_wins() {
        let p = Period::new(0, 30 * 60_000, 15).unwrap();
        let rates = [
            u(1, 1, 15, 10),
            u(1, 2, 15, 5),
            u(1, 1, 30, 1),
            u(1, 2, 30, 2),
        ];
        let s = energy(&rates, &p, Direction::Import).unwrap();
        assert_eq!(total(&s, "t").unwrap().to_int(), Some(18));
        let mut with_total = rates.to_vec();
        with_total.extend([u(1, 0, 15, 100), u(1, 0, 30, 200)]);
        let s = energy(&with_total, &p, Direction::Import).unwrap();
        assert_eq!(total(&s, "t").unwrap().to_int(), Some(300));
        // Export is apart from import.
        assert!(
            matches!(energy(&rates, &p, Direction::Export), Err(TariffError::MissingData(m)) if m.contains("no export"))
        );
    }

    #[test]
    fn gaps_off_grid_negative_and_twice() {
        let p = Period::new(0, 60 * 60_000, 15).unwrap();
        let gap = [u(1, 0, 15, 1), u(1, 0, 60, 1)];
        assert!(matches!(energy(&gap, &p, Direction::Import),
            Err(TariffError::MissingData(m)) if m == "1-0:1.8.0: 2 of 4 intervals missing, the first ending 1970-01-01T00:30:00Z"));
        // A rate register with a hole fails even if another is complete.
        let rate_gap = [
            u(1, 1, 15, 1),
            u(1, 1, 30, 1),
            u(1, 1, 45, 1),
            u(1, 1, 60, 1),
            u(1, 2, 60, 1),
        ];
        assert!(
            matches!(energy(&rate_gap, &p, Direction::Import), Err(TariffError::MissingData(m)) if m.starts_with("1-0:1.8.2: 3 of 4"))
        );
        let off = [u(1, 0, 20, 1)];
        assert!(
            matches!(energy(&off, &p, Direction::Import), Err(TariffError::BadUsage(m)) if m.contains("off the 15-minute grid"))
        );
        let neg = [u(1, 0, 15, -1)];
        assert!(
            matches!(energy(&neg, &p, Direction::Import), Err(TariffError::BadUsage(m)) if m.contains("negative"))
        );
        let twice = [u(1, 0, 15, 1), u(1, 0, 15, 1)];
        assert!(
            matches!(energy(&twice, &p, Direction::Import), Err(TariffError::BadUsage(m)) if m.contains("twice"))
        );
        // Usage outside (start, end] is ignored, not an error.
        let mut full: Vec<Usage> = (1..=4).map(|k| u(1, 0, 15 * k, 1)).collect();
        full.push(u(1, 0, 0, 99));
        full.push(u(1, 0, 75, 99));
        assert_eq!(
            total(&energy(&full, &p, Direction::Import).unwrap(), "t")
                .unwrap()
                .to_int(),
            Some(4)
        );
    }
}
