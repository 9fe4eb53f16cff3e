//! Wireless M-Bus as an electricity meter sends it (EN 13757-4 frame format A, C field
//! `0x44` SND-NR, EN 13757-3 application layer): a short transport header (CI `0x7A`) with
//! the access number and status, the records encrypted with security mode 5 (AES-128-CBC,
//! IV = M ‖ A ‖ 8 × access number, the payload led by `2F 2F` and padded with `2F`) under
//! the meter's key.
//!
//! The records (DIF, VIF):
//!
//! | record | DIF / DIFE | VIF / VIFE | register as decoded |
//! | --- | --- | --- | --- |
//! | the meter's clock, UTC (type F) | `04` | `6D` | attribute `1-0:0.91.0` |
//! | import energy, total / tariff 1 / tariff 2 | `04` / `84 10` / `84 20` | `03` (Wh) | `1-0:1.8.0` / `1.8.1` / `1.8.2` |
//! | export energy, the same | `04` / `84 10` / `84 20` | `83 3C` (Wh, backward) | `1-0:2.8.0` / `2.8.1` / `2.8.2` |
//! | net active power, negative when exporting | `04` | `2B` (W) | `1-0:1.7.0` |
//! | active tariff | `01` | `FD 3A` (dimensionless) | `1-0:96.14.0` |
//! | relay (digital output, 1 closed) | `01` | `FD 1A` | attribute `1-0:96.4.0` |
//! | firmware version (text) | `0D` | `FD 0E` | attribute `1-0:0.2.0` |
//!
//! The status byte reports tamper as a temporary error (`0x10`). The last gasp, the restore
//! and tamper go as alarm telegrams (CI `0x71`) with an alarm code ([`alarm_code`]).

use aes::Aes128;
use aes::cipher::{BlockEncryptMut, KeyIvInit, block_padding::NoPadding};

use crate::command::SimError;
use crate::fleet::{Meter, ProtocolId, SimEvent, SimEventKind, TamperKind};

/// The C field of the telegrams: SND-NR.
pub const C_FIELD: u8 = 0x44;

/// CRC-16/EN-13757 (polynomial 0x3D65, initial 0, final XOR 0xFFFF), sent big endian.
pub fn crc16(data: &[u8]) -> u16 {
    let mut crc: u16 = 0;
    for &b in data {
        crc ^= u16::from(b) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x3D65
            } else {
                crc << 1
            };
        }
    }
    !crc
}

/// Frame format A: the data (L field first) cut in blocks of 10, then 16 bytes, each
/// followed by its CRC.
pub fn format_a(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + 2 * (2 + data.len() / 16));
    let (first, rest) = data.split_at(data.len().min(10));
    for block in std::iter::once(first).chain(rest.chunks(16)) {
        out.extend_from_slice(block);
        out.extend_from_slice(&crc16(block).to_be_bytes());
    }
    out
}

/// The 8 bytes of the link address (M ‖ A) of a meter, if it is an M-Bus meter.
pub fn address(m: &Meter) -> Option<[u8; 8]> {
    match m.protocol_id {
        ProtocolId::Mbus {
            manufacturer,
            id,
            version,
            device_type,
        } => {
            let mf = manufacturer.to_le_bytes();
            let i = id.to_le_bytes();
            Some([mf[0], mf[1], i[0], i[1], i[2], i[3], version, device_type])
        }
        _ => None,
    }
}

/// An M-Bus type F date-time (minutes resolution, 4 bytes) of UTC milliseconds.
pub fn type_f(utc_ms: i64) -> [u8; 4] {
    let (y, mo, d, h, mi, _, _, _) = crate::clock::fields(utc_ms);
    let y = (y.rem_euclid(100)) as u8;
    [
        mi as u8 & 0x3F,
        h as u8 & 0x1F,
        (d as u8 & 0x1F) | ((y & 0x07) << 5),
        (mo as u8 & 0x0F) | ((y >> 3) << 4),
    ]
}

fn records(m: &Meter, ts_ms: i64) -> Vec<u8> {
    let mut r = vec![0x2F, 0x2F];
    let mut put = |head: &[u8], value: &[u8]| {
        r.extend_from_slice(head);
        r.extend_from_slice(value);
    };
    let u32le = |v: u64| u32::try_from(v).unwrap_or(u32::MAX).to_le_bytes();
    let (imp, exp) = (m.import_wh, m.export_wh);
    put(&[0x04, 0x6D], &type_f(m.clock_ms(ts_ms)));
    put(&[0x04, 0x03], &u32le(imp[0] + imp[1]));
    put(&[0x84, 0x10, 0x03], &u32le(imp[0]));
    put(&[0x84, 0x20, 0x03], &u32le(imp[1]));
    put(&[0x04, 0x83, 0x3C], &u32le(exp[0] + exp[1]));
    put(&[0x84, 0x10, 0x83, 0x3C], &u32le(exp[0]));
    put(&[0x84, 0x20, 0x83, 0x3C], &u32le(exp[1]));
    let net = i64::try_from(m.power_w.0).unwrap_or(i64::MAX)
        - i64::try_from(m.power_w.1).unwrap_or(i64::MAX);
    let net = i32::try_from(net).unwrap_or(if net < 0 { i32::MIN } else { i32::MAX });
    put(&[0x04, 0x2B], &net.to_le_bytes());
    put(&[0x01, 0xFD, 0x3A], &[m.active_tariff(ts_ms)]);
    put(&[0x01, 0xFD, 0x1A], &[u8::from(m.relay_closed)]);
    // Text goes last character first.
    let fw: Vec<u8> = m.firmware.bytes().take(0xBF).rev().collect();
    put(&[0x0D, 0xFD, 0x0E, fw.len() as u8], &fw);
    r
}

fn link(m: &Meter, app: &[u8]) -> Result<Vec<u8>, SimError> {
    let a = address(m).ok_or_else(|| SimError::Encode {
        meter: m.id.clone(),
        reason: "not a wireless M-Bus meter".into(),
    })?;
    let l = u8::try_from(9 + app.len()).map_err(|_| SimError::Encode {
        meter: m.id.clone(),
        reason: format!(
            "{} bytes of application data do not fit the L field",
            app.len()
        ),
    })?;
    let mut data = vec![l, C_FIELD];
    data.extend_from_slice(&a);
    data.extend_from_slice(app);
    Ok(format_a(&data))
}

/// The meter's telegram at true UTC time `ts_ms` (format A, with CRCs).
pub fn telegram(m: &Meter, ts_ms: i64) -> Result<Vec<u8>, SimError> {
    let access = (m.frame_counter & 0xFF) as u8;
    let status = if m.tamper.is_some() { 0x10 } else { 0x00 };
    let mut payload = records(m, ts_ms);
    let config: u16 = match (m.keys.encryption, address(m)) {
        (Some(key), Some(a)) => {
            let padded = payload.len().div_ceil(16) * 16;
            payload.resize(padded, 0x2F);
            let blocks = padded / 16;
            if blocks > 15 {
                return Err(SimError::Encode {
                    meter: m.id.clone(),
                    reason: format!("{blocks} encrypted blocks (15 at most)"),
                });
            }
            let mut iv = [access; 16];
            iv[..8].copy_from_slice(&a);
            let len = payload.len();
            cbc::Encryptor::<Aes128>::new(&key.into(), &iv.into())
                .encrypt_padded_mut::<NoPadding>(&mut payload, len)
                .map_err(|_| SimError::Encode {
                    meter: m.id.clone(),
                    reason: "aes-cbc padding".into(),
                })?;
            0x0500 | ((blocks as u16) << 4)
        }
        _ => 0x0000,
    };
    let mut app = vec![0x7A, access, status];
    app.extend_from_slice(&config.to_le_bytes());
    app.extend_from_slice(&payload);
    link(m, &app)
}

/// The alarm code of an event in the meter's alarm telegrams: 0x01 last gasp, 0x02 power
/// restored, 0x10 cover opened, 0x11 magnetic field; other events send none.
pub fn alarm_code(kind: &SimEventKind) -> Option<u8> {
    Some(match kind {
        SimEventKind::LastGasp => 0x01,
        SimEventKind::PowerRestored { .. } => 0x02,
        SimEventKind::Tamper(TamperKind::CoverOpen) => 0x10,
        SimEventKind::Tamper(TamperKind::MagneticField) => 0x11,
        _ => return None,
    })
}

/// The alarm telegram (CI `0x71`) of an event, if the meter sends one for it.
pub fn alarm(m: &Meter, e: &SimEvent) -> Result<Option<Vec<u8>>, SimError> {
    alarm_code(&e.kind)
        .map(|code| link(m, &[0x71, code]))
        .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc_check_value() {
        assert_eq!(crc16(b"123456789"), 0xC2B7);
    }

    #[test]
    fn format_a_blocks() {
        let data: Vec<u8> = (0u8..30).collect();
        let f = format_a(&data);
        // 10 + 2, 16 + 2, 4 + 2.
        assert_eq!(f.len(), 36);
        assert_eq!(&f[10..12], &crc16(&data[..10]).to_be_bytes());
    }

    #[test]
    fn type_f_fields() {
        // 2023-07-01 10:05 UTC.
        let b = type_f(ami_domain::time::unix_ms(2023, 7, 1, 10, 5, 0));
        assert_eq!(b, [5, 10, 1 | (23 & 7) << 5, 7 | (23 >> 3) << 4]);
    }
}
