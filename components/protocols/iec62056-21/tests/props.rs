//! Robustness: random bytes, protocol-shaped noise and mutations of the real readouts never
//! panic and always fail with one of the decoder's error kinds.

use std::path::PathBuf;
use std::sync::LazyLock;

use ami_iec62056_21::{DecodeError, Reassembler, decode, parse};
use proptest::prelude::*;

const T: i64 = 1_700_000_000_000;

/// The frames of the published vectors (empty if the file cannot be read; the vectors test
/// reports that).
static FRAMES: LazyLock<Vec<Vec<u8>>> = LazyLock::new(|| {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../tests/vectors/iec62056-21/iec62056-21.jsonl");
    ami_vectors::load(&path)
        .map(|vs| vs.into_iter().map(|v| v.frame).collect())
        .unwrap_or_default()
});

/// The error kinds a readout decoder may report (never a key or authentication error).
fn typed(result: &Result<ami_iec62056_21::Decoded, DecodeError>) -> bool {
    matches!(
        result,
        Ok(_)
            | Err(DecodeError::Truncated(_)
                | DecodeError::Checksum(_)
                | DecodeError::Malformed(_)
                | DecodeError::Unsupported(_))
    )
}

/// Decodes, checks `parse` agrees to the byte, and feeds the bytes through a reassembler too.
fn exercise(bytes: &[u8], chunk: usize) -> Result<(), TestCaseError> {
    let decoded = decode(bytes, T);
    prop_assert!(typed(&decoded), "{decoded:?}");
    // `decode` builds the canonical form straight from the bytes: exactly what `parse` and
    // `into_decoded` give, errors included.
    prop_assert_eq!(&decoded, &parse(bytes).map(|r| r.into_decoded(T)));
    if let Ok(d) = &decoded {
        // Values are copied out of the input, never grown.
        let text: usize = d.attributes.iter().map(|(_, v)| v.len()).sum();
        prop_assert!(text <= bytes.len() * 2);
    }
    let mut r = Reassembler::with_limit(4096);
    let mut items = Vec::new();
    for piece in bytes.chunks(chunk.max(1)) {
        items.extend(r.push(piece));
        prop_assert!(r.buffered() <= 4096);
    }
    items.extend(r.finish());
    for readout in items.into_iter().flatten() {
        prop_assert!(readout.len() <= bytes.len() + 2);
        prop_assert!(typed(&decode(&readout, T)));
    }
    Ok(())
}

/// One edit of a readout.
#[derive(Debug, Clone)]
enum Edit {
    Flip(usize, u8),
    Set(usize, u8),
    Insert(usize, u8),
    Delete(usize),
    Cut(usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    const INTERESTING: &[u8] = b"/!()*.:-&\r\n\x02\x03\x04\x06\x15\x00\xff0129AFCP ";
    let byte = prop_oneof![any::<u8>(), proptest::sample::select(INTERESTING)];
    prop_oneof![
        (any::<usize>(), 1u8..).prop_map(|(i, m)| Edit::Flip(i, m)),
        (any::<usize>(), byte.clone()).prop_map(|(i, b)| Edit::Set(i, b)),
        (any::<usize>(), byte).prop_map(|(i, b)| Edit::Insert(i, b)),
        any::<usize>().prop_map(Edit::Delete),
        any::<usize>().prop_map(Edit::Cut),
    ]
}

fn apply(frame: &mut Vec<u8>, edit: &Edit) {
    let len = frame.len().max(1);
    match *edit {
        Edit::Flip(i, m) => {
            if let Some(b) = frame.get_mut(i % len) {
                *b ^= m;
            }
        }
        Edit::Set(i, v) => {
            if let Some(b) = frame.get_mut(i % len) {
                *b = v;
            }
        }
        Edit::Insert(i, v) => frame.insert(i % (frame.len() + 1), v),
        Edit::Delete(i) => {
            if !frame.is_empty() {
                frame.remove(i % len);
            }
        }
        Edit::Cut(i) => frame.truncate(i % len),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn random_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..512), chunk in 1usize..64) {
        exercise(&bytes, chunk)?;
    }

    #[test]
    fn protocol_shaped_noise(
        bytes in proptest::collection::vec(
            proptest::sample::select(b"/!()*.:-&\r\n\x02\x03\x04\x06 0123456789CFkWh".as_slice()),
            0..256,
        ),
        chunk in 1usize..64,
    ) {
        exercise(&bytes, chunk)?;
    }

    #[test]
    fn mutated_vectors(
        which in any::<usize>(),
        edits in proptest::collection::vec(edit(), 1..6),
        chunk in 1usize..512,
    ) {
        let frames = &*FRAMES;
        prop_assume!(!frames.is_empty());
        let mut frame = frames.get(which % frames.len()).cloned().unwrap_or_default();
        for e in &edits {
            apply(&mut frame, e);
        }
        exercise(&frame, chunk)?;
    }

    #[test]
    fn spliced_vectors(a in any::<usize>(), b in any::<usize>(), at in any::<usize>(), chunk in 1usize..512) {
        let frames = &*FRAMES;
        prop_assume!(!frames.is_empty());
        let x = frames.get(a % frames.len()).cloned().unwrap_or_default();
        let y = frames.get(b % frames.len()).cloned().unwrap_or_default();
        let cut = at % (x.len() + 1);
        let spliced = [x.get(..cut).unwrap_or_default(), y.as_slice()].concat();
        exercise(&spliced, chunk)?;
    }
}
