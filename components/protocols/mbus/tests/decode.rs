//! Decoding details on vector frames: meter identity, reading times, registers, the fixed
//! data structure, application errors and manufacturer data.

use std::path::Path;

use ami_domain::crypto::NoKeys;
use ami_domain::{Decoded, EventKind, Obis, Quality, Quantity, Unit};

const RECEIVED_AT: i64 = 1_700_000_000_000;

fn frame(file: &str, id: &str) -> Result<Vec<u8>, String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../tests/vectors")
        .join(file);
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    for line in text.lines() {
        if let Ok(vs) = ami_vectors::vector::parse(line) {
            for v in vs {
                if v.id == id {
                    return Ok(v.frame);
                }
            }
        }
    }
    Err(format!("no vector {id}"))
}

fn wired(name: &str) -> Result<Decoded, String> {
    let f = frame("mbus/mbus-wired.jsonl", &format!("libmbus-{name}"))?;
    ami_mbus::decode(&f, RECEIVED_AT, &mut NoKeys).map_err(|e| e.to_string())
}

fn obis(t: &str) -> Result<Obis, String> {
    t.parse().map_err(|e| format!("{e}"))
}

fn reading(d: &Decoded, register: &str) -> Result<(Quantity, Unit, i64, Quality), String> {
    let o = obis(register)?;
    d.readings
        .iter()
        .find(|r| r.register == o)
        .map(|r| (r.value, r.unit, r.ts_ms, r.quality))
        .ok_or_else(|| format!("no {register}"))
}

#[test]
fn wired_itron_water_meter() -> Result<(), String> {
    // 68 3C 3C 68 08 08 72 78034911 7704 0E 16 0A 00 0000 ...: cold water, ACW.
    let d = wired("test-frames-ACW_Itron-BM-plus-m")?;
    assert_eq!(d.meter.as_deref(), Some("ACW-11490378"));
    // Volume 54321 l at the frame's date-time (type F, storage 0: 2014-03-13 11:11).
    let at = ami_domain::time::unix_ms(2014, 3, 13, 11, 11, 0);
    assert_eq!(
        reading(&d, "8-0:1.0.0*255")?,
        (
            Quantity::new(54321, -3),
            Unit::CubicMetre,
            at,
            Quality::VALID
        )
    );
    // Storage 1 has a date (type G) but no date-time: the receiver's time.
    assert_eq!(
        reading(&d, "8-0:1.0.0*1")?,
        (
            Quantity::new(0, -3),
            Unit::CubicMetre,
            RECEIVED_AT,
            Quality::TIME_FROM_RECEIVER
        )
    );
    let attr = |o: &str| -> Result<Option<String>, String> {
        let o = obis(o)?;
        Ok(d.attributes
            .iter()
            .find(|(a, _)| *a == o)
            .map(|(_, v)| v.clone()))
    };
    assert_eq!(attr("8-0:0.0.0*255")?.as_deref(), Some("11490378"));
    assert_eq!(
        attr("8-0:0.91.0*255")?.as_deref(),
        Some("2014-03-13T11:11:00Z")
    );
    assert_eq!(attr("8-0:0.92.0*1")?.as_deref(), Some("2000-00-00"));
    assert_eq!(attr("8-0:0.2.0*255")?.as_deref(), Some("2"));
    assert_eq!(attr("8-0:128.128.0*255")?.as_deref(), Some("00 01 75 13"));
    Ok(())
}

#[test]
fn fixed_data_structure() -> Result<(), String> {
    // CI 0x73: id 90919293, heat, counter 1 in kWh (BCD), counter 2 in litres.
    let d = wired("test-frames-sen_pollusonic_2")?;
    assert_eq!(d.meter.as_deref(), Some("90919293"));
    assert_eq!(reading(&d, "6-0:1.8.0*255")?.0, Quantity::new(6_531_000, 0));
    assert_eq!(reading(&d, "6-0:2.8.0*255")?.0, Quantity::new(69, -3));
    Ok(())
}

#[test]
fn application_error_is_an_alarm() -> Result<(), String> {
    let d = wired("error-frames-application_busy")?;
    assert_eq!(d.events.len(), 1);
    assert_eq!((d.events[0].kind, d.events[0].code), (EventKind::Alarm, 8));
    assert_eq!(
        d.attributes,
        [(obis("0-0:97.97.1*255")?, "application busy".to_owned())]
    );
    Ok(())
}

#[test]
fn record_errors_are_typed() -> Result<(), String> {
    for (name, kind) in [
        ("error-frames-too_many_dife", "malformed"),
        ("error-frames-too_many_vife", "malformed"),
        ("error-frames-premature_end_of_data1", "truncated"),
        ("error-frames-too_short_header", "truncated"),
    ] {
        let got = wired(name);
        assert!(
            matches!(&got, Err(e) if e.starts_with(kind)),
            "{name}: {got:?}"
        );
    }
    Ok(())
}

#[test]
fn wireless_meter_and_plain_text_units() -> Result<(), String> {
    // ABB B23 electricity meter: link-layer address, energy 10^-2 kWh.
    let f = frame("wmbus/wmbus.jsonl", "wmbusmeters-abbb23-abbb23-0")?;
    let d = ami_mbus::decode(&f, RECEIVED_AT, &mut NoKeys).map_err(|e| e.to_string())?;
    assert_eq!(d.meter.as_deref(), Some("ABB-33221100"));
    assert_eq!(reading(&d, "1-0:1.8.0*255")?.0, Quantity::new(524_917, 1));
    // Firmware version as LVAR text, read in order.
    let fw = obis("1-0:0.2.0*255")?;
    assert!(d.attributes.iter().any(|(o, v)| *o == fw && v == "B1.28.0"));
    Ok(())
}

#[test]
fn format_a_crc_blocks_are_checked_and_removed() -> Result<(), String> {
    // Rebuild the ABB frame with format A CRCs: same result; a flipped CRC bit fails.
    let f = frame("wmbus/wmbus.jsonl", "wmbusmeters-abbb23-abbb23-0")?;
    let mut a = Vec::new();
    let mut rest: &[u8] = &f;
    let mut block = 10;
    while !rest.is_empty() {
        let (b, r) = rest.split_at(block.min(rest.len()));
        a.extend_from_slice(b);
        a.extend_from_slice(&ami_mbus::wireless::crc16(b).to_be_bytes());
        rest = r;
        block = 16;
    }
    let plain = ami_mbus::decode(&f, RECEIVED_AT, &mut NoKeys).map_err(|e| e.to_string())?;
    let with_crc = ami_mbus::decode(&a, RECEIVED_AT, &mut NoKeys).map_err(|e| e.to_string())?;
    assert_eq!(plain, with_crc);
    let last = a.len() - 1;
    a[last] ^= 1;
    assert!(matches!(
        ami_mbus::decode(&a, RECEIVED_AT, &mut NoKeys),
        Err(ami_domain::DecodeError::Checksum(_))
    ));
    Ok(())
}
