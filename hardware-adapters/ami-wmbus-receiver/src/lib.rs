//! Edge receiver for wireless M-Bus through a USB radio dongle, on top of the adapter
//! library: the IMST iM871A (and its iU891A / iM170A siblings) speak a framed serial
//! protocol to the host ([`hci`]); [`receiver`] reads it, takes the radio telegram out of
//! every received-message indication and hands it to
//! [`Adapter::accept`](ami_adapter::Adapter::accept) as protocol `wmbus`, from where the
//! spool forwards it to `<root>.raw.wmbus.<adapter>`. The telegrams stay encrypted: the
//! `mbus` decoder deciphers them with the key store's keys.
//!
//! The dongle's line runs at 57600 8N1 ([`ami_serial_readers::port::LineSettings::DONGLE`]).
//! The receiver does not configure the dongle (link mode, RSSI and CRC attachment): that is
//! set once with the vendor's tool and kept in the dongle's flash.

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod hci;
pub mod receiver;
