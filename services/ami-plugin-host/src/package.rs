//! Plugin packages on disk: a directory with `manifest.toml` and the component it names.
//!
//! Loading a package verifies, in order: the manifest parses and is complete, the vendor's
//! signature verifies against the operator's trust store, and the component's SHA-256 matches
//! the signed manifest. Only then are the component's bytes handed to the engine.

use ed25519_dalek::{Signer, SigningKey};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

use crate::error::LoadError;
use crate::manifest::{Manifest, Signature};
use crate::trust::TrustStore;

/// The manifest's file name inside a package.
pub const MANIFEST_FILE: &str = "manifest.toml";

/// A package read from disk and verified.
#[derive(Clone, Debug)]
pub struct Package {
    /// The manifest.
    pub manifest: Manifest,
    /// The component's bytes.
    pub component: Vec<u8>,
    /// Where it was read from.
    pub path: PathBuf,
}

fn io(path: &Path, e: impl std::fmt::Display) -> LoadError {
    LoadError::Io {
        path: path.display().to_string(),
        reason: e.to_string(),
    }
}

/// The largest manifest file read.
pub const MAX_MANIFEST_BYTES: u64 = 64 << 10;
/// The largest component file read.
pub const MAX_COMPONENT_BYTES: u64 = 64 << 20;

/// Reads a regular file of at most `limit` bytes (never a device or an endless stream).
fn read_bounded(path: &Path, limit: u64) -> Result<Vec<u8>, LoadError> {
    let meta = std::fs::metadata(path).map_err(|e| io(path, e))?;
    if !meta.is_file() {
        return Err(io(path, "not a regular file"));
    }
    if meta.len() > limit {
        return Err(io(
            path,
            format!("{} bytes exceeds the limit of {limit}", meta.len()),
        ));
    }
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(
        &mut std::io::Read::take(
            std::fs::File::open(path).map_err(|e| io(path, e))?,
            limit + 1,
        ),
        &mut bytes,
    )
    .map_err(|e| io(path, e))?;
    if bytes.len() as u64 > limit {
        return Err(io(path, format!("grew past the limit of {limit} bytes")));
    }
    Ok(bytes)
}

/// Reads and validates a manifest file, without checking its signature.
pub fn read_manifest(dir: &Path) -> Result<Manifest, LoadError> {
    let path = dir.join(MANIFEST_FILE);
    let text =
        String::from_utf8(read_bounded(&path, MAX_MANIFEST_BYTES)?).map_err(|e| io(&path, e))?;
    let manifest: Manifest = toml::from_str(&text).map_err(|e| LoadError::Manifest {
        path: path.display().to_string(),
        reason: e.to_string(),
    })?;
    manifest.validate().map_err(|reason| LoadError::Manifest {
        path: path.display().to_string(),
        reason,
    })?;
    Ok(manifest)
}

/// Writes a secret (a signing key) to a new file readable by its owner only; never replaces
/// an existing file.
pub fn write_secret(path: &Path, text: &str) -> Result<(), LoadError> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).map_err(|e| io(path, e))?;
    file.write_all(text.as_bytes()).map_err(|e| io(path, e))
}

/// Hex SHA-256 of some bytes.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

impl Package {
    /// Reads a package directory and verifies it against `trust`.
    pub fn open(dir: &Path, trust: &TrustStore) -> Result<Self, LoadError> {
        let manifest = read_manifest(dir)?;
        trust.verify(&manifest)?;
        let path = dir.join(&manifest.component);
        let component = read_bounded(&path, MAX_COMPONENT_BYTES)?;
        let actual = sha256_hex(&component);
        if actual != manifest.sha256 {
            return Err(LoadError::DigestMismatch {
                plugin: manifest.name.clone(),
                expected: manifest.sha256.clone(),
                actual,
            });
        }
        Ok(Self {
            manifest,
            component,
            path: dir.to_path_buf(),
        })
    }

    /// Writes a package: the component under its manifest name and the manifest, sha256 filled
    /// in. The manifest is left unsigned; see [`sign`].
    pub fn write(dir: &Path, manifest: &Manifest, component: &[u8]) -> Result<Manifest, LoadError> {
        std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
        let mut manifest = manifest.clone();
        manifest.sha256 = sha256_hex(component);
        manifest.signature = None;
        let path = dir.join(&manifest.component);
        std::fs::write(&path, component).map_err(|e| io(&path, e))?;
        write_manifest(dir, &manifest)?;
        Ok(manifest)
    }
}

/// Writes `manifest.toml` into a package directory.
pub fn write_manifest(dir: &Path, manifest: &Manifest) -> Result<(), LoadError> {
    let text = toml::to_string(manifest).map_err(|e| LoadError::Manifest {
        path: dir.display().to_string(),
        reason: e.to_string(),
    })?;
    let path = dir.join(MANIFEST_FILE);
    std::fs::write(&path, text).map_err(|e| io(&path, e))
}

/// Signs a package in place: checks that the component is the one the manifest was built
/// for (its sha256), then writes the signature into the manifest.
pub fn sign(dir: &Path, key: &SigningKey) -> Result<Manifest, LoadError> {
    let mut manifest = read_manifest(dir)?;
    let path = dir.join(&manifest.component);
    let component = read_bounded(&path, MAX_COMPONENT_BYTES)?;
    let actual = sha256_hex(&component);
    if actual != manifest.sha256 {
        return Err(LoadError::DigestMismatch {
            plugin: manifest.name.clone(),
            expected: manifest.sha256.clone(),
            actual,
        });
    }
    manifest.signature = None;
    let sig = key.sign(&manifest.signed_bytes());
    manifest.signature = Some(Signature {
        public_key: hex::encode(key.verifying_key().to_bytes()),
        value: hex::encode(sig.to_bytes()),
    });
    write_manifest(dir, &manifest)?;
    Ok(manifest)
}

/// Reads a signing key file (64 hex digits of the ed25519 secret key).
pub fn read_signing_key(path: &Path) -> Result<SigningKey, LoadError> {
    let text = String::from_utf8(read_bounded(path, 1024)?).map_err(|e| io(path, e))?;
    let bytes: [u8; 32] = hex::decode(text.trim())
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| {
            LoadError::BadKey(format!("{} does not hold 64 hex digits", path.display()))
        })?;
    Ok(SigningKey::from_bytes(&bytes))
}
