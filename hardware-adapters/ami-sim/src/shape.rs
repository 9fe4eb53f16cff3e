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

/// Rooftop PV output with the day's weather: the clear-sky bell of [`pv_w`] times a cloud
/// factor from 0.3 (overcast) to 1.0 (clear) that depends only on the day and `site`, so the
/// same site has the same weather however the simulation is stepped.
pub fn pv_w_weather(ts_ms: i64, peak_w: f64, site: u64) -> f64 {
    let day = ts_ms.div_euclid(86_400_000) as u64;
    let clouds = 0.3 + 0.7 * crate::rng::hash_unit(site ^ 0x5EED_C10D, day);
    pv_w(ts_ms, peak_w) * clouds
}

/// Electric-vehicle charging in watts for a household whose charger draws `charger_w` (0 =
/// no EV): on most evenings the car arrives between 17:00 and 20:00 local time and charges
/// at full power until it has taken 6-30 kWh (so some sessions run past midnight). Arrival
/// and energy depend only on the day and `household`.
pub fn ev_w(ts_ms: i64, charger_w: f64, household: u64) -> f64 {
    if charger_w <= 0.0 {
        return 0.0;
    }
    let local_ms = ts_ms + 3_600_000;
    let day = local_ms.div_euclid(86_400_000);
    // Today's session, and yesterday's if it runs past midnight.
    for d in [day, day - 1] {
        let du = d as u64;
        if crate::rng::hash_unit(household, du.wrapping_mul(3)) > 0.7 {
            continue; // no charging that day
        }
        let arrive_h = 17.0 + 3.0 * crate::rng::hash_unit(household, du.wrapping_mul(3) + 1);
        let kwh = 6.0 + 24.0 * crate::rng::hash_unit(household, du.wrapping_mul(3) + 2);
        let start = d * 86_400_000 + (arrive_h * 3_600_000.0) as i64;
        let end = start + (kwh * 1000.0 / charger_w * 3_600_000.0) as i64;
        if (start..end).contains(&local_ms) {
            return charger_w;
        }
    }
    0.0
}

#[cfg(test)]
mod ev_tests {
    use super::*;

    #[test]
    fn ev_charges_in_the_evening_only() {
        let day0 = 19_000 * 86_400_000i64;
        let mut evening = 0;
        let mut morning = 0;
        for d in 0..60 {
            let day = day0 + d * 86_400_000;
            // 19:30 local = 18:30 UTC; 10:00 local = 09:00 UTC.
            if ev_w(day + 18 * 3_600_000 + 1_800_000, 11_000.0, 42) > 0.0 {
                evening += 1;
            }
            if ev_w(day + 9 * 3_600_000, 11_000.0, 42) > 0.0 {
                morning += 1;
            }
        }
        assert!(evening > 10, "{evening}");
        assert_eq!(morning, 0);
        assert_eq!(ev_w(day0 + 18 * 3_600_000, 0.0, 42), 0.0);
    }
}
