//! Native keys for the tests: M-Bus keys by meter, served by ami-crypto's `CryptoCtx` (the
//! same code the plugin host runs for the `mbus` component), with a key store that records
//! which meters were asked for.

#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use aes::Aes128;
use ami_crypto::{CryptoCtx, Key, KeyRole, KeyStore};

/// M-Bus keys by meter identity (`*` answers for every meter); records each lookup.
#[derive(Default)]
pub struct RecordingStore {
    keys: Mutex<HashMap<String, [u8; 16]>>,
    asked: Mutex<Vec<String>>,
}

impl RecordingStore {
    /// Sets the M-Bus key of `meter` (`*` for any).
    pub fn insert(&self, meter: &str, key: [u8; 16]) {
        if let Ok(mut keys) = self.keys.lock() {
            keys.insert(meter.to_owned(), key);
        }
    }

    /// The meters asked for, in order.
    pub fn asked(&self) -> Vec<String> {
        self.asked.lock().map(|a| a.clone()).unwrap_or_default()
    }
}

impl KeyStore for RecordingStore {
    fn key(&self, meter: &str, role: KeyRole) -> Option<Key> {
        if let Ok(mut asked) = self.asked.lock() {
            asked.push(meter.to_owned());
        }
        let keys = self.keys.lock().ok()?;
        (role == KeyRole::Mbus)
            .then(|| keys.get(meter).or_else(|| keys.get("*")).copied())
            .flatten()
            .map(Key::new)
    }
}

/// Makes key providers for the tests.
pub struct TestKeys;

impl TestKeys {
    /// `key` for every meter (no key if it is not 16 bytes).
    pub fn any(key: &[u8]) -> CryptoCtx {
        let (store, ctx) = Self::recorded();
        if let Ok(k) = <[u8; 16]>::try_from(key) {
            store.insert("*", k);
        }
        ctx
    }

    /// An empty store to fill, and the provider over it.
    pub fn recorded() -> (Arc<RecordingStore>, CryptoCtx) {
        let store = Arc::new(RecordingStore::default());
        (store.clone(), CryptoCtx::new(store))
    }
}

/// AES-CMAC of `data` under `key` (to build test frames).
pub fn cmac(key: &[u8; 16], data: &[u8]) -> [u8; 16] {
    use cmac::Mac;
    let mut m = <cmac::Cmac<Aes128> as cmac::digest::KeyInit>::new(&(*key).into());
    m.update(data);
    m.finalize().into_bytes().into()
}
