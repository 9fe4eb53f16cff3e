//! `ami_mbus::decode` on arbitrary bytes: never panics, fails only with typed errors that
//! say what is wrong, and never yields more values than the input has bytes. The first byte
//! chooses the key provider: none, or one that has a (zero) key for every meter, so the
//! decryption paths (mode 5, ELL AES-CTR) and the wrong-key paths run too.

#![no_main]

use ami_domain::DecodeError;
use ami_domain::crypto::{Crypto, CryptoError, Kdf, KeyRef, NoKeys};
use libfuzzer_sys::fuzz_target;

/// A provider whose "decryption" is the identity (so plaintext mutations reach the records)
/// or a fixed scramble, by the flag.
struct Fake(bool);

impl Fake {
    fn out(&self, data: &[u8]) -> Result<Vec<u8>, CryptoError> {
        Ok(if self.0 {
            data.to_vec()
        } else {
            data.iter().map(|b| b ^ 0x5A).collect()
        })
    }
}

impl Crypto for Fake {
    fn aes_gcm_decrypt(&mut self, _: KeyRef<'_>, _: &[u8], _: &[u8], c: &[u8], _: &[u8]) -> Result<Vec<u8>, CryptoError> {
        self.out(c)
    }
    fn dlms_decrypt(&mut self, _: KeyRef<'_>, _: Option<KeyRef<'_>>, _: u8, _: &[u8], d: &[u8], _: &[u8]) -> Result<Vec<u8>, CryptoError> {
        self.out(d)
    }
    fn aes_gmac_verify(&mut self, _: KeyRef<'_>, _: &[u8], _: &[u8], _: &[u8]) -> Result<(), CryptoError> {
        Ok(())
    }
    fn aes_cbc_decrypt(&mut self, _: KeyRef<'_>, _: &[u8], d: &[u8]) -> Result<Vec<u8>, CryptoError> {
        self.out(d)
    }
    fn aes_ctr_apply(&mut self, _: KeyRef<'_>, _: &[u8], d: &[u8]) -> Result<Vec<u8>, CryptoError> {
        self.out(d)
    }
    fn aes_cmac_verify(&mut self, _: KeyRef<'_>, _: &[u8], _: &[u8]) -> Result<(), CryptoError> {
        Ok(())
    }
    fn derive_key(&mut self, _: KeyRef<'_>, _: Kdf, _: &[u8]) -> Result<u32, CryptoError> {
        Ok(1)
    }
    fn eax_prime_decrypt(&mut self, _: KeyRef<'_>, _: &[u8], c: &[u8], _: &[u8]) -> Result<Vec<u8>, CryptoError> {
        self.out(c)
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, frame)) = data.split_first() else {
        return;
    };
    let got = match mode % 3 {
        0 => ami_mbus::decode(frame, 1_700_000_000_000, &mut NoKeys),
        1 => ami_mbus::decode(frame, 1_700_000_000_000, &mut Fake(true)),
        _ => ami_mbus::decode(frame, 1_700_000_000_000, &mut Fake(false)),
    };
    match got {
        Ok(d) => assert!(d.readings.len() + d.attributes.len() + d.events.len() <= frame.len()),
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
