//! Meter events: what a meter reports besides measurements.

/// The kinds of event every decoder maps its protocol's codes onto.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// Supply lost.
    PowerDown,
    /// Supply restored.
    PowerUp,
    /// The meter's last message before losing supply.
    LastGasp,
    /// Tampering detected (generic).
    Tamper,
    /// Terminal or meter cover opened.
    CoverOpen,
    /// Strong magnetic field detected.
    MagneticField,
    /// Relay (breaker/valve) opened: supply disconnected.
    RelayOpen,
    /// Relay closed: supply reconnected.
    RelayClosed,
    /// Clock set or adjusted.
    ClockAdjusted,
    /// A firmware image was activated.
    FirmwareActivated,
    /// Any other alarm; the protocol's own code says which.
    Alarm,
}

impl EventKind {
    /// The canonical name used in subjects and JSON (`power-down`, `relay-open`, ...).
    pub const fn name(self) -> &'static str {
        match self {
            EventKind::PowerDown => "power-down",
            EventKind::PowerUp => "power-up",
            EventKind::LastGasp => "last-gasp",
            EventKind::Tamper => "tamper",
            EventKind::CoverOpen => "cover-open",
            EventKind::MagneticField => "magnetic-field",
            EventKind::RelayOpen => "relay-open",
            EventKind::RelayClosed => "relay-closed",
            EventKind::ClockAdjusted => "clock-adjusted",
            EventKind::FirmwareActivated => "firmware-activated",
            EventKind::Alarm => "alarm",
        }
    }
}

/// Calls `$callback! { PowerDown, PowerUp, ... }` with every [`EventKind`] variant name, so
/// that the WIT bindings of host and SDK (whose `event-kind` enum uses the same names) can map
/// kinds without restating the list.
#[macro_export]
macro_rules! with_event_kind_variants {
    ($callback:ident) => {
        $callback! { PowerDown, PowerUp, LastGasp, Tamper, CoverOpen, MagneticField, RelayOpen, RelayClosed, ClockAdjusted, FirmwareActivated, Alarm }
    };
}

impl EventKind {
    /// Every kind.
    pub const ALL: [EventKind; 11] = [
        EventKind::PowerDown,
        EventKind::PowerUp,
        EventKind::LastGasp,
        EventKind::Tamper,
        EventKind::CoverOpen,
        EventKind::MagneticField,
        EventKind::RelayOpen,
        EventKind::RelayClosed,
        EventKind::ClockAdjusted,
        EventKind::FirmwareActivated,
        EventKind::Alarm,
    ];
}

#[cfg(feature = "serde")]
impl serde::Serialize for EventKind {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

/// One event reported by a meter.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct Event {
    /// What happened.
    pub kind: EventKind,
    /// When, in milliseconds since the Unix epoch, UTC.
    pub ts_ms: i64,
    /// The protocol's own event code (DLMS event number, M-Bus status bit, ...), 0 if none.
    pub code: u32,
    /// The register (event log or status object) it came from, if any.
    pub source: Option<crate::Obis>,
    /// Duration in seconds where the meter gives one (a power-failure log entry), else 0.
    pub duration_s: u32,
}
