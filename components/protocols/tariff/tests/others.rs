//! Tiered, demand and net-metering bills worked out by hand, and the errors every tariff shares:
//! bad parameters and missing data.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use ami_domain::Obis;
use ami_tariff::example::{MARCH_END, MARCH_START, march_calendar, steady_usage, tou_params};
use ami_tariff::{Calendar, Parameter, TariffError, Usage, compute};
use common::*;

fn tiers() -> Vec<Parameter> {
    vec![
        p("interval-minutes", "60"),
        p("tier.1.up-to", "100"),
        p("tier.1.price", "0.10"),
        p("tier.2.up-to", "300"),
        p("tier.2.price", "0.15"),
        p("tier.3.price", "0.20"),
    ]
}

/// Ten hours of `kwh_per_hour` kWh each, from midnight UTC on 1 March 2026.
fn ten_hours(register: Obis, wh_per_hour: i64) -> (i64, i64, Vec<Usage>) {
    let (start, end) = (utc(2026, 3, 1, 0, 0), utc(2026, 3, 1, 10, 0));
    (
        start,
        end,
        series(register, start, end, 60, |_| wh_per_hour),
    )
}

fn tiered(wh_per_hour: i64) -> ami_tariff::Bill {
    let (start, end, usage) = ten_hours(IMPORT, wh_per_hour);
    compute("tiered", &tiers(), &Calendar::default(), start, end, &usage).unwrap()
}

#[test]
fn tiers_split_the_total_at_their_bounds() {
    // 350 kWh: 100 x 0.10 + 200 x 0.15 + 50 x 0.20 = 10.00 + 30.00 + 10.00 = 50.00
    let bill = tiered(35_000);
    assert_eq!(det(&bill, "kwh.import"), d("350"));
    assert_eq!(det(&bill, "kwh.import.tier.1"), d("100"));
    assert_eq!(det(&bill, "kwh.import.tier.2"), d("200"));
    assert_eq!(det(&bill, "kwh.import.tier.3"), d("50"));
    assert_eq!(amount(&bill, "kwh.import.tier.3"), d("10.00"));
    assert_eq!(bill.total, d("50.00"));
    assert_eq!(
        bill.lines[1].description,
        "energy in tier 2 (up to 300 kWh)"
    );

    // Exactly at the second bound: tier 3 is not reached. 10.00 + 30.00
    let bill = tiered(30_000);
    assert_eq!(bill.lines.len(), 2);
    assert_eq!(bill.total, d("40.00"));

    // Within the first tier only: 50 x 0.10
    let bill = tiered(5_000);
    assert_eq!(bill.lines.len(), 1);
    assert_eq!(bill.total, d("5.00"));

    // One Wh over the first bound: 0.001 kWh x 0.15 = 0.00015 -> 0.00.
    let bill = tiered(10_000);
    assert_eq!(bill.total, d("10.00"));
    let (start, end, mut usage) = ten_hours(IMPORT, 10_000);
    usage[0].value = q(10_001, 0);
    let bill = compute("tiered", &tiers(), &Calendar::default(), start, end, &usage).unwrap();
    assert_eq!(det(&bill, "kwh.import.tier.2"), d("0.001"));
    assert_eq!(amount(&bill, "kwh.import.tier.2"), d("0.00"));
}

#[test]
fn tier_parameters_are_checked() {
    let (start, end, usage) = ten_hours(IMPORT, 1000);
    let run = |params: &[Parameter]| {
        compute("tiered", params, &Calendar::default(), start, end, &usage).unwrap_err()
    };
    let mut open_last = tiers();
    open_last.push(p("tier.3.up-to", "500"));
    assert!(matches!(run(&open_last), TariffError::BadParameter(m) if m.contains("tier.3.up-to")));
    let no_bound: Vec<Parameter> = tiers()
        .into_iter()
        .filter(|x| x.name != "tier.1.up-to")
        .collect();
    assert!(
        matches!(run(&no_bound), TariffError::BadParameter(m) if m == "parameter tier.1.up-to is missing")
    );
    let mut falling = tiers();
    falling[3] = p("tier.2.up-to", "50");
    assert!(
        matches!(run(&falling), TariffError::BadParameter(m) if m.contains("tier.2.up-to must be above"))
    );
    let mut skipped = tiers();
    skipped.push(p("tier.5.price", "1"));
    assert!(
        matches!(run(&skipped), TariffError::BadParameter(m) if m.contains("tier.4.price is missing"))
    );
}

#[test]
fn demand_peak_and_when_from_15_minute_intervals() {
    // 18 March 2026 UTC: 100 Wh (0.4 kW) per quarter, but 750 Wh (3 kW) in the quarters ending
    // 12:15 and 16:00; the earlier of equal peaks counts.
    let (start, end) = (utc(2026, 3, 18, 0, 0), utc(2026, 3, 19, 0, 0));
    let peak1 = utc(2026, 3, 18, 12, 15);
    let peak2 = utc(2026, 3, 18, 16, 0);
    let mut usage = series(IMPORT, start, end, 15, |_| 100);
    for u in &mut usage {
        if u.ts == peak1 || u.ts == peak2 {
            u.value = q(750, 0);
        }
    }
    let params = [p("energy.price", "0.20"), p("demand.price", "12.50")];
    let bill = compute("demand", &params, &Calendar::default(), start, end, &usage).unwrap();
    // Energy 94 x 100 + 2 x 750 = 10 900 Wh = 10.9 kWh x 0.20 = 2.18
    // Demand 750 Wh in 15 min = 3 kW x 12.50 = 37.50; total 39.68
    assert_eq!(det(&bill, "kwh.import"), d("10.9"));
    assert_eq!(det(&bill, "kw.max-demand"), d("3"));
    let peak = bill
        .determinants
        .iter()
        .find(|x| x.name == "kw.max-demand")
        .unwrap();
    assert_eq!(peak.at, peak1);
    assert_eq!(peak.register, Obis::new(1, 0, 1, 6, 0, 255));
    assert_eq!(amount(&bill, "kw.max-demand"), d("37.50"));
    assert_eq!(bill.total, d("39.68"));
}

#[test]
fn sliding_demand_over_5_minute_data() {
    // One hour of 5-minute data: 300 Wh in the 5th, 6th and 7th intervals (ending 00:25,
    // 00:30, 00:35), nothing else. Fixed quarters would see at most 600 Wh (00:15-00:30) =
    // 2.4 kW; the sliding 15-minute window 00:20-00:35 holds 900 Wh = 3.6 kW, ending 00:35.
    let (start, end) = (utc(2026, 3, 18, 0, 0), utc(2026, 3, 18, 1, 0));
    let usage = series(IMPORT, start, end, 5, |i| {
        if (4..=6).contains(&i) { 300 } else { 0 }
    });
    let mut params = vec![
        p("interval-minutes", "5"),
        p("energy.price", "0.20"),
        p("demand.price", "10"),
        p("demand.sub-intervals", "3"),
    ];
    let bill = compute("demand", &params, &Calendar::default(), start, end, &usage).unwrap();
    assert_eq!(det(&bill, "kw.max-demand"), d("3.6"));
    let peak = bill
        .determinants
        .iter()
        .find(|x| x.name == "kw.max-demand")
        .unwrap();
    assert_eq!(peak.at, utc(2026, 3, 18, 0, 35));
    // 0.9 kWh x 0.20 = 0.18; 3.6 kW x 10 = 36.00
    assert_eq!(bill.total, d("36.18"));
    assert_eq!(bill.lines[1].description, "maximum 15-minute demand");

    // A 45-minute window does not divide the hour.
    params[3] = p("demand.sub-intervals", "9");
    assert!(matches!(
        compute("demand", &params, &Calendar::default(), start, end, &usage),
        Err(TariffError::BadParameter(m)) if m.contains("45-minute window")
    ));
}

/// Ten hours with 10 kWh import and 15 kWh export each hour.
fn import_export(import_wh: i64, export_wh: i64) -> (i64, i64, Vec<Usage>) {
    let (start, end, mut usage) = ten_hours(IMPORT, import_wh);
    usage.extend(ten_hours(EXPORT, export_wh).2);
    (start, end, usage)
}

#[test]
fn net_metering_with_export_above_import() {
    let (start, end, usage) = import_export(10_000, 15_000);
    let params = [
        p("interval-minutes", "60"),
        p("import.price", "0.25"),
        p("export.price", "0.08"),
    ];
    let bill = compute(
        "net-metering",
        &params,
        &Calendar::default(),
        start,
        end,
        &usage,
    )
    .unwrap();
    // Import 100 kWh x 0.25 = 25.00; export 150 kWh x -0.08 = -12.00; total 13.00.
    assert_eq!(det(&bill, "kwh.import"), d("100"));
    assert_eq!(det(&bill, "kwh.export"), d("150"));
    assert_eq!(det(&bill, "kwh.net"), d("-50"));
    assert_eq!(amount(&bill, "kwh.export"), d("-12.00"));
    assert_eq!(bill.lines[1].rate, d("-0.08"));
    assert_eq!(bill.total, d("13.00"));

    // Netting: net -50 kWh, with 20 kWh carried in: nothing to pay, 70 kWh carried out.
    let netting = [
        p("interval-minutes", "60"),
        p("import.price", "0.25"),
        p("netting", "1"),
        p("carry-in.kwh", "20"),
    ];
    let bill = compute(
        "net-metering",
        &netting,
        &Calendar::default(),
        start,
        end,
        &usage,
    )
    .unwrap();
    assert_eq!(det(&bill, "kwh.billed"), d("0"));
    assert_eq!(det(&bill, "kwh.carry-out"), d("70"));
    assert_eq!(bill.total, d("0.00"));

    // Import above export: net 50 kWh less 20 carried in = 30 kWh x 0.25 = 7.50.
    let (start, end, usage) = import_export(15_000, 10_000);
    let bill = compute(
        "net-metering",
        &netting,
        &Calendar::default(),
        start,
        end,
        &usage,
    )
    .unwrap();
    assert_eq!(det(&bill, "kwh.net"), d("50"));
    assert_eq!(det(&bill, "kwh.billed"), d("30"));
    assert_eq!(det(&bill, "kwh.carry-out"), d("0"));
    assert_eq!(bill.total, d("7.50"));

    // Export credit goes with netting = 0 only.
    let mut both = netting.to_vec();
    both.push(p("export.price", "0.08"));
    assert!(matches!(
        compute("net-metering", &both, &Calendar::default(), start, end, &usage),
        Err(TariffError::BadParameter(m)) if m.contains("unknown parameter export.price") && m.contains("netting = 0")
    ));
    // Without export data the balance cannot be made.
    let (_, _, only_import) = ten_hours(IMPORT, 10_000);
    assert!(matches!(
        compute("net-metering", &params, &Calendar::default(), start, end, &only_import),
        Err(TariffError::MissingData(m)) if m.contains("no export usage")
    ));
}

fn tou_err(params: &[Parameter]) -> String {
    let usage = steady_usage(MARCH_START, MARCH_END);
    match compute(
        "tou",
        params,
        &march_calendar(),
        MARCH_START,
        MARCH_END,
        &usage,
    ) {
        Err(TariffError::BadParameter(m)) => m,
        other => panic!("expected a bad parameter, got {other:?}"),
    }
}

fn without(name: &str) -> Vec<Parameter> {
    tou_params()
        .into_iter()
        .filter(|x| x.name != name)
        .collect()
}

fn with(extra: &[(&str, &str)]) -> Vec<Parameter> {
    let mut v: Vec<Parameter> = tou_params()
        .into_iter()
        .filter(|x| !extra.iter().any(|(n, _)| *n == x.name))
        .collect();
    v.extend(extra.iter().map(|(n, val)| p(n, val)));
    v
}

#[test]
fn bad_parameters_are_named() {
    assert_eq!(
        tou_err(&without("price.summer.peak")),
        "parameter price.summer.peak is missing"
    );
    assert_eq!(
        tou_err(&with(&[("weekday.peak.start-hr", "7")])),
        "unknown parameter weekday.peak.start-hr for tariff tou"
    );
    assert_eq!(
        tou_err(&with(&[("price.autumn.peak", "1")])),
        "unknown parameter price.autumn.peak for tariff tou"
    );
    assert!(
        tou_err(&without("weekday.offpeak.end-hour"))
            .contains("weekday.offpeak.end-hour is missing")
    );
    // 21:00-06:00 leaves 06:00-07:00 uncovered.
    assert_eq!(
        tou_err(&with(&[("weekday.offpeak.end-hour", "6")])),
        "weekday at 06:00 is in no period"
    );
    assert!(tou_err(&with(&[("weekday.offpeak.end-hour", "8")])).contains("overlaps"));
    assert!(
        tou_err(&with(&[("weekday.peak.start-minute", "10")]))
            .contains("not on the 15-minute interval grid")
    );
    assert!(
        tou_err(&with(&[("season.summer.start-month", "13")]))
            .contains("season.summer.start-month = 13")
    );
    assert!(
        tou_err(&with(&[
            ("season.summer.start-day", "31"),
            ("season.summer.start-month", "4")
        ]))
        .contains("1..=30")
    );
    assert!(
        tou_err(&with(&[
            ("season.summer.start-month", "10"),
            ("season.summer.start-day", "1")
        ]))
        .contains("start on the same day")
    );
    assert!(tou_err(&with(&[("interval-minutes", "7")])).contains("interval-minutes = 7"));
    assert!(tou_err(&with(&[("currency.decimals", "2.5")])).contains("currency.decimals"));
    assert!(
        tou_err(&without("weekend.offpeak.start-hour"))
            .contains("weekend.offpeak.start-hour is missing")
    );
    let no_weekend: Vec<Parameter> = tou_params()
        .into_iter()
        .filter(|x| !x.name.starts_with("weekend."))
        .collect();
    assert!(tou_err(&no_weekend).contains("weekend has no periods"));
    let mut twice = tou_params();
    twice.push(p("price.summer.peak", "1"));
    assert_eq!(
        tou_err(&twice),
        "parameter price.summer.peak is given twice"
    );
    assert!(
        tou_err(&with(&[("weekday.peak.1.start-hour", "7")])).contains("both with and without")
    );

    let usage = steady_usage(MARCH_START, MARCH_END);
    assert!(matches!(
        compute("flat", &[], &Calendar::default(), MARCH_START, MARCH_END, &usage),
        Err(TariffError::BadParameter(m)) if m.starts_with("unknown tariff \"flat\"")
    ));
    assert!(matches!(
        compute("tou", &tou_params(), &march_calendar(), MARCH_END, MARCH_START, &usage),
        Err(TariffError::BadParameter(m)) if m.contains("not after its start")
    ));
}

#[test]
fn missing_data_says_where() {
    let mut usage = steady_usage(MARCH_START, MARCH_END);
    // Drop the quarter ending 12:15 UTC on 5 March and the whole of 20 March UTC.
    let hole = utc(2026, 3, 5, 12, 15);
    usage.retain(|u| {
        u.ts != hole && !(utc(2026, 3, 20, 0, 0) < u.ts && u.ts <= utc(2026, 3, 21, 0, 0))
    });
    let err = compute(
        "tou",
        &tou_params(),
        &march_calendar(),
        MARCH_START,
        MARCH_END,
        &usage,
    )
    .unwrap_err();
    assert_eq!(
        err,
        TariffError::MissingData(
            "1-0:1.8.0: 97 of 2972 intervals missing, the first ending 2026-03-05T12:15:00Z".into()
        )
    );
    // No data at all.
    let err = compute(
        "tou",
        &tou_params(),
        &march_calendar(),
        MARCH_START,
        MARCH_END,
        &[],
    )
    .unwrap_err();
    assert!(matches!(err, TariffError::MissingData(m) if m.starts_with("no import usage")));
    // The month's last quarter missing (the period's end is inclusive of its last interval).
    let mut usage = steady_usage(MARCH_START, MARCH_END);
    usage.pop();
    let err = compute(
        "tiered",
        &[p("tier.1.price", "0.1")],
        &Calendar::default(),
        MARCH_START,
        MARCH_END,
        &usage,
    )
    .unwrap_err();
    assert!(matches!(err, TariffError::MissingData(m) if m.ends_with("2026-03-31T22:00:00Z")));
}

#[test]
fn overflow_is_a_typed_error() {
    // Two intervals near i64::MAX Wh at a huge scale, priced at an extreme price.
    let (start, end) = (utc(2026, 3, 1, 0, 0), utc(2026, 3, 1, 0, 30));
    let usage: Vec<Usage> = series(IMPORT, start, end, 15, |_| i64::MAX)
        .into_iter()
        .map(|mut u| {
            u.value.scale = 120;
            u
        })
        .collect();
    let params = [Parameter::new("tier.1.price", q(i64::MAX, 100))];
    let err = compute("tiered", &params, &Calendar::default(), start, end, &usage).unwrap_err();
    assert!(matches!(err, TariffError::Overflow(_)), "{err:?}");
}
