//! The meter fleet simulator: virtual meters with realistic load shapes that emit frames in the
//! real wire formats, for `ami up`, the end-to-end tests and the benchmarks.
//!
//! Today the fleet speaks DSMR P1 (v5.0, CRC16); the other formats follow the same shape: a
//! [`Meter`] keeps its physical state and a wire module renders it.

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod dsmr;
pub mod fleet;
pub mod shape;

pub use fleet::{Fleet, Meter};
