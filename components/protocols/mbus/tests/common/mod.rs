//! A native key store for the tests: AES-128 keys by meter, the `Crypto` primitives M-Bus
//! uses (CBC, CTR) with the RustCrypto crates.

#![allow(dead_code)]

use std::collections::HashMap;

use aes::Aes128;
use ami_domain::crypto::{Crypto, CryptoError, Kdf, KeyRef};
use cbc::cipher::{BlockDecryptMut, KeyIvInit, StreamCipher, block_padding::NoPadding};

/// Keys by meter identity; `any` answers for every meter.
#[derive(Default)]
pub struct TestKeys {
    pub keys: HashMap<String, [u8; 16]>,
    pub any: Option<[u8; 16]>,
    /// The meters asked for, in order.
    pub asked: Vec<String>,
    /// Keys derived in this call, by handle.
    pub derived: Vec<[u8; 16]>,
}

/// AES-CMAC of `data` under `key`.
pub fn cmac(key: &[u8; 16], data: &[u8]) -> [u8; 16] {
    use cmac::Mac;
    let mut m = <cmac::Cmac<Aes128> as cmac::digest::KeyInit>::new(&(*key).into());
    m.update(data);
    m.finalize().into_bytes().into()
}

impl TestKeys {
    pub fn any(key: &[u8]) -> Self {
        Self {
            any: key.try_into().ok(),
            ..Self::default()
        }
    }

    fn key(&mut self, key: KeyRef<'_>) -> Result<[u8; 16], CryptoError> {
        match key {
            KeyRef::Stored { meter, role } => {
                self.asked.push(meter.to_owned());
                self.keys
                    .get(meter)
                    .copied()
                    .or(self.any)
                    .ok_or_else(|| CryptoError::NoKey {
                        meter: meter.to_owned(),
                        role,
                    })
            }
            KeyRef::Derived(h) => usize::try_from(h)
                .ok()
                .and_then(|i| self.derived.get(i).copied())
                .ok_or(CryptoError::UnknownHandle(h)),
        }
    }
}

fn unsupported() -> CryptoError {
    CryptoError::InvalidInput("not used by M-Bus tests".into())
}

impl Crypto for TestKeys {
    fn aes_gcm_decrypt(
        &mut self,
        _: KeyRef<'_>,
        _: &[u8],
        _: &[u8],
        _: &[u8],
        _: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        Err(unsupported())
    }
    fn dlms_decrypt(
        &mut self,
        _: KeyRef<'_>,
        _: Option<KeyRef<'_>>,
        _: u8,
        _: &[u8],
        _: &[u8],
        _: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        Err(unsupported())
    }
    fn aes_gmac_verify(
        &mut self,
        _: KeyRef<'_>,
        _: &[u8],
        _: &[u8],
        _: &[u8],
    ) -> Result<(), CryptoError> {
        Err(unsupported())
    }
    fn aes_cbc_decrypt(
        &mut self,
        key: KeyRef<'_>,
        iv: &[u8],
        data: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        let k = self.key(key)?;
        let iv: [u8; 16] = iv
            .try_into()
            .map_err(|_| CryptoError::InvalidInput("iv".into()))?;
        cbc::Decryptor::<Aes128>::new(&k.into(), &iv.into())
            .decrypt_padded_vec_mut::<NoPadding>(data)
            .map_err(|_| CryptoError::InvalidInput("not whole blocks".into()))
    }
    fn aes_ctr_apply(
        &mut self,
        key: KeyRef<'_>,
        iv: &[u8],
        data: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        let k = self.key(key)?;
        let iv: [u8; 16] = iv
            .try_into()
            .map_err(|_| CryptoError::InvalidInput("iv".into()))?;
        let mut out = data.to_vec();
        ctr::Ctr128BE::<Aes128>::new(&k.into(), &iv.into()).apply_keystream(&mut out);
        Ok(out)
    }
    fn aes_cmac_verify(
        &mut self,
        key: KeyRef<'_>,
        data: &[u8],
        mac: &[u8],
    ) -> Result<(), CryptoError> {
        let k = self.key(key)?;
        let full = cmac(&k, data);
        if !(4..=16).contains(&mac.len()) {
            return Err(CryptoError::InvalidInput("MAC length".into()));
        }
        if full.get(..mac.len()) == Some(mac) {
            Ok(())
        } else {
            Err(CryptoError::AuthenticationFailed)
        }
    }
    fn derive_key(&mut self, key: KeyRef<'_>, kdf: Kdf, input: &[u8]) -> Result<u32, CryptoError> {
        let k = self.key(key)?;
        let derived = match kdf {
            Kdf::OmsCmac => cmac(&k, input),
            Kdf::AesEcb => return Err(unsupported()),
        };
        self.derived.push(derived);
        u32::try_from(self.derived.len() - 1).map_err(|_| unsupported())
    }
}
