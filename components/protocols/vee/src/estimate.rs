//! The gap rules: `missing-intervals`, and the estimators `estimate-linear`,
//! `estimate-like-day` and `estimate-register-prorate`.

use std::collections::HashMap;

use ami_domain::{Quality, Quantity};

use crate::grid::{self, Gap, Grid, Window};
use crate::num::{Scale, div_round, overflow};
use crate::params::Params;
use crate::{EstimationMethod, Finding, Interval, RuleError, Series, Verdict};

const DAY_MS: i64 = 86_400_000;

/// The most like-day lookups one `estimate-like-day` call may make (missing intervals times
/// days looked back), so that a hostile window cannot keep it busy for minutes.
const MAX_LOOKUPS: i64 = 20_000_000;

/// The grid, each value's grid point, the window and its gaps; `None` with nothing to look at.
struct Gaps {
    grid: Grid,
    snapped: Vec<Option<i64>>,
    window: Window,
    gaps: Vec<Gap>,
}

fn find_gaps(p: &Params<'_>, s: &Series<'_>) -> Result<Option<Gaps>, RuleError> {
    let grid = Grid::new(s.interval_s, p)?;
    let snapped = grid::snap(grid, s.values);
    let Some(window) = grid::window(grid, p, &snapped)? else {
        return Ok(None);
    };
    let gaps = grid::gaps(grid, window, &snapped);
    Ok(Some(Gaps {
        grid,
        snapped,
        window,
        gaps,
    }))
}

fn estimate(ts: i64, value: Quantity, method: EstimationMethod) -> Finding {
    Finding {
        ts,
        verdict: Verdict::Estimate(value, method),
    }
}

fn fail(ts: i64, why: &str) -> Finding {
    Finding {
        ts,
        verdict: Verdict::Fail(why.to_owned()),
    }
}

/// Linear estimates for the points of `gap` from the values either side, or why there are none.
fn interpolate(
    g: &Gaps,
    s: &Series<'_>,
    gap: Gap,
    max_gap: i64,
) -> Result<Result<Vec<Finding>, String>, RuleError> {
    let side = |i: Option<usize>| {
        let i = i?;
        Some((g.snapped.get(i).copied().flatten()?, s.values.get(i)?.value))
    };
    let (Some((a, qa)), Some((b, qb))) = (side(gap.prev), side(gap.next)) else {
        return Ok(Err("no value on both sides to interpolate from".into()));
    };
    let total = g.grid.steps(a, b);
    if total - 1 > max_gap {
        return Ok(Err(format!(
            "gap of {} intervals is longer than max-gap-intervals {max_gap}",
            total - 1
        )));
    }
    let scale = Scale::finest([qa, qb]);
    let (ya, yb) = (scale.of(qa, "value")?, scale.of(qb, "value")?);
    let rise = yb.checked_sub(ya).ok_or_else(overflow)?;
    gap.points(g.grid)
        .map(|t| {
            let k = i128::from(g.grid.steps(a, t));
            let y = rise
                .checked_mul(k)
                .and_then(|r| div_round(r, i128::from(total)))
                .and_then(|d| ya.checked_add(d))
                .ok_or_else(overflow)?;
            Ok(estimate(
                t,
                scale.quantity(y)?,
                EstimationMethod::LinearInterpolation,
            ))
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Ok)
}

fn max_gap(p: &Params<'_>) -> Result<i64, RuleError> {
    Ok(i64::from(p.count("max-gap-intervals", 1)?.unwrap_or(1)))
}

/// `missing-intervals`: every grid point without a value, failed or (with `estimate = 1`)
/// estimated by linear interpolation.
pub(crate) fn missing(p: &Params<'_>, s: &Series<'_>) -> Result<Vec<Finding>, RuleError> {
    let estimating = p.flag("estimate")?;
    let max_gap = max_gap(p)?;
    let Some(g) = find_gaps(p, s)? else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for &gap in &g.gaps {
        if estimating {
            match interpolate(&g, s, gap, max_gap)? {
                Ok(found) => out.extend(found),
                Err(why) => {
                    let why = format!("missing; {why}");
                    out.extend(gap.points(g.grid).map(|t| fail(t, &why)));
                }
            }
        } else {
            out.extend(gap.points(g.grid).map(|t| fail(t, "missing")));
        }
    }
    Ok(out)
}

/// `estimate-linear`: linear estimates for the gaps that have values either side and are at
/// most `max-gap-intervals` long.
pub(crate) fn linear(p: &Params<'_>, s: &Series<'_>) -> Result<Vec<Finding>, RuleError> {
    let max_gap = max_gap(p)?;
    let Some(g) = find_gaps(p, s)? else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for &gap in &g.gaps {
        if let Ok(found) = interpolate(&g, s, gap, max_gap)? {
            out.extend(found);
        }
    }
    Ok(out)
}

/// Intervals by grid point, for lookups by time.
struct ByTime<'a> {
    at: Vec<(i64, &'a Interval)>,
}

impl<'a> ByTime<'a> {
    fn new(grid: Grid, xs: &'a [Interval]) -> Self {
        Self {
            at: xs
                .iter()
                .filter_map(|x| Some((grid.nearest(x.ts)?, x)))
                .collect(),
        }
    }

    fn get(&self, t: i64) -> Option<&'a Interval> {
        let i = self.at.partition_point(|(g, _)| *g < t);
        self.at.get(i).filter(|(g, _)| *g == t).map(|(_, x)| *x)
    }
}

/// `estimate-like-day`: the mean of the values at the same time on earlier like days.
pub(crate) fn like_day(p: &Params<'_>, s: &Series<'_>) -> Result<Vec<Finding>, RuleError> {
    grid::in_order(s.history, "history")?;
    let want = p.count("like-days", 1)?.unwrap_or(1) as usize;
    let need = p.count("min-like-days", 1)?.unwrap_or(1) as usize;
    if need > want {
        return Err(p.bad("min-like-days", "must not exceed like-days"));
    }
    let step = if p.flag("same-weekday")? { 7 } else { 1 };
    let lookback = p.integer("max-lookback-days", 1, 3660)?.unwrap_or(1);
    let Some(g) = find_gaps(p, s)? else {
        return Ok(Vec::new());
    };
    let (history, values) = (
        ByTime::new(g.grid, s.history),
        ByTime::new(g.grid, s.values),
    );
    let missing: i64 = g.gaps.iter().map(|gap| gap.len).sum();
    if missing.saturating_mul(lookback / step) > MAX_LOOKUPS {
        return Err(RuleError::Unsuitable(format!(
            "estimate-like-day: {missing} missing intervals times {lookback} days of lookback \
             is more than {MAX_LOOKUPS} lookups"
        )));
    }
    // Nothing lies before the earliest value or history value: no need to look further back.
    let earliest = [history.at.first(), values.at.first()]
        .into_iter()
        .flatten()
        .map(|(t, _)| *t)
        .min()
        .unwrap_or(i64::MAX);
    let mut out = Vec::new();
    let mut found: Vec<Quantity> = Vec::with_capacity(want);
    for gap in &g.gaps {
        for t in gap.points(g.grid) {
            found.clear();
            let mut days = step;
            while days <= lookback && found.len() < want {
                let Some(then) = t.checked_sub(days * DAY_MS).filter(|t| *t >= earliest) else {
                    break;
                };
                let like = history.get(then).or_else(|| values.get(then));
                if let Some(x) = like.filter(|x| !x.quality.contains(Quality::ESTIMATED)) {
                    found.push(x.value);
                }
                days += step;
            }
            if found.len() < need {
                continue;
            }
            let scale = Scale::finest(found.iter().copied());
            let mut total = 0i128;
            for q in &found {
                total = total
                    .checked_add(scale.of(*q, "like-day value")?)
                    .ok_or_else(overflow)?;
            }
            // `found` holds at most a million values.
            let mean = div_round(total, found.len() as i128).ok_or_else(overflow)?;
            out.push(estimate(
                t,
                scale.quantity(mean)?,
                EstimationMethod::LikeDayProfile,
            ));
        }
    }
    Ok(out)
}

/// The weights of the missing points: history's mean at their time of day, if it covers each
/// of them and adds up to more than zero.
fn profile(s: &Series<'_>, points: &[i64]) -> Result<Option<Vec<i128>>, RuleError> {
    let scale = Scale::finest(s.history.iter().map(|h| h.value));
    let mut slots: HashMap<i64, (i128, i128)> = HashMap::new();
    for h in s.history {
        let Some(x) = scale.mantissa(h.value) else {
            return Ok(None);
        };
        let e = slots.entry(h.ts.rem_euclid(DAY_MS)).or_default();
        e.0 = e.0.checked_add(x).ok_or_else(overflow)?;
        e.1 += 1;
    }
    let mut weights = Vec::with_capacity(points.len());
    for t in points {
        let Some(&(total, n)) = slots.get(&t.rem_euclid(DAY_MS)) else {
            return Ok(None);
        };
        // A mean kept to six more digits, so that small profiles still weigh apart.
        let Some(w) = total.checked_mul(1_000_000).and_then(|x| div_round(x, n)) else {
            return Ok(None);
        };
        if w < 0 {
            return Ok(None);
        }
        weights.push(w);
    }
    Ok((weights.iter().any(|w| *w > 0)).then_some(weights))
}

/// `remaining` split in proportion to `weights` (non-negative, some positive), each share
/// rounded down and the units left over given to the largest remainders, earliest first.
fn shares(remaining: i128, weights: &[i128]) -> Result<Vec<i128>, RuleError> {
    let total = weights
        .iter()
        .try_fold(0i128, |a, w| a.checked_add(*w))
        .filter(|t| *t > 0)
        .ok_or_else(overflow)?;
    let mut out = Vec::with_capacity(weights.len());
    let mut rests = Vec::with_capacity(weights.len());
    for (i, w) in weights.iter().enumerate() {
        let num = remaining.checked_mul(*w).ok_or_else(overflow)?;
        out.push(num / total);
        rests.push((num % total, i));
    }
    let given = out
        .iter()
        .try_fold(0i128, |a, x| a.checked_add(*x))
        .ok_or_else(overflow)?;
    let left = usize::try_from(remaining - given).unwrap_or(0);
    rests.sort_unstable_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    for (_, i) in rests.into_iter().take(left) {
        if let Some(x) = out.get_mut(i) {
            *x += 1;
        }
    }
    Ok(out)
}

/// `estimate-register-prorate`: the register's advance less the values present, spread over
/// the missing intervals.
pub(crate) fn prorate(p: &Params<'_>, s: &Series<'_>) -> Result<Vec<Finding>, RuleError> {
    let (start_q, end_q) = (p.required("register-start")?, p.required("register-end")?);
    let use_profile = p.flag("profile")?;
    let Some(g) = find_gaps(p, s)? else {
        return Err(RuleError::Unsuitable(
            "estimate-register-prorate: no values and no window".into(),
        ));
    };
    let points: Vec<i64> = g.gaps.iter().flat_map(|gap| gap.points(g.grid)).collect();
    if points.is_empty() {
        return Ok(Vec::new());
    }
    let w = g.window;
    let present: Vec<Quantity> = s
        .values
        .iter()
        .zip(&g.snapped)
        .filter(|(_, t)| t.is_some_and(|t| (w.start..=w.end).contains(&t)))
        .map(|(v, _)| v.value)
        .collect();
    let scale = Scale::finest(present.iter().copied().chain([start_q, end_q]));
    let mut measured = 0i128;
    for q in &present {
        measured = measured
            .checked_add(scale.of(*q, "value")?)
            .ok_or_else(overflow)?;
    }
    let delta = scale
        .of(end_q, "register-end")?
        .checked_sub(scale.of(start_q, "register-start")?)
        .ok_or_else(overflow)?;
    let remaining = delta.checked_sub(measured).ok_or_else(overflow)?;
    if remaining < 0 {
        let why = format!(
            "missing; register advance {} is less than the {} measured",
            scale.quantity(delta)?,
            scale.quantity(measured)?
        );
        return Ok(points.iter().map(|t| fail(*t, &why)).collect());
    }
    let weights = if use_profile && !s.history.is_empty() {
        grid::in_order(s.history, "history")?;
        profile(s, &points)?
    } else {
        None
    };
    let weights = weights.unwrap_or_else(|| vec![1; points.len()]);
    let split = shares(remaining, &weights)?;
    points
        .iter()
        .zip(split)
        .map(|(t, x)| {
            Ok(estimate(
                *t,
                scale.quantity(x)?,
                EstimationMethod::RegisterProrate,
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use crate::testkit::*;
    use crate::{EstimationMethod as M, Interval, Quality, Quantity, RuleError};

    #[test]
    fn missing_intervals_fail_or_are_estimated() {
        let values = ivs(&[(0, n(10)), (1, n(20)), (4, n(50)), (5, n(60))]);
        let found = run("missing-intervals", &[], &values, &[]).unwrap();
        assert_eq!(
            fails(&found),
            vec![(at(2), "missing".to_owned()), (at(3), "missing".to_owned())]
        );
        let found = run("missing-intervals", &[p("estimate", n(1))], &values, &[]).unwrap();
        assert_eq!(
            estimates(&found, M::LinearInterpolation),
            vec![(at(2), n(30)), (at(3), n(40))]
        );
        // A gap longer than max-gap-intervals, and gaps at the window's edges, fail.
        let params = [
            p("estimate", n(1)),
            p("max-gap-intervals", n(1)),
            p("window-start", n(at(-1))),
        ];
        let found = run("missing-intervals", &params, &values, &[]).unwrap();
        assert_eq!(
            fails(&found),
            vec![
                (
                    at(-1),
                    "missing; no value on both sides to interpolate from".to_owned()
                ),
                (
                    at(2),
                    "missing; gap of 2 intervals is longer than max-gap-intervals 1".to_owned()
                ),
                (
                    at(3),
                    "missing; gap of 2 intervals is longer than max-gap-intervals 1".to_owned()
                ),
            ]
        );
        // A complete series has no findings, nor has an empty one.
        let full = ivs(&(0..96).map(|k| (k, n(1))).collect::<Vec<_>>());
        assert!(
            run("missing-intervals", &[], &full, &[])
                .unwrap()
                .is_empty()
        );
        assert!(run("missing-intervals", &[], &[], &[]).unwrap().is_empty());
        // A window past the values: the trailing grid points are missing.
        let found = run(
            "missing-intervals",
            &[p("window-end", n(at(97)))],
            &full,
            &[],
        )
        .unwrap();
        assert_eq!(fail_ts(&found), vec![at(96), at(97)]);
        // A window off the grid, and a zero interval length, are refused.
        assert!(matches!(
            run(
                "missing-intervals",
                &[p("window-end", n(at(2) + 1))],
                &full,
                &[]
            ),
            Err(RuleError::BadParameter(_))
        ));
        let s = crate::Series {
            interval_s: 0,
            values: &full,
            history: &[],
        };
        assert!(matches!(
            crate::check("missing-intervals", &[], &s),
            Err(RuleError::Unsuitable(_))
        ));
    }

    #[test]
    fn missing_intervals_refuse_a_window_wider_than_the_limit() {
        let values = [
            Interval::new(0, n(1)),
            Interval::new(i64::MAX / 2 / 900_000 * 900_000, n(1)),
        ];
        assert!(matches!(
            run("missing-intervals", &[], &values, &[]),
            Err(RuleError::Unsuitable(_))
        ));
    }

    #[test]
    fn linear_estimates_round_at_the_series_scale() {
        let values = ivs(&[
            (0, n(10)),
            (2, n(11)),                 // one missing: 10.5 rounds to 11
            (4, Quantity::new(20, -1)), // one missing between 11 and 2.0: 6.5
            (10, n(0)),                 // five missing: too long by default
        ]);
        let found = run("estimate-linear", &[], &values, &[]).unwrap();
        assert_eq!(
            estimates(&found, M::LinearInterpolation),
            vec![(at(1), n(11)), (at(3), Quantity::new(65, -1))]
        );
        let found = run(
            "estimate-linear",
            &[p("max-gap-intervals", n(5))],
            &values,
            &[],
        )
        .unwrap();
        let tail: Vec<(i64, Quantity)> = estimates(&found, M::LinearInterpolation)
            .into_iter()
            .skip(2)
            .collect();
        // 2.0 down to 0 over six steps: 1.666.., 1.333.., 1.0, 0.666.., 0.333.. at scale -1.
        assert_eq!(
            tail,
            vec![
                (at(5), Quantity::new(17, -1)),
                (at(6), Quantity::new(13, -1)),
                (at(7), Quantity::new(10, -1)),
                (at(8), Quantity::new(7, -1)),
                (at(9), Quantity::new(3, -1)),
            ]
        );
        // Nothing missing: nothing estimated.
        let full = ivs(&[(0, n(1)), (1, n(2))]);
        assert!(run("estimate-linear", &[], &full, &[]).unwrap().is_empty());
    }

    #[test]
    fn like_day_averages_the_same_time_on_earlier_like_days() {
        const DAY: i64 = 96;
        // History: the same Monday interval 1..=4 weeks back, 41, 30, 20, 10, plus a Sunday.
        let mut history = ivs(&[
            (10 - 28 * DAY, n(10)),
            (10 - 21 * DAY, n(20)),
            (10 - 14 * DAY, n(30)),
            (10 - DAY, n(1000)),
            (10 - 7 * DAY, n(41)),
        ]);
        history.sort_by_key(|h| h.ts);
        let values = ivs(&[(9, n(1)), (11, n(1))]);
        let found = run("estimate-like-day", &[], &values, &history).unwrap();
        // (41 + 30 + 20 + 10) / 4 = 25.25
        assert_eq!(estimates(&found, M::LikeDayProfile), vec![(at(10), n(25))]);
        let found = run(
            "estimate-like-day",
            &[p("like-days", n(2))],
            &values,
            &history,
        )
        .unwrap();
        assert_eq!(estimates(&found, M::LikeDayProfile), vec![(at(10), n(36))]);
        // Any day: yesterday first.
        let found = run(
            "estimate-like-day",
            &[p("like-days", n(1)), p("same-weekday", n(0))],
            &values,
            &history,
        )
        .unwrap();
        assert_eq!(
            estimates(&found, M::LikeDayProfile),
            vec![(at(10), n(1000))]
        );
        // Estimated history is no like day; too few like days, no estimate.
        let mut flagged = history.clone();
        for h in &mut flagged {
            h.quality = Quality::ESTIMATED;
        }
        assert!(
            run("estimate-like-day", &[], &values, &flagged)
                .unwrap()
                .is_empty()
        );
        let found = run(
            "estimate-like-day",
            &[p("min-like-days", n(4)), p("max-lookback-days", n(21))],
            &values,
            &history,
        )
        .unwrap();
        assert!(found.is_empty());
        assert!(matches!(
            run(
                "estimate-like-day",
                &[p("min-like-days", n(5))],
                &values,
                &history
            ),
            Err(RuleError::BadParameter(_))
        ));
        // A window of a million missing intervals with eight weeks of daily lookback is more
        // work than the rule takes on.
        let wide = [
            p("window-start", n(at(0))),
            p("window-end", n(at(1_000_000))),
            p("same-weekday", n(0)),
        ];
        assert!(matches!(
            run("estimate-like-day", &wide, &[], &history),
            Err(RuleError::Unsuitable(m)) if m.contains("lookups")
        ));
    }

    #[test]
    fn register_prorate_spreads_the_advance_exactly() {
        let values = ivs(&[(0, n(10)), (1, n(10)), (4, n(10)), (5, n(10))]);
        let reg = |a: i64, b: i64| vec![p("register-start", n(a)), p("register-end", n(b))];
        let found = run("estimate-register-prorate", &reg(1000, 1070), &values, &[]).unwrap();
        assert_eq!(
            estimates(&found, M::RegisterProrate),
            vec![(at(2), n(15)), (at(3), n(15))]
        );
        // 31 over two: the odd unit goes to the earlier interval.
        let found = run("estimate-register-prorate", &reg(1000, 1071), &values, &[]).unwrap();
        assert_eq!(
            estimates(&found, M::RegisterProrate),
            vec![(at(2), n(16)), (at(3), n(15))]
        );
        // A history profile: interval 3 of the day weighs twice interval 2.
        let history = ivs(&[
            (2 - 192, n(3)),
            (3 - 192, n(6)),
            (2 - 96, n(1)),
            (3 - 96, n(2)),
        ]);
        let found = run(
            "estimate-register-prorate",
            &reg(1000, 1070),
            &values,
            &history,
        )
        .unwrap();
        assert_eq!(
            estimates(&found, M::RegisterProrate),
            vec![(at(2), n(10)), (at(3), n(20))]
        );
        let mut even = reg(1000, 1070);
        even.push(p("profile", n(0)));
        let found = run("estimate-register-prorate", &even, &values, &history).unwrap();
        assert_eq!(
            estimates(&found, M::RegisterProrate),
            vec![(at(2), n(15)), (at(3), n(15))]
        );
        // Missing intervals at the window's end share too.
        let mut edge = reg(1000, 1080);
        edge.push(p("window-end", n(at(6))));
        let found = run("estimate-register-prorate", &edge, &values, &[]).unwrap();
        assert_eq!(
            estimates(&found, M::RegisterProrate),
            vec![(at(2), n(14)), (at(3), n(13)), (at(6), n(13))]
        );
        // Less advance than measured: the missing intervals fail.
        let found = run("estimate-register-prorate", &reg(1000, 1030), &values, &[]).unwrap();
        assert_eq!(
            fails(&found),
            vec![
                (
                    at(2),
                    "missing; register advance 30 is less than the 40 measured".to_owned()
                ),
                (
                    at(3),
                    "missing; register advance 30 is less than the 40 measured".to_owned()
                )
            ]
        );
        // Nothing missing: nothing to estimate.
        let full = ivs(&[(0, n(1)), (1, n(2))]);
        assert!(
            run("estimate-register-prorate", &reg(0, 3), &full, &[])
                .unwrap()
                .is_empty()
        );
    }
}
