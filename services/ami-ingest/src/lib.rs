//! The host runtime's ingest service (`ami host`): raw frames from the bus, decoded by the
//! decoder component installed for their protocol, out again as canonical readings
//! (`<root>.readings.<meter>`), events (`<root>.events.<kind>.<meter>`) and dead letters
//! (`<root>.dead.<protocol>.<adapter>`, with the reason and the plugin version).
//!
//! [`decode`] turns one batch into messages; [`service`] runs the fetch, decode, publish, ack
//! loop on either bus. Every replica binds the same durable consumer, so N replicas share the
//! frames; delivery is at least once and every output carries a de-duplication id derived from
//! its frame's, so a redelivered frame is stored once downstream.

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod decode;
pub mod service;

pub use decode::{BatchOutput, decode_batch};
pub use service::{Ingest, IngestConfig, IngestError, IngestStats};
