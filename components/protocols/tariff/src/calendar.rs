//! Local time from the calendar's explicit UTC offsets, and the day types of local dates.

use std::collections::HashMap;

use ami_domain::time::{civil_from_days, rfc3339};

use crate::{Calendar, TariffError};

const DAY_MS: i64 = 86_400_000;
/// Largest UTC offset any place uses, with margin: 18 hours.
const MAX_OFFSET_S: i32 = 18 * 3600;

/// The local date and time of an instant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct LocalTime {
    /// Local date, days since 1970-01-01.
    pub(crate) day: i64,
    /// Minutes since local midnight.
    pub(crate) minute: u32,
    /// Local month, 1-12.
    pub(crate) month: u32,
    /// Local day of the month, 1-31.
    pub(crate) dom: u32,
    /// Day of the week, 0 = Monday ... 6 = Sunday.
    pub(crate) weekday: u32,
}

/// What the calendar says about a local date.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct DayMarks {
    pub(crate) holiday: bool,
    pub(crate) cpp: bool,
}

/// The calendar, checked and indexed.
pub(crate) struct Local {
    offsets: Vec<(i64, i32)>,
    special: HashMap<i64, DayMarks>,
}

fn bad(msg: String) -> TariffError {
    TariffError::BadParameter(format!("calendar: {msg}"))
}

impl Local {
    /// Checks the calendar for a period starting at `start`.
    pub(crate) fn new(cal: &Calendar, start: i64) -> Result<Self, TariffError> {
        for w in cal.utc_offsets.windows(2) {
            if let [(a, _), (b, _)] = w
                && a >= b
            {
                return Err(bad(format!(
                    "utc-offsets not in time order at {}",
                    rfc3339(*b)
                )));
            }
        }
        if let Some((from, off)) = cal
            .utc_offsets
            .iter()
            .find(|(_, off)| off.unsigned_abs() > MAX_OFFSET_S.unsigned_abs())
        {
            return Err(bad(format!(
                "utc offset {off} s from {} is beyond 18 hours",
                rfc3339(*from)
            )));
        }
        if let Some((first, _)) = cal.utc_offsets.first()
            && *first > start
        {
            return Err(bad(format!(
                "no utc offset for the period start {}: the first is from {}",
                rfc3339(start),
                rfc3339(*first)
            )));
        }
        let mut special: HashMap<i64, DayMarks> = HashMap::new();
        for s in &cal.special_days {
            let marks = special.entry(i64::from(s.day)).or_default();
            match s.day_type.as_str() {
                "holiday" => marks.holiday = true,
                "cpp" => marks.cpp = true,
                other => {
                    return Err(bad(format!("unknown day type {other:?} (holiday or cpp)")));
                }
            }
        }
        Ok(Self {
            offsets: cal.utc_offsets.clone(),
            special,
        })
    }

    /// The UTC offset in force at `utc_ms`, in ms.
    fn offset_ms(&self, utc_ms: i64) -> i64 {
        let i = self.offsets.partition_point(|(from, _)| *from <= utc_ms);
        i.checked_sub(1)
            .and_then(|i| self.offsets.get(i))
            .map_or(0, |(_, off)| i64::from(*off) * 1000)
    }

    /// The local date and time of `utc_ms` (within the checked period range).
    pub(crate) fn at(&self, utc_ms: i64) -> LocalTime {
        let local = utc_ms.saturating_add(self.offset_ms(utc_ms));
        let day = local.div_euclid(DAY_MS);
        let minute = u32::try_from(local.rem_euclid(DAY_MS) / 60_000).unwrap_or(0);
        let (_, month, dom) = civil_from_days(day);
        let weekday = u32::try_from((day + 3).rem_euclid(7)).unwrap_or(0);
        LocalTime {
            day,
            minute,
            month,
            dom,
            weekday,
        }
    }

    /// What the calendar says about local date `day`.
    pub(crate) fn marks(&self, day: i64) -> DayMarks {
        self.special.get(&day).copied().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SpecialDay;
    use ami_domain::time::{days_from_civil, unix_ms};

    fn amsterdam() -> Calendar {
        crate::example::amsterdam_2026()
    }

    #[test]
    fn local_time_follows_the_offsets() {
        let l = Local::new(&amsterdam(), unix_ms(2026, 3, 1, 0, 0, 0)).unwrap();
        // 00:59 UTC on 29 March is 01:59 CET; 01:00 UTC is 03:00 CEST.
        let before = l.at(unix_ms(2026, 3, 29, 0, 59, 0));
        assert_eq!((before.dom, before.minute), (29, 60 + 59));
        let after = l.at(unix_ms(2026, 3, 29, 1, 0, 0));
        assert_eq!((after.dom, after.minute), (29, 180));
        assert_eq!(after.weekday, 6, "29 March 2026 is a Sunday");
        // 23:30 UTC on 31 March is 01:30 on 1 April, a Wednesday.
        let t = l.at(unix_ms(2026, 3, 31, 23, 30, 0));
        assert_eq!((t.month, t.dom, t.minute, t.weekday), (4, 1, 90, 2));
        assert_eq!(t.day, days_from_civil(2026, 4, 1));
    }

    #[test]
    fn rejects_disorder_gaps_and_unknown_day_types() {
        let start = unix_ms(2026, 3, 1, 0, 0, 0);
        let mut c = amsterdam();
        c.utc_offsets.swap(0, 1);
        assert!(
            matches!(Local::new(&c, start), Err(TariffError::BadParameter(m)) if m.contains("time order"))
        );
        let late = Calendar {
            utc_offsets: vec![(start + 1, 3600)],
            special_days: vec![],
        };
        assert!(
            matches!(Local::new(&late, start), Err(TariffError::BadParameter(m)) if m.contains("no utc offset"))
        );
        let far = Calendar {
            utc_offsets: vec![(start, 20 * 3600)],
            special_days: vec![],
        };
        assert!(Local::new(&far, start).is_err());
        let odd = Calendar {
            utc_offsets: vec![],
            special_days: vec![SpecialDay {
                day: 1,
                day_type: "Holiday".into(),
            }],
        };
        assert!(
            matches!(Local::new(&odd, start), Err(TariffError::BadParameter(m)) if m.contains("\"Holiday\""))
        );
        // No offsets at all: UTC.
        let utc = Local::new(&Calendar::default(), start).unwrap();
        assert_eq!(utc.at(start).minute, 0);
    }
}
