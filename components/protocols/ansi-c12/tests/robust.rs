//! Arbitrary bytes, mutated vectors and mutated table frames: `decode` never panics, fails
//! only with typed errors carrying a message, and yields a bounded number of values.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::Path;
use std::sync::OnceLock;

use ami_domain::DecodeError;
use ami_domain::crypto::NoKeys;
use proptest::prelude::*;

use ami_domain::crypto::PassThrough as Identity;

/// The vectors' frames, and table frames in each carrier (C12.22 push, C12.18 capture,
/// OSGP), as mutation seeds.
fn frames() -> &'static [Vec<u8>] {
    static FRAMES: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    FRAMES.get_or_init(|| {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../../tests/vectors/ansi-c12/ansi-c12.jsonl");
        let mut out: Vec<Vec<u8>> = ami_vectors::load(&path)
            .unwrap_or_default()
            .into_iter()
            .map(|v| v.frame)
            .collect();
        let st21 = vec![0x16, 0, 0, 2, 1, 1, 1, 1, 0, 0];
        let tables = vec![
            (0, common::st0(2, 8, 1)),
            (1, common::st1("ACME", "M1", "SN1")),
            (21, st21),
            (23, vec![3; 1 + 2 * (8 + 5 + 4 + 4 + 4)]),
            (61, vec![0, 0, 0, 0, 0x40, 0x04, 2, 1, 0, 3, 0, 2, 15]),
            (62, vec![0, 0, 0, 0, 1, 0, 2, 1, 0, 1, 0, 1, 0, 10, 0]),
            (
                64,
                vec![
                    23, 11, 14, 10, 0, 0, 0, 1, 0, 2, 0, 0, 0, 3, 0, 4, 0, 0, 0, 5, 0, 6, 0,
                ],
            ),
            (71, vec![3, 1, 0, 0, 1, 0, 0, 2, 0]),
            (
                76,
                vec![
                    0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 23, 11, 14, 9, 0, 0, 1, 0, 1, 0, 0, 0, 1, 0, 9,
                ],
            ),
        ];
        out.push(common::c1222_push(&tables));
        out.push(common::c1218_capture(&tables, 32));
        let services: Vec<Vec<u8>> = tables
            .iter()
            .map(|(t, d)| common::write_full(*t, d))
            .collect();
        let refs: Vec<&[u8]> = services.iter().map(Vec::as_slice).collect();
        let mut osgp = vec![2, 0, 1, 2, 3, 4, 5, 0, 0, 0, 9];
        osgp.extend(ami_ansi_c12::osgp::build_payload(&refs));
        osgp.extend([0; 12]);
        out.push(osgp);
        out
    })
}

fn assert_sane(input: &[u8], identity: bool) {
    let got = if identity {
        ami_ansi_c12::decode(input, 1_700_000_000_000, &mut Identity)
    } else {
        ami_ansi_c12::decode(input, 1_700_000_000_000, &mut NoKeys)
    };
    match got {
        // Every value comes from at least one input byte, except a load profile interval of
        // a one-byte format, which also takes its block's share: 2 values per byte bound it.
        Ok(d) => {
            assert!(d.readings.len() + d.attributes.len() + d.events.len() <= 2 * input.len() + 8)
        }
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

/// Every seed decodes; with `AMI_FUZZ_SEEDS` set (the fuzz project's `seed-corpus.sh`), the
/// seeds are also written there as fuzz inputs (first byte: the key provider).
#[test]
fn seeds_decode() {
    let dir = std::env::var_os("AMI_FUZZ_SEEDS").map(std::path::PathBuf::from);
    for (i, f) in frames().iter().enumerate() {
        let got = ami_ansi_c12::decode(f, 0, &mut Identity);
        assert!(got.is_ok(), "seed {i}: {got:?}");
        if let Some(dir) = &dir {
            for mode in [0u8, 1] {
                let mut input = vec![mode];
                input.extend_from_slice(f);
                std::fs::write(dir.join(format!("table-seed-{i}-{mode}")), input).unwrap();
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4000))]

    #[test]
    fn random_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..300), id in any::<bool>()) {
        assert_sane(&bytes, id);
    }

    #[test]
    fn random_packets(identity in any::<u8>(), control in any::<u8>(), data in proptest::collection::vec(any::<u8>(), 0..200)) {
        // A well-formed packet (right CRC) around random PSEM bytes reaches the services.
        let f = ami_ansi_c12::packet::build(identity, control & 0xE3, 0, &data);
        assert_sane(&f, false);
    }

    #[test]
    fn random_c1222_services(services in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 1..60), 0..6)) {
        let refs: Vec<&[u8]> = services.iter().map(Vec::as_slice).collect();
        assert_sane(&ami_ansi_c12::c1222::build(&[1, 2], 1, &refs), false);
    }

    #[test]
    fn mutated_frames(
        pick in any::<prop::sample::Index>(),
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..4), 1..6),
        id in any::<bool>(),
    ) {
        let frames = frames();
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
        assert_sane(&f, id);
    }

    #[test]
    fn mutated_tables(
        table in prop::sample::select(vec![0u16, 1, 12, 21, 22, 23, 52, 55, 61, 62, 63, 64, 71, 72, 74, 76]),
        data in proptest::collection::vec(any::<u8>(), 0..120),
    ) {
        // Random bytes as one table, next to a consistent configuration.
        let mut tables: Vec<(u16, Vec<u8>)> = vec![
            (0, common::st0(2, 8, 1)),
            (21, vec![0x16, 0, 0, 2, 1, 1, 1, 1, 0, 0]),
            (61, vec![0, 0, 0, 0, 0x40, 0x04, 2, 1, 0, 3, 0, 2, 15]),
            (62, vec![0, 0, 0, 0, 1, 0, 2, 1, 0, 1, 0, 1, 0, 10, 0]),
            (71, vec![3, 1, 0, 0, 1, 0, 0, 2, 0]),
        ];
        tables.retain(|(t, _)| *t != table);
        tables.push((table, data));
        assert_sane(&common::c1222_push(&tables), false);
    }
}

#[test]
fn every_prefix_of_every_seed() {
    for f in frames() {
        for end in 0..=f.len() {
            assert_sane(&f[..end], false);
            assert_sane(&f[..end], true);
        }
    }
}
