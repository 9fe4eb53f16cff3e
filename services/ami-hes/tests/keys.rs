//! The key store: keys sealed under the master key, served to the host's crypto (decoders
//! decrypt with them by name), rotated with a grace period, refused under a wrong master key,
//! and never stored in the clear (the raw rows and the SQLite file are scanned for the key).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use aes_gcm::aead::{AeadInPlace, KeyInit};
use aes_gcm::{Aes128Gcm, Nonce};
use ami_crypto::{CryptoCtx, KeyStore};
use ami_domain::crypto::{Crypto, KeyRef, KeyRole};
use ami_hes::{
    HesError, KeyBytes, KeyState, KeyVault, LocalMasterKey, PgStore, RegistryStore, SqliteStore,
};
use common::{meter, register};
use rand_core::{OsRng, RngCore};

const TITLE: &str = "4d4d4d0000bc614e";

fn random_key() -> [u8; 16] {
    let mut k = [0u8; 16];
    OsRng.fill_bytes(&mut k);
    k
}

fn vault<S: RegistryStore>(s: &Arc<S>, master: u8) -> KeyVault<S> {
    KeyVault::new(s.clone(), Arc::new(LocalMasterKey::new([master; 32])))
}

/// AES-128-GCM as a meter would send it: (ciphertext, tag).
fn encrypt(key: &[u8; 16], iv: &[u8; 12], aad: &[u8], plain: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let mut buf = plain.to_vec();
    let tag = Aes128Gcm::new_from_slice(key)
        .unwrap()
        .encrypt_in_place_detached(Nonce::from_slice(iv), aad, &mut buf)
        .unwrap();
    (buf, tag.to_vec())
}

async fn keys_are_sealed_rotated_and_served<S: RegistryStore>(s: Arc<S>) {
    let mut m = meter("K-1", "F1", "T1");
    m.dlms_system_title = Some(TITLE.into());
    register(s.as_ref(), vec![m]).await;
    let v = vault(&s, 1);
    let k1 = random_key();
    let meta = v
        .put(
            "K-1",
            KeyRole::DlmsUnicast,
            &KeyBytes::from_slice(&k1).unwrap(),
            "alice",
        )
        .await
        .unwrap();
    assert_eq!((meta.version, meta.state), (1, KeyState::Active));
    assert_eq!(meta.created_by, "alice");
    let again = v
        .put("K-1", KeyRole::DlmsUnicast, &KeyBytes::random(), "alice")
        .await;
    assert!(
        matches!(again, Err(HesError::AlreadyExists(_))),
        "{again:?}"
    );
    assert!(matches!(
        v.put("nobody", KeyRole::Mbus, &KeyBytes::random(), "alice")
            .await,
        Err(HesError::NotFound(_))
    ));
    assert!(KeyBytes::from_slice(&[0u8; 15]).is_err());

    // The decoder names the meter by its system title; the host's crypto finds the key.
    let provider = v.provider();
    assert_eq!(*provider.key(TITLE, KeyRole::DlmsUnicast).unwrap(), k1);
    assert_eq!(*provider.key("K-1", KeyRole::DlmsUnicast).unwrap(), k1);
    assert!(provider.key(TITLE, KeyRole::DlmsAuthentication).is_none());
    let iv = [7u8; 12];
    let (ct, tag) = encrypt(&k1, &iv, b"hdr", b"1-0:1.8.0 = 42 kWh");
    let mut ctx = CryptoCtx::new(Arc::new(provider.clone()));
    let key = KeyRef::Stored {
        meter: TITLE,
        role: KeyRole::DlmsUnicast,
    };
    assert_eq!(
        ctx.aes_gcm_decrypt(key, &iv, b"hdr", &ct, &tag).unwrap(),
        b"1-0:1.8.0 = 42 kWh"
    );

    // Rotation: the new key serves at once, the old one stays for its grace period.
    let k2 = random_key();
    let meta = v
        .rotate(
            "K-1",
            KeyRole::DlmsUnicast,
            Some(KeyBytes::from_slice(&k2).unwrap()),
            Some(Duration::from_secs(3600)),
            "bob",
        )
        .await
        .unwrap();
    assert_eq!(meta.version, 2);
    assert_eq!(*provider.key(TITLE, KeyRole::DlmsUnicast).unwrap(), k2);
    assert_eq!(
        *provider
            .key_version(TITLE, KeyRole::DlmsUnicast, Some(1))
            .unwrap(),
        k1
    );
    assert!(ctx.aes_gcm_decrypt(key, &iv, b"hdr", &ct, &tag).is_err());
    // A rotation with no grace retires the replaced version at once; a random key if none given.
    let meta = v
        .rotate(
            "K-1",
            KeyRole::DlmsUnicast,
            None,
            Some(Duration::ZERO),
            "bob",
        )
        .await
        .unwrap();
    assert_eq!(meta.version, 3);
    let k3 = *provider.key(TITLE, KeyRole::DlmsUnicast).unwrap();
    assert_ne!(k3, k2);
    let states: Vec<(u32, KeyState)> = v
        .list("K-1")
        .await
        .unwrap()
        .into_iter()
        .map(|k| (k.version, k.state))
        .collect();
    assert_eq!(
        states,
        [
            (1, KeyState::Previous),
            (2, KeyState::Retired),
            (3, KeyState::Active)
        ]
    );
    let records = s.key_records("K-1").await.unwrap();
    assert!(records[1].ciphertext.is_empty() && records[1].wrapped_dek.is_empty());
    assert!(
        provider
            .key_version(TITLE, KeyRole::DlmsUnicast, Some(2))
            .is_err()
    );
    assert!(matches!(
        v.rotate("K-1", KeyRole::Mbus, None, None, "bob").await,
        Err(HesError::NotFound(_))
    ));

    // Another master key opens nothing, and says so clearly.
    let wrong = vault(&s, 2);
    let e = wrong.load().await.unwrap_err();
    let text = e.to_string();
    assert!(matches!(e, HesError::KeyUnwrap { .. }), "{text}");
    assert!(text.contains("wrong master key"), "{text}");
    assert!(wrong.provider().key(TITLE, KeyRole::DlmsUnicast).is_none());
    // The right one loads them all.
    assert_eq!(vault(&s, 1).load().await.unwrap(), 2);
}

on_both!(keys_are_sealed_rotated_and_served);

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn assert_no_key(haystack: &[u8], key: &[u8; 16], what: &str) {
    assert!(!contains(haystack, key), "{what} holds the key bytes");
    for h in [hex::encode(key), hex::encode_upper(key)] {
        assert!(
            !contains(haystack, h.as_bytes()),
            "{what} holds the key in hex"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_rows_hold_only_ciphertext() {
    common::on_postgres(|s: Arc<PgStore>| async move {
        register(s.as_ref(), vec![meter("RAW-1", "F1", "T1")]).await;
        let v = vault(&s, 3);
        let key = random_key();
        v.put(
            "RAW-1",
            KeyRole::Mbus,
            &KeyBytes::from_slice(&key).unwrap(),
            "t",
        )
        .await
        .unwrap();
        let rows: Vec<String> = sqlx::query_scalar("SELECT t::text FROM meter_key t")
            .fetch_all(s.pool())
            .await
            .unwrap();
        assert_eq!(rows.len(), 1);
        assert_no_key(rows[0].as_bytes(), &key, "the meter_key row");
        let raw: Vec<(Vec<u8>, Vec<u8>)> =
            sqlx::query_as("SELECT wrapped_dek, ciphertext FROM meter_key")
                .fetch_all(s.pool())
                .await
                .unwrap();
        assert_no_key(&raw[0].0, &key, "wrapped_dek");
        assert_no_key(&raw[0].1, &key, "ciphertext");
        // The test can fail: the key is there once decrypted.
        assert_eq!(*v.provider().key("RAW-1", KeyRole::Mbus).unwrap(), key);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_file_holds_only_ciphertext() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hes.db");
    let s = Arc::new(SqliteStore::open(path.to_str().unwrap()).await.unwrap());
    s.migrate().await.unwrap();
    let mut m = meter("RAW-2", "F1", "T1");
    m.dlms_system_title = Some(TITLE.into());
    register(s.as_ref(), vec![m]).await;
    let v = vault(&s, 4);
    let keys: Vec<[u8; 16]> = (0..3).map(|_| random_key()).collect();
    for (k, role) in keys.iter().zip([
        KeyRole::DlmsUnicast,
        KeyRole::DlmsAuthentication,
        KeyRole::DlmsMaster,
    ]) {
        v.put("RAW-2", role, &KeyBytes::from_slice(k).unwrap(), "t")
            .await
            .unwrap();
    }
    s.pool().close().await;
    let mut bytes = Vec::new();
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        bytes.extend(std::fs::read(entry.unwrap().path()).unwrap());
    }
    assert!(contains(&bytes, b"RAW-2"), "the scan reads the database");
    for k in &keys {
        assert_no_key(&bytes, k, "the SQLite files");
    }
}
