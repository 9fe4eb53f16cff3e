//! A hostile decoder for the sandbox tests. The first byte of each frame says what to do:
//!
//! - `L`: loop forever (the host's time bound must stop it);
//! - `M`: allocate memory until something gives (the host's memory cap must stop it);
//! - `P`: panic (the host must report the panic message);
//! - `S` + u32 little-endian: spin that many rounds, then answer (a slow but honest call);
//! - `E`: return no results at all (a malformed result: the count does not match);
//! - `C` + 12-byte IV + 12-byte tag + ciphertext: AES-GCM decrypt through the host's crypto
//!   interface with the key of meter `hostile`, role DLMS unicast; the plaintext comes back as
//!   the text attribute `0-0:96.13.0*255` (the key itself never enters the plugin);
//! - `K` + meter name: try to get hold of that meter's keys: call every function of the crypto
//!   interfaces (`crypto` and `crypto-ext`) with every key role of the meter, with inputs chosen to make a key show (zero
//!   blocks, zero IVs, keys derived from them and used again), and answer everything that came
//!   back, as hex text attributes `0-0:96.13.n*255` (successes) and `0-0:96.14.n*255` (errors),
//!   so the test can check that none of it holds key bytes;
//! - anything else: answer honestly with one reading, `1-0:1.8.0` = frame length in Wh.

#![allow(clippy::panic)]

use ami_plugin_sdk::crypto::{self, CryptoError, Kdf, KeyRef, KeyRole, StoredKey};
use ami_plugin_sdk::crypto_ext::{self as ext, ExtError};
use ami_plugin_sdk::decoder::exports::ami::plugin::decode::{DecodeError, Decoded, Frame, Guest};
use ami_plugin_sdk::domain::{Obis, Quality, Quantity, Reading, Unit};

struct Hostile;

fn honest(f: &Frame) -> Decoded {
    ami_plugin_sdk::convert::decoded(ami_plugin_sdk::domain::Decoded {
        meter: Some("hostile".into()),
        readings: vec![Reading {
            register: Obis::new(1, 0, 1, 8, 0, 255),
            value: Quantity::new(f.data.len() as i64, 0),
            unit: Unit::WattHour,
            ts_ms: f.received_at,
            quality: Quality::TIME_FROM_RECEIVER,
        }],
        ..Default::default()
    })
}

fn decrypt(f: &Frame) -> Result<Decoded, DecodeError> {
    let body = f.data.get(1..).unwrap_or_default();
    if body.len() < 24 {
        return Err(DecodeError::Truncated(format!(
            "{} bytes, need IV and tag",
            body.len()
        )));
    }
    let (iv, rest) = body.split_at(12);
    let (tag, ciphertext) = rest.split_at(12);
    let key = KeyRef::Stored(StoredKey {
        meter: "hostile".into(),
        role: KeyRole::DlmsUnicast,
    });
    match crypto::aes_gcm_decrypt(&key, iv, &[], ciphertext, tag) {
        Ok(plain) => Ok(ami_plugin_sdk::convert::decoded(
            ami_plugin_sdk::domain::Decoded {
                meter: Some("hostile".into()),
                attributes: vec![(
                    Obis::new(0, 0, 96, 13, 0, 255),
                    String::from_utf8_lossy(&plain).into_owned(),
                )],
                ..Default::default()
            },
        )),
        Err(CryptoError::AuthenticationFailed) => Err(DecodeError::Authentication(
            "gcm tag does not verify".into(),
        )),
        Err(CryptoError::NoKey(k)) => {
            Err(DecodeError::MissingKey(format!("no key for {}", k.meter)))
        }
        Err(e) => Err(DecodeError::Malformed(format!("{e:?}"))),
    }
}

/// Every role the crypto interface knows.
const ROLES: [KeyRole; 6] = [
    KeyRole::DlmsUnicast,
    KeyRole::DlmsBroadcast,
    KeyRole::DlmsAuthentication,
    KeyRole::DlmsMaster,
    KeyRole::Mbus,
    KeyRole::OsgpOmak,
];

/// What one attempt on a key gave back: bytes, or an error.
type Haul = Vec<Result<Vec<u8>, CryptoError>>;

/// Every function of the crypto interface, aimed at one key.
fn attempts(key: &KeyRef, auth: &KeyRef, haul: &mut Haul) {
    let zeros = [0u8; 64];
    let iv12 = [0u8; 12];
    let iv16 = [0u8; 16];
    haul.push(crypto::aes_gcm_decrypt(
        key,
        &iv12,
        &[],
        &zeros[..32],
        &zeros[..16],
    ));
    haul.push(crypto::aes_gcm_decrypt(
        key,
        &iv12,
        &zeros[..16],
        &[],
        &zeros[..12],
    ));
    // Encryption only: no tag to verify, so the plaintext is the key stream itself.
    haul.push(crypto::dlms_decrypt(key, None, 0x20, &iv12, &zeros, &[]));
    haul.push(crypto::dlms_decrypt(
        key,
        Some(auth),
        0x30,
        &iv12,
        &zeros,
        &zeros[..12],
    ));
    haul.push(crypto::dlms_decrypt(
        key,
        Some(auth),
        0x10,
        &iv12,
        &zeros,
        &zeros[..12],
    ));
    haul.push(crypto::aes_gmac_verify(key, &iv12, &zeros, &zeros[..16]).map(|()| Vec::new()));
    haul.push(crypto::aes_cbc_decrypt(key, &iv16, &zeros));
    haul.push(crypto::aes_ctr_apply(key, &iv16, &zeros));
    haul.push(crypto::aes_cmac_verify(key, &zeros, &zeros[..16]).map(|()| Vec::new()));
    for kdf in [Kdf::AesEcb, Kdf::OmsCmac] {
        match crypto::derive_key(key, kdf, &zeros[..16]) {
            Ok(h) => {
                haul.push(Ok(h.to_le_bytes().to_vec()));
                let derived = KeyRef::Derived(h);
                haul.push(crypto::aes_cbc_decrypt(&derived, &iv16, &zeros));
                haul.push(crypto::aes_ctr_apply(&derived, &iv16, &zeros));
                haul.push(crypto::dlms_decrypt(
                    &derived,
                    None,
                    0x20,
                    &iv12,
                    &zeros,
                    &[],
                ));
            }
            Err(e) => haul.push(Err(e)),
        }
    }
}

/// An error of `crypto-ext` as one of `crypto`, for the haul.
fn flat(e: ExtError) -> CryptoError {
    match e {
        ExtError::Crypto(e) => e,
        ExtError::NoKey(k) => CryptoError::InvalidInput(format!("no {:?} key", k.role)),
    }
}

/// Every function of `crypto-ext`, aimed at the meter's keys of every role it names.
fn ext_attempts(meter: &str, auth: &KeyRef, haul: &mut Haul) {
    let zeros = [0u8; 64];
    let iv12 = [0u8; 12];
    for role in [ext::KeyRole::DlmsDedicated, ext::KeyRole::AnsiC1222] {
        let key = ext::StoredKey {
            meter: meter.to_owned(),
            role,
        };
        // Encryption only: the key stream again.
        haul.push(ext::dlms_decrypt_dedicated(&key, None, 0x20, &iv12, &zeros, &[]).map_err(flat));
        haul.push(
            ext::dlms_decrypt_dedicated(&key, Some(auth), 0x30, &iv12, &zeros, &zeros[..12])
                .map_err(flat),
        );
        haul.push(ext::eax_prime_decrypt(&key, &zeros[..16], &zeros, &zeros[..4]).map_err(flat));
        haul.push(ext::eax_prime_decrypt(&key, &zeros, &[], &zeros[..4]).map_err(flat));
    }
}

fn steal(f: &Frame) -> Decoded {
    let meter = String::from_utf8_lossy(f.data.get(1..).unwrap_or_default()).into_owned();
    let stored = |role| {
        KeyRef::Stored(StoredKey {
            meter: meter.clone(),
            role,
        })
    };
    let mut haul = Haul::new();
    for role in ROLES {
        attempts(
            &stored(role),
            &stored(KeyRole::DlmsAuthentication),
            &mut haul,
        );
    }
    ext_attempts(&meter, &stored(KeyRole::DlmsAuthentication), &mut haul);
    let mut attributes = Vec::new();
    for (i, got) in haul.iter().enumerate() {
        let n = u8::try_from(i).unwrap_or(u8::MAX);
        attributes.push(match got {
            Ok(bytes) => (
                Obis::new(0, 0, 96, 13, n, 255),
                bytes.iter().map(|b| format!("{b:02x}")).collect(),
            ),
            Err(e) => (Obis::new(0, 0, 96, 14, n, 255), format!("{e:?}")),
        });
    }
    ami_plugin_sdk::convert::decoded(ami_plugin_sdk::domain::Decoded {
        meter: Some(meter),
        attributes,
        ..Default::default()
    })
}

impl Guest for Hostile {
    fn decode(frames: Vec<Frame>) -> Vec<Result<Decoded, DecodeError>> {
        let mut out = Vec::with_capacity(frames.len());
        for f in &frames {
            match f.data.first() {
                Some(b'L') => {
                    let mut x = 0u64;
                    loop {
                        x = std::hint::black_box(x.wrapping_add(1));
                    }
                }
                Some(b'M') => {
                    let mut hoard: Vec<Vec<u8>> = Vec::new();
                    loop {
                        hoard.push(vec![0xA5; 1 << 20]);
                        std::hint::black_box(&hoard);
                    }
                }
                Some(b'P') => panic!("hostile decoder asked to panic"),
                Some(b'S') => {
                    let rounds = f
                        .data
                        .get(1..5)
                        .and_then(|b| b.try_into().ok())
                        .map(u32::from_le_bytes)
                        .unwrap_or(0);
                    let mut x = 0u64;
                    for i in 0..rounds {
                        x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(u64::from(i)));
                    }
                    out.push(Ok(honest(f)));
                }
                Some(b'E') => return Vec::new(),
                Some(b'C') => out.push(decrypt(f)),
                Some(b'K') => out.push(Ok(steal(f))),
                _ => out.push(Ok(honest(f))),
            }
        }
        out
    }
}

ami_plugin_sdk::decoder::export_decoder_world!(Hostile);
