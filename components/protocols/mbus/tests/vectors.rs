//! The libmbus wired vectors (`tests/vectors/mbus/mbus-wired.jsonl`) and the wmbusmeters
//! wireless vectors (`tests/vectors/wmbus/wmbus.jsonl`), checked with their peer formats.

mod common;

use std::path::Path;

use ami_domain::crypto::{Crypto, NoKeys};
use ami_vectors::formats::{mbus, wmbus};
use ami_vectors::{Outcome, Vector, for_protocol};
use common::TestKeys;

const RECEIVED_AT: i64 = 1_700_000_000_000;

/// The vectors of a file, line by line. One wmbusmeters frame (`qwaterv2-3`) has an odd
/// number of hex digits in its source; like wmbusmeters, its dangling last nibble is dropped.
fn vectors(file: &str) -> Result<Vec<Vector>, String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../tests/vectors")
        .join(file);
    let text = std::fs::read_to_string(&path).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        // A vector whose frame is not hex comes back with its `problem` set.
        let parsed = ami_vectors::vector::parse(line).and_then(|v| match v.first() {
            Some(first) if first.problem.is_some() => Err(ami_vectors::VectorError::Line {
                line: 0,
                reason: first.problem.clone().unwrap_or_default(),
            }),
            _ => Ok(v),
        });
        match parsed {
            Ok(v) => out.extend(v),
            Err(e) => {
                let mut raw: serde_json::Value =
                    serde_json::from_str(line).map_err(|e| e.to_string())?;
                let hex_text = raw
                    .get("frame_hex")
                    .and_then(|h| h.as_str())
                    .ok_or(format!("{e}"))?;
                if hex_text.len() % 2 == 0 {
                    return Err(e.to_string());
                }
                let even = hex_text[..hex_text.len() - 1].to_owned();
                raw["frame_hex"] = serde_json::Value::String(even);
                out.extend(
                    ami_vectors::vector::parse(&raw.to_string()).map_err(|e| e.to_string())?,
                );
            }
        }
    }
    Ok(out)
}

fn decode(v: &Vector) -> Result<ami_domain::Decoded, ami_domain::DecodeError> {
    let mut keys: Box<dyn Crypto> = match &v.key {
        Some(k) => Box::new(TestKeys::any(k)),
        None => Box::new(NoKeys),
    };
    ami_mbus::decode(&v.frame, RECEIVED_AT, keys.as_mut())
}

#[test]
fn libmbus_vectors() -> Result<(), String> {
    let vectors = vectors("mbus/mbus-wired.jsonl")?;
    assert_eq!(vectors.len(), 96);
    let format = for_protocol("mbus").ok_or("no mbus format")?;
    let (mut passed, mut skipped, mut failed, mut facts) = (0, 0, 0, 0);
    for v in &vectors {
        let expect = format.expectations(v).map_err(|e| e.to_string())?;
        facts += expect.facts.len();
        match mbus::check(&expect, &decode(v)) {
            Outcome::Pass => passed += 1,
            Outcome::Skip(why) => {
                skipped += 1;
                println!("skip  {}: {why}", v.id);
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
    println!("libmbus vectors: {passed} pass, {skipped} skip, {failed} fail ({facts} facts)");
    assert_eq!((skipped, failed), (0, 0));
    Ok(())
}

/// The wmbusmeters vectors that pass today (of 407; 66 are skips with a reason).
const WMBUS_PASS_FLOOR: usize = 245;

/// A short reason for a wmbusmeters vector that does not pass.
fn why_not(got: &Result<ami_domain::Decoded, ami_domain::DecodeError>) -> &'static str {
    match got {
        Err(ami_domain::DecodeError::Unsupported(_)) => "unsupported by ami",
        Err(ami_domain::DecodeError::MissingKey(_)) => "encrypted, no key published",
        Err(_) => "ami rejects the frame wmbusmeters' driver tolerates",
        Ok(d)
            if d.attributes.iter().any(|(o, _)| o.c % 100 == 28)
                || d.readings.iter().any(|r| r.register.c % 100 == 28) =>
        {
            "the driver reads manufacturer-specific data or VIFs"
        }
        Ok(_) => "the driver derives or renames values (sums, other fields, conversions)",
    }
}

#[test]
fn wmbusmeters_vectors() -> Result<(), String> {
    let vectors = vectors("wmbus/wmbus.jsonl")?;
    assert_eq!(vectors.len(), 407);
    let format = for_protocol("wmbus").ok_or("no wmbus format")?;
    let (mut passed, mut skipped, mut failed, mut facts) = (0, 0, 0, 0);
    for v in &vectors {
        let expect = format.expectations(v).map_err(|e| e.to_string())?;
        facts += expect.facts.len();
        let got = decode(v);
        match wmbus::check(&expect, &got) {
            Outcome::Pass => passed += 1,
            Outcome::Skip(why) => {
                skipped += 1;
                println!("skip  {}: {why}", v.id);
            }
            Outcome::Fail(errors) => {
                failed += 1;
                println!("FAIL  {} ({}):", v.id, why_not(&got));
                for e in errors {
                    println!("        {e}");
                }
            }
        }
    }
    println!("wmbusmeters vectors: {passed} pass, {skipped} skip, {failed} fail ({facts} facts)");
    assert!(
        passed >= WMBUS_PASS_FLOOR,
        "{passed} pass, floor {WMBUS_PASS_FLOOR}"
    );
    Ok(())
}

#[test]
#[ignore = "debugging aid: MBUS_VECTOR=<id> prints one wmbus vector's decode"]
fn show_one() -> Result<(), String> {
    let id = std::env::var("MBUS_VECTOR").map_err(|e| e.to_string())?;
    for v in vectors("wmbus/wmbus.jsonl")?
        .into_iter()
        .chain(vectors("mbus/mbus-wired.jsonl")?)
    {
        if v.id.ends_with(&id) {
            let mut keys = TestKeys::any(v.key.as_deref().unwrap_or(&[0; 16]));
            let t = if ami_mbus::wired::looks_wired(&v.frame) {
                ami_mbus::parse_wired(&v.frame, &mut keys)
            } else {
                ami_mbus::parse_wireless(&v.frame, &mut keys)
            };
            match t {
                Ok(t) => {
                    println!("{:?} {:?} ci {:02X}", t.ell, t.tpl, t.ci);
                    println!("payload {:02X?}", t.payload);
                    for item in t.records() {
                        println!("  {item:?}");
                    }
                }
                Err(e) => println!("{e}"),
            }
            println!("expected {}", v.raw["expected"]);
        }
    }
    Ok(())
}
