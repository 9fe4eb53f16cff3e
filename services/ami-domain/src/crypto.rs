//! The cryptography a decoder may ask for, against keys it only names.
//!
//! Protocol crates are written against [`Crypto`]; inside a Wasm component the SDK implements
//! it with the host's `ami:plugin/crypto` interface, natively the plugin host implements it
//! with its key store. Either way no key byte reaches the decoder.

/// What a key is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KeyRole {
    /// DLMS global unicast encryption key (GUEK).
    DlmsUnicast,
    /// DLMS global broadcast encryption key (GBEK).
    DlmsBroadcast,
    /// DLMS authentication key (AK).
    DlmsAuthentication,
    /// DLMS master key (KEK).
    DlmsMaster,
    /// M-Bus / OMS key (mode 5, or the master key of mode 7).
    Mbus,
    /// OSGP open media access key.
    OsgpOmak,
    /// DLMS dedicated key of the meter's current association: agreed in the ciphered xDLMS
    /// InitiateRequest and stored by the client that set the association up (WIT 0.1.1).
    DlmsDedicated,
    /// ANSI C12.22 EPSEM key of the meter, key id 0 (AES-128 EAX', WIT 0.1.1).
    AnsiC1222,
}

impl KeyRole {
    /// Every key role.
    pub const ALL: [KeyRole; 8] = [
        KeyRole::DlmsUnicast,
        KeyRole::DlmsBroadcast,
        KeyRole::DlmsAuthentication,
        KeyRole::DlmsMaster,
        KeyRole::Mbus,
        KeyRole::OsgpOmak,
        KeyRole::DlmsDedicated,
        KeyRole::AnsiC1222,
    ];

    /// The role's name as stored, logged and written in key files (`dlms-unicast`, ...).
    pub const fn name(self) -> &'static str {
        match self {
            KeyRole::DlmsUnicast => "dlms-unicast",
            KeyRole::DlmsBroadcast => "dlms-broadcast",
            KeyRole::DlmsAuthentication => "dlms-authentication",
            KeyRole::DlmsMaster => "dlms-master",
            KeyRole::Mbus => "mbus",
            KeyRole::OsgpOmak => "osgp-omak",
            KeyRole::DlmsDedicated => "dlms-dedicated",
            KeyRole::AnsiC1222 => "ansi-c1222",
        }
    }

    /// The role of a name, if it is one.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.name() == name)
    }
}

/// Which key to use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyRef<'a> {
    /// A key of the key store: the meter's identity as the decoder reports it, and the role.
    Stored {
        /// The meter (system title hex, M-Bus address, ...).
        meter: &'a str,
        /// The role.
        role: KeyRole,
    },
    /// A key derived earlier in the same call.
    Derived(u32),
}

/// How to derive a key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kdf {
    /// K = AES-CMAC(key, input) (OMS mode 7).
    OmsCmac,
    /// K = AES-ECB(key, input block).
    AesEcb,
}

/// Why a cryptographic operation failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    /// No key for this meter and role.
    #[error("no {} key for meter {meter}", role.name())]
    NoKey {
        /// The meter.
        meter: String,
        /// The role.
        role: KeyRole,
    },
    /// No derived key of this handle in this call.
    #[error("no derived key {0}")]
    UnknownHandle(u32),
    /// The tag or MAC does not verify: wrong key or tampered data.
    #[error("authentication failed")]
    AuthenticationFailed,
    /// A length or parameter is wrong for the primitive.
    #[error("invalid input: {0}")]
    InvalidInput(String),
}

/// AES-128 primitives by key reference (the `ami:plugin/crypto` interface as a trait).
pub trait Crypto {
    /// AES-128-GCM: verify `tag` (12 or 16 bytes) over `aad` and `ciphertext`, then decrypt.
    fn aes_gcm_decrypt(
        &mut self,
        key: KeyRef<'_>,
        iv: &[u8],
        aad: &[u8],
        ciphertext: &[u8],
        tag: &[u8],
    ) -> Result<Vec<u8>, CryptoError>;
    /// DLMS/COSEM security suite 0: undo the ciphering of an APDU (see the WIT
    /// `dlms-decrypt`); the provider inserts the authentication key into the AAD.
    fn dlms_decrypt(
        &mut self,
        encryption: KeyRef<'_>,
        authentication: Option<KeyRef<'_>>,
        security_control: u8,
        iv: &[u8],
        data: &[u8],
        tag: &[u8],
    ) -> Result<Vec<u8>, CryptoError>;
    /// AES-128-GMAC: verify `tag` over `aad` only.
    fn aes_gmac_verify(
        &mut self,
        key: KeyRef<'_>,
        iv: &[u8],
        aad: &[u8],
        tag: &[u8],
    ) -> Result<(), CryptoError>;
    /// AES-128-CBC decryption of whole blocks, no padding removed.
    fn aes_cbc_decrypt(
        &mut self,
        key: KeyRef<'_>,
        iv: &[u8],
        data: &[u8],
    ) -> Result<Vec<u8>, CryptoError>;
    /// AES-128-CTR keystream applied to `data`.
    fn aes_ctr_apply(
        &mut self,
        key: KeyRef<'_>,
        iv: &[u8],
        data: &[u8],
    ) -> Result<Vec<u8>, CryptoError>;
    /// Verify an AES-CMAC (4 to 16 bytes, a prefix of the full MAC) in constant time.
    fn aes_cmac_verify(
        &mut self,
        key: KeyRef<'_>,
        data: &[u8],
        mac: &[u8],
    ) -> Result<(), CryptoError>;
    /// Derive a key that stays with the provider; returns its handle.
    fn derive_key(&mut self, key: KeyRef<'_>, kdf: Kdf, input: &[u8]) -> Result<u32, CryptoError>;
    /// AES-128 EAX' (ANSI C12.22 Annex, the EAX' submission to NIST): verify the 4-byte `tag`
    /// over `cleartext` (authenticated, not encrypted) and `ciphertext`, then decrypt
    /// `ciphertext` (empty when the message is only authenticated).
    fn eax_prime_decrypt(
        &mut self,
        key: KeyRef<'_>,
        cleartext: &[u8],
        ciphertext: &[u8],
        tag: &[u8],
    ) -> Result<Vec<u8>, CryptoError>;
}

/// A provider with no keys: every operation fails with [`CryptoError::NoKey`] (decoding
/// plaintext frames, or telling a caller which key an encrypted frame needs).
#[derive(Clone, Copy, Debug, Default)]
pub struct NoKeys;

fn no_key(key: KeyRef<'_>) -> CryptoError {
    match key {
        KeyRef::Stored { meter, role } => CryptoError::NoKey {
            meter: meter.to_owned(),
            role,
        },
        KeyRef::Derived(h) => CryptoError::UnknownHandle(h),
    }
}

impl Crypto for NoKeys {
    fn dlms_decrypt(
        &mut self,
        key: KeyRef<'_>,
        _: Option<KeyRef<'_>>,
        _: u8,
        _: &[u8],
        _: &[u8],
        _: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        Err(no_key(key))
    }
    fn aes_gcm_decrypt(
        &mut self,
        key: KeyRef<'_>,
        _: &[u8],
        _: &[u8],
        _: &[u8],
        _: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        Err(no_key(key))
    }
    fn aes_gmac_verify(
        &mut self,
        key: KeyRef<'_>,
        _: &[u8],
        _: &[u8],
        _: &[u8],
    ) -> Result<(), CryptoError> {
        Err(no_key(key))
    }
    fn aes_cbc_decrypt(
        &mut self,
        key: KeyRef<'_>,
        _: &[u8],
        _: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        Err(no_key(key))
    }
    fn aes_ctr_apply(
        &mut self,
        key: KeyRef<'_>,
        _: &[u8],
        _: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        Err(no_key(key))
    }
    fn aes_cmac_verify(&mut self, key: KeyRef<'_>, _: &[u8], _: &[u8]) -> Result<(), CryptoError> {
        Err(no_key(key))
    }
    fn derive_key(&mut self, key: KeyRef<'_>, _: Kdf, _: &[u8]) -> Result<u32, CryptoError> {
        Err(no_key(key))
    }
    fn eax_prime_decrypt(
        &mut self,
        key: KeyRef<'_>,
        _: &[u8],
        _: &[u8],
        _: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        Err(no_key(key))
    }
}

/// A provider whose "decryption" returns its input and whose checks all pass, so that fuzzers,
/// property tests and benchmarks reach the parsing behind a ciphered layer with any bytes. It
/// holds no key and protects nothing: only for testing, behind the `testing` feature.
#[cfg(feature = "testing")]
#[derive(Clone, Copy, Debug, Default)]
pub struct PassThrough;

#[cfg(feature = "testing")]
impl Crypto for PassThrough {
    fn dlms_decrypt(
        &mut self,
        _: KeyRef<'_>,
        _: Option<KeyRef<'_>>,
        _: u8,
        _: &[u8],
        data: &[u8],
        _: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        Ok(data.to_vec())
    }
    fn aes_gcm_decrypt(
        &mut self,
        _: KeyRef<'_>,
        _: &[u8],
        _: &[u8],
        ciphertext: &[u8],
        _: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        Ok(ciphertext.to_vec())
    }
    fn aes_gmac_verify(
        &mut self,
        _: KeyRef<'_>,
        _: &[u8],
        _: &[u8],
        _: &[u8],
    ) -> Result<(), CryptoError> {
        Ok(())
    }
    fn aes_cbc_decrypt(
        &mut self,
        _: KeyRef<'_>,
        _: &[u8],
        data: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        Ok(data.to_vec())
    }
    fn aes_ctr_apply(
        &mut self,
        _: KeyRef<'_>,
        _: &[u8],
        data: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        Ok(data.to_vec())
    }
    fn aes_cmac_verify(&mut self, _: KeyRef<'_>, _: &[u8], _: &[u8]) -> Result<(), CryptoError> {
        Ok(())
    }
    fn derive_key(&mut self, _: KeyRef<'_>, _: Kdf, _: &[u8]) -> Result<u32, CryptoError> {
        Ok(1)
    }
    fn eax_prime_decrypt(
        &mut self,
        _: KeyRef<'_>,
        _: &[u8],
        ciphertext: &[u8],
        _: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        Ok(ciphertext.to_vec())
    }
}
