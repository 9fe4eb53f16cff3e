//! Helpers of the rule tests: a time base, series builders and finding extractors.

use crate::{
    EstimationMethod, Finding, Interval, Param, Quantity, RuleError, Series, Verdict, check,
};

/// Monday 2024-01-01 00:00 UTC.
pub const T0: i64 = 1_704_067_200_000;
/// 15 minutes.
pub const Q: i64 = 900_000;

/// The end of the `k`-th 15-minute interval after `T0`.
pub fn at(k: i64) -> i64 {
    T0 + k * Q
}

/// A whole quantity.
pub fn n(m: i64) -> Quantity {
    Quantity::new(m, 0)
}

/// A parameter.
pub fn p(name: &'static str, value: Quantity) -> Param<'static> {
    Param { name, value }
}

/// 15-minute intervals from `(k, value)`.
pub fn ivs(points: &[(i64, Quantity)]) -> Vec<Interval> {
    points
        .iter()
        .map(|(k, v)| Interval::new(at(*k), *v))
        .collect()
}

/// Runs a rule over 15-minute values and history.
pub fn run(
    rule: &str,
    params: &[Param<'_>],
    values: &[Interval],
    history: &[Interval],
) -> Result<Vec<Finding>, RuleError> {
    check(
        rule,
        params,
        &Series {
            interval_s: 900,
            values,
            history,
        },
    )
}

/// `(ts, reason)` of every finding, failing the test on anything but `fail`.
pub fn fails(found: &[Finding]) -> Vec<(i64, String)> {
    found
        .iter()
        .map(|f| match &f.verdict {
            Verdict::Fail(why) => (f.ts, why.clone()),
            other => panic!("{}: expected a failure, got {other:?}", f.ts),
        })
        .collect()
}

/// The timestamps of the failures.
pub fn fail_ts(found: &[Finding]) -> Vec<i64> {
    fails(found).into_iter().map(|(t, _)| t).collect()
}

/// `(ts, value)` of every estimate by `method`, failing the test on anything else.
pub fn estimates(found: &[Finding], method: EstimationMethod) -> Vec<(i64, Quantity)> {
    found
        .iter()
        .map(|f| match &f.verdict {
            Verdict::Estimate(q, m) if *m == method => (f.ts, *q),
            other => panic!("{}: expected a {method:?} estimate, got {other:?}", f.ts),
        })
        .collect()
}
