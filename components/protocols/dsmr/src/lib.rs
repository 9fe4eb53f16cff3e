//! DSMR P1 telegram decoder: Dutch DSMR 2.2 to 5.0.2, Belgian/Luxembourg e-MUCS and the
//! DSMR-like P1 ports of other countries (Ireland, Hungary, EasyMeter Q3D), in pure Rust.
//!
//! [`decode`] turns one telegram into canonical [`Decoded`] values. It reads the bytes once
//! for framing and CRC ([`telegram`]) and once for the data lines ([`object`]), without
//! regular expressions or copies; it allocates only the output. It never panics, and every
//! failure is a typed [`DecodeError`]. Only `std`, `thiserror` and `ami-domain` are used, so
//! the crate builds for `wasm32-wasip2` as it does natively.
//!
//! # What comes out
//!
//! * **Readings**: every value that is a decimal number (`001581.123*kWh`, `00015`), under
//!   the OBIS code exactly as the telegram writes it (group F = 255 unless written), in base
//!   units with the unit prefix in the scale (`12345.678*kWh` is `12345678 Wh`). A value
//!   without unit is a [`Unit::Count`](ami_domain::Unit::Count). Readings of objects that
//!   carry their own time stamp, `(time)(value)` (M-Bus `0-n:24.2.1`/`24.2.3`, Belgian
//!   maximum demand `1-0:1.6.0`), take it; the DSMR 2.2/3.0 M-Bus form `0-n:24.3.0` takes its
//!   capture time; the Belgian monthly history `0-0:98.1.0` gives one reading per month,
//!   stamped with the month's time stamp. All other readings take the telegram time
//!   `0-0:1.0.0`; without one (DSMR 2.2/3.0, EasyMeter) they take `received_at_ms` and
//!   [`Quality::TIME_FROM_RECEIVER`](ami_domain::Quality::TIME_FROM_RECEIVER). An own or
//!   telegram time stamp that is not a valid date sets
//!   [`Quality::CLOCK_INVALID`](ami_domain::Quality::CLOCK_INVALID) (and the reading falls
//!   back to the telegram's, then the receiver's time).
//! * **Events**: each entry of the power failure event log `1-0:99.97.0` is an
//!   [`EventKind::PowerDown`](ami_domain::EventKind::PowerDown) at the entry's (end) time
//!   with its duration in seconds; entries whose time is not a valid date are dropped.
//! * **Attributes**: every value that is not a number, and the objects DSMR types as text
//!   even when they look numeric: equipment identifiers (kept exactly as sent, hex and all),
//!   the tariff indicator, text messages, versions, status words, the raw telegram time
//!   stamp. Enumeration codes (M-Bus device type, valve and breaker position) are given both
//!   as text exactly as sent and as a count reading. An object with several groups that is
//!   not one of the shapes above is kept whole as `(a)(b)...` text. See [`cosem`].
//! * **Meter**: the equipment identifier `0-0:96.1.1`; failing that `0-0:96.1.0`,
//!   `0-0:96.1.255`, `0-0:42.0.0` (first non-empty in that order); else `None`. The header
//!   identification (`/KFM5KAIFA-METER`) is *not* used: it names a meter model, shared by
//!   every meter of that type ([`Telegram::header`] gives it).
//!
//! Unknown objects never fail a telegram. Lines that are not `OBIS(value)...` do
//! ([`DecodeError::Malformed`], naming the line), as do a CRC mismatch
//! ([`DecodeError::Checksum`]) and a missing `!` end line ([`DecodeError::Truncated`]).
//!
//! # Time
//!
//! DSMR time stamps are Central European wall-clock time; see [`time`] for how they become
//! UTC (the calendar's offset, the `S`/`W` letter only for the hour around a change, as
//! `dsmr_parser` does).
//!
//! # Encrypted P1
//!
//! Encrypted ports (Luxembourg Smarty, some e-MUCS meters) send a DLMS general-glo-ciphering
//! APDU (first byte 0xDB). That is the DLMS decoder's job; [`decode`] answers
//! [`DecodeError::Unsupported`] and decodes the plaintext telegram once it has been decrypted.

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod cosem;
mod interpret;
pub mod object;
mod scan;
pub mod telegram;
pub mod time;
pub mod value;

pub use ami_domain::{DecodeError, Decoded};
pub use telegram::{Telegram, crc16, frame};

/// Decodes one P1 telegram (from `/` through the `!` line) received at `received_at_ms`
/// (milliseconds since the Unix epoch, UTC; used when the telegram carries no time).
///
/// Leading blanks are skipped and anything after the `!` line is ignored.
pub fn decode(telegram: &[u8], received_at_ms: i64) -> Result<Decoded, DecodeError> {
    let framed = telegram::frame(telegram)?;
    interpret::interpret(&framed, received_at_ms)
}
