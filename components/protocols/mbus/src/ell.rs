//! The extended link layer (EN 13757-4 §13.2, CI `0x8C`-`0x8F`) and the authentication and
//! fragmentation layer header (EN 13757-7, CI `0x90`) that may follow it.
//!
//! ELL-II and ELL-IV (CI `0x8D`/`0x8F`) carry a session number whose top three bits name the
//! encryption: 0 plaintext, 1 AES-128-CTR with the meter's key, counter block
//! `M ‖ A ‖ CC ‖ SN ‖ FN(0000) ‖ BC(00)`. The encrypted part starts with a CRC-16 of the
//! payload, which tells a right key from a wrong one; a payload whose CRC already matches is
//! taken as plaintext (receivers log frames they have decrypted with the flag still set).

use std::borrow::Cow;

use ami_domain::DecodeError;
use ami_domain::crypto::{Crypto, CryptoError, KeyRef, KeyRole};

use crate::wireless::{LinkHeader, crc16};

/// An extended link layer header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ell {
    /// The CI field (`0x8C`-`0x8F`).
    pub ci: u8,
    /// The communication control field.
    pub cc: u8,
    /// The access number.
    pub acc: u8,
    /// ELL-III/IV: the original sender's manufacturer and address (6 bytes as sent).
    pub address: Option<(u16, [u8; 6])>,
    /// ELL-II/IV: the session number.
    pub session: Option<u32>,
}

impl Ell {
    /// The encryption of an ELL-II/IV payload (session number bits 29-31); 0 = none.
    pub fn encryption(&self) -> u8 {
        self.session.map_or(0, |s| (s >> 29) as u8)
    }
}

/// Whether `ci` opens an extended link layer.
pub const fn is_ell(ci: u8) -> bool {
    matches!(ci, 0x8C..=0x8F)
}

/// Reads the ELL header at the start of `body` (its CI first); returns it and its length.
pub fn parse(body: &[u8]) -> Result<(Ell, usize), DecodeError> {
    let short = || DecodeError::Truncated("extended link layer header".into());
    let (&ci, rest) = body.split_first().ok_or_else(short)?;
    let (&cc, rest) = rest.split_first().ok_or_else(short)?;
    let (&acc, rest) = rest.split_first().ok_or_else(short)?;
    let (address, rest) = match (ci, rest) {
        (0x8E | 0x8F, &[m0, m1, a0, a1, a2, a3, a4, a5, ref rest @ ..]) => (
            Some((u16::from_le_bytes([m0, m1]), [a0, a1, a2, a3, a4, a5])),
            rest,
        ),
        (0x8E | 0x8F, _) => return Err(short()),
        _ => (None, rest),
    };
    let session = match (ci, rest) {
        (0x8D | 0x8F, &[s0, s1, s2, s3, ..]) => Some(u32::from_le_bytes([s0, s1, s2, s3])),
        (0x8D | 0x8F, _) => return Err(short()),
        _ => None,
    };
    let len = match ci {
        0x8C => 3,
        0x8D => 7,
        0x8E => 11,
        0x8F => 15,
        _ => {
            return Err(DecodeError::Unsupported(format!(
                "extended link layer CI 0x{ci:02X}"
            )));
        }
    };
    Ok((
        Ell {
            ci,
            cc,
            acc,
            address,
            session,
        },
        len,
    ))
}

fn crc_matches(part: &[u8]) -> bool {
    match part {
        [lo, hi, payload @ ..] => crc16(payload) == u16::from_le_bytes([*lo, *hi]),
        _ => false,
    }
}

/// Maps a crypto failure to a decode error for `meter`.
pub fn crypto_error(e: CryptoError, what: &str) -> DecodeError {
    match e {
        CryptoError::NoKey { meter, .. } => {
            DecodeError::MissingKey(format!("no M-Bus key for meter {meter} ({what})"))
        }
        CryptoError::AuthenticationFailed => DecodeError::Authentication(what.into()),
        other => DecodeError::Malformed(format!("{what}: {other}")),
    }
}

/// The payload of an ELL-II/IV frame (`part` starts at the payload CRC), decrypted if the
/// session number says so, without its CRC.
pub fn open<'a>(
    ell: &Ell,
    link: &LinkHeader,
    meter: &str,
    part: Cow<'a, [u8]>,
    crypto: &mut dyn Crypto,
) -> Result<Cow<'a, [u8]>, DecodeError> {
    let enc = ell.encryption();
    if part.len() < 2 {
        return Err(DecodeError::Truncated("ELL payload CRC".into()));
    }
    let plain = if enc == 0 || crc_matches(&part) {
        part
    } else if enc == 1 {
        let a = link.address_bytes();
        let sn = ell.session.unwrap_or_default().to_le_bytes();
        let iv = [
            a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], ell.cc, sn[0], sn[1], sn[2], sn[3], 0,
            0, 0,
        ];
        let key = KeyRef::Stored {
            meter,
            role: KeyRole::Mbus,
        };
        let out = crypto
            .aes_ctr_apply(key, &iv, &part)
            .map_err(|e| crypto_error(e, "ELL AES-CTR"))?;
        if !crc_matches(&out) {
            return Err(DecodeError::Authentication(
                "ELL AES-CTR: the payload CRC does not match after decryption (wrong key?)".into(),
            ));
        }
        Cow::Owned(out)
    } else {
        return Err(DecodeError::Unsupported(format!(
            "ELL session encryption {enc}"
        )));
    };
    Ok(match plain {
        Cow::Borrowed(b) => Cow::Borrowed(b.get(2..).unwrap_or_default()),
        Cow::Owned(mut v) => {
            v.drain(..2);
            Cow::Owned(v)
        }
    })
}

/// An authentication and fragmentation layer header (EN 13757-7 §6).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Afl {
    /// The fragmentation control field.
    pub fcl: u16,
    /// The message control field (bits 0-3: authentication type).
    pub mcl: Option<u8>,
    /// The key information field.
    pub key_info: Option<u16>,
    /// The message counter.
    pub counter: Option<u32>,
    /// The MAC, as sent.
    pub mac: Vec<u8>,
    /// The message length field.
    pub length: Option<u16>,
}

impl Afl {
    /// The bytes the MAC covers before the transport layer: MCL, MCR and ML, as sent.
    pub fn mac_prefix(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(7);
        v.extend(self.mcl);
        v.extend(self.counter.map(u32::to_le_bytes).into_iter().flatten());
        v.extend(self.length.map(u16::to_le_bytes).into_iter().flatten());
        v
    }
}

/// The MAC length of an AFL authentication type (MCL bits 0-3).
const fn mac_len(at: u8) -> Option<usize> {
    match at {
        0 => Some(0),
        3 => Some(2),
        4 => Some(4),
        5 => Some(8),
        6 | 8 => Some(12),
        7 => Some(16),
        _ => None,
    }
}

/// Reads the AFL header at the start of `body` (CI `0x90`, AFLL, then AFLL bytes: FCL and,
/// as the FCL says, MCL, KI, MCR, MAC, ML); returns it and its length. Fragmented messages
/// (FCL "more fragments") are unsupported.
pub fn afl(body: &[u8]) -> Result<(Afl, usize), DecodeError> {
    let short = || DecodeError::Truncated("AFL header".into());
    let &[_, afll, f0, f1, ref rest @ ..] = body else {
        return Err(short());
    };
    if afll < 2 {
        return Err(DecodeError::Malformed(format!(
            "AFL length {afll}: shorter than its FCL"
        )));
    }
    let len = 2 + usize::from(afll);
    let fields = rest
        .get(..usize::from(afll).saturating_sub(2))
        .ok_or_else(short)?;
    let fcl = u16::from_le_bytes([f0, f1]);
    if fcl & 0x4000 != 0 {
        return Err(DecodeError::Unsupported(
            "fragmented AFL message (more fragments follow)".into(),
        ));
    }
    let mut pos = 0usize;
    let mut take = |n: usize| -> Result<&[u8], DecodeError> {
        let s = fields.get(pos..pos + n).ok_or_else(short)?;
        pos += n;
        Ok(s)
    };
    let mcl = if fcl & 0x2000 != 0 {
        take(1)?.first().copied()
    } else {
        None
    };
    let key_info = if fcl & 0x0200 != 0 {
        let b = take(2)?;
        Some(u16::from_le_bytes([
            b.first().copied().unwrap_or(0),
            b.get(1).copied().unwrap_or(0),
        ]))
    } else {
        None
    };
    let counter = if fcl & 0x0800 != 0 {
        let b = take(4)?;
        let mut a = [0u8; 4];
        a.copy_from_slice(b);
        Some(u32::from_le_bytes(a))
    } else {
        None
    };
    let mac = if fcl & 0x0400 != 0 {
        let at = mcl.unwrap_or(0) & 0x0F;
        let n = mac_len(at)
            .ok_or_else(|| DecodeError::Unsupported(format!("AFL authentication type {at}")))?;
        take(n)?.to_vec()
    } else {
        Vec::new()
    };
    let length = if fcl & 0x1000 != 0 {
        let b = take(2)?;
        Some(u16::from_le_bytes([
            b.first().copied().unwrap_or(0),
            b.get(1).copied().unwrap_or(0),
        ]))
    } else {
        None
    };
    Ok((
        Afl {
            fcl,
            mcl,
            key_info,
            counter,
            mac,
            length,
        },
        len,
    ))
}
