//! C12.22 EPSEM security modes 1 (clear text with authentication) and 2 (ciphered with
//! authentication), AES-128 EAX' with the meter's `AnsiC1222` key in a `CryptoCtx` key store.
//!
//! * The test vectors of the EAX' submission to NIST ("EAX' Cipher Mode", Moise, Beroset,
//!   Phinney, Burns, May 2011; transcribed in EnergyICT's
//!   `com/energyict/protocolimpl/ansi/c12/EAXPrime/EAXPrimeEncoderTest.java`) are canonified
//!   C12.22 headers: the messages they come from are rebuilt here (their elements in the
//!   order ANSI C12.22 sends them), their cleartext must come out byte for byte, and the two
//!   under key id 0 decode.
//! * Frames built per ANSI C12.22 (ACSE APDU with the calling authentication value, the
//!   EPSEM of 5.3.4 ending with the 4-byte MAC; `c1222::build_secured`) and encrypted with a
//!   known key decode to the same readings as their clear-text twins; a wrong key, a tampered
//!   MAC, ciphertext or header fail authentication; a missing key names the meter; truncated
//!   or malformed security elements are typed errors.
//!
//! No published C12.22 capture with its key is used: Wireshark's `c1222_std_example8.pcap`
//! (the standard's example 8, key id 2) is binary and was not reachable.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;

use ami_ansi_c12::c1222::{self, Seal};
use ami_crypto::eax_prime::testing::encrypt;
use ami_crypto::{CryptoCtx, KeyRole, MemoryKeyStore};
use ami_domain::crypto::{Crypto, KeyRef, NoKeys};
use ami_domain::{DecodeError, Decoded, Obis};
use common::*;

const AT: i64 = 1_700_000_000_000;
const KEY: [u8; 16] = *b"c1222-eax-key-01";
/// The meter as the decoder names it: the calling AP title `.1.2.3` of the builders.
const METER: &str = ".1.2.3";

fn h(s: &str) -> Vec<u8> {
    hex::decode(s.replace(' ', "")).unwrap()
}

fn keys(meter: &str, key: [u8; 16]) -> CryptoCtx {
    let store = MemoryKeyStore::new();
    store.insert(meter, KeyRole::AnsiC1222, key);
    CryptoCtx::new(Arc::new(store))
}

/// A published vector as the C12.22 message it protects.
struct Published {
    key: &'static str,
    called: &'static str,
    calling: &'static str,
    /// The other header elements, in the canonical order.
    others: &'static [&'static str],
    authentication: &'static str,
    user_header: &'static str,
    key_id: &'static str,
    iv: &'static str,
    plaintext: &'static str,
    ciphertext: &'static str,
    mac: &'static str,
}

impl Published {
    /// The cleartext the vector publishes.
    fn cleartext(&self) -> Vec<u8> {
        let mut n = h(self.called);
        for e in self.others {
            n.extend(h(e));
        }
        n.extend(h(self.authentication));
        n.extend(h(self.user_header));
        n.extend(h(self.calling));
        n.extend(h(self.key_id));
        n.extend(h(self.iv));
        n
    }

    /// The message on the wire: called and calling AP titles, the other elements, the
    /// calling authentication value, the user information (header, ciphertext, MAC).
    fn message(&self, protected: &str) -> Vec<u8> {
        let mut body = h(self.called);
        body.extend(h(self.calling));
        for e in self.others {
            body.extend(h(e));
        }
        body.extend(h(self.authentication));
        body.extend(h(self.user_header));
        body.extend(h(protected));
        body.extend(h(self.mac));
        c1222::build_tlv(0x60, &body)
    }

    fn key(&self) -> [u8; 16] {
        h(self.key).try_into().unwrap()
    }
}

/// Vectors #1, #3 and #4 of "EAX' Cipher Mode" (May 2011). #2 is #1 with another IV.
const PUBLISHED: [Published; 3] = [
    Published {
        key: "01020304050607080102030405060708",
        called: "a20c060a607c86f75401160017 02",
        calling: "a60d060b607c86f754011600178211",
        others: &["a703020104", "a803020102"],
        authentication: "ac0fa20da00ba109800102810448e99388",
        user_header: "be19281781159a",
        key_id: "02",
        iv: "48e99388",
        plaintext: "54454d50 0b40000700051a00000200e4",
        ciphertext: "4031cc957d4edf9a357f3db0fa9fe838",
        mac: "6555c029",
    },
    Published {
        key: "102030405060708090a0b0c0d0e0f000",
        called: "a20e060c6086480186fc2f811caa4e01",
        calling: "a60a06082b06010401828563",
        others: &["a806020439a00ebb"],
        authentication: "ac0fa20da00ba10980010081044bcee2c3",
        user_header: "be252823812188",
        key_id: "00",
        iv: "4bcee2c3",
        plaintext: "1751303030303030303030303030303030303030303000000330000 1",
        ciphertext: "9cf32c7ec24c250be7b0749feee71a220d0eee976ec23dbf0caa08ea",
        mac: "00543e66",
    },
    Published {
        key: "6624c7e23034e4036fe5cb3a8b5dab44",
        called: "a211060f2b060104018285638e7f85f1c24e01",
        calling: "a60906072b060104828563",
        others: &["a80602042bc81aa1"],
        authentication: "ac0fa20da00ba10980010081044b97d2cc",
        user_header: "be392837813588",
        key_id: "00",
        iv: "4b97d2cc",
        plaintext: "1751303030303030303030303030303030303030303000000330000103300078\
                    033000790330007a0330007b0330007d",
        ciphertext: "beb0989fadb020eb72ba46353cc0a2ac2a007a101afebaf9680d3b9659f99112\
                     1b865f254f6ac92cdd213d31e3c4d2ca",
        mac: "e6f89b6d",
    },
];

#[test]
fn published_vectors_are_canonified_c1222_headers() {
    for (i, v) in PUBLISHED.iter().enumerate() {
        let frame = v.message(v.ciphertext);
        let apdu = c1222::apdu(&frame).unwrap();
        let security = c1222::security(apdu.authentication.unwrap()).unwrap();
        assert_eq!(
            hex::encode(c1222::cleartext(&apdu, &security).unwrap()),
            hex::encode(v.cleartext()),
            "vector {i}"
        );
        // And the key holder opens it with that cleartext.
        let meter = apdu.calling.as_ref().unwrap().to_string();
        let got = keys(&meter, v.key()).eax_prime_decrypt(
            KeyRef::Stored {
                meter: &meter,
                role: KeyRole::AnsiC1222,
            },
            &v.cleartext(),
            &h(v.ciphertext),
            &h(v.mac),
        );
        assert_eq!(got, Ok(h(v.plaintext)), "vector {i}");
    }
}

#[test]
fn published_key_id_0_messages_decode_like_their_clear_twins() {
    for v in &PUBLISHED[1..] {
        let frame = v.message(v.ciphertext);
        let meter = c1222::apdu(&frame).unwrap().calling.unwrap().to_string();
        assert!(meter.starts_with("1.3.6.1.4."), "{meter}");
        let d = ami_ansi_c12::decode(&frame, AT, &mut keys(&meter, v.key())).unwrap();
        // The clear twin: the same header, control 0x80, the plaintext, no MAC.
        let mut body = h(v.called);
        body.extend(h(v.calling));
        for e in v.others {
            body.extend(h(e));
        }
        let mut ep = vec![0x80];
        ep.extend(h(v.plaintext));
        body.extend(c1222::build_tlv(
            0xBE,
            &c1222::build_tlv(0x28, &c1222::build_tlv(0x81, &ep)),
        ));
        let clear = c1222::build_tlv(0x60, &body);
        let twin = ami_ansi_c12::decode(&clear, AT, &mut NoKeys).unwrap();
        assert_eq!(without_control(&d), without_control(&twin));
        assert_eq!(attr(&d, "0-0:128.22.4"), ["88"]);
        // A security request and a read of ST 1 (the password is never output).
        assert_eq!(attr(&d, "0-0:128.20.1").first(), Some(&"security"), "{d:?}");
        assert!(attr(&d, "0-0:128.20.2").contains(&"1"), "{d:?}");
        assert!(!format!("{d:?}").contains("30303030"));
    }
}

#[test]
fn published_key_id_2_message_is_refused_by_name() {
    let v = &PUBLISHED[0];
    let frame = v.message(v.ciphertext);
    let got = ami_ansi_c12::decode(
        &frame,
        AT,
        &mut keys("2.16.124.113620.1.22.0.23.2", v.key()),
    );
    assert!(
        matches!(&got, Err(DecodeError::Unsupported(m)) if m.contains("key id 2") && m.contains("key id 0")),
        "{got:?}"
    );
}

fn attr<'a>(d: &'a Decoded, o: &str) -> Vec<&'a str> {
    let o: Obis = o.parse().unwrap();
    d.attributes
        .iter()
        .filter(|(r, _)| *r == o)
        .map(|(_, v)| v.as_str())
        .collect()
}

/// The decode without the EPSEM control and called AP title attributes (the security mode
/// and the called title are what tell a secured frame from its twin).
fn without_control(d: &Decoded) -> Decoded {
    let skip: [Obis; 2] = [
        "0-0:128.22.4".parse().unwrap(),
        "0-0:128.22.1".parse().unwrap(),
    ];
    let mut d = d.clone();
    d.attributes.retain(|(o, _)| !skip.contains(o));
    d
}

/// ST 0, ST 1, ST 21 and ST 23 with two summations: readings 1-0:1.8.0 and friends.
fn tables() -> Vec<(u16, Vec<u8>)> {
    let st21 = vec![0x00, 0, 0, 2, 0, 0, 0, 1, 0, 0];
    let mut st23 = Vec::new();
    st23.extend(1_234_567i32.to_le_bytes());
    st23.extend(89i32.to_le_bytes());
    st23.extend(7_654i32.to_le_bytes());
    st23.extend(21i32.to_le_bytes());
    vec![
        (0, st0(1, 8, 1)),
        (1, st1("ACME", "A3", "SN000042")),
        (21, st21),
        (23, st23),
    ]
}

fn services(tables: &[(u16, Vec<u8>)]) -> Vec<Vec<u8>> {
    tables.iter().map(|(t, d)| write_full(*t, d)).collect()
}

fn seal(mode: u8, key_id: u8) -> Seal<'static> {
    Seal {
        mode,
        called_relative: &[9, 9],
        key_id,
        iv: [0x5F, 0x5E, 0x10, 0x00],
    }
}

/// A C12.22 message from `.1.2.3` (invocation 7) writing `tables()`, secured with `seal`
/// under `key`.
fn secured(seal: &Seal<'_>, key: [u8; 16]) -> Vec<u8> {
    let s = services(&tables());
    let refs: Vec<&[u8]> = s.iter().map(Vec::as_slice).collect();
    c1222::build_secured(&[1, 2, 3], 7, &refs, seal, |n, p| encrypt(&key, n, p)).unwrap()
}

#[test]
fn secured_frames_decode_like_their_clear_twin() {
    let twin = ami_ansi_c12::decode(&c1222_push(&tables()), AT, &mut NoKeys).unwrap();
    assert_eq!(twin.readings.len(), 4, "{twin:?}");
    for mode in [1, 2] {
        let frame = secured(&seal(mode, 0), KEY);
        let d = ami_ansi_c12::decode(&frame, AT, &mut keys(METER, KEY)).unwrap();
        assert_eq!(d.readings, twin.readings, "mode {mode}");
        assert_eq!(d.meter.as_deref(), Some("SN000042"));
        assert_eq!(without_control(&d), without_control(&twin), "mode {mode}");
        assert_eq!(
            attr(&d, "0-0:128.22.4"),
            [format!("{:02x}", 0x80 | (mode << 2))]
        );
        assert_eq!(attr(&d, "0-0:128.22.1"), [".9.9"]);
        // Mode 1 leaves the services readable on the wire, mode 2 does not.
        let serial = b"SN000042";
        let visible = frame.windows(serial.len()).any(|w| w == serial);
        assert_eq!(visible, mode == 1, "mode {mode}");
    }
}

#[test]
fn wrong_key_and_tampering_fail_authentication() {
    for mode in [1, 2] {
        let frame = secured(&seal(mode, 0), KEY);
        let got = ami_ansi_c12::decode(&frame, AT, &mut keys(METER, [0x33; 16]));
        assert!(
            matches!(&got, Err(DecodeError::Authentication(_))),
            "mode {mode}: {got:?}"
        );
        let n = frame.len();
        let apdu = c1222::apdu(&frame).unwrap();
        let invocation = frame
            .windows(5)
            .position(|w| w == [0xA8, 0x03, 0x02, 0x01, 7])
            .unwrap()
            + 4;
        let called = frame
            .windows(6)
            .position(|w| w == [0xA2, 0x04, 0x80, 0x02, 9, 9])
            .unwrap()
            + 5;
        let epsem_at = n - apdu.epsem.len();
        // The MAC, the protected EPSEM, and header elements the cleartext covers.
        for at in [n - 1, n - 4, n - 10, epsem_at + 1, invocation, called] {
            let mut tampered = frame.clone();
            tampered[at] ^= 0x01;
            let got = ami_ansi_c12::decode(&tampered, AT, &mut keys(METER, KEY));
            assert!(
                matches!(
                    &got,
                    Err(DecodeError::Authentication(_)) | Err(DecodeError::MissingKey(_))
                ),
                "mode {mode} @{at}: {got:?}"
            );
        }
        // A downgrade of the control byte to mode 0 is no longer authenticated, but then the
        // MAC and, in mode 2, the ciphertext are read as services: never the twin's values.
        let mut clear = frame.clone();
        clear[epsem_at] &= !0x0C;
        if let Ok(d) = ami_ansi_c12::decode(&clear, AT, &mut NoKeys) {
            assert!(mode == 1 || d.readings.is_empty(), "{d:?}");
        }
    }
}

#[test]
fn missing_key_names_the_meter() {
    let frame = secured(&seal(2, 0), KEY);
    for got in [
        ami_ansi_c12::decode(&frame, AT, &mut NoKeys),
        ami_ansi_c12::decode(&frame, AT, &mut keys(".1.2.4", KEY)),
    ] {
        assert!(
            matches!(&got, Err(DecodeError::MissingKey(m)) if m.contains(METER) && m.contains("ansi-c1222")),
            "{got:?}"
        );
    }
}

#[test]
fn other_key_ids_are_refused() {
    let frame = secured(&seal(2, 1), KEY);
    let got = ami_ansi_c12::decode(&frame, AT, &mut keys(METER, KEY));
    assert!(
        matches!(&got, Err(DecodeError::Unsupported(m)) if m.contains("key id 1") && m.contains("key id 0")),
        "{got:?}"
    );
}

/// A mode 2 message from `.1.2.3` whose calling authentication value is `auth` (`None`:
/// absent) and whose EPSEM after the control byte is `protected`.
fn hand_built(auth: Option<&str>, protected: &[u8]) -> Vec<u8> {
    let mut body = c1222::build_tlv(0xA6, &c1222::build_tlv(0x80, &[1, 2, 3]));
    body.extend(c1222::build_tlv(0xA8, &c1222::build_tlv(0x02, &[7])));
    if let Some(a) = auth {
        body.extend(h(a));
    }
    let mut ep = vec![0x88];
    ep.extend_from_slice(protected);
    body.extend(c1222::build_tlv(
        0xBE,
        &c1222::build_tlv(0x28, &c1222::build_tlv(0x81, &ep)),
    ));
    c1222::build_tlv(0x60, &body)
}

#[test]
fn truncated_or_malformed_security_elements_are_typed() {
    let good = "ac0fa20da00ba10980010081045f5e1000";
    let mut k = keys(METER, KEY);
    let mut decode = |f: &[u8]| ami_ansi_c12::decode(f, AT, &mut k);
    // Fewer than 4 bytes after the control byte: no room for the MAC.
    assert!(
        matches!(decode(&hand_built(Some(good), &[1, 2, 3])), Err(DecodeError::Truncated(m)) if m.contains("MAC"))
    );
    // An IV of 2 bytes.
    let short_iv = "ac0da20ba009a10780010081025f5e";
    assert!(
        matches!(decode(&hand_built(Some(short_iv), &[0; 8])), Err(DecodeError::Malformed(m)) if m.contains("IV of 2 bytes"))
    );
    // A key id of 2 bytes.
    let long_id = "ac10a20ea00ca10a8002000081045f5e1000";
    assert!(matches!(
        decode(&hand_built(Some(long_id), &[0; 8])),
        Err(DecodeError::Malformed(_))
    ));
    // The inner elements claim more than the authentication value holds.
    let cut = "ac08a20da00ba1098001";
    assert!(
        matches!(
            decode(&hand_built(Some(cut), &[0; 8])),
            Err(DecodeError::Truncated(_))
        ),
        "{:?}",
        decode(&hand_built(Some(cut), &[0; 8]))
    );
    // No IV element: given earlier in the session.
    let no_iv = "ac09a207a005a103800100";
    assert!(matches!(
        decode(&hand_built(Some(no_iv), &[0; 8])),
        Err(DecodeError::Unsupported(_))
    ));
    // No calling authentication value at all.
    assert!(
        matches!(decode(&hand_built(None, &[0; 8])), Err(DecodeError::Unsupported(m)) if m.contains("EAX"))
    );
    // The C12.21 form of the authentication value is not EPSEM security.
    let c1221 = "ac08a206a004a0028000";
    assert!(matches!(
        decode(&hand_built(Some(c1221), &[0; 8])),
        Err(DecodeError::Unsupported(_))
    ));
    // The good element with a wrong MAC: an authentication failure, not a parse error.
    assert!(matches!(
        decode(&hand_built(Some(good), &[0; 8])),
        Err(DecodeError::Authentication(_))
    ));
}
