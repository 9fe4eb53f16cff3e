//! Security suite 0: the dlms-cosem wrapper pushes (EK = AK = `MYDUMMYGLOBALKEY`), the Green
//! Book glo-get-request and the Luxembourg Smarty DSMR frame decrypt with the right keys; a
//! wrong key or a tampered frame is `Authentication`, a missing key `MissingKey`.

mod support;

use std::path::Path;

use aes_gcm::aead::AeadInPlace;
use aes_gcm::aead::consts::U12;
use aes_gcm::{AesGcm, KeyInit, Nonce};
use ami_dlms::apdu::Apdu;
use ami_dlms::{Options, cipher, layer};
use ami_domain::crypto::{Crypto, NoKeys};
use ami_domain::{DecodeError, Decoded};
use ami_vectors::{Outcome, Vector, check, for_protocol};
use serde_json::Value;
use support::Keys;

const RECEIVED_AT: i64 = 1_700_000_000_000;
const DUMMY: &[u8; 16] = b"MYDUMMYGLOBALKEY";
const PUSH_ST: &str = "2f19229199164103";

fn load(file: &str) -> Result<Vec<Vector>, String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../../../tests/vectors/{file}"));
    ami_vectors::load(&path).map_err(|e| e.to_string())
}

fn vector(file: &str, id: &str) -> Result<Vector, String> {
    load(file)?
        .into_iter()
        .find(|v| v.id == id)
        .ok_or_else(|| format!("no vector {id}"))
}

fn pushes() -> Result<Vec<Vector>, String> {
    Ok(load("dlms/dlms.jsonl")?
        .into_iter()
        .filter(|v| v.key.is_some() && v.id.starts_with("dlms_cosem"))
        .collect())
}

fn plaintext(
    v: &Vector,
    crypto: &mut dyn Crypto,
    st: Option<&[u8]>,
) -> Result<Vec<u8>, DecodeError> {
    let u = layer::unwrap(&v.frame)?;
    let apdu = u
        .apdu
        .ok_or_else(|| DecodeError::Malformed("no APDU".into()))?;
    match Apdu::parse(apdu)? {
        Apdu::Ciphered(c) => cipher::decrypt(&c, st, crypto),
        other => Err(DecodeError::Malformed(format!("{other:?}"))),
    }
}

#[test]
fn wrapper_pushes_decrypt() -> Result<(), String> {
    let pushes = pushes()?;
    assert_eq!(pushes.len(), 6);
    for v in &pushes {
        let mut keys = Keys::new(PUSH_ST, DUMMY, DUMMY);
        let plain = plaintext(v, &mut keys, None).map_err(|e| format!("{}: {e}", v.id))?;
        let want = v
            .raw
            .pointer("/expected/dlms_cosem/plain_apdu_hex")
            .and_then(Value::as_str);
        assert_eq!(Some(hex::encode(&plain)).as_deref(), want, "{}", v.id);
        let d = ami_dlms::decode(&v.frame, RECEIVED_AT, &mut keys).map_err(|e| e.to_string())?;
        assert_eq!(d.meter.as_deref(), Some(PUSH_ST));
    }
    Ok(())
}

#[test]
fn wrong_keys_and_tampering_fail_authentication() -> Result<(), String> {
    for v in pushes()? {
        let wrong_ek = ami_dlms::decode(
            &v.frame,
            RECEIVED_AT,
            &mut Keys::new(PUSH_ST, &[7; 16], DUMMY),
        );
        assert!(
            matches!(wrong_ek, Err(DecodeError::Authentication(_))),
            "{}: {wrong_ek:?}",
            v.id
        );
        let wrong_ak = ami_dlms::decode(
            &v.frame,
            RECEIVED_AT,
            &mut Keys::new(PUSH_ST, DUMMY, &[7; 16]),
        );
        assert!(
            matches!(wrong_ak, Err(DecodeError::Authentication(_))),
            "{}",
            v.id
        );
        let n = v.frame.len();
        for at in [n - 1, n - 13, n - 20] {
            let mut tampered = v.frame.clone();
            tampered[at] ^= 0x01;
            let got = ami_dlms::decode(
                &tampered,
                RECEIVED_AT,
                &mut Keys::new(PUSH_ST, DUMMY, DUMMY),
            );
            assert!(
                matches!(got, Err(DecodeError::Authentication(_))),
                "{} @{at}: {got:?}",
                v.id
            );
        }
    }
    Ok(())
}

#[test]
fn missing_key_names_the_system_title() -> Result<(), String> {
    for v in pushes()? {
        for got in [
            ami_dlms::decode(&v.frame, RECEIVED_AT, &mut NoKeys),
            ami_dlms::decode(
                &v.frame,
                RECEIVED_AT,
                &mut Keys::new("0000000000000000", DUMMY, DUMMY),
            ),
        ] {
            match got {
                Err(DecodeError::MissingKey(m)) => assert!(m.contains(PUSH_ST), "{m}"),
                other => return Err(format!("{}: {other:?}", v.id)),
            }
        }
        // The EK alone is not enough for an authenticated frame.
        let mut ek_only = Keys::new(PUSH_ST, DUMMY, &[]);
        assert!(matches!(
            ami_dlms::decode(&v.frame, RECEIVED_AT, &mut ek_only),
            Err(DecodeError::MissingKey(_))
        ));
    }
    Ok(())
}

#[test]
fn green_book_example() -> Result<(), String> {
    let v = vector("dlms/dlms.jsonl", "greenbook-glo-get-request-clock")?;
    let st = hex::decode("4d4d4d0000bc614e").map_err(|e| e.to_string())?;
    let ek: Vec<u8> = (0u8..16).collect();
    let ak: Vec<u8> = (0xD0u8..=0xDF).collect();
    assert_eq!(v.key.as_deref(), Some(&ek[..]));
    assert_eq!(v.auth_key.as_deref(), Some(&ak[..]));
    let mut keys = Keys::new("4d4d4d0000bc614e", &ek, &ak);
    let plain = plaintext(&v, &mut keys, Some(&st)).map_err(|e| e.to_string())?;
    assert_eq!(
        Some(hex::encode(&plain)).as_deref(),
        v.raw
            .pointer("/expected/published/plaintext_hex")
            .and_then(Value::as_str)
    );
    // Through `decode_with`, the system title comes from the meter hint: a get-request,
    // no meter data, the meter named.
    let d = ami_dlms::decode_with(
        &v.frame,
        RECEIVED_AT,
        &mut keys,
        &Options::from_meter_hint(Some("4D4D4D0000BC614E")),
    )
    .map_err(|e| e.to_string())?;
    assert_eq!(
        d,
        Decoded {
            meter: Some("4d4d4d0000bc614e".into()),
            ..Decoded::default()
        }
    );
    // Without the system title there is no key to name.
    assert!(matches!(
        ami_dlms::decode(&v.frame, RECEIVED_AT, &mut keys),
        Err(DecodeError::MissingKey(_))
    ));
    let mut wrong = Keys::new("4d4d4d0000bc614e", &ek, &[0; 16]);
    assert!(matches!(
        plaintext(&v, &mut wrong, Some(&st)),
        Err(DecodeError::Authentication(_))
    ));
    Ok(())
}

/// general-glo-ciphering around `plain` with security control `sc` (suite 0).
fn cipher_push(sc: u8, st: &[u8; 8], ic: u32, plain: &[u8]) -> Result<Vec<u8>, String> {
    let mut iv = [0u8; 12];
    iv[..8].copy_from_slice(st);
    iv[8..].copy_from_slice(&ic.to_be_bytes());
    let mut body = plain.to_vec();
    let mut tag = Vec::new();
    let gcm = AesGcm::<aes::Aes128, U12, U12>::new(DUMMY.into());
    match sc & 0x30 {
        0x10 => {
            let mut aad = vec![sc];
            aad.extend_from_slice(DUMMY);
            aad.extend_from_slice(plain);
            let t = gcm
                .encrypt_in_place_detached(Nonce::from_slice(&iv), &aad, &mut [])
                .map_err(|e| e.to_string())?;
            tag.extend_from_slice(&t);
        }
        0x20 => {
            // Encryption only is GCM's keystream (counter IV ‖ 2 onwards) without the tag.
            gcm.encrypt_in_place_detached(Nonce::from_slice(&iv), b"", &mut body)
                .map_err(|e| e.to_string())?;
        }
        _ => return Err("unsupported sc".into()),
    }
    let mut out = vec![0xDB, 8];
    out.extend_from_slice(st);
    let content_len = 5 + body.len() + tag.len();
    out.push(u8::try_from(content_len).map_err(|e| e.to_string())?);
    out.push(sc);
    out.extend_from_slice(&ic.to_be_bytes());
    out.extend_from_slice(&body);
    out.extend_from_slice(&tag);
    Ok(out)
}

#[test]
fn encryption_only_and_authentication_only() -> Result<(), String> {
    let st = *b"ABCDEFGH";
    let plain = hex::decode(
        "0f000001db000922125a8591360000000049000000110000000a5a8513d014800000000d0000000a0100",
    )
    .map_err(|e| e.to_string())?;
    let meter = hex::encode(st);
    for sc in [0x10, 0x20] {
        let frame = cipher_push(sc, &st, 42, &plain)?;
        let mut keys = Keys::new(&meter, DUMMY, DUMMY);
        let d =
            ami_dlms::decode(&frame, RECEIVED_AT, &mut keys).map_err(|e| format!("{sc:x}: {e}"))?;
        assert_eq!(d.meter.as_deref(), Some(meter.as_str()));
        assert_eq!(d.attributes.len(), 1, "{sc:x}");
        let mut tampered = frame.clone();
        if let Some(b) = tampered.last_mut() {
            *b ^= 1;
        }
        let got = ami_dlms::decode(&tampered, RECEIVED_AT, &mut keys);
        if sc == 0x10 {
            assert!(
                matches!(got, Err(DecodeError::Authentication(_))),
                "{got:?}"
            );
        } else {
            // No tag to catch it: the body no longer parses, or parses to something else.
            assert_ne!(got, Ok(d));
        }
    }
    Ok(())
}

#[test]
fn smarty_encrypted_dsmr() -> Result<(), String> {
    let v = vector("dsmr/dsmr.jsonl", "dsmr_parser-sagemcom_t210_d_r-encrypted")?;
    let mut keys = Keys::new(
        &hex::encode(b"SYSTEMID"),
        v.key.as_deref().unwrap_or_default(),
        v.auth_key.as_deref().unwrap_or_default(),
    );
    let got = ami_dlms::decode(&v.frame, RECEIVED_AT, &mut keys);
    let mut expect = for_protocol("dsmr")
        .ok_or("no dsmr format")?
        .expectations(&v)
        .map_err(|e| e.to_string())?;
    assert!(expect.skip.is_some());
    expect.skip = None;
    assert_eq!(check(&expect, &got), Outcome::Pass, "{got:?}");
    // Wrong AK: authentication fails.
    let mut wrong = Keys::new(
        &hex::encode(b"SYSTEMID"),
        v.key.as_deref().unwrap_or_default(),
        &[0; 16],
    );
    assert!(matches!(
        ami_dlms::decode(&v.frame, RECEIVED_AT, &mut wrong),
        Err(DecodeError::Authentication(_))
    ));
    Ok(())
}
