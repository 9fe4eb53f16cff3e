//! Value information blocks (EN 13757-3 §6.4): the primary VIF table, the `0xFB` and `0xFD`
//! extension tables (with the OMS additions), plain-text VIFs and the combinable
//! (orthogonal) VIFEs that scale or qualify a value.
//!
//! [`parse`] reads one VIB and says what the record measures ([`Kind`]), in which base unit,
//! and by which power of ten (and, for durations, by which whole factor) the raw number is
//! to be multiplied. VIFEs that change the meaning of the value (per hour, date of, limit
//! values, ...) set [`Vib::qualified`]; the multiplicative corrections fold into the
//! exponent.

use ami_domain::{DecodeError, Unit};

/// At most this many VIFEs follow a VIF (as libmbus and EN 13757-3 allow).
pub const MAX_VIFE: usize = 10;

/// What a record measures.
#[allow(missing_docs)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    Energy,
    ReactiveEnergy,
    ApparentEnergy,
    Volume,
    Mass,
    OnTime,
    OperatingTime,
    Power,
    ReactivePower,
    ApparentPower,
    VolumeFlow,
    MassFlow,
    FlowTemperature,
    ReturnTemperature,
    TemperatureDifference,
    ExternalTemperature,
    Pressure,
    /// Type G date (or, with other data types, a date/time point).
    Date,
    /// Type F/I date and time.
    DateTime,
    HcaUnits,
    AveragingDuration,
    ActualityDuration,
    FabricationNo,
    EnhancedId,
    BusAddress,
    Credit,
    Debit,
    AccessNumber,
    Medium,
    Manufacturer,
    ParameterSet,
    ModelVersion,
    HardwareVersion,
    FirmwareVersion,
    SoftwareVersion,
    CustomerLocation,
    Customer,
    AccessCode,
    ErrorFlags,
    ErrorMask,
    DigitalOutput,
    DigitalInput,
    Communication,
    StorageNumberInfo,
    StorageInterval,
    DurationSinceReadout,
    TariffTime,
    Dimensionless,
    Voltage,
    Current,
    ResetCounter,
    CumulationCounter,
    ControlSignal,
    DayOfWeek,
    WeekNumber,
    DayChange,
    ParameterActivation,
    SpecialSupplierInfo,
    DurationSinceCumulation,
    BatteryOperatingTime,
    BatteryChangeDate,
    Rssi,
    RelativeHumidity,
    Frequency,
    /// A plain-text VIF: the unit is the text.
    PlainText,
    /// VIF 0x7E/0xFE: any value (readout selection).
    Any,
    /// VIF 0x7F/0xFF, or a manufacturer-specific VIFE: the meaning is the maker's.
    ManufacturerSpecific,
    /// A VIF the standard reserves (or one this table does not know).
    Reserved,
}

/// A parsed value information block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Vib {
    /// What is measured.
    pub kind: Kind,
    /// The base unit of the scaled value.
    pub unit: Unit,
    /// Power of ten applied to the raw number.
    pub exp: i8,
    /// Whole factor applied to the raw number (durations in minutes, hours, days become
    /// seconds); 1 otherwise.
    pub factor: i64,
    /// A VIFE changed the meaning (per time unit, date of, limit, duration of, future value,
    /// additive correction, record error, manufacturer-specific extension).
    pub qualified: bool,
    /// VIFE `0x3C` (accumulation of the absolute value only if negative): backward flow,
    /// energy export.
    pub backward: bool,
    /// The phase (1-3) of combinable VIFE extension `0xFC 0x01`-`0x03` ("at phase L1".."L3").
    pub phase: Option<u8>,
    /// The plain-text unit of a `0x7C`/`0xFC` VIF, in reading order.
    pub text: Option<String>,
    /// The VIF byte.
    pub vif: u8,
    /// The VIFE bytes, in order.
    pub vifes: Vec<u8>,
}

const fn def(kind: Kind, unit: Unit, exp: i8) -> (Kind, Unit, i8, i64) {
    (kind, unit, exp, 1)
}

/// A duration code `nn` (0 s, 1 min, 2 h, 3 d) as a factor to seconds.
const fn secs(nn: u8) -> i64 {
    match nn & 3 {
        0 => 1,
        1 => 60,
        2 => 3600,
        _ => 86_400,
    }
}

fn dur(kind: Kind, nn: u8) -> (Kind, Unit, i8, i64) {
    (kind, Unit::Second, 0, secs(nn))
}

/// The primary table (VIF without its extension bit).
fn primary(v: u8) -> (Kind, Unit, i8, i64) {
    let n = (v & 7) as i8;
    let nn = v & 3;
    use Kind::*;
    match v {
        0x00..=0x07 => def(Energy, Unit::WattHour, n - 3),
        0x08..=0x0F => def(Energy, Unit::Joule, n),
        0x10..=0x17 => def(Volume, Unit::CubicMetre, n - 6),
        0x18..=0x1F => def(Mass, Unit::Kilogram, n - 3),
        0x20..=0x23 => dur(OnTime, nn),
        0x24..=0x27 => dur(OperatingTime, nn),
        0x28..=0x2F => def(Power, Unit::Watt, n - 3),
        0x30..=0x37 => def(Power, Unit::JoulePerHour, n),
        0x38..=0x3F => def(VolumeFlow, Unit::CubicMetrePerHour, n - 6),
        // m3/min and m3/s, as m3/h.
        0x40..=0x47 => (VolumeFlow, Unit::CubicMetrePerHour, n - 7, 60),
        0x48..=0x4F => (VolumeFlow, Unit::CubicMetrePerHour, n - 9, 3600),
        // kg/h has no unit of its own in the DLMS table.
        0x50..=0x57 => def(MassFlow, Unit::Other, n - 3),
        0x58..=0x5B => def(FlowTemperature, Unit::Celsius, nn as i8 - 3),
        0x5C..=0x5F => def(ReturnTemperature, Unit::Celsius, nn as i8 - 3),
        0x60..=0x63 => def(TemperatureDifference, Unit::Kelvin, nn as i8 - 3),
        0x64..=0x67 => def(ExternalTemperature, Unit::Celsius, nn as i8 - 3),
        0x68..=0x6B => def(Pressure, Unit::Bar, nn as i8 - 3),
        0x6C => def(Date, Unit::Count, 0),
        0x6D => def(DateTime, Unit::Count, 0),
        0x6E => def(HcaUnits, Unit::Count, 0),
        0x70..=0x73 => dur(AveragingDuration, nn),
        0x74..=0x77 => dur(ActualityDuration, nn),
        0x78 => def(FabricationNo, Unit::Count, 0),
        0x79 => def(EnhancedId, Unit::Count, 0),
        0x7A => def(BusAddress, Unit::Count, 0),
        0x7E => def(Any, Unit::Other, 0),
        0x7F => def(ManufacturerSpecific, Unit::Other, 0),
        _ => def(Reserved, Unit::Other, 0),
    }
}

/// The `0xFD` extension table (second byte without its extension bit).
fn table_fd(v: u8) -> (Kind, Unit, i8, i64) {
    let nn = v & 3;
    use Kind::*;
    match v {
        0x00..=0x03 => def(Credit, Unit::Currency, nn as i8 - 3),
        0x04..=0x07 => def(Debit, Unit::Currency, nn as i8 - 3),
        0x08 => def(AccessNumber, Unit::Count, 0),
        0x09 => def(Medium, Unit::Count, 0),
        0x0A => def(Manufacturer, Unit::Count, 0),
        0x0B => def(ParameterSet, Unit::Count, 0),
        0x0C => def(ModelVersion, Unit::Count, 0),
        0x0D => def(HardwareVersion, Unit::Count, 0),
        0x0E => def(FirmwareVersion, Unit::Count, 0),
        0x0F => def(SoftwareVersion, Unit::Count, 0),
        0x10 => def(CustomerLocation, Unit::Count, 0),
        0x11 => def(Customer, Unit::Count, 0),
        0x12..=0x16 => def(AccessCode, Unit::Count, 0),
        0x17 => def(ErrorFlags, Unit::Count, 0),
        0x18 => def(ErrorMask, Unit::Count, 0),
        0x1A => def(DigitalOutput, Unit::Count, 0),
        0x1B => def(DigitalInput, Unit::Count, 0),
        0x1C..=0x1E => def(Communication, Unit::Count, 0),
        0x20..=0x22 => def(StorageNumberInfo, Unit::Count, 0),
        0x24..=0x27 => dur(StorageInterval, nn),
        0x28 => def(StorageInterval, Unit::Month, 0),
        0x29 => def(StorageInterval, Unit::Year, 0),
        0x2C..=0x2F => dur(DurationSinceReadout, nn),
        0x30 => def(TariffTime, Unit::Count, 0),
        0x31..=0x33 => dur(TariffTime, nn),
        0x34..=0x37 => dur(TariffTime, nn),
        0x38 => def(TariffTime, Unit::Month, 0),
        0x39 => def(TariffTime, Unit::Year, 0),
        0x3A => def(Dimensionless, Unit::Count, 0),
        0x40..=0x4F => def(Voltage, Unit::Volt, (v & 0x0F) as i8 - 9),
        0x50..=0x5F => def(Current, Unit::Ampere, (v & 0x0F) as i8 - 12),
        0x60 => def(ResetCounter, Unit::Count, 0),
        0x61 => def(CumulationCounter, Unit::Count, 0),
        0x62 => def(ControlSignal, Unit::Count, 0),
        0x63 => def(DayOfWeek, Unit::Count, 0),
        0x64 => def(WeekNumber, Unit::Count, 0),
        0x65 => def(DayChange, Unit::Count, 0),
        0x66 => def(ParameterActivation, Unit::Count, 0),
        0x67 => def(SpecialSupplierInfo, Unit::Count, 0),
        0x68..=0x6B => match nn {
            0 => def(DurationSinceCumulation, Unit::Hour, 0),
            1 => def(DurationSinceCumulation, Unit::Day, 0),
            2 => def(DurationSinceCumulation, Unit::Month, 0),
            _ => def(DurationSinceCumulation, Unit::Year, 0),
        },
        0x6C..=0x6F => match nn {
            0 => def(BatteryOperatingTime, Unit::Hour, 0),
            1 => def(BatteryOperatingTime, Unit::Day, 0),
            2 => def(BatteryOperatingTime, Unit::Month, 0),
            _ => def(BatteryOperatingTime, Unit::Year, 0),
        },
        0x70 => def(BatteryChangeDate, Unit::Count, 0),
        0x71 => def(Rssi, Unit::DecibelMilliwatt, 0),
        _ => def(Reserved, Unit::Other, 0),
    }
}

/// The `0xFB` extension table (OMS / EN 13757-3:2018 additions included).
fn table_fb(v: u8) -> (Kind, Unit, i8, i64) {
    let n1 = (v & 1) as i8;
    let nn = (v & 3) as i8;
    use Kind::*;
    match v {
        0x00 | 0x01 => def(Energy, Unit::WattHour, n1 + 5),
        0x02 | 0x03 => def(ReactiveEnergy, Unit::VarHour, n1 + 3),
        0x04 | 0x05 => def(ApparentEnergy, Unit::VoltAmpereHour, n1 + 3),
        0x08 | 0x09 => def(Energy, Unit::Joule, n1 + 8),
        // MCal, as J (1 cal = 4.1868 J is not a power of ten): kept as its own unit.
        0x0C..=0x0F => def(Energy, Unit::Other, nn - 1),
        0x10 | 0x11 => def(Volume, Unit::CubicMetre, n1 + 2),
        0x14..=0x17 => def(ReactivePower, Unit::Var, nn),
        0x18 | 0x19 => def(Mass, Unit::Kilogram, n1 + 5),
        0x1A | 0x1B => def(RelativeHumidity, Unit::Percent, n1 - 1),
        0x28 | 0x29 => def(Power, Unit::Watt, n1 + 5),
        0x2C..=0x2F => def(Frequency, Unit::Hertz, nn - 3),
        0x30 | 0x31 => def(Power, Unit::JoulePerHour, n1 + 8),
        0x34..=0x37 => def(ApparentPower, Unit::VoltAmpere, nn),
        0x74..=0x77 => def(ExternalTemperature, Unit::Celsius, nn - 3),
        _ => def(Reserved, Unit::Other, 0),
    }
}

fn byte(data: &[u8], pos: &mut usize, what: &str) -> Result<u8, DecodeError> {
    let b = data
        .get(*pos)
        .copied()
        .ok_or_else(|| DecodeError::Truncated(format!("record ends in its {what}")))?;
    *pos += 1;
    Ok(b)
}

/// Reads one VIB at `*pos`, advancing it past the VIB (and past a plain-text unit).
pub fn parse(data: &[u8], pos: &mut usize) -> Result<Vib, DecodeError> {
    let vif = byte(data, pos, "VIF")?;
    let mut vifes = Vec::new();
    let mut text = None;
    let mut ext = vif & 0x80 != 0;
    let (kind, unit, mut exp, factor) = match vif & 0x7F {
        0x7B | 0x7D if ext => {
            let second = byte(data, pos, "VIFE")?;
            vifes.push(second);
            ext = second & 0x80 != 0;
            if vif & 0x7F == 0x7B {
                table_fb(second & 0x7F)
            } else {
                table_fd(second & 0x7F)
            }
        }
        0x7C => {
            // Plain text: the length and the characters follow the VIF (before any VIFE,
            // as libmbus and the meters in the field have it), last character first.
            let len = usize::from(byte(data, pos, "plain-text VIF")?);
            let end = pos
                .checked_add(len)
                .filter(|e| *e <= data.len())
                .ok_or_else(|| {
                    DecodeError::Truncated("record ends in its plain-text VIF".into())
                })?;
            let chars = data.get(*pos..end).unwrap_or_default();
            text = Some(chars.iter().rev().map(|&c| char::from(c)).collect());
            *pos = end;
            (Kind::PlainText, Unit::Other, 0, 1)
        }
        v => primary(v),
    };
    let mut qualified = false;
    let mut backward = false;
    let mut phase = None;
    let mut manufacturer_ext = kind == Kind::ManufacturerSpecific;
    while ext {
        if vifes.len() >= MAX_VIFE {
            return Err(DecodeError::Malformed(format!(
                "more than {MAX_VIFE} VIFEs"
            )));
        }
        let e = byte(data, pos, "VIFE")?;
        vifes.push(e);
        ext = e & 0x80 != 0;
        if manufacturer_ext {
            continue;
        }
        match e & 0x7F {
            0x70..=0x77 => exp = exp.saturating_add((e & 7) as i8 - 6),
            0x7D => exp = exp.saturating_add(3),
            // Record error code "none"; uncorrected unit; accumulation only if positive (the
            // ordinary, forward value).
            0x00 | 0x3A | 0x3B => {}
            0x3C => backward = true,
            0x7C => {
                // Extension of the combinable VIFE table: "at phase L1-L3" names the phase,
                // anything else qualifies the value.
                let more = if ext {
                    let more = byte(data, pos, "VIFE")?;
                    vifes.push(more);
                    ext = more & 0x80 != 0;
                    Some(more & 0x7F)
                } else {
                    None
                };
                match more {
                    Some(p @ 1..=3) if phase.is_none() => phase = Some(p),
                    _ => qualified = true,
                }
            }
            0x7F => {
                qualified = true;
                manufacturer_ext = true;
            }
            _ => qualified = true,
        }
    }
    Ok(Vib {
        kind,
        unit,
        exp,
        factor,
        qualified,
        backward,
        phase,
        text,
        vif,
        vifes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn primary_and_extensions() -> Result<(), DecodeError> {
        let mut p = 0;
        let v = parse(&[0x06], &mut p)?;
        assert_eq!((v.kind, v.unit, v.exp), (Kind::Energy, Unit::WattHour, 3));
        let mut p = 0;
        let v = parse(&[0xFD, 0x48], &mut p)?;
        assert_eq!((v.kind, v.unit, v.exp), (Kind::Voltage, Unit::Volt, -1));
        let mut p = 0;
        let v = parse(&[0x22], &mut p)?;
        assert_eq!((v.kind, v.factor), (Kind::OnTime, 3600));
        let mut p = 0;
        let v = parse(&[0xFD, 0xC9, 0xFC, 0x02], &mut p)?;
        assert_eq!(
            (v.kind, v.phase, v.qualified),
            (Kind::Voltage, Some(2), false)
        );
        let mut p = 0;
        let v = parse(&[0xFC, 0x03, b'H', b'R', b'%', 0x74], &mut p)?;
        assert_eq!((v.text.as_deref(), v.exp, p), (Some("%RH"), -2, 6));
        let mut p = 0;
        assert!(parse(&[0x84; 13], &mut p).is_err());
        Ok(())
    }
}
