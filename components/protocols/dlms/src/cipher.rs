//! Security suite 0 (AES-128-GCM, IEC 62056-5-3 5.3.4): security control byte, system title,
//! invocation counter, and the decryption of ciphered APDUs against keys the decoder only
//! names.
//!
//! The IV is `system title ‖ invocation counter`. With authentication, GCM's additional
//! data is `SC ‖ AK` (encrypted and authenticated) or `SC ‖ AK ‖ plaintext` (authenticated
//! only), and the tag is 12 bytes. The decoder never holds the authentication key AK, so it
//! cannot build that AAD: [`Crypto::dlms_decrypt`] does, in the key holder (the plugin
//! host), given the key references (EK: `DlmsUnicast`, or `DlmsBroadcast` when the security
//! control says so; AK: `DlmsAuthentication`, both under the system title as lower-case
//! hex).
//!
//! The dedicated-key forms (ded-get-request ... ded-action-response `D0`-`D7`, and
//! general-ded-ciphering `DC`, which carries the system title) decrypt the same way with the
//! association's dedicated key (`DlmsDedicated`, agreed in the ciphered InitiateRequest and
//! stored by the client that set the association up); the AK stays `DlmsAuthentication`.

use ami_domain::DecodeError;
use ami_domain::crypto::{Crypto, CryptoError, KeyRef, KeyRole};

use crate::apdu::{Ciphered, KeyKind};

/// Security control: authentication.
pub const SC_AUTHENTICATED: u8 = 0x10;
/// Security control: encryption.
pub const SC_ENCRYPTED: u8 = 0x20;
/// Security control: broadcast key.
pub const SC_BROADCAST: u8 = 0x40;
/// Security control: compression.
pub const SC_COMPRESSED: u8 = 0x80;
/// Length of the GCM tag of suite 0.
pub const TAG_LEN: usize = 12;

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// The system title as the key store names meters: lower-case hex.
pub fn system_title_hex(system_title: &[u8]) -> String {
    hex(system_title)
}

fn crypto_error(e: CryptoError, meter: &str) -> DecodeError {
    match e {
        CryptoError::NoKey { role, .. } => {
            DecodeError::MissingKey(format!("{} key of system title {meter}", role.name()))
        }
        CryptoError::AuthenticationFailed => DecodeError::Authentication(format!(
            "GCM tag of system title {meter} does not verify (wrong key or tampered frame)"
        )),
        CryptoError::UnknownHandle(h) => DecodeError::Unsupported(format!("derived key {h}")),
        CryptoError::InvalidInput(m) => DecodeError::Unsupported(m),
    }
}

/// Decrypts (and verifies) a ciphered APDU; `system_title` is the sender's when the APDU
/// does not carry it (service-specific ciphering: the AARE's responding AP title).
pub fn decrypt(
    c: &Ciphered<'_>,
    system_title: Option<&[u8]>,
    crypto: &mut dyn Crypto,
) -> Result<Vec<u8>, DecodeError> {
    let sc = c.security_control;
    let suite = sc & 0x0F;
    if suite != 0 {
        return Err(DecodeError::Unsupported(format!("security suite {suite}")));
    }
    if sc & SC_COMPRESSED != 0 {
        return Err(DecodeError::Unsupported("compressed ciphered APDU".into()));
    }
    let st = c.system_title.or(system_title).ok_or_else(|| {
        DecodeError::MissingKey(format!(
            "ciphered APDU 0x{:02X} carries no system title: give the meter's as the meter hint",
            c.tag
        ))
    })?;
    if st.len() != 8 {
        return Err(DecodeError::Malformed(format!(
            "system title of {} bytes (8 expected)",
            st.len()
        )));
    }
    let meter = system_title_hex(st);
    let role = match c.key {
        // A dedicated key belongs to one association: there is no broadcast form of it.
        KeyKind::Dedicated => KeyRole::DlmsDedicated,
        KeyKind::Global if sc & SC_BROADCAST != 0 => KeyRole::DlmsBroadcast,
        KeyKind::Global => KeyRole::DlmsUnicast,
    };
    let ek = KeyRef::Stored {
        meter: &meter,
        role,
    };
    let ak = KeyRef::Stored {
        meter: &meter,
        role: KeyRole::DlmsAuthentication,
    };
    let mut iv = [0u8; 12];
    iv[..8].copy_from_slice(st);
    iv[8..].copy_from_slice(&c.invocation_counter.to_be_bytes());
    let authenticated = sc & SC_AUTHENTICATED != 0;
    let (data, tag) = if authenticated {
        let n = c.protected.len().checked_sub(TAG_LEN).ok_or_else(|| {
            DecodeError::Truncated(format!(
                "ciphered APDU of {} bytes has no {TAG_LEN}-byte tag",
                c.protected.len()
            ))
        })?;
        c.protected.split_at(n)
    } else {
        (c.protected, &[][..])
    };
    crypto
        .dlms_decrypt(ek, authenticated.then_some(ak), sc, &iv, data, tag)
        .map_err(|e| crypto_error(e, &meter))
}
