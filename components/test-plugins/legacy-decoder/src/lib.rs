//! A decoder built straight against the archived `ami:plugin@0.1.0` WIT (`wit/archive/0.1.0`),
//! without the SDK, as a vendor's plugin of that version was. A 0.1.1 host must load it and
//! serve its `crypto` import.
//!
//! Each frame is `K` followed by AES-128-GCM data for meter `legacy` (12-byte IV, 16-byte tag
//! last; the key is the store's `dlms-unicast` key of `legacy`): the plaintext's length becomes
//! one reading of `0-0:96.99.0`. Any other frame gives one reading of its own length.

#![allow(missing_docs)]
// The generated bindings are the canonical ABI glue: exported symbols and raw pointers.
#![allow(unsafe_code)]

wit_bindgen::generate!({
    world: "decoder",
    path: "../../../wit/archive/0.1.0",
});

use ami::plugin::crypto::{self, CryptoError, KeyRef, KeyRole, StoredKey};
use ami::plugin::types::{Obis, Quality, Quantity, Reading, Unit};
use exports::ami::plugin::decode::{DecodeError, Decoded, Frame, Guest};

struct Legacy;

fn reading(value: usize, ts: i64) -> Reading {
    Reading {
        register: Obis {
            a: 0,
            b: 0,
            c: 96,
            d: 99,
            e: 0,
            f: 255,
        },
        value: Quantity {
            mantissa: i64::try_from(value).unwrap_or(i64::MAX),
            scale: 0,
        },
        unit: Unit::Count,
        ts,
        quality: Quality::empty(),
    }
}

fn decode_one(frame: &Frame) -> Result<Decoded, DecodeError> {
    let length = match frame.data.split_first() {
        Some((b'K', rest)) if rest.len() >= 28 => {
            let (iv, rest) = rest.split_at(12);
            let (ciphertext, tag) = rest.split_at(rest.len() - 16);
            let key = KeyRef::Stored(StoredKey {
                meter: "legacy".into(),
                role: KeyRole::DlmsUnicast,
            });
            crypto::aes_gcm_decrypt(&key, iv, &[], ciphertext, tag)
                .map_err(|e| match e {
                    CryptoError::AuthenticationFailed => {
                        DecodeError::Authentication("tag does not verify".into())
                    }
                    CryptoError::NoKey(k) => DecodeError::MissingKey(k.meter),
                    other => DecodeError::Malformed(format!("{other:?}")),
                })?
                .len()
        }
        Some((b'K', _)) => return Err(DecodeError::Truncated("K frame under 29 bytes".into())),
        _ => frame.data.len(),
    };
    Ok(Decoded {
        meter: Some("legacy".into()),
        readings: vec![reading(length, frame.received_at)],
        events: Vec::new(),
        attributes: Vec::new(),
    })
}

impl Guest for Legacy {
    fn decode(frames: Vec<Frame>) -> Vec<Result<Decoded, DecodeError>> {
        frames.iter().map(decode_one).collect()
    }
}

export!(Legacy);
