//! The key store: per-meter keys by role, encrypted at rest, and the host-side provider that
//! lets decoders decrypt with them without any plugin (or API client) seeing a key byte.
//!
//! # Envelope encryption
//!
//! Each key version gets its own random 256-bit data key (DEK). The meter key is encrypted
//! under the DEK with AES-256-GCM, and the DEK is wrapped under the master key by a
//! [`KeyWrapper`]; both carry the record's identity (meter, role, version) as associated
//! data, so a ciphertext moved to another row does not open. The database holds only the
//! wrapped DEK and the ciphertext (`nonce ‖ ciphertext ‖ tag`), plus the master key's id (a
//! fingerprint, not the key).
//!
//! The master key comes from [`MasterKeySource`]: `AMI_HES_MASTER_KEY` (32 bytes as 64 hex
//! digits or base64) or `AMI_HES_MASTER_KEY_FILE` (a file holding the same, e.g. a mounted
//! Kubernetes secret). [`LocalMasterKey`] is the software implementation; a KMS or HSM
//! replaces it by implementing [`KeyWrapper`]. A record that does not open under the configured
//! master key fails with [`HesError::KeyUnwrap`], naming both key ids.
//!
//! # Rotation
//!
//! [`KeyVault::rotate`] stores a new version as active; the version it replaces becomes
//! *previous* and stays usable by the host for a grace period (default
//! [`DEFAULT_GRACE`], per call overridable), for frames still protected with the old key while
//! the meter is being re-keyed; then it is *retired*: its ciphertext and wrapped DEK are erased
//! and only its metadata remains. [`KeyProvider`] serves the active version to decoders.
//!
//! Key bytes are never logged (their types redact `Debug` and zeroize on drop) and never
//! returned by the API: the vault's outputs are [`KeyMetadata`] only.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use ami_crypto::{Key, KeyStore};
use ami_domain::crypto::KeyRole;
use base64::Engine as _;
use rand_core::{OsRng, RngCore};
use zeroize::Zeroizing;

use crate::error::{HesError, Result};
use crate::model::{KeyMetadata, KeyRecord, KeyState, now_ms, role_name};
use crate::store::{KeyWrite, RegistryStore, Sealed};

/// How long a replaced key version stays usable unless a rotation says otherwise.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(7 * 24 * 3600);
/// The length of a meter key (AES-128).
pub const KEY_LEN: usize = 16;
const NONCE_LEN: usize = 12;

/// Wraps and unwraps data keys under a master key. Implement it for a KMS or an HSM.
pub trait KeyWrapper: Send + Sync {
    /// A stable, non-secret name of the master key, stored beside each record.
    fn key_id(&self) -> &str;
    /// Wraps a data key, binding `aad`.
    fn wrap(&self, dek: &[u8; 32], aad: &[u8]) -> Result<Vec<u8>>;
    /// Unwraps a data key wrapped by [`KeyWrapper::wrap`] with the same `aad`; `None` when it
    /// does not open (another master key, or tampering).
    fn unwrap(&self, wrapped: &[u8], aad: &[u8]) -> Option<Zeroizing<[u8; 32]>>;
}

/// Where the master key comes from.
#[derive(Clone, PartialEq, Eq)]
pub enum MasterKeySource {
    /// The key itself, 64 hex digits or base64 of 32 bytes (as `AMI_HES_MASTER_KEY` holds it).
    Inline(Zeroizing<String>),
    /// A file holding the key in the same form (`AMI_HES_MASTER_KEY_FILE`, e.g. a Kubernetes
    /// secret mounted as a volume).
    File(std::path::PathBuf),
}

impl fmt::Debug for MasterKeySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MasterKeySource::Inline(_) => f.write_str("Inline(<redacted>)"),
            MasterKeySource::File(p) => write!(f, "File({})", p.display()),
        }
    }
}

impl MasterKeySource {
    /// The source named by the environment: `AMI_HES_MASTER_KEY`, else
    /// `AMI_HES_MASTER_KEY_FILE`; neither is a [`HesError::Config`] error.
    pub fn from_env() -> Result<Self> {
        if let Ok(v) = std::env::var("AMI_HES_MASTER_KEY") {
            return Ok(MasterKeySource::Inline(Zeroizing::new(v)));
        }
        if let Ok(p) = std::env::var("AMI_HES_MASTER_KEY_FILE") {
            return Ok(MasterKeySource::File(p.into()));
        }
        Err(HesError::Config(
            "no master key: set AMI_HES_MASTER_KEY (32 bytes, hex or base64) or AMI_HES_MASTER_KEY_FILE".into(),
        ))
    }
}

/// A master key held in process memory (from the environment or a mounted secret): AES-256-GCM
/// key wrapping.
pub struct LocalMasterKey {
    key: Zeroizing<[u8; 32]>,
    id: String,
}

impl fmt::Debug for LocalMasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LocalMasterKey({})", self.id)
    }
}

impl LocalMasterKey {
    /// A master key from its 32 bytes.
    pub fn new(key: [u8; 32]) -> Self {
        let key = Zeroizing::new(key);
        // The id: the first 8 bytes of the encryption of a fixed block under the key, a
        // fingerprint that says which key without saying anything usable about it.
        let id = Aes256Gcm::new_from_slice(key.as_slice())
            .ok()
            .and_then(|c| {
                c.encrypt(
                    Nonce::from_slice(&[0u8; NONCE_LEN]),
                    b"ami-hes-kek-id".as_slice(),
                )
                .ok()
            })
            .map(|ct| hex::encode(ct.get(..8).unwrap_or_default()))
            .unwrap_or_default();
        LocalMasterKey { key, id }
    }

    /// Parses 64 hex digits or base64 (standard or URL-safe, padded or not) of 32 bytes;
    /// surrounding whitespace (a trailing newline in a secret file) is ignored.
    pub fn parse(text: &str) -> Result<Self> {
        let t = text.trim();
        let bytes = Zeroizing::new(
            if t.len() == 64 && t.chars().all(|c| c.is_ascii_hexdigit()) {
                hex::decode(t).map_err(|_| HesError::Config("master key: bad hex".into()))?
            } else {
                let engines = [
                    &base64::engine::general_purpose::STANDARD,
                    &base64::engine::general_purpose::STANDARD_NO_PAD,
                    &base64::engine::general_purpose::URL_SAFE,
                    &base64::engine::general_purpose::URL_SAFE_NO_PAD,
                ];
                engines
                    .iter()
                    .find_map(|e| e.decode(t).ok())
                    .ok_or_else(|| {
                        HesError::Config(
                            "master key: neither 64 hex digits nor base64 of 32 bytes".into(),
                        )
                    })?
            },
        );
        let key: [u8; 32] = bytes.as_slice().try_into().map_err(|_| {
            HesError::Config(format!(
                "master key: {} bytes, 32 expected (AES-256)",
                bytes.len()
            ))
        })?;
        Ok(Self::new(key))
    }

    /// The key from a file.
    pub fn from_file(path: &Path) -> Result<Self> {
        let text =
            Zeroizing::new(std::fs::read_to_string(path).map_err(|e| {
                HesError::Config(format!("master key file {}: {e}", path.display()))
            })?);
        Self::parse(&text)
    }

    /// The key from a source.
    pub fn from_source(source: &MasterKeySource) -> Result<Self> {
        match source {
            MasterKeySource::Inline(text) => Self::parse(text),
            MasterKeySource::File(path) => Self::from_file(path),
        }
    }
}

impl KeyWrapper for LocalMasterKey {
    fn key_id(&self) -> &str {
        &self.id
    }

    fn wrap(&self, dek: &[u8; 32], aad: &[u8]) -> Result<Vec<u8>> {
        gcm_seal(&self.key, dek, aad)
    }

    fn unwrap(&self, wrapped: &[u8], aad: &[u8]) -> Option<Zeroizing<[u8; 32]>> {
        let plain = gcm_open(&self.key, wrapped, aad)?;
        let dek: [u8; 32] = plain.as_slice().try_into().ok()?;
        Some(Zeroizing::new(dek))
    }
}

/// `nonce ‖ AES-256-GCM(key, plain, aad)` with a random nonce.
fn gcm_seal(key: &[u8; 32], plain: &[u8], aad: &[u8]) -> Result<Vec<u8>> {
    let cipher = Aes256Gcm::new_from_slice(key)
        .map_err(|_| HesError::Config("aes-256-gcm key length".into()))?;
    let mut nonce = [0u8; NONCE_LEN];
    OsRng.fill_bytes(&mut nonce);
    let ct = cipher
        .encrypt(Nonce::from_slice(&nonce), Payload { msg: plain, aad })
        .map_err(|_| HesError::Config("aes-256-gcm encryption failed".into()))?;
    let mut out = Vec::with_capacity(NONCE_LEN + ct.len());
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&ct);
    Ok(out)
}

/// Opens [`gcm_seal`]'s output; `None` if it does not verify.
fn gcm_open(key: &[u8; 32], sealed: &[u8], aad: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
    let cipher = Aes256Gcm::new_from_slice(key).ok()?;
    if sealed.len() < NONCE_LEN {
        return None;
    }
    let (nonce, ct) = sealed.split_at(NONCE_LEN);
    cipher
        .decrypt(Nonce::from_slice(nonce), Payload { msg: ct, aad })
        .ok()
        .map(Zeroizing::new)
}

/// The associated data binding a record to its row.
fn record_aad(serial: &str, role: KeyRole, version: u32) -> Vec<u8> {
    format!("ami-hes-key\0{serial}\0{}\0{version}", role_name(role)).into_bytes()
}

/// Seals `key` as version `version` of `serial`'s `role` key.
pub fn seal(
    wrapper: &dyn KeyWrapper,
    serial: &str,
    role: KeyRole,
    version: u32,
    key: &[u8; KEY_LEN],
) -> Result<Sealed> {
    let aad = record_aad(serial, role, version);
    let mut dek = Zeroizing::new([0u8; 32]);
    OsRng.fill_bytes(dek.as_mut_slice());
    let ciphertext = gcm_seal(&dek, key, &aad)?;
    let wrapped_dek = wrapper.wrap(&dek, &aad)?;
    Ok(Sealed {
        wrapped_dek,
        ciphertext,
        master_key_id: wrapper.key_id().to_owned(),
    })
}

/// Opens a stored record: the key, or [`HesError::KeyUnwrap`] (wrong master key, tampered or
/// moved record), or [`HesError::NotFound`] for a retired version.
pub fn open(wrapper: &dyn KeyWrapper, record: &KeyRecord) -> Result<Key> {
    let m = &record.meta;
    let name = || format!("{}/{}/v{}", m.serial, role_name(m.role), m.version);
    if m.state == KeyState::Retired || record.ciphertext.is_empty() {
        return Err(HesError::NotFound(format!("key {} is retired", name())));
    }
    let aad = record_aad(&m.serial, m.role, m.version);
    let fail = || HesError::KeyUnwrap {
        record: name(),
        stored_id: m.master_key_id.clone(),
        configured_id: wrapper.key_id().to_owned(),
    };
    let dek = wrapper.unwrap(&record.wrapped_dek, &aad).ok_or_else(fail)?;
    let plain = gcm_open(&dek, &record.ciphertext, &aad).ok_or_else(fail)?;
    let key: [u8; KEY_LEN] = plain.as_slice().try_into().map_err(|_| fail())?;
    Ok(Zeroizing::new(key))
}

/// A meter key given to the vault: 16 bytes, wiped on drop, never printed.
pub struct KeyBytes(Zeroizing<[u8; KEY_LEN]>);

impl KeyBytes {
    /// Takes a key from bytes of the right length.
    pub fn from_slice(bytes: &[u8]) -> Result<Self> {
        let k: [u8; KEY_LEN] = bytes.try_into().map_err(|_| {
            HesError::InvalidArgument(format!(
                "a key is {KEY_LEN} bytes (AES-128), got {}",
                bytes.len()
            ))
        })?;
        Ok(KeyBytes(Zeroizing::new(k)))
    }

    /// A random key.
    pub fn random() -> Self {
        let mut k = Zeroizing::new([0u8; KEY_LEN]);
        OsRng.fill_bytes(k.as_mut_slice());
        KeyBytes(k)
    }
}

impl fmt::Debug for KeyBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("KeyBytes(<redacted>)")
    }
}

/// Key management over a store: put, rotate, list metadata, retire; keeps a [`KeyProvider`]
/// current.
pub struct KeyVault<S> {
    store: Arc<S>,
    wrapper: Arc<dyn KeyWrapper>,
    provider: KeyProvider,
    grace: Duration,
}

impl<S> fmt::Debug for KeyVault<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyVault(master key {})", self.wrapper.key_id())
    }
}

impl<S: RegistryStore> KeyVault<S> {
    /// A vault over `store`, sealing under `wrapper`; the provider is empty until
    /// [`KeyVault::load`].
    pub fn new(store: Arc<S>, wrapper: Arc<dyn KeyWrapper>) -> Self {
        let provider = KeyProvider::new(wrapper.clone());
        KeyVault {
            store,
            wrapper,
            provider,
            grace: DEFAULT_GRACE,
        }
    }

    /// Sets the default grace period of rotations.
    pub fn with_grace(mut self, grace: Duration) -> Self {
        self.grace = grace;
        self
    }

    /// The provider decoders use (a cheap handle; it follows this vault's changes).
    pub fn provider(&self) -> KeyProvider {
        self.provider.clone()
    }

    /// Loads every usable key into the provider, checking each opens under the master key: a
    /// wrong master key fails here, at start, with [`HesError::KeyUnwrap`].
    pub async fn load(&self) -> Result<usize> {
        let keys = self.store.usable_keys(None).await?;
        for k in &keys {
            open(self.wrapper.as_ref(), &k.record)?;
        }
        let n = keys.len();
        self.provider.replace_all(keys);
        Ok(n)
    }

    async fn refresh(&self, serial: &str) -> Result<()> {
        let keys = self.store.usable_keys(Some(serial)).await?;
        self.provider.replace_meter(serial, keys);
        Ok(())
    }

    /// Stores the first key of a meter for a role (refused if one is active: rotate it).
    pub async fn put(
        &self,
        serial: &str,
        role: KeyRole,
        key: &KeyBytes,
        actor: &str,
    ) -> Result<KeyMetadata> {
        let wrapper = self.wrapper.clone();
        let seal_fn = move |v: u32| seal(wrapper.as_ref(), serial, role, v, &key.0);
        let meta = self
            .store
            .store_key(serial, role, KeyWrite::Put, actor, now_ms(), &seal_fn)
            .await?;
        self.refresh(serial).await?;
        tracing::info!(
            serial,
            role = role_name(role),
            version = meta.version,
            actor,
            "key stored"
        );
        Ok(meta)
    }

    /// Rotates a meter's key for a role: `new_key` (or a random one) becomes the active
    /// version, the replaced one stays usable for `grace` (the vault's default if `None`).
    pub async fn rotate(
        &self,
        serial: &str,
        role: KeyRole,
        new_key: Option<KeyBytes>,
        grace: Option<Duration>,
        actor: &str,
    ) -> Result<KeyMetadata> {
        let key = new_key.unwrap_or_else(KeyBytes::random);
        let now = now_ms();
        let grace_ms = i64::try_from(grace.unwrap_or(self.grace).as_millis()).unwrap_or(i64::MAX);
        let wrapper = self.wrapper.clone();
        let seal_fn = move |v: u32| seal(wrapper.as_ref(), serial, role, v, &key.0);
        let meta = self
            .store
            .store_key(
                serial,
                role,
                KeyWrite::Rotate {
                    grace_until_ms: now.saturating_add(grace_ms),
                },
                actor,
                now,
                &seal_fn,
            )
            .await?;
        self.refresh(serial).await?;
        tracing::info!(
            serial,
            role = role_name(role),
            version = meta.version,
            actor,
            "key rotated"
        );
        Ok(meta)
    }

    /// The metadata of every version of a meter's keys.
    pub async fn list(&self, serial: &str) -> Result<Vec<KeyMetadata>> {
        Ok(self
            .store
            .key_records(serial)
            .await?
            .into_iter()
            .map(|r| r.meta)
            .collect())
    }

    /// Retires versions whose grace period ended, and reloads the provider if any was.
    pub async fn retire_expired(&self) -> Result<u64> {
        let n = self.store.retire_expired_keys(now_ms()).await?;
        if n > 0 {
            self.load().await?;
        }
        Ok(n)
    }
}

/// Keys by (meter name, role): the sealed records, opened at each lookup.
type Sealedmap = HashMap<(String, KeyRole), Vec<KeyRecord>>;

/// The host's key store backed by the HES: implements [`ami_crypto::KeyStore`], so a
/// [`ami_crypto::CryptoCtx`] (and through it every decoder, native or Wasm) decrypts with keys
/// from the HES store while no plugin ever holds one.
///
/// It keeps the sealed records in memory, indexed by every name of the meter (serial, DLMS
/// system title, M-Bus address, OSGP device id: whatever a decoder reports), and opens the
/// active version under the master key at each lookup, so plaintext keys exist only for the
/// duration of one operation.
#[derive(Clone)]
pub struct KeyProvider {
    wrapper: Arc<dyn KeyWrapper>,
    keys: Arc<RwLock<Sealedmap>>,
}

impl fmt::Debug for KeyProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.keys.read().map(|k| k.len()).unwrap_or(0);
        write!(f, "KeyProvider({n} names)")
    }
}

impl KeyProvider {
    fn new(wrapper: Arc<dyn KeyWrapper>) -> Self {
        KeyProvider {
            wrapper,
            keys: Arc::default(),
        }
    }

    fn index(keys: Vec<crate::model::ActiveKey>, map: &mut Sealedmap) {
        for k in keys {
            for name in &k.names {
                map.entry((name.clone(), k.record.meta.role))
                    .or_default()
                    .push(k.record.clone());
            }
        }
    }

    fn replace_all(&self, keys: Vec<crate::model::ActiveKey>) {
        let mut map = Sealedmap::new();
        Self::index(keys, &mut map);
        if let Ok(mut m) = self.keys.write() {
            *m = map;
        }
    }

    fn replace_meter(&self, serial: &str, keys: Vec<crate::model::ActiveKey>) {
        if let Ok(mut m) = self.keys.write() {
            m.retain(|_, records| records.iter().all(|r| r.meta.serial != serial));
            Self::index(keys, &mut m);
        }
    }

    /// A version of a meter's key, opened: the active one when `version` is `None`, else that
    /// version if still usable (a previous one within its grace period). For host-side
    /// components only (the command engine re-keying a meter), never for an API response.
    pub fn key_version(&self, meter: &str, role: KeyRole, version: Option<u32>) -> Result<Key> {
        let record = {
            let map = self
                .keys
                .read()
                .map_err(|_| HesError::Corrupt("key cache lock poisoned".into()))?;
            map.get(&(meter.to_owned(), role))
                .and_then(|records| {
                    records.iter().find(|r| match version {
                        None => r.meta.state == KeyState::Active,
                        Some(v) => r.meta.version == v,
                    })
                })
                .cloned()
        };
        let record = record.ok_or_else(|| {
            HesError::NotFound(format!(
                "no usable {} key for meter {meter}",
                role_name(role)
            ))
        })?;
        open(self.wrapper.as_ref(), &record)
    }
}

impl KeyStore for KeyProvider {
    fn key(&self, meter: &str, role: KeyRole) -> Option<Key> {
        match self.key_version(meter, role, None) {
            Ok(k) => Some(k),
            Err(HesError::NotFound(_)) => None,
            Err(e) => {
                tracing::error!(meter, role = role_name(role), error = %e, "key lookup failed");
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn master_key_forms() {
        let hex = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
        let a = LocalMasterKey::parse(hex).unwrap();
        let raw = hex::decode(hex).unwrap();
        let b64 = base64::engine::general_purpose::STANDARD.encode(&raw);
        let b = LocalMasterKey::parse(&format!("{b64}\n")).unwrap();
        assert_eq!(a.key_id(), b.key_id());
        assert!(LocalMasterKey::parse("0011").is_err());
        assert!(LocalMasterKey::parse("not a key at all!").is_err());
        assert!(!format!("{a:?}").contains("0011223344"));
    }

    #[test]
    fn sealed_record_opens_only_with_its_master_key_and_row() {
        let mk = LocalMasterKey::new([7u8; 32]);
        let other = LocalMasterKey::new([8u8; 32]);
        let key = [0x42u8; KEY_LEN];
        let s = seal(&mk, "M1", KeyRole::DlmsUnicast, 1, &key).unwrap();
        assert!(!s.ciphertext.windows(KEY_LEN).any(|w| w == key));
        let record = |serial: &str, version| KeyRecord {
            meta: KeyMetadata {
                serial: serial.into(),
                role: KeyRole::DlmsUnicast,
                version,
                state: KeyState::Active,
                created_at_ms: 0,
                grace_until_ms: 0,
                master_key_id: mk.key_id().into(),
                created_by: "t".into(),
            },
            wrapped_dek: s.wrapped_dek.clone(),
            ciphertext: s.ciphertext.clone(),
        };
        assert_eq!(*open(&mk, &record("M1", 1)).unwrap(), key);
        assert!(matches!(
            open(&other, &record("M1", 1)),
            Err(HesError::KeyUnwrap { .. })
        ));
        assert!(open(&mk, &record("M2", 1)).is_err());
        assert!(open(&mk, &record("M1", 2)).is_err());
        assert_eq!(
            format!("{:?}", KeyBytes::from_slice(&key).unwrap()),
            "KeyBytes(<redacted>)"
        );
    }
}
