//! M-Bus decoder: wired M-Bus (EN 13757-2 long frames) and wireless M-Bus (EN 13757-4
//! link-layer frames, OMS), with the EN 13757-3 application layer, in pure Rust.
//!
//! [`decode`] turns one frame into canonical [`Decoded`] values. It tells the two link layers
//! apart by their first bytes (`68 L L 68`: wired; anything else: a wireless frame starting
//! at its L field, with or without its CRC blocks), walks the layers once ([`wired`] or
//! [`wireless`], then [`ell`] and the AFL header, then [`tpl`]), decrypts where the frame
//! says so through a [`Crypto`] provider that holds the keys, reads the records
//! ([`record`], [`vif`]) and maps them ([`mapping`]). It never panics and allocates in
//! proportion to the input; every failure is a typed [`DecodeError`]. Only `std`,
//! `thiserror` and `ami-domain` are used, so the crate builds for `wasm32-wasip2` as it
//! does natively.
//!
//! # What comes out
//!
//! * **Meter**: `MMM-IIIIIIII`, the manufacturer's three letters and the identification
//!   number's eight digits as printed on the meter (`KAM-12345678`), from the long transport
//!   header when the frame has one (wired frames, repeated or gateway frames), else from the
//!   wireless link header. A wired frame without a long header names no meter; a
//!   fixed-structure frame (CI `0x73`) names the identification number alone. This identity
//!   is also the key-store name of the meter's M-Bus key.
//! * **Readings**: every numeric record of a measured quantity, in base units (the VIF's
//!   power of ten in the scale, durations in seconds), under the OBIS register of
//!   [`mapping`] (medium → A, subunit → B, quantity → C.D, tariff → E, storage number → F).
//! * **Attributes**: identifiers, versions, flags, dates and every value that is not a
//!   number; manufacturer-specific data as hex.
//! * **Truncation**: a wireless payload whose last record is cut off keeps its complete
//!   records and says so in the attribute `0-0:97.97.2` (receivers log such frames, and
//!   wmbusmeters accepts them); a wired frame fails with [`DecodeError::Truncated`].
//! * **Events**: an [`EventKind::Alarm`] with the status byte
//!   as code when the status reports an error or low power (bits 0-4), and for application
//!   errors (CI `0x70`, the error code) and alarms (CI `0x71`).
//!
//! # Security
//!
//! Keys stay with the [`Crypto`] provider, named `KeyRef::Stored { meter, role:
//! KeyRole::Mbus }` with the meter identity above:
//!
//! * TPL security mode 5: [`Crypto::aes_cbc_decrypt`], IV = M ‖ A ‖ 8 × access number.
//! * TPL security mode 7 (with the AFL header): [`Crypto::derive_key`] with
//!   [`Kdf::OmsCmac`](ami_domain::crypto::Kdf::OmsCmac) (KDF-A), the AFL MAC through
//!   [`Crypto::aes_cmac_verify`], then AES-CBC with a zero IV. No published frame with its
//!   key exists; it is tested against frames built from EN 13757-7.
//! * ELL-II/IV AES-128-CTR: [`Crypto::aes_ctr_apply`], checked by the payload CRC.
//!
//! No key: [`DecodeError::MissingKey`]; wrong key or tampered frame (no `2F 2F` after
//! decryption, CRC or MAC mismatch): [`DecodeError::Authentication`]. Payloads that are
//! already plaintext behind an encryption flag (they start with `2F 2F`, or their ELL CRC
//! matches) are accepted without a key, as wmbusmeters does. DES (modes 2, 3), modes 8-10
//! and 13, manufacturer-specific CIs (`0xA0`-`0xB7`) and compact frames (CI `0x79`, which
//! need an earlier full frame) are [`DecodeError::Unsupported`].

use std::borrow::Cow;

use ami_domain::crypto::Crypto;
use ami_domain::{Event, EventKind, Obis};

pub mod ell;
pub mod mapping;
pub mod record;
pub mod tpl;
pub mod vif;
pub mod wired;
pub mod wireless;

pub use ami_domain::{DecodeError, Decoded};
pub use record::{Function, Item, Record, Records, Value};
pub use wireless::{LinkHeader, meter_id};

/// The link layer a frame came over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Link {
    /// Wired M-Bus: C field and primary address.
    Wired {
        /// C field.
        c: u8,
        /// Primary address.
        a: u8,
    },
    /// Wireless M-Bus: the link header.
    Wireless(LinkHeader),
}

/// A frame with its layers read and its application data in plaintext.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Telegram<'a> {
    /// The link layer.
    pub link: Link,
    /// The extended link layer, if any.
    pub ell: Option<ell::Ell>,
    /// The authentication and fragmentation layer, if any.
    pub afl: Option<ell::Afl>,
    /// The transport header, if any.
    pub tpl: Option<tpl::Tpl>,
    /// The CI field of the application data.
    pub ci: u8,
    /// The meter identity (see the crate documentation).
    pub meter: Option<String>,
    /// The device type (medium) of the meter.
    pub device_type: u8,
    /// The application data after the transport header, decrypted.
    pub payload: Cow<'a, [u8]>,
}

impl Telegram<'_> {
    /// The records of the payload (for CIs `0x72`, `0x7A`, `0x78`).
    pub fn records(&self) -> Records<'_> {
        Records::new(&self.payload)
    }
}

fn tail<'a>(body: Cow<'a, [u8]>, from: usize) -> Cow<'a, [u8]> {
    match body {
        Cow::Borrowed(b) => Cow::Borrowed(b.get(from..).unwrap_or_default()),
        Cow::Owned(mut v) => {
            v.drain(..from.min(v.len()));
            Cow::Owned(v)
        }
    }
}

/// What opening a transport layer needs besides its bytes.
struct TplContext<'t> {
    tpl: Option<&'t tpl::Tpl>,
    afl: Option<&'t ell::Afl>,
    address: Option<[u8; 8]>,
    meter: Option<&'t str>,
    hlen: usize,
    wired: bool,
}

impl TplContext<'_> {
    /// The plaintext after the header of the transport layer `b` (CI first).
    fn open<'b>(&self, b: &'b [u8], crypto: &mut dyn Crypto) -> Result<Cow<'b, [u8]>, DecodeError> {
        let data = Cow::Borrowed(b.get(self.hlen..).unwrap_or_default());
        let Some(t) = self.tpl else { return Ok(data) };
        let mode7 = self
            .afl
            .filter(|_| t.security_mode() == 7)
            .map(|a| tpl::Mode7 {
                afl: a,
                tpl_bytes: b,
            });
        tpl::open(t, self.address, self.meter, data, self.wired, mode7, crypto)
    }
}

/// Reads the transport layer of `body` (CI first) and decrypts its payload.
fn transport<'a>(
    link: Link,
    ell: Option<ell::Ell>,
    afl: Option<ell::Afl>,
    body: Cow<'a, [u8]>,
    crypto: &mut dyn Crypto,
) -> Result<Telegram<'a>, DecodeError> {
    let ci = *body
        .first()
        .ok_or_else(|| DecodeError::Truncated("no CI field".into()))?;
    let (link_addr, link_type) = match link {
        Link::Wireless(h) => (Some((h.address_bytes(), h.meter())), h.device_type),
        Link::Wired { .. } => (None, 0),
    };
    match ci {
        0x72 | 0x7A | 0x78 => {
            let (tpl, hlen) = tpl::parse(&body)?;
            let long = tpl.and_then(|t| t.address);
            let (address, meter, device_type) = match (long, &link_addr) {
                (Some(a), _) => (Some(a.bytes()), Some(a.meter()), a.device_type),
                (None, Some((bytes, meter))) => (Some(*bytes), Some(meter.clone()), link_type),
                (None, None) => (None, None, 0),
            };
            let wired = matches!(link, Link::Wired { .. });
            let ctx = TplContext {
                tpl: tpl.as_ref(),
                afl: afl.as_ref(),
                address,
                meter: meter.as_deref(),
                hlen,
                wired,
            };
            let payload = match body {
                Cow::Borrowed(b) => ctx.open(b, crypto)?,
                Cow::Owned(v) => Cow::Owned(ctx.open(&v, crypto)?.into_owned()),
            };
            Ok(Telegram {
                link,
                ell,
                afl,
                tpl,
                ci,
                meter,
                device_type,
                payload,
            })
        }
        0x70 | 0x71 | 0x73 => Ok(Telegram {
            link,
            ell,
            afl,
            tpl: None,
            ci,
            meter: link_addr.map(|(_, m)| m),
            device_type: link_type,
            payload: tail(body, 1),
        }),
        0x79 => Err(DecodeError::Unsupported(
            "compact frame (CI 0x79): needs the full frame of its format signature".into(),
        )),
        0xA0..=0xB7 => Err(DecodeError::Unsupported(format!(
            "manufacturer-specific CI 0x{ci:02X}"
        ))),
        _ => Err(DecodeError::Unsupported(format!("CI field 0x{ci:02X}"))),
    }
}

/// Reads a wired long frame down to its plaintext application data.
pub fn parse_wired<'a>(
    frame: &'a [u8],
    crypto: &mut dyn Crypto,
) -> Result<Telegram<'a>, DecodeError> {
    let f = wired::parse(frame)?;
    let body = frame
        .get(6..6 + 1 + f.data.len())
        .ok_or_else(|| DecodeError::Truncated("long frame".into()))?;
    if f.ci == 0x76 {
        return Err(DecodeError::Unsupported(
            "variable data structure with MSB first (CI 0x76)".into(),
        ));
    }
    transport(
        Link::Wired { c: f.c, a: f.a },
        None,
        None,
        Cow::Borrowed(body),
        crypto,
    )
}

/// Reads a wireless frame (from its L field) down to its plaintext application data.
pub fn parse_wireless<'a>(
    frame: &'a [u8],
    crypto: &mut dyn Crypto,
) -> Result<Telegram<'a>, DecodeError> {
    let f = wireless::parse(frame)?;
    let link = Link::Wireless(f.header);
    let mut body = f.body;
    let mut ell = None;
    if let Some(&ci) = body.first()
        && ell::is_ell(ci)
    {
        let (e, len) = ell::parse(&body)?;
        body = tail(body, len);
        if e.session.is_some() {
            body = ell::open(&e, &f.header, &f.header.meter(), body, crypto)?;
        }
        ell = Some(e);
    }
    let mut afl = None;
    if body.first() == Some(&0x90) {
        let (a, len) = ell::afl(&body)?;
        body = tail(body, len);
        afl = Some(a);
    }
    if body.is_empty() && ell.is_some() {
        return Err(DecodeError::Unsupported(
            "extended link layer without application data".into(),
        ));
    }
    transport(link, ell, afl, body, crypto)
}

/// The text of an application error code (CI `0x70`).
fn application_error(code: Option<u8>) -> &'static str {
    match code {
        None | Some(0) => "unspecified error",
        Some(1) => "unimplemented CI field",
        Some(2) => "buffer too long, truncated",
        Some(3) => "too many records",
        Some(4) => "premature end of record",
        Some(5) => "more than 10 DIFEs",
        Some(6) => "more than 10 VIFEs",
        Some(8) => "application busy",
        Some(9) => "too many readouts",
        Some(_) => "reserved error code",
    }
}

/// The decoded values of a telegram.
pub fn interpret(t: &Telegram<'_>, received_at_ms: i64) -> Result<Decoded, DecodeError> {
    let a = mapping::medium_group(t.device_type);
    let mut out = Decoded {
        meter: t.meter.clone(),
        ..Decoded::default()
    };
    let alarm = |code: u32| Event {
        kind: EventKind::Alarm,
        ts_ms: received_at_ms,
        code,
        source: None,
        duration_s: 0,
    };
    match t.ci {
        0x70 => {
            let code = t.payload.first().copied();
            out.events.push(alarm(u32::from(code.unwrap_or(0))));
            out.attributes.push((
                Obis::new(0, 0, 97, 97, 1, 255),
                application_error(code).into(),
            ));
            return Ok(out);
        }
        0x71 => {
            let code = t.payload.first().copied().unwrap_or(0);
            out.events.push(alarm(u32::from(code)));
            return Ok(out);
        }
        0x73 => return fixed(t, received_at_ms, out),
        _ => {}
    }
    if let Some(tpl) = &t.tpl
        && tpl.status & 0x1F != 0
    {
        out.events.push(alarm(u32::from(tpl.status)));
    }
    let mut items: Vec<Item<'_>> = Vec::new();
    for item in t.records() {
        match item {
            Ok(i) => items.push(i),
            // Wireless receivers log payloads with a cut-off last record (padding, bytes
            // after the encrypted blocks); like wmbusmeters, the complete records count.
            Err(DecodeError::Truncated(why)) if matches!(t.link, Link::Wireless(_)) => {
                out.attributes
                    .push((Obis::new(0, 0, 97, 97, 2, 255), format!("truncated: {why}")));
                break;
            }
            Err(e) => return Err(e),
        }
    }
    mapping::interpret(&items, a, received_at_ms, &mut out);
    Ok(out)
}

/// The fixed data structure (CI `0x73`, EN 13757-3 Annex G): identification number,
/// access number, status, medium and units, two 4-byte counters.
fn fixed(t: &Telegram<'_>, received_at_ms: i64, mut out: Decoded) -> Result<Decoded, DecodeError> {
    let &[i0, i1, i2, i3, _acc, status, mu0, mu1, ref counters @ ..] = t.payload.as_ref() else {
        return Err(DecodeError::Truncated("fixed data structure".into()));
    };
    let (Some(c1), Some(c2)) = (counters.get(..4), counters.get(4..8)) else {
        return Err(DecodeError::Truncated(
            "fixed data structure counters".into(),
        ));
    };
    let id = u32::from_le_bytes([i0, i1, i2, i3]);
    out.meter = Some(format!("{id:08X}"));
    let medium = ((mu0 & 0xC0) >> 6) | ((mu1 & 0xC0) >> 4);
    // The fixed structure's medium codes: 0 other, 1 oil, 2 electricity, 3 gas, 4 heat,
    // 5 steam, 6 hot water, 7 water, 8 HCA, ... as the device types.
    let a = mapping::medium_group(medium);
    let binary = status & 0x80 != 0;
    let value = |b: &[u8]| -> Option<i64> {
        if binary {
            Some(record::int_le(b))
        } else {
            record::bcd_le(b)
        }
    };
    let unit1 = mu0 & 0x3F;
    let unit2 = mu1 & 0x3F;
    let (unit2, storage2) = if unit2 == 0x3E {
        (unit1, 1)
    } else {
        (unit2, 0)
    };
    for (code, raw, storage) in [(unit1, c1, 0u8), (unit2, c2, storage2)] {
        let Some((kind, unit, exp)) = mapping::fixed_unit(code) else {
            continue;
        };
        let Some(v) = value(raw) else { continue };
        let (_, c, d) = mapping::codes(kind, a, false);
        out.readings.push(ami_domain::Reading {
            register: Obis::new(a, 0, c, d, 0, if storage == 0 { 255 } else { storage }),
            value: ami_domain::Quantity::new(v, exp),
            unit,
            ts_ms: received_at_ms,
            quality: ami_domain::Quality::TIME_FROM_RECEIVER,
        });
    }
    Ok(out)
}

/// Decodes a wired long frame.
pub fn decode_wired(
    frame: &[u8],
    received_at_ms: i64,
    crypto: &mut dyn Crypto,
) -> Result<Decoded, DecodeError> {
    interpret(&parse_wired(frame, crypto)?, received_at_ms)
}

/// Decodes a wireless link-layer frame.
pub fn decode_wireless(
    frame: &[u8],
    received_at_ms: i64,
    crypto: &mut dyn Crypto,
) -> Result<Decoded, DecodeError> {
    interpret(&parse_wireless(frame, crypto)?, received_at_ms)
}

/// Decodes one frame received at `received_at_ms` (milliseconds since the Unix epoch, UTC;
/// the readings' time unless the frame carries one): a wired frame if it starts like one
/// ([`wired::looks_wired`]), else a wireless link-layer frame.
pub fn decode(
    frame: &[u8],
    received_at_ms: i64,
    crypto: &mut dyn Crypto,
) -> Result<Decoded, DecodeError> {
    if wired::looks_wired(frame) {
        decode_wired(frame, received_at_ms, crypto)
    } else {
        decode_wireless(frame, received_at_ms, crypto)
    }
}
