//! Every rule natively over the same month of 15-minute data (a gap and a spike planted, four
//! weeks of history), printing intervals per second:
//! `cargo run --release -p ami-vee --example vee_throughput [DAYS]`. The same series through
//! the sandboxed component, next to these native figures, is
//! `cargo run --release -p ami-e2e --example vee_component_throughput`.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use ami_vee::{Interval, Param, Quantity, Series, check, rule_ids};
use std::time::{Duration, Instant};

const T0: i64 = 1_704_067_200_000;
const Q: i64 = 900_000;

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

fn main() {
    let days: i64 = std::env::args()
        .nth(1)
        .map_or(30, |a| a.parse().expect("DAYS"));
    let n = days * 96;
    let iv = |k: i64, v: i64| Interval::new(T0 + k * Q, Quantity::new(v, 0));
    let values: Vec<Interval> = (1..=n)
        .filter(|k| !(200..204).contains(k))
        .map(|k| iv(k, if k == 500 { wh(k) * 10 } else { wh(k) }))
        .collect();
    let history: Vec<Interval> = (1 - 28 * 96..=0).map(|k| iv(k, wh(k))).collect();
    let series = Series {
        interval_s: 900,
        values: &values,
        history: &history,
    };
    // The register of the same meter, for register-rollover: 5 digits, so it wraps.
    let mut reading = 0i64;
    let register: Vec<Interval> = (1..=n)
        .map(|k| {
            reading = (reading + wh(k)) % 100_000;
            iv(k, reading)
        })
        .collect();
    let registers = Series {
        interval_s: 900,
        values: &register,
        history: &[],
    };
    let total: i64 = (1..=n).map(wh).sum();
    println!(
        "{} values ({days} days of 15-minute data, a gap, a spike), {} history",
        values.len(),
        history.len()
    );
    println!("{:<27} {:>9} {:>16}", "rule", "findings", "native iv/s");
    for rule in rule_ids() {
        let params: Vec<Param<'_>> = match rule {
            "high-low-limits" => vec![("high", 400), ("low", 0)],
            "sum-check" | "estimate-register-prorate" => {
                vec![("register-start", 0), ("register-end", total)]
            }
            "stuck-register" => vec![("max-flat-run", 8)],
            "register-rollover" => vec![("register-max", 99_999)],
            _ => vec![],
        }
        .into_iter()
        .map(|(name, v)| Param {
            name,
            value: Quantity::new(v, 0),
        })
        .collect();
        let s = if rule == "register-rollover" {
            &registers
        } else {
            &series
        };
        let found = check(rule, &params, s).expect("rule").len();
        let start = Instant::now();
        let mut done = 0usize;
        while start.elapsed() < Duration::from_millis(500) {
            let r = check(rule, &params, std::hint::black_box(s));
            done += std::hint::black_box(r).map_or(0, |_| s.values.len());
        }
        let rate = done as f64 / start.elapsed().as_secs_f64();
        println!("{:<27} {:>9} {:>16.0}", rule, found, rate);
    }
}
