//! OSGP APDUs (ami's profile of ETSI GS OSG 001, see `ami_ansi_c12::osgp`): no public OSGP
//! capture or worked example with its key exists, so these frames are built here from the
//! structure the public analyses describe (Kursawe and Peters 2015, section 2; Jovanovic
//! and Neves, FSE 2015, section 2: PSEM services on C12.19 tables, a sequence number, an
//! 8-byte OMA digest, RC4) and from the profile's OSGP-AES-128-PSK layout. Keys are served
//! by ami-crypto's `CryptoCtx` over a key store, as the host serves them; the frames are
//! encrypted with the `aes-gcm` crate, an implementation independent of the decoder.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;

use aes_gcm::aead::{AeadInPlace, KeyInit};
use aes_gcm::aes::Aes128;
use aes_gcm::aes::cipher::consts::U12;
use aes_gcm::{AesGcm, Nonce};
use ami_ansi_c12::osgp;
use ami_crypto::{CryptoCtx, KeyRole, MemoryKeyStore};
use ami_domain::crypto::NoKeys;
use ami_domain::{DecodeError, Quantity, Unit};
use common::*;

const DEVICE: [u8; 6] = [0x00, 0x0A, 0xB0, 0x12, 0x34, 0x56];
const KEY: [u8; 16] = *b"osgp-psk-test-01";

fn encrypt(key: &[u8; 16], sequence: u32, payload: &[u8]) -> Vec<u8> {
    let (nonce, aad) = osgp::nonce_and_aad(DEVICE, sequence);
    let mut body = payload.to_vec();
    let tag = AesGcm::<Aes128, U12, U12>::new(key.into())
        .encrypt_in_place_detached(Nonce::from_slice(&nonce), &aad, &mut body)
        .unwrap();
    let mut frame = aad.to_vec();
    frame.extend(body);
    frame.extend_from_slice(&tag);
    frame
}

fn keys(meter: &str, key: [u8; 16]) -> CryptoCtx {
    let store = MemoryKeyStore::new();
    store.insert(meter, KeyRole::OsgpOmak, key);
    CryptoCtx::new(Arc::new(store))
}

/// A meter report: ST 21 and ST 23 written by the meter (one summation), under
/// OSGP-AES-128-PSK.
fn report() -> Vec<u8> {
    let st21 = vec![0, 0, 0, 1, 0, 0, 0, 0, 0, 0];
    let services = [
        write_full(21, &st21),
        write_full(23, &987_654i32.to_le_bytes()),
    ];
    let refs: Vec<&[u8]> = services.iter().map(Vec::as_slice).collect();
    osgp::build_payload(&refs)
}

#[test]
fn aes_128_psk_decrypts_through_the_key_store() {
    let frame = encrypt(&KEY, 41, &report());
    let mut crypto = keys("000ab0123456", KEY);
    let d = ami_ansi_c12::decode(&frame, 1_700_000_000_000, &mut crypto).unwrap();
    assert_eq!(d.meter.as_deref(), Some("000ab0123456"));
    // An OSGP meter's summation 0 (no BT22) is source 0, Fwd Active Wh L1L2L3 (OSGP
    // Alliance, Optical Port Programmer's Guide v1.1, BT23, page 25; see `osgp_tables`).
    let r: Vec<_> = d
        .readings
        .iter()
        .filter(|r| r.register == "1-0:1.8.0".parse().unwrap())
        .collect();
    assert_eq!(r.len(), 1);
    assert_eq!(
        (r[0].value, r[0].unit),
        (Quantity::new(987_654, 0), Unit::WattHour)
    );
    assert!(d.attributes.iter().any(|(_, v)| v == "41"));
}

#[test]
fn wrong_key_tampering_and_missing_key_are_typed() {
    let frame = encrypt(&KEY, 41, &report());
    let wrong = ami_ansi_c12::decode(&frame, 0, &mut keys("000ab0123456", [0x11; 16]));
    assert!(
        matches!(wrong, Err(DecodeError::Authentication(_))),
        "{wrong:?}"
    );
    let mut tampered = frame.clone();
    tampered[14] ^= 0x01;
    let got = ami_ansi_c12::decode(&tampered, 0, &mut keys("000ab0123456", KEY));
    assert!(
        matches!(got, Err(DecodeError::Authentication(_))),
        "{got:?}"
    );
    // The sequence number is authenticated (additional data): a replayed header fails.
    let mut replay = frame.clone();
    replay[10] ^= 0x01;
    let got = ami_ansi_c12::decode(&replay, 0, &mut keys("000ab0123456", KEY));
    assert!(
        matches!(got, Err(DecodeError::Authentication(_))),
        "{got:?}"
    );
    let missing = ami_ansi_c12::decode(&frame, 0, &mut NoKeys);
    assert!(
        matches!(&missing, Err(DecodeError::MissingKey(m)) if m.contains("000ab0123456")),
        "{missing:?}"
    );
    // Another meter's key is not this meter's.
    let other = ami_ansi_c12::decode(&frame, 0, &mut keys("ffffffffffff", KEY));
    assert!(
        matches!(other, Err(DecodeError::MissingKey(_))),
        "{other:?}"
    );
}

/// The legacy forms (RC4 encryption with the OMA digest, or the OMA digest alone) are
/// recognised and refused with the typed error, whatever the key store holds.
#[test]
fn rc4_oma_digest_is_refused() {
    for security in [osgp::SECURITY_RC4, osgp::SECURITY_DIGEST] {
        let mut frame = vec![security];
        frame.extend(DEVICE);
        frame.extend(7u32.to_be_bytes());
        frame.extend(report());
        frame.extend([0x5A; osgp::DIGEST]);
        let e = osgp::open(&frame, &mut keys("000ab0123456", KEY)).unwrap_err();
        assert_eq!(e, ami_ansi_c12::Error::Rc4Refused);
        let d = ami_ansi_c12::decode(&frame, 0, &mut keys("000ab0123456", KEY));
        assert!(
            matches!(&d, Err(DecodeError::Unsupported(m)) if m.contains("RC4")),
            "{d:?}"
        );
    }
    // Cut before its digest, it is a truncated frame, not a legacy one.
    let mut short = vec![osgp::SECURITY_RC4];
    short.extend(DEVICE);
    short.extend(7u32.to_be_bytes());
    short.extend([1, 2, 3]);
    assert!(matches!(
        ami_ansi_c12::decode(&short, 0, &mut NoKeys),
        Err(DecodeError::Truncated(_))
    ));
}

/// A C12.22 APDU's ACSE elements: called and calling AP titles, invocation id, EPSEM
/// control, and a read request with its response in one EPSEM; a ciphered EPSEM (security
/// mode 2, AES-128 EAX') without its key id and IV is refused (see `c1222_security.rs`).
#[test]
fn c1222_apdu_elements() {
    let frame = c1222_push(&[(1, st1("ACME", "A3", "SN7"))]);
    let apdu = ami_ansi_c12::c1222::apdu(&frame).unwrap();
    assert_eq!(
        apdu.calling.as_ref().map(ToString::to_string).as_deref(),
        Some(".1.2.3")
    );
    assert_eq!(apdu.calling_invocation, Some(7));
    let ep = ami_ansi_c12::c1222::epsem(apdu.epsem).unwrap();
    assert_eq!((ep.control, ep.services.len()), (0x80, 1));
    // An absolute AP title: the C12.22 root, 2.16.124.113620.1.22.
    let oid = [0x60, 0x7C, 0x86, 0xF7, 0x54, 0x01, 0x16];
    let title = ami_ansi_c12::c1222::ap_title(&ami_ansi_c12::c1222::build_tlv(0x06, &oid)).unwrap();
    assert_eq!(title.to_string(), "2.16.124.113620.1.22");
    // Security mode 2: the EPSEM control byte with bits 2-3 = 2.
    let mut ciphered = frame.clone();
    let pos = frame.len() - apdu.epsem.len();
    ciphered[pos] = 0x88;
    let got = ami_ansi_c12::decode(&ciphered, 0, &mut NoKeys);
    assert!(
        matches!(&got, Err(DecodeError::Unsupported(m)) if m.contains("EAX")),
        "{got:?}"
    );
}

/// The README's `ami decode --protocol osgp` example: this report, sequence 41, under the
/// key `6f7367702d70736b2d746573742d3031` ("osgp-psk-test-01").
const README_OSGP: &str = "02000ab012345600000029e1958d6b5da1465b8e5ea68579ee1aff677f01be7ce0c2f6789ebd82c9a0dfb94dd6a37cc38273ae";

#[test]
fn readme_osgp_example() {
    let frame = encrypt(&KEY, 41, &report());
    assert_eq!(hex::encode(&frame), README_OSGP);
    assert_eq!(hex::encode(KEY), "6f7367702d70736b2d746573742d3031");
}
