//! `crypto-ext` (WIT 0.1.1) through the shipped components: ANSI C12.22 messages protected
//! with AES-128 EAX' and DLMS APDUs ciphered under the association's dedicated key decode in
//! the sandbox with keys only the host holds, exactly as the protocol crates decode them
//! natively; a wrong key, a tampered MAC and a missing key each fail with their own error.

use std::sync::Arc;

use aes_gcm::aead::AeadInPlace;
use aes_gcm::aead::consts::U12;
use aes_gcm::{AesGcm, KeyInit, Nonce};
use ami_domain::{DecodeError, Decoded};
use ami_e2e::{host, root, shipped_package, vendor};
use ami_plugin_host::{CryptoCtx, Host, InputFrame, KeyRole, MemoryKeyStore, Plugin};

const AT: i64 = 1_700_000_000_000;

/// Vectors #3 and #4 of the EAX' submission to NIST ("EAX' Cipher Mode", Moise, Beroset,
/// Phinney, Burns, May 2011; transcribed in EnergyICT's `EAXPrimeEncoderTest.java`): their
/// canonified headers, ciphertext and MAC laid out as the C12.22 messages they protect
/// (security mode 2, key id 0), with each one's key and calling AP title.
const C1222: [(&str, &str, &str); 2] = [
    (
        "605ca20e060c6086480186fc2f811caa4e01a60a06082b06010401828563a806020439a00ebbac0fa20da00ba10980010081044bcee2c3be2528238121889cf32c7ec24c250be7b0749feee71a220d0eee976ec23dbf0caa08ea00543e66",
        "102030405060708090a0b0c0d0e0f000",
        "1.3.6.1.4.1.33507",
    ),
    (
        "6072a211060f2b060104018285638e7f85f1c24e01a60906072b060104828563a80602042bc81aa1ac0fa20da00ba10980010081044b97d2ccbe392837813588beb0989fadb020eb72ba46353cc0a2ac2a007a101afebaf9680d3b9659f991121b865f254f6ac92cdd213d31e3c4d2cae6f89b6d",
        "6624c7e23034e4036fe5cb3a8b5dab44",
        "1.3.6.1.4.33507",
    ),
];

fn frame<'a>(data: &'a [u8], hint: Option<&'a str>) -> InputFrame<'a> {
    InputFrame {
        data,
        received_at_ms: AT,
        meter_hint: hint,
    }
}

fn key16(hex_key: &str) -> [u8; 16] {
    hex::decode(hex_key).unwrap().try_into().unwrap()
}

/// A host on `keys` with the shipped decoder `name` installed.
fn host_with_decoder(
    keys: Arc<MemoryKeyStore>,
    dir: &std::path::Path,
    name: &str,
) -> (Host, Arc<Plugin>) {
    let signer = vendor();
    let host = host(&[&signer], keys);
    let plugin = host
        .install_dir(&shipped_package(
            dir,
            &format!("decoders/{name}"),
            &format!("ami-decoder-{name}"),
            &signer,
        ))
        .unwrap();
    (host, plugin)
}

fn one(plugin: &Plugin, data: &[u8], hint: Option<&str>) -> Result<Decoded, DecodeError> {
    plugin
        .decode(&[frame(data, hint)])
        .unwrap()
        .into_iter()
        .next()
        .unwrap()
}

#[test]
fn integration_crypto_ext_c1222_eax_prime_in_the_component() {
    let dir = tempfile::tempdir().unwrap();
    let keys = Arc::new(MemoryKeyStore::new());
    let (_host, ansi) = host_with_decoder(keys.clone(), dir.path(), "ansi-c12");
    for (i, (message, key, meter)) in C1222.iter().enumerate() {
        let message = hex::decode(message).unwrap();
        // No key yet: the missing key is named by the meter's AP title.
        match one(&ansi, &message, None) {
            Err(DecodeError::MissingKey(m)) => {
                assert!(m.contains(meter) && m.contains("ansi-c1222"), "{m}")
            }
            other => panic!("vector {i} without its key: {other:?}"),
        }
        // A wrong key fails authentication.
        keys.insert(meter, KeyRole::AnsiC1222, [0x5A; 16]);
        assert!(
            matches!(
                one(&ansi, &message, None),
                Err(DecodeError::Authentication(_))
            ),
            "vector {i} under a wrong key"
        );
        // The right key: the component's result equals the crate's, natively, with the same key.
        keys.insert(meter, KeyRole::AnsiC1222, key16(key));
        let got = one(&ansi, &message, None).unwrap();
        let native = ami_ansi_c12::decode(
            &message,
            AT,
            &mut CryptoCtx::new(Arc::new({
                let k = MemoryKeyStore::new();
                k.insert(meter, KeyRole::AnsiC1222, key16(key));
                k
            })),
        )
        .unwrap();
        assert_eq!(got, native, "vector {i}");
        assert_eq!(got.meter.as_deref(), Some(*meter));
        // The opened EPSEM is a security request and a read (its services are listed).
        assert!(
            got.attributes
                .iter()
                .any(|(o, v)| o.to_string().starts_with("0-0:128.20.1") && v == "security"),
            "vector {i}: {got:?}"
        );
        // A tampered MAC (the last byte) fails authentication.
        let mut tampered = message.clone();
        *tampered.last_mut().unwrap() ^= 0x01;
        assert!(
            matches!(
                one(&ansi, &tampered, None),
                Err(DecodeError::Authentication(_))
            ),
            "vector {i} tampered"
        );
    }
}

const ST: [u8; 8] = *b"KFM\x10\x20\x30\x40\x50";
const DK: [u8; 16] = *b"dedicated-key-01";
const GK: [u8; 16] = *b"global-unicast-1";
const AK: [u8; 16] = [0xD0; 16];

/// `plain` ciphered (SC 0x30, suite 0) under `ek` as APDU `tag`; general-ded-ciphering (DC)
/// carries the system title, ded-get-response (D4) does not.
fn cipher_apdu(tag: u8, ek: &[u8; 16], ic: u32, plain: &[u8]) -> Vec<u8> {
    let sc = 0x30u8;
    let mut iv = [0u8; 12];
    iv[..8].copy_from_slice(&ST);
    iv[8..].copy_from_slice(&ic.to_be_bytes());
    let mut aad = vec![sc];
    aad.extend_from_slice(&AK);
    let mut body = plain.to_vec();
    let t = AesGcm::<aes::Aes128, U12, U12>::new(ek.into())
        .encrypt_in_place_detached(Nonce::from_slice(&iv), &aad, &mut body)
        .unwrap();
    let mut out = vec![tag];
    if tag == 0xDC {
        out.push(8);
        out.extend_from_slice(&ST);
    }
    let len = 5 + body.len() + t.len();
    match len {
        0..=0x7F => out.push(len as u8),
        0x80..=0xFF => out.extend_from_slice(&[0x81, len as u8]),
        _ => out.extend_from_slice(&[0x82, (len >> 8) as u8, len as u8]),
    }
    out.push(sc);
    out.extend_from_slice(&ic.to_be_bytes());
    out.extend_from_slice(&body);
    out.extend_from_slice(&t);
    out
}

/// The APDU of the published dlms-cosem HDLC data-notification.
fn notification() -> Vec<u8> {
    let v = ami_vectors::load(&root().join("tests/vectors/dlms/dlms.jsonl"))
        .unwrap()
        .into_iter()
        .find(|v| v.id == "dlms_cosem-hdlc-ui-data-notification")
        .unwrap();
    ami_dlms::layer::unwrap(&v.frame)
        .unwrap()
        .apdu
        .unwrap()
        .to_vec()
}

#[test]
fn integration_crypto_ext_dlms_dedicated_key_in_the_component() {
    let dir = tempfile::tempdir().unwrap();
    let keys = Arc::new(MemoryKeyStore::new());
    let meter = hex::encode(ST);
    keys.insert(&meter, KeyRole::DlmsUnicast, GK);
    keys.insert(&meter, KeyRole::DlmsAuthentication, AK);
    let (_host, dlms) = host_with_decoder(keys.clone(), dir.path(), "dlms");

    let plain = notification();
    let general = cipher_apdu(0xDC, &DK, 0x0102_0304, &plain);
    // get-response-normal, invoke-id C1, double-long-unsigned 1122, ded-ciphered: the system
    // title comes from the adapter's meter hint.
    let get = cipher_apdu(
        0xD4,
        &DK,
        9,
        &[0xC4, 0x01, 0xC1, 0x00, 0x06, 0x00, 0x00, 0x04, 0x62],
    );

    // No dedicated key stored: named, meter and role.
    match one(&dlms, &general, None) {
        Err(DecodeError::MissingKey(m)) => {
            assert!(m.contains(&meter) && m.contains("dlms-dedicated"), "{m}")
        }
        other => panic!("without the dedicated key: {other:?}"),
    }
    // The global key does not open dedicated ciphering.
    keys.insert(&meter, KeyRole::DlmsDedicated, GK);
    assert!(
        matches!(
            one(&dlms, &general, None),
            Err(DecodeError::Authentication(_))
        ),
        "the global key opened a ded-ciphered APDU"
    );

    keys.insert(&meter, KeyRole::DlmsDedicated, DK);
    let native_keys = || {
        let k = MemoryKeyStore::new();
        k.insert(&meter, KeyRole::DlmsDedicated, DK);
        k.insert(&meter, KeyRole::DlmsAuthentication, AK);
        CryptoCtx::new(Arc::new(k))
    };
    let got = one(&dlms, &general, None).unwrap();
    let native = ami_dlms::decode(&general, AT, &mut native_keys()).unwrap();
    assert_eq!(got, native);
    assert_eq!(got.readings.len(), 26, "{got:?}");
    assert_eq!(got.meter.as_deref(), Some(meter.as_str()));

    let got = one(&dlms, &get, Some(&meter)).unwrap();
    let native = ami_dlms::decode_with(
        &get,
        AT,
        &mut native_keys(),
        &ami_dlms::Options::from_meter_hint(Some(&meter)),
    )
    .unwrap();
    assert_eq!(got, native);

    let mut tampered = general.clone();
    *tampered.last_mut().unwrap() ^= 0x80;
    assert!(
        matches!(
            one(&dlms, &tampered, None),
            Err(DecodeError::Authentication(_))
        ),
        "a tampered tag was accepted"
    );
}
