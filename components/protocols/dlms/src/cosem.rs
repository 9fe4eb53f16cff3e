//! COSEM object semantics (IEC 62056-6-2, Blue Book): logical names, register values with
//! scaler-unit, the units HAN lists imply when they send no scaler-unit, profile-generic
//! buffers with their capture objects, the AMR profile status, standard event codes and the
//! disconnect-control state.

use ami_domain::{DecodeError, Event, EventKind, Obis, Quality, Quantity, Reading, Unit};

use crate::axdr::Data;
use crate::datetime::DateTime;

/// `0-0:1.0.0.255`, the clock.
pub const CLOCK: Obis = Obis::new(0, 0, 1, 0, 0, 255);
/// `0-0:96.3.10.255`, disconnect control.
pub const DISCONNECT_CONTROL: Obis = Obis::new(0, 0, 96, 3, 10, 255);
/// `0-0:25.9.0.255`, push setup: the register of a notification body that is not a list
/// of COSEM objects (kept as A-XDR hex).
pub const PUSH_SETUP: Obis = Obis::new(0, 0, 25, 9, 0, 255);
/// Meter identity objects, in the order they name the meter: equipment identifier,
/// meter serial number, COSEM logical device name.
pub const METER_IDS: [Obis; 3] = [
    Obis::new(0, 0, 96, 1, 1, 255),
    Obis::new(0, 0, 96, 1, 0, 255),
    Obis::new(0, 0, 42, 0, 0, 255),
];

/// Whether a logical name is a clock (`0-b:1.0.0`, any channel).
pub fn is_clock(o: Obis) -> bool {
    o.a == 0 && o.c == 1 && o.d == 0 && o.e == 0
}

/// A six-byte octet string as a logical name.
pub fn logical_name(d: &Data<'_>) -> Option<Obis> {
    match d {
        Data::OctetString(b) => <[u8; 6]>::try_from(*b).ok().map(Obis::from_bytes),
        _ => None,
    }
}

/// A register's scaler and unit (attribute 3 of classes 3 and 4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ScalerUnit {
    /// Power of ten.
    pub scaler: i8,
    /// DLMS unit code.
    pub unit: u8,
}

impl ScalerUnit {
    /// `structure { integer, enum }`.
    pub fn from_data(d: &Data<'_>) -> Option<Self> {
        match d {
            Data::Structure(v) => match v.as_slice() {
                [Data::Integer(s), Data::Enum(u)] => Some(Self {
                    scaler: *s,
                    unit: *u,
                }),
                _ => None,
            },
            _ => None,
        }
    }

    /// The unit, [`Unit::Other`] for codes the domain does not carry.
    pub fn unit(self) -> Unit {
        Unit::from_code(self.unit).unwrap_or(Unit::Other)
    }
}

/// A numeric value as a decimal: integers exactly, floats through their shortest decimal
/// text (never as binary floats); `None` for non-numbers and non-finite floats.
pub fn number(d: &Data<'_>) -> Option<Quantity> {
    match d {
        Data::Float32(f) if f.is_finite() => format!("{f}").parse().ok(),
        Data::Float64(f) if f.is_finite() => format!("{f}").parse().ok(),
        Data::Boolean(_) => None,
        other => other
            .as_i128()
            .and_then(|v| i64::try_from(v).ok())
            .map(|v| Quantity::new(v, 0)),
    }
}

/// The value of a register with its scaler-unit.
pub fn scaled(value: &Data<'_>, su: ScalerUnit) -> Option<(Quantity, Unit)> {
    let q = number(value)?;
    Some((q.shifted(su.scaler)?, su.unit()))
}

/// The unit a HAN list's bare value of this register has (electricity C/D groups).
pub fn implied_unit(o: Obis) -> Unit {
    // C groups 1-80 repeat every 20: total, L1, L2, L3.
    if o.a != 1 || o.c == 0 || o.c > 80 {
        return Unit::Count;
    }
    let quantity = (o.c - 1) % 20 + 1;
    let energy = matches!(o.d, 8 | 9 | 10 | 29);
    let power = matches!(o.d, 4 | 5 | 6 | 7 | 24 | 25 | 26 | 27);
    match (quantity, energy, power) {
        (1 | 2 | 15 | 16, true, _) => Unit::WattHour,
        (1 | 2 | 15 | 16, _, true) => Unit::Watt,
        (3..=8, true, _) => Unit::VarHour,
        (3..=8, _, true) => Unit::Var,
        (9 | 10, true, _) => Unit::VoltAmpereHour,
        (9 | 10, _, true) => Unit::VoltAmpere,
        (11, _, true) => Unit::Ampere,
        (12, _, true) => Unit::Volt,
        (14, _, true) => Unit::Hertz,
        _ => Unit::Count,
    }
}

/// Scalers of HAN lists that send bare values, by meter make (the list version text):
/// Kaifa sends current in mA and voltage in 0.1 V, Kamstrup current in 10 mA and energy in
/// 10 Wh; power is in W everywhere.
pub fn implied_scaler(list_version: Option<&str>, o: Obis) -> i8 {
    let unit = implied_unit(o);
    let make = list_version.unwrap_or_default();
    if make.starts_with("KFM") {
        match unit {
            Unit::Ampere => -3,
            Unit::Volt => -1,
            _ => 0,
        }
    } else if make.starts_with("Kamstrup") {
        match unit {
            Unit::Ampere => -2,
            Unit::WattHour | Unit::VarHour => 1,
            _ => 0,
        }
    } else {
        0
    }
}

/// Kaifa's bare-value lists (no logical names on the wire), by length: list 1 (active power),
/// the three-phase lists 2 and 3 and the single-phase lists 2 and 3.
pub fn kaifa_list(len: usize) -> Option<&'static [Obis]> {
    const fn o(a: u8, b: u8, c: u8, d: u8, e: u8) -> Obis {
        Obis::new(a, b, c, d, e, 255)
    }
    const THREE: [Obis; 18] = [
        o(1, 1, 0, 2, 129),
        o(0, 0, 96, 1, 0),
        o(0, 0, 96, 1, 7),
        o(1, 0, 1, 7, 0),
        o(1, 0, 2, 7, 0),
        o(1, 0, 3, 7, 0),
        o(1, 0, 4, 7, 0),
        o(1, 0, 31, 7, 0),
        o(1, 0, 51, 7, 0),
        o(1, 0, 71, 7, 0),
        o(1, 0, 32, 7, 0),
        o(1, 0, 52, 7, 0),
        o(1, 0, 72, 7, 0),
        o(0, 0, 1, 0, 0),
        o(1, 0, 1, 8, 0),
        o(1, 0, 2, 8, 0),
        o(1, 0, 3, 8, 0),
        o(1, 0, 4, 8, 0),
    ];
    const SINGLE: [Obis; 14] = [
        o(1, 1, 0, 2, 129),
        o(0, 0, 96, 1, 0),
        o(0, 0, 96, 1, 7),
        o(1, 0, 1, 7, 0),
        o(1, 0, 2, 7, 0),
        o(1, 0, 3, 7, 0),
        o(1, 0, 4, 7, 0),
        o(1, 0, 31, 7, 0),
        o(1, 0, 32, 7, 0),
        o(0, 0, 1, 0, 0),
        o(1, 0, 1, 8, 0),
        o(1, 0, 2, 8, 0),
        o(1, 0, 3, 8, 0),
        o(1, 0, 4, 8, 0),
    ];
    const ONE: [Obis; 1] = [o(1, 0, 1, 7, 0)];
    match len {
        1 => Some(&ONE),
        9 => SINGLE.get(..9),
        13 => THREE.get(..13),
        14 => Some(&SINGLE),
        18 => Some(&THREE),
        _ => None,
    }
}

/// Quality flags of an AMR profile status byte (0-0:96.10.x): critical error and data not
/// valid → suspect, clock invalid, clock adjusted, power down → power outage.
pub fn amr_status_quality(status: u8) -> Quality {
    let mut q = Quality::VALID;
    if status & 0x05 != 0 {
        q = q.with(Quality::SUSPECT);
    }
    if status & 0x02 != 0 {
        q = q.with(Quality::CLOCK_INVALID);
    }
    if status & 0x20 != 0 {
        q = q.with(Quality::CLOCK_ADJUSTED);
    }
    if status & 0x80 != 0 {
        q = q.with(Quality::POWER_OUTAGE);
    }
    q
}

/// Whether a logical name is an AMR profile status (`0-b:96.10.e`).
pub fn is_status(o: Obis) -> bool {
    o.a == 0 && o.c == 96 && o.d == 10
}

/// The kind of a standard (IDIS / DSMR) event code.
pub fn event_kind(code: u32) -> EventKind {
    match code {
        1 => EventKind::PowerDown,
        2 => EventKind::PowerUp,
        4 | 5 => EventKind::ClockAdjusted,
        18 => EventKind::FirmwareActivated,
        40 | 44 => EventKind::CoverOpen,
        42 => EventKind::MagneticField,
        _ => EventKind::Alarm,
    }
}

/// Whether a logical name is an event object or log (`0-b:96.11.e` / `0-b:99.98.e`).
pub fn is_event_object(o: Obis) -> bool {
    o.a == 0 && ((o.c == 96 && o.d == 11) || (o.c == 99 && o.d == 98))
}

/// The relay event of a disconnect-control output state (boolean) or control state (enum:
/// 0 disconnected, 1 connected, 2 ready for reconnection).
pub fn relay_event(value: &Data<'_>) -> Option<EventKind> {
    match value {
        Data::Boolean(true) | Data::Enum(1) => Some(EventKind::RelayClosed),
        Data::Boolean(false) | Data::Enum(0 | 2) => Some(EventKind::RelayOpen),
        _ => None,
    }
}

/// One capture object of a profile-generic (attribute 3): class, logical name, attribute.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CaptureObject {
    /// Interface class.
    pub class_id: u16,
    /// Logical name.
    pub logical_name: Obis,
    /// Attribute index.
    pub attribute: i8,
}

/// Turns a profile-generic buffer (array of rows, one column per capture object) into
/// interval readings.
///
/// The clock column (class 8 or a clock logical name) stamps each row; a null clock (a
/// compressed profile) is the previous row's time plus `capture_period_s`. A status column
/// (`0-b:96.10.e`) gives the row's quality ([`amr_status_quality`]). Every other numeric
/// column is a reading, scaled by its entry in `scalers` (else scaler 0 and the implied
/// unit). Rows before the first time stamp are an error.
pub fn profile_readings(
    buffer: &Data<'_>,
    captures: &[CaptureObject],
    capture_period_s: u32,
    scalers: &[(Obis, ScalerUnit)],
) -> Result<Vec<Reading>, DecodeError> {
    let rows = match buffer {
        Data::Array(rows) => rows,
        _ => {
            return Err(DecodeError::Malformed(
                "profile buffer is not an array".into(),
            ));
        }
    };
    let clock_col = captures
        .iter()
        .position(|c| c.class_id == 8 || is_clock(c.logical_name));
    let status_col = captures.iter().position(|c| is_status(c.logical_name));
    let mut out = Vec::with_capacity(rows.len().saturating_mul(captures.len()).min(1 << 16));
    let mut last: Option<i64> = None;
    for (i, row) in rows.iter().enumerate() {
        let cells = row
            .elements()
            .ok_or_else(|| DecodeError::Malformed(format!("profile row {i} is not a structure")))?;
        if cells.len() != captures.len() {
            return Err(DecodeError::Malformed(format!(
                "profile row {i} has {} columns, {} capture objects",
                cells.len(),
                captures.len()
            )));
        }
        let mut quality = Quality::VALID;
        let stamp = match clock_col.and_then(|c| cells.get(c)) {
            Some(Data::OctetString(b)) | Some(Data::VisibleString(b)) => {
                let dt = DateTime::from_slice(b).ok_or_else(|| {
                    DecodeError::Malformed(format!("profile row {i}: clock is not a date-time"))
                })?;
                quality = quality.with(dt.quality());
                dt.unix_ms()
            }
            Some(Data::DateTime(b)) => {
                let dt = DateTime::from_bytes(b);
                quality = quality.with(dt.quality());
                dt.unix_ms()
            }
            _ => None,
        };
        let ts = match (stamp, last) {
            (Some(t), _) => t,
            (None, Some(prev)) => prev.saturating_add(i64::from(capture_period_s) * 1000),
            (None, None) => {
                return Err(DecodeError::Malformed(format!(
                    "profile row {i} has no time and no row before it"
                )));
            }
        };
        last = Some(ts);
        if let Some(s) = status_col
            .and_then(|c| cells.get(c))
            .and_then(Data::as_i128)
        {
            quality = quality.with(amr_status_quality(u8::try_from(s & 0xFF).unwrap_or(0)));
        }
        for (col, (cell, cap)) in cells.iter().zip(captures).enumerate() {
            if Some(col) == clock_col || Some(col) == status_col {
                continue;
            }
            let Some(v) = number(cell) else { continue };
            let o = cap.logical_name;
            let (value, unit) = match scalers.iter().find(|(r, _)| *r == o) {
                Some((_, su)) => (v.shifted(su.scaler).unwrap_or(v), su.unit()),
                None => (v, implied_unit(o)),
            };
            out.push(Reading {
                register: o,
                value,
                unit,
                ts_ms: ts,
                quality,
            });
        }
    }
    Ok(out)
}

/// An event of a kind, from a register.
pub fn event(kind: EventKind, ts_ms: i64, code: u32, source: Obis) -> Event {
    Event {
        kind,
        ts_ms,
        code,
        source: Some(source),
        duration_s: 0,
    }
}
