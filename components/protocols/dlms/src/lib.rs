//! DLMS/COSEM decoder (IEC 62056-5-3, -6-1, -6-2, -46, -47) in pure Rust: HDLC, wrapper and
//! LLC framing, xDLMS APDUs, A-XDR data, security suite 0 and the COSEM objects smart meters
//! push.
//!
//! [`decode`] takes one frame at any layer and turns it into canonical [`Decoded`] values:
//!
//! * **Layers** ([`layer`]): an HDLC frame (`7E`, [`hdlc`], read by its length field, HCS and
//!   FCS checked), an IEC 62056-47 wrapper (version `00 01`, [`wrapper`]), an LLC header
//!   (`E6 E7 00` / `E6 E6 00`, [`llc`]) or a bare APDU ([`apdu`]). HDLC control frames (SNRM,
//!   UA, DISC, RR, ...) carry no APDU and decode to an empty result. Segmented HDLC frames and
//!   datablocks that are not a whole transfer answer [`DecodeError::Unsupported`]: the adapter
//!   reassembles them.
//! * **Ciphering** ([`cipher`]): general-glo-ciphering and the glo service-specific APDUs
//!   (global keys), general-ded-ciphering and the ded service-specific APDUs (the
//!   association's dedicated key), security suite 0, keys named by the system title
//!   (lower-case hex) and role. A wrong key
//!   or tampered tag is [`DecodeError::Authentication`], a missing key
//!   [`DecodeError::MissingKey`]. A plaintext that is a DSMR telegram (`/...`, Luxembourg
//!   Smarty) goes to `ami_dsmr`.
//! * **Values** (`interpret`, [`cosem`]): data-notification lists of `{logical name,
//!   value[, scaler-unit]}` structures, name/value pairs (Kaifa, Kamstrup) or Kaifa's bare
//!   lists become readings (value × 10^scaler, DLMS unit) and text attributes; the clock
//!   `0-b:1.0.0` (else the notification's date-time, else `received_at_ms` with
//!   [`Quality::TIME_FROM_RECEIVER`](ami_domain::Quality::TIME_FROM_RECEIVER)) stamps them, its
//!   status setting `CLOCK_INVALID`; event notifications give events, the disconnect control
//!   `0-0:96.3.10` relay events. A body that is not a list is kept as A-XDR hex under
//!   `0-0:25.9.0.255`. Profile-generic buffers need their capture objects:
//!   [`cosem::profile_readings`].
//! * **Meter**: the system title of a ciphered frame; else `0-0:96.1.1`, `0-0:96.1.0`,
//!   `0-0:42.0.0`, then a device ID `x-x:0.0.0..9`.
//!
//! Requests, responses that do not name their attribute (a get-response without its
//! request) and association APDUs decode to a result without values; [`apdu::Apdu`] gives
//! their fields. The decoder never panics, allocates in proportion to the input and fails
//! with typed [`DecodeError`]s. Only `std`, `thiserror`, `ami-domain` and `ami-dsmr` are
//! used, so it builds for `wasm32-wasip2`.

pub mod apdu;
pub mod axdr;
pub mod cipher;
pub mod cosem;
mod cursor;
pub mod datetime;
pub mod hdlc;
mod interpret;
pub mod layer;
pub mod llc;
pub mod wrapper;

use ami_domain::crypto::Crypto;
pub use ami_domain::{DecodeError, Decoded};

use apdu::Apdu;

/// What the decoder is told beside the frame.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Options {
    /// The meter's system title, for ciphered APDUs that do not carry it (glo-get-response
    /// and the other service-specific forms: it comes from the association's AARE).
    pub system_title: Option<[u8; 8]>,
}

impl Options {
    /// Options from a host's meter hint: a 16-digit hex system title, else nothing.
    pub fn from_meter_hint(hint: Option<&str>) -> Self {
        let system_title = hint.and_then(|h| {
            let h = h.trim();
            if h.len() != 16 || !h.bytes().all(|b| b.is_ascii_hexdigit()) {
                return None;
            }
            let mut st = [0u8; 8];
            for (i, b) in st.iter_mut().enumerate() {
                *b = u8::from_str_radix(h.get(2 * i..2 * i + 2)?, 16).ok()?;
            }
            Some(st)
        });
        Self { system_title }
    }
}

/// Decodes one frame (HDLC, wrapper, LLC + APDU or APDU) received at `received_at_ms`
/// (milliseconds since the Unix epoch, UTC; used when the frame carries no time).
///
/// `crypto` decrypts ciphered APDUs by key reference (see [`cipher`]).
pub fn decode(
    frame: &[u8],
    received_at_ms: i64,
    crypto: &mut dyn Crypto,
) -> Result<Decoded, DecodeError> {
    decode_with(frame, received_at_ms, crypto, &Options::default())
}

/// [`decode`] with the DLMS cryptography and options.
pub fn decode_with(
    frame: &[u8],
    received_at_ms: i64,
    crypto: &mut dyn Crypto,
    options: &Options,
) -> Result<Decoded, DecodeError> {
    match layer::unwrap(frame)?.apdu {
        None => Ok(Decoded::default()),
        Some(bytes) => decode_apdu(bytes, received_at_ms, crypto, options),
    }
}

/// Decodes one APDU (no framing).
pub fn decode_apdu(
    bytes: &[u8],
    received_at_ms: i64,
    crypto: &mut dyn Crypto,
    options: &Options,
) -> Result<Decoded, DecodeError> {
    match Apdu::parse(bytes)? {
        Apdu::Ciphered(c) => {
            let plaintext =
                cipher::decrypt(&c, options.system_title.as_ref().map(|s| &s[..]), crypto)?;
            let meter = c
                .system_title
                .or(options.system_title.as_ref().map(|s| &s[..]))
                .map(cipher::system_title_hex);
            if plaintext.first() == Some(&b'/') {
                let mut d = ami_dsmr::decode(&plaintext, received_at_ms)?;
                if d.meter.is_none() {
                    d.meter = meter;
                }
                return Ok(d);
            }
            let inner = Apdu::parse(&plaintext)?;
            interpret::interpret(&inner, received_at_ms, meter)
        }
        apdu => interpret::interpret(&apdu, received_at_ms, None),
    }
}
