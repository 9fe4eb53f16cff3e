//! The time-of-use schedule: seasons, the periods of each day type, and a price per season and
//! period, read from parameters and checked whole before any interval is classified.

use std::collections::BTreeSet;

use ami_domain::Quantity;

use crate::TariffError;
use crate::calendar::LocalTime;
use crate::params::{Params, is_name};

const DAY_MIN: u32 = 1440;
const DAY_TYPES: [&str; 3] = ["weekday", "weekend", "holiday"];
const WINDOW_FIELDS: [&str; 4] = ["start-hour", "start-minute", "end-hour", "end-minute"];

fn bad(msg: String) -> TariffError {
    TariffError::BadParameter(msg)
}

/// Per minute of a day: the period and the window that claimed it.
type Claims = Vec<Option<(u8, String)>>;

/// A season: its name and the local date it starts.
#[derive(Clone, Debug)]
pub(crate) struct Season {
    pub(crate) name: String,
    start: (u32, u32),
}

/// The schedule of a `tou` (or `cpp`) tariff.
#[derive(Clone, Debug)]
pub(crate) struct Schedule {
    /// By start date.
    pub(crate) seasons: Vec<Season>,
    /// By name.
    pub(crate) periods: Vec<String>,
    /// Period index of each minute of the day, per day type; holiday may be absent.
    days: [Option<Vec<u8>>; 3],
    /// `prices[season][period]`.
    prices: Vec<Vec<Quantity>>,
}

/// A local time of day `<prefix>-hour` / `<prefix>-minute`, in minutes since midnight; `end`
/// allows 24:00.
pub(crate) fn time_of_day(
    ps: &mut Params<'_>,
    prefix: &str,
    end: bool,
    grid_minutes: i64,
) -> Result<u32, TariffError> {
    let h = ps.int_or(
        &format!("{prefix}-hour"),
        0,
        if end { 24 } else { 23 },
        None,
    )?;
    let m = ps.int_or(&format!("{prefix}-minute"), 0, 59, Some(0))?;
    let t = h * 60 + m;
    if t > i64::from(DAY_MIN) {
        return Err(bad(format!("{prefix} {h}:{m:02} is after midnight")));
    }
    if t % grid_minutes != 0 {
        return Err(bad(format!(
            "{prefix} {h:02}:{m:02} is not on the {grid_minutes}-minute interval grid"
        )));
    }
    u32::try_from(t).map_err(|_| bad(format!("{prefix} out of range")))
}

fn hhmm(minute: u32) -> String {
    format!("{:02}:{:02}", minute / 60, minute % 60)
}

impl Schedule {
    /// Reads the seasons, windows and prices.
    pub(crate) fn read(ps: &mut Params<'_>, grid_minutes: i64) -> Result<Self, TariffError> {
        let names = ps.names();

        // Seasons: season.<name>.start-month / start-day.
        let season_names: BTreeSet<&str> = names
            .iter()
            .filter_map(|n| {
                let rest = n.strip_prefix("season.")?;
                let (name, field) = rest.split_once('.')?;
                ["start-month", "start-day"]
                    .contains(&field)
                    .then_some(name)
            })
            .collect();
        if season_names.is_empty() {
            return Err(bad(
                "parameter season.<name>.start-month is missing: a tou tariff needs a season"
                    .into(),
            ));
        }
        let mut seasons = Vec::new();
        for name in season_names {
            if !is_name(name) {
                return Err(bad(format!("season name {name:?} is not [a-z0-9-]+")));
            }
            let month = ps.int_or(&format!("season.{name}.start-month"), 1, 12, None)?;
            let days = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
            let last = days
                .get(usize::try_from(month - 1).unwrap_or(0))
                .copied()
                .unwrap_or(31);
            let day = ps.int_or(&format!("season.{name}.start-day"), 1, last, Some(1))?;
            let start = (
                u32::try_from(month).unwrap_or(1),
                u32::try_from(day).unwrap_or(1),
            );
            seasons.push(Season {
                name: name.to_owned(),
                start,
            });
        }
        seasons.sort_by_key(|s| s.start);
        if let Some(w) = seasons
            .windows(2)
            .find(|w| w.first().map(|s| s.start) == w.get(1).map(|s| s.start))
        {
            let (a, b) = (
                w.first().map(|s| s.name.as_str()).unwrap_or_default(),
                w.get(1).map(|s| s.name.as_str()).unwrap_or_default(),
            );
            return Err(bad(format!("seasons {a} and {b} start on the same day")));
        }

        // Windows: <day-type>.<period>[.<n>].<field>; the un-numbered form is window 1.
        let mut windows: BTreeSet<(usize, &str, &str, bool)> = BTreeSet::new();
        for n in &names {
            let parts: Vec<&str> = n.split('.').collect();
            let (dt, period, k, field, numbered) = match parts.as_slice() {
                [dt, p, f] => (*dt, *p, "1", *f, false),
                [dt, p, k, f] => (*dt, *p, *k, *f, true),
                _ => continue,
            };
            let Some(d) = DAY_TYPES.iter().position(|x| *x == dt) else {
                continue;
            };
            if !WINDOW_FIELDS.contains(&field) {
                continue;
            }
            if !is_name(period) {
                return Err(bad(format!(
                    "period name {period:?} in {n} is not [a-z0-9-]+"
                )));
            }
            if k.is_empty() || !k.bytes().all(|b| b.is_ascii_digit()) || k.starts_with('0') {
                return Err(bad(format!("window number {k:?} in {n} is not 1, 2, ...")));
            }
            if windows.contains(&(d, period, k, !numbered)) {
                return Err(bad(format!(
                    "{dt}.{period} window 1 is given both with and without its number"
                )));
            }
            windows.insert((d, period, k, numbered));
        }
        let periods: Vec<String> = windows
            .iter()
            .map(|(_, p, _, _)| (*p).to_owned())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        if periods.len() > usize::from(u8::MAX) {
            return Err(bad("more than 255 periods".into()));
        }
        // Per day type and minute: the period and the window that claimed it.
        let mut days: [Option<Claims>; 3] = [None, None, None];
        for (d, period, k, numbered) in &windows {
            let dt = DAY_TYPES.get(*d).copied().unwrap_or_default();
            let base = if *numbered {
                format!("{dt}.{period}.{k}")
            } else {
                format!("{dt}.{period}")
            };
            let (sp, ep) = (format!("{base}.start"), format!("{base}.end"));
            let start = time_of_day(ps, &sp, false, grid_minutes)?;
            let end = time_of_day(ps, &ep, true, grid_minutes)?;
            if start == end {
                return Err(bad(format!("{base} starts when it ends: an empty window")));
            }
            // `end` before `start` wraps past midnight.
            let len = if end > start {
                end - start
            } else {
                end + DAY_MIN - start
            };
            let idx = periods.iter().position(|p| p == period).unwrap_or(0);
            let idx = u8::try_from(idx).unwrap_or(u8::MAX);
            let Some(table) = days.get_mut(*d) else {
                continue;
            };
            let table = table.get_or_insert_with(|| vec![None; DAY_MIN as usize]);
            for j in 0..len {
                let m = (start + j) % DAY_MIN;
                let Some(slot) = table.get_mut(m as usize) else {
                    continue;
                };
                if let Some((_, other)) = slot {
                    return Err(bad(format!("{base} overlaps {other} at {}", hhmm(m))));
                }
                *slot = Some((idx, base.clone()));
            }
        }
        let mut tables: [Option<Vec<u8>>; 3] = [None, None, None];
        for (d, table) in days.into_iter().enumerate() {
            let Some(table) = table else {
                if d < 2 {
                    return Err(bad(format!(
                        "parameter {}.<period>.start-hour is missing: the {} has no periods",
                        DAY_TYPES.get(d).copied().unwrap_or_default(),
                        DAY_TYPES.get(d).copied().unwrap_or_default()
                    )));
                }
                continue;
            };
            if let Some(gap) = table.iter().position(Option::is_none) {
                return Err(bad(format!(
                    "{} at {} is in no period",
                    DAY_TYPES.get(d).copied().unwrap_or_default(),
                    hhmm(u32::try_from(gap).unwrap_or(0))
                )));
            }
            if let Some(t) = tables.get_mut(d) {
                *t = Some(table.into_iter().map(|s| s.map_or(0, |(i, _)| i)).collect());
            }
        }

        // Prices: price.<season>.<period>, every combination.
        let mut prices = Vec::new();
        for s in &seasons {
            let mut row = Vec::new();
            for p in &periods {
                row.push(ps.require(&format!("price.{}.{p}", s.name))?);
            }
            prices.push(row);
        }
        Ok(Self {
            seasons,
            periods,
            days: tables,
            prices,
        })
    }

    /// The season index of a local date.
    fn season(&self, t: &LocalTime) -> usize {
        let at = (t.month, t.dom);
        match self.seasons.iter().rposition(|s| s.start <= at) {
            Some(i) => i,
            // Before the first start of the year: the last season, from last year.
            None => self.seasons.len().saturating_sub(1),
        }
    }

    /// `(season, period)` of an interval starting at local time `t`.
    pub(crate) fn classify(&self, t: &LocalTime, holiday: bool) -> (usize, usize) {
        let d = if holiday && self.days[2].is_some() {
            2
        } else if holiday || t.weekday >= 5 {
            1
        } else {
            0
        };
        let period = self.days[d]
            .as_ref()
            .and_then(|table| table.get(t.minute as usize))
            .copied()
            .unwrap_or(0);
        (self.season(t), usize::from(period))
    }

    /// The price of a season and period.
    pub(crate) fn price(&self, season: usize, period: usize) -> Quantity {
        self.prices
            .get(season)
            .and_then(|r| r.get(period))
            .copied()
            .unwrap_or_default()
    }
}
