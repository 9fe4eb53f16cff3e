//! [`HostCrypto`]: the domain's [`Crypto`] trait over the host's `ami:plugin/crypto` and
//! `crypto-ext` imports, so protocol crates written against the trait run unchanged inside a
//! component. Keys of the 0.1.0 roles go through `crypto`; the dedicated DLMS key and the C12.22
//! key (roles added in 0.1.1) through `crypto-ext`, which offers exactly the operations they
//! serve.

use ami_domain::crypto::{Crypto, CryptoError, Kdf, KeyRef, KeyRole};

use crate::crypto as wit;
use crate::crypto_ext as ext;

/// The host's cryptography, by key reference. Keys stay in the host.
#[derive(Clone, Copy, Debug, Default)]
pub struct HostCrypto;

fn role(r: KeyRole) -> Result<wit::KeyRole, CryptoError> {
    Ok(match r {
        KeyRole::DlmsUnicast => wit::KeyRole::DlmsUnicast,
        KeyRole::DlmsBroadcast => wit::KeyRole::DlmsBroadcast,
        KeyRole::DlmsAuthentication => wit::KeyRole::DlmsAuthentication,
        KeyRole::DlmsMaster => wit::KeyRole::DlmsMaster,
        KeyRole::Mbus => wit::KeyRole::Mbus,
        KeyRole::OsgpOmak => wit::KeyRole::OsgpOmak,
        KeyRole::DlmsDedicated | KeyRole::AnsiC1222 => {
            return Err(CryptoError::InvalidInput(format!(
                "the {r:?} key serves only DLMS decryption (dedicated) or EAX' (C12.22)"
            )));
        }
    })
}

fn ext_role(r: ext::KeyRole) -> KeyRole {
    match r {
        ext::KeyRole::DlmsDedicated => KeyRole::DlmsDedicated,
        ext::KeyRole::AnsiC1222 => KeyRole::AnsiC1222,
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

fn key(k: KeyRef<'_>) -> Result<wit::KeyRef, CryptoError> {
    Ok(match k {
        KeyRef::Stored { meter, role: r } => wit::KeyRef::Stored(wit::StoredKey {
            meter: meter.to_owned(),
            role: role(r)?,
        }),
        KeyRef::Derived(h) => wit::KeyRef::Derived(h),
    })
}

/// A stored key of a `crypto-ext` role, if `k` is one.
fn ext_key(k: KeyRef<'_>) -> Option<ext::StoredKey> {
    match k {
        KeyRef::Stored {
            meter,
            role: r @ (KeyRole::DlmsDedicated | KeyRole::AnsiC1222),
        } => Some(ext::StoredKey {
            meter: meter.to_owned(),
            role: if r == KeyRole::AnsiC1222 {
                ext::KeyRole::AnsiC1222
            } else {
                ext::KeyRole::DlmsDedicated
            },
        }),
        _ => None,
    }
}

fn ext_error(e: ext::ExtError) -> CryptoError {
    match e {
        ext::ExtError::NoKey(k) => CryptoError::NoKey {
            meter: k.meter,
            role: ext_role(k.role),
        },
        ext::ExtError::Crypto(e) => error(e),
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
        wit::aes_gcm_decrypt(&key(k)?, iv, aad, ct, tag).map_err(error)
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
        let authentication = authentication.map(key).transpose()?;
        let dedicated = ext_key(encryption).filter(|k| k.role == ext::KeyRole::DlmsDedicated);
        if let Some(dedicated) = dedicated {
            return ext::dlms_decrypt_dedicated(
                &dedicated,
                authentication.as_ref(),
                security_control,
                iv,
                data,
                tag,
            )
            .map_err(ext_error);
        }
        wit::dlms_decrypt(
            &key(encryption)?,
            authentication.as_ref(),
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
        wit::aes_gmac_verify(&key(k)?, iv, aad, tag).map_err(error)
    }

    fn aes_cbc_decrypt(
        &mut self,
        k: KeyRef<'_>,
        iv: &[u8],
        data: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        wit::aes_cbc_decrypt(&key(k)?, iv, data).map_err(error)
    }

    fn aes_ctr_apply(
        &mut self,
        k: KeyRef<'_>,
        iv: &[u8],
        data: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        wit::aes_ctr_apply(&key(k)?, iv, data).map_err(error)
    }

    fn aes_cmac_verify(
        &mut self,
        k: KeyRef<'_>,
        data: &[u8],
        mac: &[u8],
    ) -> Result<(), CryptoError> {
        wit::aes_cmac_verify(&key(k)?, data, mac).map_err(error)
    }

    fn derive_key(&mut self, k: KeyRef<'_>, kdf: Kdf, input: &[u8]) -> Result<u32, CryptoError> {
        let kdf = match kdf {
            Kdf::OmsCmac => wit::Kdf::OmsCmac,
            Kdf::AesEcb => wit::Kdf::AesEcb,
        };
        wit::derive_key(&key(k)?, kdf, input).map_err(error)
    }

    fn eax_prime_decrypt(
        &mut self,
        k: KeyRef<'_>,
        cleartext: &[u8],
        ciphertext: &[u8],
        tag: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        match ext_key(k) {
            Some(key) if key.role == ext::KeyRole::AnsiC1222 => {
                ext::eax_prime_decrypt(&key, cleartext, ciphertext, tag).map_err(ext_error)
            }
            _ => Err(CryptoError::InvalidInput(
                "EAX' takes a stored ansi-c1222 key".into(),
            )),
        }
    }
}
