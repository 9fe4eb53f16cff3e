//! Keys from the HES key store, used by the shipped decoder components through the host's
//! crypto interface: ciphered DLMS pushes and encrypted wireless M-Bus telegrams of a simulated
//! fleet decode with the keys the HES holds (sealed under its master key in its registry
//! database), a rotated key makes the old frames fail as authentication failures, and a
//! hostile plugin that calls every crypto function on those keys gets no key byte back.

use std::collections::HashMap;
use std::sync::Arc;

use ami_domain::{DecodeError, Decoded};
use ami_e2e::{host, shipped_package, vendor};
use ami_hes::{KeyBytes, KeyVault, LocalMasterKey, Meter, MeterStatus, RegistryStore, SqliteStore};
use ami_plugin_host::{InputFrame, KeyRole};
use ami_sim::{Fleet, FleetConfig, Protocol};

const TS: i64 = 1_773_000_000_000;

fn frame(data: &[u8]) -> InputFrame<'_> {
    InputFrame {
        data,
        received_at_ms: TS,
        meter_hint: None,
    }
}

/// Whether `haystack` holds any 8-byte window of `key` (2^-64 by chance per position).
fn holds_part_of(haystack: &[u8], key: &[u8; 16]) -> bool {
    key.windows(8).any(|w| haystack.windows(8).any(|h| h == w))
}

/// The bytes of the hex text attributes a decode answered.
fn hauled_bytes(d: &Decoded) -> Vec<Vec<u8>> {
    d.attributes
        .iter()
        .filter(|(obis, _)| obis.to_string().starts_with("0-0:96.13."))
        .map(|(_, text)| hex::decode(text).expect("hex"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn integration_hes_keys_decrypt_in_the_host_and_never_reach_a_plugin() {
    // The HES registry and key store, as `ami hes` runs them on the embedded store.
    let registry = Arc::new(SqliteStore::in_memory().await.unwrap());
    registry.migrate().await.unwrap();
    let vault = KeyVault::new(
        Arc::clone(&registry),
        Arc::new(LocalMasterKey::new([0x5a; 32])),
    );
    // An even mix: ciphered DLMS pushes and encrypted wM-Bus among DSMR and IEC meters.
    let mut fleet = Fleet::with_config(&FleetConfig {
        meters: 24,
        seed: 7,
        gap_probability: 0.0,
        outages_per_day: 0.0,
        tampers_per_day: 0.0,
        spike_probability: 0.0,
        ..FleetConfig::default()
    })
    .unwrap();
    let keyed: Vec<(String, Protocol)> = fleet
        .meters
        .iter()
        .filter(|m| matches!(m.protocol, Protocol::Dlms | Protocol::WirelessMbus))
        .map(|m| (m.id.clone(), m.protocol))
        .collect();
    assert!(
        keyed.iter().any(|(_, p)| *p == Protocol::Dlms)
            && keyed.iter().any(|(_, p)| *p == Protocol::WirelessMbus),
        "the fleet has both kinds of encrypted meters: {keyed:?}"
    );

    // Each meter registered under its utility serial, with the name its decoder reports.
    let mut serial_of = HashMap::new();
    let mut rows = Vec::new();
    for (i, (id, protocol)) in keyed.iter().enumerate() {
        let serial = format!("UTIL-{i:04}");
        let mut m = match protocol {
            Protocol::Dlms => {
                let mut m = Meter::new(&serial, "dlms");
                m.dlms_system_title = Some(id.clone());
                m
            }
            _ => {
                let mut m = Meter::new(&serial, "mbus");
                m.mbus_address = Some(id.clone());
                m
            }
        };
        m.status = MeterStatus::Commissioned;
        m.normalise().unwrap();
        rows.push((i as u32 + 2, m));
        serial_of.insert(id.clone(), serial);
    }
    let refused = registry.insert_meters(&rows).await.unwrap();
    assert!(refused.is_empty(), "{refused:?}");
    let mut keys: Vec<[u8; 16]> = Vec::new();
    for (id, role, key) in fleet.key_entries() {
        vault
            .put(
                &serial_of[&id],
                role,
                &KeyBytes::from_slice(&key).unwrap(),
                "key-admin",
            )
            .await
            .unwrap();
        keys.push(key);
    }
    // Keys of the roles added in WIT 0.1.1 (a DLMS association's dedicated key, a C12.22 key),
    // so the thief below aims `crypto-ext` at real keys too.
    for (i, (id, protocol)) in keyed.iter().enumerate() {
        if *protocol != Protocol::Dlms {
            continue;
        }
        for (n, role) in [KeyRole::DlmsDedicated, KeyRole::AnsiC1222]
            .into_iter()
            .enumerate()
        {
            let key: [u8; 16] = std::array::from_fn(|j| (i * 31 + n * 101 + j * 7) as u8 ^ 0xC3);
            vault
                .put(
                    &serial_of[id],
                    role,
                    &KeyBytes::from_slice(&key).unwrap(),
                    "key-admin",
                )
                .await
                .unwrap();
            keys.push(key);
        }
    }
    assert!(keys.len() >= keyed.len());

    // The host's key store is the HES's provider: decoders name keys, the host opens them.
    let dir = tempfile::tempdir().unwrap();
    let signer = vendor();
    let host = host(&[&signer], Arc::new(vault.provider()));
    for (dir_name, crate_name) in [
        ("decoders/dlms", "ami-decoder-dlms"),
        ("decoders/mbus", "ami-decoder-mbus"),
    ] {
        host.install_dir(&shipped_package(dir.path(), dir_name, crate_name, &signer))
            .unwrap();
    }
    let thief = host
        .install_dir(&shipped_package(
            dir.path(),
            "test-plugins/hostile-decoder",
            "ami-test-hostile-decoder",
            &signer,
        ))
        .unwrap();

    // Every encrypted frame of a tick decodes, named as the registry knows the meter.
    let tick = fleet.tick(TS, 900_000);
    let mut decoded = 0;
    let mut kept = Vec::new();
    for u in tick
        .uplinks
        .iter()
        .filter(|u| matches!(u.protocol, Protocol::Dlms | Protocol::WirelessMbus))
    {
        let plugin = host.decoder_for(u.protocol.name()).expect("decoder");
        let out = plugin.decode(&[frame(&u.bytes)]).unwrap();
        let d = match out.first() {
            Some(Ok(d)) => d,
            other => panic!(
                "{} frame of {} failed: {other:?}",
                u.protocol.name(),
                u.meter_id
            ),
        };
        assert_eq!(d.meter.as_deref(), Some(u.meter_id.as_str()));
        assert!(!d.readings.is_empty(), "{d:?}");
        decoded += 1;
        kept.push((u.meter_id.clone(), u.protocol, u.bytes.clone()));
    }
    assert!(
        decoded >= keyed.len(),
        "{decoded} frames of {} meters",
        keyed.len()
    );

    // A hostile plugin calls every crypto function with every role of every meter: what comes
    // back is key streams and plaintexts, never a key (nor 8 bytes of one).
    let mut hauled = 0;
    for (id, _) in &keyed {
        let mut input = b"K".to_vec();
        input.extend_from_slice(id.as_bytes());
        let out = thief.decode(&[frame(&input)]).unwrap();
        let Some(Ok(d)) = out.first() else {
            panic!("{out:?}")
        };
        for bytes in hauled_bytes(d) {
            for key in &keys {
                assert!(
                    !holds_part_of(&bytes, key),
                    "a crypto result handed key bytes to the plugin ({id})"
                );
            }
            hauled += usize::from(!bytes.is_empty());
        }
    }
    // The attempts did reach the keys (key streams, CBC blocks came back), so the check above
    // looked at real results, not only at refusals.
    assert!(hauled >= 4 * keyed.len(), "{hauled} results");

    // The HES rotates a DLMS meter's key: its old frames now fail as authentication failures
    // (a clear error, not garbage), the others still decode.
    let (dlms_id, _, dlms_frame) = kept
        .iter()
        .find(|(_, p, _)| *p == Protocol::Dlms)
        .expect("a DLMS frame");
    vault
        .rotate(
            &serial_of[dlms_id],
            KeyRole::DlmsUnicast,
            None,
            Some(std::time::Duration::ZERO),
            "key-admin",
        )
        .await
        .unwrap();
    let dlms = host.decoder_for("dlms").unwrap();
    let out = dlms.decode(&[frame(dlms_frame)]).unwrap();
    assert!(
        matches!(out.first(), Some(Err(DecodeError::Authentication(_)))),
        "{out:?}"
    );
    let (other_id, _, other_frame) = kept
        .iter()
        .find(|(id, p, _)| *p == Protocol::Dlms && id != dlms_id)
        .expect("a second DLMS frame");
    let out = dlms.decode(&[frame(other_frame)]).unwrap();
    assert!(
        matches!(out.first(), Some(Ok(d)) if d.meter.as_deref() == Some(other_id.as_str())),
        "{out:?}"
    );
}
