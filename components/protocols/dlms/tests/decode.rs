//! Hand-built frames for what the vectors do not cover: event notifications, the disconnect
//! control, floats, clock status, HDLC segmentation and checksums.

use ami_dlms::hdlc::fcs16;
use ami_domain::crypto::NoKeys;
use ami_domain::{DecodeError, Decoded, EventKind, Obis, Quality, Quantity, Unit};

const AT: i64 = 1_700_000_000_000;

fn decode(frame: &[u8]) -> Result<Decoded, DecodeError> {
    ami_dlms::decode(frame, AT, &mut NoKeys)
}

/// 2024-03-01 12:00:00, deviation -60, status `status`.
fn date_time(status: u8) -> [u8; 12] {
    [0x07, 0xE8, 3, 1, 5, 12, 0, 0, 0, 0xFF, 0xC4, status]
}

#[test]
fn event_notification_of_an_event_object() -> Result<(), DecodeError> {
    let frame = [
        0xC2, 0x00, 0x00, 0x01, 0, 0, 96, 11, 0, 255, 0x02, 0x11, 0x01,
    ];
    let d = decode(&frame)?;
    let e = d
        .events
        .first()
        .ok_or(DecodeError::Malformed("no event".into()))?;
    assert_eq!(
        (e.kind, e.code, e.source, e.ts_ms),
        (
            EventKind::PowerDown,
            1,
            Some(Obis::new(0, 0, 96, 11, 0, 255)),
            AT
        )
    );
    Ok(())
}

#[test]
fn disconnect_control_event_and_push() -> Result<(), DecodeError> {
    let mut frame = vec![0xC2, 0x01, 0x0C];
    frame.extend(date_time(0));
    frame.extend([0x00, 0x46, 0, 0, 96, 3, 10, 255, 0x02, 0x03, 0x00]);
    let d = decode(&frame)?;
    let e = d
        .events
        .first()
        .ok_or(DecodeError::Malformed("no event".into()))?;
    assert_eq!(e.kind, EventKind::RelayOpen);
    assert_eq!(e.ts_ms, ami_domain::time::unix_ms(2024, 3, 1, 11, 0, 0));

    // A push of {clock (status invalid), control state 1, float32 voltage with scaler-unit}.
    let mut push = vec![0x0F, 0x00, 0x00, 0x00, 0x01, 0x00, 0x01, 0x03];
    push.extend([0x02, 0x02, 0x09, 0x06, 0, 0, 1, 0, 0, 255, 0x09, 0x0C]);
    push.extend(date_time(0x01));
    push.extend([0x02, 0x02, 0x09, 0x06, 0, 0, 96, 3, 10, 255, 0x16, 0x01]);
    push.extend([0x02, 0x03, 0x09, 0x06, 1, 0, 32, 7, 0, 255, 0x17]);
    push.extend(230.1f32.to_be_bytes());
    push.extend([0x02, 0x02, 0x0F, 0x00, 0x16, 35]);
    let d = decode(&push)?;
    assert_eq!(
        d.events.first().map(|e| e.kind),
        Some(EventKind::RelayClosed)
    );
    let r = d
        .readings
        .iter()
        .find(|r| r.register == Obis::new(1, 0, 32, 7, 0, 255));
    let r = r.ok_or(DecodeError::Malformed("no voltage".into()))?;
    assert_eq!((r.value, r.unit), (Quantity::new(2301, -1), Unit::Volt));
    assert_eq!(r.quality, Quality::CLOCK_INVALID);
    assert_eq!(r.ts_ms, ami_domain::time::unix_ms(2024, 3, 1, 11, 0, 0));
    Ok(())
}

fn hdlc(format_hi: u8, info: &[u8]) -> Vec<u8> {
    let len = 2 + 1 + 2 + 1 + 2 + info.len() + 2;
    let mut f = vec![
        format_hi | u8::try_from(len >> 8).unwrap_or(0),
        u8::try_from(len & 0xFF).unwrap_or(0),
        0x41,
        0x08,
        0x83,
        0x13,
    ];
    let hcs = fcs16(&f).to_le_bytes();
    f.extend(hcs);
    f.extend(info);
    let fcs = fcs16(&f).to_le_bytes();
    f.extend(fcs);
    let mut out = vec![0x7E];
    out.extend(f);
    out.push(0x7E);
    out
}

#[test]
fn hdlc_segmentation_and_checksums() -> Result<(), DecodeError> {
    let info = [
        0xE6, 0xE7, 0x00, 0x0F, 0x40, 0, 0, 0, 0x00, 0x01, 0x01, 0x02, 0x03, 0x09, 0x06, 1, 0, 1,
        7, 0, 255, 0x06, 0, 0, 1, 0x18, 0x02, 0x02, 0x0F, 0x00, 0x16, 0x1B,
    ];
    let ok = hdlc(0xA0, &info);
    let d = decode(&ok)?;
    assert_eq!(
        d.readings.first().map(|r| (r.value, r.unit)),
        Some((Quantity::new(280, 0), Unit::Watt))
    );
    assert!(matches!(
        decode(&hdlc(0xA8, &info)),
        Err(DecodeError::Unsupported(_))
    ));
    let mut bad_fcs = ok.clone();
    let n = bad_fcs.len();
    bad_fcs[n - 2] ^= 0xFF;
    assert!(matches!(decode(&bad_fcs), Err(DecodeError::Checksum(_))));
    let mut bad_hcs = ok.clone();
    bad_hcs[7] ^= 0xFF;
    assert!(matches!(decode(&bad_hcs), Err(DecodeError::Checksum(_))));
    assert!(matches!(
        decode(&ok[..ok.len() - 3]),
        Err(DecodeError::Truncated(_))
    ));
    Ok(())
}

#[test]
fn compact_array_push() -> Result<(), DecodeError> {
    // {logical name, compact-array of long-unsigned [1, 2, 3]}: not a number, not text.
    let push = [
        0x0F, 0, 0, 0, 1, 0x00, 0x01, 0x01, 0x02, 0x02, 0x09, 0x06, 1, 0, 99, 1, 0, 255, 0x13,
        0x12, 0x06, 0, 1, 0, 2, 0, 3,
    ];
    let d = decode(&push)?;
    assert!(d.readings.is_empty());
    Ok(())
}

#[test]
fn event_log_in_a_push() -> Result<(), DecodeError> {
    // {0-0:99.98.0, [{date-time, code 40}, {date-time, code 2}]}
    let mut push = vec![
        0x0F, 0, 0, 0, 1, 0x00, 0x01, 0x01, 0x02, 0x02, 0x09, 0x06, 0, 0, 99, 98, 0, 255,
    ];
    push.extend([0x01, 0x02, 0x02, 0x02, 0x09, 0x0C]);
    push.extend(date_time(0));
    push.extend([0x11, 40, 0x02, 0x02, 0x09, 0x0C]);
    push.extend(date_time(0));
    push.extend([0x11, 2]);
    let d = decode(&push)?;
    let kinds: Vec<(EventKind, u32)> = d.events.iter().map(|e| (e.kind, e.code)).collect();
    assert_eq!(kinds, [(EventKind::CoverOpen, 40), (EventKind::PowerUp, 2)]);
    assert!(
        d.events
            .iter()
            .all(|e| e.ts_ms == ami_domain::time::unix_ms(2024, 3, 1, 11, 0, 0))
    );
    Ok(())
}

#[test]
fn four_byte_server_address() -> Result<(), DecodeError> {
    // Server upper 0x0001, lower 0x3FFF (4 bytes), client 0x10.
    let mut f = vec![0xA0, 0x0A, 0x00, 0x02, 0xFE, 0xFF, 0x21, 0x93];
    let fcs = fcs16(&f).to_le_bytes();
    f.extend(fcs);
    let mut frame = vec![0x7E];
    frame.extend(f);
    frame.push(0x7E);
    let (parsed, _) = ami_dlms::hdlc::parse(&frame)?;
    assert_eq!(
        parsed.destination,
        ami_dlms::hdlc::Address {
            logical: 1,
            physical: Some(0x3FFF),
            size: 4
        }
    );
    assert_eq!(decode(&frame)?, Decoded::default());
    Ok(())
}
