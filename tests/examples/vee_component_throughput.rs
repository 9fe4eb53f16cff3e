//! The standard VEE rules natively (`ami-vee`) and as the sandboxed `standard-vee` component,
//! on the same series, in one run: intervals per second of each, per rule, and the ratio.
//!
//! `cargo xtask components` (or `cargo build --profile component --target wasm32-wasip2 -p
//! ami-vee-standard`) first, then `cargo run --release -p ami-e2e --example vee_component_throughput
//! [DAYS] [SECONDS]`: DAYS of 15-minute values under review (default 30) with four weeks of
//! history, SECONDS per rule (default 1) split over alternating slices of the two, each figure
//! the median slice, so that load from elsewhere falls on both alike.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use ami_plugin_host::bindings::types::{Obis, Quality, Quantity, Unit};
use ami_plugin_host::bindings::vee::exports::ami::plugin::validate as vw;
use ami_plugin_host::{MemoryKeyStore, PluginKind};
use std::sync::Arc;
use std::time::{Duration, Instant};

const T0: i64 = 1_704_067_200_000;
const Q: i64 = 900_000;
const ROUNDS: usize = 15;

/// A household-like Wh value per quarter hour, integer maths only.
fn wh(k: i64) -> i64 {
    let minute = (k * 15).rem_euclid(1440);
    let evening = if (1020..1320).contains(&minute) {
        150
    } else {
        0
    };
    let morning = if (390..510).contains(&minute) { 80 } else { 0 };
    45 + evening + morning + (k.wrapping_mul(2_654_435_761) >> 9).rem_euclid(9)
}

/// Items per second of `run` over one time slice.
fn slice_rate(slice: Duration, run: &mut impl FnMut() -> usize) -> f64 {
    let start = Instant::now();
    let mut n = 0usize;
    while start.elapsed() < slice {
        n += run();
    }
    n as f64 / start.elapsed().as_secs_f64()
}

/// The median rates of `f` and `g`, measured in alternating slices.
fn median_rate(
    secs: f64,
    mut f: impl FnMut() -> usize,
    mut g: impl FnMut() -> usize,
) -> (f64, f64) {
    let slice = Duration::from_secs_f64(secs / ROUNDS as f64 / 2.0);
    let (mut a, mut b) = (Vec::new(), Vec::new());
    let _ = (f(), g()); // warm up
    for _ in 0..ROUNDS {
        a.push(slice_rate(slice, &mut f));
        b.push(slice_rate(slice, &mut g));
    }
    let mid = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    (mid(a), mid(b))
}

fn main() {
    let mut args = std::env::args().skip(1);
    let days: i64 = args.next().map_or(30, |a| a.parse().expect("DAYS"));
    let secs: f64 = args.next().map_or(1.0, |a| a.parse().expect("SECONDS"));
    let n = days * 96;

    // Values with a one-hour gap and a spike; history: the four weeks before.
    let iv = |k: i64, v: i64| vw::Interval {
        ts: T0 + k * Q,
        value: Quantity {
            mantissa: v,
            scale: 0,
        },
        quality: Quality::empty(),
    };
    let values: Vec<vw::Interval> = (1..=n)
        .filter(|k| !(200..204).contains(k))
        .map(|k| iv(k, if k == 500 { wh(k) * 10 } else { wh(k) }))
        .collect();
    let history: Vec<vw::Interval> = (1 - 28 * 96..=0).map(|k| iv(k, wh(k))).collect();
    let series = vw::Series {
        meter: "bench".into(),
        register: Obis {
            a: 1,
            b: 0,
            c: 1,
            d: 8,
            e: 0,
            f: 255,
        },
        unit: Unit::WattHour,
        interval_s: 900,
        values,
        history,
    };
    // The register of the same meter, for register-rollover: 5 digits, so it wraps.
    let mut reading = 0i64;
    let registers = vw::Series {
        values: (1..=n)
            .map(|k| {
                reading = (reading + wh(k)) % 100_000;
                iv(k, reading)
            })
            .collect(),
        history: vec![],
        ..series.clone()
    };
    let total: i64 = (1..=n).map(wh).sum();

    let dir = tempfile::tempdir().unwrap();
    let key = ami_e2e::vendor();
    let host = ami_e2e::host(&[&key], Arc::new(MemoryKeyStore::new()));
    host.install_dir(&ami_e2e::shipped_package(
        dir.path(),
        "vee/standard",
        "ami-vee-standard",
        &key,
    ))
    .unwrap();
    let plugin = host.plugin_for_rule(PluginKind::VeeRule, "spike").unwrap();

    // The native side gets the same data in ami-vee's types, converted once.
    let conv = |i: &vw::Interval| ami_vee::Interval {
        ts: i.ts,
        value: ami_vee::Quantity::new(i.value.mantissa, i.value.scale),
        quality: ami_vee::Quality::VALID,
    };
    let nvalues: Vec<ami_vee::Interval> = series.values.iter().map(conv).collect();
    let nhistory: Vec<ami_vee::Interval> = series.history.iter().map(conv).collect();
    let nseries = ami_vee::Series {
        interval_s: 900,
        values: &nvalues,
        history: &nhistory,
    };
    let nregister: Vec<ami_vee::Interval> = registers.values.iter().map(conv).collect();
    let nregisters = ami_vee::Series {
        interval_s: 900,
        values: &nregister,
        history: &[],
    };

    println!(
        "{} values ({} days of 15-minute data, a gap, a spike), {} history; median of {ROUNDS} slices",
        series.values.len(),
        days,
        series.history.len()
    );
    println!(
        "{:<27} {:>9} {:>16} {:>16} {:>7}",
        "rule", "findings", "native iv/s", "wasm iv/s", "ratio"
    );
    for rule in ami_vee::rule_ids() {
        let params: Vec<(&str, i64)> = match rule {
            "high-low-limits" => vec![("high", 400), ("low", 0)],
            "sum-check" | "estimate-register-prorate" => {
                vec![("register-start", 0), ("register-end", total)]
            }
            "stuck-register" => vec![("max-flat-run", 8)],
            "register-rollover" => vec![("register-max", 99_999)],
            _ => vec![],
        };
        let wparams: Vec<vw::Parameter> = params
            .iter()
            .map(|(name, v)| vw::Parameter {
                name: (*name).into(),
                value: Quantity {
                    mantissa: *v,
                    scale: 0,
                },
            })
            .collect();
        let nparams: Vec<ami_vee::Param<'_>> = params
            .iter()
            .map(|(name, v)| ami_vee::Param {
                name,
                value: ami_vee::Quantity::new(*v, 0),
            })
            .collect();
        let (series, nseries) = if rule == "register-rollover" {
            (&registers, &nregisters)
        } else {
            (&series, &nseries)
        };
        let native = ami_vee::check(rule, &nparams, nseries).expect("native rule");
        let wasm = plugin
            .check(rule, &wparams, series)
            .expect("component call")
            .expect("component rule");
        assert_eq!(
            native.len(),
            wasm.len(),
            "{rule}: native and component disagree"
        );
        let len = nseries.values.len();
        let (native_rate, wasm_rate) = median_rate(
            secs,
            || {
                std::hint::black_box(ami_vee::check(
                    rule,
                    &nparams,
                    std::hint::black_box(nseries),
                ))
                .map_or(0, |_| len)
            },
            || {
                plugin
                    .check(rule, &wparams, std::hint::black_box(series))
                    .ok()
                    .and_then(Result::ok)
                    .map_or(0, |_| len)
            },
        );
        println!(
            "{:<27} {:>9} {:>16.0} {:>16.0} {:>6.2}x",
            rule,
            native.len(),
            native_rate,
            wasm_rate,
            wasm_rate / native_rate
        );
    }
}
