//! Readings, quality flags and a decoded frame.

use crate::{Event, Obis, Quantity, Unit};

/// Quality flags of a reading (a bit set; empty means a valid, measured value).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Quality(pub u16);

impl Quality {
    /// A valid measured value.
    pub const VALID: Quality = Quality(0);
    /// The meter marked the value doubtful.
    pub const SUSPECT: Quality = Quality(1 << 0);
    /// Estimated (by the meter or by VEE).
    pub const ESTIMATED: Quality = Quality(1 << 1);
    /// Edited by a person.
    pub const EDITED: Quality = Quality(1 << 2);
    /// The meter's clock was invalid or not set when it stamped the value.
    pub const CLOCK_INVALID: Quality = Quality(1 << 3);
    /// The register overflowed (rolled over) in this interval.
    pub const OVERFLOW: Quality = Quality(1 << 4);
    /// The frame carried no time; the receiver's time was used.
    pub const TIME_FROM_RECEIVER: Quality = Quality(1 << 5);
    /// A power outage happened during the interval.
    pub const POWER_OUTAGE: Quality = Quality(1 << 6);
    /// The meter's clock was adjusted during the interval.
    pub const CLOCK_ADJUSTED: Quality = Quality(1 << 7);

    /// The names of the flags, for JSON and logs.
    pub const NAMES: [(Quality, &'static str); 8] = [
        (Quality::SUSPECT, "suspect"),
        (Quality::ESTIMATED, "estimated"),
        (Quality::EDITED, "edited"),
        (Quality::CLOCK_INVALID, "clock-invalid"),
        (Quality::OVERFLOW, "overflow"),
        (Quality::TIME_FROM_RECEIVER, "time-from-receiver"),
        (Quality::POWER_OUTAGE, "power-outage"),
        (Quality::CLOCK_ADJUSTED, "clock-adjusted"),
    ];

    /// Whether every flag of `other` is set here.
    pub const fn contains(self, other: Quality) -> bool {
        self.0 & other.0 == other.0
    }

    /// The union of both sets.
    #[must_use]
    pub const fn with(self, other: Quality) -> Quality {
        Quality(self.0 | other.0)
    }

    /// The names of the flags set, in a fixed order.
    pub fn names(self) -> Vec<&'static str> {
        Self::NAMES
            .iter()
            .filter(|(q, _)| self.contains(*q))
            .map(|(_, n)| *n)
            .collect()
    }
}

#[cfg(feature = "serde")]
impl serde::Serialize for Quality {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.names())
    }
}

/// One measured value of one register at one time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reading {
    /// Which register.
    pub register: Obis,
    /// The value, in `unit`.
    pub value: Quantity,
    /// The base unit (prefixes are in the value's scale).
    pub unit: Unit,
    /// UTC time of the value (an interval's end), milliseconds since the Unix epoch.
    pub ts_ms: i64,
    /// Quality flags.
    pub quality: Quality,
}

/// What a decoder makes of one frame.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Decoded {
    /// The meter the frame came from as the frame names it (equipment id, system title,
    /// M-Bus address), if it does.
    pub meter: Option<String>,
    /// Numeric readings.
    pub readings: Vec<Reading>,
    /// Events.
    pub events: Vec<Event>,
    /// Non-numeric values (identifiers, text messages, tariff names), per register.
    pub attributes: Vec<(Obis, String)>,
}
