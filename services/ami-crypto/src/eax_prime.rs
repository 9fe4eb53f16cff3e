//! AES-128 EAX' (EAX prime): the authenticated encryption of ANSI C12.22 (C12.22-2008 Annex,
//! and the mode's submission to NIST: Moise, Beroset, Phinney, Burns, "EAX' Cipher Mode",
//! May 2011).
//!
//! EAX' differs from EAX (Bellare, Rogaway, Wagner) in four ways, all reproduced here:
//!
//! * one *cleartext* input serves as nonce and header (C12.22 builds it from the ACSE
//!   elements of the message, see `ami-ansi-c12`'s `c1222` module);
//! * the OMAC tweaks are not prefix blocks: with `L = AES_K(0¹²⁸)`, `D = dbl(L)` and
//!   `Q = dbl(D)`, the cleartext's CBC-MAC starts from `D` and the ciphertext's from `Q`, and
//!   the last block is XORed with `D` when whole, or padded with `80 00 ..` and XORed with `Q`
//!   (OMAC'); `dbl` is the doubling of the EAX' reference code, which takes byte 0 as the
//!   least significant byte (a carry out of byte 15 folds `0x87` into byte 0);
//! * the counter block is `N' = OMAC'_D(cleartext)` with bits 31 and 15 cleared (the top
//!   bits of bytes 12 and 14), then a 128-bit big-endian counter;
//! * the tag is the last 4 bytes of `N' ⊕ C'` (`C' = OMAC'_Q(ciphertext)`), or of `N'` alone
//!   when there is no ciphertext (C12.22 security mode 1, authentication only).
//!
//! Only decryption is offered to decoders ([`crate::CryptoCtx`]); the `testing` feature adds
//! [`testing::encrypt`] for tests that build protected frames.

use aes::Aes128;
use aes::cipher::{BlockEncrypt, InnerIvInit, KeyInit, StreamCipher};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use ami_domain::crypto::CryptoError;

/// Length of the EAX' tag (the C12.22 `<mac>`).
pub const TAG_LEN: usize = 4;

type Block = [u8; 16];

/// The key schedule and the two OMAC' tweaks of one key.
struct EaxPrime {
    aes: Aes128,
    d: Zeroizing<Block>,
    q: Zeroizing<Block>,
}

/// Doubling as the EAX' reference code does it: a left shift of the block read with byte 0
/// as the least significant byte, `0x87` folded into byte 0 on a carry out of byte 15.
fn dbl(input: &Block) -> Block {
    let mut out = [0u8; 16];
    let mut carry = 0u8;
    for (o, &i) in out.iter_mut().zip(input) {
        *o = (i << 1) | carry;
        carry = i >> 7;
    }
    // Constant time: the mask is 0x87 or 0 without a branch on the key-derived bit.
    out[0] ^= 0x87 & carry.wrapping_neg();
    out
}

fn xor(a: &mut Block, b: &[u8]) {
    for (x, y) in a.iter_mut().zip(b) {
        *x ^= y;
    }
}

impl EaxPrime {
    fn new(key: &[u8; 16]) -> Self {
        let aes = Aes128::new(key.into());
        let mut l = Zeroizing::new([0u8; 16]);
        aes.encrypt_block(l.as_mut().into());
        let d = Zeroizing::new(dbl(&l));
        let q = Zeroizing::new(dbl(&d));
        Self { aes, d, q }
    }

    fn encrypt(&self, block: &mut Block) {
        self.aes.encrypt_block(block.into());
    }

    /// OMAC' of non-empty `data`, the CBC chain starting from `start` (`D` or `Q`).
    fn omac(&self, start: &Block, data: &[u8]) -> Zeroizing<Block> {
        let mut ws = Zeroizing::new(*start);
        let last_len = match data.len() % 16 {
            0 => 16,
            n => n,
        };
        let (head, last) = data.split_at(data.len().saturating_sub(last_len));
        for block in head.chunks(16) {
            xor(&mut ws, block);
            self.encrypt(&mut ws);
        }
        xor(&mut ws, last);
        if last.len() == 16 {
            xor(&mut ws, self.d.as_ref());
        } else {
            if let Some(pad) = ws.get_mut(last.len()) {
                *pad ^= 0x80;
            }
            xor(&mut ws, self.q.as_ref());
        }
        self.encrypt(&mut ws);
        ws
    }

    /// `N'` and the tag over `cleartext` and `ciphertext`.
    fn tag(&self, cleartext: &[u8], ciphertext: &[u8]) -> (Zeroizing<Block>, [u8; TAG_LEN]) {
        let n = self.omac(&self.d, cleartext);
        let mut full = *n;
        if !ciphertext.is_empty() {
            xor(&mut full, self.omac(&self.q, ciphertext).as_ref());
        }
        let mut tag = [0u8; TAG_LEN];
        tag.copy_from_slice(&full[16 - TAG_LEN..]);
        (n, tag)
    }

    /// The CTR keystream from `N'` (bits 31 and 15 cleared) applied to `data`.
    fn ctr(&self, n: &Block, data: &mut [u8]) {
        let mut counter = Zeroizing::new(*n);
        counter[12] &= 0x7F;
        counter[14] &= 0x7F;
        let core = ctr::CtrCore::<Aes128, ctr::flavors::Ctr128BE>::inner_iv_init(
            self.aes.clone(),
            counter.as_ref().into(),
        );
        ctr::Ctr128BE::<Aes128>::from_core(core).apply_keystream(data);
    }
}

fn check(cleartext: &[u8], tag: &[u8]) -> Result<(), CryptoError> {
    if cleartext.is_empty() {
        return Err(CryptoError::InvalidInput(
            "eax' cleartext must not be empty".into(),
        ));
    }
    if tag.len() != TAG_LEN {
        return Err(CryptoError::InvalidInput(format!(
            "eax' tag must be {TAG_LEN} bytes, got {}",
            tag.len()
        )));
    }
    Ok(())
}

/// Verifies `tag` over `cleartext` and `ciphertext` in constant time, then decrypts
/// `ciphertext` (empty for authentication only).
pub(crate) fn decrypt(
    key: &[u8; 16],
    cleartext: &[u8],
    ciphertext: &[u8],
    tag: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    check(cleartext, tag)?;
    let eax = EaxPrime::new(key);
    let (n, expected) = eax.tag(cleartext, ciphertext);
    if !bool::from(expected.ct_eq(tag)) {
        return Err(CryptoError::AuthenticationFailed);
    }
    let mut plain = ciphertext.to_vec();
    eax.ctr(&n, &mut plain);
    Ok(plain)
}

/// EAX' encryption for tests that build protected frames; never part of the key-holding API
/// (a decoder must not get an encryption oracle).
#[cfg(any(test, feature = "testing"))]
pub mod testing {
    use super::{EaxPrime, TAG_LEN};

    /// Encrypts `plaintext` (empty: authentication only) under `key`, authenticating
    /// `cleartext` (not empty); returns the ciphertext and the tag.
    pub fn encrypt(key: &[u8; 16], cleartext: &[u8], plaintext: &[u8]) -> (Vec<u8>, [u8; TAG_LEN]) {
        let eax = EaxPrime::new(key);
        let n = eax.omac(&eax.d, cleartext);
        let mut ct = plaintext.to_vec();
        eax.ctr(&n, &mut ct);
        let (_, tag) = eax.tag(cleartext, &ct);
        (ct, tag)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(s: &str) -> Vec<u8> {
        hex::decode(s).unwrap()
    }

    struct Vector {
        key: &'static str,
        cleartext: &'static str,
        plaintext: &'static str,
        ciphertext: &'static str,
        tag: &'static str,
    }

    /// Test vectors #1 to #4 of "EAX' Cipher Mode" (Moise, Beroset, Phinney, Burns, May 2011,
    /// the submission to NIST), as transcribed in EnergyICT's
    /// `com/energyict/protocolimpl/ansi/c12/EAXPrime/EAXPrimeEncoderTest.java`. The
    /// cleartexts are canonified C12.22 headers (called AP title, calling AE qualifier and
    /// invocation id, calling authentication value, user-information header, calling AP
    /// title, key id, IV).
    const VECTORS: [Vector; 4] = [
        Vector {
            key: "01020304050607080102030405060708",
            cleartext: "a20c060a607c86f7540116001702a703020104a803020102ac0fa20da00ba109\
                        800102810448e99388be19281781159aa60d060b607c86f754011600178211\
                        0248e99388",
            plaintext: "54454d500b40000700051a00000200e4",
            ciphertext: "4031cc957d4edf9a357f3db0fa9fe838",
            tag: "6555c029",
        },
        Vector {
            key: "01020304050607080102030405060708",
            cleartext: "a20c060a607c86f7540116007b02a703020104a803020102ac0fa20da00ba109\
                        800102810448f3d2f8be19281781159aa60d060b607c86f7540116007b8211\
                        0248f3d2f8",
            plaintext: "54454d500b40000700051a00000200e4",
            ciphertext: "8d2fbb7a0a8c4d40edaa10a46431c9b8",
            tag: "fec6d9e8",
        },
        Vector {
            key: "102030405060708090a0b0c0d0e0f000",
            cleartext: "a20e060c6086480186fc2f811caa4e01a806020439a00ebbac0fa20da00ba109\
                        80010081044bcee2c3be252823812188a60a06082b06010401828563004bce\
                        e2c3",
            plaintext: "17513030303030303030303030303030303030303030000003300001",
            ciphertext: "9cf32c7ec24c250be7b0749feee71a220d0eee976ec23dbf0caa08ea",
            tag: "00543e66",
        },
        Vector {
            key: "6624c7e23034e4036fe5cb3a8b5dab44",
            cleartext: "a211060f2b060104018285638e7f85f1c24e01a80602042bc81aa1ac0fa20da0\
                        0ba10980010081044b97d2ccbe392837813588a60906072b06010482856300\
                        4b97d2cc",
            plaintext: "1751303030303030303030303030303030303030303000000330000103300078\
                        033000790330007a0330007b0330007d",
            ciphertext: "beb0989fadb020eb72ba46353cc0a2ac2a007a101afebaf9680d3b9659f99112\
                         1b865f254f6ac92cdd213d31e3c4d2ca",
            tag: "e6f89b6d",
        },
    ];

    fn key(v: &Vector) -> [u8; 16] {
        h(v.key).try_into().unwrap()
    }

    #[test]
    fn published_vectors_decrypt() {
        for (i, v) in VECTORS.iter().enumerate() {
            let got = decrypt(&key(v), &h(v.cleartext), &h(v.ciphertext), &h(v.tag));
            assert_eq!(got, Ok(h(v.plaintext)), "vector #{}", i + 1);
        }
    }

    #[test]
    fn published_vectors_encrypt() {
        for (i, v) in VECTORS.iter().enumerate() {
            let (ct, tag) = testing::encrypt(&key(v), &h(v.cleartext), &h(v.plaintext));
            assert_eq!(hex::encode(ct), v.ciphertext, "vector #{}", i + 1);
            assert_eq!(hex::encode(tag), v.tag, "vector #{}", i + 1);
        }
    }

    #[test]
    fn tampering_and_wrong_keys_fail() {
        let v = &VECTORS[0];
        let (k, n, c, t) = (key(v), h(v.cleartext), h(v.ciphertext), h(v.tag));
        let mut bad = t.clone();
        bad[3] ^= 1;
        assert_eq!(
            decrypt(&k, &n, &c, &bad),
            Err(CryptoError::AuthenticationFailed)
        );
        let mut bad_c = c.clone();
        bad_c[0] ^= 0x80;
        assert_eq!(
            decrypt(&k, &n, &bad_c, &t),
            Err(CryptoError::AuthenticationFailed)
        );
        let mut bad_n = n.clone();
        bad_n[5] ^= 1;
        assert_eq!(
            decrypt(&k, &bad_n, &c, &t),
            Err(CryptoError::AuthenticationFailed)
        );
        assert_eq!(
            decrypt(&[0x55; 16], &n, &c, &t),
            Err(CryptoError::AuthenticationFailed)
        );
    }

    #[test]
    fn authentication_only_and_block_boundaries() {
        // Mode 1: the whole message is cleartext; the tag is N' alone.
        let k = [7u8; 16];
        for len in [1usize, 15, 16, 17, 31, 32, 33, 64] {
            let n: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let (ct, tag) = testing::encrypt(&k, &n, b"");
            assert!(ct.is_empty());
            assert_eq!(decrypt(&k, &n, b"", &tag), Ok(Vec::new()), "{len}");
            for plain_len in [1usize, 16, 20, 48] {
                let p = vec![0xA5; plain_len];
                let (ct, tag) = testing::encrypt(&k, &n, &p);
                assert_ne!(ct, p);
                assert_eq!(decrypt(&k, &n, &ct, &tag), Ok(p), "{len}/{plain_len}");
            }
        }
    }

    #[test]
    fn bad_lengths_are_invalid_input() {
        let k = [1u8; 16];
        assert!(matches!(
            decrypt(&k, b"", b"x", &[0; 4]),
            Err(CryptoError::InvalidInput(_))
        ));
        assert!(matches!(
            decrypt(&k, b"n", b"x", &[0; 5]),
            Err(CryptoError::InvalidInput(_))
        ));
        assert!(matches!(
            decrypt(&k, b"n", b"x", &[0; 3]),
            Err(CryptoError::InvalidInput(_))
        ));
    }

    #[test]
    fn doubling_matches_the_reference_byte_order() {
        // Byte 0 is the least significant byte: its top bit moves into byte 1.
        let mut b = [0u8; 16];
        b[0] = 0x80;
        let mut want = [0u8; 16];
        want[1] = 0x01;
        assert_eq!(dbl(&b), want);
        // A carry out of byte 15 folds 0x87 into byte 0.
        let mut b = [0u8; 16];
        b[15] = 0x80;
        let mut want = [0u8; 16];
        want[0] = 0x87;
        assert_eq!(dbl(&b), want);
    }
}
