//! Load shapes: household consumption over the day and week, and rooftop PV.

/// Hour of day (0-24, fractional) of a UTC time in Central European local time (CET, ignoring
/// DST for the shape: an hour's shift does not matter to a profile).
fn local_hour(ts_ms: i64) -> f64 {
    let secs = ts_ms.div_euclid(1000) + 3600;
    (secs.rem_euclid(86_400)) as f64 / 3600.0
}

fn weekday(ts_ms: i64) -> i64 {
    // 1970-01-01 was a Thursday (3 when Monday = 0).
    (ts_ms.div_euclid(86_400_000) + 3).rem_euclid(7)
}

/// Household demand in watts at a time, for a meter whose size factor is `scale` (about 1).
pub fn household_w(ts_ms: i64, scale: f64) -> f64 {
    let h = local_hour(ts_ms);
    let bump =
        |centre: f64, width: f64, height: f64| height * (-((h - centre) / width).powi(2)).exp();
    let weekend = if weekday(ts_ms) >= 5 { 1.15 } else { 1.0 };
    let w =
        180.0 + bump(7.5, 1.2, 450.0) + bump(19.0, 2.0, 900.0) + bump(13.0, 2.5, 200.0) * weekend;
    w * scale * weekend
}

/// Rooftop PV output in watts for a system of `peak_w`, a clear-sky bell from 06:00 to 20:00.
pub fn pv_w(ts_ms: i64, peak_w: f64) -> f64 {
    let h = local_hour(ts_ms);
    if !(6.0..=20.0).contains(&h) {
        return 0.0;
    }
    let x = (h - 13.0) / 3.2;
    peak_w * (-x * x).exp()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evening_peak_beats_night_and_pv_is_zero_at_night() {
        let day = 19_000 * 86_400_000i64; // a UTC midnight
        let night = household_w(day + 2 * 3_600_000, 1.0);
        let evening = household_w(day + 18 * 3_600_000, 1.0);
        assert!(evening > 3.0 * night, "{evening} vs {night}");
        assert_eq!(pv_w(day + 1_000, 4000.0), 0.0);
        assert!(pv_w(day + 12 * 3_600_000, 4000.0) > 3000.0);
    }
}
