//! The worked example of the documentation and tests: a two-season time-of-use tariff billed
//! for March 2026 in Europe/Amsterdam, a month with a holiday, a season change and the
//! spring-forward day. The component's host test bills the same inputs through Wasm.
//!
//! The expected bill is worked out by hand in `tests/tou.rs` (`march_2026_by_hand`).

use ami_domain::time::{days_from_civil, unix_ms};
use ami_domain::{Obis, Quantity};

use crate::{Calendar, Parameter, SpecialDay, Usage};

/// `1-0:1.8.0*255`, import energy.
pub const IMPORT: Obis = Obis::new(1, 0, 1, 8, 0, 255);

/// Europe/Amsterdam for 2026 as explicit offsets: CET (+1 h) from the end of DST in October
/// 2025, CEST (+2 h) from 29 March 2026 01:00 UTC, CET from 25 October 2026 01:00 UTC.
pub fn amsterdam_2026() -> Calendar {
    Calendar {
        utc_offsets: vec![
            (unix_ms(2025, 10, 26, 1, 0, 0), 3600),
            (unix_ms(2026, 3, 29, 1, 0, 0), 7200),
            (unix_ms(2026, 10, 25, 1, 0, 0), 3600),
        ],
        special_days: vec![],
    }
}

/// [`amsterdam_2026`] with Tuesday 17 March 2026 as a holiday.
pub fn march_calendar() -> Calendar {
    let mut c = amsterdam_2026();
    c.special_days.push(SpecialDay {
        day: i32::try_from(days_from_civil(2026, 3, 17)).unwrap_or_default(),
        day_type: "holiday".into(),
    });
    c
}

/// 2026-03-01 00:00 CET, the period's start.
pub const MARCH_START: i64 = unix_ms(2026, 2, 28, 23, 0, 0);
/// 2026-04-01 00:00 CEST, the period's end.
pub const MARCH_END: i64 = unix_ms(2026, 3, 31, 22, 0, 0);

fn p(name: &str, mantissa: i64, scale: i8) -> Parameter {
    Parameter::new(name, Quantity::new(mantissa, scale))
}

/// The TOU parameters: winter from 1 October, summer from 16 March; weekdays peak 07:00-21:00
/// and off-peak 21:00-07:00; weekends (and holidays, which have no windows of their own)
/// off-peak all day; prices per kWh winter 0.3012 / 0.2000, summer 0.2500 / 0.1537; 15-minute
/// intervals, cents.
pub fn tou_params() -> Vec<Parameter> {
    vec![
        p("interval-minutes", 15, 0),
        p("currency.decimals", 2, 0),
        p("season.winter.start-month", 10, 0),
        p("season.winter.start-day", 1, 0),
        p("season.summer.start-month", 3, 0),
        p("season.summer.start-day", 16, 0),
        p("weekday.peak.start-hour", 7, 0),
        p("weekday.peak.end-hour", 21, 0),
        p("weekday.offpeak.start-hour", 21, 0),
        p("weekday.offpeak.end-hour", 7, 0),
        p("weekend.offpeak.start-hour", 0, 0),
        p("weekend.offpeak.end-hour", 24, 0),
        p("price.winter.peak", 3012, -4),
        p("price.winter.offpeak", 2000, -4),
        p("price.summer.peak", 2500, -4),
        p("price.summer.offpeak", 1537, -4),
    ]
}

/// A steady 1 kW load: 250 Wh in every 15-minute interval of `[start, end)`.
pub fn steady_usage(start: i64, end: i64) -> Vec<Usage> {
    (1..)
        .map(|k| start + k * 900_000)
        .take_while(|ts| *ts <= end)
        .map(|ts| Usage {
            register: IMPORT,
            ts,
            value: Quantity::new(250, 0),
        })
        .collect()
}
