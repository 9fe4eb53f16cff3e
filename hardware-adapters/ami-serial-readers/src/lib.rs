//! Edge readers for serial meter links, on top of the adapter library (`ami-adapter`):
//! every frame they read goes through [`Adapter::accept`](ami_adapter::Adapter::accept) into
//! the on-disk spool and from there to `<root>.raw.<protocol>.<adapter>`, so nothing read is
//! lost while the bus is away.
//!
//! * [`iec`]: IEC 62056-21 mode C data readouts: sign-on at 300 baud 7E1, identification,
//!   option select, the switch to the meter's baud rate, the data message with its BCC
//!   checked; timeouts, retries, and errors that say what came instead. Protocol
//!   `iec62056-21`.
//! * [`p1`]: the DSMR P1 port: whole telegrams cut out of the continuous stream, resynced
//!   after noise and torn telegrams, CRC-16 checked where sent; bad ones counted and logged
//!   with the reason. Protocol `dsmr`.
//! * [`port`]: the serial line under both ([`port::Link`]; [`port::SerialLink`] over the
//!   `serialport` crate, real ports and pseudo terminals alike).
//! * [`role`]: what the `ami-serial-reader` binary (and the other serial adapters' binaries)
//!   share: the adapter's spool, the NATS connection and the forwarder task.
//! * `testing` (feature `testing`): a pseudo-terminal pair for tests that play the meter.

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod iec;
pub mod p1;
pub mod port;
pub mod role;
#[cfg(feature = "testing")]
pub mod testing;
