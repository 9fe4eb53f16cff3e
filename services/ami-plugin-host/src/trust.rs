//! Which vendors' signatures the operator trusts.

use ed25519_dalek::{Signature as EdSignature, Verifier, VerifyingKey};
use std::path::Path;

use crate::error::LoadError;
use crate::manifest::Manifest;

/// The ed25519 public keys whose signatures the host accepts.
#[derive(Clone, Debug, Default)]
pub struct TrustStore {
    keys: Vec<VerifyingKey>,
}

impl TrustStore {
    /// An empty store: nothing verifies.
    pub fn new() -> Self {
        Self::default()
    }

    /// Trusts a public key.
    pub fn add(&mut self, key: VerifyingKey) {
        if !self.keys.contains(&key) {
            self.keys.push(key);
        }
    }

    /// Trusts a public key given as 64 hex digits.
    pub fn add_hex(&mut self, hex_key: &str) -> Result<(), LoadError> {
        let key = parse_public_key(hex_key.trim())?;
        self.add(key);
        Ok(())
    }

    /// Reads every `*.pub` file of a directory (one hex public key each).
    pub fn load_dir(dir: &Path) -> Result<Self, LoadError> {
        let mut store = Self::new();
        let entries = std::fs::read_dir(dir).map_err(|e| LoadError::Io {
            path: dir.display().to_string(),
            reason: e.to_string(),
        })?;
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().is_some_and(|e| e == "pub") {
                let text = std::fs::read_to_string(&path).map_err(|e| LoadError::Io {
                    path: path.display().to_string(),
                    reason: e.to_string(),
                })?;
                store.add_hex(&text)?;
            }
        }
        Ok(store)
    }

    /// How many keys are trusted.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether no key is trusted.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Verifies a manifest's signature: present, by a trusted key, over the signed bytes.
    pub fn verify(&self, manifest: &Manifest) -> Result<(), LoadError> {
        let sig = manifest
            .signature
            .as_ref()
            .ok_or_else(|| LoadError::Unsigned(manifest.name.clone()))?;
        let key = parse_public_key(&sig.public_key)?;
        if !self.keys.contains(&key) {
            return Err(LoadError::UntrustedSigner {
                plugin: manifest.name.clone(),
                key: sig.public_key.clone(),
            });
        }
        let bytes: [u8; 64] = hex::decode(&sig.value)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| LoadError::BadSignature {
                plugin: manifest.name.clone(),
                reason: "signature is not 128 hex digits".into(),
            })?;
        key.verify(&manifest.signed_bytes(), &EdSignature::from_bytes(&bytes))
            .map_err(|_| LoadError::BadSignature {
                plugin: manifest.name.clone(),
                reason: "signature does not match the manifest".into(),
            })
    }
}

/// Parses a hex ed25519 public key.
pub fn parse_public_key(hex_key: &str) -> Result<VerifyingKey, LoadError> {
    let bytes: [u8; 32] = hex::decode(hex_key)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| LoadError::BadKey(format!("{hex_key:?} is not 64 hex digits")))?;
    VerifyingKey::from_bytes(&bytes)
        .map_err(|e| LoadError::BadKey(format!("{hex_key:?} is not an ed25519 public key: {e}")))
}
