//! Hostile plugins: each misbehaviour fails its own call with a typed error, and the host and
//! the other plugins carry on.

use ami_domain::{DecodeError, Obis, Quantity};
use ami_e2e::{component, host, host_with, manifest_of, shipped_package, vendor, write_package};
use ami_plugin_host::{CallFailure, FrameFailure, HostConfig, InputFrame, KeyRole, MemoryKeyStore};
use ami_plugin_host::{Host, Plugin};
use ed25519_dalek::SigningKey;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn frame(data: &[u8]) -> InputFrame<'_> {
    InputFrame {
        data,
        received_at_ms: 1_700_000_000_000,
        meter_hint: None,
    }
}

/// Installs the hostile test decoder, signed by `key`, into `host`.
fn install_hostile(host: &Host, dir: &Path, key: &SigningKey) -> Arc<Plugin> {
    host.install_dir(&shipped_package(
        dir,
        "test-plugins/hostile-decoder",
        "ami-test-hostile-decoder",
        key,
    ))
    .unwrap()
}

fn failure(
    r: Result<Vec<Result<ami_domain::Decoded, DecodeError>>, ami_plugin_host::CallError>,
) -> CallFailure {
    match r {
        Err(e) => e.failure,
        Ok(v) => panic!("call succeeded: {v:?}"),
    }
}

#[test]
fn integration_sandbox_hostile_calls_fail_alone() {
    let dir = tempfile::tempdir().unwrap();
    let key = vendor();
    let host = host(&[&key], Arc::new(MemoryKeyStore::new()));
    let hostile = install_hostile(&host, dir.path(), &key);
    let acme = host
        .install_dir(&shipped_package(
            dir.path(),
            "examples/example-decoder",
            "ami-example-decoder",
            &key,
        ))
        .unwrap();
    assert_eq!(hostile.limits().time, Duration::from_millis(200));
    assert_eq!(hostile.limits().memory_bytes, 16 << 20);

    // An endless loop is interrupted at the time bound.
    let start = Instant::now();
    let f = failure(hostile.decode(&[frame(b"L")]));
    let took = start.elapsed();
    assert_eq!(f, CallFailure::Timeout { limit_ms: 200 });
    assert!(
        took >= Duration::from_millis(200),
        "stopped early: {took:?}"
    );
    assert!(took < Duration::from_secs(3), "stopped late: {took:?}");

    // A memory bomb stops at the cap.
    assert_eq!(
        failure(hostile.decode(&[frame(b"M")])),
        CallFailure::MemoryLimit {
            limit_bytes: 16 << 20
        }
    );

    // A panic becomes an error carrying the plugin's message.
    match failure(hostile.decode(&[frame(b"P")])) {
        CallFailure::Panic { message } => assert!(
            message.contains("hostile decoder asked to panic"),
            "{message}"
        ),
        other => panic!("expected a panic, got {other:?}"),
    }

    // A result that breaks the contract (no result for the frame) is refused.
    assert!(matches!(
        failure(hostile.decode(&[frame(b"E")])),
        CallFailure::MalformedResult { .. }
    ));

    // After all of these, both plugins still decode good frames.
    let ok = hostile.decode(&[frame(b"good frame")]).unwrap();
    let reading = &ok[0].as_ref().unwrap().readings[0];
    assert_eq!(reading.register, Obis::new(1, 0, 1, 8, 0, 255));
    assert_eq!(reading.value, Quantity::new(10, 0));
    let acme_out = acme
        .decode(&[frame(
            b"ACME1;A0001;1700000000;1-0:1.8.0=1234.567*kWh;1-0:32.7.0=230.1*V",
        )])
        .unwrap();
    let d = acme_out[0].as_ref().unwrap();
    assert_eq!(d.meter.as_deref(), Some("A0001"));
    assert_eq!(d.readings[0].value, Quantity::new(1_234_567, 0));
    assert_eq!(d.readings[0].unit, ami_domain::Unit::WattHour);
    assert_eq!(d.readings[0].ts_ms, 1_700_000_000_000);

    let stats = hostile.stats();
    assert_eq!(
        (stats.timeouts, stats.memory_limits, stats.panics),
        (1, 1, 1)
    );
    assert_eq!(stats.errors, 4);
    assert_eq!(stats.calls, 5);
    assert!(
        stats.instances_created >= 5,
        "each failure discards its instance: {stats:?}"
    );
    assert_eq!(acme.stats().errors, 0);
}

#[test]
fn integration_sandbox_poison_frame_fails_only_itself() {
    let dir = tempfile::tempdir().unwrap();
    let key = vendor();
    let host = host(&[&key], Arc::new(MemoryKeyStore::new()));
    let hostile = install_hostile(&host, dir.path(), &key);
    let frames = [frame(b"one"), frame(b"P"), frame(b"three!")];
    let results = hostile.decode_isolating(&frames);
    assert_eq!(results.len(), 3);
    assert_eq!(
        results[0].as_ref().unwrap().readings[0].value,
        Quantity::new(3, 0)
    );
    assert!(
        matches!(&results[1], Err(FrameFailure::Call(e)) if matches!(e.failure, CallFailure::Panic { .. }))
    );
    assert_eq!(
        results[2].as_ref().unwrap().readings[0].value,
        Quantity::new(6, 0)
    );
}

#[test]
fn integration_sandbox_hanging_plugin_costs_a_bounded_retry() {
    let dir = tempfile::tempdir().unwrap();
    let key = vendor();
    let host = host(&[&key], Arc::new(MemoryKeyStore::new()));
    let hostile = install_hostile(&host, dir.path(), &key);
    let frames: Vec<InputFrame<'_>> = (0..20).map(|_| frame(b"L")).collect();
    let start = Instant::now();
    let results = hostile.decode_isolating(&frames);
    // The batch, then two frames alone: three time bounds, not twenty-one.
    assert!(
        start.elapsed() < Duration::from_millis(200 * 6),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(
        results.len(),
        20,
        "every frame gets a result to dead-letter"
    );
    assert!(results.iter().all(|r| matches!(
        r,
        Err(FrameFailure::Call(e)) if e.failure == CallFailure::Timeout { limit_ms: 200 }
    )));
    assert_eq!(hostile.stats().timeouts, 3);
}

#[test]
fn integration_sandbox_operator_bounds_plugin_limits() {
    let dir = tempfile::tempdir().unwrap();
    let key = vendor();
    let config = HostConfig {
        max_time_ms: 50,
        max_memory_mb: 8,
        ..HostConfig::default()
    };
    let host = host_with(&[&key], Arc::new(MemoryKeyStore::new()), config);
    let mut manifest = manifest_of("test-plugins/hostile-decoder", "ami-test-hostile-decoder");
    manifest.limits.time_ms = 5000;
    manifest.limits.memory_mb = 1024;
    let pkg = write_package(
        &dir.path().join("greedy"),
        &manifest,
        &component("ami-test-hostile-decoder"),
        Some(&key),
    );
    let p = host.install_dir(&pkg).unwrap();
    assert_eq!(p.limits().time, Duration::from_millis(50));
    assert_eq!(
        failure(p.decode(&[frame(b"L")])),
        CallFailure::Timeout { limit_ms: 50 }
    );
    assert_eq!(
        failure(p.decode(&[frame(b"M")])),
        CallFailure::MemoryLimit {
            limit_bytes: 8 << 20
        }
    );
}

#[test]
fn integration_sandbox_crypto_by_reference() {
    use aes_gcm_helper::seal;
    let dir = tempfile::tempdir().unwrap();
    let key = vendor();
    let keys = Arc::new(MemoryKeyStore::new());
    let host = host(&[&key], keys.clone());
    let p = install_hostile(&host, dir.path(), &key);
    let k = [0x42u8; 16];
    let iv = [7u8; 12];
    let (ct, tag) = seal(&k, &iv, b"secret reading");
    let mut msg = b"C".to_vec();
    msg.extend_from_slice(&iv);
    msg.extend_from_slice(&tag);
    msg.extend_from_slice(&ct);

    // No key in the store: the decoder says which is missing.
    let r = p.decode(&[frame(&msg)]).unwrap();
    assert!(
        matches!(&r[0], Err(DecodeError::MissingKey(m)) if m.contains("hostile")),
        "{r:?}"
    );

    // The right key: the plaintext comes back, decrypted by the host.
    keys.insert("hostile", KeyRole::DlmsUnicast, k);
    let r = p.decode(&[frame(&msg)]).unwrap();
    let d = r[0].as_ref().unwrap();
    assert_eq!(d.attributes[0].1, "secret reading");

    // A wrong key or a tampered tag: an authentication failure, not garbage.
    keys.insert("hostile", KeyRole::DlmsUnicast, [0x43; 16]);
    let r = p.decode(&[frame(&msg)]).unwrap();
    assert!(
        matches!(&r[0], Err(DecodeError::Authentication(_))),
        "{r:?}"
    );
    keys.insert("hostile", KeyRole::DlmsUnicast, k);
    let last = msg.len() - 1;
    msg[last] ^= 0x01;
    let r = p.decode(&[frame(&msg)]).unwrap();
    assert!(
        matches!(&r[0], Err(DecodeError::Authentication(_))),
        "{r:?}"
    );
}

/// AES-GCM sealing for the test (the host's own code only decrypts).
mod aes_gcm_helper {
    use aes_gcm::aead::consts::U12;
    use aes_gcm::{AeadInPlace, AesGcm, KeyInit, Nonce};

    pub fn seal(key: &[u8; 16], iv: &[u8; 12], plain: &[u8]) -> (Vec<u8>, Vec<u8>) {
        let mut buf = plain.to_vec();
        let tag = AesGcm::<aes::Aes128, U12, U12>::new(key.into())
            .encrypt_in_place_detached(Nonce::from_slice(iv), b"", &mut buf)
            .unwrap();
        (buf, tag.to_vec())
    }
}
