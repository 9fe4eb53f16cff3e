//! The standard VEE rule pack (`standard-vee`) through the plugin host, on a simulated week of
//! 15-minute data with planted faults: each rule finds exactly what was planted, the estimators
//! fill the gap, and every rule's findings through the sandbox equal the native crate's.

use ami_e2e::{host, shipped_package, vendor};
use ami_plugin_host::bindings::types::{Obis, Quality, Quantity, Unit};
use ami_plugin_host::bindings::vee::exports::ami::plugin::validate as vw;
use ami_plugin_host::{MemoryKeyStore, Plugin, PluginKind};
use std::sync::Arc;

/// Monday 2024-01-08 00:00 UTC.
const WEEK: i64 = 1_704_672_000_000;
const Q: i64 = 900_000;
const DAY: i64 = 96;
/// The interval that is 20 Wh negative.
const NEGATIVE: i64 = 500;
/// The interval ten times too high (a night interval: about 500 Wh).
const SPIKE: i64 = 300;
/// The intervals that never arrived.
const GAP: [i64; 3] = [100, 101, 102];
/// The intervals where the meter repeated one reading.
const FLAT: std::ops::RangeInclusive<i64> = 440..=451;
/// The 8-digit Wh register wraps after this interval.
const WRAP_AFTER: i64 = 336;
const REGISTER_MAX: i64 = 99_999_999;

const IMPORT: Obis = Obis {
    a: 1,
    b: 0,
    c: 1,
    d: 8,
    e: 0,
    f: 255,
};

fn at(k: i64) -> i64 {
    WEEK + k * Q
}

fn q(mantissa: i64) -> Quantity {
    Quantity { mantissa, scale: 0 }
}

/// The simulator's household shape as Wh per quarter hour, with a little deterministic noise
/// so that no two neighbours repeat by chance.
fn clean(k: i64) -> i64 {
    let wh = ami_sim::shape::household_w(at(k), 1.0) * 0.25;
    let noise = (k.wrapping_mul(2_654_435_761) >> 9).rem_euclid(9);
    wh.round() as i64 + noise
}

fn iv(k: i64, v: i64) -> vw::Interval {
    vw::Interval {
        ts: at(k),
        value: q(v),
        quality: Quality::empty(),
    }
}

/// The week under review (intervals 1..=672) with the planted faults, and four clean weeks
/// of history before it.
fn week() -> vw::Series {
    let values = (1..=7 * DAY)
        .filter(|k| !GAP.contains(k))
        .map(|k| {
            let v = match k {
                SPIKE => clean(k) * 10,
                NEGATIVE => -20,
                k if FLAT.contains(&k) => clean(*FLAT.start()),
                k => clean(k),
            };
            iv(k, v)
        })
        .collect();
    let history = (1 - 28 * DAY..=0).map(|k| iv(k, clean(k))).collect();
    vw::Series {
        meter: "sim-0001".into(),
        register: IMPORT,
        unit: Unit::WattHour,
        interval_s: 900,
        values,
        history,
    }
}

/// The meter's cumulative register at the end of interval `k` (0 = the week's start): it
/// counts the true energy and wraps to 0 after `REGISTER_MAX` at interval `WRAP_AFTER`.
fn register(k: i64) -> i64 {
    let before_wrap: i64 = (1..=WRAP_AFTER).map(clean).sum();
    let start = REGISTER_MAX - before_wrap + 1 - 50;
    let advanced: i64 = (1..=k).map(clean).sum();
    (start + advanced).rem_euclid(REGISTER_MAX + 1)
}

fn param(name: &str, mantissa: i64) -> vw::Parameter {
    vw::Parameter {
        name: name.into(),
        value: q(mantissa),
    }
}

fn run(plugin: &Plugin, rule: &str, params: &[vw::Parameter], s: &vw::Series) -> Vec<vw::Finding> {
    plugin
        .check(rule, params, s)
        .unwrap_or_else(|e| panic!("{rule}: call failed: {e}"))
        .unwrap_or_else(|e| panic!("{rule}: rule error {e:?}"))
}

fn fails(rule: &str, found: &[vw::Finding]) -> Vec<i64> {
    found
        .iter()
        .map(|f| match &f.verdict {
            vw::Verdict::Fail(_) => f.ts,
            other => panic!("{rule}: expected failures, got {other:?} at {}", f.ts),
        })
        .collect()
}

fn estimates(found: &[vw::Finding], method: vw::EstimationMethod) -> Vec<(i64, i64)> {
    found
        .iter()
        .map(|f| match &f.verdict {
            vw::Verdict::Estimate((v, m)) if *m == method && v.scale == 0 => (f.ts, v.mantissa),
            other => panic!("expected a {method:?} estimate in Wh, got {other:?}"),
        })
        .collect()
}

/// The same call natively, converted to the WIT types.
fn native(
    rule: &str,
    params: &[vw::Parameter],
    s: &vw::Series,
) -> Result<Vec<vw::Finding>, String> {
    let conv = |i: &vw::Interval| ami_vee::Interval {
        ts: i.ts,
        value: ami_vee::Quantity::new(i.value.mantissa, i.value.scale),
        quality: ami_plugin_host::convert::quality(i.quality),
    };
    let values: Vec<_> = s.values.iter().map(conv).collect();
    let history: Vec<_> = s.history.iter().map(conv).collect();
    let params: Vec<_> = params
        .iter()
        .map(|p| ami_vee::Param {
            name: &p.name,
            value: ami_vee::Quantity::new(p.value.mantissa, p.value.scale),
        })
        .collect();
    let series = ami_vee::Series {
        interval_s: s.interval_s,
        values: &values,
        history: &history,
    };
    let found = ami_vee::check(rule, &params, &series).map_err(|e| e.to_string())?;
    Ok(found
        .into_iter()
        .map(|f| vw::Finding {
            ts: f.ts,
            verdict: match f.verdict {
                ami_vee::Verdict::Pass => vw::Verdict::Pass,
                ami_vee::Verdict::Fail(w) => vw::Verdict::Fail(w),
                ami_vee::Verdict::Estimate(v, m) => vw::Verdict::Estimate((
                    Quantity {
                        mantissa: v.mantissa,
                        scale: v.scale,
                    },
                    match m {
                        ami_vee::EstimationMethod::LinearInterpolation => {
                            vw::EstimationMethod::LinearInterpolation
                        }
                        ami_vee::EstimationMethod::LikeDayProfile => {
                            vw::EstimationMethod::LikeDayProfile
                        }
                        ami_vee::EstimationMethod::RegisterProrate => {
                            vw::EstimationMethod::RegisterProrate
                        }
                        ami_vee::EstimationMethod::ZeroFill => vw::EstimationMethod::ZeroFill,
                    },
                )),
            },
        })
        .collect())
}

fn standard_vee(dir: &std::path::Path) -> (ami_plugin_host::Host, Arc<Plugin>) {
    let key = vendor();
    let host = host(&[&key], Arc::new(MemoryKeyStore::new()));
    let plugin = host
        .install_dir(&shipped_package(
            dir,
            "vee/standard",
            "ami-vee-standard",
            &key,
        ))
        .unwrap();
    (host, plugin)
}

#[test]
fn integration_vee_standard_pack_serves_every_rule_of_the_crate() {
    let dir = tempfile::tempdir().unwrap();
    let (host, plugin) = standard_vee(dir.path());
    let ids: Vec<&str> = ami_vee::rule_ids().collect();
    assert_eq!(
        plugin.manifest().rules,
        ids,
        "plugin.toml lists the crate's rules"
    );
    for id in ids {
        let found = host.plugin_for_rule(PluginKind::VeeRule, id).unwrap();
        assert_eq!(found.manifest().name, "standard-vee");
    }
}

#[test]
fn integration_vee_standard_week_with_planted_faults() {
    let dir = tempfile::tempdir().unwrap();
    let (_host, vee) = standard_vee(dir.path());
    let s = week();
    assert_eq!(s.values.len(), 7 * 96 - GAP.len());

    // Validation: each rule fires on its planted fault and nowhere else.
    let gap: Vec<i64> = GAP.iter().map(|k| at(*k)).collect();
    assert_eq!(
        fails("missing", &run(&vee, "missing-intervals", &[], &s)),
        gap
    );
    assert_eq!(
        fails("spike", &run(&vee, "spike", &[], &s)),
        vec![at(SPIKE)]
    );
    // The evening peak stays under 330 Wh; the spike is ten times a night value.
    let limits = [param("high", 400), param("low", 0)];
    assert_eq!(
        fails("limits", &run(&vee, "high-low-limits", &limits, &s)),
        vec![at(SPIKE), at(NEGATIVE)]
    );
    assert_eq!(
        fails("negative", &run(&vee, "negative-flow", &[], &s)),
        vec![at(NEGATIVE)]
    );
    let flat: Vec<i64> = FLAT.map(at).collect();
    assert_eq!(
        fails(
            "stuck",
            &run(&vee, "stuck-register", &[param("max-flat-run", 8)], &s)
        ),
        flat
    );
    // Twelve equal readings pass a limit of twelve: the rule fires on the run, not on
    // repeats as such.
    assert!(run(&vee, "stuck-register", &[param("max-flat-run", 12)], &s).is_empty());
    assert!(run(&vee, "zero-consumption", &[], &s).is_empty());
    assert!(run(&vee, "clock-drift", &[], &s).is_empty());

    // The register: one rollover, recognised as a wrap, not a decrease.
    let readings = vw::Series {
        values: (1..=7 * DAY).map(|k| iv(k, register(k))).collect(),
        history: vec![],
        ..s.clone()
    };
    let found = run(
        &vee,
        "register-rollover",
        &[param("register-max", REGISTER_MAX)],
        &readings,
    );
    assert_eq!(
        found,
        vec![vw::Finding {
            ts: at(WRAP_AFTER + 1),
            verdict: vw::Verdict::Pass
        }]
    );
    // Without the register's size the wrap is a decrease.
    assert_eq!(
        fails("rollover", &run(&vee, "register-rollover", &[], &readings)),
        vec![at(WRAP_AFTER + 1)]
    );

    // The interval sum against the register's advance over the week (across the wrap).
    let advance: i64 = (1..=7 * DAY).map(clean).sum();
    let summed: i64 = s.values.iter().map(|v| v.value.mantissa).sum();
    // Within the default 1 % the faults would cancel out; 10 Wh is the tolerance here.
    let sum_params = [
        param("register-start", 0),
        param("register-end", advance),
        param("tolerance", 10),
    ];
    let found = run(&vee, "sum-check", &sum_params, &s);
    assert_eq!(fails("sum", &found), vec![at(7 * DAY)]);
    assert!(
        matches!(&found[0].verdict, vw::Verdict::Fail(why)
            if why.contains(&format!("by {}", summed - advance))),
        "{found:?}"
    );
    // A clean week passes.
    let clean_week = vw::Series {
        values: (1..=7 * DAY).map(|k| iv(k, clean(k))).collect(),
        ..s.clone()
    };
    assert!(run(&vee, "sum-check", &sum_params, &clean_week).is_empty());

    // Estimation of the gap, three ways.
    let linear = estimates(
        &run(&vee, "missing-intervals", &[param("estimate", 1)], &s),
        vw::EstimationMethod::LinearInterpolation,
    );
    let (before, after) = (clean(GAP[0] - 1), clean(GAP[2] + 1));
    let expect: Vec<(i64, i64)> = (1..=3)
        .map(|j| {
            // A quarter of the rise per interval, rounded half away from zero.
            let num = (after - before) * j;
            (at(GAP[0] + j - 1), before + (num + 2 * num.signum()) / 4)
        })
        .collect();
    assert_eq!(linear, expect);
    assert_eq!(
        estimates(
            &run(&vee, "estimate-linear", &[], &s),
            vw::EstimationMethod::LinearInterpolation
        ),
        expect
    );

    let like = estimates(
        &run(&vee, "estimate-like-day", &[], &s),
        vw::EstimationMethod::LikeDayProfile,
    );
    let expect: Vec<(i64, i64)> = GAP
        .iter()
        .map(|k| {
            let total: i64 = (1..=4).map(|w| clean(k - 7 * DAY * w)).sum();
            (at(*k), (total + 2) / 4)
        })
        .collect();
    assert_eq!(like, expect);

    let prorate = estimates(
        &run(
            &vee,
            "estimate-register-prorate",
            &[
                param("register-start", register(GAP[0] - 1)),
                param("register-end", register(GAP[2])),
                param("window-start", at(GAP[0])),
                param("window-end", at(GAP[2])),
            ],
            &s,
        ),
        vw::EstimationMethod::RegisterProrate,
    );
    assert_eq!(
        prorate.iter().map(|(t, _)| *t).collect::<Vec<_>>(),
        GAP.map(at)
    );
    // The shares add up to the register's advance over the gap, exactly.
    let shared: i64 = prorate.iter().map(|(_, v)| v).sum();
    assert_eq!(shared, GAP.iter().map(|k| clean(*k)).sum::<i64>());

    // Through the sandbox and natively, every rule says the same.
    let cases: Vec<(&str, Vec<vw::Parameter>, &vw::Series)> = vec![
        ("missing-intervals", vec![param("estimate", 1)], &s),
        ("spike", vec![], &s),
        ("high-low-limits", limits.to_vec(), &s),
        ("zero-consumption", vec![param("max-zero-run", 2)], &s),
        ("negative-flow", vec![], &s),
        (
            "register-rollover",
            vec![param("register-max", REGISTER_MAX)],
            &readings,
        ),
        ("stuck-register", vec![param("max-flat-run", 8)], &s),
        ("clock-drift", vec![], &s),
        ("sum-check", sum_params.to_vec(), &s),
        ("estimate-linear", vec![], &s),
        ("estimate-like-day", vec![], &s),
        (
            "estimate-register-prorate",
            vec![param("register-start", 0), param("register-end", advance)],
            &s,
        ),
    ];
    assert_eq!(cases.len(), ami_vee::RULES.len());
    for (rule, params, series) in cases {
        assert_eq!(
            Ok(run(&vee, rule, &params, series)),
            native(rule, &params, series),
            "{rule}"
        );
    }

    // The rules' errors cross the boundary typed.
    assert!(matches!(
        vee.check("spike", &[param("factr", 3)], &s).unwrap(),
        Err(vw::RuleError::BadParameter(m)) if m.contains("factr")
    ));
    let mut unsorted = s.clone();
    unsorted.values.swap(0, 1);
    assert!(matches!(
        vee.check("missing-intervals", &[], &unsorted).unwrap(),
        Err(vw::RuleError::Unsuitable(_))
    ));
    let zero = vw::Series {
        interval_s: 0,
        ..s.clone()
    };
    assert!(matches!(
        vee.check("clock-drift", &[], &zero).unwrap(),
        Err(vw::RuleError::Unsuitable(_))
    ));
}
