//! The interval grid: where interval ends are expected (`offset + k * interval` in UTC
//! milliseconds), the window a rule looks at, and the gaps in it.

use crate::params::Params;
use crate::{Interval, RuleError};

/// The most grid points a rule walks in one call (about 30 years of 15-minute intervals); a
/// wider window is refused rather than filled with millions of findings.
pub const MAX_GRID_POINTS: i64 = 1_048_576;

/// Interval ends expected at `offset + k * step` milliseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Grid {
    /// Interval length, milliseconds, above zero.
    pub step: i64,
    /// Where the grid sits, `0 <= offset < step`.
    pub offset: i64,
}

impl Grid {
    /// The grid of an interval length in seconds and the rule's `grid-offset-s` parameter.
    pub(crate) fn new(interval_s: u32, p: &Params<'_>) -> Result<Self, RuleError> {
        if interval_s == 0 {
            return Err(RuleError::Unsuitable(format!(
                "{}: interval length is zero",
                p.rule().id
            )));
        }
        let step = i64::from(interval_s) * 1000;
        let offset = p.seconds_as_ms("grid-offset-s")?.unwrap_or(0);
        if offset >= step {
            return Err(p.bad("grid-offset-s", "must be shorter than the interval"));
        }
        Ok(Grid { step, offset })
    }

    /// The grid point nearest `ts` (half way rounds to the later one), if it is a valid
    /// timestamp.
    pub(crate) fn nearest(self, ts: i64) -> Option<i64> {
        let rel = i128::from(ts) - i128::from(self.offset);
        let step = i128::from(self.step);
        let k = (rel + step / 2).div_euclid(step);
        i64::try_from(k * step + i128::from(self.offset)).ok()
    }

    /// `ts - nearest(ts)`, exact, or the distance to the edge of the timestamps' range.
    pub(crate) fn drift(self, ts: i64) -> i128 {
        let rel = i128::from(ts) - i128::from(self.offset);
        let step = i128::from(self.step);
        let k = (rel + step / 2).div_euclid(step);
        rel - k * step
    }

    /// Whether `ts` is a grid point.
    pub(crate) fn holds(self, ts: i64) -> bool {
        (i128::from(ts) - i128::from(self.offset)).rem_euclid(i128::from(self.step)) == 0
    }

    /// Grid points from `a` to `b` (both on the grid), minus one: the steps between them.
    pub(crate) fn steps(self, a: i64, b: i64) -> i64 {
        // Both are grid timestamps, so the quotient is at most i64::MAX / 1000.
        ((i128::from(b) - i128::from(a)) / i128::from(self.step)) as i64
    }

    /// The `k`-th grid point after `a` (on the grid), if it is a valid timestamp.
    pub(crate) fn after(self, a: i64, k: i64) -> Option<i64> {
        i64::try_from(i128::from(a) + i128::from(k) * i128::from(self.step)).ok()
    }
}

/// Checks that `xs` is strictly increasing in time.
pub(crate) fn in_order(xs: &[Interval], what: &str) -> Result<(), RuleError> {
    match xs.windows(2).find(|w| w[0].ts >= w[1].ts) {
        Some(w) => Err(RuleError::Unsuitable(format!(
            "{what} not strictly increasing in time: {} then {}",
            w[0].ts, w[1].ts
        ))),
        None => Ok(()),
    }
}

/// The grid points a rule looks at, both ends included, on the grid.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Window {
    /// The first grid point.
    pub start: i64,
    /// The last grid point.
    pub end: i64,
}

/// Every value's nearest grid point (`None` where that is no valid timestamp).
pub(crate) fn snap(grid: Grid, values: &[Interval]) -> Vec<Option<i64>> {
    values.iter().map(|v| grid.nearest(v.ts)).collect()
}

/// The window: `window-start`/`window-end` where given (on the grid), else the grid points of
/// the first and last value; `None` when there is nothing to look at.
pub(crate) fn window(
    grid: Grid,
    p: &Params<'_>,
    snapped: &[Option<i64>],
) -> Result<Option<Window>, RuleError> {
    let given = |name: &str| -> Result<Option<i64>, RuleError> {
        match p.timestamp(name)? {
            Some(ts) if !grid.holds(ts) => Err(p.bad(name, "must be on the interval grid")),
            t => Ok(t),
        }
    };
    let start = match given("window-start")? {
        Some(t) => Some(t),
        None => snapped.iter().flatten().next().copied(),
    };
    let end = match given("window-end")? {
        Some(t) => Some(t),
        None => snapped.iter().rev().flatten().next().copied(),
    };
    let (Some(start), Some(end)) = (start, end) else {
        return Ok(None);
    };
    if start > end {
        return Err(p.bad("window-start", "must not be after window-end"));
    }
    if grid.steps(start, end) >= MAX_GRID_POINTS {
        return Err(RuleError::Unsuitable(format!(
            "{}: window from {start} to {end} holds more than {MAX_GRID_POINTS} intervals",
            p.rule().id
        )));
    }
    Ok(Some(Window { start, end }))
}

/// A run of missing grid points.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Gap {
    /// The first missing grid point.
    pub start: i64,
    /// How many are missing, at least 1.
    pub len: i64,
    /// The value before the gap (index into the values), if any.
    pub prev: Option<usize>,
    /// The value after the gap, if any.
    pub next: Option<usize>,
}

impl Gap {
    /// The missing grid points.
    pub(crate) fn points(self, grid: Grid) -> impl Iterator<Item = i64> {
        // Every point lies inside the window, so each one is a valid timestamp.
        (0..self.len).filter_map(move |k| grid.after(self.start, k))
    }
}

/// The grid points of `w` that no value falls on (by its nearest grid point), as gaps with the
/// values either side. `snapped` is non-decreasing (the values are in time order).
pub(crate) fn gaps(grid: Grid, w: Window, snapped: &[Option<i64>]) -> Vec<Gap> {
    let mut out = Vec::new();
    let mut cursor = Some(w.start); // the next grid point not yet accounted for
    let mut prev = None;
    for (i, g) in snapped.iter().enumerate() {
        let (Some(g), Some(c)) = (*g, cursor) else {
            continue;
        };
        if g > w.end {
            out.push(Gap {
                start: c,
                len: grid.steps(c, w.end) + 1,
                prev,
                next: Some(i),
            });
            cursor = None;
            break;
        }
        if g > c {
            out.push(Gap {
                start: c,
                len: grid.steps(c, g),
                prev,
                next: Some(i),
            });
        }
        if g >= c {
            cursor = if g == w.end { None } else { grid.after(g, 1) };
        }
        prev = Some(i);
    }
    if let Some(c) = cursor {
        out.push(Gap {
            start: c,
            len: grid.steps(c, w.end) + 1,
            prev,
            next: None,
        });
    }
    out
}
