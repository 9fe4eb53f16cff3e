//! The sandboxed Wasm plugin host of ami.
//!
//! Protocol decoders, VEE rules and tariffs ship as Wasm components built on the `ami:plugin`
//! WIT worlds (`wit/`). This crate loads a signed plugin package ([`package`]), refuses one that
//! does not verify or targets another world, pre-instantiates it and runs every call under a
//! memory cap and a time bound ([`limits`]). A trap, a limit hit, a panic or a malformed result
//! fails that one call with a typed [`CallError`]; the host and the other plugins carry on.
//! Installed plugins live in a [`Host`] registry that replaces a version without dropping calls
//! in flight. Decoders do their cryptography through the host ([`crypto`]) against keys held by a
//! [`KeyStore`]: no key byte ever enters a plugin.

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod bindings;
pub mod convert;
pub mod crypto;
pub mod error;
pub mod host;
pub mod limits;
pub mod manifest;
pub mod metrics;
pub mod package;
pub mod plugin;
mod sandbox;
pub mod trust;

pub use ami_crypto::{CryptoCtx, Key, KeyRole, KeyStore, MemoryKeyStore};
pub use error::{CallError, CallFailure, LoadError};
pub use host::{Host, HostConfig};
pub use limits::Limits;
pub use manifest::{
    Manifest, PluginKind, WIT_PACKAGE, WIT_VERSION, WIT_VERSIONS_LOADED, loaded_versions,
};
pub use metrics::{PluginStats, render_openmetrics};
pub use package::Package;
pub use plugin::{ComponentInfo, FrameFailure, InputFrame, Plugin, describe};
pub use trust::TrustStore;
