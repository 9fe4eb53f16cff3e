//! A native key store for the tests: DLMS keys by system title, served by ami-crypto's
//! `CryptoCtx`, the same code the plugin host runs for the `dlms` component.

#![allow(dead_code, clippy::new_ret_no_self)]

use ami_crypto::{CryptoCtx, KeyRole, MemoryKeyStore};
use std::sync::Arc;

/// Makes the key store of one meter.
pub struct Keys;

impl Keys {
    /// The keys of meter `meter` (its system title, lower-case hex): `ek` for unicast and
    /// broadcast encryption, `ak` for authentication; a key that is not 16 bytes is left out.
    pub fn new(meter: &str, ek: &[u8], ak: &[u8]) -> CryptoCtx {
        let store = MemoryKeyStore::new();
        if let Ok(k) = <[u8; 16]>::try_from(ek) {
            store.insert(meter, KeyRole::DlmsUnicast, k);
            store.insert(meter, KeyRole::DlmsBroadcast, k);
        }
        if let Ok(k) = <[u8; 16]>::try_from(ak) {
            store.insert(meter, KeyRole::DlmsAuthentication, k);
        }
        CryptoCtx::new(Arc::new(store))
    }
}
