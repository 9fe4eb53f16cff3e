//! Hostile inputs: random series and parameters through every rule never panic, and every
//! finding lies on an input timestamp or on the interval grid.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use ami_vee::{Interval, Param, Quality, Quantity, RULES, RuleError, Series, check};
use proptest::prelude::*;
use std::collections::HashSet;

const T0: i64 = 1_704_067_200_000;

fn mantissa() -> impl Strategy<Value = i64> {
    prop_oneof![
        4 => -1000i64..1000,
        1 => Just(0i64),
        1 => Just(i64::MIN),
        1 => Just(i64::MAX),
        1 => any::<i64>(),
    ]
}

fn scale() -> impl Strategy<Value = i8> {
    prop_oneof![6 => -3i8..=3, 1 => any::<i8>()]
}

fn quantity() -> impl Strategy<Value = Quantity> {
    (mantissa(), scale()).prop_map(|(m, s)| Quantity::new(m, s))
}

fn ts() -> impl Strategy<Value = i64> {
    prop_oneof![
        8 => (-3000i64..3000).prop_map(|k| T0 + k * 900_000),
        1 => (-3000i64..3000, -450_000i64..450_000).prop_map(|(k, j)| T0 + k * 900_000 + j),
        1 => any::<i64>(),
        1 => prop_oneof![Just(i64::MIN), Just(i64::MAX), Just(i64::MIN + 1), Just(i64::MAX - 1)],
    ]
}

fn intervals(max: usize) -> impl Strategy<Value = Vec<Interval>> {
    (
        prop::collection::vec((ts(), quantity(), any::<u8>()), 0..max),
        any::<bool>(),
    )
        .prop_map(|(xs, sorted)| {
            let mut v: Vec<Interval> = xs
                .into_iter()
                .map(|(ts, value, q)| Interval {
                    ts,
                    value,
                    quality: Quality(u16::from(q)),
                })
                .collect();
            // Mostly in order, so that the rules get past the order check.
            if sorted {
                v.sort_by_key(|i| i.ts);
                v.dedup_by_key(|i| i.ts);
            }
            v
        })
}

fn param_value(name: &str) -> BoxedStrategy<Quantity> {
    let small = (0i64..200).prop_map(|m| Quantity::new(m, 0)).boxed();
    match name {
        "window-start" | "window-end" => prop_oneof![
            4 => (-3000i64..3000).prop_map(|k| Quantity::new(T0 + k * 900_000, 0)),
            1 => quantity(),
        ]
        .boxed(),
        "estimate" | "same-weekday" | "profile" => {
            prop_oneof![4 => (0i64..2).prop_map(|m| Quantity::new(m, 0)), 1 => quantity()].boxed()
        }
        _ => prop_oneof![4 => small, 1 => quantity()].boxed(),
    }
}

fn params(rule: usize) -> BoxedStrategy<Vec<(&'static str, Quantity)>> {
    let spec = &RULES[rule % RULES.len()];
    let each: Vec<BoxedStrategy<Option<(&'static str, Quantity)>>> = spec
        .params
        .iter()
        .map(|p| {
            let name = p.name;
            prop::option::of(param_value(name).prop_map(move |q| (name, q))).boxed()
        })
        .collect();
    each.prop_map(|xs| xs.into_iter().flatten().collect())
        .boxed()
}

fn interval_s() -> impl Strategy<Value = u32> {
    prop_oneof![8 => Just(900u32), 1 => Just(0u32), 1 => 1u32..100_000, 1 => Just(u32::MAX)]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn rules_never_panic_and_findings_lie_on_inputs_or_the_grid(
        (rule, given) in (0usize..RULES.len()).prop_flat_map(|r| (Just(r), params(r))),
        interval_s in interval_s(),
        values in intervals(120),
        history in intervals(60),
    ) {
        let spec = &RULES[rule];
        let params: Vec<Param<'_>> = given.iter().map(|(name, value)| Param { name, value: *value }).collect();
        let s = Series { interval_s, values: &values, history: &history };
        let Ok(found) = check(spec.id, &params, &s) else { return Ok(()); };
        let inputs: HashSet<i64> = values.iter().map(|v| v.ts).collect();
        let offset = given
            .iter()
            .find(|(n, _)| *n == "grid-offset-s")
            .and_then(|(_, q)| q.rescaled(-3))
            .map_or(0, |q| i128::from(q.mantissa));
        let step = i128::from(interval_s) * 1000;
        for f in &found {
            let on_grid = step > 0 && (i128::from(f.ts) - offset).rem_euclid(step) == 0;
            prop_assert!(
                inputs.contains(&f.ts) || on_grid,
                "{}: finding at {} is neither an input nor a grid timestamp", spec.id, f.ts
            );
        }
    }
}

#[test]
fn huge_and_extreme_series_are_errors_or_findings_never_panics() {
    // A long, clean year of quarter hours with faults sprinkled in.
    let values: Vec<Interval> = (0..35_040i64)
        .filter(|k| k % 1000 != 7)
        .map(|k| {
            let v = match k % 5000 {
                13 => -4,
                17 => 10_000,
                _ => 100 + k % 7,
            };
            Interval::new(T0 + k * 900_000, Quantity::new(v, 0))
        })
        .collect();
    let s = Series {
        interval_s: 900,
        values: &values,
        history: &values,
    };
    for r in RULES {
        let params: &[Param<'_>] = match r.id {
            "high-low-limits" => &[Param {
                name: "high",
                value: Quantity::new(1000, 0),
            }],
            "sum-check" | "estimate-register-prorate" => &[
                Param {
                    name: "register-start",
                    value: Quantity::new(0, 0),
                },
                Param {
                    name: "register-end",
                    value: Quantity::new(4_000_000, 0),
                },
            ],
            _ => &[],
        };
        let _ = check(r.id, params, &s);
    }
    // Extremes at both ends of time and value.
    let extreme = [
        Interval::new(i64::MIN, Quantity::new(i64::MIN, -128)),
        Interval::new(0, Quantity::new(i64::MAX, 127)),
        Interval::new(i64::MAX, Quantity::new(i64::MIN, 127)),
    ];
    for interval_s in [0, 1, 900, u32::MAX] {
        let s = Series {
            interval_s,
            values: &extreme,
            history: &extreme,
        };
        for r in RULES {
            let params = [
                Param {
                    name: "register-start",
                    value: Quantity::new(i64::MIN, 127),
                },
                Param {
                    name: "register-end",
                    value: Quantity::new(i64::MAX, 127),
                },
            ];
            let given: &[Param<'_>] = match r.id {
                "sum-check" | "estimate-register-prorate" => &params,
                "high-low-limits" => &[Param {
                    name: "low",
                    value: Quantity::new(i64::MIN, -128),
                }],
                _ => &[],
            };
            match check(r.id, given, &s) {
                Ok(_) | Err(RuleError::Unsuitable(_)) | Err(RuleError::BadParameter(_)) => {}
            }
        }
    }
}
