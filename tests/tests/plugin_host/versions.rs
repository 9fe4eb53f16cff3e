//! WIT versions: a 0.1.1 host loads a plugin built against 0.1.0 (the archived WIT, no SDK)
//! beside the shipped 0.1.1 ones, and serves its `crypto` import with the same functions.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes128Gcm, Nonce};
use ami_domain::DecodeError;
use ami_domain::crypto::KeyRole;
use ami_e2e::{component, host, manifest_of, shipped_package, vendor, write_package};
use ami_plugin_host::{
    InputFrame, LoadError, MemoryKeyStore, WIT_VERSION, WIT_VERSIONS_LOADED, describe,
};
use std::sync::Arc;

const KEY: [u8; 16] = *b"legacy-key-0.1.0";

fn frame(data: &[u8]) -> InputFrame<'_> {
    InputFrame {
        data,
        received_at_ms: 1_700_000_000_000,
        meter_hint: None,
    }
}

/// `K` ‖ IV ‖ AES-128-GCM(plaintext) ‖ tag, as the legacy decoder reads it.
fn sealed(key: &[u8; 16], plaintext: &[u8]) -> Vec<u8> {
    let iv = [7u8; 12];
    let ct = Aes128Gcm::new(key.into())
        .encrypt(
            Nonce::from_slice(&iv),
            Payload {
                msg: plaintext,
                aad: &[],
            },
        )
        .unwrap();
    let mut f = vec![b'K'];
    f.extend_from_slice(&iv);
    f.extend_from_slice(&ct);
    f
}

#[test]
fn integration_versions_host_loads_0_1_0_plugins_beside_0_1_1() {
    assert_eq!(WIT_VERSION, "0.1.1");
    assert_eq!(WIT_VERSIONS_LOADED, ["0.1.0", "0.1.1"]);
    let dir = tempfile::tempdir().unwrap();
    let key = vendor();
    let keys = Arc::new(MemoryKeyStore::new());
    keys.insert("legacy", KeyRole::DlmsUnicast, KEY);
    let host = host(&[&key], keys);

    let legacy = host
        .install_dir(&shipped_package(
            dir.path(),
            "test-plugins/legacy-decoder",
            "ami-test-legacy-decoder",
            &key,
        ))
        .unwrap();
    assert_eq!(legacy.manifest().wit, "ami:plugin@0.1.0");
    // It really is a 0.1.0 component: its imports and exports name 0.1.0.
    let info = describe(host.engine(), &component("ami-test-legacy-decoder")).unwrap();
    assert!(
        info.imports.contains(&"ami:plugin/crypto@0.1.0".to_owned()),
        "{info:?}"
    );
    assert!(
        info.exports.contains(&"ami:plugin/decode@0.1.0".to_owned()),
        "{info:?}"
    );
    let current = host
        .install_dir(&shipped_package(
            dir.path(),
            "examples/example-decoder",
            "ami-example-decoder",
            &key,
        ))
        .unwrap();
    assert_eq!(current.manifest().wit, "ami:plugin@0.1.1");

    let mut tampered = sealed(&KEY, b"twelve bytes");
    let last = tampered.len() - 1;
    tampered[last] ^= 1;
    let (good, wrong) = (
        sealed(&KEY, b"twelve bytes"),
        sealed(b"some-other-key!!", b"twelve bytes"),
    );
    let out = legacy
        .decode(&[
            frame(b"plain"),
            frame(&good),
            frame(&wrong),
            frame(&tampered),
        ])
        .unwrap();
    let value = |i: usize| match &out[i] {
        Ok(d) => d.readings[0].value.mantissa,
        Err(e) => panic!("frame {i}: {e}"),
    };
    assert_eq!(value(0), 5);
    // Decrypted by the host's 0.1.1 `crypto` functions under the stored key.
    assert_eq!(value(1), 12);
    assert!(
        matches!(out[2], Err(DecodeError::Authentication(_))),
        "{:?}",
        out[2]
    );
    assert!(
        matches!(out[3], Err(DecodeError::Authentication(_))),
        "{:?}",
        out[3]
    );

    // The current plugin decodes in the same host.
    let r = current
        .decode(&[frame(b"ACME1;A1;1;1-0:1.8.0=1*Wh")])
        .unwrap();
    assert!(r[0].is_ok(), "{:?}", r[0]);
}

#[test]
fn integration_versions_manifest_and_component_must_agree() {
    let dir = tempfile::tempdir().unwrap();
    let key = vendor();
    let host = host(&[&key], Arc::new(MemoryKeyStore::new()));
    // A 0.1.1 component (it imports `crypto-ext`) shipped under a manifest that says 0.1.0:
    // refused, so a 0.1.0 manifest never hides a plugin that reaches the 0.1.1 key roles.
    let mut manifest = manifest_of("decoders/dlms", "ami-decoder-dlms");
    manifest.wit = "ami:plugin@0.1.0".into();
    let wasm = component("ami-decoder-dlms");
    let info = describe(host.engine(), &wasm).unwrap();
    assert!(
        info.imports
            .contains(&"ami:plugin/crypto-ext@0.1.1".to_owned()),
        "{info:?}"
    );
    let pkg = write_package(
        &dir.path().join("mislabelled"),
        &manifest,
        &wasm,
        Some(&key),
    );
    match host.load(&pkg) {
        Err(e @ LoadError::WrongWorld { .. }) => {
            let text = e.to_string();
            assert!(text.contains("declares ami:plugin@0.1.0"), "{text}");
        }
        other => panic!("a 0.1.1 component under a 0.1.0 manifest: {other:?}"),
    }
    // And the other way round: the 0.1.0 legacy component under a 0.1.1 manifest.
    let mut manifest = manifest_of("test-plugins/legacy-decoder", "ami-test-legacy-decoder");
    manifest.wit = "ami:plugin@0.1.1".into();
    let pkg = write_package(
        &dir.path().join("legacy-as-new"),
        &manifest,
        &component("ami-test-legacy-decoder"),
        Some(&key),
    );
    assert!(
        matches!(host.load(&pkg), Err(LoadError::WrongWorld { .. })),
        "a 0.1.0 component under a 0.1.1 manifest loaded"
    );
}
