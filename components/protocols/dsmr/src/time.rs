//! DSMR timestamps (`YYMMDDhhmmssX`) and their conversion to UTC.
//!
//! A P1 timestamp is local wall-clock time with a season letter: `S` (summer time, CEST,
//! UTC+2) or `W` (winter time, CET, UTC+1); DSMR 2.2/3.0 omit the letter. The offset is taken
//! from the Central European calendar (the Europe/Amsterdam rules: EU summer time from 1977,
//! last Sunday of March to last Sunday of October at 01:00 UTC since 1996), and the letter
//! only decides the hour that the calendar leaves open: the repeated hour in October and the
//! skipped hour in March (no letter counts as `W`). This is what `dsmr_parser` does, and its
//! published expectations depend on it: the Irish Iskra AM550 vector stamps a February time
//! `S`, which both read as UTC+1.
//!
//! Two-digit years follow the C/Python `%y` convention: `69`..`99` are 1969..1999, `00`..`68`
//! are 2000..2068.

/// The season letter that ends a DSMR timestamp.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Season {
    /// `S`: summer time (CEST, UTC+2).
    Summer,
    /// `W`: winter time (CET, UTC+1).
    Winter,
    /// No letter (DSMR 2.2 / 3.0).
    Unmarked,
}

/// A wall-clock time as the meter prints it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LocalTime {
    /// Full year (1969..=2068).
    pub year: i32,
    /// Month, 1..=12.
    pub month: u8,
    /// Day of the month, 1..=31.
    pub day: u8,
    /// Hour, 0..=23.
    pub hour: u8,
    /// Minute, 0..=59.
    pub minute: u8,
    /// Second, 0..=59.
    pub second: u8,
    /// The season letter.
    pub season: Season,
}

/// Whether `text` has the shape of a DSMR timestamp: 12 digits and an optional `S`/`W`.
///
/// A shaped text may still be an invalid date (`632525252525W`); [`LocalTime::parse`] says.
pub fn is_timestamp_shaped(text: &[u8]) -> bool {
    let (digits, letter) = match text.len() {
        12 => (text, None),
        13 => (text.get(..12).unwrap_or_default(), text.get(12)),
        _ => return false,
    };
    digits.iter().all(u8::is_ascii_digit)
        && letter.is_none_or(|l| matches!(l, b'S' | b'W' | b's' | b'w'))
}

fn two_digits(text: &[u8], at: usize) -> Option<u8> {
    match (text.get(at), text.get(at + 1)) {
        (Some(a @ b'0'..=b'9'), Some(b @ b'0'..=b'9')) => Some((a - b'0') * 10 + (b - b'0')),
        _ => None,
    }
}

impl LocalTime {
    /// Reads `YYMMDDhhmmss` with an optional `S`/`W` (either case); `None` when the text is
    /// not a timestamp or not a valid date and time.
    pub fn parse(text: &[u8]) -> Option<Self> {
        if !is_timestamp_shaped(text) {
            return None;
        }
        let yy = two_digits(text, 0)?;
        let year = if yy >= 69 {
            1900 + i32::from(yy)
        } else {
            2000 + i32::from(yy)
        };
        let month = two_digits(text, 2)?;
        let day = two_digits(text, 4)?;
        let hour = two_digits(text, 6)?;
        let minute = two_digits(text, 8)?;
        let second = two_digits(text, 10)?;
        if !(1..=12).contains(&month)
            || day == 0
            || day > days_in_month(year, month)
            || hour > 23
            || minute > 59
            || second > 59
        {
            return None;
        }
        let season = match text.get(12) {
            Some(b'S' | b's') => Season::Summer,
            Some(_) => Season::Winter,
            None => Season::Unmarked,
        };
        Some(Self {
            year,
            month,
            day,
            hour,
            minute,
            second,
            season,
        })
    }

    /// The instant, in milliseconds since the Unix epoch (UTC).
    pub fn to_utc_ms(self) -> i64 {
        let local = days_from_civil(self.year, self.month, self.day) * 86_400
            + i64::from(self.hour) * 3600
            + i64::from(self.minute) * 60
            + i64::from(self.second);
        let as_winter = local - 3600;
        let as_summer = local - 7200;
        let winter_ok = !is_summer_time(self.year, as_winter);
        let summer_ok = is_summer_time(self.year, as_summer);
        let utc = match (summer_ok, winter_ok) {
            (true, false) => as_summer,
            (false, true) => as_winter,
            // The repeated hour (both fit) or the skipped hour (neither does): the letter decides.
            _ if self.season == Season::Summer => as_summer,
            _ => as_winter,
        };
        utc * 1000
    }
}

/// A DSMR timestamp as milliseconds since the Unix epoch (UTC), if it is one.
pub fn timestamp_ms(text: &[u8]) -> Option<i64> {
    LocalTime::parse(text).map(LocalTime::to_utc_ms)
}

fn is_leap(year: i32) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i32, month: u8) -> u8 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(year) => 29,
        2 => 28,
        _ => 0,
    }
}

/// Days since 1970-01-01 of a valid date.
fn days_from_civil(year: i32, month: u8, day: u8) -> i64 {
    ami_domain::time::days_from_civil(i64::from(year), u32::from(month), u32::from(day))
}

/// Day of the week of a day number, 0 = Sunday.
fn weekday(days: i64) -> i64 {
    (days + 4).rem_euclid(7)
}

fn last_sunday(year: i32, month: u8) -> i64 {
    let last = days_from_civil(year, month, days_in_month(year, month));
    last - weekday(last)
}

fn first_sunday(year: i32, month: u8) -> i64 {
    let first = days_from_civil(year, month, 1);
    first + (7 - weekday(first)) % 7
}

/// Whether Central European summer time is in force at `utc_secs`, a second of `year`'s
/// summer half (the rules of Europe/Amsterdam: none before 1977, EU rules after).
fn is_summer_time(year: i32, utc_secs: i64) -> bool {
    if year < 1977 {
        return false;
    }
    let start = if year <= 1980 {
        first_sunday(year, 4)
    } else {
        last_sunday(year, 3)
    };
    let end = match year {
        1978 => days_from_civil(1978, 10, 1),
        ..=1995 => last_sunday(year, 9),
        _ => last_sunday(year, 10),
    };
    (start * 86_400 + 3600..end * 86_400 + 3600).contains(&utc_secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(text: &str) -> Option<i64> {
        timestamp_ms(text.as_bytes())
    }

    /// Seconds since the epoch of a UTC date-time, for readable expectations.
    fn utc(y: i32, mo: u8, d: u8, h: i64, mi: i64, s: i64) -> Option<i64> {
        Some((days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + s) * 1000)
    }

    #[test]
    fn civil_days() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(days_from_civil(1969, 12, 31), -1);
        assert_eq!(weekday(0), 4);
    }

    #[test]
    fn season_letters() {
        assert_eq!(ms("161113205757W"), utc(2016, 11, 13, 19, 57, 57));
        assert_eq!(ms("200426223325S"), utc(2020, 4, 26, 20, 33, 25));
        assert_eq!(ms("700101010000W"), Some(0));
        // No letter (DSMR 2.2/3.0): the calendar decides.
        assert_eq!(ms("161107190000"), utc(2016, 11, 7, 18, 0, 0));
        assert_eq!(ms("160707190000"), utc(2016, 7, 7, 17, 0, 0));
        // A letter the calendar contradicts (Iskra IE, February `S`): the calendar wins.
        assert_eq!(ms("230202132747S"), utc(2023, 2, 2, 12, 27, 47));
    }

    #[test]
    fn transition_hours() {
        // 2023-10-29: 02:30 happens twice; the letter picks which.
        assert_eq!(ms("231029023000S"), utc(2023, 10, 29, 0, 30, 0));
        assert_eq!(ms("231029023000W"), utc(2023, 10, 29, 1, 30, 0));
        assert_eq!(ms("231029023000"), utc(2023, 10, 29, 1, 30, 0));
        assert_eq!(ms("231029013000S"), utc(2023, 10, 28, 23, 30, 0));
        assert_eq!(ms("231029033000W"), utc(2023, 10, 29, 2, 30, 0));
        // 2023-03-26: 02:30 does not exist.
        assert_eq!(ms("230326023000S"), utc(2023, 3, 26, 0, 30, 0));
        assert_eq!(ms("230326023000W"), utc(2023, 3, 26, 1, 30, 0));
        assert_eq!(ms("230326013000W"), utc(2023, 3, 26, 0, 30, 0));
        assert_eq!(ms("230326033000S"), utc(2023, 3, 26, 1, 30, 0));
        // 1990: summer time ended on the last Sunday of September.
        assert_eq!(ms("901001120000W"), utc(1990, 10, 1, 11, 0, 0));
        assert_eq!(ms("900920120000S"), utc(1990, 9, 20, 10, 0, 0));
    }

    #[test]
    fn rejects_non_dates() {
        assert_eq!(ms("632525252525W"), None);
        assert_eq!(ms("230229000000W"), None);
        assert_eq!(ms("240229000000W"), utc(2024, 2, 28, 23, 0, 0));
        assert_eq!(ms("2302021327"), None);
        assert_eq!(ms("230202132747X"), None);
        assert_eq!(ms("23020213274S"), None);
        assert_eq!(ms("230202246000W"), None);
        assert!(is_timestamp_shaped(b"632525252525W"));
        assert!(!is_timestamp_shaped(b"00001.001"));
    }
}
