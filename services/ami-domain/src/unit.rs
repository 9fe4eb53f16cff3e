//! Units of measure, numbered as in the DLMS/COSEM unit table (IEC 62056-6-2, class 3).
//!
//! Only base units are kept; SI prefixes (k, M, m) move into the value's scale, so
//! `1.001 kWh` is held as `1001 Wh` and every decoder agrees on one unit per quantity.

use std::fmt;

/// Why a unit text is not one we know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnitError {
    /// The unit symbol is not in the table.
    #[error("unknown unit {0:?}")]
    Unknown(String),
}

macro_rules! units {
    ($($variant:ident = $code:literal, $symbol:literal, $doc:literal;)*) => {
        /// A base unit; the discriminant is the DLMS unit code.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[repr(u8)]
        pub enum Unit {
            $(#[doc = $doc] $variant = $code,)*
        }

        impl Unit {
            /// Every unit, in code order.
            pub const ALL: &'static [Unit] = &[$(Unit::$variant,)*];

            /// The unit for a DLMS unit code, if the code is one we carry.
            pub const fn from_code(code: u8) -> Option<Self> {
                match code {
                    $($code => Some(Unit::$variant),)*
                    _ => None,
                }
            }

            /// The printed symbol (`Wh`, `m3`, ...).
            pub const fn symbol(self) -> &'static str {
                match self {
                    $(Unit::$variant => $symbol,)*
                }
            }
        }
    };
}

units! {
    Year = 1, "a", "year";
    Month = 2, "mo", "month";
    Week = 3, "wk", "week";
    Day = 4, "d", "day";
    Hour = 5, "h", "hour";
    Minute = 6, "min", "minute";
    Second = 7, "s", "second";
    Degree = 8, "deg", "phase angle, degree";
    Celsius = 9, "degC", "temperature, degree Celsius";
    Currency = 10, "currency", "local currency";
    Metre = 11, "m", "length, metre";
    MetrePerSecond = 12, "m/s", "speed";
    CubicMetre = 13, "m3", "volume";
    CubicMetreCorrected = 14, "m3corr", "corrected volume";
    CubicMetrePerHour = 15, "m3/h", "volume flux";
    CubicMetrePerHourCorrected = 16, "m3corr/h", "corrected volume flux";
    CubicMetrePerDay = 17, "m3/d", "volume flux per day";
    Litre = 19, "l", "volume, litre";
    Kilogram = 20, "kg", "mass";
    Newton = 21, "N", "force";
    Pascal = 23, "Pa", "pressure";
    Bar = 24, "bar", "pressure, bar";
    Joule = 25, "J", "energy, joule";
    JoulePerHour = 26, "J/h", "thermal power";
    Watt = 27, "W", "active power";
    VoltAmpere = 28, "VA", "apparent power";
    Var = 29, "var", "reactive power";
    WattHour = 30, "Wh", "active energy";
    VoltAmpereHour = 31, "VAh", "apparent energy";
    VarHour = 32, "varh", "reactive energy";
    Ampere = 33, "A", "current";
    Coulomb = 34, "C", "electrical charge";
    Volt = 35, "V", "voltage";
    Hertz = 44, "Hz", "frequency";
    Kelvin = 52, "K", "temperature difference, kelvin";
    Percent = 56, "%", "percentage";
    AmpereHour = 57, "Ah", "ampere-hour";
    DecibelMilliwatt = 70, "dBm", "signal strength";
    Decibel = 72, "dB", "logarithmic ratio";
    Other = 254, "other", "another unit, named in the frame";
    Count = 255, "", "no unit: a count or a dimensionless value";
}

/// Calls `$callback! { Year, Month, ... }` with every [`Unit`] variant name, so that other
/// crates (the WIT bindings of host and SDK, whose `unit` enum uses the same names) can map
/// units without restating the table.
#[macro_export]
macro_rules! with_unit_variants {
    ($callback:ident) => {
        $callback! { Year, Month, Week, Day, Hour, Minute, Second, Degree, Celsius, Currency, Metre, MetrePerSecond, CubicMetre, CubicMetreCorrected, CubicMetrePerHour, CubicMetrePerHourCorrected, CubicMetrePerDay, Litre, Kilogram, Newton, Pascal, Bar, Joule, JoulePerHour, Watt, VoltAmpere, Var, WattHour, VoltAmpereHour, VarHour, Ampere, Coulomb, Volt, Hertz, Kelvin, Percent, AmpereHour, DecibelMilliwatt, Decibel, Other, Count }
    };
}

impl Unit {
    /// Reads a unit symbol as meters print it (`kWh`, `m3`, `*V`, `kvarh`, `GJ`), giving the
    /// base unit and the power of ten of its prefix.
    pub fn parse_symbol(text: &str) -> Result<(Self, i8), UnitError> {
        let t = text.trim().trim_start_matches('*');
        if let Some(unit) = Self::exact(t) {
            return Ok((unit, 0));
        }
        let mut chars = t.chars();
        let prefix = match chars.next() {
            Some('k') => 3,
            Some('M') => 6,
            Some('G') => 9,
            Some('m') => -3,
            _ => return Err(UnitError::Unknown(text.to_owned())),
        };
        match Self::exact(chars.as_str()) {
            Some(unit) => Ok((unit, prefix)),
            None => Err(UnitError::Unknown(text.to_owned())),
        }
    }

    fn exact(t: &str) -> Option<Self> {
        Some(match t {
            "" => Unit::Count,
            "Wh" => Unit::WattHour,
            "W" => Unit::Watt,
            "varh" | "VArh" | "VARh" => Unit::VarHour,
            "var" | "VAr" | "VAR" => Unit::Var,
            "VAh" => Unit::VoltAmpereHour,
            "VA" => Unit::VoltAmpere,
            "V" => Unit::Volt,
            "A" => Unit::Ampere,
            "Hz" => Unit::Hertz,
            "m3" | "m³" => Unit::CubicMetre,
            "m3/h" => Unit::CubicMetrePerHour,
            "l" | "L" => Unit::Litre,
            "J" => Unit::Joule,
            "s" => Unit::Second,
            "min" => Unit::Minute,
            "h" => Unit::Hour,
            "d" => Unit::Day,
            "C" | "°C" | "degC" => Unit::Celsius,
            "K" => Unit::Kelvin,
            "%" => Unit::Percent,
            "bar" => Unit::Bar,
            "Pa" => Unit::Pascal,
            "kg" => Unit::Kilogram,
            "deg" | "°" => Unit::Degree,
            _ => return None,
        })
    }
}

impl fmt::Display for Unit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.symbol())
    }
}

#[cfg(feature = "serde")]
impl serde::Serialize for Unit {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.symbol())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_move_into_scale() {
        assert_eq!(Unit::parse_symbol("kWh"), Ok((Unit::WattHour, 3)));
        assert_eq!(Unit::parse_symbol("*kW"), Ok((Unit::Watt, 3)));
        assert_eq!(Unit::parse_symbol("GJ"), Ok((Unit::Joule, 9)));
        assert_eq!(Unit::parse_symbol("m3"), Ok((Unit::CubicMetre, 0)));
        assert_eq!(Unit::parse_symbol("kvarh"), Ok((Unit::VarHour, 3)));
        assert!(Unit::parse_symbol("furlong").is_err());
    }

    #[test]
    fn codes_round_trip() {
        for u in Unit::ALL {
            assert_eq!(Unit::from_code(*u as u8), Some(*u));
        }
        assert_eq!(Unit::from_code(200), None);
    }
}
