//! Packages the host must refuse, each with a clear reason, while it keeps serving the others.

use ami_e2e::{component, host, manifest_of, shipped_package, vendor, write_package};
use ami_plugin_host::package::{self, MANIFEST_FILE};
use ami_plugin_host::{InputFrame, LoadError, MemoryKeyStore};
use std::sync::Arc;

fn refusal(r: Result<Arc<ami_plugin_host::Plugin>, LoadError>) -> LoadError {
    match r {
        Err(e) => e,
        Ok(p) => panic!("{p:?} loaded"),
    }
}

#[test]
fn integration_packages_refused_with_reasons() {
    let dir = tempfile::tempdir().unwrap();
    let key = vendor();
    let host = host(&[&key], Arc::new(MemoryKeyStore::new()));
    let good = host
        .install_dir(&shipped_package(
            dir.path(),
            "examples/example-decoder",
            "ami-example-decoder",
            &key,
        ))
        .unwrap();
    let acme = manifest_of("examples/example-decoder", "ami-example-decoder");
    let acme_wasm = component("ami-example-decoder");

    // Unsigned.
    let unsigned = write_package(&dir.path().join("unsigned"), &acme, &acme_wasm, None);
    let e = refusal(host.load(&unsigned));
    assert!(matches!(e, LoadError::Unsigned(_)), "{e}");
    assert!(e.to_string().contains("unsigned"), "{e}");

    // Signed by a vendor the operator does not trust.
    let stranger = vendor();
    let untrusted = write_package(
        &dir.path().join("untrusted"),
        &acme,
        &acme_wasm,
        Some(&stranger),
    );
    let e = refusal(host.load(&untrusted));
    assert!(matches!(e, LoadError::UntrustedSigner { .. }), "{e}");

    // The manifest changed after signing (a raised memory limit).
    let tampered = write_package(&dir.path().join("tampered"), &acme, &acme_wasm, Some(&key));
    let text = std::fs::read_to_string(tampered.join(MANIFEST_FILE)).unwrap();
    std::fs::write(
        tampered.join(MANIFEST_FILE),
        text.replace("memory_mb = 16", "memory_mb = 17"),
    )
    .unwrap();
    let e = refusal(host.load(&tampered));
    assert!(matches!(e, LoadError::BadSignature { .. }), "{e}");

    // The component changed after signing.
    let swapped = write_package(&dir.path().join("swapped"), &acme, &acme_wasm, Some(&key));
    let mut bytes = acme_wasm.clone();
    bytes.extend_from_slice(&[0, 0, 0]);
    std::fs::write(swapped.join(&acme.component), &bytes).unwrap();
    let e = refusal(host.load(&swapped));
    assert!(matches!(e, LoadError::DigestMismatch { .. }), "{e}");
    assert!(e.to_string().contains("does not match"), "{e}");

    // A VEE rule component shipped as a decoder: the wrong world.
    let mut as_decoder = acme.clone();
    as_decoder.name = "vee-in-disguise".into();
    as_decoder.component = "ami_example_vee_rule.wasm".into();
    let wrong = write_package(
        &dir.path().join("wrong"),
        &as_decoder,
        &component("ami-example-vee-rule"),
        Some(&key),
    );
    let e = refusal(host.load(&wrong));
    assert!(matches!(e, LoadError::WrongWorld { .. }), "{e}");
    assert!(e.to_string().contains("vee-rule world"), "{e}");

    // A decoder that imports sockets.
    let net = manifest_of("test-plugins/net-decoder", "ami-test-net-decoder");
    let netpkg = write_package(
        &dir.path().join("net"),
        &net,
        &component("ami-test-net-decoder"),
        Some(&key),
    );
    let e = refusal(host.load(&netpkg));
    assert!(
        matches!(&e, LoadError::ForbiddenImport { import, .. } if import.starts_with("wasi:sockets/")),
        "{e}"
    );

    // Bytes that are not a component at all.
    let mut junk = acme.clone();
    junk.name = "junk".into();
    let junkpkg = write_package(
        &dir.path().join("junk"),
        &junk,
        b"\0asm this is not wasm",
        Some(&key),
    );
    let e = refusal(host.load(&junkpkg));
    assert!(matches!(e, LoadError::Compile { .. }), "{e}");

    // A manifest for another WIT version.
    // (signed by hand: `ami plugin sign` itself refuses a manifest for another version)
    let mut future = acme.clone();
    future.wit = "ami:plugin@9.0.0".into();
    future.name = "future".into();
    let futurepkg = write_package(&dir.path().join("future"), &acme, &acme_wasm, None);
    future.sha256 = package::sha256_hex(&acme_wasm);
    let sig = ed25519_dalek::Signer::sign(&key, &future.signed_bytes());
    future.signature = Some(ami_plugin_host::manifest::Signature {
        public_key: hex::encode(key.verifying_key().to_bytes()),
        value: hex::encode(sig.to_bytes()),
    });
    package::write_manifest(&futurepkg, &future).unwrap();
    let e = refusal(host.load(&futurepkg));
    assert!(
        e.to_string()
            .contains("this host loads ami:plugin@0.1.0 and @0.1.1"),
        "{e}"
    );

    // The good plugin still works, and install_all reports each bad package without stopping.
    let r = good
        .decode(&[InputFrame {
            data: b"ACME1;A1;1;1-0:1.8.0=1*Wh",
            received_at_ms: 0,
            meter_hint: None,
        }])
        .unwrap();
    assert!(r[0].is_ok());
    let failures = host.install_all(dir.path()).unwrap();
    assert_eq!(failures.len(), 8, "{failures:?}");
    assert!(host.decoder_for("acme1").is_some());
}

#[test]
fn integration_packages_sign_then_verify_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let key = vendor();
    let pkg = shipped_package(dir.path(), "decoders/dsmr", "ami-decoder-dsmr", &key);
    let m = package::read_manifest(&pkg).unwrap();
    assert_eq!(
        m.signature.as_ref().unwrap().public_key,
        hex::encode(key.verifying_key().to_bytes())
    );
    let host = host(&[&key], Arc::new(MemoryKeyStore::new()));
    let p = host.install_dir(&pkg).unwrap();
    assert_eq!(p.manifest().protocols, vec!["dsmr".to_owned()]);
    assert_eq!(host.decoder_for("dsmr").unwrap().manifest().name, "dsmr");
}
