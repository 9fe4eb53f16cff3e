//! Canonical metering types shared by every part of ami.
//!
//! Decoders (native or as Wasm components), the plugin host, the MDMS and the HES all speak in
//! these terms: a register is an [`Obis`] code, a value is a [`Quantity`] (a scaled integer,
//! never a binary float) with a [`Unit`], each [`Reading`] carries [`Quality`] flags and a UTC
//! timestamp (the interval's end), and meters report [`Event`]s. The crate does no I/O.

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod checksum;
pub mod crypto;
pub mod error;
pub mod event;
pub mod obis;
pub mod quantity;
pub mod reading;
pub mod time;
pub mod unit;

pub use error::DecodeError;
pub use event::{Event, EventKind};
pub use obis::{Obis, ObisError};
pub use quantity::{Quantity, QuantityError};
pub use reading::{Decoded, Quality, Reading};
pub use unit::{Unit, UnitError};
