//! From records to canonical values: OBIS register, base unit, time stamp.
//!
//! # Registers
//!
//! `A-B:C.D.E.F` with
//!
//! * **A** from the meter's medium (device type): electricity 1 (and breakers), gas 7, heat
//!   6 (outlet, inlet, heat/cooling), cooling 5, heat cost allocator 4, water and cold water
//!   8, warm and hot water 9, anything else 0.
//! * **B** the record's subunit (0 for the meter itself).
//! * **C.D** from the quantity ([`codes`]): energy `1.8` (export, VIFE `0x3C`: `2.8`),
//!   volume `1.0` for water, `3.0` for gas, `2.8` otherwise (so heat `6-0:1.8.0`, water
//!   `8-0:1.0.0`, gas `7-0:3.0.0`, electricity `1-0:1.8.0`, as OMS names them); power `1.7`
//!   on electricity meters and `8.7` elsewhere, volume flow `9.7`, flow / return / external
//!   temperature `10.7` / `11.7` / `13.7`, temperature difference `12.7`, voltage `12.7`,
//!   current `11.7`, frequency `14.7`, pressure `15.7`, reactive energy / power `3.8` /
//!   `3.7`, apparent energy / power `9.8` / `9.7`, mass `4.8`, mass flow `5.7`, heat cost
//!   allocator units `1.0`; times and counters under `96`: battery time `96.6`, on time
//!   `96.8`, operating time `96.9`, averaging / actuality duration `96.10` / `96.11`, reset /
//!   cumulation counter `96.12` / `96.13`, dimensionless `96.14`, humidity `96.15`, credit /
//!   debit `96.16` / `96.17`, duration since readout `96.18`, storage interval `96.19`,
//!   tariff times `96.20`, RSSI `96.21`, other durations `96.22`; plain-text units `128.0`,
//!   manufacturer-specific VIFs `128.1`, reserved VIFs `128.2`. A maximum value takes
//!   D = 6, a minimum D = 3, a value during error state D = 9 (the `96` and `128` groups keep
//!   their D). A value "at phase L1/L2/L3" (combinable VIFE `0xFC 0x01`-`0x03`) takes the
//!   phase's C ([`phase_c`]: power `21.7`/`41.7`/`61.7`, voltage `32.7`/`52.7`/`72.7`,
//!   current `31.7`/`51.7`/`71.7`). A record whose VIFE changes its meaning (per hour, date of, limit, ...) takes
//!   C + 100 (`101.8.0` is "something about energy"), its value kept.
//! * **E** the tariff (0 = total), **F** the storage number (255 for storage 0, the current
//!   value; storage numbers above 254 are clamped to 254).
//!
//! Identifiers and other non-measurements are attributes (text): fabrication number
//! `0.0`, enhanced identification `0.1`, firmware / software / hardware version `0.2` /
//! `0.11` / `0.10`, model / version `0.8`, parameter set `0.7`, customer location `0.12`,
//! customer `0.13`, bus address `0.3`, access number `0.4`, medium `0.5`, manufacturer
//! `0.6`, ... (see [`codes`]); error flags `97.97`, digital input / output `96.3` / `96.4`;
//! dates `0.92` (type G, `YYYY-MM-DD`) and date-times `0.91` (types F/I,
//! `YYYY-MM-DDTHH:MM:SSZ`); manufacturer-specific data (DIF `0x0F`/`0x1F`) as upper-case hex
//! at `A-0:128.128.0.255`. A measurement whose value is not a number (invalid BCD, text,
//! bytes) is an attribute of its reading register.
//!
//! # Values and times
//!
//! Integers and BCD are exact: raw × 10^exp (× 60/3600/86400 for durations in minutes,
//! hours, days: durations are in seconds). Reals are taken at their shortest decimal form
//! (`21.5367` stays `21.5367`, not `21.536699295`). A reading is stamped with the date-time
//! record (type F or I, VIF `0x6D`) of its storage number when the frame has one whose
//! time is valid (M-Bus times are the meter's local time without zone; they are taken as
//! UTC), else with `received_at_ms` and
//! [`Quality::TIME_FROM_RECEIVER`](ami_domain::Quality::TIME_FROM_RECEIVER).

use ami_domain::{Decoded, Obis, Quality, Quantity, Reading, Unit};

use crate::record::{Function, Item, Record, Value};
use crate::vif::Kind;

/// The OBIS A group of an M-Bus device type (medium).
pub const fn medium_group(device_type: u8) -> u8 {
    match device_type {
        0x02 | 0x20 => 1,
        0x03 => 7,
        0x04 | 0x0C | 0x0D => 6,
        0x0A | 0x0B => 5,
        0x08 => 4,
        0x07 | 0x16 => 8,
        0x06 | 0x15 => 9,
        _ => 0,
    }
}

/// Whether a kind is a measurement (reading) or an identifier/state (attribute), with its
/// C and D groups (see the module documentation). `a` is the medium group.
pub fn codes(kind: Kind, a: u8, backward: bool) -> (bool, u8, u8) {
    use Kind::*;
    let (reading, c, d) = match kind {
        Energy if backward => (true, 2, 8),
        Energy => (true, 1, 8),
        ReactiveEnergy => (true, 3, 8),
        ApparentEnergy => (true, 9, 8),
        Volume => match a {
            8 | 9 => (true, 1, 0),
            7 => (true, 3, 0),
            _ => (true, 2, 8),
        },
        Mass => (true, 4, 8),
        Power if a == 1 => (true, 1, 7),
        Power => (true, 8, 7),
        ReactivePower => (true, 3, 7),
        ApparentPower => (true, 9, 7),
        VolumeFlow => (true, 9, 7),
        MassFlow => (true, 5, 7),
        FlowTemperature => (true, 10, 7),
        ReturnTemperature => (true, 11, 7),
        TemperatureDifference => (true, 12, 7),
        ExternalTemperature => (true, 13, 7),
        Voltage => (true, 12, 7),
        Current => (true, 11, 7),
        Frequency => (true, 14, 7),
        Pressure => (true, 15, 7),
        HcaUnits => (true, 1, 0),
        BatteryOperatingTime => (true, 96, 6),
        OnTime => (true, 96, 8),
        OperatingTime => (true, 96, 9),
        AveragingDuration => (true, 96, 10),
        ActualityDuration => (true, 96, 11),
        ResetCounter => (true, 96, 12),
        CumulationCounter => (true, 96, 13),
        Dimensionless => (true, 96, 14),
        RelativeHumidity => (true, 96, 15),
        Credit => (true, 96, 16),
        Debit => (true, 96, 17),
        DurationSinceReadout => (true, 96, 18),
        StorageInterval => (true, 96, 19),
        TariffTime => (true, 96, 20),
        Rssi => (true, 96, 21),
        DurationSinceCumulation => (true, 96, 22),
        PlainText => (true, 128, 0),
        ManufacturerSpecific => (true, 128, 1),
        Reserved | Any => (true, 128, 2),
        FabricationNo => (false, 0, 0),
        EnhancedId => (false, 0, 1),
        FirmwareVersion => (false, 0, 2),
        BusAddress => (false, 0, 3),
        AccessNumber => (false, 0, 4),
        Medium => (false, 0, 5),
        Manufacturer => (false, 0, 6),
        ParameterSet => (false, 0, 7),
        ModelVersion => (false, 0, 8),
        HardwareVersion => (false, 0, 10),
        SoftwareVersion => (false, 0, 11),
        CustomerLocation => (false, 0, 12),
        Customer => (false, 0, 13),
        AccessCode => (false, 0, 14),
        SpecialSupplierInfo => (false, 0, 15),
        Communication => (false, 0, 16),
        StorageNumberInfo => (false, 0, 17),
        ControlSignal => (false, 0, 18),
        DayOfWeek => (false, 0, 19),
        WeekNumber => (false, 0, 20),
        DayChange => (false, 0, 21),
        ParameterActivation => (false, 0, 22),
        DateTime => (false, 0, 91),
        Date => (false, 0, 92),
        BatteryChangeDate => (false, 0, 93),
        ErrorFlags => (false, 97, 97),
        ErrorMask => (false, 97, 98),
        DigitalInput => (false, 96, 3),
        DigitalOutput => (false, 96, 4),
    };
    (reading, c, d)
}

/// The D group of a reading after its function (see the module documentation).
pub const fn function_d(c: u8, d: u8, function: Function) -> u8 {
    if c == 96 || c == 128 {
        return d;
    }
    match function {
        Function::Instantaneous => d,
        Function::Maximum => 6,
        Function::Minimum => 3,
        Function::Error => 9,
    }
}

/// The C group of a per-phase value (VIFE `0xFC 0x01`-`0x03`): the IEC 62056-61 phase
/// codes for energy and power (`21`/`41`/`61`), current (`31`/`51`/`71`) and voltage
/// (`32`/`52`/`72`); other quantities keep their C and the phase goes to C + 20 × phase.
pub const fn phase_c(c: u8, phase: u8) -> u8 {
    let p = if phase > 3 { 3 } else { phase };
    match c {
        1 => 1 + 20 * p,
        11 => 11 + 20 * p,
        12 => 12 + 20 * p,
        _ => c.saturating_add(20 * p),
    }
}

/// The register of a record in a meter of medium group `a`.
pub fn register(a: u8, r: &Record<'_>) -> (bool, Obis) {
    let (reading, mut c, d) = codes(r.vib.kind, a, r.vib.backward);
    let d = if reading {
        function_d(c, d, r.function)
    } else {
        d
    };
    if let (Some(p), true) = (r.vib.phase, reading) {
        c = phase_c(c, p);
    }
    if r.vib.qualified && reading {
        c = c.saturating_add(100);
    }
    let b = u8::try_from(r.subunit).unwrap_or(254).min(254);
    let e = u8::try_from(r.tariff).unwrap_or(254).min(254);
    let f = if r.storage == 0 {
        255
    } else {
        u8::try_from(r.storage).unwrap_or(254).min(254)
    };
    (reading, Obis::new(a, b, c, d, e, f))
}

/// A date/time as the meter sends it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DateTime {
    /// Year (1981-2080 from the 7-bit field).
    pub year: i64,
    /// Month 1-12 (0 if not set).
    pub month: u32,
    /// Day 1-31 (0 if not set).
    pub day: u32,
    /// Hour.
    pub hour: u32,
    /// Minute.
    pub minute: u32,
    /// Second.
    pub second: u32,
    /// The IV (invalid) bit of type F/I.
    pub invalid: bool,
    /// Whether this is a date only (type G).
    pub date_only: bool,
}

impl DateTime {
    fn year(b_lo: u8, b_hi: u8) -> i64 {
        let y = i64::from(((b_lo & 0xE0) >> 5) | ((b_hi & 0xF0) >> 1));
        if y < 81 { 2000 + y } else { 1900 + y }
    }

    /// Type G (2 bytes), F (4 bytes) or I (6 bytes).
    pub fn parse(b: &[u8]) -> Option<Self> {
        match *b {
            [d0, d1] => Some(Self {
                year: Self::year(d0, d1),
                month: u32::from(d1 & 0x0F),
                day: u32::from(d0 & 0x1F),
                hour: 0,
                minute: 0,
                second: 0,
                invalid: false,
                date_only: true,
            }),
            [m, h, d0, d1] => Some(Self {
                year: Self::year(d0, d1),
                month: u32::from(d1 & 0x0F),
                day: u32::from(d0 & 0x1F),
                hour: u32::from(h & 0x1F),
                minute: u32::from(m & 0x3F),
                second: 0,
                invalid: m & 0x80 != 0,
                date_only: false,
            }),
            [s, m, h, d0, d1, _] => Some(Self {
                year: Self::year(d0, d1),
                month: u32::from(d1 & 0x0F),
                day: u32::from(d0 & 0x1F),
                hour: u32::from(h & 0x1F),
                minute: u32::from(m & 0x3F),
                second: u32::from(s & 0x3F),
                invalid: m & 0x80 != 0,
                date_only: false,
            }),
            _ => None,
        }
    }

    /// Unix milliseconds, if the date is a real one and valid.
    pub fn unix_ms(&self) -> Option<i64> {
        let ok = !self.invalid
            && (1..=12).contains(&self.month)
            && (1..=31).contains(&self.day)
            && self.hour < 24
            && self.minute < 60
            && self.second < 60;
        ok.then(|| {
            ami_domain::time::unix_ms(
                self.year,
                self.month,
                self.day,
                self.hour,
                self.minute,
                self.second,
            )
        })
    }

    /// `YYYY-MM-DD` or `YYYY-MM-DDTHH:MM:SSZ`, fields as sent.
    pub fn text(&self) -> String {
        if self.date_only {
            format!("{:04}-{:02}-{:02}", self.year, self.month, self.day)
        } else {
            format!(
                "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
                self.year, self.month, self.day, self.hour, self.minute, self.second
            )
        }
    }
}

/// Upper-case hex, bytes separated by spaces, in wire order.
pub fn hex(b: &[u8]) -> String {
    const D: &[u8; 16] = b"0123456789ABCDEF";
    let mut s = String::with_capacity(b.len() * 3);
    for (i, x) in b.iter().enumerate() {
        if i > 0 {
            s.push(' ');
        }
        s.push(char::from(D[usize::from(x >> 4)]));
        s.push(char::from(D[usize::from(x & 0x0F)]));
    }
    s
}

/// The shortest decimal form of a finite real, as a quantity.
pub fn real(v: f32) -> Option<Quantity> {
    if !v.is_finite() {
        return None;
    }
    format!("{v}").parse().ok()
}

/// A record's value scaled into its base unit, if it is a number.
pub fn quantity(r: &Record<'_>) -> Option<Quantity> {
    let q = match r.value {
        Value::Int(i) => Quantity::new(i, 0),
        Value::Real(f) => real(f)?,
        _ => return None,
    };
    let q = q.shifted(r.vib.exp)?;
    if r.vib.factor == 1 {
        Some(q)
    } else {
        Some(Quantity::new(
            q.mantissa.checked_mul(r.vib.factor)?,
            q.scale,
        ))
    }
}

/// The text of a non-numeric (or identifier) value: the number, the text, or upper-case hex
/// of the bytes as sent (invalid BCD, binary, text that is not printable ASCII).
pub fn text(r: &Record<'_>) -> Option<String> {
    Some(match &r.value {
        Value::None => return None,
        Value::Int(i) => i.to_string(),
        Value::Real(f) => format!("{f}"),
        Value::InvalidBcd(b) | Value::Bytes(b) => hex(b),
        // Text with control or non-ASCII characters is binary data in disguise.
        Value::Text(t) if t.chars().all(|c| c.is_ascii() && !c.is_ascii_control()) => t.clone(),
        Value::Text(_) => hex(r.data),
    })
}

fn is_date(r: &Record<'_>) -> bool {
    matches!(
        r.vib.kind,
        Kind::Date | Kind::DateTime | Kind::BatteryChangeDate
    ) && matches!(r.data_field, 0x2 | 0x4 | 0x6)
}

/// Adds the readings and attributes of `items` (records of a meter of medium group `a`) to
/// `out`.
pub fn interpret(items: &[Item<'_>], a: u8, received_at_ms: i64, out: &mut Decoded) {
    // The date-time of each storage number, where the frame has a valid one.
    let mut times: Vec<(u64, u32, i64)> = Vec::new();
    for item in items {
        if let Item::Record(r) = item
            && r.vib.kind == Kind::DateTime
            && !r.vib.qualified
            && r.function == Function::Instantaneous
            && let Some(ms) = DateTime::parse(r.data).and_then(|t| t.unix_ms())
            && !times
                .iter()
                .any(|(s, u, _)| *s == r.storage && *u == r.subunit)
        {
            times.push((r.storage, r.subunit, ms));
        }
    }
    for item in items {
        match item {
            Item::ManufacturerData { data, .. } => {
                out.attributes
                    .push((Obis::new(a, 0, 128, 128, 0, 255), hex(data)));
            }
            Item::Record(r) => {
                let (reading, register) = register(a, r);
                if is_date(r) {
                    if let Some(t) = DateTime::parse(r.data) {
                        out.attributes.push((register, t.text()));
                    }
                    continue;
                }
                let q = if reading { quantity(r) } else { None };
                match q {
                    Some(value) => {
                        let (ts_ms, quality) = times
                            .iter()
                            .find(|(s, u, _)| *s == r.storage && *u == r.subunit)
                            .map_or((received_at_ms, Quality::TIME_FROM_RECEIVER), |t| {
                                (t.2, Quality::VALID)
                            });
                        out.readings.push(Reading {
                            register,
                            value,
                            unit: r.vib.unit,
                            ts_ms,
                            quality,
                        });
                        if let Some(unit) = &r.vib.text {
                            out.attributes.push((register, unit.clone()));
                        }
                    }
                    None => {
                        if let Some(t) = text(r) {
                            out.attributes.push((register, t));
                        }
                    }
                }
            }
        }
    }
}

/// The unit of a fixed-structure counter (EN 13757-3 Annex, CI `0x73`), with its power of
/// ten, if it is a measurement unit.
pub fn fixed_unit(code: u8) -> Option<(Kind, Unit, i8)> {
    let n = |base: u8| (code - base) as i8;
    Some(match code {
        0x02..=0x0A => (Kind::Energy, Unit::WattHour, n(0x02)),
        0x0B..=0x13 => (Kind::Energy, Unit::Joule, n(0x0B) + 3),
        0x14..=0x1C => (Kind::Power, Unit::Watt, n(0x14)),
        0x1D..=0x25 => (Kind::Power, Unit::JoulePerHour, n(0x1D) + 3),
        0x26..=0x2E => (Kind::Volume, Unit::CubicMetre, n(0x26) - 6),
        0x2F..=0x37 => (Kind::VolumeFlow, Unit::CubicMetrePerHour, n(0x2F) - 6),
        _ => return None,
    })
}
