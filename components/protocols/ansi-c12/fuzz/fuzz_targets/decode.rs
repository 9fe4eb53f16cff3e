//! `ami_ansi_c12::decode` on arbitrary bytes: never panics, fails only with typed errors that
//! say what is wrong, and yields a bounded number of values. The first byte chooses the key
//! provider: none, or one whose AES-GCM and EAX' "decryption" is the identity (so mutated
//! OSGP payloads and secured C12.22 EPSEMs reach the PSEM services and the tables).

#![no_main]

use ami_domain::DecodeError;
use ami_domain::crypto::NoKeys;
use libfuzzer_sys::fuzz_target;

use ami_domain::crypto::PassThrough as Identity;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, frame)) = data.split_first() else {
        return;
    };
    let got = if mode % 2 == 0 {
        ami_ansi_c12::decode(frame, 1_700_000_000_000, &mut NoKeys)
    } else {
        ami_ansi_c12::decode(frame, 1_700_000_000_000, &mut Identity)
    };
    match got {
        Ok(d) => {
            assert!(d.readings.len() + d.attributes.len() + d.events.len() <= 2 * frame.len() + 8)
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
});
