//! The transport layer (EN 13757-7 / OMS): the short (CI `0x7A`) and long (CI `0x72`)
//! headers, no header (CI `0x78`), the configuration word and security mode 5
//! (AES-128-CBC, IV = manufacturer ‖ identification ‖ version ‖ device type ‖ 8 × access
//! number, key from the key store under the meter identity and [`KeyRole::Mbus`]).
//!
//! A mode 5 payload is right when it starts with the filler `2F 2F`; a payload that starts
//! with `2F 2F` before decryption is taken as already decrypted (as wmbusmeters does for
//! frames logged after decryption). Security mode 7 (KDF-A derived keys through
//! [`Crypto::derive_key`] with [`Kdf::OmsCmac`], the AFL's CMAC verified, AES-CBC with a
//! zero IV) needs the AFL header that precedes the transport layer. The DES modes and
//! modes 8-10 and 13 are answered with [`DecodeError::Unsupported`]; the reserved modes
//! (1, 4, 6, 11, 12, 14-31) are read as plaintext, as wmbusmeters does (pre-OMS meters use
//! these bits otherwise).

use std::borrow::Cow;

use ami_domain::DecodeError;
use ami_domain::crypto::{Crypto, CryptoError, Kdf, KeyRef, KeyRole};

use crate::ell::{Afl, crypto_error};
use crate::wireless::meter_id;

/// The address of a long transport header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Address {
    /// The identification number (4 bytes as sent, little endian).
    pub id: u32,
    /// The manufacturer field.
    pub manufacturer: u16,
    /// The version.
    pub version: u8,
    /// The device type (medium).
    pub device_type: u8,
}

impl Address {
    /// M ‖ A as sent (8 bytes), for IVs.
    pub fn bytes(&self) -> [u8; 8] {
        let m = self.manufacturer.to_le_bytes();
        let i = self.id.to_le_bytes();
        [
            m[0],
            m[1],
            i[0],
            i[1],
            i[2],
            i[3],
            self.version,
            self.device_type,
        ]
    }

    /// The meter identity (`MMM-IIIIIIII`).
    pub fn meter(&self) -> String {
        meter_id(self.manufacturer, self.id)
    }
}

/// A transport header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tpl {
    /// The CI field.
    pub ci: u8,
    /// The long header's address (CI `0x72`).
    pub address: Option<Address>,
    /// The access number.
    pub access: u8,
    /// The status byte.
    pub status: u8,
    /// The configuration word (the signature field of wired M-Bus).
    pub config: u16,
}

impl Tpl {
    /// The security mode (configuration word bits 8-12).
    pub const fn security_mode(&self) -> u8 {
        ((self.config >> 8) & 0x1F) as u8
    }

    /// The number of encrypted 16-byte blocks (bits 4-7).
    pub const fn encrypted_blocks(&self) -> usize {
        ((self.config >> 4) & 0x0F) as usize
    }
}

/// Reads the transport header of `body` (CI first) for CI `0x72`, `0x7A` (header) and
/// `0x78` (none); returns it and the header length including the CI.
pub fn parse(body: &[u8]) -> Result<(Option<Tpl>, usize), DecodeError> {
    let short = |what: &str| DecodeError::Truncated(format!("{what} transport header"));
    match *body {
        [0x78, ..] => Ok((None, 1)),
        [ci @ 0x7A, access, status, c0, c1, ..] => Ok((
            Some(Tpl {
                ci,
                address: None,
                access,
                status,
                config: u16::from_le_bytes([c0, c1]),
            }),
            5,
        )),
        [0x7A, ..] => Err(short("short")),
        [
            ci @ 0x72,
            i0,
            i1,
            i2,
            i3,
            m0,
            m1,
            version,
            device_type,
            access,
            status,
            c0,
            c1,
            ..,
        ] => Ok((
            Some(Tpl {
                ci,
                address: Some(Address {
                    id: u32::from_le_bytes([i0, i1, i2, i3]),
                    manufacturer: u16::from_le_bytes([m0, m1]),
                    version,
                    device_type,
                }),
                access,
                status,
                config: u16::from_le_bytes([c0, c1]),
            }),
            13,
        )),
        [0x72, ..] => Err(short("long")),
        [ci, ..] => Err(DecodeError::Unsupported(format!("CI field 0x{ci:02X}"))),
        [] => Err(DecodeError::Truncated("no CI field".into())),
    }
}

/// What security mode 7 needs besides the transport header: the AFL (message counter,
/// MAC) and the transport layer as received (CI to the end), which the MAC covers.
#[derive(Clone, Copy, Debug)]
pub struct Mode7<'a> {
    /// The AFL header.
    pub afl: &'a Afl,
    /// The transport layer from its CI field to the end, as received.
    pub tpl_bytes: &'a [u8],
}

/// The plaintext application data after the header `tpl`: `data` itself when the mode is 0
/// (or the payload is already plaintext), else decrypted with the key of `meter`
/// (`address` = M ‖ A of the meter, for the IV). On wired frames (`wired`) only mode 5 is
/// taken as encryption.
pub fn open<'a>(
    tpl: &Tpl,
    address: Option<[u8; 8]>,
    meter: Option<&str>,
    data: Cow<'a, [u8]>,
    wired: bool,
    mode7: Option<Mode7<'_>>,
    crypto: &mut dyn Crypto,
) -> Result<Cow<'a, [u8]>, DecodeError> {
    let mode = tpl.security_mode();
    // Mode 7: the configuration field extension follows the configuration word.
    let data = if mode == 7 && !wired {
        match data {
            Cow::Borrowed(b) => Cow::Borrowed(b.get(1..).unwrap_or_default()),
            Cow::Owned(mut v) => {
                v.drain(..1.min(v.len()));
                Cow::Owned(v)
            }
        }
    } else {
        data
    };
    // Wired meters older than OMS use the field as a "signature"; only mode 5 means
    // encryption there.
    if mode == 0 || data.starts_with(&[0x2F, 0x2F]) || (wired && mode != 5) {
        return Ok(data);
    }
    match mode {
        5 => {}
        2 | 3 => {
            return Err(DecodeError::Unsupported(format!(
                "security mode {mode} (DES)"
            )));
        }
        7 => {}
        8..=10 | 13 => {
            return Err(DecodeError::Unsupported(format!("security mode {mode}")));
        }
        // Reserved modes: meters that predate OMS use these bits otherwise; like
        // wmbusmeters, the payload is read as plaintext.
        _ => return Ok(data),
    }
    let (Some(a), Some(meter)) = (address, meter) else {
        return Err(DecodeError::Unsupported(
            "security mode 5 without a meter address".into(),
        ));
    };
    let blocks = tpl.encrypted_blocks();
    let len = if blocks == 0 {
        data.len() / 16 * 16
    } else {
        16 * blocks
    };
    let Some(enc) = data.get(..len) else {
        return Err(DecodeError::Truncated(format!(
            "security mode 5: {blocks} encrypted blocks, {} bytes of payload",
            data.len()
        )));
    };
    if enc.is_empty() {
        return Err(DecodeError::Truncated(
            "security mode 5: no encrypted block".into(),
        ));
    }
    let key = KeyRef::Stored {
        meter,
        role: KeyRole::Mbus,
    };
    let mut plain = if mode == 7 {
        let m7 = mode7.ok_or_else(|| {
            DecodeError::Unsupported("security mode 7 without an AFL header".into())
        })?;
        open_mode7(key, a, m7, enc, crypto)?
    } else {
        let acc = tpl.access;
        let iv = [
            a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], acc, acc, acc, acc, acc, acc, acc, acc,
        ];
        crypto
            .aes_cbc_decrypt(key, &iv, enc)
            .map_err(|e| crypto_error(e, "security mode 5"))?
    };
    if !plain.starts_with(&[0x2F, 0x2F]) {
        return Err(DecodeError::Authentication(format!(
            "security mode {mode}: the decrypted payload does not start with 2F 2F (wrong key?)"
        )));
    }
    plain.extend_from_slice(data.get(len..).unwrap_or_default());
    Ok(Cow::Owned(plain))
}

/// Security mode 7 (OMS / EN 13757-7 security profile B): the key derivation function KDF-A,
/// `K = CMAC(master, D ‖ counter ‖ id ‖ 07 × 7)` with D = 00 for encryption and 01 for the
/// MAC, verifies the AFL MAC (CMAC over MCL ‖ MCR ‖ ML ‖ the transport layer from its CI),
/// then decrypts with AES-128-CBC and a zero IV.
///
/// Written from the standard; the open sources carry no mode 7 frame with its key, so the
/// tests check it against frames built the same way.
fn open_mode7(
    key: KeyRef<'_>,
    address: [u8; 8],
    m7: Mode7<'_>,
    enc: &[u8],
    crypto: &mut dyn Crypto,
) -> Result<Vec<u8>, DecodeError> {
    let counter = m7
        .afl
        .counter
        .ok_or_else(|| DecodeError::Malformed("security mode 7 without a message counter".into()))?
        .to_le_bytes();
    let derive = |d: u8| {
        [
            d, counter[0], counter[1], counter[2], counter[3], address[2], address[3], address[4],
            address[5], 7, 7, 7, 7, 7, 7, 7,
        ]
    };
    let k_enc = crypto
        .derive_key(key, Kdf::OmsCmac, &derive(0))
        .map_err(|e| crypto_error(e, "security mode 7"))?;
    if !m7.afl.mac.is_empty() {
        let k_mac = crypto
            .derive_key(key, Kdf::OmsCmac, &derive(1))
            .map_err(|e| crypto_error(e, "security mode 7"))?;
        let mut data = m7.afl.mac_prefix();
        data.extend_from_slice(m7.tpl_bytes);
        crypto
            .aes_cmac_verify(KeyRef::Derived(k_mac), &data, &m7.afl.mac)
            .map_err(|e| match e {
                CryptoError::AuthenticationFailed => DecodeError::Authentication(
                    "security mode 7: the AFL MAC does not verify (wrong key or tampered)".into(),
                ),
                other => crypto_error(other, "security mode 7 MAC"),
            })?;
    }
    crypto
        .aes_cbc_decrypt(KeyRef::Derived(k_enc), &[0; 16], enc)
        .map_err(|e| crypto_error(e, "security mode 7"))
}
