//! COSEM date-time (12 bytes), date (5) and time (4) (IEC 62056-6-2 4.1.6.1): fields that may be
//! "not specified", the deviation from UTC and the clock status.
//!
//! The instant is `local + deviation` minutes: the deviation is local time's offset *to* UTC,
//! so Central European Time sends -60 (`FF C4`), as amshan and dlms-cosem read it. A date-time
//! without deviation (`80 00`) is taken as UTC (nothing better is known; DLMS has no zone name).

use ami_domain::Quality;
use ami_domain::time::{days_from_civil, unix_ms};

/// Clock status bit: invalid value.
pub const STATUS_INVALID: u8 = 0x01;
/// Clock status bit: doubtful value.
pub const STATUS_DOUBTFUL: u8 = 0x02;
/// Clock status bit: different clock base.
pub const STATUS_DIFFERENT_BASE: u8 = 0x04;
/// Clock status bit: invalid clock status.
pub const STATUS_INVALID_STATUS: u8 = 0x08;
/// Clock status bit: daylight saving active.
pub const STATUS_DST: u8 = 0x80;

/// A decoded COSEM date-time; `None` fields were "not specified".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DateTime {
    /// Year.
    pub year: Option<u16>,
    /// Month 1-12 (0xFD/0xFE: end/begin of daylight saving, kept raw).
    pub month: Option<u8>,
    /// Day of month 1-31 (0xFD/0xFE: second last / last day, kept raw).
    pub day: Option<u8>,
    /// Day of week 1 (Monday) to 7.
    pub weekday: Option<u8>,
    /// Hour.
    pub hour: Option<u8>,
    /// Minute.
    pub minute: Option<u8>,
    /// Second.
    pub second: Option<u8>,
    /// Hundredths of a second.
    pub hundredths: Option<u8>,
    /// Minutes of local time to UTC.
    pub deviation: Option<i16>,
    /// Clock status bits.
    pub status: Option<u8>,
}

const fn opt(b: u8) -> Option<u8> {
    if b == 0xFF { None } else { Some(b) }
}

fn days_in_month(year: i64, month: u8) -> u8 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        _ => 28,
    }
}

impl DateTime {
    /// Reads the 12 bytes of a date-time.
    pub fn from_bytes(b: &[u8; 12]) -> Self {
        let year = u16::from_be_bytes([b[0], b[1]]);
        let deviation = i16::from_be_bytes([b[9], b[10]]);
        Self {
            year: (year != 0xFFFF).then_some(year),
            month: opt(b[2]),
            day: opt(b[3]),
            weekday: opt(b[4]),
            hour: opt(b[5]),
            minute: opt(b[6]),
            second: opt(b[7]),
            hundredths: opt(b[8]),
            deviation: (deviation != i16::MIN).then_some(deviation),
            status: opt(b[11]),
        }
    }

    /// Reads a date-time from a slice that must be 12 bytes long.
    pub fn from_slice(b: &[u8]) -> Option<Self> {
        <&[u8; 12]>::try_from(b).ok().map(Self::from_bytes)
    }

    /// The local wall-clock time as Unix milliseconds (as if it were UTC), when every field
    /// up to the second is specified and valid; unspecified hundredths count as 0.
    pub fn local_ms(&self) -> Option<i64> {
        let year = i64::from(self.year?);
        let month = self.month.filter(|m| (1..=12).contains(m))?;
        let day = self
            .day
            .filter(|d| *d >= 1 && *d <= days_in_month(year, month))?;
        let hour = self.hour.filter(|h| *h < 24)?;
        let minute = self.minute.filter(|m| *m < 60)?;
        let second = self.second.filter(|s| *s < 60)?;
        let hundredths = match self.hundredths {
            Some(h) if h < 100 => i64::from(h),
            Some(_) => return None,
            None => 0,
        };
        Some(
            unix_ms(
                year,
                u32::from(month),
                u32::from(day),
                u32::from(hour),
                u32::from(minute),
                u32::from(second),
            ) + hundredths * 10,
        )
    }

    /// The instant in Unix milliseconds, UTC (see the module doc for the deviation).
    pub fn unix_ms(&self) -> Option<i64> {
        let local = self.local_ms()?;
        let dev = match self.deviation {
            Some(d) if (-840..=840).contains(&d) => i64::from(d),
            Some(_) => return None,
            None => 0,
        };
        Some(local + dev * 60_000)
    }

    /// The quality flags the clock status implies.
    pub fn quality(&self) -> Quality {
        let s = self.status.unwrap_or(0);
        let mut q = Quality::VALID;
        if s & (STATUS_INVALID | STATUS_INVALID_STATUS) != 0 {
            q = q.with(Quality::CLOCK_INVALID);
        }
        if s & STATUS_DOUBTFUL != 0 {
            q = q.with(Quality::SUSPECT);
        }
        q
    }

    /// ISO 8601 text of the local time with its offset (`2021-09-22T17:35:30+01:00`), without
    /// offset when the deviation is not specified; `None` if the date is not complete.
    pub fn to_text(&self) -> Option<String> {
        let local = self.local_ms()?;
        let days = local.div_euclid(86_400_000);
        let rem = local.rem_euclid(86_400_000);
        let (y, mo, d) = ami_domain::time::civil_from_days(days);
        debug_assert_eq!(days_from_civil(y, mo, d), days);
        let mut s = format!(
            "{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}",
            rem / 3_600_000,
            rem / 60_000 % 60,
            rem / 1000 % 60
        );
        if let Some(h) = self.hundredths.filter(|h| *h > 0 && *h < 100) {
            s.push_str(&format!(".{h:02}"));
        }
        if let Some(dev) = self.deviation.filter(|d| (-840..=840).contains(d)) {
            // Offset of local time from UTC is the negated deviation.
            let off = -i32::from(dev);
            let sign = if off < 0 { '-' } else { '+' };
            let off = off.unsigned_abs();
            s.push_str(&format!("{sign}{:02}:{:02}", off / 60, off % 60));
        }
        Some(s)
    }
}

/// A COSEM date (5 bytes) as `YYYY-MM-DD` text, `None` if not fully specified.
pub fn date_text(b: &[u8; 5]) -> Option<String> {
    let year = u16::from_be_bytes([b[0], b[1]]);
    let (month, day) = (b[2], b[3]);
    if year == 0xFFFF || !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    Some(format!("{year:04}-{month:02}-{day:02}"))
}

/// A COSEM time (4 bytes) as `hh:mm:ss` text, `None` if not fully specified.
pub fn time_text(b: &[u8; 4]) -> Option<String> {
    let (h, m, s) = (b[0], b[1], b[2]);
    if h > 23 || m > 59 || s > 59 {
        return None;
    }
    Some(format!("{h:02}:{m:02}:{s:02}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dt(hex: [u8; 12]) -> DateTime {
        DateTime::from_bytes(&hex)
    }

    #[test]
    fn deviation_is_local_to_utc() {
        // 2021-09-22 17:35:30, deviation -60 (CET): 16:35:30 UTC.
        let d = dt([
            0x07, 0xE5, 9, 0x16, 3, 0x11, 0x23, 0x1E, 0xFF, 0xFF, 0xC4, 0,
        ]);
        assert_eq!(d.unix_ms(), Some(unix_ms(2021, 9, 22, 16, 35, 30)));
        assert_eq!(d.to_text().as_deref(), Some("2021-09-22T17:35:30+01:00"));
        assert_eq!(d.quality(), Quality::VALID);
    }

    #[test]
    fn unspecified_fields() {
        let d = dt([0x07, 0xE3, 12, 16, 1, 7, 59, 40, 0xFF, 0x80, 0, 0xFF]);
        assert_eq!(d.unix_ms(), Some(unix_ms(2019, 12, 16, 7, 59, 40)));
        assert_eq!(d.to_text().as_deref(), Some("2019-12-16T07:59:40"));
        let d = dt([0xFF, 0xFF, 12, 16, 1, 7, 59, 40, 0xFF, 0x80, 0, 0xFF]);
        assert_eq!(d.unix_ms(), None);
        let d = dt([0x07, 0xE3, 2, 30, 1, 7, 59, 40, 0xFF, 0x80, 0, 0x01]);
        assert_eq!(d.unix_ms(), None);
        assert_eq!(d.quality(), Quality::CLOCK_INVALID);
    }
}
