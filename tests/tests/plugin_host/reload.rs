//! Hot reload: a new version replaces the old without dropping calls in flight.

use ami_e2e::{component, host, manifest_of, vendor, write_package};
use ami_plugin_host::{InputFrame, MemoryKeyStore};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

fn versioned(
    dir: &std::path::Path,
    version: &str,
    key: &ed25519_dalek::SigningKey,
) -> std::path::PathBuf {
    let mut m = manifest_of("test-plugins/hostile-decoder", "ami-test-hostile-decoder");
    m.version = version.into();
    m.limits.time_ms = 5000;
    write_package(
        &dir.join(version),
        &m,
        &component("ami-test-hostile-decoder"),
        Some(key),
    )
}

#[test]
fn integration_reload_keeps_calls_in_flight() {
    let dir = tempfile::tempdir().unwrap();
    let key = vendor();
    let host = Arc::new(host(&[&key], Arc::new(MemoryKeyStore::new())));
    host.install_dir(&versioned(dir.path(), "1.0.0", &key))
        .unwrap();

    // A slow call holds version 1 while version 2 is installed.
    let v1 = host.plugin("hostile").unwrap();
    let mut slow = b"S".to_vec();
    slow.extend_from_slice(&300_000_000u32.to_le_bytes());
    let caller = std::thread::spawn(move || {
        let r = v1.decode(&[InputFrame {
            data: &slow,
            received_at_ms: 0,
            meter_hint: None,
        }]);
        (v1.manifest().version.clone(), r.map(|v| v.len()))
    });
    std::thread::sleep(std::time::Duration::from_millis(20));
    let old = host
        .install(host.load(&versioned(dir.path(), "2.0.0", &key)).unwrap())
        .unwrap();
    assert_eq!(old.manifest().version, "1.0.0");
    assert_eq!(host.plugin("hostile").unwrap().manifest().version, "2.0.0");
    let (version, result) = caller.join().unwrap();
    assert_eq!(version, "1.0.0");
    assert_eq!(
        result,
        Ok(1),
        "the call in flight finished on the old version"
    );

    // Under load: four callers, ten swaps, every call answered.
    let stop = Arc::new(AtomicBool::new(false));
    let answered = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let workers: Vec<_> = (0..4)
        .map(|_| {
            let (host, stop, answered, failed) =
                (host.clone(), stop.clone(), answered.clone(), failed.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let p = host.plugin("hostile").unwrap();
                    match p.decode(&[InputFrame {
                        data: b"frame",
                        received_at_ms: 0,
                        meter_hint: None,
                    }]) {
                        Ok(r) if r.len() == 1 && r[0].is_ok() => {
                            answered.fetch_add(1, Ordering::Relaxed)
                        }
                        _ => failed.fetch_add(1, Ordering::Relaxed),
                    };
                }
            })
        })
        .collect();
    let packages: Vec<_> = (0..10)
        .map(|i| versioned(dir.path(), &format!("3.0.{i}"), &key))
        .collect();
    for pkg in &packages {
        host.install(host.load(pkg).unwrap());
    }
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.join().unwrap();
    }
    assert_eq!(failed.load(Ordering::Relaxed), 0);
    assert!(answered.load(Ordering::Relaxed) > 0);
    assert_eq!(host.plugin("hostile").unwrap().manifest().version, "3.0.9");
}
