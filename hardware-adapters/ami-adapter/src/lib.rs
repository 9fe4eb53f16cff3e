//! The edge adapter library: what every adapter (DLMS client, IEC 62056-21 and DSMR P1
//! readers, wM-Bus receiver, MQTT bridge, the simulator's link) shares.
//!
//! A link hands the frames it receives to [`Adapter::accept`], which writes them to an on-disk
//! [`spool`] before returning; the [`forward`] task publishes them to the bus
//! (`<root>.raw.<protocol>.<adapter>`) in order, in batches, with a de-duplication id, and
//! forgets them only once the bus has stored them. Nothing is lost while NATS or the WAN is
//! down, nor when the adapter restarts.
//!
//! The [`downlink`] runs the other way: signed commands from the head-end, verified,
//! de-duplicated and handed to the adapter's [`MeterLink`], answered with acks; its memory of
//! command ids survives a restart in the [`replay`] journal. With the `sim` feature,
//! `fleet_link::FleetLink` is the fleet simulator as a meter link.

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod downlink;
#[cfg(feature = "sim")]
pub mod fleet_link;
pub mod forward;
pub mod replay;
pub mod spool;

pub use downlink::{Downlink, DownlinkConfig, DownlinkStats, LinkError, MeterLink};
pub use forward::{Adapter, AdapterConfig, AdapterStats};
pub use replay::JournalError;
pub use spool::{Spool, SpoolError, SpoolFrame, SpoolRecord};
