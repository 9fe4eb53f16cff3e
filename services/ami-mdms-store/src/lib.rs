//! The MDMS meter data store: where interval readings land after decoding, with every later
//! version (VEE estimates, manual edits, conflicting re-reads) kept beside the original.
//!
//! In the data flow, the MDMS consumes `ami.readings.<meter>` in batches and hands each batch to
//! [`MeterDataStore::ingest`]; VEE and operators add versions with
//! [`MeterDataStore::add_version`]; billing and analytics read with [`MeterDataStore::readings`]
//! in the [`View::Raw`] or [`View::Latest`] view. Values are scaled integers (a BIGINT mantissa
//! and a SMALLINT exponent), never floats; a timestamp is an interval's end, UTC.
//!
//! Two backends keep the same semantics: [`PgStore`] (PostgreSQL, the interval table range
//! partitioned by month with partitions made on demand, bulk ingest by binary `COPY`: straight
//! into the partitions for a batch of new readings, through a staging table and an idempotent
//! merge otherwise) and [`SqliteStore`] (embedded SQLite in WAL mode, the single-machine
//! default).
//! [`AnyStore`] picks one from a URL.
//!
//! Ingest is idempotent on (meter, register, interval end): a reading already stored with the
//! same value, unit and quality is a duplicate and writes nothing; one whose value differs from
//! the stored original is kept as a new version (source received, flagged
//! [`ami_domain::Quality::SUSPECT`], reason [`CONFLICTING_REREAD`]) and becomes the latest, while
//! the original stays in the raw view. The latest view shows, per interval, whatever was
//! recorded last, so a late original replaces an estimate of its gap. Nothing is ever
//! overwritten.

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod any;
pub mod catalog;
pub mod error;
pub mod model;
pub mod postgres;
pub mod reference;
pub mod sqlite;

use std::future::Future;

use ami_domain::Obis;

pub use any::AnyStore;
pub use catalog::{
    Catalog, Edit, EditStatus, GroupKind, MeterInfo, NewEdit, NewException, Resolution,
    VeeException,
};
pub use error::{InvalidInput, Result, StoreError};
pub use model::{
    CONFLICTING_REREAD, EXPONENT_RANGE, INGEST_ACTOR, IngestReport, IntervalReading, MAX_METER_LEN,
    NewVersion, Provenance, Source, Span, StoredReading, TS_RANGE_MS, View, register_key,
};
pub use postgres::PgStore;
pub use sqlite::SqliteStore;

/// Interval data storage with versions and provenance; every method is batch-oriented or a
/// single small lookup, and every future is `Send` so a consumer can spawn it.
pub trait MeterDataStore: Send + Sync {
    /// Applies the schema migrations shipped with this crate (idempotent; run at start).
    fn migrate(&self) -> impl Future<Output = Result<()>> + Send;

    /// Stores a batch of readings, idempotently on (meter, register, interval end).
    ///
    /// The whole batch is checked first (a bad reading refuses it with
    /// [`StoreError::Invalid`], nothing written); then new readings become originals
    /// (version 1), readings equal to what is stored are duplicates, and readings that differ
    /// from the stored original become a new received version (see the crate docs).
    fn ingest(
        &self,
        batch: &[IntervalReading],
    ) -> impl Future<Output = Result<IngestReport>> + Send;

    /// The readings of one register of one meter whose interval ends in `span`, by time.
    fn readings(
        &self,
        meter: &str,
        register: Obis,
        span: Span,
        view: View,
    ) -> impl Future<Output = Result<Vec<StoredReading>>> + Send;

    /// Adds a version (an estimate or an edit) of one interval's value and returns its number.
    ///
    /// The interval need not have an original (estimating a gap); the first added version is
    /// number 2 either way, since 1 is the original as received.
    fn add_version(
        &self,
        meter: &str,
        register: Obis,
        ts_ms: i64,
        version: &NewVersion,
    ) -> impl Future<Output = Result<u32>> + Send;

    /// Every version of one interval, the original first (when received), by version number.
    fn history(
        &self,
        meter: &str,
        register: Obis,
        ts_ms: i64,
    ) -> impl Future<Output = Result<Vec<StoredReading>>> + Send;
}
