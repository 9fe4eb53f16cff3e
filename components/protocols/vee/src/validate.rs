//! The validation rules: spikes, limits, zero and flat runs, reverse flow, register rollover,
//! clock drift and the interval-sum check.

use std::collections::HashMap;

use ami_domain::{Quality, Quantity};

use crate::grid::{self, Grid};
use crate::num::{Ratio, Scale, div_round, overflow};
use crate::params::Params;
use crate::{Finding, RuleError, Series, Verdict};

const DAY_MS: i64 = 86_400_000;

fn fail(ts: i64, why: String) -> Finding {
    Finding {
        ts,
        verdict: Verdict::Fail(why),
    }
}

/// `spike`: values above `factor` times the median of like-interval history.
pub(crate) fn spike(p: &Params<'_>, s: &Series<'_>) -> Result<Vec<Finding>, RuleError> {
    let factor_q = p.non_negative("factor")?.unwrap_or_default();
    let factor = Ratio::of(factor_q).ok_or_else(|| p.bad("factor", "is out of range"))?;
    let min_history = p.count("min-history", 1)?.unwrap_or(1) as usize;
    let floor = p.quantity("floor").unwrap_or_default();
    let period = if p.flag("same-weekday")? {
        7 * DAY_MS
    } else {
        DAY_MS
    };
    let scale = Scale::finest(
        s.values
            .iter()
            .chain(s.history)
            .map(|v| v.value)
            .chain([floor]),
    );
    let mut slots: HashMap<i64, Vec<i128>> = HashMap::new();
    for h in s.history {
        slots
            .entry(h.ts.rem_euclid(period))
            .or_default()
            .push(scale.of(h.value, "history value")?);
    }
    // The median of each slot as num / 2.
    let mut medians: HashMap<i64, i128> = HashMap::with_capacity(slots.len());
    for (slot, mut xs) in slots {
        if xs.len() < min_history {
            continue;
        }
        xs.sort_unstable();
        let n = xs.len();
        let twice = match (xs.get(n / 2), xs.get((n - 1) / 2)) {
            (Some(a), Some(b)) => a.checked_add(*b).ok_or_else(overflow)?,
            _ => continue,
        };
        medians.insert(slot, twice);
    }
    let floor = scale.of(floor, "floor")?;
    let mut out = Vec::new();
    for v in s.values {
        let Some(&twice_median) = medians.get(&v.ts.rem_euclid(period)) else {
            continue;
        };
        let x = scale.of(v.value, "value")?;
        if x <= floor {
            continue;
        }
        // x > factor * median  <=>  2 * x * den > num * (2 * median)
        let lhs = x
            .checked_mul(2)
            .and_then(|l| l.checked_mul(factor.den))
            .ok_or_else(overflow)?;
        let rhs = twice_median.checked_mul(factor.num).ok_or_else(overflow)?;
        if lhs > rhs {
            let median = scale.quantity(div_round(twice_median, 2).ok_or_else(overflow)?)?;
            out.push(fail(
                v.ts,
                format!("spike: {} above {factor_q} x median {median}", v.value),
            ));
        }
    }
    Ok(out)
}

/// `high-low-limits`: values outside `[low, high]`.
pub(crate) fn limits(p: &Params<'_>, s: &Series<'_>) -> Result<Vec<Finding>, RuleError> {
    let (high, low) = (p.quantity("high"), p.quantity("low"));
    if high.is_none() && low.is_none() {
        return Err(p.bad("high", "or low is required"));
    }
    if let (Some(h), Some(l)) = (high, low)
        && l > h
    {
        return Err(p.bad("low", &format!("{l} is above high {h}")));
    }
    Ok(s.values
        .iter()
        .filter_map(|v| match (high, low) {
            (Some(h), _) if v.value > h => Some(fail(v.ts, format!("{} above high {h}", v.value))),
            (_, Some(l)) if v.value < l => Some(fail(v.ts, format!("{} below low {l}", v.value))),
            _ => None,
        })
        .collect())
}

/// The run-length limit of a run rule: the parameter, else one day of intervals.
fn run_limit(p: &Params<'_>, name: &str, grid: Grid) -> Result<usize, RuleError> {
    Ok(match p.count(name, 1)? {
        Some(n) => n as usize,
        None => usize::try_from(DAY_MS / grid.step).unwrap_or(1).max(1),
    })
}

/// Fails every interval of each run of more than `max` consecutive values (on consecutive
/// grid points) for which `same(prev, this)` holds, with `why(first, run length)`.
fn runs(
    s: &Series<'_>,
    grid: Grid,
    max: usize,
    starts: impl Fn(Quantity) -> bool,
    same: impl Fn(Quantity, Quantity) -> bool,
    why: impl Fn(Quantity, usize) -> String,
) -> Vec<Finding> {
    let snapped = grid::snap(grid, s.values);
    let mut out = Vec::new();
    let flush = |from: usize, to: usize, out: &mut Vec<Finding>| {
        let len = to - from;
        if len > max
            && let Some(first) = s.values.get(from)
        {
            let reason = why(first.value, len);
            out.extend(
                s.values
                    .get(from..to)
                    .unwrap_or_default()
                    .iter()
                    .map(|v| fail(v.ts, reason.clone())),
            );
        }
    };
    let mut start = None;
    for (i, v) in s.values.iter().enumerate() {
        let continues = match (start, i.checked_sub(1)) {
            (Some(_), Some(j)) => {
                let adjacent = match (
                    snapped.get(j).copied().flatten(),
                    snapped.get(i).copied().flatten(),
                ) {
                    (Some(a), Some(b)) => grid.after(a, 1) == Some(b),
                    _ => false,
                };
                adjacent && s.values.get(j).is_some_and(|u| same(u.value, v.value))
            }
            _ => false,
        };
        if !continues {
            if let Some(from) = start {
                flush(from, i, &mut out);
            }
            start = starts(v.value).then_some(i);
        }
    }
    if let Some(from) = start {
        flush(from, s.values.len(), &mut out);
    }
    out
}

/// `zero-consumption`: runs of zero intervals.
pub(crate) fn zero_run(p: &Params<'_>, s: &Series<'_>) -> Result<Vec<Finding>, RuleError> {
    let grid = Grid::new(s.interval_s, p)?;
    let max = run_limit(p, "max-zero-run", grid)?;
    Ok(runs(
        s,
        grid,
        max,
        |q| q.mantissa == 0,
        |_, q| q.mantissa == 0,
        |_, n| format!("zero for {n} consecutive intervals (at most {max})"),
    ))
}

/// `stuck-register`: runs of one non-zero value.
pub(crate) fn flat_run(p: &Params<'_>, s: &Series<'_>) -> Result<Vec<Finding>, RuleError> {
    let grid = Grid::new(s.interval_s, p)?;
    let max = run_limit(p, "max-flat-run", grid)?;
    Ok(runs(
        s,
        grid,
        max,
        |q| q.mantissa != 0,
        |a, b| a == b,
        |q, n| format!("stuck at {q} for {n} consecutive intervals (at most {max})"),
    ))
}

/// `negative-flow`: values below `-tolerance`.
pub(crate) fn negative(p: &Params<'_>, s: &Series<'_>) -> Result<Vec<Finding>, RuleError> {
    let tol = p.non_negative("tolerance")?.unwrap_or_default();
    // A non-negative mantissa always negates.
    let below = Quantity::new(-tol.mantissa, tol.scale);
    Ok(s.values
        .iter()
        .filter(|v| v.value < below)
        .map(|v| fail(v.ts, format!("negative value {}: reverse flow", v.value)))
        .collect())
}

/// `register-rollover`: decreases of a cumulative register, wraps told from real decreases.
pub(crate) fn rollover(p: &Params<'_>, s: &Series<'_>) -> Result<Vec<Finding>, RuleError> {
    let max_q = p.non_negative("register-max")?;
    let delta_q = p.non_negative("max-delta")?;
    let scale = Scale::finest(s.values.iter().map(|v| v.value).chain(max_q).chain(delta_q));
    // The modulus: register-max plus one unit of its last digit.
    let wrap = match max_q {
        Some(q) => {
            let max = scale.of(q, "register-max")?;
            let unit = scale.of(Quantity::new(1, q.scale), "register-max's resolution")?;
            let modulus = max.checked_add(unit).ok_or_else(overflow)?;
            let max_delta = match delta_q {
                Some(d) => scale.of(d, "max-delta")?,
                None => modulus / 10,
            };
            Some((max, modulus, max_delta))
        }
        None => None,
    };
    let mut out = Vec::new();
    let mut prev: Option<(i128, Quantity)> = None;
    for v in s.values {
        let x = scale.of(v.value, "value")?;
        if let Some((max, _, _)) = wrap
            && x > max
        {
            out.push(fail(
                v.ts,
                format!(
                    "{} above register-max {}",
                    v.value,
                    max_q.unwrap_or_default()
                ),
            ));
            prev = None;
            continue;
        }
        if let Some((px, pq)) = prev
            && x < px
        {
            let wrapped = wrap.and_then(|(_, modulus, max_delta)| {
                let advance = x.checked_add(modulus)?.checked_sub(px)?;
                (x >= 0 && advance > 0 && advance <= max_delta).then_some(advance)
            });
            out.push(match wrapped {
                Some(_) => Finding {
                    ts: v.ts,
                    verdict: Verdict::Pass,
                },
                None => fail(v.ts, format!("register decreased from {pq} to {}", v.value)),
            });
        }
        prev = Some((x, v.value));
    }
    Ok(out)
}

/// `clock-drift`: stamps off the grid, and clocks flagged invalid.
pub(crate) fn clock(p: &Params<'_>, s: &Series<'_>) -> Result<Vec<Finding>, RuleError> {
    let grid = Grid::new(s.interval_s, p)?;
    let max = i128::from(p.seconds_as_ms("max-drift-s")?.unwrap_or(0));
    Ok(s.values
        .iter()
        .filter_map(|v| {
            if v.quality.contains(Quality::CLOCK_INVALID) {
                return Some(fail(v.ts, "clock invalid".into()));
            }
            let drift = grid.drift(v.ts);
            // |drift| is at most half an interval, so it fits an i64 of milliseconds.
            let shown = Quantity::new(i64::try_from(drift).unwrap_or(i64::MAX), -3);
            (drift.abs() > max).then(|| fail(v.ts, format!("{shown} s off the interval grid")))
        })
        .collect())
}

/// `sum-check`: the values' sum against the register's advance.
pub(crate) fn sum_check(p: &Params<'_>, s: &Series<'_>) -> Result<Vec<Finding>, RuleError> {
    let (start_q, end_q) = (p.required("register-start")?, p.required("register-end")?);
    let tol_q = p.non_negative("tolerance")?;
    let pct_q = match p.non_negative("tolerance-pct")? {
        Some(q) => q,
        None if tol_q.is_some() => Quantity::default(),
        None => Quantity::new(1, 0),
    };
    let pct = Ratio::of(pct_q).ok_or_else(|| p.bad("tolerance-pct", "is out of range"))?;
    let Some(last) = s.values.last() else {
        return Err(RuleError::Unsuitable(
            "sum-check: no intervals to add up".into(),
        ));
    };
    let scale = Scale::finest(
        s.values
            .iter()
            .map(|v| v.value)
            .chain([start_q, end_q])
            .chain(tol_q),
    );
    let mut total = 0i128;
    for v in s.values {
        total = total
            .checked_add(scale.of(v.value, "value")?)
            .ok_or_else(overflow)?;
    }
    let delta = scale
        .of(end_q, "register-end")?
        .checked_sub(scale.of(start_q, "register-start")?)
        .ok_or_else(overflow)?;
    let diff = total.checked_sub(delta).ok_or_else(overflow)?;
    let tol = scale.of(tol_q.unwrap_or_default(), "tolerance")?;
    // |diff| <= pct / 100 * |delta|  <=>  |diff| * den * 100 <= |delta| * num
    let within_pct = diff
        .unsigned_abs()
        .checked_mul(pct.den.unsigned_abs())
        .and_then(|d| d.checked_mul(100))
        .zip(delta.unsigned_abs().checked_mul(pct.num.unsigned_abs()))
        .ok_or_else(overflow)
        .map(|(l, r)| l <= r)?;
    if diff.unsigned_abs() <= tol.unsigned_abs() || within_pct {
        return Ok(Vec::new());
    }
    Ok(vec![fail(
        last.ts,
        format!(
            "interval sum {} differs from register delta {} by {}",
            scale.quantity(total)?,
            scale.quantity(delta)?,
            scale.quantity(diff)?
        ),
    )])
}

#[cfg(test)]
mod tests {
    use crate::testkit::*;
    use crate::{Finding, Interval, Quality, Quantity, RuleError, Verdict};

    /// `days` days of 15-minute history before `T0`, every interval `v`.
    fn flat_history(days: i64, v: i64) -> Vec<Interval> {
        ivs(&(-(days * 96)..0).map(|k| (k, n(v))).collect::<Vec<_>>())
    }

    #[test]
    fn spike_fails_values_above_factor_times_the_like_interval_median() {
        let history = flat_history(4, 10);
        // 30 is exactly 3 x 10: not above. 31 is.
        let values = ivs(&[(0, n(10)), (1, n(30)), (2, n(31)), (3, n(12))]);
        let found = run("spike", &[], &values, &history).unwrap();
        assert_eq!(
            fails(&found),
            vec![(at(2), "spike: 31 above 3 x median 10".to_owned())]
        );
        // A decimal factor: 2.5 x 10 = 25.
        let found = run(
            "spike",
            &[p("factor", Quantity::new(25, -1))],
            &values,
            &history,
        )
        .unwrap();
        assert_eq!(fail_ts(&found), vec![at(1), at(2)]);
        // Too little history: no judgement.
        let short = flat_history(2, 10);
        assert!(run("spike", &[], &values, &short).unwrap().is_empty());
        // Values at or below the floor never spike.
        let found = run("spike", &[p("floor", n(31))], &values, &history).unwrap();
        assert!(found.is_empty());
    }

    #[test]
    fn spike_median_of_an_even_count_and_of_the_same_weekday() {
        // Two like intervals, 10 and 20: median 15, factor 2 -> above 30 fails.
        let history = ivs(&[(-96, n(10)), (-192, n(20))]);
        let values = ivs(&[(0, n(30)), (96, n(31))]);
        let found = run(
            "spike",
            &[p("factor", n(2)), p("min-history", n(2))],
            &values,
            &history,
        )
        .unwrap();
        assert_eq!(fail_ts(&found), vec![at(96)]);
        // By weekday, a week-old value is the like interval: only `at(0)` has one.
        let history = ivs(&[(-7 * 96, n(5)), (-96, n(1000))]);
        let found = run(
            "spike",
            &[p("min-history", n(1)), p("same-weekday", n(1))],
            &values,
            &history,
        )
        .unwrap();
        assert_eq!(fail_ts(&found), vec![at(0)]);
    }

    #[test]
    fn high_low_limits_compare_decimals() {
        let values = ivs(&[
            (0, n(-1)),
            (1, n(0)),
            (2, Quantity::new(1500, -3)),
            (3, n(2)),
        ]);
        let params = [p("high", Quantity::new(15, -1)), p("low", n(0))];
        let found = run("high-low-limits", &params, &values, &[]).unwrap();
        assert_eq!(
            fails(&found),
            vec![
                (at(0), "-1 below low 0".to_owned()),
                (at(3), "2 above high 1.5".to_owned())
            ]
        );
        let found = run("high-low-limits", &[p("high", n(2))], &values, &[]).unwrap();
        assert!(found.is_empty());
        assert!(matches!(
            run("high-low-limits", &[], &values, &[]),
            Err(RuleError::BadParameter(_))
        ));
        assert!(matches!(
            run(
                "high-low-limits",
                &[p("high", n(1)), p("low", n(2))],
                &values,
                &[]
            ),
            Err(RuleError::BadParameter(_))
        ));
    }

    #[test]
    fn zero_runs_longer_than_the_limit_fail_whole() {
        let mut pts: Vec<(i64, Quantity)> = (0..3).map(|k| (k, n(0))).collect();
        pts.push((3, n(5)));
        pts.extend((4..8).map(|k| (k, n(0))));
        pts.push((8, n(5)));
        // A gap at 11 splits the zeros 9..=10 from 12..=13.
        pts.extend([(9, n(0)), (10, n(0)), (12, n(0)), (13, n(0))]);
        let values = ivs(&pts);
        let found = run("zero-consumption", &[p("max-zero-run", n(3))], &values, &[]).unwrap();
        assert_eq!(fail_ts(&found), vec![at(4), at(5), at(6), at(7)]);
        assert_eq!(
            fails(&found)[0].1,
            "zero for 4 consecutive intervals (at most 3)"
        );
        // The default is one day: 96 zero quarter hours pass, 97 fail.
        let day = ivs(&(0..96).map(|k| (k, n(0))).collect::<Vec<_>>());
        assert!(run("zero-consumption", &[], &day, &[]).unwrap().is_empty());
        let more = ivs(&(0..97).map(|k| (k, n(0))).collect::<Vec<_>>());
        assert_eq!(run("zero-consumption", &[], &more, &[]).unwrap().len(), 97);
    }

    #[test]
    fn negative_flow_beyond_the_tolerance_fails() {
        let values = ivs(&[(0, n(5)), (1, n(-1)), (2, n(0)), (3, Quantity::new(-5, -1))]);
        let found = run("negative-flow", &[], &values, &[]).unwrap();
        assert_eq!(
            fails(&found),
            vec![
                (at(1), "negative value -1: reverse flow".to_owned()),
                (at(3), "negative value -0.5: reverse flow".to_owned())
            ]
        );
        let found = run(
            "negative-flow",
            &[p("tolerance", Quantity::new(5, -1))],
            &values,
            &[],
        )
        .unwrap();
        assert_eq!(fail_ts(&found), vec![at(1)]);
        assert!(matches!(
            run("negative-flow", &[p("tolerance", n(-1))], &values, &[]),
            Err(RuleError::BadParameter(_))
        ));
    }

    #[test]
    fn register_rollover_tells_a_wrap_from_a_real_decrease() {
        let d = |m: i64| Quantity::new(m, -1);
        let values = ivs(&[
            (0, d(999_990)),
            (1, d(999_998)),
            (2, d(3)),  // wrapped: 99999.8 -> 0.3 is an advance of 0.5
            (3, d(10)), // rising
            (4, d(5)),  // a real decrease
        ]);
        let max = [p("register-max", d(999_999))];
        let found = run("register-rollover", &max, &values, &[]).unwrap();
        assert_eq!(
            found,
            vec![
                Finding {
                    ts: at(2),
                    verdict: Verdict::Pass
                },
                Finding {
                    ts: at(4),
                    verdict: Verdict::Fail("register decreased from 1.0 to 0.5".into())
                }
            ]
        );
        // Without register-max every decrease fails.
        let found = run("register-rollover", &[], &values, &[]).unwrap();
        assert_eq!(fail_ts(&found), vec![at(2), at(4)]);
        // A wrap that would mean more than max-delta is a real decrease.
        let found = run(
            "register-rollover",
            &[max[0], p("max-delta", d(4))],
            &values,
            &[],
        )
        .unwrap();
        assert_eq!(fail_ts(&found), vec![at(2), at(4)]);
        // A reading above register-max fails.
        let over = ivs(&[(0, d(5)), (1, n(100_000))]);
        assert_eq!(
            fails(&run("register-rollover", &max, &over, &[]).unwrap()),
            vec![(at(1), "100000 above register-max 99999.9".to_owned())]
        );
        // A steadily rising register has no findings.
        let rising = ivs(&(0..10).map(|k| (k, n(k * 7))).collect::<Vec<_>>());
        assert!(
            run("register-rollover", &max, &rising, &[])
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn stuck_register_fails_flat_lines_of_non_zero_values() {
        let mut pts: Vec<(i64, Quantity)> = (0..3).map(|k| (k, n(5))).collect();
        pts.extend([(3, n(7)), (4, Quantity::new(70, -1)), (5, n(7)), (6, n(7))]);
        pts.extend((7..12).map(|k| (k, n(0))));
        let values = ivs(&pts);
        let found = run("stuck-register", &[p("max-flat-run", n(3))], &values, &[]).unwrap();
        assert_eq!(fail_ts(&found), vec![at(3), at(4), at(5), at(6)]);
        assert_eq!(
            fails(&found)[0].1,
            "stuck at 7 for 4 consecutive intervals (at most 3)"
        );
        let found = run("stuck-register", &[p("max-flat-run", n(4))], &values, &[]).unwrap();
        assert!(found.is_empty());
    }

    #[test]
    fn clock_drift_and_invalid_clocks_fail() {
        let mut values = vec![
            Interval::new(at(0), n(1)),
            Interval::new(at(1) + 1000, n(1)),
            Interval::new(at(2) - 500, n(1)),
            Interval::new(at(3), n(1)),
        ];
        values[3].quality = Quality::CLOCK_INVALID;
        let found = run(
            "clock-drift",
            &[p("max-drift-s", Quantity::new(5, -1))],
            &values,
            &[],
        )
        .unwrap();
        assert_eq!(
            fails(&found),
            vec![
                (at(1) + 1000, "1.000 s off the interval grid".to_owned()),
                (at(3), "clock invalid".to_owned())
            ]
        );
        // With the default of 0, any offset fails; a grid offset moves the grid.
        let found = run("clock-drift", &[], &values, &[]).unwrap();
        assert_eq!(fail_ts(&found), vec![at(1) + 1000, at(2) - 500, at(3)]);
        let shifted = [Interval::new(at(1) + 1000, n(1))];
        assert!(
            run("clock-drift", &[p("grid-offset-s", n(1))], &shifted, &[])
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn sum_check_against_the_register_delta() {
        let values = ivs(&(0..10).map(|k| (k, n(10))).collect::<Vec<_>>());
        let reg = |a: i64, b: i64| [p("register-start", n(a)), p("register-end", n(b))];
        assert!(
            run("sum-check", &reg(1000, 1100), &values, &[])
                .unwrap()
                .is_empty()
        );
        // Off by 2 on a delta of 102: above the default 1 %.
        let found = run("sum-check", &reg(1000, 1102), &values, &[]).unwrap();
        assert_eq!(
            fails(&found),
            vec![(
                at(9),
                "interval sum 100 differs from register delta 102 by -2".to_owned()
            )]
        );
        // Off by 1: within 1 % of 101.
        assert!(
            run("sum-check", &reg(1000, 1101), &values, &[])
                .unwrap()
                .is_empty()
        );
        // An absolute tolerance replaces the default percentage.
        let mut params = reg(1000, 1102).to_vec();
        params.push(p("tolerance", n(2)));
        assert!(run("sum-check", &params, &values, &[]).unwrap().is_empty());
        params.pop();
        params.push(p("tolerance", n(1)));
        assert_eq!(run("sum-check", &params, &values, &[]).unwrap().len(), 1);
        // Register in kWh with three decimals against Wh intervals is the caller's unit choice:
        // here the same unit at a finer scale.
        let fine = [
            p("register-start", Quantity::new(1_000_000, -3)),
            p("register-end", Quantity::new(1_100_000, -3)),
        ];
        assert!(run("sum-check", &fine, &values, &[]).unwrap().is_empty());
        assert!(matches!(
            run("sum-check", &reg(0, 1)[..1], &values, &[]),
            Err(RuleError::BadParameter(_))
        ));
    }
}
