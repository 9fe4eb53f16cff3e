//! Keys held by the host on behalf of decoders.
//!
//! A decoder names a key by meter and role; the host resolves it here. The HES provides a
//! persistent, encrypted-at-rest store behind the same trait; [`MemoryKeyStore`] serves tests,
//! the CLI and the single-machine default.

use std::collections::HashMap;
use std::sync::RwLock;
use zeroize::Zeroizing;

/// An AES-128 key, wiped from memory when dropped.
pub type Key = Zeroizing<[u8; 16]>;

pub use ami_domain::crypto::KeyRole;

/// Where the host looks keys up.
pub trait KeyStore: Send + Sync {
    /// The key of `meter` for `role`, if there is one.
    fn key(&self, meter: &str, role: KeyRole) -> Option<Key>;
}

/// An in-memory key store. A key set for meter `*` answers for any meter without its own.
#[derive(Default)]
pub struct MemoryKeyStore {
    keys: RwLock<HashMap<(String, KeyRole), Key>>,
}

impl MemoryKeyStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Forgets every key.
    pub fn clear(&self) {
        if let Ok(mut keys) = self.keys.write() {
            keys.clear();
        }
    }

    /// Sets the keys a one-off run is given (the CLI's `--key`, a vector's `key_hex`) for any
    /// meter: `encryption` serves every encryption role (DLMS unicast, broadcast and dedicated,
    /// M-Bus, OSGP, ANSI C12.22), `authentication` the DLMS authentication key.
    pub fn set_any_meter(&self, encryption: Option<[u8; 16]>, authentication: Option<[u8; 16]>) {
        if let Some(k) = encryption {
            for role in [
                KeyRole::DlmsUnicast,
                KeyRole::DlmsBroadcast,
                KeyRole::DlmsDedicated,
                KeyRole::Mbus,
                KeyRole::OsgpOmak,
                KeyRole::AnsiC1222,
            ] {
                self.insert("*", role, k);
            }
        }
        if let Some(k) = authentication {
            self.insert("*", KeyRole::DlmsAuthentication, k);
        }
    }

    /// Sets the key of `meter` for `role` (`*` for any meter).
    pub fn insert(&self, meter: &str, role: KeyRole, key: [u8; 16]) {
        if let Ok(mut keys) = self.keys.write() {
            keys.insert((meter.to_owned(), role), Zeroizing::new(key));
        }
    }
}

impl KeyStore for MemoryKeyStore {
    fn key(&self, meter: &str, role: KeyRole) -> Option<Key> {
        let keys = self.keys.read().ok()?;
        keys.get(&(meter.to_owned(), role))
            .or_else(|| keys.get(&("*".to_owned(), role)))
            .cloned()
    }
}

impl std::fmt::Debug for MemoryKeyStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let count = self.keys.read().map(|k| k.len()).unwrap_or(0);
        write!(f, "MemoryKeyStore({count} keys)")
    }
}
