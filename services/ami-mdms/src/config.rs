//! The MDMS's configuration: one typed struct, built by `ami mdms` from flags and `AMI_`
//! environment variables; bad values are errors at start.

use std::net::SocketAddr;

use crate::auth::Auth;
use crate::vee::RuleSets;

/// Everything `ami mdms` needs.
#[derive(Clone, Debug)]
pub struct MdmsConfig {
    /// The store: `postgres://...`, `sqlite:<path>` or `sqlite::memory:`.
    pub store_url: String,
    /// Connections to the store.
    pub store_connections: u32,
    /// Where gRPC listens.
    pub listen: SocketAddr,
    /// How callers are authenticated.
    pub auth: Auth,
    /// The VEE rule set of each meter class.
    pub rules: RuleSets,
    /// Days of history given to history-based rules (spike, like-day estimation).
    pub history_days: u32,
    /// The durable consumer on the readings stream, shared by replicas.
    pub durable: String,
    /// Messages fetched (and rows committed) per batch.
    pub batch: usize,
}
