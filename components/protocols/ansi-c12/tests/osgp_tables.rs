//! The OSGP tables for metering and events (`ami_ansi_c12::osgp_tables`), with frames built
//! from the OSGP Alliance's released documentation of the OSGP meter tables (the text of
//! ETSI GS OSG 001 / TS 104 001 itself could not be read, see the module documentation):
//!
//! * [OPG]: *Optical Port Programmer's Guide*, OSGP Alliance, version 1.1 (June 2021);
//! * [MEP]: *OSGP MEP Client Developer's Guide* (078-0372-01BD).
//!
//! Each test names the page its table layout or its bytes come from. The tables travel in
//! OSGP-AES-128-PSK frames of ami's profile (the legacy RC4/OMA-digest frames of the worked
//! examples are refused by design), encrypted with the `aes-gcm` crate, an implementation
//! independent of the decoder.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;

use aes_gcm::aead::{AeadInPlace, KeyInit};
use aes_gcm::aes::Aes128;
use aes_gcm::aes::cipher::consts::U12;
use aes_gcm::{AesGcm, Nonce};
use ami_ansi_c12::{osgp, osgp_tables, registers as reg};
use ami_crypto::{CryptoCtx, KeyRole, MemoryKeyStore};
use ami_domain::{DecodeError, Decoded, EventKind, Obis, Quantity, Unit};
use common::*;

const DEVICE: [u8; 6] = [0x00, 0x0A, 0xB0, 0x12, 0x34, 0x56];
const KEY: [u8; 16] = *b"osgp-psk-test-01";

fn frame(services: &[Vec<u8>]) -> Vec<u8> {
    let refs: Vec<&[u8]> = services.iter().map(Vec::as_slice).collect();
    let payload = osgp::build_payload(&refs);
    let (nonce, aad) = osgp::nonce_and_aad(DEVICE, 7);
    let mut body = payload;
    let tag = AesGcm::<Aes128, U12, U12>::new((&KEY).into())
        .encrypt_in_place_detached(Nonce::from_slice(&nonce), &aad, &mut body)
        .unwrap();
    let mut f = aad.to_vec();
    f.extend(body);
    f.extend_from_slice(&tag);
    f
}

fn decode(services: &[Vec<u8>]) -> Result<Decoded, DecodeError> {
    let store = MemoryKeyStore::new();
    store.insert("000ab0123456", KeyRole::OsgpOmak, KEY);
    let mut crypto = CryptoCtx::new(Arc::new(store));
    ami_ansi_c12::decode(&frame(services), 1_700_000_000_000, &mut crypto)
}

fn reading(d: &Decoded, register: &str) -> (Quantity, Unit) {
    let o: Obis = register.parse().unwrap();
    let r = d
        .readings
        .iter()
        .find(|r| r.register == o)
        .unwrap_or_else(|| panic!("no {register} in {:?}", d.readings));
    (r.value, r.unit)
}

/// BT00 as [OPG] page 48 gives it for OSGP meters: LSB first, ASCII, `TIME` format 2,
/// offset-count access, BCD identifiers, two's complement, NI_FMAT1 = NI_FMAT2 = 8 (INT32),
/// "ELON", electric nameplate, C12.19 version 1.0, 10/13/2/12 bytes of used-table and
/// used-procedure sets, 4 bytes of manufacturer status, 2 pending tables, then the sets.
fn bt00() -> Vec<u8> {
    let mut t = vec![0x02, 0x2A, 0x88];
    t.extend_from_slice(b"ELON");
    t.extend_from_slice(&[2, 0, 255, 12, 1, 0, 10, 13, 2, 12, 4, 2]);
    t.extend_from_slice(&[0xFF; 10]); // basic tables used
    t.extend_from_slice(&[0xFF; 13]); // extended tables used
    t.extend_from_slice(&[0xFF; 2]); // basic procedures used
    t.extend_from_slice(&[0xFF; 12]); // extended procedures used
    t.extend_from_slice(&[0x00; 10]); // basic tables write
    t.extend_from_slice(&[0x00; 13]); // extended tables write
    t
}

/// BT21 ([OPG] pages 21-23): flags, self reads, summations, demands, coincident values,
/// occurrences, tiers, present demands, present values.
fn bt21(func1: u8, summations: u8, tiers: u8, present_values: u8) -> Vec<u8> {
    vec![
        func1,
        0x0C,
        0,
        summations,
        0,
        0,
        0,
        tiers,
        0,
        present_values,
    ]
}

/// The BT23 table data of [MEP] chapter 2, "RC4 MEP Example Messages", Example 1 (pages
/// 15-16): the server's answer to a partial read of BT23 at offset 0 for 0x2C bytes, the
/// bytes between `<count of table data>` and `[digest]`.
const MEP_EXAMPLE_1_BT23: [u8; 44] = [
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, //
    0x00, 0x00, 0x00, 0x00, 0x00, 0x08, 0x00, 0x00, 0x00, 0x03, 0x00, //
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, //
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x06, 0x00, 0x00, 0x00,
];

/// [MEP] Example 1's read of BT23 (44 bytes = 11 summations: [OPG] page 23, BT21.3 "may be
/// set to either 11 or ..." for firmware 3.x), with a BT21 of those dimensions (no demand
/// reset count, so BT23 starts with the summations, [OPG] page 24 symbol A = 0; no tiers,
/// so the 44 bytes are the whole table). By [OPG] pages 25-27 the values are source 4,
/// Power Outage Duration, 8 s; source 5, Power Outage Qty, 3; source 10, Error Counter, 6;
/// every energy 0.
#[test]
fn bt23_of_the_mep_guide_worked_example() {
    // [MEP] Example 1's request: partial read (0x3F) of table 0x0017 at offset 0, 0x2C bytes.
    let read = vec![0x3F, 0x00, 0x17, 0x00, 0x00, 0x00, 0x00, 0x2C];
    let d = decode(&[
        write_full(0, &bt00()),
        write_full(21, &bt21(0x02, 11, 0, 0)),
        read,
        read_response(&MEP_EXAMPLE_1_BT23),
    ])
    .unwrap();
    assert_eq!(
        reading(&d, "0-0:128.14.10"),
        (Quantity::new(8, 0), Unit::Second)
    );
    assert_eq!(
        reading(&d, "0-0:128.14.11"),
        (Quantity::new(3, 0), Unit::Count)
    );
    assert_eq!(
        reading(&d, "0-0:128.14.16"),
        (Quantity::new(6, 0), Unit::Count)
    );
    assert_eq!(
        reading(&d, "1-0:1.8.0"),
        (Quantity::new(0, 0), Unit::WattHour)
    );
    assert_eq!(
        reading(&d, "1-0:16.8.0"),
        (Quantity::new(0, 0), Unit::WattHour)
    );
    assert_eq!(d.readings.len(), 11, "{:?}", d.readings);
    assert_eq!(
        reg::OSGP_OUTAGE_DURATION,
        "0-0:128.14.10".parse::<Obis>().unwrap()
    );
}

/// BT23 with 19 summations and a tier ([OPG] pages 24-27: firmware 4.0, BT21.3 = 19; the
/// tier block repeats the total block, sources 4, 5, 8, 9, 10 "not populated in tier
/// groups"), and with BT22 naming the sources ([OPG] page 23): here in reverse order.
#[test]
fn bt23_sources_by_bt22_and_tiers() {
    let values: Vec<i32> = (0..19).map(|i| 1000 + i).collect();
    let mut bt23 = Vec::new();
    for _tier in 0..2 {
        for v in &values {
            bt23.extend_from_slice(&v.to_le_bytes());
        }
    }
    let d = decode(&[write_full(21, &bt21(0x02, 19, 1, 0)), write_full(23, &bt23)]).unwrap();
    assert_eq!(
        reading(&d, "1-0:1.8.0"),
        (Quantity::new(1000, 0), Unit::WattHour)
    );
    assert_eq!(
        reading(&d, "1-0:1.8.1"),
        (Quantity::new(1000, 0), Unit::WattHour)
    );
    assert_eq!(
        reading(&d, "1-0:4.8.0"),
        (Quantity::new(1003, 0), Unit::VarHour)
    );
    assert_eq!(
        reading(&d, "1-0:8.8.1"),
        (Quantity::new(1014, 0), Unit::VarHour)
    );
    assert_eq!(
        reading(&d, "1-0:146.8.0"),
        (Quantity::new(1018, 0), Unit::VoltAmpereHour)
    );
    // 19 in the total block, 14 in the tier (5 are total-only).
    assert_eq!(d.readings.len(), 33, "{:?}", d.readings);

    let reversed: Vec<u8> = (0..19u8).rev().collect();
    let d = decode(&[
        write_full(21, &bt21(0x02, 19, 0, 0)),
        write_full(22, &reversed),
        write_full(23, &bt23[..19 * 4]),
    ])
    .unwrap();
    // Summation 0 measures source 18, summation 18 source 0.
    assert_eq!(
        reading(&d, "1-0:146.8.0"),
        (Quantity::new(1000, 0), Unit::VoltAmpereHour)
    );
    assert_eq!(
        reading(&d, "1-0:1.8.0"),
        (Quantity::new(1018, 0), Unit::WattHour)
    );
}

/// BT28 ([OPG] pages 53-57): no present demands, then the present values by number in W,
/// var, mA, mV, 1/1000 and mHz.
#[test]
fn bt28_present_values() {
    let vals: [i32; 15] = [
        1500, 0, 120, 0, 5230, 0, 0, 230_120, 0, 0, 985, 50_010, 1520, 0, 0,
    ];
    let mut bt28 = Vec::new();
    for v in vals {
        bt28.extend_from_slice(&v.to_le_bytes());
    }
    let d = decode(&[write_full(21, &bt21(0x02, 0, 0, 15)), write_full(28, &bt28)]).unwrap();
    assert_eq!(
        reading(&d, "1-0:1.7.0"),
        (Quantity::new(1500, 0), Unit::Watt)
    );
    assert_eq!(
        reading(&d, "1-0:31.7.0"),
        (Quantity::new(5230, -3), Unit::Ampere)
    );
    assert_eq!(
        reading(&d, "1-0:32.7.0"),
        (Quantity::new(230_120, -3), Unit::Volt)
    );
    assert_eq!(
        reading(&d, "1-0:33.7.0"),
        (Quantity::new(985, -3), Unit::Count)
    );
    assert_eq!(
        reading(&d, "1-0:14.7.0"),
        (Quantity::new(50_010, -3), Unit::Hertz)
    );
    assert_eq!(d.readings.len(), 15);

    // With present values past the mapped ones (16-21: sines, post-CT/VT copies).
    let mut more = bt28.clone();
    more.extend_from_slice(&[0u8; 4 * 7]);
    let d = decode(&[write_full(21, &bt21(0x02, 0, 0, 22)), write_full(28, &more)]).unwrap();
    assert!(
        d.attributes
            .iter()
            .any(|(o, v)| *o == reg::OSGP_UNREAD_PRESENT && v == "7"),
        "{:?}",
        d.attributes
    );

    // Cut short, BT28 is a typed error.
    let got = decode(&[
        write_full(21, &bt21(0x02, 0, 0, 15)),
        write_full(28, &bt28[..bt28.len() - 1]),
    ]);
    assert!(matches!(got, Err(DecodeError::Truncated(_))), "{got:?}");
}

/// BT03 ([OPG] pages 45-47): metering mode; standard status with Cover Removed (BT03.1
/// bit 12) and Power Failure (bit 11); the extended byte; the manufacturer-defined alarms
/// (4 bytes, BT00.17 = 4 on page 49) with Control Relay (1) Open (BT03.4.3) and Magnetic
/// Tamper Detected (BT03.7.1).
#[test]
fn bt03_alarms() {
    let std: u16 = (1 << 12) | (1 << 11);
    let mut bt03 = vec![0x01];
    bt03.extend_from_slice(&std.to_le_bytes());
    bt03.extend_from_slice(&[0x00, 0x08, 0x00, 0x00, 0x02]);
    let d = decode(&[write_full(3, &bt03)]).unwrap();
    let got: Vec<(EventKind, u32)> = d.events.iter().map(|e| (e.kind, e.code)).collect();
    assert_eq!(
        got,
        vec![
            (EventKind::PowerDown, 19),
            (EventKind::CoverOpen, 20),
            (EventKind::RelayOpen, 35),
            (EventKind::MagneticField, 57),
        ]
    );
    assert!(d.events.iter().all(|e| e.source == Some(reg::OSGP_ALARMS)));
    assert_eq!(
        osgp_tables::alarm(57).map(|a| a.0),
        Some("Magnetic Tamper Detected")
    );
    // Bits the guide does not name (BT03.3.4-7 reserved, past BT03.9.0) are not reported.
    let mut all = vec![0x00, 0x00, 0x00, 0xF0];
    all.extend_from_slice(&[0x00; 6]);
    all.extend_from_slice(&[0xFE; 40]);
    let d = decode(&[write_full(3, &all)]).unwrap();
    assert!(d.events.is_empty(), "{:?}", d.events);
    // Shorter than its standard status: a typed error.
    let got = decode(&[write_full(3, &[0x01, 0x00])]);
    assert!(matches!(got, Err(DecodeError::Truncated(_))), "{got:?}");
}

/// ET79, the alternate event log, has BT74's syntax ([OPG] page 49); BT71 as [OPG] page 51
/// gives it (no event numbers, date/time and sequence numbers kept, 8 standard and 19
/// manufacturer event bytes, 2 argument bytes), sized for 2 entries; the record as [OPG]
/// pages 51-53: `LTIME_DATE` (UTC), sequence number, user id (0xFFFE: a PLC message was
/// being processed), event id in bits 0-11, argument.
#[test]
fn et79_alternate_event_log() {
    let mut bt71 = vec![0x06, 8, 19, 2, 2];
    bt71.extend_from_slice(&2u16.to_le_bytes());
    bt71.extend_from_slice(&0u16.to_le_bytes());
    let mut et79 = vec![0x04];
    et79.extend_from_slice(&2u16.to_le_bytes()); // valid entries
    et79.extend_from_slice(&1u16.to_le_bytes()); // last entry element
    et79.extend_from_slice(&12u32.to_le_bytes()); // last entry sequence number
    et79.extend_from_slice(&0u16.to_le_bytes()); // unread
    for (seq, time, code) in [
        (11u16, ltime_bin(24, 3, 1, 10, 0, 0), 0x0001u16),
        (12, ltime_bin(24, 3, 1, 10, 5, 30), 0x0802),
    ] {
        et79.extend_from_slice(&time);
        et79.extend_from_slice(&seq.to_le_bytes());
        et79.extend_from_slice(&0xFFFEu16.to_le_bytes());
        et79.extend_from_slice(&code.to_le_bytes());
        et79.extend_from_slice(&[0xAA, 0x55]);
    }
    let d = decode(&[write_full(71, &bt71), write_full(osgp_tables::ET79, &et79)]).unwrap();
    let got: Vec<(i64, u32)> = d.events.iter().map(|e| (e.ts_ms, e.code)).collect();
    assert_eq!(
        got,
        vec![
            (ms(24, 3, 1, 10, 0, 0), 0x001),
            (ms(24, 3, 1, 10, 5, 30), 0x802)
        ]
    );
    assert!(
        d.events
            .iter()
            .all(|e| e.source == Some(reg::OSGP_ALT_EVENT_LOG))
    );
    // Without BT71 the log cannot be read: typed.
    let got = decode(&[write_full(osgp_tables::ET79, &et79)]);
    assert!(matches!(got, Err(DecodeError::Unsupported(_))), "{got:?}");
}

/// Tables the decoder does not interpret are named as OSGP names them ([OPG] page 8):
/// ET03, Utility Information ([OPG] page 18: 30 characters of utility serial number).
#[test]
fn other_tables_are_named_bt_and_et() {
    let mut et03 = b"UTIL-0001".to_vec();
    et03.resize(30, 0);
    let d = decode(&[write_full(2051, &et03)]).unwrap();
    assert!(
        d.attributes
            .iter()
            .any(|(o, v)| *o == reg::UNREAD_TABLE && v == "ET03: 30 bytes"),
        "{:?}",
        d.attributes
    );
}

/// OSGP's own encoding of the services carries no checksum ([MEP] chapter 2, Tables
/// 2.6-2.7): [MEP] RC4 Example 1 (pages 15-16) byte for byte, the `<message>` fields
/// without the `<length>` and the security fields: the request `3F 00 17 00 00 00 00 2C`
/// and the response `00 00 2C <44 bytes>`; and RC4 Example 2 (page 17), the partial write
/// `4F 08 32 00 00 1E 00 01 01` of ET50 (2098) at offset 30, one byte 0x01.
#[test]
fn services_without_checksum_as_in_the_mep_guide_examples() {
    let mut response = vec![0x00, 0x00, 0x2C];
    response.extend_from_slice(&MEP_EXAMPLE_1_BT23);
    let d = decode(&[
        write_full(21, &bt21(0x02, 11, 0, 0)),
        vec![0x3F, 0x00, 0x17, 0x00, 0x00, 0x00, 0x00, 0x2C],
        response,
    ])
    .unwrap();
    assert_eq!(
        reading(&d, "0-0:128.14.10"),
        (Quantity::new(8, 0), Unit::Second)
    );
    // A full read naming its length ([MEP] Table 2.6: "Table #, Length").
    let mut full = vec![0x00, 0x00, 0x2C];
    full.extend_from_slice(&MEP_EXAMPLE_1_BT23);
    let d = decode(&[
        write_full(21, &bt21(0x02, 11, 0, 0)),
        vec![0x30, 0x00, 0x17, 0x00, 0x2C],
        full,
    ])
    .unwrap();
    assert_eq!(
        reading(&d, "0-0:128.14.16"),
        (Quantity::new(6, 0), Unit::Count)
    );
    // Example 2's write, alone in its frame: described, no checksum attribute.
    let d = decode(&[vec![0x4F, 0x08, 0x32, 0x00, 0x00, 0x1E, 0x00, 0x01, 0x01]]).unwrap();
    let has = |o: Obis, v: &str| d.attributes.iter().any(|(a, b)| *a == o && b == v);
    assert!(has(reg::TABLE, "2098"), "{:?}", d.attributes);
    assert!(has(reg::OFFSET, "30"));
    assert!(has(reg::DATA, "01"));
    assert!(has(reg::CKSUM_FORM, "absent"));
    assert!(!d.attributes.iter().any(|(a, _)| *a == reg::CKSUM));
    // A checksum that is there is checked.
    let bad = decode(&[vec![
        0x4F, 0x08, 0x32, 0x00, 0x00, 0x1E, 0x00, 0x01, 0x01, 0x00,
    ]]);
    assert!(matches!(bad, Err(DecodeError::Checksum(_))), "{bad:?}");
    // Cut inside its data: typed.
    let cut = decode(&[vec![0x4F, 0x08, 0x32, 0x00, 0x00, 0x1E, 0x00, 0x02, 0x01]]);
    assert!(matches!(cut, Err(DecodeError::Truncated(_))), "{cut:?}");
}

/// BT26, the self reads ([OPG] pages 28-29): header (flags with "list type" circular,
/// valid entries, last entry element, last entry sequence number `UINT16`, unread entries),
/// then per entry no BIDN (BT21.4 = 0 demands), the capture time `STIME_DATE`, the season,
/// and a BT23 record (here 2 summations: sources 0 and 1, no tiers). Three entries, the
/// last written at element 0: in time order elements 1, 2, 0. BT21 as [OPG] page 22:
/// season and date/time fields (BT21.0.0-1), 3 self reads.
#[test]
fn bt26_self_reads() {
    let mut bt21 = bt21(0x03, 2, 0, 0);
    bt21[2] = 3;
    let mut bt26 = vec![0x04, 3, 0];
    bt26.extend_from_slice(&9u16.to_le_bytes());
    bt26.push(1);
    for (day, fwd) in [(3u8, 3000i32), (1, 1000), (2, 2000)] {
        bt26.extend_from_slice(&[24, 3, day, 0, 0]); // STIME_DATE
        bt26.push(0); // season
        bt26.extend_from_slice(&fwd.to_le_bytes());
        bt26.extend_from_slice(&7i32.to_le_bytes());
    }
    let d = decode(&[write_full(21, &bt21), write_full(26, &bt26)]).unwrap();
    let fwd: Vec<(i64, Quantity)> = d
        .readings
        .iter()
        .filter(|r| r.register == "1-0:1.8.0".parse::<Obis>().unwrap())
        .map(|r| (r.ts_ms, r.value))
        .collect();
    assert_eq!(
        fwd,
        vec![
            (ms(24, 3, 1, 0, 0, 0), Quantity::new(1000, 0)),
            (ms(24, 3, 2, 0, 0, 0), Quantity::new(2000, 0)),
            (ms(24, 3, 3, 0, 0, 0), Quantity::new(3000, 0)),
        ]
    );
    assert_eq!(d.readings.len(), 6);
    // An entry cut inside its record: typed.
    let got = decode(&[
        write_full(21, &bt21),
        write_full(26, &bt26[..bt26.len() - 2]),
    ]);
    assert!(matches!(got, Err(DecodeError::Truncated(_))), "{got:?}");
}
