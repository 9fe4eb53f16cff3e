//! End-to-end tests of the plugin host with real components built from source: hostile
//! plugins, package refusals, hot reload, the three worlds, the standard tariffs, and the
//! standard VEE rule pack on a simulated week.

#![allow(clippy::expect_used, clippy::panic, clippy::unwrap_used, missing_docs)]

mod crypto_ext;
mod hes_keys;
mod packages;
mod reload;
mod sandbox;
mod tariffs;
mod vee;
mod versions;
mod worlds;
