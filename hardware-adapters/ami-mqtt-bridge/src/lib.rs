//! Edge bridge from a data concentrator's MQTT broker to the raw-frame stream, on top of the
//! adapter library: concentrators (and gateways, and meters with an MQTT client) publish the
//! frames they collect on topics of their own; the bridge subscribes to the configured topic
//! filters ([`config`]), turns each message into a frame of the route's protocol ([`route`]:
//! raw bytes, hex or base64 text, or a JSON object), and hands it to
//! [`Adapter::accept`](ami_adapter::Adapter::accept), acknowledging the message to the broker
//! only once the frame is in the spool ([`bridge`]). From the spool the frames go to
//! `<root>.raw.<protocol>.<adapter>`; nothing is lost while either side is away.

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod bridge;
pub mod config;
pub mod route;

pub use bridge::{BridgeError, BridgeStats, run};
pub use config::{BridgeConfig, ConfigError, PayloadFormat, Route};
pub use route::{PayloadError, Routed, Router};
