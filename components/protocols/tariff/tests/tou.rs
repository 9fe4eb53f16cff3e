//! Time-of-use and critical peak pricing: a month worked out by hand, DST days, seasons,
//! holidays and event days.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use ami_domain::Obis;
use ami_domain::time::days_from_civil;
use ami_tariff::example::{
    MARCH_END, MARCH_START, amsterdam_2026, march_calendar, steady_usage, tou_params,
};
use ami_tariff::{Calendar, Parameter, SpecialDay, TariffError, compute};
use common::*;

/// March 2026 in Europe/Amsterdam under `example::tou_params`, with a steady 1 kW load
/// (250 Wh every 15 minutes), so each hour is 1 kWh and each bucket's kWh is its hours.
///
/// The month: 1 March is a Sunday; weekends are Sat/Sun 1, 7-8, 14-15, 21-22, 28-29; Tuesday
/// 17 March is a holiday (no holiday windows: it follows the weekend, off-peak all day); DST
/// starts Sunday 29 March (02:00 CET -> 03:00 CEST), a 23-hour day. Winter runs to 15 March,
/// summer from 16 March. Weekdays: peak 07:00-21:00 = 14 h, off-peak 10 h.
///
/// Winter, 1-15 March: 10 weekdays (2-6, 9-13), 5 weekend days (1, 7, 8, 14, 15).
///   winter peak    = 10 x 14 h            = 140 kWh x 0.3012 =  42.168 -> 42.17
///   winter offpeak = 10 x 10 h + 5 x 24 h = 220 kWh x 0.2000 =  44.000 -> 44.00
/// Summer, 16-31 March: 11 weekdays (16, 18-20, 23-27, 30, 31), the holiday 17, weekend
/// days 21, 22, 28 and 29 (23 h).
///   summer peak    = 11 x 14 h            = 154 kWh x 0.2500 =  38.500 -> 38.50
///   summer offpeak = 11 x 10 h + 24 h (holiday) + 24 + 24 + 24 + 23 h (weekend)
///                  = 110 + 24 + 95        = 229 kWh x 0.1537 =  35.1973 -> 35.20
/// Import 140 + 220 + 154 + 229 = 743 kWh = (31 x 96 - 4) = 2972 intervals x 0.25 kWh.
/// Total 42.17 + 44.00 + 38.50 + 35.20 = 159.87.
#[test]
fn march_2026_by_hand() {
    let usage = steady_usage(MARCH_START, MARCH_END);
    assert_eq!(usage.len(), 2972);
    let bill = compute(
        "tou",
        &tou_params(),
        &march_calendar(),
        MARCH_START,
        MARCH_END,
        &usage,
    )
    .unwrap();
    let names: Vec<&str> = bill.determinants.iter().map(|x| x.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "kwh.import",
            "kwh.import.summer.offpeak",
            "kwh.import.summer.peak",
            "kwh.import.winter.offpeak",
            "kwh.import.winter.peak"
        ]
    );
    assert_eq!(det(&bill, "kwh.import"), d("743"));
    assert_eq!(det(&bill, "kwh.import.winter.peak"), d("140"));
    assert_eq!(det(&bill, "kwh.import.winter.offpeak"), d("220"));
    assert_eq!(det(&bill, "kwh.import.summer.peak"), d("154"));
    assert_eq!(det(&bill, "kwh.import.summer.offpeak"), d("229"));
    assert_eq!(amount(&bill, "kwh.import.winter.peak"), q(4217, -2));
    assert_eq!(amount(&bill, "kwh.import.winter.offpeak"), q(4400, -2));
    assert_eq!(amount(&bill, "kwh.import.summer.peak"), q(3850, -2));
    assert_eq!(amount(&bill, "kwh.import.summer.offpeak"), q(3520, -2));
    assert_eq!(bill.total, q(15987, -2));
    assert_eq!(bill.total.scale, -2, "amounts at the minor unit");
    // Rate registers: off-peak and peak are the 1st and 2nd period by name.
    let peak = bill
        .determinants
        .iter()
        .find(|x| x.name == "kwh.import.summer.peak")
        .unwrap();
    assert_eq!(peak.register, Obis::new(1, 0, 1, 8, 2, 255));
    assert_eq!(peak.at, MARCH_END);
    let line = &bill.lines[0];
    assert_eq!(line.rate, q(1537, -4));
    assert_eq!(line.description, "offpeak energy, summer season");
}

/// Weekends split into night 00:00-04:00 and day 04:00-24:00 local, 100 Wh per 15 minutes.
fn night_day() -> Vec<Parameter> {
    vec![
        p("season.all.start-month", "1"),
        p("weekday.day.start-hour", "0"),
        p("weekday.day.end-hour", "24"),
        p("weekend.night.start-hour", "0"),
        p("weekend.night.end-hour", "4"),
        p("weekend.day.start-hour", "4"),
        p("weekend.day.end-hour", "24"),
        p("price.all.night", "0.10"),
        p("price.all.day", "0.20"),
    ]
}

#[test]
fn spring_forward_day_has_23_hours() {
    // Sunday 29 March 2026, local midnight to midnight: 23:00Z on the 28th to 22:00Z.
    let (start, end) = (utc(2026, 3, 28, 23, 0), utc(2026, 3, 29, 22, 0));
    let usage = series(IMPORT, start, end, 15, |_| 100);
    assert_eq!(usage.len(), 92, "23 hours of quarters");
    let bill = compute("tou", &night_day(), &amsterdam_2026(), start, end, &usage).unwrap();
    // Night: 00:00-02:00 CET and 03:00-04:00 CEST = 3 h = 12 x 0.1 kWh; day 04:00-24:00 = 20 h.
    assert_eq!(det(&bill, "kwh.import.all.night"), d("1.2"));
    assert_eq!(det(&bill, "kwh.import.all.day"), d("8.0"));
    // 1.2 x 0.10 + 8.0 x 0.20 = 0.12 + 1.60
    assert_eq!(bill.total, d("1.72"));
}

#[test]
fn fall_back_day_has_25_hours() {
    // Sunday 25 October 2026: 22:00Z on the 24th (00:00 CEST) to 23:00Z (24:00 CET).
    let (start, end) = (utc(2026, 10, 24, 22, 0), utc(2026, 10, 25, 23, 0));
    let usage = series(IMPORT, start, end, 15, |_| 100);
    assert_eq!(usage.len(), 100, "25 hours of quarters");
    let bill = compute("tou", &night_day(), &amsterdam_2026(), start, end, &usage).unwrap();
    // Night: 00:00-03:00 CEST, then 02:00-04:00 CET again = 5 h = 20 x 0.1 kWh; day 20 h.
    assert_eq!(det(&bill, "kwh.import.all.night"), d("2.0"));
    assert_eq!(det(&bill, "kwh.import.all.day"), d("8.0"));
    // 2.0 x 0.10 + 8.0 x 0.20 = 0.20 + 1.60
    assert_eq!(bill.total, d("1.80"));
}

#[test]
fn a_fixed_offset_would_bill_the_dst_day_differently() {
    // The same day under a calendar that never leaves CET: 24 hours, 4 of them night.
    let (start, end) = (utc(2026, 3, 28, 23, 0), utc(2026, 3, 29, 23, 0));
    let cet = Calendar {
        utc_offsets: vec![(utc(2026, 1, 1, 0, 0), 3600)],
        special_days: vec![],
    };
    let usage = series(IMPORT, start, end, 15, |_| 100);
    let bill = compute("tou", &night_day(), &cet, start, end, &usage).unwrap();
    assert_eq!(det(&bill, "kwh.import.all.night"), d("1.6"));
}

/// Tuesday 17 March 2026 (summer in the example), 1 kW all day.
fn tuesday() -> (i64, i64, Vec<ami_tariff::Usage>) {
    let (start, end) = (utc(2026, 3, 16, 23, 0), utc(2026, 3, 17, 23, 0));
    (start, end, steady_usage(start, end))
}

#[test]
fn holidays_follow_their_own_windows_or_the_weekend() {
    let (start, end, usage) = tuesday();
    // An ordinary Tuesday: 14 h peak, 10 h off-peak.
    let bill = compute("tou", &tou_params(), &amsterdam_2026(), start, end, &usage).unwrap();
    assert_eq!(det(&bill, "kwh.import.summer.peak"), d("14"));
    assert_eq!(det(&bill, "kwh.import.summer.offpeak"), d("10"));
    // A holiday without holiday windows: the weekend's, off-peak all day.
    let bill = compute("tou", &tou_params(), &march_calendar(), start, end, &usage).unwrap();
    assert_eq!(det(&bill, "kwh.import.summer.offpeak"), d("24"));
    assert!(!bill.determinants.iter().any(|x| x.name.ends_with(".peak")));
    // With holiday windows: peak only 10:00-12:00.
    let mut params = tou_params();
    params.extend([
        p("holiday.peak.start-hour", "10"),
        p("holiday.peak.end-hour", "12"),
        p("holiday.offpeak.start-hour", "12"),
        p("holiday.offpeak.end-hour", "10"),
    ]);
    let bill = compute("tou", &params, &march_calendar(), start, end, &usage).unwrap();
    assert_eq!(det(&bill, "kwh.import.summer.peak"), d("2"));
    assert_eq!(det(&bill, "kwh.import.summer.offpeak"), d("22"));
}

#[test]
fn numbered_windows_and_minutes() {
    // Peak twice a day, 07:30-09:00 and 17:00-20:15; off-peak between.
    let params = vec![
        p("season.all.start-month", "1"),
        p("weekday.peak.1.start-hour", "7"),
        p("weekday.peak.1.start-minute", "30"),
        p("weekday.peak.1.end-hour", "9"),
        p("weekday.peak.2.start-hour", "17"),
        p("weekday.peak.2.end-hour", "20"),
        p("weekday.peak.2.end-minute", "15"),
        p("weekday.offpeak.1.start-hour", "9"),
        p("weekday.offpeak.1.end-hour", "17"),
        p("weekday.offpeak.2.start-hour", "20"),
        p("weekday.offpeak.2.start-minute", "15"),
        p("weekday.offpeak.2.end-hour", "7"),
        p("weekday.offpeak.2.end-minute", "30"),
        p("weekend.offpeak.start-hour", "0"),
        p("weekend.offpeak.end-hour", "24"),
        p("price.all.peak", "0.3"),
        p("price.all.offpeak", "0.1"),
    ];
    let (start, end, usage) = tuesday();
    let bill = compute("tou", &params, &amsterdam_2026(), start, end, &usage).unwrap();
    // 1.5 h + 3.25 h = 4.75 kWh peak; 19.25 kWh off-peak.
    assert_eq!(det(&bill, "kwh.import.all.peak"), d("4.75"));
    assert_eq!(det(&bill, "kwh.import.all.offpeak"), d("19.25"));
    // 4.75 x 0.3 = 1.425 -> 1.42 (half-even: 2 is even); 19.25 x 0.1 = 1.925 -> 1.92.
    assert_eq!(amount(&bill, "kwh.import.all.peak"), d("1.42"));
    assert_eq!(amount(&bill, "kwh.import.all.offpeak"), d("1.92"));
    assert_eq!(bill.total, d("3.34"));
}

#[test]
fn seasons_wrap_round_the_year() {
    // Winter from 1 November, summer from 1 April: 15 January is winter, from last year.
    let params = vec![
        p("season.summer.start-month", "4"),
        p("season.winter.start-month", "11"),
        p("weekday.flat.start-hour", "0"),
        p("weekday.flat.end-hour", "24"),
        p("weekend.flat.start-hour", "0"),
        p("weekend.flat.end-hour", "24"),
        p("price.summer.flat", "0.1"),
        p("price.winter.flat", "0.2"),
    ];
    let (start, end) = (utc(2026, 1, 14, 23, 0), utc(2026, 1, 15, 23, 0));
    let bill = compute(
        "tou",
        &params,
        &amsterdam_2026(),
        start,
        end,
        &steady_usage(start, end),
    )
    .unwrap();
    assert_eq!(det(&bill, "kwh.import.winter.flat"), d("24"));
    assert_eq!(bill.total, d("4.80"));
}

fn cpp_params() -> Vec<Parameter> {
    let mut params = tou_params();
    params.extend([
        p("cpp.price", "0.90"),
        p("cpp.start-hour", "17"),
        p("cpp.end-hour", "20"),
    ]);
    params
}

#[test]
fn cpp_event_hours_replace_the_tou_price_on_event_days() {
    // Wednesday 18 March 2026 (summer, CET) is a critical peak day, 1 kW all day.
    let (start, end) = (utc(2026, 3, 17, 23, 0), utc(2026, 3, 18, 23, 0));
    let mut cal = amsterdam_2026();
    cal.special_days.push(SpecialDay {
        day: days_from_civil(2026, 3, 18) as i32,
        day_type: "cpp".into(),
    });
    let usage = steady_usage(start, end);
    let bill = compute("cpp", &cpp_params(), &cal, start, end, &usage).unwrap();
    // Event 17:00-20:00 = 3 kWh x 0.90 = 2.70; peak 07:00-21:00 less the event = 11 kWh x 0.25
    // = 2.75; off-peak 10 kWh x 0.1537 = 1.537 -> 1.54. Total 6.99.
    assert_eq!(det(&bill, "kwh.import.cpp"), d("3"));
    assert_eq!(det(&bill, "kwh.import.summer.peak"), d("11"));
    assert_eq!(det(&bill, "kwh.import.summer.offpeak"), d("10"));
    assert_eq!(amount(&bill, "kwh.import.cpp"), d("2.70"));
    assert_eq!(bill.total, d("6.99"));
    // The same day without the event: plain TOU, no cpp line.
    let plain = compute("cpp", &cpp_params(), &amsterdam_2026(), start, end, &usage).unwrap();
    assert!(
        plain
            .lines
            .iter()
            .all(|l| l.determinant != "kwh.import.cpp")
    );
    assert_eq!(det(&plain, "kwh.import.summer.peak"), d("14"));
    // 14 x 0.25 + 10 x 0.1537 = 3.50 + 1.54
    assert_eq!(plain.total, d("5.04"));
    // `tou` does not know cpp parameters.
    assert!(matches!(
        compute("tou", &cpp_params(), &cal, start, end, &usage),
        Err(TariffError::BadParameter(m)) if m.starts_with("unknown parameter cpp.")
    ));
}
