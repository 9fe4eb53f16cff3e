//! The `dsmr_parser` vectors (`tests/vectors/dsmr/dsmr.jsonl`): every telegram decodes to what
//! dsmr-parser publishes; the encrypted frame is a skip here and its plaintext is checked
//! against the same expectations.

use std::path::Path;

use ami_domain::{DecodeError, EventKind, Obis, Quality, Quantity, Unit};
use ami_vectors::{Expectations, Outcome, Vector, check, for_protocol};

const RECEIVED_AT: i64 = 1_700_000_000_000;

fn vectors() -> Result<Vec<Vector>, String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../tests/vectors/dsmr/dsmr.jsonl");
    ami_vectors::load(&path).map_err(|e| e.to_string())
}

fn vector(id: &str) -> Result<Vector, String> {
    vectors()?
        .into_iter()
        .find(|v| v.id == id)
        .ok_or_else(|| format!("no vector {id}"))
}

fn expectations(v: &Vector) -> Result<Expectations, String> {
    for_protocol("dsmr")
        .ok_or("no dsmr format in ami-vectors")?
        .expectations(v)
        .map_err(|e| e.to_string())
}

fn obis(text: &str) -> Result<Obis, String> {
    text.parse().map_err(|e| format!("{e}"))
}

#[test]
fn dsmr_parser_vectors() -> Result<(), String> {
    let vectors = vectors()?;
    assert_eq!(vectors.len(), 14);
    let (mut passed, mut skipped, mut failed) = (0, 0, 0);
    for v in &vectors {
        let expect = expectations(v)?;
        let got = ami_dsmr::decode(&v.frame, RECEIVED_AT);
        match check(&expect, &got) {
            Outcome::Pass => {
                passed += 1;
                println!("pass  {} ({} facts)", v.id, expect.facts.len());
            }
            Outcome::Skip(why) => {
                skipped += 1;
                println!("skip  {}: {why}", v.id);
                // Only the encrypted frame may be skipped, and the decoder must say why.
                assert_eq!(v.frame.first(), Some(&0xDB), "{} skipped", v.id);
                assert!(
                    matches!(&got, Err(DecodeError::Unsupported(m)) if m.contains("general-glo-ciphering")),
                    "{got:?}"
                );
            }
            Outcome::Fail(errors) => {
                failed += 1;
                println!("FAIL  {}:", v.id);
                for e in errors {
                    println!("        {e}");
                }
            }
        }
    }
    println!("dsmr vectors: {passed} pass, {skipped} skip, {failed} fail");
    assert_eq!((passed, skipped, failed), (13, 1, 0));
    Ok(())
}

/// The encrypted frame's plaintext (what the dlms decoder hands over) meets dsmr-parser's
/// expectations for the decrypted frame (which name more values than the plaintext vector).
#[test]
fn encrypted_frame_plaintext() -> Result<(), String> {
    let v = vector("dsmr_parser-sagemcom_t210_d_r-encrypted")?;
    let plaintext = v
        .raw
        .get("expected_plaintext")
        .and_then(|p| p.as_str())
        .ok_or("no expected_plaintext")?;
    let mut expect = expectations(&v)?;
    assert!(expect.skip.is_some());
    expect.skip = None;
    assert_eq!(expect.facts.len(), 17);
    let got = ami_dsmr::decode(plaintext.as_bytes(), RECEIVED_AT);
    assert_eq!(check(&expect, &got), Outcome::Pass);
    Ok(())
}

#[test]
fn power_failure_log() -> Result<(), String> {
    let v = vector("dsmr_parser-telegram_v4_2")?;
    let d = ami_dsmr::decode(&v.frame, RECEIVED_AT).map_err(|e| e.to_string())?;
    let log = obis("1-0:99.97.0")?;
    let got: Vec<(EventKind, i64, u32, Option<Obis>)> = d
        .events
        .iter()
        .map(|e| (e.kind, e.ts_ms, e.duration_s, e.source))
        .collect();
    let at = |t: &str| ami_domain::time::parse_rfc3339(t).unwrap_or_default();
    assert_eq!(
        got,
        [
            (
                EventKind::PowerDown,
                at("2000-01-04T17:03:20Z"),
                237_126,
                Some(log)
            ),
            (
                EventKind::PowerDown,
                at("1999-12-31T23:00:01Z"),
                2_147_583_646,
                Some(log)
            ),
            (
                EventKind::PowerDown,
                at("2000-01-01T23:00:03Z"),
                2_317_482_647,
                Some(log)
            ),
        ]
    );
    Ok(())
}

#[test]
fn reading_times() -> Result<(), String> {
    // DSMR 4.2: the telegram time; the gas value its own capture time.
    let v = vector("dsmr_parser-telegram_v4_2")?;
    let d = ami_dsmr::decode(&v.frame, RECEIVED_AT).map_err(|e| e.to_string())?;
    let telegram = ami_domain::time::parse_rfc3339("2016-11-13T19:57:57Z").ok_or("date")?;
    let gas = obis("0-1:24.2.1")?;
    for r in &d.readings {
        let want = if r.register == gas {
            ami_domain::time::parse_rfc3339("2016-11-29T19:00:00Z").ok_or("date")?
        } else {
            telegram
        };
        assert_eq!(
            (r.register, r.ts_ms, r.quality),
            (r.register, want, Quality::VALID)
        );
    }

    // DSMR 2.2 has no telegram time: the receiver's, flagged.
    let v = vector("dsmr_parser-telegram_v2_2")?;
    let d = ami_dsmr::decode(&v.frame, RECEIVED_AT).map_err(|e| e.to_string())?;
    let gas = obis("0-1:24.3.0")?;
    for r in &d.readings {
        if r.register == gas {
            assert_eq!(r.quality, Quality::VALID);
            assert_eq!(
                Some(r.ts_ms),
                ami_domain::time::parse_rfc3339("2016-11-07T18:00:00Z")
            );
            assert_eq!(
                (r.value, r.unit),
                (Quantity::new(1001, -3), Unit::CubicMetre)
            );
        } else {
            assert_eq!(
                (r.ts_ms, r.quality),
                (RECEIVED_AT, Quality::TIME_FROM_RECEIVER)
            );
        }
    }
    Ok(())
}

#[test]
fn meter_identity() -> Result<(), String> {
    for (id, meter) in [
        (
            "dsmr_parser-telegram_v4_2",
            Some("3960221976967177082151037881335713"),
        ),
        (
            "dsmr_parser-telegram_fluvius_v171",
            Some("3153414733313031303231363035"),
        ),
        (
            "dsmr_parser-telegram_v5_eon_hu",
            Some("383930303832323030303032313630"),
        ),
        ("dsmr_parser-telegram_iskra_ie", Some("09610")),
        (
            "dsmr_parser-telegram_esy5q3db1024_v304",
            Some("1ESY1313002565"),
        ),
        ("dsmr_parser-telegram_sagemcom_t210_d_r", None),
    ] {
        let d = ami_dsmr::decode(&vector(id)?.frame, RECEIVED_AT).map_err(|e| e.to_string())?;
        assert_eq!(d.meter.as_deref(), meter, "{id}");
    }
    Ok(())
}

#[test]
fn belgian_demand_history_with_an_invalid_time() -> Result<(), String> {
    // 0-0:98.1.0(4)...(230801000000S)(632525252525W)(00.000*kW)...: the month's maximum
    // happened at an impossible time; the month's value still counts.
    let v = vector("dsmr_parser-telegram_fluvius_v171_alt")?;
    let d = ami_dsmr::decode(&v.frame, RECEIVED_AT).map_err(|e| e.to_string())?;
    let history = obis("0-0:98.1.0")?;
    let months: Vec<(i64, Quantity)> = d
        .readings
        .iter()
        .filter(|r| r.register == history)
        .map(|r| (r.ts_ms, r.value))
        .collect();
    let at = |t: &str| ami_domain::time::parse_rfc3339(t).unwrap_or_default();
    assert_eq!(
        months,
        [
            (at("2023-07-31T22:00:00Z"), Quantity::new(0, 0)),
            (at("2023-08-31T22:00:00Z"), Quantity::new(1862, 0)),
            (at("2023-09-30T22:00:00Z"), Quantity::new(4229, 0)),
            (at("2023-10-31T23:00:00Z"), Quantity::new(4927, 0)),
        ]
    );
    Ok(())
}

#[test]
fn every_plaintext_vector_decodes_without_loss() -> Result<(), String> {
    // Every data object shows up as a reading or an attribute (the power failure log as its
    // events, and only when it has entries).
    let log = obis("1-0:99.97.0")?;
    for v in vectors()? {
        if v.frame.first() == Some(&0xDB) {
            continue;
        }
        let d = ami_dsmr::decode(&v.frame, RECEIVED_AT).map_err(|e| format!("{}: {e}", v.id))?;
        let framed = ami_dsmr::frame(&v.frame).map_err(|e| e.to_string())?;
        for object in ami_dsmr::object::Objects::new(framed.body, 2) {
            let o = object.map_err(|e| e.to_string())?.obis;
            let shown = d.readings.iter().any(|r| r.register == o)
                || d.attributes.iter().any(|(a, _)| *a == o)
                || o == log;
            assert!(shown, "{}: {o} lost", v.id);
        }
    }
    Ok(())
}
