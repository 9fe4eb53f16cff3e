//! `ami_dsmr::decode` on arbitrary bytes: never panics, fails only with the DSMR error kinds,
//! and never yields more values than the input has bytes.

#![no_main]

use ami_domain::DecodeError;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match ami_dsmr::decode(data, 1_700_000_000_000) {
        Ok(d) => assert!(d.readings.len() + d.attributes.len() + d.events.len() <= data.len()),
        Err(
            DecodeError::Truncated(m)
            | DecodeError::Checksum(m)
            | DecodeError::Malformed(m)
            | DecodeError::Unsupported(m),
        ) => assert!(!m.is_empty()),
        Err(other) => panic!("unexpected error kind: {other:?}"),
    }
});
