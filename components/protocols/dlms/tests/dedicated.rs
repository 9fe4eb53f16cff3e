//! Dedicated-key ciphering (IEC 62056-5-3 9.2.7.2 service-specific ded- APDUs, 9.2.7.3
//! general-ded-ciphering), security suite 0 with the association's dedicated key held in a
//! `CryptoCtx` key store under `DlmsDedicated`: the frames decode to the same values as their
//! plain twins; the global key does not open them; a missing dedicated key is named.
//!
//! No published frame is ded-ciphered with data: the shared DLMS vectors have only the
//! plaintext InitiateRequest that carries a dedicated key
//! (`dlms_cosem-apdu-initiate-request-dedicated-key`). The frames here are ciphered in the
//! test with `aes-gcm`, around a published plaintext (the dlms-cosem HDLC data-notification).

use std::path::Path;
use std::sync::Arc;

use aes_gcm::aead::AeadInPlace;
use aes_gcm::aead::consts::U12;
use aes_gcm::{AesGcm, KeyInit, Nonce};
use ami_crypto::{CryptoCtx, KeyRole, MemoryKeyStore};
use ami_dlms::apdu::Apdu;
use ami_dlms::{Options, cipher, layer};
use ami_domain::crypto::NoKeys;
use ami_domain::{DecodeError, Decoded};
use ami_vectors::Vector;

const RECEIVED_AT: i64 = 1_700_000_000_000;
const ST: [u8; 8] = *b"KFM\x10\x20\x30\x40\x50";
/// The dedicated key the client agreed in its InitiateRequest (the published example's).
const DK: [u8; 16] = [
    0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xAA, 0xBB, 0xCC, 0xDD, 0xEE, 0xFF,
];
const GK: &[u8; 16] = b"MYDUMMYGLOBALKEY";
const AK: [u8; 16] = [0xD0; 16];

fn meter() -> String {
    hex::encode(ST)
}

/// A key store with the meter's global, dedicated and authentication keys.
fn keys(dedicated: Option<[u8; 16]>) -> CryptoCtx {
    let store = MemoryKeyStore::new();
    store.insert(&meter(), KeyRole::DlmsUnicast, *GK);
    store.insert(&meter(), KeyRole::DlmsBroadcast, *GK);
    store.insert(&meter(), KeyRole::DlmsAuthentication, AK);
    if let Some(dk) = dedicated {
        store.insert(&meter(), KeyRole::DlmsDedicated, dk);
    }
    CryptoCtx::new(Arc::new(store))
}

/// A-XDR length bytes.
fn length(n: usize, out: &mut Vec<u8>) {
    match n {
        0..=0x7F => out.push(n as u8),
        0x80..=0xFF => out.extend_from_slice(&[0x81, n as u8]),
        _ => out.extend_from_slice(&[0x82, (n >> 8) as u8, n as u8]),
    }
}

/// `plain` ciphered (SC 0x30: authenticated and encrypted, suite 0) under `ek` as APDU `tag`;
/// general ciphering (`DB`/`DC`) carries the system title.
fn cipher_apdu(tag: u8, ek: &[u8; 16], ic: u32, plain: &[u8]) -> Result<Vec<u8>, String> {
    let sc = 0x30u8;
    let mut iv = [0u8; 12];
    iv[..8].copy_from_slice(&ST);
    iv[8..].copy_from_slice(&ic.to_be_bytes());
    let mut aad = vec![sc];
    aad.extend_from_slice(&AK);
    let mut body = plain.to_vec();
    let t = AesGcm::<aes::Aes128, U12, U12>::new(ek.into())
        .encrypt_in_place_detached(Nonce::from_slice(&iv), &aad, &mut body)
        .map_err(|e| e.to_string())?;
    let mut out = vec![tag];
    if tag == 0xDB || tag == 0xDC {
        out.push(8);
        out.extend_from_slice(&ST);
    }
    length(5 + body.len() + t.len(), &mut out);
    out.push(sc);
    out.extend_from_slice(&ic.to_be_bytes());
    out.extend_from_slice(&body);
    out.extend_from_slice(&t);
    Ok(out)
}

/// The APDU of the published dlms-cosem HDLC data-notification (27 registers).
fn notification() -> Result<Vec<u8>, String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../tests/vectors/dlms/dlms.jsonl");
    let v: Vector = ami_vectors::load(&path)
        .map_err(|e| e.to_string())?
        .into_iter()
        .find(|v| v.id == "dlms_cosem-hdlc-ui-data-notification")
        .ok_or("no data-notification vector")?;
    let apdu = layer::unwrap(&v.frame)
        .map_err(|e| e.to_string())?
        .apdu
        .ok_or("no APDU")?
        .to_vec();
    Ok(apdu)
}

/// get-response-normal, invoke-id C1, data double-long-unsigned 1122.
const GET_RESPONSE: [u8; 9] = [0xC4, 0x01, 0xC1, 0x00, 0x06, 0x00, 0x00, 0x04, 0x62];

fn plain_twin(apdu: &[u8]) -> Result<Decoded, String> {
    let mut d = ami_dlms::decode_apdu(apdu, RECEIVED_AT, &mut NoKeys, &Options::default())
        .map_err(|e| e.to_string())?;
    d.meter = Some(meter());
    Ok(d)
}

fn hint() -> Options {
    Options::from_meter_hint(Some(&meter()))
}

#[test]
fn ded_get_response_decrypts_with_the_dedicated_key() -> Result<(), String> {
    let frame = cipher_apdu(0xD4, &DK, 7, &GET_RESPONSE)?;
    let Apdu::Ciphered(c) = Apdu::parse(&frame).map_err(|e| e.to_string())? else {
        return Err("not ciphered".into());
    };
    let plain = cipher::decrypt(&c, Some(&ST), &mut keys(Some(DK))).map_err(|e| e.to_string())?;
    assert_eq!(plain, GET_RESPONSE);
    // The service-specific form names no system title: it comes from the meter hint.
    let d = ami_dlms::decode_with(&frame, RECEIVED_AT, &mut keys(Some(DK)), &hint())
        .map_err(|e| e.to_string())?;
    assert_eq!(d, plain_twin(&GET_RESPONSE)?);
    Ok(())
}

#[test]
fn general_ded_ciphering_decodes_like_its_plain_twins() -> Result<(), String> {
    let notification = notification()?;
    let twin = plain_twin(&notification)?;
    assert_eq!(twin.readings.len(), 26, "{twin:?}");
    let frame = cipher_apdu(0xDC, &DK, 0x0102_0304, &notification)?;
    // General ciphering carries the system title: no hint needed.
    let d =
        ami_dlms::decode(&frame, RECEIVED_AT, &mut keys(Some(DK))).map_err(|e| e.to_string())?;
    assert_eq!(d, twin);
    let frame = cipher_apdu(0xDC, &DK, 8, &GET_RESPONSE)?;
    let d =
        ami_dlms::decode(&frame, RECEIVED_AT, &mut keys(Some(DK))).map_err(|e| e.to_string())?;
    assert_eq!(d, plain_twin(&GET_RESPONSE)?);
    // The HDLC-free forms are reached through the layers too (LLC header first).
    let mut llc = vec![0xE6, 0xE7, 0x00];
    llc.extend_from_slice(&cipher_apdu(0xDC, &DK, 9, &notification)?);
    let d = ami_dlms::decode(&llc, RECEIVED_AT, &mut keys(Some(DK))).map_err(|e| e.to_string())?;
    assert_eq!(d, twin);
    Ok(())
}

#[test]
fn the_global_key_does_not_open_dedicated_ciphering() -> Result<(), String> {
    let frames = [
        cipher_apdu(0xDC, &DK, 1, &notification()?)?,
        cipher_apdu(0xD4, &DK, 2, &GET_RESPONSE)?,
    ];
    for frame in &frames {
        // A one-off run's single key (the CLI's --key) stands for every encryption role,
        // the dedicated one included: the global key there fails the tag.
        let store = MemoryKeyStore::new();
        store.set_any_meter(Some(*GK), Some(AK));
        let got = ami_dlms::decode_with(
            frame,
            RECEIVED_AT,
            &mut CryptoCtx::new(Arc::new(store)),
            &hint(),
        );
        assert!(
            matches!(got, Err(DecodeError::Authentication(_))),
            "{got:?}"
        );
        // A dedicated key that is not the one the frame was ciphered with.
        let got = ami_dlms::decode_with(frame, RECEIVED_AT, &mut keys(Some(*GK)), &hint());
        assert!(
            matches!(got, Err(DecodeError::Authentication(_))),
            "{got:?}"
        );
        // Tampered tag.
        let mut tampered = frame.clone();
        if let Some(b) = tampered.last_mut() {
            *b ^= 0x01;
        }
        let got = ami_dlms::decode_with(&tampered, RECEIVED_AT, &mut keys(Some(DK)), &hint());
        assert!(
            matches!(got, Err(DecodeError::Authentication(_))),
            "{got:?}"
        );
    }
    // The same plaintext ciphered glo- with the global key still opens with it.
    let glo = cipher_apdu(0xDB, GK, 3, &GET_RESPONSE)?;
    let d = ami_dlms::decode(&glo, RECEIVED_AT, &mut keys(None)).map_err(|e| e.to_string())?;
    assert_eq!(d, plain_twin(&GET_RESPONSE)?);
    Ok(())
}

#[test]
fn missing_dedicated_key_names_meter_and_role() -> Result<(), String> {
    let frames = [
        cipher_apdu(0xDC, &DK, 1, &notification()?)?,
        cipher_apdu(0xD4, &DK, 2, &GET_RESPONSE)?,
    ];
    for frame in &frames {
        // The meter's global keys are there, its dedicated key is not.
        for got in [
            ami_dlms::decode_with(frame, RECEIVED_AT, &mut keys(None), &hint()),
            ami_dlms::decode_with(frame, RECEIVED_AT, &mut NoKeys, &hint()),
        ] {
            match got {
                Err(DecodeError::MissingKey(m)) => {
                    assert!(m.contains(&meter()) && m.contains("dlms-dedicated"), "{m}")
                }
                other => return Err(format!("{other:?}")),
            }
        }
    }
    // ded-get-response without the system title (no hint): no key to name.
    assert!(matches!(
        ami_dlms::decode(&frames[1], RECEIVED_AT, &mut keys(Some(DK))),
        Err(DecodeError::MissingKey(_))
    ));
    Ok(())
}
