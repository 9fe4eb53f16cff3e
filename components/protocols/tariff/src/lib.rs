//! The standard tariffs of ami: time-of-use, tiered, demand, critical peak pricing and net
//! metering, as pure functions from interval data, an explicit calendar and decimal
//! parameters to billing determinants, line items and a total.
//!
//! The MDMS runs tariffs as Wasm components of the `tariff` world (`wit/tariff.wit`); the
//! component `ami-tariff-standard` (`components/tariffs/standard`) is a thin adapter between
//! that world and [`compute`] here. The crate does no I/O, holds no clock and uses no floats:
//! energies and money are exact decimals computed in `i128` with checked arithmetic, so an
//! extreme input is a typed [`TariffError::Overflow`], never a panic or a wrong bill.
//!
//! # Inputs
//!
//! * **Usage**: one [`Usage`] per interval and register, value in **Wh** for the interval, stamped
//!   with the interval's **end** (UTC ms). Import is `1-0:1.8.x` and export `1-0:2.8.x` (groups B
//!   and F are ignored). If the total register (`E = 0`) is present it is used alone; otherwise
//!   the rate registers (`E = 1..`) are added up interval by interval, each of which must then be
//!   complete. Usage outside `(period-start, period-end]` and other registers are ignored.
//! * **Grid**: the period is cut into intervals of `interval-minutes` from `period-start`; every
//!   interval of the period must be present (else [`TariffError::MissingData`] naming the
//!   register, how many intervals are missing and the first one), on the grid, not negative and
//!   not duplicated (else [`TariffError::BadUsage`]). A bill is computed from complete data only.
//!   A period holds at most [`MAX_INTERVALS`] intervals.
//! * **Calendar**: `utc-offsets` gives the local time: `(from, offset-seconds)` changes in time
//!   order, the first at or before `period-start` (an empty list means UTC). Each interval is
//!   classified by the local time of its **start**, so a spring-forward day has 23 hours and a
//!   fall-back day 25. `special-days` marks local dates as `holiday` or `cpp`; other day types are
//!   a bad parameter.
//!
//! # Parameters
//!
//! Parameters are a flat list of `name = decimal`. Names are dot-separated, most general first;
//! `<season>` and `<period>` are names of your choosing (`[a-z0-9-]+`). Every parameter must be
//! used by the tariff: a misspelt or unknown name is a [`TariffError::BadParameter`] naming it,
//! as is a missing one or a value out of range. Times of day are local and given as
//! `...-hour` (0-24) plus an optional `...-minute` (0-59, default 0); they must fall on the
//! interval grid.
//!
//! Common to every tariff:
//!
//! | name | meaning |
//! | --- | --- |
//! | `interval-minutes` | length of the usage intervals: 1, 5, 10, 15, 30 or 60 (default 15) |
//! | `currency.decimals` | digits of the currency's minor unit, 0-6 (default 2): amounts are rounded to it |
//!
//! ## `tou`: time of use
//!
//! | name | meaning |
//! | --- | --- |
//! | `season.<season>.start-month`, `season.<season>.start-day` | local date a season starts (day default 1); a season lasts until the next one starts, round the year. At least one season |
//! | `<day-type>.<period>[.<n>].start-hour`, `...start-minute`, `...end-hour`, `...end-minute` | a window of `<period>` on `<day-type>` (`weekday` = Monday-Friday, `weekend`, `holiday`); `<n>` numbers several windows of one period (default 1). `end` before `start` wraps past midnight; `end-hour = 24` is midnight. The windows of a day type must cover the day without overlap. `holiday` is optional: without it holidays follow the `weekend` windows |
//! | `price.<season>.<period>` | price per kWh, for every season and period |
//!
//! Determinants: `kwh.import` (register `1-0:1.8.0`) and `kwh.import.<season>.<period>` (register
//! `1-0:1.8.<e>` with `e` the period's place in name order, from 1); one line per season and
//! period met in the bill.
//!
//! ## `cpp`: critical peak pricing
//!
//! The `tou` parameters plus `cpp.price` (per kWh) and the event hours `cpp.start-hour`,
//! `cpp.start-minute`, `cpp.end-hour`, `cpp.end-minute` (the same every event day). On days the
//! calendar marks `cpp`, energy within the event hours is billed at `cpp.price` **instead of**
//! its TOU price (determinant `kwh.import.cpp`); all other energy as under `tou`.
//!
//! ## `tiered`: block pricing on the period's total
//!
//! | name | meaning |
//! | --- | --- |
//! | `tier.<n>.up-to` | kWh of the period's total import up to which tier `n` (1, 2, ...) applies; increasing; the last tier has none |
//! | `tier.<n>.price` | price per kWh within tier `n` |
//!
//! Determinants `kwh.import` and `kwh.import.tier.<n>` per tier reached; one line per tier.
//!
//! ## `demand`: demand charge plus energy
//!
//! | name | meaning |
//! | --- | --- |
//! | `energy.price` | price per kWh imported |
//! | `demand.price` | price per kW of the period's maximum demand |
//! | `demand.sub-intervals` | intervals per demand window (default 1): 15-minute data with 1 gives block demand, 5-minute data with 3 a 15-minute sliding demand. The window (`interval-minutes` x this) must divide 60 minutes |
//!
//! Demand is the window's energy over its length (kW), for every window of consecutive
//! intervals within the period. Determinants `kwh.import` and `kw.max-demand` (register
//! `1-0:1.6.0`), `at` the end of the window with the highest demand (the earliest of equal
//! peaks).
//!
//! ## `net-metering`: import, export and their balance
//!
//! | name | meaning |
//! | --- | --- |
//! | `import.price` | price per kWh imported |
//! | `netting` | 0 (default): import charged and export credited separately; 1: export nets import within the period and any surplus carries to the next |
//! | `export.price` | with `netting = 0`: credit per kWh exported (line amount negative) |
//! | `carry-in.kwh` | with `netting = 1`: export credit carried in from the last period, kWh (default 0) |
//!
//! Determinants `kwh.import`, `kwh.export` (`1-0:2.8.0`), `kwh.net` = import - export
//! (`1-0:16.8.0`, negative when export is larger); with netting also `kwh.carry-in`,
//! `kwh.billed` = max(0, net - carry-in) and `kwh.carry-out` = max(0, carry-in - net), the credit
//! for the next period. Both import and export intervals must be complete.
//!
//! # Rounding
//!
//! Each line's amount is `determinant x rate`, exact, then rounded **half-even** to the
//! currency's minor unit; the total is the sum of the rounded lines. Determinants are exact
//! (kWh shown to the Wh or finer).

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

mod bill;
mod calendar;
mod decimal;
pub mod example;
mod params;
mod schedule;
mod series;
mod tariffs;

use ami_domain::{Obis, Quantity};

/// The tariff ids [`compute`] serves.
pub const TARIFF_IDS: &[&str] = &["tou", "tiered", "demand", "cpp", "net-metering"];

/// Most intervals a billing period may hold: a leap year of 5-minute intervals.
pub const MAX_INTERVALS: i64 = 366 * 288;

/// One interval's energy of one register.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Usage {
    /// `1-0:1.8.x` import or `1-0:2.8.x` export.
    pub register: Obis,
    /// The interval's end, UTC ms.
    pub ts: i64,
    /// Energy in the interval, Wh.
    pub value: Quantity,
}

/// A local date the calendar treats differently.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpecialDay {
    /// Local date, days since 1970-01-01.
    pub day: i32,
    /// `holiday` or `cpp`.
    pub day_type: String,
}

/// Local time rules and special days for the billing period.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Calendar {
    /// `(from UTC ms, offset seconds)` changes in time order.
    pub utc_offsets: Vec<(i64, i32)>,
    /// Holidays and critical peak days.
    pub special_days: Vec<SpecialDay>,
}

/// A tariff parameter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Parameter {
    /// Its name, see the crate documentation.
    pub name: String,
    /// Its value.
    pub value: Quantity,
}

impl Parameter {
    /// A parameter from a name and a decimal.
    pub fn new(name: impl Into<String>, value: Quantity) -> Self {
        Self {
            name: name.into(),
            value,
        }
    }
}

/// A quantity the bill is computed from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Determinant {
    /// `kwh.import`, `kwh.import.<season>.<period>`, `kw.max-demand`, ...
    pub name: String,
    /// The register it is measured on.
    pub register: Obis,
    /// Its exact value (kWh or kW).
    pub value: Quantity,
    /// When it happened, for peaks (the window's end); else the period's end.
    pub at: i64,
}

/// One line of the bill.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LineItem {
    /// What is charged, for people.
    pub description: String,
    /// The determinant charged.
    pub determinant: String,
    /// Price per unit of the determinant.
    pub rate: Quantity,
    /// Determinant x rate, rounded half-even to the currency's minor unit.
    pub amount: Quantity,
}

/// A tariff's result for one billing period.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bill {
    /// Quantities the bill is computed from.
    pub determinants: Vec<Determinant>,
    /// Charges and credits.
    pub lines: Vec<LineItem>,
    /// The sum of the lines' amounts, at the minor unit's scale.
    pub total: Quantity,
}

/// Why a bill could not be computed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TariffError {
    /// Unknown tariff, or a parameter (or the calendar) that is unknown, missing or invalid.
    #[error("bad parameter: {0}")]
    BadParameter(String),
    /// Intervals needed for the period are absent.
    #[error("missing data: {0}")]
    MissingData(String),
    /// Usage that cannot be billed: off the grid, negative or duplicated.
    #[error("bad usage: {0}")]
    BadUsage(String),
    /// A value is too large or too precise to compute exactly.
    #[error("arithmetic overflow in {0}")]
    Overflow(String),
}

/// Computes the bill of tariff `tariff_id` for `usage` in `[period_start, period_end)`.
pub fn compute(
    tariff_id: &str,
    params: &[Parameter],
    calendar: &Calendar,
    period_start: i64,
    period_end: i64,
    usage: &[Usage],
) -> Result<Bill, TariffError> {
    tariffs::compute(tariff_id, params, calendar, period_start, period_end, usage)
}
