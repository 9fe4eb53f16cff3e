//! # ami-vee: the standard VEE rule pack
//!
//! Validation, estimation and editing (VEE) rules over interval data, as plain Rust with no I/O.
//! The MDMS runs them through the `standard-vee` Wasm component (`components/vee/standard`, a
//! thin adapter from the `ami:plugin` `vee-rule` world to [`check`]); this crate is also what a
//! native caller, a test or a benchmark links. Inputs mirror the WIT: a [`Series`] of
//! [`Interval`]s (UTC milliseconds, each stamped with its interval's end, a [`Quantity`] and
//! [`Quality`] flags) plus earlier validated `history`, and named [`Param`]s. A rule returns
//! [`Finding`]s only for intervals that do not simply pass, or a typed [`RuleError`].
//!
//! Values are decimals (`mantissa * 10^scale`), added and compared as `i128` at the finest scale
//! the rule sees, never as binary floats. Estimates come out at that scale, rounded half away
//! from zero. Inputs are taken as hostile: unsorted or duplicate timestamps, a zero interval
//! length, `i64` extremes, scales that cannot be brought together or windows wider than
//! [`MAX_GRID_POINTS`] intervals are a [`RuleError`], never a panic or an overflow.
//!
//! ## Common ground
//!
//! - `values` (and `history`, where a rule reads it) must be strictly increasing in time.
//! - The **grid**: interval ends are expected at `grid-offset-s + k * interval-s` seconds after
//!   the Unix epoch (UTC). A value belongs to its nearest grid point.
//! - The **window** of the gap-finding rules runs from `window-start` to `window-end` (UTC
//!   milliseconds, interval ends, both on the grid, both included); by default from the first
//!   value's grid point to the last one's. Pass the window to find gaps at its edges.
//! - Parameters are in the series' unit (values), seconds (durations), milliseconds
//!   (timestamps); flags are `0` or `1`. An unknown or repeated parameter is refused.
//!
//! ## Validation rules
//!
//! | rule | fires on | parameters (default) |
//! | --- | --- | --- |
//! | `missing-intervals` | each grid point in the window with no value: `fail("missing")`, or with `estimate = 1` an `estimate` by linear interpolation between the values either side (`fail` where that is impossible) | `window-start`, `window-end`, `grid-offset-s` (0), `estimate` (0), `max-gap-intervals` (4) |
//! | `spike` | a value above `factor` times the median of the history values at the same time of day (or of week with `same-weekday = 1`) and above `floor`; needs `min-history` such values, else no judgement | `factor` (3), `min-history` (3), `floor` (0), `same-weekday` (0) |
//! | `high-low-limits` | a value above `high` or below `low`, set per meter class; at least one is required | `high`, `low` |
//! | `zero-consumption` | every interval of a run of more than `max-zero-run` consecutive zero intervals (a missing interval ends a run) | `max-zero-run` (one day of intervals) |
//! | `negative-flow` | a value below `-tolerance`: reverse flow on an import register (apply it to import registers only) | `tolerance` (0) |
//! | `register-rollover` | on a cumulative register: a decrease between consecutive values. One consistent with a wrap (previous value at most `register-max`, wrapped advance `value + modulus - previous` at most `max-delta`, modulus = `register-max` plus one unit of its last digit, so write `register-max` at the register's resolution: `99999.9`) is a `pass` finding that marks the rollover; any other decrease, or a value above `register-max`, fails. Without `register-max` every decrease fails | `register-max`, `max-delta` (a tenth of the modulus) |
//! | `stuck-register` | a flat line on an interval series: every interval of a run of more than `max-flat-run` consecutive equal non-zero values (zeros are `zero-consumption`'s) | `max-flat-run` (one day of intervals) |
//! | `clock-drift` | a value stamped more than `max-drift-s` off the grid, or flagged `clock-invalid` | `max-drift-s` (0), `grid-offset-s` (0) |
//! | `sum-check` | the last interval, when the sum of the values differs from `register-end - register-start` by more than both `tolerance` and `tolerance-pct` percent of that delta | `register-start`, `register-end` (required), `tolerance` (0), `tolerance-pct` (1 when `tolerance` is not given, else 0) |
//!
//! The stuck-register rule is the flat-line check on one series: a cumulative register that
//! stops while the interval channel shows consumption needs both series at once, which one
//! `check` call does not carry; `sum-check` covers that case from the register readings.
//!
//! ## Estimation rules
//!
//! Each estimates the missing grid points of the window (an MDMS drops the values that failed
//! validation first) and returns `estimate` findings carrying their [`EstimationMethod`]; a
//! gap it cannot fill yields no finding (`missing-intervals` reports it).
//!
//! | rule | estimate | parameters (default) |
//! | --- | --- | --- |
//! | `estimate-linear` | linear interpolation between the values either side of a gap of at most `max-gap-intervals` intervals | `window-start`, `window-end`, `grid-offset-s` (0), `max-gap-intervals` (4) |
//! | `estimate-like-day` | the mean of the values at the same time on up to `like-days` earlier like days (the same weekday with `same-weekday = 1`, else any day), looked for in history and in the series up to `max-lookback-days` back, skipping estimated values; needs `min-like-days` of them | `window-start`, `window-end`, `grid-offset-s` (0), `like-days` (4), `same-weekday` (1), `max-lookback-days` (56), `min-like-days` (1) |
//! | `estimate-register-prorate` | the register's advance over the window (`register-end - register-start`, read at the start of the first and the end of the last interval) less the values present, spread over the missing intervals in proportion to the mean history value at their time of day (`profile = 1`, when history covers each of them with a positive total), else evenly; shares are rounded so that they add up exactly. If the present values already exceed the advance, each missing interval fails | `register-start`, `register-end` (required), `window-start`, `window-end`, `grid-offset-s` (0), `profile` (1) |
//!
//! `estimate-like-day` refuses windows whose missing intervals times the days it looks back
//! exceed twenty million lookups.
//!
//! Days are UTC days: like-day and profile lookups step back whole 24-hour days, so the hours
//! next to a daylight-saving change are compared with the neighbouring hour.

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

mod estimate;
mod grid;
mod num;
pub mod params;
#[cfg(test)]
mod testkit;
mod validate;

pub use ami_domain::{Quality, Quantity};
pub use grid::MAX_GRID_POINTS;
pub use params::{ParamDefault, ParamSpec};

/// One interval value of a series.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Interval {
    /// The interval's end, UTC milliseconds.
    pub ts: i64,
    /// The value (energy over the interval, or the register's reading for cumulative series).
    pub value: Quantity,
    /// Its quality flags.
    pub quality: Quality,
}

impl Interval {
    /// A valid, measured value.
    pub const fn new(ts: i64, value: Quantity) -> Self {
        Self {
            ts,
            value,
            quality: Quality::VALID,
        }
    }
}

/// The series a rule checks: one register of one meter at a fixed interval length.
#[derive(Clone, Copy, Debug)]
pub struct Series<'a> {
    /// Interval length in seconds.
    pub interval_s: u32,
    /// The values under review, in time order.
    pub values: &'a [Interval],
    /// Earlier validated values of the same series, in time order, for history-based rules.
    pub history: &'a [Interval],
}

/// A named parameter of a rule; set per meter class by the caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Param<'a> {
    /// The parameter's name (kebab-case).
    pub name: &'a str,
    /// Its value.
    pub value: Quantity,
}

/// How an estimate was made.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EstimationMethod {
    /// Between the values either side.
    LinearInterpolation,
    /// From the same time on like days.
    LikeDayProfile,
    /// A share of a register's advance.
    RegisterProrate,
    /// Zero.
    ZeroFill,
}

/// What a rule says about one interval.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The value passes (said only where that is news, such as a register rollover).
    Pass,
    /// The value fails, for the reason given in a few words.
    Fail(String),
    /// The value is missing or failed, and this estimate replaces it.
    Estimate(Quantity, EstimationMethod),
}

/// The verdict on the interval ending at `ts`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    /// The interval's end.
    pub ts: i64,
    /// The verdict.
    pub verdict: Verdict,
}

/// Why a rule could not run.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    /// A required parameter is missing or out of range, an unknown one was given, or the rule
    /// does not exist.
    #[error("bad parameter: {0}")]
    BadParameter(String),
    /// The series is unusable for this rule.
    #[error("unsuitable series: {0}")]
    Unsuitable(String),
}

/// A rule of the pack and the parameters it accepts.
#[derive(Clone, Copy, Debug)]
pub struct RuleSpec {
    /// The rule id, kebab-case.
    pub id: &'static str,
    /// Its parameters.
    pub params: &'static [ParamSpec],
}

const fn p(name: &'static str, default: ParamDefault, doc: &'static str) -> ParamSpec {
    ParamSpec { name, doc, default }
}

const WINDOW_START: ParamSpec = p(
    "window-start",
    ParamDefault::Optional,
    "the first interval end to look at, UTC ms, on the grid",
);
const WINDOW_END: ParamSpec = p(
    "window-end",
    ParamDefault::Optional,
    "the last interval end to look at, UTC ms, on the grid",
);
const GRID_OFFSET: ParamSpec = p(
    "grid-offset-s",
    ParamDefault::Value(0, 0),
    "where interval ends sit past the multiples of the interval length, seconds",
);
const MAX_GAP: ParamSpec = p(
    "max-gap-intervals",
    ParamDefault::Value(4, 0),
    "the longest gap filled by linear interpolation, in intervals",
);
const REGISTER_START: ParamSpec = p(
    "register-start",
    ParamDefault::Required,
    "the cumulative register at the start of the first interval",
);
const REGISTER_END: ParamSpec = p(
    "register-end",
    ParamDefault::Required,
    "the cumulative register at the end of the last interval",
);
const ONE_DAY: &str = "one day of intervals (at least 1)";

/// Every rule of the pack, in the order of the crate documentation.
pub const RULES: &[RuleSpec] = &[
    RuleSpec {
        id: "missing-intervals",
        params: &[
            WINDOW_START,
            WINDOW_END,
            GRID_OFFSET,
            p(
                "estimate",
                ParamDefault::Value(0, 0),
                "1: estimate missing intervals by linear interpolation instead of failing them",
            ),
            MAX_GAP,
        ],
    },
    RuleSpec {
        id: "spike",
        params: &[
            p(
                "factor",
                ParamDefault::Value(3, 0),
                "how many times the like-interval median a value may reach",
            ),
            p(
                "min-history",
                ParamDefault::Value(3, 0),
                "like-interval history values needed to judge",
            ),
            p(
                "floor",
                ParamDefault::Value(0, 0),
                "values at or below it never spike",
            ),
            p(
                "same-weekday",
                ParamDefault::Value(0, 0),
                "1: like intervals are the same time of week, else of day",
            ),
        ],
    },
    RuleSpec {
        id: "high-low-limits",
        params: &[
            p("high", ParamDefault::Optional, "the highest valid value"),
            p("low", ParamDefault::Optional, "the lowest valid value"),
        ],
    },
    RuleSpec {
        id: "zero-consumption",
        params: &[p(
            "max-zero-run",
            ParamDefault::Computed(ONE_DAY),
            "the most consecutive zero intervals that pass",
        )],
    },
    RuleSpec {
        id: "negative-flow",
        params: &[p(
            "tolerance",
            ParamDefault::Value(0, 0),
            "how far below zero a value may go",
        )],
    },
    RuleSpec {
        id: "register-rollover",
        params: &[
            p(
                "register-max",
                ParamDefault::Optional,
                "the register's highest reading, at its resolution; it wraps to 0 after it",
            ),
            p(
                "max-delta",
                ParamDefault::Computed("a tenth of the modulus"),
                "the largest plausible advance between consecutive values",
            ),
        ],
    },
    RuleSpec {
        id: "stuck-register",
        params: &[p(
            "max-flat-run",
            ParamDefault::Computed(ONE_DAY),
            "the most consecutive equal non-zero values that pass",
        )],
    },
    RuleSpec {
        id: "clock-drift",
        params: &[
            p(
                "max-drift-s",
                ParamDefault::Value(0, 0),
                "how far a stamp may sit off the grid, seconds",
            ),
            GRID_OFFSET,
        ],
    },
    RuleSpec {
        id: "sum-check",
        params: &[
            REGISTER_START,
            REGISTER_END,
            p(
                "tolerance",
                ParamDefault::Optional,
                "the absolute difference that passes",
            ),
            p(
                "tolerance-pct",
                ParamDefault::Computed("1 when tolerance is not given, else 0"),
                "the difference that passes, percent of the register delta",
            ),
        ],
    },
    RuleSpec {
        id: "estimate-linear",
        params: &[WINDOW_START, WINDOW_END, GRID_OFFSET, MAX_GAP],
    },
    RuleSpec {
        id: "estimate-like-day",
        params: &[
            WINDOW_START,
            WINDOW_END,
            GRID_OFFSET,
            p(
                "like-days",
                ParamDefault::Value(4, 0),
                "like days to average",
            ),
            p(
                "same-weekday",
                ParamDefault::Value(1, 0),
                "1: like days are the same weekday, 0: any earlier day",
            ),
            p(
                "max-lookback-days",
                ParamDefault::Value(56, 0),
                "how far back to look for like days",
            ),
            p(
                "min-like-days",
                ParamDefault::Value(1, 0),
                "like days needed for an estimate",
            ),
        ],
    },
    RuleSpec {
        id: "estimate-register-prorate",
        params: &[
            REGISTER_START,
            REGISTER_END,
            WINDOW_START,
            WINDOW_END,
            GRID_OFFSET,
            p(
                "profile",
                ParamDefault::Value(1, 0),
                "1: shares follow the history's time-of-day profile where it covers the gap",
            ),
        ],
    },
];

/// The ids of every rule of the pack.
pub fn rule_ids() -> impl Iterator<Item = &'static str> {
    RULES.iter().map(|r| r.id)
}

/// Runs rule `rule_id` over `series` with `params`: the findings for intervals that do not
/// simply pass, in time order (by rule), or why the rule could not run.
pub fn check(
    rule_id: &str,
    params: &[Param<'_>],
    series: &Series<'_>,
) -> Result<Vec<Finding>, RuleError> {
    let Some(spec) = RULES.iter().find(|r| r.id == rule_id) else {
        return Err(RuleError::BadParameter(format!(
            "unknown rule {rule_id:?} (this pack has {})",
            rule_ids().collect::<Vec<_>>().join(", ")
        )));
    };
    let p = params::Params::new(spec, params)?;
    grid::in_order(series.values, "values")?;
    match spec.id {
        "missing-intervals" => estimate::missing(&p, series),
        "spike" => validate::spike(&p, series),
        "high-low-limits" => validate::limits(&p, series),
        "zero-consumption" => validate::zero_run(&p, series),
        "negative-flow" => validate::negative(&p, series),
        "register-rollover" => validate::rollover(&p, series),
        "stuck-register" => validate::flat_run(&p, series),
        "clock-drift" => validate::clock(&p, series),
        "sum-check" => validate::sum_check(&p, series),
        "estimate-linear" => estimate::linear(&p, series),
        "estimate-like-day" => estimate::like_day(&p, series),
        "estimate-register-prorate" => estimate::prorate(&p, series),
        other => Err(RuleError::BadParameter(format!(
            "rule {other:?} has no implementation"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docs_name_every_rule_and_parameter() {
        let doc = include_str!("lib.rs");
        for r in RULES {
            let row = doc
                .lines()
                .find(|l| l.starts_with(&format!("//! | `{}` |", r.id)))
                .unwrap_or_else(|| panic!("no doc row for {}", r.id));
            for p in r.params {
                assert!(
                    row.contains(&format!("`{}`", p.name)),
                    "{}: {} undocumented",
                    r.id,
                    p.name
                );
                if let ParamDefault::Value(m, s) = p.default {
                    let shown = format!("`{}` ({})", p.name, Quantity::new(m, s));
                    assert!(
                        row.contains(&shown),
                        "{}: default of {} differs",
                        r.id,
                        p.name
                    );
                }
            }
        }
    }

    #[test]
    fn unknown_rules_and_parameters_are_refused() {
        let s = Series {
            interval_s: 900,
            values: &[],
            history: &[],
        };
        assert!(matches!(
            check("nope", &[], &s),
            Err(RuleError::BadParameter(_))
        ));
        let typo = [Param {
            name: "hihg",
            value: Quantity::new(1, 0),
        }];
        assert!(
            matches!(check("high-low-limits", &typo, &s), Err(RuleError::BadParameter(m)) if m.contains("hihg"))
        );
        let twice = [
            Param {
                name: "high",
                value: Quantity::new(1, 0),
            },
            Param {
                name: "high",
                value: Quantity::new(2, 0),
            },
        ];
        assert!(matches!(
            check("high-low-limits", &twice, &s),
            Err(RuleError::BadParameter(_))
        ));
    }

    #[test]
    fn unsorted_values_are_unsuitable() {
        let v = [
            Interval::new(1_800_000, Quantity::new(1, 0)),
            Interval::new(900_000, Quantity::new(1, 0)),
        ];
        let s = Series {
            interval_s: 900,
            values: &v,
            history: &[],
        };
        for id in rule_ids() {
            let params: &[Param<'_>] = match id {
                "high-low-limits" => &[Param {
                    name: "high",
                    value: Quantity::new(1, 0),
                }],
                "sum-check" | "estimate-register-prorate" => &[
                    Param {
                        name: "register-start",
                        value: Quantity::new(0, 0),
                    },
                    Param {
                        name: "register-end",
                        value: Quantity::new(2, 0),
                    },
                ],
                _ => &[],
            };
            assert!(
                matches!(check(id, params, &s), Err(RuleError::Unsuitable(_))),
                "{id}"
            );
        }
    }
}
