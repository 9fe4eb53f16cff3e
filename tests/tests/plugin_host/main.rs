//! End-to-end tests of the plugin host with real components built from source: hostile
//! plugins, package refusals, hot reload, and the three worlds.

#![allow(clippy::expect_used, clippy::panic, clippy::unwrap_used, missing_docs)]

mod packages;
mod reload;
mod sandbox;
mod worlds;
