//! IEC 62056-21 (formerly IEC 61107) readout decoder: the meter-side bytes of a local data
//! readout, into ami's canonical [`Decoded`].
//!
//! A readout is an optional identification message `/XXXZ\WIdent` CR LF, then a data message:
//! framed `STX data ! CR LF ETX BCC` (protocol modes A, B, C, E; the BCC is checked) or bare
//! `data ! CR LF` (mode D), including the DSMR-like P1/DLDE pushes that send a CRC-16 after
//! `!`. The data holds data sets `address(value*unit)`; addresses are OBIS codes in full or
//! reduced form (see [`address`]).
//!
//! * [`decode`] gives readings (values with a known unit, the prefix moved into the scale,
//!   stamped with the time of receipt and [`Quality::TIME_FROM_RECEIVER`](ami_domain::Quality)),
//!   attributes (every other value, as sent) and the meter's name ([`Readout::meter`]).
//! * [`parse`] gives the [`Readout`] as sent: identification, data sets, checksum.
//! * [`Reassembler`] turns a byte stream (serial reads, partial blocks, echoes) into
//!   readouts for [`decode`].
//!
//! Leniencies, each on purpose: echoes of the reader's request and option select messages
//! before the data are skipped; a framed data message whose `!` CR LF ends the input without
//! ETX and BCC is accepted with [`Checksum::Absent`]; a blank line between identification and
//! mode D data is optional. No input makes it panic, and it allocates no more than a small
//! multiple of the input.

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod address;
mod canonical;
pub mod checksum;
pub mod dataset;
mod frame;
pub mod ident;
pub mod readout;
pub mod reassemble;

pub use ami_domain::{DecodeError, Decoded};
pub use dataset::{DataSet, DataValue};
pub use ident::Identification;
pub use readout::{Checksum, Readout};
pub use reassemble::Reassembler;

/// Decodes one complete readout received at `received_at_ms` (ms since the Unix epoch, UTC).
///
/// The result is `parse(readout)?.into_decoded(received_at_ms)`, built straight from the bytes.
pub fn decode(readout: &[u8], received_at_ms: i64) -> Result<Decoded, DecodeError> {
    let mut sink = canonical::Builder::new(readout.len(), received_at_ms);
    let message = frame::parse(readout, &mut sink)?;
    Ok(sink.finish(message.identification.as_ref()))
}

/// Parses one complete readout into its identification, data sets and checksum.
pub fn parse(readout: &[u8]) -> Result<Readout, DecodeError> {
    let mut data_sets = Vec::new();
    let message = frame::parse(readout, &mut data_sets)?;
    Ok(Readout {
        identification: message.identification,
        data_sets,
        framed: message.framed,
        checksum: message.checksum,
    })
}
