//! IEC 62056-21 mode C readouts as a meter answers a reader: the identification message
//! `/AMI5SIM-IEC` CR LF (`5`: 9600 Bd) and the data message `STX data-sets ! CR LF ETX BCC`
//! (BCC: XOR of every byte after STX up to and including ETX).
//!
//! The data sets (reduced OBIS codes, A = 1 and B = 0 implied):
//!
//! | address | value |
//! | --- | --- |
//! | `0.0.0` | the serial number ([`Meter::id`]) |
//! | `0.9.1`, `0.9.2` | the meter's clock, local time `hh:mm:ss` and date `YYMMDD` |
//! | `1.8.0`, `1.8.1`, `1.8.2` | import energy, total and per tariff (`*kWh`, 3 decimals) |
//! | `2.8.0`, `2.8.1`, `2.8.2` | export energy |
//! | `1.7.0`, `2.7.0` | import and export power (`*kW`, 3 decimals) |
//! | `32.7.0`, `31.7.0` | voltage (`*V`) and current (`*A`) |
//! | `96.14.0` | the active tariff |
//! | `96.3.10` | the relay (1 closed, 0 open) |
//! | `C.7.0` | the number of power failures |
//! | `F.F` | the error register (8 hex digits: 00000100 cover opened, 00000200 magnetic field) |
//! | `0.2.0` | the firmware version |

use std::fmt::Write;

use crate::clock;
use crate::fleet::{Meter, TamperKind};

/// Start of text.
pub const STX: u8 = 0x02;
/// End of text.
pub const ETX: u8 = 0x03;

/// The block check character: XOR of `bytes`.
pub fn bcc(bytes: &[u8]) -> u8 {
    bytes.iter().fold(0, |a, b| a ^ b)
}

fn kwh(wh: u64) -> String {
    format!("{:06}.{:03}*kWh", wh / 1000, wh % 1000)
}

fn kw(w: u64) -> String {
    format!("{:02}.{:03}*kW", w / 1000, w % 1000)
}

/// The meter's readout at true UTC time `ts_ms`: identification and data message.
pub fn readout(m: &Meter, ts_ms: i64) -> Vec<u8> {
    let (y, mo, d, h, mi, s, _, _) = clock::fields(clock::local_ms(m.clock_ms(ts_ms)));
    let (imp, exp) = (m.import_wh, m.export_wh);
    let error = match m.tamper {
        None => 0u32,
        Some(TamperKind::CoverOpen) => 0x100,
        Some(TamperKind::MagneticField) => 0x200,
    };
    let mut data = String::with_capacity(400);
    // Writing into a String cannot fail.
    let _ = write!(
        data,
        "0.0.0({})\r\n0.9.1({h:02}:{mi:02}:{s:02})\r\n0.9.2({:02}{mo:02}{d:02})\r\n\
         1.8.0({})\r\n1.8.1({})\r\n1.8.2({})\r\n2.8.0({})\r\n2.8.1({})\r\n2.8.2({})\r\n\
         1.7.0({})\r\n2.7.0({})\r\n32.7.0({:03}.{}*V)\r\n31.7.0({:03}.{:02}*A)\r\n\
         96.14.0({})\r\n96.3.10({})\r\nC.7.0({:05})\r\nF.F({error:08X})\r\n0.2.0({})\r\n!\r\n",
        m.id,
        y.rem_euclid(100),
        kwh(imp[0] + imp[1]),
        kwh(imp[0]),
        kwh(imp[1]),
        kwh(exp[0] + exp[1]),
        kwh(exp[0]),
        kwh(exp[1]),
        kw(m.power_w.0),
        kw(m.power_w.1),
        230 + (m.power_w.0 % 7),
        m.power_w.0 % 10,
        m.power_w.0 / 230,
        m.power_w.0 * 100 / 230 % 100,
        m.active_tariff(ts_ms),
        u8::from(m.relay_closed),
        m.power_failures.min(99_999),
        m.firmware,
    );
    let mut out = b"/AMI5SIM-IEC\r\n".to_vec();
    out.push(STX);
    out.extend_from_slice(data.as_bytes());
    out.push(ETX);
    let check = bcc(out
        .get(out.iter().position(|&b| b == STX).map_or(0, |i| i + 1)..)
        .unwrap_or_default());
    out.push(check);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bcc_closes_the_data_message() {
        let fleet = crate::Fleet::new(1);
        let r = readout(&fleet.meters[0], 1_700_000_000_000);
        let stx = r.iter().position(|&b| b == STX).unwrap();
        let n = r.len();
        assert_eq!(r[n - 2], ETX);
        assert_eq!(bcc(&r[stx + 1..n - 1]), r[n - 1]);
    }
}
