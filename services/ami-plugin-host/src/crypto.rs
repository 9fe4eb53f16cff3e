//! The host side of `ami:plugin/crypto`: conversions between the WIT types and the domain's,
//! around [`ami_crypto::CryptoCtx`], which does the work against keys the plugin only names.

use ami_domain::crypto::{CryptoError, Kdf, KeyRef, KeyRole};

use crate::bindings::decoder::ami::plugin::crypto as wit;

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
        CryptoError::NoKey { meter, role } => wit::CryptoError::NoKey(wit::StoredKey {
            meter,
            role: role_to_wit(role),
        }),
        CryptoError::UnknownHandle(h) => wit::CryptoError::UnknownHandle(h),
        CryptoError::AuthenticationFailed => wit::CryptoError::AuthenticationFailed,
        CryptoError::InvalidInput(s) => wit::CryptoError::InvalidInput(s),
    }
}

fn role_to_wit(r: KeyRole) -> wit::KeyRole {
    match r {
        KeyRole::DlmsUnicast => wit::KeyRole::DlmsUnicast,
        KeyRole::DlmsBroadcast => wit::KeyRole::DlmsBroadcast,
        KeyRole::DlmsAuthentication => wit::KeyRole::DlmsAuthentication,
        KeyRole::DlmsMaster => wit::KeyRole::DlmsMaster,
        KeyRole::Mbus => wit::KeyRole::Mbus,
        KeyRole::OsgpOmak => wit::KeyRole::OsgpOmak,
    }
}
