//! DLMS/COSEM as a meter sends it: data-notification pushes of registers with scaler-unit
//! (IEC 62056-6-2 classes 1, 3 and 8) and event notifications, in A-XDR, optionally ciphered
//! with general-glo-ciphering (security suite 0: AES-128-GCM, authenticated and encrypted,
//! 12-byte tag, per-meter EK and AK), framed in HDLC UI frames (IEC 62056-46, with LLC) or
//! the IEC 62056-47 wrapper.
//!
//! The push list of every meter:
//!
//! | logical name | value | scaler, unit |
//! | --- | --- | --- |
//! | `0-0:96.1.1` | equipment identifier (visible-string, [`Meter::id`]) | |
//! | `0-0:1.0.0` | the meter's clock (date-time, CET/CEST with deviation) | |
//! | `1-0:1.8.0`, `1-0:1.8.1`, `1-0:1.8.2` | import energy, total and per tariff (double-long-unsigned) | 0, Wh |
//! | `1-0:2.8.0`, `1-0:2.8.1`, `1-0:2.8.2` | export energy | 0, Wh |
//! | `1-0:1.7.0`, `1-0:2.7.0` | import and export power (double-long-unsigned) | 0, W |
//! | `1-0:32.7.0` | voltage L1 (long-unsigned) | -1, V |
//! | `1-0:31.7.0` | current L1 (long-unsigned) | -2, A |
//! | `0-0:96.14.0` | active tariff (unsigned) | |
//! | `0-0:96.7.21` | number of power failures (long-unsigned) | |
//! | `0-0:97.97.0` | error register: 0x100 cover opened, 0x200 magnetic field (double-long-unsigned) | |
//! | `1-0:0.2.0` | active firmware identifier (visible-string) | |
//!
//! Events go as event-notification-requests: on the standard event log object `0-0:96.11.0`
//! with the IDIS/DSMR event code (1 power down: the last gasp, 2 power up, 5 clock
//! adjusted, 18 firmware activated, 40 terminal cover opened, 42 strong DC field), and relay
//! changes on the disconnect control `0-0:96.3.10` (class 70, output state).

use aes::Aes128;
use aes_gcm::aead::AeadInPlace;
use aes_gcm::aead::consts::U12;
use aes_gcm::{AesGcm, KeyInit, Nonce};
use ami_domain::Obis;

use crate::clock;
use crate::command::SimError;
use crate::fleet::{DlmsFraming, Meter, SimEvent, SimEventKind, TamperKind};

/// Security control byte of the pushes: authenticated and encrypted, suite 0.
pub const SECURITY_CONTROL: u8 = 0x30;
/// The HDLC client address the pushes go to (the public client, 0x10).
pub const HDLC_CLIENT: u8 = 0x10;
/// The HDLC server address: logical device 1 (management), physical 17.
pub const HDLC_SERVER: (u8, u8) = (0x01, 0x11);
/// The largest HDLC frame length (11-bit length field).
pub const HDLC_MAX_LEN: usize = 0x7FF;

/// A-XDR data, as the encoder writes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Data {
    /// null-data (0x00).
    Null,
    /// array (0x01).
    Array(Vec<Data>),
    /// structure (0x02).
    Structure(Vec<Data>),
    /// boolean (0x03).
    Boolean(bool),
    /// double-long-unsigned (0x06).
    U32(u32),
    /// octet-string (0x09).
    Octets(Vec<u8>),
    /// visible-string (0x0A).
    Visible(String),
    /// integer (0x0F).
    I8(i8),
    /// unsigned (0x11).
    U8(u8),
    /// long-unsigned (0x12).
    U16(u16),
    /// enum (0x16).
    Enum(u8),
}

/// An A-XDR length (short form below 0x80, else 0x81 / 0x82 and the length).
pub fn put_length(out: &mut Vec<u8>, n: usize) {
    if n < 0x80 {
        out.push(n as u8);
    } else if n <= 0xFF {
        out.extend_from_slice(&[0x81, n as u8]);
    } else {
        let n = u16::try_from(n).unwrap_or(u16::MAX);
        out.push(0x82);
        out.extend_from_slice(&n.to_be_bytes());
    }
}

impl Data {
    /// Appends the A-XDR encoding (tag, length where the type has one, value).
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Data::Null => out.push(0x00),
            Data::Array(items) => {
                out.push(0x01);
                put_length(out, items.len());
                for i in items {
                    i.encode(out);
                }
            }
            Data::Structure(items) => {
                out.push(0x02);
                put_length(out, items.len());
                for i in items {
                    i.encode(out);
                }
            }
            Data::Boolean(b) => out.extend_from_slice(&[0x03, u8::from(*b)]),
            Data::U32(v) => {
                out.push(0x06);
                out.extend_from_slice(&v.to_be_bytes());
            }
            Data::Octets(b) => {
                out.push(0x09);
                put_length(out, b.len());
                out.extend_from_slice(b);
            }
            Data::Visible(s) => {
                out.push(0x0A);
                put_length(out, s.len());
                out.extend_from_slice(s.as_bytes());
            }
            Data::I8(v) => out.extend_from_slice(&[0x0F, v.to_be_bytes()[0]]),
            Data::U8(v) => out.extend_from_slice(&[0x11, *v]),
            Data::U16(v) => {
                out.push(0x12);
                out.extend_from_slice(&v.to_be_bytes());
            }
            Data::Enum(v) => out.extend_from_slice(&[0x16, *v]),
        }
    }
}

/// A COSEM date-time (12 bytes) of a UTC time, in Central European local time with its
/// deviation (-60 or -120 minutes) and the daylight-saving status bit.
pub fn date_time(utc_ms: i64) -> [u8; 12] {
    let secs = utc_ms.div_euclid(1000);
    let summer = clock::is_summer(secs);
    let (y, mo, d, h, mi, s, ms, wd) = clock::fields(clock::local_ms(utc_ms));
    let year = u16::try_from(y).unwrap_or(0xFFFF).to_be_bytes();
    let deviation: i16 = if summer { -120 } else { -60 };
    let dev = deviation.to_be_bytes();
    [
        year[0],
        year[1],
        mo as u8,
        d as u8,
        wd as u8,
        h as u8,
        mi as u8,
        s as u8,
        (ms / 10) as u8,
        dev[0],
        dev[1],
        if summer { 0x80 } else { 0x00 },
    ]
}

pub(crate) fn ln(o: Obis) -> Data {
    Data::Octets(o.to_bytes().to_vec())
}

fn register(o: Obis, value: Data, scaler: i8, unit: u8) -> Data {
    Data::Structure(vec![
        ln(o),
        value,
        Data::Structure(vec![Data::I8(scaler), Data::Enum(unit)]),
    ])
}

fn u32_of(v: u64) -> Data {
    Data::U32(u32::try_from(v).unwrap_or(u32::MAX))
}

/// The error register bits of a tamper state.
fn error_bits(m: &Meter) -> u32 {
    match m.tamper {
        None => 0,
        Some(TamperKind::CoverOpen) => 0x100,
        Some(TamperKind::MagneticField) => 0x200,
    }
}

/// One COSEM object of the meter's push list as it reads at one instant: interface class,
/// logical name, value, and the scaler-unit of registers (class 3).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CosemValue {
    /// Interface class: 1 data, 3 register, 8 clock.
    pub class: u16,
    /// Logical name.
    pub obis: Obis,
    /// The value attribute (attribute 2).
    pub value: Data,
    /// Scaler and unit (attribute 3 of registers).
    pub scaler_unit: Option<(i8, u8)>,
}

/// The meter's push list (the table in the module doc) as it reads at true UTC time
/// `ts_ms`: what its pushes carry and what a client's GET reads.
pub fn objects(m: &Meter, ts_ms: i64) -> Vec<CosemValue> {
    let o = Obis::new;
    let (imp, exp) = (m.import_wh, m.export_wh);
    let volts = 2300 + (m.power_w.0 % 70) as u16;
    let amps = u16::try_from(m.power_w.0 * 100 / 230).unwrap_or(u16::MAX);
    let data = |obis: Obis, value: Data| CosemValue {
        class: 1,
        obis,
        value,
        scaler_unit: None,
    };
    let reg = |obis: Obis, value: Data, scaler: i8, unit: u8| CosemValue {
        class: 3,
        obis,
        value,
        scaler_unit: Some((scaler, unit)),
    };
    vec![
        data(o(0, 0, 96, 1, 1, 255), Data::Visible(m.id.clone())),
        CosemValue {
            class: 8,
            obis: o(0, 0, 1, 0, 0, 255),
            value: Data::Octets(date_time(m.clock_ms(ts_ms)).to_vec()),
            scaler_unit: None,
        },
        reg(o(1, 0, 1, 8, 0, 255), u32_of(imp[0] + imp[1]), 0, 30),
        reg(o(1, 0, 1, 8, 1, 255), u32_of(imp[0]), 0, 30),
        reg(o(1, 0, 1, 8, 2, 255), u32_of(imp[1]), 0, 30),
        reg(o(1, 0, 2, 8, 0, 255), u32_of(exp[0] + exp[1]), 0, 30),
        reg(o(1, 0, 2, 8, 1, 255), u32_of(exp[0]), 0, 30),
        reg(o(1, 0, 2, 8, 2, 255), u32_of(exp[1]), 0, 30),
        reg(o(1, 0, 1, 7, 0, 255), u32_of(m.power_w.0), 0, 27),
        reg(o(1, 0, 2, 7, 0, 255), u32_of(m.power_w.1), 0, 27),
        reg(o(1, 0, 32, 7, 0, 255), Data::U16(volts), -1, 35),
        reg(o(1, 0, 31, 7, 0, 255), Data::U16(amps), -2, 33),
        data(o(0, 0, 96, 14, 0, 255), Data::U8(m.active_tariff(ts_ms))),
        data(
            o(0, 0, 96, 7, 21, 255),
            Data::U16(u16::try_from(m.power_failures).unwrap_or(u16::MAX)),
        ),
        data(o(0, 0, 97, 97, 0, 255), Data::U32(error_bits(m))),
        data(o(1, 0, 0, 2, 0, 255), Data::Visible(m.firmware.clone())),
    ]
}

/// The plaintext data-notification APDU of the meter's push at true UTC time `ts_ms`.
pub fn notification_apdu(m: &Meter, ts_ms: i64) -> Vec<u8> {
    let clock = date_time(m.clock_ms(ts_ms));
    let body = Data::Structure(
        objects(m, ts_ms)
            .into_iter()
            .map(|c| match c.scaler_unit {
                Some((scaler, unit)) => register(c.obis, c.value, scaler, unit),
                None => Data::Structure(vec![ln(c.obis), c.value]),
            })
            .collect(),
    );
    let mut apdu = vec![0x0F];
    // long-invoke-id-and-priority: the frame counter, high priority off.
    apdu.extend_from_slice(&(m.frame_counter & 0x00FF_FFFF).to_be_bytes());
    apdu.push(12);
    apdu.extend_from_slice(&clock);
    body.encode(&mut apdu);
    apdu
}

/// The standard event code of an event, if it goes to the event log object.
fn event_code(kind: &SimEventKind) -> Option<u8> {
    Some(match kind {
        SimEventKind::LastGasp => 1,
        SimEventKind::PowerRestored { .. } => 2,
        SimEventKind::ClockSet { .. } => 5,
        SimEventKind::FirmwareActivated { .. } => 18,
        SimEventKind::Tamper(TamperKind::CoverOpen) => 40,
        SimEventKind::Tamper(TamperKind::MagneticField) => 42,
        _ => return None,
    })
}

/// The plaintext event-notification-request APDU of an event, if DLMS carries it.
pub fn event_apdu(m: &Meter, e: &SimEvent) -> Option<Vec<u8>> {
    let (class, obis, value) = match &e.kind {
        SimEventKind::RelayOpened(_) => {
            (70u16, Obis::new(0, 0, 96, 3, 10, 255), Data::Boolean(false))
        }
        SimEventKind::RelayClosed => (70, Obis::new(0, 0, 96, 3, 10, 255), Data::Boolean(true)),
        kind => (
            1,
            Obis::new(0, 0, 96, 11, 0, 255),
            Data::U8(event_code(kind)?),
        ),
    };
    let mut apdu = vec![0xC2, 0x01, 12];
    apdu.extend_from_slice(&date_time(m.clock_ms(e.ts_ms)));
    apdu.extend_from_slice(&class.to_be_bytes());
    apdu.extend_from_slice(&obis.to_bytes());
    apdu.push(2);
    value.encode(&mut apdu);
    Some(apdu)
}

/// Wraps `apdu` in general-glo-ciphering with the meter's keys (suite 0, security control
/// 0x30: GCM over the APDU with `SC ‖ AK` as additional data, 12-byte tag, IV = system
/// title ‖ invocation counter = [`Meter::frame_counter`]); a meter without keys sends
/// `apdu` as it is.
pub fn protect(m: &Meter, apdu: Vec<u8>) -> Result<Vec<u8>, SimError> {
    let (Some(ek), Some(ak), Some(st)) =
        (m.keys.encryption, m.keys.authentication, m.system_title())
    else {
        return Ok(apdu);
    };
    let ic = m.frame_counter;
    let mut iv = [0u8; 12];
    iv[..8].copy_from_slice(&st);
    iv[8..].copy_from_slice(&ic.to_be_bytes());
    let mut aad = vec![SECURITY_CONTROL];
    aad.extend_from_slice(&ak);
    let mut buf = apdu;
    let gcm = AesGcm::<Aes128, U12, U12>::new(&ek.into());
    let tag = gcm
        .encrypt_in_place_detached(Nonce::from_slice(&iv), &aad, &mut buf)
        .map_err(|e| SimError::Encode {
            meter: m.id.clone(),
            reason: format!("aes-gcm: {e}"),
        })?;
    let mut out = vec![0xDB, 8];
    out.extend_from_slice(&st);
    put_length(&mut out, 5 + buf.len() + tag.len());
    out.push(SECURITY_CONTROL);
    out.extend_from_slice(&ic.to_be_bytes());
    out.extend_from_slice(&buf);
    out.extend_from_slice(&tag);
    Ok(out)
}

/// CRC-16/X.25, the HDLC HCS and FCS (sent least significant byte first).
pub fn fcs16(data: &[u8]) -> u16 {
    let mut crc = 0xFFFFu16;
    for &b in data {
        crc ^= u16::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0x8408
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// An HDLC UI frame (final bit set) from the meter's server address to the client, with
/// the LLC response header before `apdu`.
pub fn hdlc_ui(apdu: &[u8]) -> Option<Vec<u8>> {
    let info_len = 3 + apdu.len();
    let header = [
        (HDLC_CLIENT << 1) | 1,
        HDLC_SERVER.0 << 1,
        (HDLC_SERVER.1 << 1) | 1,
        0x13,
    ];
    let len = 2 + header.len() + 2 + info_len + 2;
    if len > HDLC_MAX_LEN {
        return None;
    }
    let format = 0xA000u16 | len as u16;
    let mut f = vec![0x7E];
    f.extend_from_slice(&format.to_be_bytes());
    f.extend_from_slice(&header);
    let hcs = fcs16(f.get(1..).unwrap_or_default());
    f.extend_from_slice(&hcs.to_le_bytes());
    f.extend_from_slice(&[0xE6, 0xE7, 0x00]);
    f.extend_from_slice(apdu);
    let fcs = fcs16(f.get(1..).unwrap_or_default());
    f.extend_from_slice(&fcs.to_le_bytes());
    f.push(0x7E);
    Some(f)
}

/// The IEC 62056-47 wrapper: version 1, source wPort 1 (management logical device),
/// destination wPort 0x10 (public client), the APDU's length.
pub fn wrapper(apdu: &[u8]) -> Option<Vec<u8>> {
    let len = u16::try_from(apdu.len()).ok()?;
    let mut f = vec![0x00, 0x01, 0x00, 0x01, 0x00, 0x10];
    f.extend_from_slice(&len.to_be_bytes());
    f.extend_from_slice(apdu);
    Some(f)
}

fn framed(m: &Meter, apdu: Vec<u8>) -> Result<Vec<u8>, SimError> {
    let apdu = protect(m, apdu)?;
    let f = match m.dlms_framing {
        DlmsFraming::Hdlc => hdlc_ui(&apdu),
        DlmsFraming::Wrapper => wrapper(&apdu),
    };
    f.ok_or_else(|| SimError::Encode {
        meter: m.id.clone(),
        reason: format!("APDU of {} bytes is too long for one frame", apdu.len()),
    })
}

/// The meter's push at true UTC time `ts_ms`, ciphered and framed.
pub fn push(m: &Meter, ts_ms: i64) -> Result<Vec<u8>, SimError> {
    framed(m, notification_apdu(m, ts_ms))
}

/// The event notification of an event, ciphered and framed; `None` for events DLMS does not
/// report (load spikes, skipped reports).
pub fn event(m: &Meter, e: &SimEvent) -> Result<Option<Vec<u8>>, SimError> {
    event_apdu(m, e).map(|a| framed(m, a)).transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fcs_check_value() {
        assert_eq!(fcs16(b"123456789"), 0x906E);
    }

    #[test]
    fn lengths() {
        let mut v = Vec::new();
        put_length(&mut v, 0x7F);
        put_length(&mut v, 0x80);
        put_length(&mut v, 0x1234);
        assert_eq!(v, [0x7F, 0x81, 0x80, 0x82, 0x12, 0x34]);
    }

    #[test]
    fn date_time_is_local_with_deviation() {
        // 2023-07-01 10:00:00 UTC is 12:00 CEST on a Saturday.
        let dt = date_time(ami_domain::time::unix_ms(2023, 7, 1, 10, 0, 0));
        assert_eq!(dt, [0x07, 0xE7, 7, 1, 6, 12, 0, 0, 0, 0xFF, 0x88, 0x80]);
    }
}
