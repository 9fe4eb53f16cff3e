//! The Meter Data Management System (`ami mdms`): where readings become billable, trustworthy
//! data.
//!
//! - [`consume`] takes canonical readings from the bus (`<root>.readings.>`, a durable consumer
//!   shared by replicas) into the meter data store, acknowledging a message only once the rows
//!   it carried are committed; malformed messages go to the dead-letter stream with the reason.
//! - [`vee`] runs the rule set of each meter's class through `vee-rule` Wasm components:
//!   failures become exceptions, estimates new versions with their method.
//! - [`billing`] computes determinants and bills through `tariff` components, from validated
//!   data only.
//! - [`export`] writes readings as CSV and as Green Button (ESPI) XML; [`aggregate`] sums load
//!   by group.
//! - [`server`] serves all of it as `ami.mdms.v1` over gRPC, with reflection and health on.

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod aggregate;
pub mod auth;
pub mod billing;
pub mod config;
pub mod consume;
pub mod convert;
pub mod error;
pub mod export;
pub mod proto;
pub mod server;
pub mod service;
pub mod vee;

pub use config::MdmsConfig;
pub use consume::{ConsumeStats, ReadingsConsumer};
pub use error::MdmsError;
pub use service::Mdms;
