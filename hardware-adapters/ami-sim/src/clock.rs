//! Central European civil time, as the simulated meters keep it: CET (UTC+1) and CEST (UTC+2)
//! from the last Sunday of March 01:00 UTC to the last Sunday of October 01:00 UTC.

use ami_domain::time::{civil_from_days, days_from_civil};

fn last_sunday(year: i64, month: u32) -> i64 {
    let last = days_from_civil(year, month + 1, 1) - 1;
    // 1970-01-01 was a Thursday: Sunday is (days + 4) % 7 == 0.
    last - (last + 4).rem_euclid(7)
}

/// Whether summer time (CEST) is in force at a UTC time (seconds since the epoch).
pub fn is_summer(utc_s: i64) -> bool {
    let (year, _, _) = civil_from_days(utc_s.div_euclid(86_400));
    let start = last_sunday(year, 3) * 86_400 + 3600;
    let end = last_sunday(year, 10) * 86_400 + 3600;
    (start..end).contains(&utc_s)
}

/// The offset of local time from UTC in seconds (3600 or 7200).
pub fn offset_s(utc_s: i64) -> i64 {
    if is_summer(utc_s) { 7200 } else { 3600 }
}

/// Local civil time of a UTC time in milliseconds, as "Unix milliseconds" of the wall clock.
pub fn local_ms(utc_ms: i64) -> i64 {
    utc_ms + offset_s(utc_ms.div_euclid(1000)) * 1000
}

/// The fields of a wall-clock time in milliseconds: year, month, day, hour, minute, second,
/// milliseconds, weekday (1 = Monday .. 7 = Sunday).
pub fn fields(wall_ms: i64) -> (i64, u32, u32, u32, u32, u32, u32, u32) {
    let days = wall_ms.div_euclid(86_400_000);
    let rem = wall_ms.rem_euclid(86_400_000);
    let (y, mo, d) = civil_from_days(days);
    // 1970-01-01 was a Thursday (4 when Monday = 1).
    let weekday = (days + 3).rem_euclid(7) + 1;
    (
        y,
        mo,
        d,
        (rem / 3_600_000) as u32,
        (rem / 60_000 % 60) as u32,
        (rem / 1000 % 60) as u32,
        (rem % 1000) as u32,
        weekday as u32,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use ami_domain::time::unix_ms;

    #[test]
    fn dst_edges() {
        assert_eq!(offset_s(unix_ms(2023, 3, 26, 0, 59, 59) / 1000), 3600);
        assert_eq!(offset_s(unix_ms(2023, 3, 26, 1, 0, 0) / 1000), 7200);
        assert_eq!(offset_s(unix_ms(2023, 10, 29, 0, 59, 59) / 1000), 7200);
        assert_eq!(offset_s(unix_ms(2023, 10, 29, 1, 0, 0) / 1000), 3600);
        // 2023-07-01 was a Saturday.
        assert_eq!(fields(unix_ms(2023, 7, 1, 10, 0, 0)).7, 6);
    }
}
