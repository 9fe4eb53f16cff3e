//! Per-protocol readers of the peers' `expected` shapes.

pub mod ansi_c12;
pub mod canonical;
pub mod dlms;
pub mod dsmr;
pub mod iec62056_21;
pub mod mbus;
pub mod wmbus;

use ami_domain::{DecodeError, Decoded};

use crate::{Expectations, Outcome, Vector, VectorError};

/// Turns a peer's `expected` into canonical expectations.
pub trait PeerFormat: Sync {
    /// The expectations of one vector.
    fn expectations(&self, vector: &Vector) -> Result<Expectations, VectorError>;

    /// Compares a decoder's result with the expectations; peers whose printed values need a
    /// matching rule of their own (precision, register conventions) override it.
    fn check(&self, expect: &Expectations, got: &Result<Decoded, DecodeError>) -> Outcome {
        crate::check(expect, got)
    }
}

/// The reader for a protocol's vectors, by the protocol name used in plugin manifests.
pub fn for_protocol(protocol: &str) -> Option<&'static dyn PeerFormat> {
    match protocol {
        "ansi-c12" => Some(&ansi_c12::C1218Packets),
        "dlms" => Some(&dlms::DlmsPeers),
        "dsmr" => Some(&dsmr::DsmrParser),
        "iec62056-21" => Some(&iec62056_21::Iec6205621),
        "mbus" => Some(&mbus::Libmbus),
        "wmbus" => Some(&wmbus::Wmbusmeters),
        _ => None,
    }
}

/// The reader for a protocol's vectors, or ami's [`canonical::Canonical`] format for protocols
/// no peer publishes.
pub fn for_protocol_or_canonical(protocol: &str) -> &'static dyn PeerFormat {
    for_protocol(protocol).unwrap_or(&canonical::Canonical)
}
