//! A native key store for the tests: DLMS keys by system title, implementing the domain's
//! `Crypto` (AES-GCM, AES-CTR, DLMS suite 0) with the `aes`/`aes-gcm` crates.

#![allow(dead_code)]

use aes::Aes128;
use aes::cipher::{BlockEncrypt, KeyInit, generic_array::GenericArray};
use aes_gcm::aead::AeadInPlace;
use aes_gcm::aead::consts::{U12, U16};
use aes_gcm::{AesGcm, Nonce, Tag};
use ami_domain::crypto::{Crypto, CryptoError, Kdf, KeyRef, KeyRole};

/// Keys of one meter.
#[derive(Clone, Default)]
pub struct Keys {
    /// System title, lower-case hex.
    pub meter: String,
    /// Global unicast encryption key.
    pub ek: Option<[u8; 16]>,
    /// Authentication key.
    pub ak: Option<[u8; 16]>,
}

impl Keys {
    pub fn new(meter: &str, ek: &[u8], ak: &[u8]) -> Self {
        Self {
            meter: meter.to_owned(),
            ek: ek.try_into().ok(),
            ak: ak.try_into().ok(),
        }
    }

    fn key(&self, key: KeyRef<'_>) -> Result<[u8; 16], CryptoError> {
        let KeyRef::Stored { meter, role } = key else {
            return Err(CryptoError::UnknownHandle(0));
        };
        let k = match role {
            _ if meter != self.meter => None,
            KeyRole::DlmsUnicast | KeyRole::DlmsBroadcast => self.ek,
            KeyRole::DlmsAuthentication => self.ak,
            _ => None,
        };
        k.ok_or(CryptoError::NoKey {
            meter: meter.to_owned(),
            role,
        })
    }
}

fn gcm(k: &[u8; 16], iv: &[u8], aad: &[u8], ct: &[u8], tag: &[u8]) -> Result<Vec<u8>, CryptoError> {
    if iv.len() != 12 {
        return Err(CryptoError::InvalidInput("iv".into()));
    }
    let mut buf = ct.to_vec();
    let nonce = Nonce::from_slice(iv);
    let ok = match tag.len() {
        12 => AesGcm::<Aes128, U12, U12>::new(k.into()).decrypt_in_place_detached(
            nonce,
            aad,
            &mut buf,
            Tag::<U12>::from_slice(tag),
        ),
        16 => AesGcm::<Aes128, U12, U16>::new(k.into()).decrypt_in_place_detached(
            nonce,
            aad,
            &mut buf,
            Tag::<U16>::from_slice(tag),
        ),
        _ => return Err(CryptoError::InvalidInput("tag".into())),
    };
    ok.map_err(|_| CryptoError::AuthenticationFailed)?;
    Ok(buf)
}

impl Crypto for Keys {
    fn dlms_decrypt(
        &mut self,
        encryption: KeyRef<'_>,
        authentication: Option<KeyRef<'_>>,
        security_control: u8,
        iv: &[u8],
        data: &[u8],
        tag: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        let ek = self.key(encryption)?;
        let mut aad = vec![security_control];
        if let Some(ak) = authentication {
            aad.extend_from_slice(&self.key(ak)?);
        }
        match (security_control & 0x10 != 0, security_control & 0x20 != 0) {
            (true, true) => gcm(&ek, iv, &aad, data, tag),
            (true, false) => {
                aad.extend_from_slice(data);
                gcm(&ek, iv, &aad, &[], tag).map(|_| data.to_vec())
            }
            (false, true) => {
                let mut ctr = [0u8; 16];
                ctr.get_mut(..12)
                    .ok_or(CryptoError::AuthenticationFailed)?
                    .copy_from_slice(iv);
                ctr[15] = 2;
                self.aes_ctr_apply(encryption, &ctr, data)
            }
            (false, false) => Ok(data.to_vec()),
        }
    }
    fn aes_gcm_decrypt(
        &mut self,
        key: KeyRef<'_>,
        iv: &[u8],
        aad: &[u8],
        ciphertext: &[u8],
        tag: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        gcm(&self.key(key)?, iv, aad, ciphertext, tag)
    }
    fn aes_gmac_verify(
        &mut self,
        key: KeyRef<'_>,
        iv: &[u8],
        aad: &[u8],
        tag: &[u8],
    ) -> Result<(), CryptoError> {
        gcm(&self.key(key)?, iv, aad, &[], tag).map(|_| ())
    }
    fn aes_cbc_decrypt(
        &mut self,
        key: KeyRef<'_>,
        _: &[u8],
        _: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        self.key(key)?;
        Err(CryptoError::InvalidInput(
            "cbc not in the test store".into(),
        ))
    }
    fn aes_ctr_apply(
        &mut self,
        key: KeyRef<'_>,
        iv: &[u8],
        data: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        let k = self.key(key)?;
        let cipher = Aes128::new(&k.into());
        let mut counter: [u8; 16] = iv
            .try_into()
            .map_err(|_| CryptoError::InvalidInput("iv".into()))?;
        let mut out = Vec::with_capacity(data.len());
        for chunk in data.chunks(16) {
            let mut block = GenericArray::from(counter);
            cipher.encrypt_block(&mut block);
            out.extend(chunk.iter().zip(block.iter()).map(|(d, k)| d ^ k));
            let c = u32::from_be_bytes([counter[12], counter[13], counter[14], counter[15]])
                .wrapping_add(1);
            counter[12..].copy_from_slice(&c.to_be_bytes());
        }
        Ok(out)
    }
    fn aes_cmac_verify(&mut self, key: KeyRef<'_>, _: &[u8], _: &[u8]) -> Result<(), CryptoError> {
        self.key(key)?;
        Err(CryptoError::InvalidInput(
            "cmac not in the test store".into(),
        ))
    }
    fn derive_key(&mut self, key: KeyRef<'_>, _: Kdf, _: &[u8]) -> Result<u32, CryptoError> {
        self.key(key)?;
        Err(CryptoError::InvalidInput(
            "kdf not in the test store".into(),
        ))
    }
}
