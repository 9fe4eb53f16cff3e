//! The DLMS/COSEM client adapter: the head-end's side of a conversation with a DLMS meter,
//! at the edge of the data flow (meter → adapter → `ami.raw.dlms.<adapter>` → ingest, and
//! signed commands `ami.cmd.<adapter>.<meter>` → meter).
//!
//! * [`link`]: the IEC 62056-47 TCP wrapper and IEC 62056-46 HDLC (SNRM/UA negotiation,
//!   I-frames with sequence numbers, RR, segmentation both ways, DISC) over any
//!   `AsyncRead + AsyncWrite`.
//! * [`client`]: the association (AARQ/AARE with lowest level security or HLS-GMAC,
//!   conformance and PDU size, RLRQ/RLRE), GET (normal and with data blocks), SET and ACTION,
//!   glo-ciphered with security suite 0 when the association asks for it ([`security`]).
//! * [`objects`]: registers, the clock, profile buffers by time range, the disconnect
//!   control, image transfer, the activity calendar, and the read report handed to the
//!   adapter.
//! * [`meter_link`]: [`MeterLink`](ami_adapter::MeterLink) for signed head-end commands.
//!
//! Every parser path returns a typed [`ClientError`]; a malformed or hostile answer from a
//! meter ends that exchange with an error, never a panic. Frames are parsed and built with
//! `ami-dlms`, the same code the ingest decodes with.

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod client;
pub mod error;
pub mod link;
pub mod meter_link;
pub mod objects;
pub mod security;

pub use client::{Authentication, Client, ClientConfig, Target};
pub use error::ClientError;
pub use link::{Framing, HdlcSettings, Link};
pub use meter_link::{DlmsMeterLink, MeterTarget};
pub use security::{Keys, Protection};
