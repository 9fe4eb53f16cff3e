//! [`HostCrypto`]: the domain's [`Crypto`] trait over the host's `ami:plugin/crypto` imports,
//! so protocol crates written against the trait run unchanged inside a component.

use ami_domain::crypto::{Crypto, CryptoError, Kdf, KeyRef, KeyRole};

use crate::crypto as wit;

/// The host's cryptography, by key reference. Keys stay in the host.
#[derive(Clone, Copy, Debug, Default)]
pub struct HostCrypto;

fn role(r: KeyRole) -> wit::KeyRole {
    match r {
        KeyRole::DlmsUnicast => wit::KeyRole::DlmsUnicast,
        KeyRole::DlmsBroadcast => wit::KeyRole::DlmsBroadcast,
        KeyRole::DlmsAuthentication => wit::KeyRole::DlmsAuthentication,
        KeyRole::DlmsMaster => wit::KeyRole::DlmsMaster,
        KeyRole::Mbus => wit::KeyRole::Mbus,
        KeyRole::OsgpOmak => wit::KeyRole::OsgpOmak,
    }
}

fn role_from(r: wit::KeyRole) -> KeyRole {
    match r {
        wit::KeyRole::DlmsUnicast => KeyRole::DlmsUnicast,
        wit::KeyRole::DlmsBroadcast => KeyRole::DlmsBroadcast,
        wit::KeyRole::DlmsAuthentication => KeyRole::DlmsAuthentication,
        wit::KeyRole::DlmsMaster => KeyRole::DlmsMaster,
        wit::KeyRole::Mbus => KeyRole::Mbus,
        wit::KeyRole::OsgpOmak => KeyRole::OsgpOmak,
    }
}

fn key(k: KeyRef<'_>) -> wit::KeyRef {
    match k {
        KeyRef::Stored { meter, role: r } => wit::KeyRef::Stored(wit::StoredKey {
            meter: meter.to_owned(),
            role: role(r),
        }),
        KeyRef::Derived(h) => wit::KeyRef::Derived(h),
    }
}

fn error(e: wit::CryptoError) -> CryptoError {
    match e {
        wit::CryptoError::NoKey(k) => CryptoError::NoKey {
            meter: k.meter,
            role: role_from(k.role),
        },
        wit::CryptoError::UnknownHandle(h) => CryptoError::UnknownHandle(h),
        wit::CryptoError::AuthenticationFailed => CryptoError::AuthenticationFailed,
        wit::CryptoError::InvalidInput(s) => CryptoError::InvalidInput(s),
    }
}

impl Crypto for HostCrypto {
    fn aes_gcm_decrypt(
        &mut self,
        k: KeyRef<'_>,
        iv: &[u8],
        aad: &[u8],
        ct: &[u8],
        tag: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        wit::aes_gcm_decrypt(&key(k), iv, aad, ct, tag).map_err(error)
    }

    fn dlms_decrypt(
        &mut self,
        encryption: KeyRef<'_>,
        authentication: Option<KeyRef<'_>>,
        security_control: u8,
        iv: &[u8],
        data: &[u8],
        tag: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        wit::dlms_decrypt(
            &key(encryption),
            authentication.map(key).as_ref(),
            security_control,
            iv,
            data,
            tag,
        )
        .map_err(error)
    }

    fn aes_gmac_verify(
        &mut self,
        k: KeyRef<'_>,
        iv: &[u8],
        aad: &[u8],
        tag: &[u8],
    ) -> Result<(), CryptoError> {
        wit::aes_gmac_verify(&key(k), iv, aad, tag).map_err(error)
    }

    fn aes_cbc_decrypt(
        &mut self,
        k: KeyRef<'_>,
        iv: &[u8],
        data: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        wit::aes_cbc_decrypt(&key(k), iv, data).map_err(error)
    }

    fn aes_ctr_apply(
        &mut self,
        k: KeyRef<'_>,
        iv: &[u8],
        data: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        wit::aes_ctr_apply(&key(k), iv, data).map_err(error)
    }

    fn aes_cmac_verify(
        &mut self,
        k: KeyRef<'_>,
        data: &[u8],
        mac: &[u8],
    ) -> Result<(), CryptoError> {
        wit::aes_cmac_verify(&key(k), data, mac).map_err(error)
    }

    fn derive_key(&mut self, k: KeyRef<'_>, kdf: Kdf, input: &[u8]) -> Result<u32, CryptoError> {
        let kdf = match kdf {
            Kdf::OmsCmac => wit::Kdf::OmsCmac,
            Kdf::AesEcb => wit::Kdf::AesEcb,
        };
        wit::derive_key(&key(k), kdf, input).map_err(error)
    }
}
