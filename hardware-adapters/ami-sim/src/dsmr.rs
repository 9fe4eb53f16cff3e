//! DSMR P1 v5.0 telegrams, as a Dutch smart meter writes them on its P1 port (NEN-EN-IEC
//! 62056-21 mode D framing, CRC-16/ARC over `/` to `!`).

use ami_domain::checksum::crc16_arc;
use ami_domain::time::civil_from_days;
use std::fmt::Write;

use crate::clock;
use crate::fleet::Meter;

/// A UTC time as DSMR writes it: local Dutch time `YYMMDDhhmmss` and `S` (CEST) or `W` (CET).
pub fn timestamp(ts_ms: i64) -> String {
    let secs = ts_ms.div_euclid(1000);
    let summer = clock::is_summer(secs);
    let local = secs + clock::offset_s(secs);
    let (y, mo, d) = civil_from_days(local.div_euclid(86_400));
    let rem = local.rem_euclid(86_400);
    format!(
        "{:02}{mo:02}{d:02}{:02}{:02}{:02}{}",
        y.rem_euclid(100),
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
        if summer { 'S' } else { 'W' }
    )
}

fn kwh(wh: u64) -> String {
    format!("{:06}.{:03}", wh / 1000, wh % 1000)
}

/// The meter's telegram at true UTC time `ts_ms`, stamped by the meter's own clock: energy
/// per tariff, the active tariff, power, the power failure counters and log, the relay
/// state, the firmware version and the gas meter on channel 1.
pub fn telegram(m: &Meter, ts_ms: i64) -> String {
    let mut t = String::with_capacity(720);
    let hex_id: String = m.id.bytes().map(|b| format!("{b:02X}")).collect();
    let ts = timestamp(m.clock_ms(ts_ms));
    let mut log = format!("({})(0-0:96.7.19)", m.failure_log.len());
    for e in &m.failure_log {
        let _ = write!(log, "({})({:010}*s)", timestamp(e.end_ms), e.duration_s);
    }
    // Writing into a String cannot fail.
    let _ = write!(
        t,
        "/AMI5\\2SIM-P1\r\n\r\n1-3:0.2.8(50)\r\n0-0:1.0.0({ts})\r\n0-0:96.1.1({hex_id})\r\n\
         1-0:1.8.1({}*kWh)\r\n1-0:1.8.2({}*kWh)\r\n1-0:2.8.1({}*kWh)\r\n1-0:2.8.2({}*kWh)\r\n\
         0-0:96.14.0({:04})\r\n1-0:1.7.0({:02}.{:03}*kW)\r\n1-0:2.7.0({:02}.{:03}*kW)\r\n\
         0-0:96.7.21({:05})\r\n0-0:96.7.9({:05})\r\n1-0:99.97.0{log}\r\n\
         1-0:32.7.0({:03}.{}*V)\r\n1-0:31.7.0({:03}*A)\r\n\
         0-0:96.3.10({})\r\n1-0:0.2.0({})\r\n0-1:24.1.0(003)\r\n0-1:96.1.0({hex_id})\r\n0-1:24.2.1({ts})({:05}.{:03}*m3)\r\n!",
        kwh(m.import_wh[0]),
        kwh(m.import_wh[1]),
        kwh(m.export_wh[0]),
        kwh(m.export_wh[1]),
        m.active_tariff(ts_ms),
        m.power_w.0 / 1000,
        m.power_w.0 % 1000,
        m.power_w.1 / 1000,
        m.power_w.1 % 1000,
        m.power_failures.min(99_999),
        m.long_power_failures.min(99_999),
        230 + (m.power_w.0 % 7),
        m.power_w.0 % 10,
        m.power_w.0 / 230,
        u8::from(m.relay_closed),
        m.firmware,
        m.gas_l / 1000,
        m.gas_l % 1000,
    );
    let crc = crc16_arc(t.as_bytes());
    let _ = write!(t, "{crc:04X}\r\n");
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use ami_domain::time::unix_ms;

    #[test]
    fn local_time_follows_dutch_dst() {
        assert_eq!(timestamp(unix_ms(2017, 1, 2, 18, 20, 2)), "170102192002W");
        assert_eq!(timestamp(unix_ms(2023, 7, 1, 10, 0, 0)), "230701120000S");
        // DST starts 2023-03-26 01:00 UTC.
        assert_eq!(timestamp(unix_ms(2023, 3, 26, 0, 59, 59)), "230326015959W");
        assert_eq!(timestamp(unix_ms(2023, 3, 26, 1, 0, 0)), "230326030000S");
    }

    #[test]
    fn telegram_ends_with_its_crc() {
        let fleet = crate::Fleet::new(1);
        let t = telegram(&fleet.meters[0], unix_ms(2023, 7, 1, 10, 0, 0));
        let bang = t.find('!').unwrap_or(0);
        let crc = u16::from_str_radix(&t[bang + 1..bang + 5], 16).unwrap_or(0);
        assert_eq!(crc, crc16_arc(&t.as_bytes()[..=bang]));
    }
}
