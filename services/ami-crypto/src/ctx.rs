//! [`CryptoCtx`]: one call's cryptography against the key store. Keys derived during the call
//! live here and are wiped when the call ends ([`CryptoCtx::reset`]).

use aes::Aes128;
use aes::cipher::{
    BlockDecryptMut, BlockEncrypt, KeyInit, KeyIvInit, StreamCipher, block_padding::NoPadding,
};
use aes_gcm::aead::consts::{U12, U16};
use aes_gcm::{AeadInPlace, AesGcm, Nonce, Tag};
use cmac::{Cmac, Mac};
use std::sync::Arc;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use ami_domain::crypto::{Crypto, CryptoError, Kdf, KeyRef, KeyRole};

use crate::budget::{FailureBudget, SHORT_TAG_FAILURES_PER_MINUTE, SHORT_TAG_LEN, SharedBudget};
use crate::keystore::{Key, KeyStore};

/// Roles that decrypt DLMS APDUs: the global keys, and the dedicated key of an association
/// (ded- and general-ded-ciphering), which serves the same operations as the unicast key.
const DLMS_ENCRYPTION: &[KeyRole] = &[
    KeyRole::DlmsUnicast,
    KeyRole::DlmsBroadcast,
    KeyRole::DlmsDedicated,
];
/// Roles of M-Bus / OMS keys.
const MBUS: &[KeyRole] = &[KeyRole::Mbus];
/// Roles that may decrypt AES-128-GCM: the DLMS encryption keys, and the OSGP pre-shared key
/// (OSGP-AES-128-PSK, see `ami-ansi-c12`'s `osgp` module).
const GCM: &[KeyRole] = &[
    KeyRole::DlmsUnicast,
    KeyRole::DlmsBroadcast,
    KeyRole::DlmsDedicated,
    KeyRole::OsgpOmak,
];
/// Roles that may serve EAX': only the ANSI C12.22 key, and that key serves nothing else.
const EAX_PRIME: &[KeyRole] = &[KeyRole::AnsiC1222];

/// The most keys one call may derive (a bound on a plugin's use of host memory).
pub const MAX_DERIVED_KEYS: usize = 64;
/// The largest input one crypto call accepts (a frame is far smaller).
pub const MAX_CRYPTO_INPUT: usize = 1 << 20;

/// Per-call cryptographic state: the key store and the keys derived in this call, and (kept
/// across calls, shared by every instance of a plugin) the budget of failed short-tag
/// verifications.
pub struct CryptoCtx {
    keys: Arc<dyn KeyStore>,
    derived: Vec<Key>,
    short_tag_failures: SharedBudget,
    /// How many operations the plugin asked for in this call (for metrics).
    pub operations: u64,
}

impl CryptoCtx {
    /// A context over a key store.
    pub fn new(keys: Arc<dyn KeyStore>) -> Self {
        Self::with_budget(keys, SHORT_TAG_FAILURES_PER_MINUTE)
    }

    /// A context allowing `per_minute` failed short-tag verifications.
    pub fn with_budget(keys: Arc<dyn KeyStore>, per_minute: u32) -> Self {
        Self::with_shared_budget(keys, FailureBudget::shared(per_minute))
    }

    /// A context spending `budget`, which other contexts (the other instances of the same
    /// plugin, the ones that replace a discarded instance) share.
    pub fn with_shared_budget(keys: Arc<dyn KeyStore>, budget: SharedBudget) -> Self {
        Self {
            keys,
            derived: Vec::new(),
            short_tag_failures: budget,
            operations: 0,
        }
    }

    /// Runs the verification `verify` of a `tag_len`-byte tag: a short tag is refused while
    /// the failure budget is spent, and a failure of one spends it.
    fn rationed<T>(
        &mut self,
        tag_len: usize,
        verify: impl FnOnce(&mut Self) -> Result<T, CryptoError>,
    ) -> Result<T, CryptoError> {
        if tag_len >= SHORT_TAG_LEN {
            return verify(self);
        }
        let now = std::time::Instant::now();
        let budget = Arc::clone(&self.short_tag_failures);
        let lock = || {
            budget
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
        };
        if lock().exhausted(now) {
            return Err(invalid(format!(
                "more than {SHORT_TAG_FAILURES_PER_MINUTE} failed verifications of tags under {SHORT_TAG_LEN} bytes in a minute; refused until the budget refills (a guard against tag guessing)"
            )));
        }
        let out = verify(self);
        if matches!(out, Err(CryptoError::AuthenticationFailed)) {
            lock().spend(now);
        }
        out
    }

    /// Forgets the keys derived so far (called between calls).
    pub fn reset(&mut self) {
        self.derived.clear();
    }

    /// The key named by `key`, if its role may serve `operation`: a plugin can never turn a
    /// stored key into a raw AES oracle of another protocol (CTR on a DLMS key would expose
    /// GCM's hash key; CBC on the DLMS master key would unwrap other keys).
    fn resolve(
        &mut self,
        key: KeyRef<'_>,
        operation: &str,
        allowed: &[KeyRole],
    ) -> Result<Key, CryptoError> {
        self.operations += 1;
        if let KeyRef::Stored { role, .. } = key
            && !allowed.contains(&role)
        {
            return Err(invalid(format!(
                "a {role:?} key may not be used for {operation}"
            )));
        }
        match key {
            KeyRef::Stored { meter, role } => {
                self.keys
                    .key(meter, role)
                    .ok_or_else(|| CryptoError::NoKey {
                        meter: meter.to_owned(),
                        role,
                    })
            }
            KeyRef::Derived(handle) => usize::try_from(handle)
                .ok()
                .and_then(|i| self.derived.get(i))
                .cloned()
                .ok_or(CryptoError::UnknownHandle(handle)),
        }
    }

    /// AES-128-CTR with a key whose role is in `allowed`.
    fn ctr(
        &mut self,
        key: KeyRef<'_>,
        operation: &str,
        allowed: &[KeyRole],
        iv: &[u8],
        data: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        check_len(data.len())?;
        if iv.len() != 16 {
            return Err(invalid(format!(
                "ctr iv must be 16 bytes, got {}",
                iv.len()
            )));
        }
        let k = self.resolve(key, operation, allowed)?;
        let mut buf = data.to_vec();
        ctr::Ctr128BE::<Aes128>::new(k.as_ref().into(), iv.into()).apply_keystream(&mut buf);
        Ok(buf)
    }
}

impl Crypto for CryptoCtx {
    fn aes_gcm_decrypt(
        &mut self,
        key: KeyRef<'_>,
        iv: &[u8],
        aad: &[u8],
        ciphertext: &[u8],
        tag: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        check_len(aad.len() + ciphertext.len())?;
        if iv.len() != 12 {
            return Err(invalid(format!(
                "gcm iv must be 12 bytes, got {}",
                iv.len()
            )));
        }
        let k = self.resolve(key, "aes-gcm", GCM)?;
        let mut buf = ciphertext.to_vec();
        let nonce = Nonce::from_slice(iv);
        let ok = match tag.len() {
            12 => AesGcm::<Aes128, U12, U12>::new(k.as_ref().into()).decrypt_in_place_detached(
                nonce,
                aad,
                &mut buf,
                Tag::<U12>::from_slice(tag),
            ),
            16 => AesGcm::<Aes128, U12, U16>::new(k.as_ref().into()).decrypt_in_place_detached(
                nonce,
                aad,
                &mut buf,
                Tag::<U16>::from_slice(tag),
            ),
            n => return Err(invalid(format!("gcm tag must be 12 or 16 bytes, got {n}"))),
        };
        match ok {
            Ok(()) => Ok(buf),
            Err(_) => Err(CryptoError::AuthenticationFailed),
        }
    }

    /// DLMS suite 0: AAD = SC ‖ AK (‖ data when only authenticated); encryption only is the
    /// GCM keystream without a tag (counter block IV ‖ 00000002, as GCM's first data block).
    fn dlms_decrypt(
        &mut self,
        encryption: KeyRef<'_>,
        authentication: Option<KeyRef<'_>>,
        security_control: u8,
        iv: &[u8],
        data: &[u8],
        tag: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        check_len(data.len())?;
        let authenticated = security_control & 0x10 != 0;
        let encrypted = security_control & 0x20 != 0;
        let ak = match (authenticated, authentication) {
            (true, Some(k)) => {
                Some(self.resolve(k, "dlms authentication", &[KeyRole::DlmsAuthentication])?)
            }
            (true, None) => {
                return Err(invalid(
                    "authenticated DLMS APDU without an authentication key reference".into(),
                ));
            }
            (false, _) => None,
        };
        let mut aad = Zeroizing::new(Vec::with_capacity(
            17 + if encrypted { 0 } else { data.len() },
        ));
        aad.push(security_control);
        if let Some(ak) = &ak {
            aad.extend_from_slice(ak.as_ref());
        }
        match (authenticated, encrypted) {
            (true, true) => self.aes_gcm_decrypt(encryption, iv, &aad, data, tag),
            (true, false) => {
                aad.extend_from_slice(data);
                self.aes_gcm_decrypt(encryption, iv, &aad, &[], tag)
                    .map(|_| data.to_vec())
            }
            (false, true) => {
                let iv: [u8; 12] = iv
                    .try_into()
                    .map_err(|_| invalid(format!("gcm iv must be 12 bytes, got {}", iv.len())))?;
                let mut counter = [0u8; 16];
                counter[..12].copy_from_slice(&iv);
                counter[15] = 2;
                self.ctr(
                    encryption,
                    "dlms encryption",
                    DLMS_ENCRYPTION,
                    &counter,
                    data,
                )
            }
            (false, false) => Ok(data.to_vec()),
        }
    }

    fn aes_gmac_verify(
        &mut self,
        key: KeyRef<'_>,
        iv: &[u8],
        aad: &[u8],
        tag: &[u8],
    ) -> Result<(), CryptoError> {
        self.aes_gcm_decrypt(key, iv, aad, &[], tag).map(|_| ())
    }

    fn aes_cbc_decrypt(
        &mut self,
        key: KeyRef<'_>,
        iv: &[u8],
        data: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        check_len(data.len())?;
        if iv.len() != 16 {
            return Err(invalid(format!(
                "cbc iv must be 16 bytes, got {}",
                iv.len()
            )));
        }
        if !data.len().is_multiple_of(16) {
            return Err(invalid(format!(
                "cbc data must be whole 16-byte blocks, got {} bytes",
                data.len()
            )));
        }
        let k = self.resolve(key, "aes-cbc", MBUS)?;
        let mut buf = data.to_vec();
        cbc::Decryptor::<Aes128>::new(k.as_ref().into(), iv.into())
            .decrypt_padded_mut::<NoPadding>(&mut buf)
            .map_err(|_| invalid("cbc decryption failed on block alignment".into()))?;
        Ok(buf)
    }

    fn aes_ctr_apply(
        &mut self,
        key: KeyRef<'_>,
        iv: &[u8],
        data: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        self.ctr(key, "aes-ctr", MBUS, iv, data)
    }

    fn aes_cmac_verify(
        &mut self,
        key: KeyRef<'_>,
        data: &[u8],
        mac: &[u8],
    ) -> Result<(), CryptoError> {
        check_len(data.len())?;
        if !(4..=16).contains(&mac.len()) {
            return Err(invalid(format!(
                "cmac length must be 4 to 16 bytes, got {}",
                mac.len()
            )));
        }
        self.rationed(mac.len(), |ctx| {
            let k = ctx.resolve(key, "aes-cmac", MBUS)?;
            let full = cmac(&k, data);
            let prefix = full.get(..mac.len()).unwrap_or(&full);
            if bool::from(prefix.ct_eq(mac)) {
                Ok(())
            } else {
                Err(CryptoError::AuthenticationFailed)
            }
        })
    }

    fn derive_key(&mut self, key: KeyRef<'_>, kdf: Kdf, input: &[u8]) -> Result<u32, CryptoError> {
        check_len(input.len())?;
        if self.derived.len() >= MAX_DERIVED_KEYS {
            return Err(invalid(format!(
                "more than {MAX_DERIVED_KEYS} keys derived in one call"
            )));
        }
        let k = self.resolve(
            key,
            "key derivation",
            match kdf {
                Kdf::OmsCmac => MBUS,
                Kdf::AesEcb => &[KeyRole::DlmsMaster, KeyRole::Mbus],
            },
        )?;
        let derived: [u8; 16] = match kdf {
            Kdf::OmsCmac => cmac(&k, input),
            Kdf::AesEcb => {
                let block: [u8; 16] = input.try_into().map_err(|_| {
                    invalid(format!(
                        "aes-ecb derivation takes one 16-byte block, got {}",
                        input.len()
                    ))
                })?;
                let mut b = block.into();
                Aes128::new(k.as_ref().into()).encrypt_block(&mut b);
                b.into()
            }
        };
        self.derived.push(Key::new(derived));
        u32::try_from(self.derived.len() - 1).map_err(|_| invalid("too many derived keys".into()))
    }

    fn eax_prime_decrypt(
        &mut self,
        key: KeyRef<'_>,
        cleartext: &[u8],
        ciphertext: &[u8],
        tag: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        check_len(cleartext.len() + ciphertext.len())?;
        // Keys derived in a call have no role: EAX' takes only the stored C12.22 key.
        if let KeyRef::Derived(_) = key {
            return Err(invalid(
                "EAX' takes a stored ansi-c1222 key, not a derived one".into(),
            ));
        }
        self.rationed(tag.len(), |ctx| {
            let k = ctx.resolve(key, "eax'", EAX_PRIME)?;
            crate::eax_prime::decrypt(&k, cleartext, ciphertext, tag)
        })
    }
}

fn cmac(key: &Key, data: &[u8]) -> [u8; 16] {
    // A 16-byte key is always a valid AES-128 CMAC key.
    let mut mac = <Cmac<Aes128> as KeyInit>::new(key.as_ref().into());
    mac.update(data);
    mac.finalize().into_bytes().into()
}

fn check_len(n: usize) -> Result<(), CryptoError> {
    if n > MAX_CRYPTO_INPUT {
        Err(invalid(format!(
            "input of {n} bytes exceeds {MAX_CRYPTO_INPUT}"
        )))
    } else {
        Ok(())
    }
}

fn invalid(reason: String) -> CryptoError {
    CryptoError::InvalidInput(reason)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keystore::MemoryKeyStore;

    fn ctx() -> CryptoCtx {
        let store = MemoryKeyStore::new();
        // Green Book security suite 0 example keys.
        let ek: [u8; 16] = core::array::from_fn(|i| i as u8);
        let ak: [u8; 16] = core::array::from_fn(|i| 0xD0 + i as u8);
        store.insert("4d4d4d0000bc614e", KeyRole::DlmsUnicast, ek);
        store.insert("4d4d4d0000bc614e", KeyRole::DlmsAuthentication, ak);
        // Another meter's keys: the right roles, the wrong bytes.
        store.insert("other", KeyRole::DlmsUnicast, [0x5A; 16]);
        store.insert("other", KeyRole::DlmsAuthentication, [0xA5; 16]);
        CryptoCtx::new(Arc::new(store))
    }

    fn stored(role: KeyRole) -> KeyRef<'static> {
        KeyRef::Stored {
            meter: "4d4d4d0000bc614e",
            role,
        }
    }

    #[test]
    fn dlms_suite0_green_book_example() {
        // IEC 62056-5-3 / Green Book security suite 0 example: glo-get-request, SC 0x30,
        // system title 4D4D4D0000BC614E, IC 01234567, EK 00..0F, AK D0..DF.
        let mut c = ctx();
        let iv = hex::decode("4d4d4d0000bc614e01234567").unwrap_or_default();
        let ct = hex::decode("411312ff935a47566827c467bc").unwrap_or_default();
        let tag = hex::decode("7d825c3be4a77c3fcc056b6b").unwrap_or_default();
        let plain = c.dlms_decrypt(
            stored(KeyRole::DlmsUnicast),
            Some(stored(KeyRole::DlmsAuthentication)),
            0x30,
            &iv,
            &ct,
            &tag,
        );
        assert_eq!(
            plain.map(hex::encode).as_deref(),
            Ok("c0010000080000010000ff0200")
        );
        let wrong = c.dlms_decrypt(
            stored(KeyRole::DlmsUnicast),
            Some(KeyRef::Stored {
                meter: "other",
                role: KeyRole::DlmsAuthentication,
            }),
            0x30,
            &iv,
            &ct,
            &tag,
        );
        assert_eq!(wrong, Err(CryptoError::AuthenticationFailed));
    }

    #[test]
    fn gcm_round_trip_and_tamper() {
        let mut c = ctx();
        let k = c
            .resolve(stored(KeyRole::DlmsUnicast), "test", DLMS_ENCRYPTION)
            .unwrap_or_else(|e| panic!("{e:?}"));
        let iv = [7u8; 12];
        let mut buf = b"hello meter".to_vec();
        let tag = AesGcm::<Aes128, U12, U12>::new(k.as_ref().into())
            .encrypt_in_place_detached(Nonce::from_slice(&iv), b"aad", &mut buf)
            .unwrap_or_else(|e| panic!("{e:?}"));
        let key = stored(KeyRole::DlmsUnicast);
        let plain = c.aes_gcm_decrypt(key, &iv, b"aad", &buf, &tag);
        assert_eq!(plain.as_deref(), Ok(&b"hello meter"[..]));
        let mut bad = tag.to_vec();
        bad[0] ^= 1;
        assert_eq!(
            c.aes_gcm_decrypt(key, &iv, b"aad", &buf, &bad),
            Err(CryptoError::AuthenticationFailed)
        );
        let wrong = KeyRef::Stored {
            meter: "other",
            role: KeyRole::DlmsUnicast,
        };
        assert_eq!(
            c.aes_gcm_decrypt(wrong, &iv, b"aad", &buf, &tag),
            Err(CryptoError::AuthenticationFailed)
        );
    }

    #[test]
    fn keys_serve_only_their_protocol_operations() {
        let store = MemoryKeyStore::new();
        store.insert("m", KeyRole::DlmsUnicast, [1; 16]);
        store.insert("m", KeyRole::DlmsMaster, [2; 16]);
        let mut c = CryptoCtx::new(Arc::new(store));
        let dlms = KeyRef::Stored {
            meter: "m",
            role: KeyRole::DlmsUnicast,
        };
        let master = KeyRef::Stored {
            meter: "m",
            role: KeyRole::DlmsMaster,
        };
        // CTR on a GCM key would hand out its keystream (and GCM's hash key).
        assert!(
            matches!(c.aes_ctr_apply(dlms, &[0; 16], &[0; 16]), Err(CryptoError::InvalidInput(m)) if m.contains("aes-ctr"))
        );
        // CBC decryption under the master key would unwrap every wrapped key.
        assert!(matches!(
            c.aes_cbc_decrypt(master, &[0; 16], &[0; 16]),
            Err(CryptoError::InvalidInput(_))
        ));
        assert!(matches!(
            c.aes_gcm_decrypt(master, &[0; 12], b"", b"", &[0; 12]),
            Err(CryptoError::InvalidInput(_))
        ));
    }

    #[test]
    fn missing_key_and_bad_handles_are_typed() {
        let mut c = ctx();
        let none = KeyRef::Stored {
            meter: "other",
            role: KeyRole::Mbus,
        };
        assert!(matches!(
            c.aes_ctr_apply(none, &[0; 16], b"x"),
            Err(CryptoError::NoKey { .. })
        ));
        assert_eq!(
            c.aes_ctr_apply(KeyRef::Derived(3), &[0; 16], b"x"),
            Err(CryptoError::UnknownHandle(3))
        );
        assert!(matches!(
            c.aes_cbc_decrypt(stored(KeyRole::DlmsUnicast), &[0; 16], &[0; 15]),
            Err(CryptoError::InvalidInput(_))
        ));
    }

    #[test]
    fn cmac_rfc4493_example_and_derivation() {
        // RFC 4493 example 2: key 2b7e1516..., 16-byte message.
        let store = MemoryKeyStore::new();
        let key = hex::decode("2b7e151628aed2a6abf7158809cf4f3c").unwrap_or_default();
        store.insert("m", KeyRole::Mbus, key.try_into().unwrap_or([0; 16]));
        let mut c = CryptoCtx::new(Arc::new(store));
        let k = KeyRef::Stored {
            meter: "m",
            role: KeyRole::Mbus,
        };
        let msg = hex::decode("6bc1bee22e409f96e93d7e117393172a").unwrap_or_default();
        let mac = hex::decode("070a16b46b4d4144f79bdd9dd04a287c").unwrap_or_default();
        assert_eq!(c.aes_cmac_verify(k, &msg, &mac), Ok(()));
        assert_eq!(c.aes_cmac_verify(k, &msg, &mac[..8]), Ok(()));
        assert_eq!(
            c.aes_cmac_verify(k, b"other", &mac),
            Err(CryptoError::AuthenticationFailed)
        );
        // A derived key is usable by handle and never leaves the host.
        let h = c.derive_key(k, Kdf::OmsCmac, &msg).unwrap_or(u32::MAX);
        assert_eq!(
            c.aes_cmac_verify(KeyRef::Derived(h), &msg, &mac),
            Err(CryptoError::AuthenticationFailed)
        );
        c.reset();
        assert_eq!(
            c.aes_cmac_verify(KeyRef::Derived(h), &msg, &mac),
            Err(CryptoError::UnknownHandle(h))
        );
    }

    /// Test vector #1 of "EAX' Cipher Mode" (Moise, Beroset, Phinney, Burns, May 2011), as
    /// transcribed in EnergyICT's EAXPrimeEncoderTest.java: key, cleartext, ciphertext, tag.
    fn eax_vector_1() -> ([u8; 16], Vec<u8>, Vec<u8>, Vec<u8>) {
        let key: [u8; 16] = hex::decode("01020304050607080102030405060708")
            .unwrap()
            .try_into()
            .unwrap();
        let cleartext = hex::decode(
            "a20c060a607c86f7540116001702a703020104a803020102ac0fa20da00ba109\
             800102810448e99388be19281781159aa60d060b607c86f7540116001782110248e99388",
        )
        .unwrap();
        let ct = hex::decode("4031cc957d4edf9a357f3db0fa9fe838").unwrap();
        let tag = hex::decode("6555c029").unwrap();
        (key, cleartext, ct, tag)
    }

    #[test]
    fn eax_prime_serves_only_the_c1222_key() {
        let (key, cleartext, ct, tag) = eax_vector_1();
        let store = MemoryKeyStore::new();
        store.insert("m", KeyRole::AnsiC1222, key);
        store.insert("m", KeyRole::DlmsUnicast, key);
        store.insert("m", KeyRole::Mbus, key);
        store.insert("other", KeyRole::AnsiC1222, [0x5A; 16]);
        let mut c = CryptoCtx::new(Arc::new(store));
        let c1222 = |meter| KeyRef::Stored {
            meter,
            role: KeyRole::AnsiC1222,
        };
        assert_eq!(
            c.eax_prime_decrypt(c1222("m"), &cleartext, &ct, &tag)
                .map(hex::encode)
                .as_deref(),
            Ok("54454d500b40000700051a00000200e4")
        );
        assert_eq!(
            c.eax_prime_decrypt(c1222("other"), &cleartext, &ct, &tag),
            Err(CryptoError::AuthenticationFailed)
        );
        let mut bad = tag.clone();
        bad[0] ^= 1;
        assert_eq!(
            c.eax_prime_decrypt(c1222("m"), &cleartext, &ct, &bad),
            Err(CryptoError::AuthenticationFailed)
        );
        assert!(matches!(
            c.eax_prime_decrypt(c1222("m"), &cleartext, &ct, &tag[..3]),
            Err(CryptoError::InvalidInput(_))
        ));
        assert!(matches!(
            c.eax_prime_decrypt(c1222("nobody"), &cleartext, &ct, &tag),
            Err(CryptoError::NoKey { meter, role: KeyRole::AnsiC1222 }) if meter == "nobody"
        ));
        // Another protocol's key never serves EAX', the C12.22 key serves nothing else.
        let dlms = KeyRef::Stored {
            meter: "m",
            role: KeyRole::DlmsUnicast,
        };
        assert!(matches!(
            c.eax_prime_decrypt(dlms, &cleartext, &ct, &tag),
            Err(CryptoError::InvalidInput(m)) if m.contains("eax'")
        ));
        // Nor does a key derived in the call, whatever it was derived from.
        let mbus = KeyRef::Stored {
            meter: "m",
            role: KeyRole::Mbus,
        };
        let h = c.derive_key(mbus, Kdf::OmsCmac, &[0; 16]).unwrap();
        assert!(matches!(
            c.eax_prime_decrypt(KeyRef::Derived(h), &cleartext, &ct, &tag),
            Err(CryptoError::InvalidInput(m)) if m.contains("derived")
        ));
        assert!(matches!(
            c.aes_ctr_apply(c1222("m"), &[0; 16], &[0; 16]),
            Err(CryptoError::InvalidInput(_))
        ));
        assert!(matches!(
            c.aes_gcm_decrypt(c1222("m"), &[0; 12], b"", b"", &[0; 12]),
            Err(CryptoError::InvalidInput(_))
        ));
        assert!(matches!(
            c.aes_cmac_verify(c1222("m"), b"x", &[0; 4]),
            Err(CryptoError::InvalidInput(_))
        ));
        assert!(matches!(
            c.dlms_decrypt(c1222("m"), None, 0x20, &[0; 12], b"x", b""),
            Err(CryptoError::InvalidInput(_))
        ));
    }

    #[test]
    fn failed_short_tags_are_rationed_per_instance() {
        // EAX' vector #1, against a budget of three failures a minute.
        let (key, cleartext, ct, tag) = eax_vector_1();
        let store = MemoryKeyStore::new();
        store.insert("m", KeyRole::AnsiC1222, key);
        store.insert("m", KeyRole::Mbus, key);
        store.insert("m", KeyRole::DlmsUnicast, key);
        let mut c = CryptoCtx::with_budget(Arc::new(store), 3);
        let c1222 = KeyRef::Stored {
            meter: "m",
            role: KeyRole::AnsiC1222,
        };
        let mbus = KeyRef::Stored {
            meter: "m",
            role: KeyRole::Mbus,
        };
        // Successes cost nothing.
        for _ in 0..10 {
            assert!(c.eax_prime_decrypt(c1222, &cleartext, &ct, &tag).is_ok());
        }
        // A guess at a tag: three failures (two EAX', one 4-byte CMAC) spend the budget, and
        // a call's end (reset) does not refill it.
        for guess in 0..2u8 {
            let mut bad = tag.clone();
            bad[3] ^= guess + 1;
            assert_eq!(
                c.eax_prime_decrypt(c1222, &cleartext, &ct, &bad),
                Err(CryptoError::AuthenticationFailed)
            );
        }
        c.reset();
        assert_eq!(
            c.aes_cmac_verify(mbus, b"guess", &[0; 4]),
            Err(CryptoError::AuthenticationFailed)
        );
        // Now even the right tag is refused, with the reason, until the budget refills.
        assert!(matches!(
            c.eax_prime_decrypt(c1222, &cleartext, &ct, &tag),
            Err(CryptoError::InvalidInput(m)) if m.contains("tag guessing")
        ));
        assert!(matches!(
            c.aes_cmac_verify(mbus, b"guess", &[0; 4]),
            Err(CryptoError::InvalidInput(_))
        ));
        // Long tags are not rationed: an 8-byte CMAC and GCM still answer.
        assert_eq!(
            c.aes_cmac_verify(mbus, b"guess", &[0; 8]),
            Err(CryptoError::AuthenticationFailed)
        );
        let dlms = KeyRef::Stored {
            meter: "m",
            role: KeyRole::DlmsUnicast,
        };
        assert_eq!(
            c.aes_gcm_decrypt(dlms, &[0; 12], b"", b"", &[0; 12]),
            Err(CryptoError::AuthenticationFailed)
        );
    }

    #[test]
    fn dedicated_key_serves_what_the_unicast_key_serves() {
        // The Green Book suite 0 example, with its EK stored as the dedicated key.
        let store = MemoryKeyStore::new();
        let ek: [u8; 16] = core::array::from_fn(|i| i as u8);
        let ak: [u8; 16] = core::array::from_fn(|i| 0xD0 + i as u8);
        store.insert("4d4d4d0000bc614e", KeyRole::DlmsDedicated, ek);
        store.insert("4d4d4d0000bc614e", KeyRole::DlmsAuthentication, ak);
        let mut c = CryptoCtx::new(Arc::new(store));
        let iv = hex::decode("4d4d4d0000bc614e01234567").unwrap();
        let ct = hex::decode("411312ff935a47566827c467bc").unwrap();
        let tag = hex::decode("7d825c3be4a77c3fcc056b6b").unwrap();
        let plain = c.dlms_decrypt(
            stored(KeyRole::DlmsDedicated),
            Some(stored(KeyRole::DlmsAuthentication)),
            0x30,
            &iv,
            &ct,
            &tag,
        );
        assert_eq!(
            plain.map(hex::encode).as_deref(),
            Ok("c0010000080000010000ff0200")
        );
        // Encryption only (the GCM keystream) and GMAC are allowed as for the unicast key.
        assert!(
            c.dlms_decrypt(stored(KeyRole::DlmsDedicated), None, 0x20, &iv, &ct, b"")
                .is_ok()
        );
        assert_eq!(
            c.aes_gmac_verify(stored(KeyRole::DlmsDedicated), &iv, b"aad", &[0; 12]),
            Err(CryptoError::AuthenticationFailed)
        );
        // The global key of the same meter is not there: the dedicated one does not stand in.
        assert!(matches!(
            c.dlms_decrypt(
                stored(KeyRole::DlmsUnicast),
                Some(stored(KeyRole::DlmsAuthentication)),
                0x30,
                &iv,
                &ct,
                &tag
            ),
            Err(CryptoError::NoKey {
                role: KeyRole::DlmsUnicast,
                ..
            })
        ));
        // Raw CTR and CBC stay refused.
        assert!(matches!(
            c.aes_ctr_apply(stored(KeyRole::DlmsDedicated), &[0; 16], &[0; 16]),
            Err(CryptoError::InvalidInput(_))
        ));
        assert!(matches!(
            c.eax_prime_decrypt(stored(KeyRole::DlmsDedicated), b"n", b"", &[0; 4]),
            Err(CryptoError::InvalidInput(_))
        ));
    }
}
