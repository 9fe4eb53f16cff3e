//! One suite of user-level checks, run against both backends: each check is a generic
//! function over [`MeterDataStore`], called once on PostgreSQL (a fresh database per test on the
//! server at `AMI_TEST_PG_URL`, default `postgres://postgres@127.0.0.1:5432`, dropped at the end)
//! and once on embedded SQLite (in memory).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use ami_domain::time::unix_ms;
use ami_domain::{Obis, Quality, Quantity, Reading, Unit};
use ami_mdms_store::{
    CONFLICTING_REREAD, Catalog, EditStatus, GroupKind, INGEST_ACTOR, IngestReport,
    IntervalReading, InvalidInput, MeterDataStore, MeterInfo, NewEdit, NewException, NewVersion,
    PgStore, Resolution, Source, Span, SqliteStore, StoreError, View,
};
use sqlx::{Connection, Executor};

const ENERGY: Obis = Obis::new(1, 0, 1, 8, 0, 255);
const EXPORT: Obis = Obis::new(1, 0, 2, 8, 0, 255);
const QUARTER: i64 = 15 * 60_000;

fn admin_url() -> String {
    std::env::var("AMI_TEST_PG_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
}

/// A database of its own for one test, dropped by [`TestDb::drop_now`].
struct TestDb {
    name: String,
}

impl TestDb {
    async fn create() -> Self {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let name = format!(
            "ami_mdms_test_{}_{}_{}",
            std::process::id(),
            nanos,
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let mut admin = sqlx::PgConnection::connect(&format!("{}/postgres", admin_url()))
            .await
            .expect("PostgreSQL at AMI_TEST_PG_URL (cargo xtask test starts one)");
        admin
            .execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .await
            .unwrap();
        admin.close().await.unwrap();
        Self { name }
    }

    fn url(&self) -> String {
        format!("{}/{}", admin_url(), self.name)
    }

    async fn drop_now(self) {
        let mut admin = sqlx::PgConnection::connect(&format!("{}/postgres", admin_url()))
            .await
            .unwrap();
        admin
            .execute(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            )))
            .await
            .unwrap();
        admin.close().await.unwrap();
    }
}

/// Runs `check` on a migrated PostgreSQL store in a fresh database, dropping it even when the
/// check panics.
async fn on_postgres<F, Fut>(check: F)
where
    F: FnOnce(Arc<PgStore>) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    on_postgres_with(false, check).await;
}

/// As [`on_postgres`], with every batch through the staging table when `staging_only`.
async fn on_postgres_with<F, Fut>(staging_only: bool, check: F)
where
    F: FnOnce(Arc<PgStore>) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let db = TestDb::create().await;
    let mut store = PgStore::connect(&db.url(), 4).await.unwrap();
    if staging_only {
        store = store.staging_only();
    }
    let store = Arc::new(store);
    store.migrate().await.unwrap();
    let outcome = tokio::spawn(check(store.clone())).await;
    store.close().await;
    db.drop_now().await;
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}

/// Runs `check` on a migrated in-memory SQLite store.
async fn on_sqlite<F, Fut>(check: F)
where
    F: FnOnce(Arc<SqliteStore>) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let store = Arc::new(SqliteStore::in_memory().await.unwrap());
    store.migrate().await.unwrap();
    check(store).await;
}

/// `mod $check { postgres, postgres_staging, sqlite }`: the generic check once per backend
/// (PostgreSQL twice: with the optimistic direct COPY, and with the staging path only).
macro_rules! on_both {
    ($($check:ident),* $(,)?) => {$(
        mod $check {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::on_postgres(|s| async move { super::$check(s).await }).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres_staging() {
                super::on_postgres_with(true, |s| async move { super::$check(s).await }).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::on_sqlite(|s| async move { super::$check(s).await }).await;
            }
        }
    )*};
}

on_both!(
    reingest_is_idempotent,
    conflicting_reread_becomes_a_version,
    repeats_within_a_batch,
    range_across_a_month_boundary,
    raw_and_latest_after_edit_and_estimate,
    history_keeps_the_original,
    values_round_trip_exactly,
    invalid_input_is_refused_whole,
    concurrent_ingests_count_each_row_once,
    big_batches_and_migrate_twice,
    catalog_meters_and_groups,
    catalog_exceptions_open_and_resolved,
    catalog_edit_review_once,
);

fn reading(meter: &str, register: Obis, ts_ms: i64, wh: i64) -> IntervalReading {
    IntervalReading {
        meter: meter.into(),
        reading: Reading {
            register,
            value: Quantity::new(wh, 0),
            unit: Unit::WattHour,
            ts_ms,
            quality: Quality::VALID,
        },
    }
}

/// `meters` meters x 2 registers x `intervals` quarter-hours ending after `start`.
fn fleet(meters: usize, intervals: usize, start: i64) -> Vec<IntervalReading> {
    let mut out = Vec::new();
    for i in 0..intervals {
        let ts = start + (i as i64 + 1) * QUARTER;
        for m in 0..meters {
            let meter = format!("MTR-{m:05}");
            out.push(reading(&meter, ENERGY, ts, 1000 * i as i64 + m as i64));
            out.push(reading(&meter, EXPORT, ts, 7 * i as i64));
        }
    }
    out
}

fn report(inserted: usize, conflicts: usize, duplicates: usize) -> IngestReport {
    IngestReport {
        received: inserted + conflicts + duplicates,
        inserted,
        conflicts,
        duplicates,
    }
}

fn day() -> i64 {
    unix_ms(2026, 11, 20, 0, 0, 0)
}

async fn reingest_is_idempotent<S: MeterDataStore>(s: Arc<S>) {
    let batch = fleet(3, 8, day());
    assert_eq!(s.ingest(&batch).await.unwrap(), report(48, 0, 0));
    assert_eq!(s.ingest(&batch).await.unwrap(), report(0, 0, 48));
    // A later batch overlapping the first by half.
    let next = fleet(3, 12, day());
    assert_eq!(s.ingest(&next).await.unwrap(), report(24, 0, 48));
    let rows = s
        .readings(
            "MTR-00001",
            ENERGY,
            Span::new(day(), day() + 86_400_000),
            View::Raw,
        )
        .await
        .unwrap();
    assert_eq!(rows.len(), 12);
    assert!(rows.iter().all(|r| r.version == 1));
    assert_eq!(s.ingest(&[]).await.unwrap(), IngestReport::default());
}

async fn conflicting_reread_becomes_a_version<S: MeterDataStore>(s: Arc<S>) {
    let ts = day() + QUARTER;
    s.ingest(&[reading("M1", ENERGY, ts, 100)]).await.unwrap();
    let batch = [
        reading("M1", ENERGY, ts, 105), // differs: a conflicting re-read
        reading("M1", ENERGY, ts + QUARTER, 110), // new
        reading("M1", ENERGY, ts, 100), // same as the original: duplicate
    ];
    assert_eq!(s.ingest(&batch).await.unwrap(), report(1, 1, 1));
    // The re-read delivered again is a duplicate, not a third version.
    assert_eq!(
        s.ingest(&[reading("M1", ENERGY, ts, 105)]).await.unwrap(),
        report(0, 0, 1)
    );
    let history = s.history("M1", ENERGY, ts).await.unwrap();
    assert_eq!(history.len(), 2);
    assert_eq!(history[0].value, Quantity::new(100, 0));
    assert_eq!(history[0].version, 1);
    let reread = &history[1];
    assert_eq!((reread.version, reread.value), (2, Quantity::new(105, 0)));
    assert_eq!(reread.provenance.source, Source::Received);
    assert_eq!(reread.provenance.actor, INGEST_ACTOR);
    assert_eq!(
        reread.provenance.reason.as_deref(),
        Some(CONFLICTING_REREAD)
    );
    assert!(reread.quality.contains(Quality::SUSPECT));

    let span = Span::new(day(), ts);
    let raw = s.readings("M1", ENERGY, span, View::Raw).await.unwrap();
    let latest = s.readings("M1", ENERGY, span, View::Latest).await.unwrap();
    assert_eq!(raw[0].value, Quantity::new(100, 0));
    assert_eq!(latest[0].value, Quantity::new(105, 0));
    // A third, different value is a third version.
    assert_eq!(
        s.ingest(&[reading("M1", ENERGY, ts, 107)]).await.unwrap(),
        report(0, 1, 0)
    );
    assert_eq!(s.history("M1", ENERGY, ts).await.unwrap().len(), 3);
}

async fn repeats_within_a_batch<S: MeterDataStore>(s: Arc<S>) {
    let ts = day() + QUARTER;
    let batch = [
        reading("M2", ENERGY, ts, 1),
        reading("M2", ENERGY, ts, 1),
        reading("M2", ENERGY, ts, 2),
        reading("M2", ENERGY, ts, 2),
        reading("M2", ENERGY, ts, 3),
    ];
    assert_eq!(s.ingest(&batch).await.unwrap(), report(1, 2, 2));
    let history = s.history("M2", ENERGY, ts).await.unwrap();
    let values: Vec<i64> = history.iter().map(|v| v.value.mantissa).collect();
    assert_eq!(values, [1, 2, 3]);
    let versions: Vec<u32> = history.iter().map(|v| v.version).collect();
    assert_eq!(versions, [1, 2, 3]);
    assert_eq!(s.ingest(&batch).await.unwrap(), report(0, 0, 5));
}

async fn range_across_a_month_boundary<S: MeterDataStore>(s: Arc<S>) {
    // 22:00 on 31 October to 02:00 on 1 November: 16 quarter-hours in two months.
    let start = unix_ms(2026, 10, 31, 22, 0, 0);
    let batch: Vec<_> = (1..=16)
        .map(|i| reading("M3", ENERGY, start + i * QUARTER, i))
        .collect();
    assert_eq!(s.ingest(&batch).await.unwrap(), report(16, 0, 0));
    let all = s
        .readings(
            "M3",
            ENERGY,
            Span::new(start, start + 16 * QUARTER),
            View::Latest,
        )
        .await
        .unwrap();
    assert_eq!(all.len(), 16);
    assert!(all.windows(2).all(|w| w[0].ts_ms + QUARTER == w[1].ts_ms));
    assert_eq!(all[0].ts_ms, start + QUARTER);
    // October's last interval ends at midnight: it is October's, by its end stamp.
    let midnight = unix_ms(2026, 11, 1, 0, 0, 0);
    let october = s
        .readings("M3", ENERGY, Span::new(start, midnight), View::Raw)
        .await
        .unwrap();
    assert_eq!(october.len(), 8);
    assert_eq!(october.last().map(|r| r.ts_ms), Some(midnight));
    let november = s
        .readings(
            "M3",
            ENERGY,
            Span::new(midnight, midnight + 86_400_000),
            View::Raw,
        )
        .await
        .unwrap();
    assert_eq!(november.len(), 8);
    assert_eq!(november[0].ts_ms, midnight + QUARTER);
    // Other meters and registers are not mixed in.
    assert!(
        s.readings("M3", EXPORT, Span::new(start, midnight), View::Raw)
            .await
            .unwrap()
            .is_empty()
    );
}

fn edit(wh: i64, actor: &str, reason: &str) -> NewVersion {
    NewVersion {
        value: Quantity::new(wh, 0),
        unit: Unit::WattHour,
        quality: Quality::VALID,
        source: Source::Edited,
        actor: actor.into(),
        reason: Some(reason.into()),
        method: None,
    }
}

fn estimate(wh: i64, method: &str) -> NewVersion {
    NewVersion {
        value: Quantity::new(wh, 0),
        unit: Unit::WattHour,
        quality: Quality::VALID,
        source: Source::Estimated,
        actor: "vee:acme-rules".into(),
        reason: Some("spike check failed".into()),
        method: Some(method.into()),
    }
}

async fn raw_and_latest_after_edit_and_estimate<S: MeterDataStore>(s: Arc<S>) {
    let t1 = day() + QUARTER;
    let (t2, t3) = (t1 + QUARTER, t1 + 2 * QUARTER);
    // t2 never arrives.
    s.ingest(&[
        reading("M4", ENERGY, t1, 500),
        reading("M4", ENERGY, t3, 520),
    ])
    .await
    .unwrap();
    let before = std::time::SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    assert_eq!(
        s.add_version("M4", ENERGY, t1, &edit(501, "alice", "meter swap"))
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        s.add_version("M4", ENERGY, t2, &estimate(510, "linear"))
            .await
            .unwrap(),
        2
    );

    let span = Span::new(day(), t3);
    let raw = s.readings("M4", ENERGY, span, View::Raw).await.unwrap();
    let raw_values: Vec<(i64, i64, u32)> = raw
        .iter()
        .map(|r| (r.ts_ms, r.value.mantissa, r.version))
        .collect();
    assert_eq!(raw_values, [(t1, 500, 1), (t3, 520, 1)]);
    assert!(raw.iter().all(|r| r.provenance.source == Source::Received));

    let latest = s.readings("M4", ENERGY, span, View::Latest).await.unwrap();
    let latest_values: Vec<(i64, i64, u32)> = latest
        .iter()
        .map(|r| (r.ts_ms, r.value.mantissa, r.version))
        .collect();
    assert_eq!(latest_values, [(t1, 501, 2), (t2, 510, 2), (t3, 520, 1)]);
    let edited = &latest[0];
    assert_eq!(edited.provenance.source, Source::Edited);
    assert_eq!(edited.provenance.actor, "alice");
    assert_eq!(edited.provenance.reason.as_deref(), Some("meter swap"));
    assert!(edited.quality.contains(Quality::EDITED));
    assert!(
        edited.provenance.at_ms >= before - 5_000,
        "recorded now, not {}",
        edited.provenance.at_ms
    );
    let estimated = &latest[1];
    assert_eq!(estimated.provenance.source, Source::Estimated);
    assert_eq!(estimated.provenance.method.as_deref(), Some("linear"));
    assert!(estimated.quality.contains(Quality::ESTIMATED));

    // The missing original arrives late: it replaces the estimate in the latest view, and
    // the estimate stays in the history.
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    assert_eq!(
        s.ingest(&[reading("M4", ENERGY, t2, 509)]).await.unwrap(),
        report(1, 0, 0)
    );
    let latest = s.readings("M4", ENERGY, span, View::Latest).await.unwrap();
    let latest_values: Vec<(i64, i64, u32)> = latest
        .iter()
        .map(|r| (r.ts_ms, r.value.mantissa, r.version))
        .collect();
    assert_eq!(latest_values, [(t1, 501, 2), (t2, 509, 1), (t3, 520, 1)]);
    let trail: Vec<u32> = s
        .history("M4", ENERGY, t2)
        .await
        .unwrap()
        .iter()
        .map(|v| v.version)
        .collect();
    assert_eq!(trail, [1, 2]);
    // And an edit made after that replaces it again.
    assert_eq!(
        s.add_version("M4", ENERGY, t2, &edit(508, "alice", "register photo"))
            .await
            .unwrap(),
        3
    );
    let latest = s.readings("M4", ENERGY, span, View::Latest).await.unwrap();
    assert_eq!((latest[1].value.mantissa, latest[1].version), (508, 3));
}

async fn history_keeps_the_original<S: MeterDataStore>(s: Arc<S>) {
    let ts = day() + QUARTER;
    s.ingest(&[reading("M5", ENERGY, ts, 42)]).await.unwrap();
    assert_eq!(
        s.add_version("M5", ENERGY, ts, &estimate(40, "profile"))
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        s.add_version("M5", ENERGY, ts, &edit(41, "bob", "customer call"))
            .await
            .unwrap(),
        3
    );
    let history = s.history("M5", ENERGY, ts).await.unwrap();
    let trail: Vec<(u32, i64, Source)> = history
        .iter()
        .map(|v| (v.version, v.value.mantissa, v.provenance.source))
        .collect();
    assert_eq!(
        trail,
        [
            (1, 42, Source::Received),
            (2, 40, Source::Estimated),
            (3, 41, Source::Edited)
        ]
    );
    assert_eq!(history[0].provenance.actor, INGEST_ACTOR);
    assert!(history[0].provenance.at_ms > 0);
    // Re-delivering the original after edits changes nothing.
    assert_eq!(
        s.ingest(&[reading("M5", ENERGY, ts, 42)]).await.unwrap(),
        report(0, 0, 1)
    );
    let latest = s
        .readings("M5", ENERGY, Span::new(day(), ts), View::Latest)
        .await
        .unwrap();
    assert_eq!(latest[0].value.mantissa, 41);
    assert!(
        s.history("M5", ENERGY, ts + QUARTER)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn values_round_trip_exactly<S: MeterDataStore>(s: Arc<S>) {
    let ts = day() + QUARTER;
    let cases = [
        (
            Quantity::new(i64::MAX, -18),
            Unit::CubicMetre,
            Quality::VALID,
        ),
        (
            Quantity::new(i64::MIN, 18),
            Unit::Watt,
            Quality::SUSPECT.with(Quality::CLOCK_INVALID),
        ),
        (Quantity::new(-1, -3), Unit::Celsius, Quality(u16::MAX)),
        (Quantity::new(12345, -3), Unit::Count, Quality::POWER_OUTAGE),
    ];
    let batch: Vec<_> = cases
        .iter()
        .enumerate()
        .map(|(i, (value, unit, quality))| IntervalReading {
            meter: "Mété-ü 7".into(),
            reading: Reading {
                register: Obis::new(i as u8, 255, 0, 255, 0, 255),
                value: *value,
                unit: *unit,
                ts_ms: ts + 1,
                quality: *quality,
            },
        })
        .collect();
    assert_eq!(s.ingest(&batch).await.unwrap(), report(4, 0, 0));
    for (i, (value, unit, quality)) in cases.iter().enumerate() {
        let rows = s
            .readings(
                "Mété-ü 7",
                Obis::new(i as u8, 255, 0, 255, 0, 255),
                Span::new(day(), ts + 1),
                View::Raw,
            )
            .await
            .unwrap();
        assert_eq!(rows.len(), 1);
        let r = &rows[0];
        assert_eq!(
            (r.value.mantissa, r.value.scale),
            (value.mantissa, value.scale)
        );
        assert_eq!((r.unit, r.quality, r.ts_ms), (*unit, *quality, ts + 1));
    }
    // Numerically equal but written differently is another value, kept as a re-read.
    let mut again = batch[3].clone();
    again.reading.value = Quantity::new(123450, -4);
    assert_eq!(s.ingest(&[again]).await.unwrap(), report(0, 1, 0));
}

async fn invalid_input_is_refused_whole<S: MeterDataStore>(s: Arc<S>) {
    let ts = day() + QUARTER;
    let good = reading("M6", ENERGY, ts, 1);
    let err = s
        .ingest(&[good.clone(), reading("", ENERGY, ts, 1)])
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::Invalid(InvalidInput::EmptyMeter { index: 1 })
        ),
        "{err}"
    );
    let mut big = good.clone();
    big.reading.value = Quantity::new(1, 19);
    let err = s.ingest(&[big]).await.unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::Invalid(InvalidInput::ExponentOutOfRange {
                exponent: 19,
                index: 0,
                ..
            })
        ),
        "{err}"
    );
    assert_eq!(
        err.to_string(),
        "invalid input: exponent 19 out of range -18..=18 for meter \"M6\" (batch index 0)"
    );
    let mut early = good.clone();
    early.reading.ts_ms = -1;
    assert!(matches!(
        s.ingest(&[early]).await.unwrap_err(),
        StoreError::Invalid(InvalidInput::TimestampOutOfRange { ts_ms: -1, .. })
    ));
    let long = reading(&"x".repeat(65), ENERGY, ts, 1);
    assert!(matches!(
        s.ingest(&[long]).await.unwrap_err(),
        StoreError::Invalid(InvalidInput::BadMeter { .. })
    ));
    // Nothing of a refused batch was written.
    assert!(s.history("M6", ENERGY, ts).await.unwrap().is_empty());

    let mut v = edit(1, "  ", "why");
    assert!(matches!(
        s.add_version("M6", ENERGY, ts, &v).await.unwrap_err(),
        StoreError::Invalid(InvalidInput::EmptyActor)
    ));
    v.actor = "carol".into();
    v.source = Source::Received;
    assert!(matches!(
        s.add_version("M6", ENERGY, ts, &v).await.unwrap_err(),
        StoreError::Invalid(InvalidInput::ReceivedVersion)
    ));
    v.source = Source::Edited;
    v.value = Quantity::new(1, -19);
    assert!(matches!(
        s.add_version("M6", ENERGY, ts, &v).await.unwrap_err(),
        StoreError::Invalid(InvalidInput::ExponentOutOfRange { .. })
    ));
    assert!(matches!(
        s.add_version("", ENERGY, ts, &edit(1, "carol", "x"))
            .await
            .unwrap_err(),
        StoreError::Invalid(InvalidInput::EmptyMeter { .. })
    ));
    assert!(matches!(
        s.readings("M6", ENERGY, Span::new(ts, ts), View::Raw)
            .await
            .unwrap_err(),
        StoreError::Invalid(InvalidInput::EmptySpan { .. })
    ));
}

async fn concurrent_ingests_count_each_row_once<S: MeterDataStore + 'static>(s: Arc<S>) {
    // Four writers over overlapping batches spanning four new months at once.
    let start = unix_ms(2027, 1, 31, 12, 0, 0);
    let all = fleet(20, 360, start); // 3.75 days: January and February
    let mut extra = fleet(5, 8, unix_ms(2027, 3, 31, 23, 0, 0)); // March and April
    let mut tasks = Vec::new();
    for w in 0..4usize {
        let s = s.clone();
        let mut batch: Vec<_> = all.iter().skip(w).step_by(2).cloned().collect();
        batch.append(&mut extra.clone());
        tasks.push(tokio::spawn(async move { s.ingest(&batch).await.unwrap() }));
    }
    extra.clear();
    let mut total = IngestReport::default();
    for t in tasks {
        let r = t.await.unwrap();
        total.received += r.received;
        total.inserted += r.inserted;
        total.conflicts += r.conflicts;
        total.duplicates += r.duplicates;
    }
    let unique = all.len() + 5 * 2 * 8;
    assert_eq!(total.inserted, unique);
    assert_eq!(total.conflicts, 0);
    assert_eq!(total.inserted + total.duplicates, total.received);
    // And edits racing each other get distinct version numbers.
    let ts = start + QUARTER;
    let mut edits = Vec::new();
    for i in 0..8 {
        let s = s.clone();
        edits.push(tokio::spawn(async move {
            s.add_version("MTR-00000", ENERGY, ts, &edit(i, "racer", "race"))
                .await
                .unwrap()
        }));
    }
    let mut numbers = Vec::new();
    for e in edits {
        numbers.push(e.await.unwrap());
    }
    numbers.sort_unstable();
    assert_eq!(numbers, (2..10).collect::<Vec<u32>>());
}

async fn big_batches_and_migrate_twice<S: MeterDataStore>(s: Arc<S>) {
    s.migrate().await.unwrap();
    let batch = fleet(125, 100, day()); // 25,000 rows: several SQLite transactions
    assert_eq!(s.ingest(&batch).await.unwrap(), report(25_000, 0, 0));
    let mut changed = batch.clone();
    changed[12_345].reading.value.mantissa += 1;
    changed[24_999].reading.quality = Quality::SUSPECT;
    assert_eq!(s.ingest(&changed).await.unwrap(), report(0, 2, 24_998));
    let last = &batch[24_999];
    let rows = s
        .readings(
            &last.meter,
            last.reading.register,
            Span::new(day(), day() + 100 * QUARTER),
            View::Latest,
        )
        .await
        .unwrap();
    assert_eq!(rows.len(), 100);
    assert_eq!(rows[99].version, 2);
}

// Backend-specific checks.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_partitions_by_month_on_demand() {
    on_postgres(|s| async move {
        let count = || async {
            sqlx::query_scalar::<_, i64>(
                "SELECT count(*) FROM pg_inherits WHERE inhparent = 'interval_reading'::regclass",
            )
            .fetch_one(s.pool())
            .await
            .unwrap()
        };
        assert_eq!(count().await, 0);
        let start = unix_ms(2026, 10, 31, 23, 0, 0);
        let batch: Vec<_> = (1..=8)
            .map(|i| reading("P1", ENERGY, start + i * QUARTER, i))
            .collect();
        s.ingest(&batch).await.unwrap();
        assert_eq!(count().await, 2);
        let names: Vec<String> = sqlx::query_scalar(
            "SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
             WHERE i.inhparent = 'interval_reading'::regclass ORDER BY 1",
        )
        .fetch_all(s.pool())
        .await
        .unwrap();
        assert_eq!(
            names,
            ["interval_reading_p202610", "interval_reading_p202611"]
        );
        let per_partition: i64 =
            sqlx::query_scalar("SELECT count(*) FROM interval_reading_p202611")
                .fetch_one(s.pool())
                .await
                .unwrap();
        // 00:00 to 01:00 on 1 November: the partition bound is the month's first instant.
        assert_eq!(per_partition, 5);
        // Ingesting the same months again makes no partition.
        s.ingest(&batch).await.unwrap();
        assert_eq!(count().await, 2);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_file_is_wal_and_persists() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mdms.db");
    let ts = day() + QUARTER;
    {
        let s = SqliteStore::open(&path).await.unwrap();
        s.migrate().await.unwrap();
        let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
            .fetch_one(s.readers())
            .await
            .unwrap();
        assert_eq!(mode, "wal");
        s.ingest(&[reading("F1", ENERGY, ts, 9)]).await.unwrap();
        s.close().await;
    }
    let s = ami_mdms_store::AnyStore::open(&format!("sqlite:{}", path.display()), 1)
        .await
        .unwrap();
    s.migrate().await.unwrap();
    let rows = s
        .readings("F1", ENERGY, Span::new(day(), ts), View::Raw)
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].value, Quantity::new(9, 0));
    assert!(matches!(
        ami_mdms_store::AnyStore::open("mysql://x", 1).await,
        Err(StoreError::UnsupportedUrl(_))
    ));
}

fn meter_info(id: &str, class: &str, feeder: &str, transformer: &str) -> MeterInfo {
    MeterInfo {
        id: id.into(),
        class: class.into(),
        feeder: feeder.into(),
        transformer: transformer.into(),
        customer_class: "residential".into(),
    }
}

async fn catalog_meters_and_groups<S: MeterDataStore + Catalog>(s: Arc<S>) {
    s.touch_meters(&["m-seen".into(), "m-1".into()], 5)
        .await
        .unwrap();
    let written = s
        .upsert_meters(&[
            meter_info("m-1", "commercial", "f-1", "t-1"),
            meter_info("m-2", "residential", "f-1", "t-2"),
        ])
        .await
        .unwrap();
    assert_eq!(written, 2);
    // Touching a meter already known keeps its class and groups.
    s.touch_meters(&["m-1".into()], 6).await.unwrap();
    let all = s.meters().await.unwrap();
    let ids: Vec<&str> = all.iter().map(|m| m.id.as_str()).collect();
    assert_eq!(ids, ["m-1", "m-2", "m-seen"]);
    assert_eq!(all[0].class, "commercial");
    assert_eq!(all[2].class, "default");
    assert_eq!(
        s.meters_in_group(GroupKind::Feeder, "f-1").await.unwrap(),
        ["m-1", "m-2"]
    );
    assert_eq!(
        s.meters_in_group(GroupKind::Transformer, "t-2")
            .await
            .unwrap(),
        ["m-2"]
    );
    assert!(s.meter("nope").await.unwrap().is_none());
    let empty = s.upsert_meters(&[meter_info(" ", "c", "", "")]).await;
    assert!(matches!(empty, Err(StoreError::Invalid(_))), "{empty:?}");
}

async fn catalog_exceptions_open_and_resolved<S: MeterDataStore + Catalog>(s: Arc<S>) {
    let t0 = unix_ms(2026, 3, 1, 0, 0, 0);
    let found = |ts_ms: i64, rule: &str| NewException {
        meter: "m-1".into(),
        register: ENERGY,
        ts_ms,
        rule: rule.into(),
        reason: format!("{rule} fired"),
    };
    let new = s
        .raise_exceptions(
            &[
                found(t0 + QUARTER, "spike"),
                found(t0 + 2 * QUARTER, "zero"),
            ],
            10,
        )
        .await
        .unwrap();
    assert_eq!(new, 2);
    // The same finding again is not a second exception.
    assert_eq!(
        s.raise_exceptions(&[found(t0 + QUARTER, "spike")], 11)
            .await
            .unwrap(),
        0
    );
    let open = s.exceptions(Some("m-1"), false).await.unwrap();
    assert_eq!(open.len(), 2);
    assert_eq!(open[0].register, ENERGY);
    assert_eq!(open[0].reason, "spike fired");
    assert_eq!(
        s.open_exception_times("m-1", ENERGY, t0, t0 + 4 * QUARTER)
            .await
            .unwrap(),
        [t0 + QUARTER, t0 + 2 * QUARTER]
    );
    let by = Resolution {
        text: "meter replaced".into(),
        by: "alice".into(),
        at_ms: 20,
    };
    let closed = s.resolve_exception(open[0].id, by.clone()).await.unwrap();
    assert_eq!(closed.resolved, Some(by.clone()));
    assert!(matches!(
        s.resolve_exception(open[0].id, by.clone()).await,
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        s.resolve_exception(9999, by).await,
        Err(StoreError::NotFound(_))
    ));
    assert_eq!(s.exceptions(None, false).await.unwrap().len(), 1);
    assert_eq!(s.exceptions(None, true).await.unwrap().len(), 2);
    assert_eq!(
        s.open_exception_times("m-1", ENERGY, t0, t0 + 4 * QUARTER)
            .await
            .unwrap(),
        [t0 + 2 * QUARTER]
    );
}

async fn catalog_edit_review_once<S: MeterDataStore + Catalog>(s: Arc<S>) {
    let ts = unix_ms(2026, 3, 1, 0, 15, 0);
    let proposed = s
        .propose_edit(
            &NewEdit {
                meter: "m-1".into(),
                register: ENERGY,
                ts_ms: ts,
                value: Quantity::new(-12345, -3),
                unit: Unit::WattHour,
                reason: "customer read".into(),
                proposed_by: "bob".into(),
            },
            30,
        )
        .await
        .unwrap();
    assert_eq!(proposed.status, EditStatus::Pending);
    assert_eq!(proposed.edit.value, Quantity::new(-12345, -3));
    assert_eq!(s.edits(false).await.unwrap().len(), 1);
    let review = Resolution {
        text: "ok".into(),
        by: "carol".into(),
        at_ms: 40,
    };
    let approved = s
        .close_edit(proposed.id, EditStatus::Approved, review.clone(), Some(2))
        .await
        .unwrap();
    assert_eq!(approved.status, EditStatus::Approved);
    assert_eq!(approved.version, Some(2));
    assert_eq!(approved.review, Some(review.clone()));
    assert!(matches!(
        s.close_edit(proposed.id, EditStatus::Rejected, review, None)
            .await,
        Err(StoreError::Conflict(_))
    ));
    assert!(s.edits(false).await.unwrap().is_empty());
    assert_eq!(s.edits(true).await.unwrap().len(), 1);
}
