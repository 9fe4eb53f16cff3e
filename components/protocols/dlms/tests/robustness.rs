//! Random bytes and mutations of every vector: the decoder never panics, fails only with
//! typed errors, and yields no more values than the frame has bytes.

mod support;

use std::path::Path;

use ami_domain::DecodeError;
use ami_domain::crypto::NoKeys;
use proptest::prelude::*;

fn frames() -> Vec<Vec<u8>> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../tests/vectors/dlms/dlms.jsonl");
    ami_vectors::load(&path)
        .map(|vs| vs.into_iter().map(|v| v.frame).collect())
        .unwrap_or_default()
}

fn sane(frame: &[u8], got: &Result<ami_domain::Decoded, DecodeError>) -> Result<(), TestCaseError> {
    match got {
        Ok(d) => {
            prop_assert!(d.readings.len() + d.attributes.len() + d.events.len() <= frame.len())
        }
        Err(
            DecodeError::Truncated(m)
            | DecodeError::Checksum(m)
            | DecodeError::Malformed(m)
            | DecodeError::Unsupported(m)
            | DecodeError::Authentication(m)
            | DecodeError::MissingKey(m),
        ) => prop_assert!(!m.is_empty()),
    }
    Ok(())
}

fn decode_both(frame: &[u8]) -> Result<(), TestCaseError> {
    sane(frame, &ami_dlms::decode(frame, 0, &mut NoKeys))?;
    let mut keys = support::Keys::new("2f19229199164103", b"MYDUMMYGLOBALKEY", b"MYDUMMYGLOBALKEY");
    sane(frame, &ami_dlms::decode(frame, 0, &mut keys))?;
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn random_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        decode_both(&bytes)?;
    }

    #[test]
    fn random_after_each_layer_header(
        prefix in prop::sample::select(vec![
            vec![0xE6, 0xE7, 0x00],
            vec![0xE6, 0xE7, 0x00, 0x0F, 0, 0, 0, 0, 0],
            vec![0x00, 0x01, 0x00, 0x01, 0x00, 0x01, 0x00, 0x40],
            vec![0xDB, 0x08, 0x2F, 0x19, 0x22, 0x91, 0x99, 0x16, 0x41, 0x03],
            vec![0xC4, 0x01, 0xC1, 0x00],
            vec![0x0F, 0, 0, 0, 0, 0, 0x13],
        ]),
        tail in proptest::collection::vec(any::<u8>(), 0..300),
    ) {
        let mut frame = prefix;
        frame.extend(tail);
        decode_both(&frame)?;
    }

    #[test]
    fn mutated_vectors(
        which in any::<prop::sample::Index>(),
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..6),
    ) {
        let all = frames();
        prop_assume!(!all.is_empty());
        let mut frame = all[which.index(all.len())].clone();
        for (at, byte, op) in edits {
            if frame.is_empty() {
                break;
            }
            let i = at.index(frame.len());
            match op {
                0 => frame[i] = byte,
                1 => { frame.remove(i); }
                _ => frame.insert(i, byte),
            }
        }
        decode_both(&frame)?;
    }

    #[test]
    fn truncated_vectors(which in any::<prop::sample::Index>(), cut in any::<prop::sample::Index>()) {
        let all = frames();
        prop_assume!(!all.is_empty());
        let frame = &all[which.index(all.len())];
        let end = cut.index(frame.len().max(1));
        decode_both(&frame[..end])?;
    }
}
