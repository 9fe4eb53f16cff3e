//! Encrypted frames: TPL security mode 5 (AES-128-CBC) and ELL-II AES-128-CTR, with the
//! right key (by meter identity), a wrong key and no key.

mod common;

use std::path::Path;

use ami_domain::crypto::NoKeys;
use ami_domain::{DecodeError, Unit};
use ami_vectors::Vector;
use common::TestKeys;

const RECEIVED_AT: i64 = 1_700_000_000_000;

fn vector(id: &str) -> Result<Vector, String> {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../tests/vectors/wmbus/wmbus.jsonl");
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    let line = text
        .lines()
        .find(|l| {
            l.contains(&format!("\"id\": \"{id}\"")) || l.contains(&format!("\"id\":\"{id}\""))
        })
        .ok_or_else(|| format!("no vector {id}"))?;
    ami_vectors::vector::parse(line)
        .map_err(|e| e.to_string())?
        .pop()
        .ok_or_else(|| "empty".into())
}

fn key(v: &Vector) -> Result<[u8; 16], String> {
    v.key
        .as_deref()
        .and_then(|k| k.try_into().ok())
        .ok_or_else(|| format!("{} has no AES key", v.id))
}

fn has(d: &ami_domain::Decoded, value: f64, unit: Unit) -> bool {
    d.readings
        .iter()
        .any(|r| r.unit == unit && (r.value.to_f64() - value).abs() < 1e-9)
}

/// The three outcomes for one encrypted frame whose meter is `meter`.
fn right_wrong_none(id: &str, meter: &str) -> Result<ami_domain::Decoded, String> {
    let v = vector(id)?;
    let k = key(&v)?;

    let (store, mut keys) = TestKeys::recorded();
    store.insert(meter, k);
    let d = ami_mbus::decode(&v.frame, RECEIVED_AT, &mut keys).map_err(|e| format!("{id}: {e}"))?;
    assert_eq!(d.meter.as_deref(), Some(meter));
    assert_eq!(
        store.asked(),
        [meter],
        "{id}: key looked up under the meter identity"
    );

    let mut wrong = k;
    wrong[0] ^= 1;
    let got = ami_mbus::decode(&v.frame, RECEIVED_AT, &mut TestKeys::any(&wrong));
    assert!(
        matches!(got, Err(DecodeError::Authentication(_))),
        "{id}: {got:?}"
    );

    let got = ami_mbus::decode(&v.frame, RECEIVED_AT, &mut NoKeys);
    assert!(
        matches!(&got, Err(DecodeError::MissingKey(m)) if m.contains(meter)),
        "{id}: {got:?}"
    );
    Ok(d)
}

#[test]
fn mode5_short_header() -> Result<(), String> {
    // Picoflux water meter, TPL short header, 2F 2F after decryption.
    let d = right_wrong_none("wmbusmeters-picoflux-picoflux-0", "ECM-56544919")?;
    assert!(!d.readings.is_empty());
    Ok(())
}

#[test]
fn mode5_behind_ell_i() -> Result<(), String> {
    // Engelmann frame published with its key: ELL-I, then TPL mode 5.
    let v = vector("thirdparty-efe-50898527-mode5")?;
    let meter = format!(
        "EFE-{}",
        v.raw["expected"]["id"].as_str().unwrap_or_default()
    );
    let d = right_wrong_none(&v.id, &meter)?;
    let total = v.raw["expected"]["total_m3"].as_f64().ok_or("total_m3")?;
    assert!(has(&d, total, Unit::CubicMetre), "{:?}", d.readings);
    Ok(())
}

#[test]
fn mode5_long_header() -> Result<(), String> {
    // The long header's address is the meter (and the IV's M ‖ A).
    let v = vector("wmbusmeters-aventieswm-aventieswm-0")?;
    let d = ami_mbus::decode(&v.frame, RECEIVED_AT, &mut TestKeys::any(&key(&v)?))
        .map_err(|e| e.to_string())?;
    let meter = d.meter.clone().ok_or("no meter")?;
    right_wrong_none(&v.id, &meter)?;
    Ok(())
}

#[test]
fn ell_ii_aes_ctr() -> Result<(), String> {
    // Kamstrup Multical 21, ELL-II with AES-128-CTR (wmbusmeters' simulations).
    let d = right_wrong_none("wmbusmeters-extra-multical21-76348799", "KAM-76348799")?;
    let v = vector("wmbusmeters-extra-multical21-76348799")?;
    let total = v.raw["expected"]["total_m3"].as_f64().ok_or("total_m3")?;
    assert!(has(&d, total, Unit::CubicMetre), "{:?}", d.readings);
    Ok(())
}

#[test]
fn already_decrypted_payloads_need_no_key() -> Result<(), String> {
    // Mode 5 flagged, payload stored decrypted (starts with 2F 2F).
    let v = vector("wmbusmeters-amiplus-amiplus-0")?;
    let d = ami_mbus::decode(&v.frame, RECEIVED_AT, &mut NoKeys).map_err(|e| e.to_string())?;
    assert!(!d.readings.is_empty());
    Ok(())
}

/// A mode 7 frame built as EN 13757-7 describes it: ELL-I, AFL with counter and 8-byte
/// CMAC, short TPL with configuration word mode 7 and its extension byte.
fn mode7_frame(master: &[u8; 16], counter: u32) -> Vec<u8> {
    use aes::Aes128;
    use cbc::cipher::{BlockEncryptMut, KeyIvInit, block_padding::NoPadding};
    let id = [0x78, 0x56, 0x34, 0x12];
    let c = counter.to_le_bytes();
    let kdf = |d: u8| {
        let mut input = vec![d];
        input.extend_from_slice(&c);
        input.extend_from_slice(&id);
        input.extend_from_slice(&[7; 7]);
        common::cmac(master, &input)
    };
    let (k_enc, k_mac) = (kdf(0), kdf(1));
    // Volume 12345.678 m3 (BCD 8 digits, VIF 0x13), padded with 2F.
    let mut plain = vec![0x2F, 0x2F, 0x0C, 0x13, 0x78, 0x56, 0x34, 0x12];
    plain.resize(16, 0x2F);
    let cipher = cbc::Encryptor::<Aes128>::new(&k_enc.into(), &[0u8; 16].into())
        .encrypt_padded_vec_mut::<NoPadding>(&plain);
    let mut tpl = vec![0x7A, 0xAC, 0x00, 0x10, 0x07, 0x10];
    tpl.extend_from_slice(&cipher);
    let (mcl, fcl) = (0x25u8, [0x00u8, 0x2C]);
    let mut mac_input = vec![mcl];
    mac_input.extend_from_slice(&c);
    mac_input.extend_from_slice(&tpl);
    let mac = common::cmac(&k_mac, &mac_input);
    let mut f = vec![0, 0x44, 0x2D, 0x2C];
    f.extend_from_slice(&id);
    f.extend_from_slice(&[0x01, 0x07, 0x8C, 0x20, 0xAC, 0x90, 0x0F]);
    f.extend_from_slice(&fcl);
    f.push(mcl);
    f.extend_from_slice(&c);
    f.extend_from_slice(&mac[..8]);
    f.extend_from_slice(&tpl);
    f[0] = (f.len() - 1) as u8;
    f
}

#[test]
fn mode7_derived_keys_and_cmac() -> Result<(), String> {
    let master = [0x42u8; 16];
    let f = mode7_frame(&master, 0x0102);
    let (store, mut keys) = TestKeys::recorded();
    store.insert("KAM-12345678", master);
    let d = ami_mbus::decode(&f, RECEIVED_AT, &mut keys).map_err(|e| e.to_string())?;
    assert!(has(&d, 12345.678, Unit::CubicMetre), "{:?}", d.readings);

    let mut tampered = f.clone();
    let last = tampered.len() - 1;
    tampered[last] ^= 0x01;
    let got = ami_mbus::decode(&tampered, RECEIVED_AT, &mut TestKeys::any(&master));
    assert!(
        matches!(got, Err(DecodeError::Authentication(ref m)) if m.contains("MAC")),
        "{got:?}"
    );

    let got = ami_mbus::decode(&f, RECEIVED_AT, &mut TestKeys::any(&[0x43; 16]));
    assert!(
        matches!(got, Err(DecodeError::Authentication(_))),
        "{got:?}"
    );

    let got = ami_mbus::decode(&f, RECEIVED_AT, &mut NoKeys);
    assert!(matches!(got, Err(DecodeError::MissingKey(_))), "{got:?}");
    Ok(())
}
