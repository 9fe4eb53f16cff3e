//! The command engine of the head-end (HES): two-way commands to meters, from the principal
//! who asks to the relay that opens.
//!
//! The HES service (registry, keys, gRPC) calls an [`Engine`]: it checks the caller's
//! [`Role`]s, stores each command with its lifecycle (`queued → sent → delivered → confirmed |
//! failed | expired`) and an [`AuditEntry`] per transition, signs the envelope
//! ([`ami_bus::command`]) with the head-end's Ed25519 key and publishes it on
//! `<root>.cmd.<adapter>.<meter>`; the adapter's downlink (`ami_adapter::downlink`) verifies it,
//! carries it out on the meter and answers on `<root>.cmdack.<adapter>.<meter>`, which the
//! engine's driver follows: retries with bounded exponential backoff, deadlines, relay state
//! confirmation of disconnects, second approval and per-segment rate limits of bulk
//! disconnects, firmware campaigns resumed from the block each meter expects. Watchers (a
//! streaming gRPC call) subscribe to every change with [`Engine::watch`].
//!
//! State lives behind [`CommandStore`]: [`MemoryStore`] for tests and `ami up`, [`PgStore`]
//! (PostgreSQL, migrations in `migrations/postgres`) in production.
//!
//! [`schedule`] computes read schedules for polled meters with a per-segment concurrency cap.

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod engine;
pub mod error;
pub mod model;
pub mod postgres;
pub mod schedule;
pub mod store;

pub use engine::{CampaignSpec, Engine, EngineConfig, RetryPolicy, SegmentLimit, Submit};
pub use error::{EngineError, StoreError};
pub use model::{
    AuditEntry, BulkRequest, BulkState, Campaign, CampaignMeter, CampaignReport, CampaignState,
    CommandRecord, CommandState, CommandUpdate, MeterPhase, Principal, Role, Target,
};
pub use postgres::PgStore;
pub use schedule::{PolledMeter, ScheduleError, ScheduleSpec, ScheduledRead, schedule_reads};
pub use store::{CommandStore, MemoryStore};
