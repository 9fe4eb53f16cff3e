//! What an OBIS code means in a P1 telegram: how its value is read, and a name for people.
//!
//! The value's shape decides most things (a number with a unit is a reading, anything else an
//! attribute); the OBIS code decides the rest:
//!
//! * [`Kind::Text`]: identifiers (`96.1.x`), text messages (`96.13.x`), the tariff indicator
//!   (`96.14.x`), status words (`96.5.x`), versions (`0.2.x`), device ids (`0.0.x`) and the
//!   COSEM logical device name (`42.0.0`) are text even when they look like numbers
//!   (`00000000000000`, `0001`, `50`).
//! * [`Kind::Code`]: the M-Bus device type (`0-n:24.1.0`), valve position (`0-n:24.4.0`) and
//!   breaker position (`0-0:96.3.10`) are enumeration codes: kept as text exactly as sent
//!   (`003`), and as a count reading as well (DSMR types them as integers, `F3(0,0)`/`I1`).
//! * [`Kind::Clock`]: the telegram time `0-0:1.0.0`.
//! * [`Kind::Profile`]: buffers `(count)(obis)...(entries)`: the power failure event log
//!   `1-0:99.97.0` and the Belgian monthly maximum demand history `0-0:98.1.0`.
//! * [`Kind::LegacyMbus`]: the DSMR 2.2/3.0 M-Bus value `0-n:24.3.0`.
//! * [`Kind::Value`]: everything else, known or not.

use ami_domain::Obis;

/// How the value of an object is read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// The telegram's time stamp.
    Clock,
    /// Text, never a number.
    Text,
    /// An enumeration code: text as sent, and a count.
    Code,
    /// A buffer: count, captured object codes, then entries.
    Profile,
    /// DSMR 2.2/3.0 M-Bus value: `(time)(status)(period)(n)(obis)(unit)` then `n` values.
    LegacyMbus,
    /// A number (with unit, optionally after its own time stamp), else text.
    Value,
}

/// How the value of `obis` is read.
pub fn kind(obis: Obis) -> Kind {
    match (obis.a, obis.c, obis.d, obis.e) {
        (0, 1, 0, 0) => Kind::Clock,
        (_, 96, 1 | 5 | 13 | 14, _) | (_, 0, 0 | 2, _) | (_, 42, 0, _) => Kind::Text,
        (0, 24, 1 | 4, 0) | (0, 96, 3, 10) => Kind::Code,
        (_, 99, 97, _) | (0, 98, 1, _) => Kind::Profile,
        (0, 24, 3, 0) => Kind::LegacyMbus,
        _ => Kind::Value,
    }
}

/// How well an identifier names the meter, lower is better; `None` when `obis` is not one.
///
/// In order: the equipment identifier `0-0:96.1.1` (DSMR, e-MUCS), the serial number
/// `0-0:96.1.0` (E.ON Hungary, Iskra Ireland), the EasyMeter serial number `0-0:96.1.255`,
/// the COSEM logical device name `0-0:42.0.0`.
pub fn meter_id_rank(obis: Obis) -> Option<u8> {
    match (obis.a, obis.b, obis.c, obis.d, obis.e) {
        (0, 0, 96, 1, 1) => Some(0),
        (0, 0, 96, 1, 0) => Some(1),
        (0, 0, 96, 1, 255) => Some(2),
        (0, 0, 42, 0, 0) => Some(3),
        _ => None,
    }
}

/// An English name for the objects P1 telegrams carry (group B of M-Bus objects is the
/// channel), for logs and user interfaces.
pub fn name(obis: Obis) -> Option<&'static str> {
    let electricity = obis.a == 1;
    Some(match (obis.a, obis.c, obis.d, obis.e) {
        (1, 0, 2, 8) => "version information",
        (0, 1, 0, 0) => "telegram time stamp",
        (0, 96, 1, 1) if obis.b == 0 => "equipment identifier",
        (0, 96, 1, 0) if obis.b == 0 => "serial number",
        (0, 96, 1, 4) => "e-MUCS version information",
        (0, 96, 1, 255) => "serial number (EasyMeter)",
        (1, 0, 0, 0) => "device address",
        (0, 42, 0, 0) => "COSEM logical device name",
        (_, 1, 8, 0) if electricity => "active energy import, total",
        (_, 1, 8, 1) if electricity => "active energy import, tariff 1",
        (_, 1, 8, 2) if electricity => "active energy import, tariff 2",
        (_, 1, 8, 3) if electricity => "active energy import, tariff 3",
        (_, 1, 8, 4) if electricity => "active energy import, tariff 4",
        (_, 2, 8, 0) if electricity => "active energy export, total",
        (_, 2, 8, 1) if electricity => "active energy export, tariff 1",
        (_, 2, 8, 2) if electricity => "active energy export, tariff 2",
        (_, 2, 8, 3) if electricity => "active energy export, tariff 3",
        (_, 2, 8, 4) if electricity => "active energy export, tariff 4",
        (_, 3, 8, _) if electricity => "reactive energy import",
        (_, 4, 8, _) if electricity => "reactive energy export",
        (_, 5..=8, 8, 0) if electricity => "reactive energy, quadrant total",
        (_, 15, 8, 0) if electricity => "active energy, absolute sum",
        (0, 96, 14, 0) => "tariff indicator",
        (_, 1, 7, 0) if electricity => "active power import",
        (_, 2, 7, 0) if electricity => "active power export",
        (_, 3, 7, 0) if electricity => "reactive power import",
        (_, 4, 7, 0) if electricity => "reactive power export",
        (_, 5..=8, 7, 0) if electricity => "reactive power, quadrant",
        (_, 21, 7, 0) if electricity => "active power import L1",
        (_, 41, 7, 0) if electricity => "active power import L2",
        (_, 61, 7, 0) if electricity => "active power import L3",
        (_, 22, 7, 0) if electricity => "active power export L1",
        (_, 42, 7, 0) if electricity => "active power export L2",
        (_, 62, 7, 0) if electricity => "active power export L3",
        (_, 32, 7, 0) if electricity => "voltage L1",
        (_, 52, 7, 0) if electricity => "voltage L2",
        (_, 72, 7, 0) if electricity => "voltage L3",
        (_, 31, 7, 0) if electricity => "current L1",
        (_, 51, 7, 0) if electricity => "current L2",
        (_, 71, 7, 0) if electricity => "current L3",
        (_, 13 | 33 | 53 | 73, 7, 0) if electricity => "power factor",
        (_, 14, 7, 0) if electricity => "frequency",
        (_, 32, 32, 0) if electricity => "voltage sags L1",
        (_, 52, 32, 0) if electricity => "voltage sags L2",
        (_, 72, 32, 0) if electricity => "voltage sags L3",
        (_, 32, 36, 0) if electricity => "voltage swells L1",
        (_, 52, 36, 0) if electricity => "voltage swells L2",
        (_, 72, 36, 0) if electricity => "voltage swells L3",
        (_, 1, 4, 0) if electricity => "current average demand",
        (_, 1, 6, 0) if electricity => "maximum demand, current month",
        (_, 31 | 51 | 71, 4, 0) if electricity => "current limit threshold",
        (0, 98, 1, 0) => "monthly billing values (maximum demand history)",
        (0, 17, 0, 0) => "power limit threshold",
        (0, 96, 3, 10) => "breaker position",
        (0, 96, 7, 21) => "power failures",
        (0, 96, 7, 9) => "long power failures",
        (_, 99, 97, 0) => "power failure event log",
        (0, 96, 13, 0) => "text message",
        (0, 96, 13, 1) => "text message code",
        (0, 24, 1, 0) => "M-Bus device type",
        (0, 96, 1, 0 | 1) => "M-Bus equipment identifier",
        (0, 24, 2, 1) => "M-Bus value (last capture)",
        (0, 24, 2, 3) => "M-Bus value, non-temperature-corrected (last capture)",
        (0, 24, 3, 0) => "M-Bus value (DSMR 2.2/3.0)",
        (0, 24, 4, 0) => "M-Bus valve position",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn o(text: &str) -> Obis {
        text.parse()
            .unwrap_or(Obis::new(255, 255, 255, 255, 255, 255))
    }

    #[test]
    fn kinds() {
        assert_eq!(kind(o("0-0:1.0.0")), Kind::Clock);
        assert_eq!(kind(o("0-0:96.1.1")), Kind::Text);
        assert_eq!(kind(o("0-2:96.1.0")), Kind::Text);
        assert_eq!(kind(o("0-0:96.14.0")), Kind::Text);
        assert_eq!(kind(o("1-3:0.2.8")), Kind::Text);
        assert_eq!(kind(o("0-1:24.1.0")), Kind::Code);
        assert_eq!(kind(o("0-0:96.3.10")), Kind::Code);
        assert_eq!(kind(o("1-0:99.97.0")), Kind::Profile);
        assert_eq!(kind(o("0-1:24.3.0")), Kind::LegacyMbus);
        assert_eq!(kind(o("1-0:1.8.1")), Kind::Value);
        assert_eq!(kind(o("0-1:24.2.1")), Kind::Value);
    }

    #[test]
    fn names() {
        assert_eq!(name(o("1-0:1.8.1")), Some("active energy import, tariff 1"));
        assert_eq!(name(o("0-2:24.1.0")), Some("M-Bus device type"));
        assert_eq!(name(o("0-2:96.1.0")), Some("M-Bus equipment identifier"));
        assert_eq!(name(o("0-0:96.1.0")), Some("serial number"));
        assert_eq!(name(o("9-9:9.9.9")), None);
    }
}
