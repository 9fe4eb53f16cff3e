//! Arbitrary bytes and mutated vectors: `decode` never panics, fails only with typed errors
//! carrying a message, and never yields more values than the input has bytes.

mod common;

use std::path::Path;
use std::sync::OnceLock;

use ami_domain::DecodeError;
use ami_domain::crypto::NoKeys;
use common::TestKeys;
use proptest::prelude::*;

fn frames() -> &'static [Vec<u8>] {
    static FRAMES: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    FRAMES.get_or_init(|| {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../tests/vectors");
        let mut out = Vec::new();
        for file in ["mbus/mbus-wired.jsonl", "wmbus/wmbus.jsonl"] {
            let text = std::fs::read_to_string(dir.join(file)).unwrap_or_default();
            for line in text.lines() {
                if let Ok(v) = ami_vectors::vector::parse(line) {
                    out.extend(v.into_iter().map(|v| v.frame));
                }
            }
        }
        out
    })
}

fn assert_sane(input: &[u8], with_key: bool) {
    let got = if with_key {
        ami_mbus::decode(input, 1_700_000_000_000, &mut TestKeys::any(&[0; 16]))
    } else {
        ami_mbus::decode(input, 1_700_000_000_000, &mut NoKeys)
    };
    match got {
        Ok(d) => assert!(d.readings.len() + d.attributes.len() + d.events.len() <= input.len()),
        Err(
            DecodeError::Truncated(m)
            | DecodeError::Checksum(m)
            | DecodeError::Malformed(m)
            | DecodeError::Unsupported(m)
            | DecodeError::Authentication(m)
            | DecodeError::MissingKey(m),
        ) => assert!(!m.is_empty()),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4000))]

    #[test]
    fn random_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..300), key in any::<bool>()) {
        assert_sane(&bytes, key);
    }

    #[test]
    fn random_wired_frames(body in proptest::collection::vec(any::<u8>(), 3..255)) {
        // A well-framed long frame around random user data reaches the records.
        let l = body.len() as u8;
        let cs = body.iter().fold(0u8, |s, b| s.wrapping_add(*b));
        let mut f = vec![0x68, l, l, 0x68];
        f.extend_from_slice(&body);
        f.extend_from_slice(&[cs, 0x16]);
        assert_sane(&f, false);
    }

    #[test]
    fn mutated_vectors(
        pick in any::<prop::sample::Index>(),
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..4), 1..6),
        key in any::<bool>(),
    ) {
        let frames = frames();
        prop_assume!(!frames.is_empty());
        let mut f = frames[pick.index(frames.len())].clone();
        for (at, byte, op) in edits {
            if f.is_empty() {
                break;
            }
            let i = at.index(f.len());
            match op {
                0 => f[i] = byte,
                1 => f.insert(i, byte),
                2 => { f.remove(i); }
                _ => f.truncate(i),
            }
        }
        assert_sane(&f, key);
    }
}

#[test]
fn every_vector_and_every_prefix() {
    for f in frames() {
        for end in 0..=f.len() {
            assert_sane(&f[..end], false);
            assert_sane(&f[..end], true);
        }
    }
}
