//! Protocol test vectors: frames that other implementations published, with their decoded
//! values, in the JSON-lines format of `tests/vectors/README.md`.
//!
//! Each peer publishes its own shape of `expected`; a [`PeerFormat`] per protocol turns it into
//! [`Expectations`] in ami's canonical terms (OBIS register, decimal value, base unit), and
//! [`check`] compares a decoder's output against them. The same code serves the protocol
//! crates' unit tests, `ami plugin test` and the fuzz corpora.

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod check;
pub mod formats;
pub mod vector;

pub use check::{Expect, Expectations, Outcome, check};
pub use formats::{PeerFormat, for_protocol, for_protocol_or_canonical};
pub use vector::{Vector, VectorError, load};
