//! The head-end system (HES) of ami: the meter registry, the encrypted key store, meter events
//! and outage detection, served as the `ami.hes.v1` gRPC API.
//!
//! In the data flow, the host runtime decodes frames with keys it gets from this crate's
//! [`KeyProvider`] (an [`ami_crypto::KeyStore`]: decoders name a key, never hold one) and
//! publishes meter events on `<root>.events.<kind>.<meter>`; the HES consumes them
//! ([`EventHub`]), stores them, streams them and correlates last gasps by grid topology into
//! outages ([`OutageDetector`]). Integrators (CIS, OMS) use the gRPC services; operators import
//! meters from CSV ([`csv`]).
//!
//! * [`store`]: [`RegistryStore`] on PostgreSQL or embedded SQLite ([`AnyStore`] from a URL).
//! * [`keys`]: envelope encryption under a master key ([`KeyWrapper`], [`LocalMasterKey`]),
//!   rotation with a grace period ([`KeyVault`]), and the host-side [`KeyProvider`].
//! * [`events`] and [`outage`]: event ingest and outage correlation, confirmation, restoration.
//! * [`commands`]: the command service over the `ami-commands` engine (signed downlink
//!   commands, bulk disconnects with second approval, firmware campaigns).
//! * [`server`]: [`server::ServerConfig`], [`server::serve`]; [`auth`]: tokens and roles;
//!   [`error`]: one error type mapped to gRPC codes; [`proto`]: the generated code.

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod auth;
pub mod commands;
pub mod csv;
pub mod error;
pub mod events;
pub mod keys;
pub mod model;
pub mod outage;
pub mod proto;
pub mod server;
pub mod store;

pub use error::{HesError, Result};
pub use events::EventHub;
pub use keys::{KeyBytes, KeyProvider, KeyVault, KeyWrapper, LocalMasterKey, MasterKeySource};
pub use model::{EventFilter, KeyMetadata, KeyState, Meter, MeterFilter, MeterStatus};
pub use outage::{NoPinger, Outage, OutageConfig, OutageDetector, Pinger, StaticPinger};
pub use store::{AnyStore, PgStore, RegistryStore, SqliteStore};
