//! The published IEC 62056-21 vectors (`tests/vectors/iec62056-21/iec62056-21.jsonl`) against
//! the peers' expected values, and the same frames through the [`Reassembler`].

use std::error::Error;
use std::path::PathBuf;

use ami_iec62056_21::{DecodeError, Decoded, Reassembler, decode};
use ami_vectors::{Outcome, Vector, check, for_protocol, load};

/// Any fixed receive time: readout values carry none of their own.
const RECEIVED_AT_MS: i64 = 1_700_000_000_000;

fn vectors() -> Result<Vec<Vector>, Box<dyn Error>> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../tests/vectors/iec62056-21/iec62056-21.jsonl");
    Ok(load(&path)?)
}

/// Feeds frames through a reassembler: the one readout they make, or the first error.
fn reassemble<'a>(frames: impl IntoIterator<Item = &'a [u8]>) -> Result<Vec<u8>, DecodeError> {
    let mut reassembler = Reassembler::new();
    let mut items = Vec::new();
    for frame in frames {
        items.extend(reassembler.push(frame));
    }
    items.extend(reassembler.finish());
    let mut readouts = Vec::new();
    for item in items {
        readouts.push(item?);
    }
    match <[Vec<u8>; 1]>::try_from(readouts) {
        Ok([readout]) => Ok(readout),
        Err(readouts) => Err(DecodeError::Malformed(format!(
            "the frames make {} readouts, not one",
            readouts.len()
        ))),
    }
}

/// Decodes a vector: frames with preceding frames go through the reassembler.
fn decode_vector(vector: &Vector) -> Result<Decoded, DecodeError> {
    if vector.preceding.is_empty() {
        return decode(&vector.frame, RECEIVED_AT_MS);
    }
    let frames = vector
        .preceding
        .iter()
        .chain(std::iter::once(&vector.frame))
        .map(Vec::as_slice);
    decode(&reassemble(frames)?, RECEIVED_AT_MS)
}

#[test]
fn every_vector_matches_its_peer() -> Result<(), Box<dyn Error>> {
    let format = for_protocol("iec62056-21").ok_or("no PeerFormat registered for iec62056-21")?;
    let vectors = vectors()?;
    let (mut passed, mut failed, mut skipped) = (0, 0, 0);
    for vector in &vectors {
        let expect = format.expectations(vector)?;
        let got = decode_vector(vector);
        let kind = if expect.expect_error {
            match &got {
                Err(e) => format!("negative, rejected: {e}"),
                Ok(_) => "negative".to_owned(),
            }
        } else {
            format!("{} facts", expect.facts.len())
        };
        match check(&expect, &got) {
            Outcome::Pass => {
                passed += 1;
                println!("pass {} ({kind})", vector.id);
            }
            Outcome::Skip(why) => {
                skipped += 1;
                println!("skip {}: {why}", vector.id);
            }
            Outcome::Fail(errors) => {
                failed += 1;
                println!("FAIL {} ({kind})", vector.id);
                for e in errors {
                    println!("     {e}");
                }
            }
        }
    }
    println!("iec62056-21 vectors: {passed} pass, {failed} fail, {skipped} skip");
    assert_eq!(vectors.len(), 14, "vector count changed");
    assert_eq!((failed, skipped), (0, 0));
    Ok(())
}

/// Every vector fed one byte at a time through the reassembler decodes as the whole frame does
/// (the two BCC negatives fail there too, with a checksum error).
#[test]
fn byte_stream_reassembly_matches_direct_decode() -> Result<(), Box<dyn Error>> {
    for vector in vectors()? {
        let direct = decode(&vector.frame, RECEIVED_AT_MS);
        let streamed =
            reassemble(vector.frame.chunks(1)).and_then(|readout| decode(&readout, RECEIVED_AT_MS));
        match (&direct, &streamed) {
            (Ok(a), Ok(b)) => assert_eq!(a, b, "{}", vector.id),
            (Err(DecodeError::Checksum(_)), Err(DecodeError::Checksum(_))) => {}
            _ => {
                return Err(
                    format!("{}: direct {direct:?}, streamed {streamed:?}", vector.id).into(),
                );
            }
        }
    }
    Ok(())
}

/// Every strict prefix of a vector decodes (it still holds the end character `!`) or is
/// reported as truncated, never as anything else.
#[test]
fn every_prefix_is_truncated_or_complete() -> Result<(), Box<dyn Error>> {
    for vector in vectors()? {
        for len in 0..vector.frame.len() {
            let prefix = vector.frame.get(..len).unwrap_or_default();
            match decode(prefix, RECEIVED_AT_MS) {
                Ok(_) | Err(DecodeError::Truncated(_)) => {}
                Err(e) => return Err(format!("{} cut at {len}: {e}", vector.id).into()),
            }
        }
    }
    Ok(())
}

/// The two BCC negative cases hold the same data as good readouts: with the BCC corrected they
/// decode, and every fact their peer states holds.
#[test]
fn bcc_negatives_match_their_peer_once_the_bcc_is_corrected() -> Result<(), Box<dyn Error>> {
    let format = for_protocol("iec62056-21").ok_or("no PeerFormat")?;
    let mut corrected = 0;
    for vector in vectors()? {
        let mut expect = format.expectations(&vector)?;
        if !expect.expect_error {
            continue;
        }
        let mut frame = vector.frame.clone();
        let stx = frame.iter().position(|&b| b == 0x02).ok_or("no STX")?;
        let etx = frame.len().checked_sub(2).ok_or("short frame")?;
        let data = frame.get(stx + 1..=etx).ok_or("no data")?;
        let bcc = ami_iec62056_21::checksum::bcc(data);
        *frame.last_mut().ok_or("empty")? = bcc;
        expect.expect_error = false;
        let outcome = check(&expect, &decode(&frame, RECEIVED_AT_MS));
        assert_eq!(outcome, Outcome::Pass, "{}", vector.id);
        corrected += 1;
    }
    assert_eq!(corrected, 2);
    Ok(())
}

/// The facts bite: one changed digit in a value makes the check fail.
#[test]
fn a_changed_value_fails_the_check() -> Result<(), Box<dyn Error>> {
    let format = for_protocol("iec62056-21").ok_or("no PeerFormat")?;
    let vector = vectors()?
        .into_iter()
        .find(|v| v.id == "smartmeter_obis-testSerialResponseD0ModeD-1")
        .ok_or("vector missing")?;
    let expect = format.expectations(&vector)?;
    let text = String::from_utf8(vector.frame.clone())?;
    for (from, to) in [
        ("6.8(0029.055*MWh)", "6.8(0029.056*MWh)"),
        ("6.8(0029.055*MWh)", "6.8(0029.055*kWh)"),
        ("9.22(R)", "9.22(S)"),
        ("0.0(00010213)", "0.0(00010214)"),
    ] {
        let changed = text.replacen(from, to, 1);
        assert_ne!(changed, text);
        let outcome = check(&expect, &decode(changed.as_bytes(), RECEIVED_AT_MS));
        assert!(
            matches!(outcome, Outcome::Fail(_)),
            "{from} -> {to}: {outcome:?}"
        );
    }
    Ok(())
}
