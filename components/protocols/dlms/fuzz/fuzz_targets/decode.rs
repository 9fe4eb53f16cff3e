//! `ami_dlms::decode` on arbitrary bytes: never panics, fails only with typed errors, and
//! never yields more values than the input has bytes. Each input is decoded twice: with no
//! keys, and with a provider whose "decryption" returns the protected bytes unchanged, so
//! that mutations also reach the APDU and A-XDR parsers behind the ciphering.

#![no_main]

use ami_domain::DecodeError;
use ami_domain::crypto::NoKeys;
use libfuzzer_sys::fuzz_target;

// A provider that treats every protected byte string as plaintext.
use ami_domain::crypto::PassThrough as Identity;

fn check(data: &[u8], got: Result<ami_domain::Decoded, DecodeError>) {
    match got {
        Ok(d) => assert!(d.readings.len() + d.attributes.len() + d.events.len() <= data.len()),
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

fuzz_target!(|data: &[u8]| {
    check(data, ami_dlms::decode(data, 1_700_000_000_000, &mut NoKeys));
    check(data, ami_dlms::decode(data, 1_700_000_000_000, &mut Identity));
});
