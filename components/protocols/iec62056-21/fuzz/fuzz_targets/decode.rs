//! Fuzzes `decode` and the `Reassembler` with arbitrary bytes: neither may panic, and every
//! readout the reassembler yields must decode or fail with a typed error.

#![no_main]

use ami_iec62056_21::{DecodeError, Reassembler, decode, parse};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let decoded = decode(data, 0);
    assert_eq!(decoded.is_ok(), parse(data).is_ok());
    assert!(!matches!(
        decoded,
        Err(DecodeError::Authentication(_) | DecodeError::MissingKey(_))
    ));
    // The first byte picks a chunk size, so the reassembler sees reads of every shape.
    let chunk = usize::from(data.first().copied().unwrap_or(1)).max(1);
    let mut reassembler = Reassembler::with_limit(1 << 16);
    let mut readouts = Vec::new();
    for piece in data.chunks(chunk) {
        readouts.extend(reassembler.push(piece));
        assert!(reassembler.buffered() <= 1 << 16);
    }
    readouts.extend(reassembler.finish());
    for readout in readouts.into_iter().flatten() {
        assert!(readout.len() <= data.len() + 2);
        let _ = decode(&readout, 0);
    }
});
