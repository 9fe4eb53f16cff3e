//! `ami_ansi_c12::decode` on arbitrary bytes: never panics, fails only with typed errors that
//! say what is wrong, and yields a bounded number of values. The first byte chooses the key
//! provider: none, or one whose AES-GCM "decryption" is the identity (so mutated OSGP
//! payloads reach the PSEM services and the tables).

#![no_main]

use ami_domain::DecodeError;
use ami_domain::crypto::{Crypto, CryptoError, Kdf, KeyRef, NoKeys};
use libfuzzer_sys::fuzz_target;

struct Identity;

impl Crypto for Identity {
    fn aes_gcm_decrypt(
        &mut self,
        _: KeyRef<'_>,
        _: &[u8],
        _: &[u8],
        c: &[u8],
        _: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        Ok(c.to_vec())
    }
    fn dlms_decrypt(
        &mut self,
        _: KeyRef<'_>,
        _: Option<KeyRef<'_>>,
        _: u8,
        _: &[u8],
        d: &[u8],
        _: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        Ok(d.to_vec())
    }
    fn aes_gmac_verify(
        &mut self,
        _: KeyRef<'_>,
        _: &[u8],
        _: &[u8],
        _: &[u8],
    ) -> Result<(), CryptoError> {
        Ok(())
    }
    fn aes_cbc_decrypt(
        &mut self,
        _: KeyRef<'_>,
        _: &[u8],
        d: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        Ok(d.to_vec())
    }
    fn aes_ctr_apply(&mut self, _: KeyRef<'_>, _: &[u8], d: &[u8]) -> Result<Vec<u8>, CryptoError> {
        Ok(d.to_vec())
    }
    fn aes_cmac_verify(&mut self, _: KeyRef<'_>, _: &[u8], _: &[u8]) -> Result<(), CryptoError> {
        Ok(())
    }
    fn derive_key(&mut self, _: KeyRef<'_>, _: Kdf, _: &[u8]) -> Result<u32, CryptoError> {
        Ok(1)
    }
}

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
