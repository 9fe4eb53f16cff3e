//! Security suite 0 on the client side (IEC 62056-5-3 5.3.4; AES-128-GCM, 12-byte tags):
//! the service-specific glo-ciphering of requests and the deciphering of answers with the
//! global unicast key, the invocation counters of both sides, and the GMAC of HLS
//! (authentication mechanism 5).
//!
//! The IV is `system title ‖ invocation counter`; with authentication the additional data is
//! `SC ‖ AK` (and the plaintext when it is not encrypted). Our counter goes up by one for
//! every APDU we cipher; the meter's must go up too, or its answer is refused as a replay.

use aes_gcm::aead::consts::U12;
use aes_gcm::aead::{AeadInPlace, KeyInit};
use aes_gcm::aes::Aes128;
use aes_gcm::{AesGcm, Nonce, Tag};

use crate::error::ClientError;

type Gcm = AesGcm<Aes128, U12, U12>;

/// Security control: authentication.
pub const SC_AUTHENTICATED: u8 = 0x10;
/// Security control: encryption.
pub const SC_ENCRYPTED: u8 = 0x20;
/// The GCM tag length of suite 0.
pub const TAG_LEN: usize = 12;

/// Which protection the client applies to its xDLMS APDUs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Protection {
    /// Plain APDUs.
    #[default]
    None,
    /// Authenticated only (SC 0x10).
    Authenticated,
    /// Encrypted only (SC 0x20).
    Encrypted,
    /// Authenticated and encrypted (SC 0x30).
    AuthenticatedEncrypted,
}

impl Protection {
    /// The security control byte (suite 0).
    pub const fn security_control(self) -> u8 {
        match self {
            Protection::None => 0,
            Protection::Authenticated => SC_AUTHENTICATED,
            Protection::Encrypted => SC_ENCRYPTED,
            Protection::AuthenticatedEncrypted => SC_AUTHENTICATED | SC_ENCRYPTED,
        }
    }
}

/// The keys and counters of a ciphered association.
#[derive(Clone)]
pub struct Keys {
    /// The client's system title.
    pub system_title: [u8; 8],
    /// Global unicast encryption key (EK).
    pub encryption: [u8; 16],
    /// Authentication key (AK).
    pub authentication: [u8; 16],
    /// The next invocation counter we use.
    pub invocation_counter: u32,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keys")
            .field("system_title", &hex::encode(self.system_title))
            .field("invocation_counter", &self.invocation_counter)
            .finish_non_exhaustive()
    }
}

fn iv(system_title: &[u8; 8], ic: u32) -> [u8; 12] {
    let mut iv = [0u8; 12];
    iv[..8].copy_from_slice(system_title);
    iv[8..].copy_from_slice(&ic.to_be_bytes());
    iv
}

/// Protects `plaintext` under security control `sc`; returns `SC ‖ IC ‖ ciphertext ‖ tag`.
pub fn protect(
    keys: &Keys,
    system_title: &[u8; 8],
    sc: u8,
    ic: u32,
    plaintext: &[u8],
) -> Result<Vec<u8>, ClientError> {
    let gcm = Gcm::new_from_slice(&keys.encryption)
        .map_err(|e| ClientError::Config(format!("encryption key: {e}")))?;
    let nonce = iv(system_title, ic);
    let mut aad = vec![sc];
    aad.extend_from_slice(&keys.authentication);
    let mut out = vec![sc];
    out.extend_from_slice(&ic.to_be_bytes());
    match (sc & SC_AUTHENTICATED != 0, sc & SC_ENCRYPTED != 0) {
        (true, true) => {
            let mut buf = plaintext.to_vec();
            let tag = gcm
                .encrypt_in_place_detached(Nonce::from_slice(&nonce), &aad, &mut buf)
                .map_err(|_| ClientError::Cipher("AES-GCM encryption failed".into()))?;
            out.extend_from_slice(&buf);
            out.extend_from_slice(&tag);
        }
        (true, false) => {
            aad.extend_from_slice(plaintext);
            let tag = gcm
                .encrypt_in_place_detached(Nonce::from_slice(&nonce), &aad, &mut [])
                .map_err(|_| ClientError::Cipher("AES-GCM tag failed".into()))?;
            out.extend_from_slice(plaintext);
            out.extend_from_slice(&tag);
        }
        (false, true) => {
            let mut buf = plaintext.to_vec();
            // Encryption only: GCM's keystream, the tag not sent.
            gcm.encrypt_in_place_detached(Nonce::from_slice(&nonce), &[], &mut buf)
                .map_err(|_| ClientError::Cipher("AES-GCM encryption failed".into()))?;
            out.extend_from_slice(&buf);
        }
        (false, false) => out.extend_from_slice(plaintext),
    }
    Ok(out)
}

/// Deciphers `SC ‖ IC ‖ data [‖ tag]` sent by the meter with system title `system_title`;
/// returns the invocation counter and the plaintext.
pub fn unprotect(
    keys: &Keys,
    system_title: &[u8; 8],
    content: &[u8],
) -> Result<(u32, Vec<u8>), ClientError> {
    let (&sc, rest) = content
        .split_first()
        .ok_or_else(|| ClientError::Cipher("empty ciphered content".into()))?;
    if sc & 0x0F != 0 {
        return Err(ClientError::Cipher(format!(
            "security suite {} (only suite 0)",
            sc & 0x0F
        )));
    }
    if sc & 0xC0 != 0 {
        return Err(ClientError::Cipher(format!(
            "security control 0x{sc:02x}: broadcast key or compression not supported"
        )));
    }
    if rest.len() < 4 {
        return Err(ClientError::Cipher(
            "ciphered content without an invocation counter".into(),
        ));
    }
    let (ic_bytes, data) = rest.split_at(4);
    let ic = u32::from_be_bytes([ic_bytes[0], ic_bytes[1], ic_bytes[2], ic_bytes[3]]);
    let gcm = Gcm::new_from_slice(&keys.encryption)
        .map_err(|e| ClientError::Config(format!("encryption key: {e}")))?;
    let nonce = iv(system_title, ic);
    let mut aad = vec![sc];
    aad.extend_from_slice(&keys.authentication);
    let authenticated = sc & SC_AUTHENTICATED != 0;
    let (body, tag) = if authenticated {
        let n = data.len().checked_sub(TAG_LEN).ok_or_else(|| {
            ClientError::Cipher(format!(
                "ciphered APDU of {} bytes has no {TAG_LEN}-byte tag",
                data.len()
            ))
        })?;
        data.split_at(n)
    } else {
        (data, &[][..])
    };
    let bad = || {
        ClientError::Cipher(format!(
            "GCM tag of the meter's APDU (invocation counter {ic}) does not verify: wrong keys or tampered answer"
        ))
    };
    let mut buf = body.to_vec();
    match (authenticated, sc & SC_ENCRYPTED != 0) {
        (true, true) => gcm
            .decrypt_in_place_detached(
                Nonce::from_slice(&nonce),
                &aad,
                &mut buf,
                Tag::from_slice(tag),
            )
            .map_err(|_| bad())?,
        (true, false) => {
            aad.extend_from_slice(body);
            gcm.decrypt_in_place_detached(
                Nonce::from_slice(&nonce),
                &aad,
                &mut [],
                Tag::from_slice(tag),
            )
            .map_err(|_| bad())?;
        }
        (false, true) => {
            // No tag to check: run the keystream back by encrypting again (CTR is symmetric).
            gcm.encrypt_in_place_detached(Nonce::from_slice(&nonce), &[], &mut buf)
                .map_err(|_| bad())?;
        }
        (false, false) => {}
    }
    Ok((ic, buf))
}

/// The HLS-GMAC answer to a challenge: `SC(0x10) ‖ IC ‖ GMAC(SC ‖ AK ‖ challenge)`, with the
/// IV of `system_title` and `ic`.
pub fn gmac(
    keys: &Keys,
    system_title: &[u8; 8],
    ic: u32,
    challenge: &[u8],
) -> Result<Vec<u8>, ClientError> {
    protect(keys, system_title, SC_AUTHENTICATED, ic, challenge).map(|mut v| {
        // `protect` with authentication only carries the plaintext: HLS sends only the tag.
        let tag_at = v.len() - TAG_LEN;
        let tag = v.split_off(tag_at);
        v.truncate(5);
        v.extend_from_slice(&tag);
        v
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> Keys {
        Keys {
            system_title: *b"AMICLIEN",
            encryption: [1; 16],
            authentication: [2; 16],
            invocation_counter: 1,
        }
    }

    #[test]
    fn protect_and_unprotect_are_inverse_and_detect_tampering() -> Result<(), ClientError> {
        let k = keys();
        for sc in [0x10, 0x20, 0x30] {
            let c = protect(&k, b"METER001", sc, 7, b"hello meter")?;
            let (ic, p) = unprotect(&k, b"METER001", &c)?;
            assert_eq!((ic, p.as_slice()), (7, &b"hello meter"[..]));
            if sc & 0x10 != 0 {
                let mut bad = c.clone();
                if let Some(b) = bad.get_mut(6) {
                    *b ^= 1;
                }
                assert!(matches!(
                    unprotect(&k, b"METER001", &bad),
                    Err(ClientError::Cipher(_))
                ));
            }
        }
        assert!(unprotect(&k, b"METER001", &[0x30, 0, 0]).is_err());
        assert!(unprotect(&k, b"METER001", &[]).is_err());
        assert!(unprotect(&k, b"METER001", &[0x31, 0, 0, 0, 1]).is_err());
        Ok(())
    }

    #[test]
    fn gmac_is_sc_ic_and_a_twelve_byte_tag() -> Result<(), ClientError> {
        let g = gmac(&keys(), b"AMICLIEN", 5, b"challenge")?;
        assert_eq!(g.len(), 17);
        assert_eq!(&g[..5], &[0x10, 0, 0, 0, 5]);
        Ok(())
    }
}
