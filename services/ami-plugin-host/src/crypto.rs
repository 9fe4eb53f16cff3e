//! The host side of `ami:plugin/crypto` and `crypto-ext`: conversions between the WIT types
//! and the domain's, around [`ami_crypto::CryptoCtx`], which does the work against keys the
//! plugin only names.

use ami_domain::crypto::{CryptoError, Kdf, KeyRef, KeyRole};

use crate::bindings::decoder::ami::plugin::crypto as wit;
use crate::bindings::decoder::ami::plugin::crypto_ext as ext;

pub use ami_crypto::CryptoCtx;

/// Maps the WIT key role onto the domain's.
pub fn role(r: wit::KeyRole) -> KeyRole {
    match r {
        wit::KeyRole::DlmsUnicast => KeyRole::DlmsUnicast,
        wit::KeyRole::DlmsBroadcast => KeyRole::DlmsBroadcast,
        wit::KeyRole::DlmsAuthentication => KeyRole::DlmsAuthentication,
        wit::KeyRole::DlmsMaster => KeyRole::DlmsMaster,
        wit::KeyRole::Mbus => KeyRole::Mbus,
        wit::KeyRole::OsgpOmak => KeyRole::OsgpOmak,
    }
}

/// The WIT key reference as the domain's (borrowing the meter name).
pub fn key_ref(k: &wit::KeyRef) -> KeyRef<'_> {
    match k {
        wit::KeyRef::Stored(s) => KeyRef::Stored {
            meter: &s.meter,
            role: role(s.role),
        },
        wit::KeyRef::Derived(h) => KeyRef::Derived(*h),
    }
}

/// The WIT derivation as the domain's.
pub fn kdf(k: wit::Kdf) -> Kdf {
    match k {
        wit::Kdf::OmsCmac => Kdf::OmsCmac,
        wit::Kdf::AesEcb => Kdf::AesEcb,
    }
}

/// The domain's crypto error as WIT's.
pub fn error_to_wit(e: CryptoError) -> wit::CryptoError {
    match e {
        CryptoError::NoKey { meter, role } => match role_to_wit(role) {
            Some(role) => wit::CryptoError::NoKey(wit::StoredKey { meter, role }),
            // 0.1.0's enum cannot name the roles of 0.1.1 (`error_to_ext` can).
            None => {
                wit::CryptoError::InvalidInput(format!("no {} key for meter {meter}", role.name()))
            }
        },
        CryptoError::UnknownHandle(h) => wit::CryptoError::UnknownHandle(h),
        CryptoError::AuthenticationFailed => wit::CryptoError::AuthenticationFailed,
        CryptoError::InvalidInput(s) => wit::CryptoError::InvalidInput(s),
    }
}

fn role_to_wit(r: KeyRole) -> Option<wit::KeyRole> {
    Some(match r {
        KeyRole::DlmsUnicast => wit::KeyRole::DlmsUnicast,
        KeyRole::DlmsBroadcast => wit::KeyRole::DlmsBroadcast,
        KeyRole::DlmsAuthentication => wit::KeyRole::DlmsAuthentication,
        KeyRole::DlmsMaster => wit::KeyRole::DlmsMaster,
        KeyRole::Mbus => wit::KeyRole::Mbus,
        KeyRole::OsgpOmak => wit::KeyRole::OsgpOmak,
        KeyRole::DlmsDedicated | KeyRole::AnsiC1222 => return None,
    })
}

/// Maps a `crypto-ext` key role onto the domain's.
pub fn ext_role(r: ext::KeyRole) -> KeyRole {
    match r {
        ext::KeyRole::DlmsDedicated => KeyRole::DlmsDedicated,
        ext::KeyRole::AnsiC1222 => KeyRole::AnsiC1222,
    }
}

/// The domain's crypto error as `crypto-ext`'s: a missing key of a 0.1.1 role is named as
/// such, everything else is wrapped as `crypto` reports it.
pub fn error_to_ext(e: CryptoError) -> ext::ExtError {
    match e {
        CryptoError::NoKey {
            meter,
            role: role @ (KeyRole::DlmsDedicated | KeyRole::AnsiC1222),
        } => ext::ExtError::NoKey(ext::StoredKey {
            meter,
            role: if role == KeyRole::AnsiC1222 {
                ext::KeyRole::AnsiC1222
            } else {
                ext::KeyRole::DlmsDedicated
            },
        }),
        other => ext::ExtError::Crypto(error_to_wit(other)),
    }
}
