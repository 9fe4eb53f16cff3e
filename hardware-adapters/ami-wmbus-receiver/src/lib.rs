//! Edge receiver for wireless M-Bus through a USB radio dongle, on top of the adapter
//! library: the IMST iM871A (and its iU891A / iM170A siblings) speak a framed serial
//! protocol to the host ([`hci`]); each time the line opens, [`setup`] configures the dongle
//! with the device management messages of [`config`] (link mode, device mode "other", RSSI
//! and time stamp attached to every received telegram; RAM only unless asked to save);
//! [`receiver`] then reads the line, takes the radio telegram out of every received-message
//! indication and hands it to [`Adapter::accept`](ami_adapter::Adapter::accept) as protocol
//! `wmbus`, with its RSSI in dBm, from where the spool forwards it to
//! `<root>.raw.wmbus.<adapter>` (RSSI in the `Ami-Rssi-Dbm` header). The telegrams stay
//! encrypted: the `mbus` decoder deciphers them with the key store's keys.
//!
//! The dongle's line runs at 57600 8N1 ([`ami_serial_readers::port::LineSettings::DONGLE`]).
//! A dongle configured once with the vendor's tool and kept in its flash can be left alone
//! (`ReceiverConfig::setup = None`, `--no-configure`).

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod config;
pub mod hci;
pub mod receiver;
pub mod setup;
