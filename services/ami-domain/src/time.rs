//! Civil (proleptic Gregorian, UTC) dates and times from and to Unix milliseconds, without a
//! time-zone database: calendars with DST are explicit data in ami, not host settings.

/// Days since 1970-01-01 of a civil date (any year; months 1-12, days 1-31 unchecked).
pub const fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let m = month as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + day as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil date (year, month, day) of a day number since 1970-01-01.
pub const fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + if month <= 2 { 1 } else { 0 };
    (year, month, day)
}

/// Unix milliseconds of a civil UTC date and time.
pub const fn unix_ms(year: i64, month: u32, day: u32, hour: u32, minute: u32, second: u32) -> i64 {
    ((days_from_civil(year, month, day) * 24 + hour as i64) * 60 + minute as i64) * 60_000
        + second as i64 * 1000
}

/// The current time as UTC milliseconds since the Unix epoch (0 if the clock is before it).
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// RFC 3339 text of Unix milliseconds, UTC (`2017-01-02T19:20:02Z`, milliseconds when non-zero).
pub fn rfc3339(ms: i64) -> String {
    let days = ms.div_euclid(86_400_000);
    let rem = ms.rem_euclid(86_400_000);
    let (y, mo, d) = civil_from_days(days);
    let (h, mi, s, frac) = (
        rem / 3_600_000,
        rem / 60_000 % 60,
        rem / 1000 % 60,
        rem % 1000,
    );
    if frac == 0 {
        format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
    } else {
        format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{frac:03}Z")
    }
}

/// Parses RFC 3339 / ISO 8601 text with a `Z` or `±hh:mm` offset into Unix milliseconds.
pub fn parse_rfc3339(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        let s = text.get(r)?;
        if s.bytes().all(|c| c.is_ascii_digit()) {
            s.parse().ok()
        } else {
            None
        }
    };
    if b.len() < 19 || b.get(4) != Some(&b'-') || b.get(7) != Some(&b'-') {
        return None;
    }
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, s) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || s > 60 {
        return None;
    }
    let mut rest = &text[19..];
    let mut frac_ms = 0i64;
    if let Some(r) = rest.strip_prefix('.') {
        let digits = r.bytes().take_while(u8::is_ascii_digit).count();
        let f = r.get(..digits)?;
        frac_ms = format!("{:0<3}", f.get(..3.min(digits))?).parse().ok()?;
        rest = &r[digits..];
    }
    let offset_s: i64 = match rest {
        "Z" | "z" | "" => 0,
        o if o.len() == 6 && (o.starts_with('+') || o.starts_with('-')) => {
            let oh: i64 = o.get(1..3)?.parse().ok()?;
            let om: i64 = o.get(4..6)?.parse().ok()?;
            let v = oh * 3600 + om * 60;
            if o.starts_with('-') { -v } else { v }
        }
        _ => return None,
    };
    Some(unix_ms(i64::from(y), mo, d, h, mi, s) + frac_ms - offset_s * 1000)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_dates() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(unix_ms(2017, 1, 2, 19, 20, 2), 1_483_384_802_000);
        assert_eq!(rfc3339(1_483_384_802_000), "2017-01-02T19:20:02Z");
        assert_eq!(
            parse_rfc3339("2016-11-07T18:00:00+00:00"),
            Some(unix_ms(2016, 11, 7, 18, 0, 0))
        );
        assert_eq!(
            parse_rfc3339("2016-11-07T19:00:00+01:00"),
            Some(unix_ms(2016, 11, 7, 18, 0, 0))
        );
        assert_eq!(
            parse_rfc3339("2016-11-07T18:00:00.5Z"),
            Some(unix_ms(2016, 11, 7, 18, 0, 0) + 500)
        );
        assert_eq!(parse_rfc3339("2016-13-07T18:00:00Z"), None);
        assert_eq!(parse_rfc3339("garbage"), None);
    }

    proptest! {
        #[test]
        fn days_round_trip(days in -1_000_000i64..1_000_000) {
            let (y, m, d) = civil_from_days(days);
            prop_assert_eq!(days_from_civil(y, m, d), days);
        }

        #[test]
        fn rfc3339_round_trips(ms in 0i64..4_102_444_800_000) {
            prop_assert_eq!(parse_rfc3339(&rfc3339(ms)), Some(ms));
        }

        #[test]
        fn parse_never_panics(s in ".{0,40}") {
            let _ = parse_rfc3339(&s);
        }
    }
}
