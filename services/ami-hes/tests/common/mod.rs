//! Shared by the integration tests: a PostgreSQL database of its own per test (on the server at
//! `AMI_TEST_PG_URL`, default `postgres://postgres@127.0.0.1:5432`, created and dropped), an
//! in-memory SQLite store, and helpers to build meters.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use ami_hes::{Meter, MeterStatus, PgStore, RegistryStore, SqliteStore};
use sqlx::{Connection, Executor};

pub fn admin_url() -> String {
    std::env::var("AMI_TEST_PG_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
}

/// A database of its own for one test.
pub struct TestDb {
    pub name: String,
}

impl TestDb {
    pub async fn create() -> Self {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let name = format!(
            "ami_hes_test_{}_{}_{}",
            std::process::id(),
            nanos,
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let mut admin = sqlx::PgConnection::connect(&format!("{}/postgres", admin_url()))
            .await
            .expect("PostgreSQL at AMI_TEST_PG_URL");
        admin
            .execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .await
            .unwrap();
        admin.close().await.unwrap();
        Self { name }
    }

    pub fn url(&self) -> String {
        format!("{}/{}", admin_url(), self.name)
    }

    pub async fn drop_now(self) {
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
pub async fn on_postgres<F, Fut>(check: F)
where
    F: FnOnce(Arc<PgStore>) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let db = TestDb::create().await;
    let store = Arc::new(PgStore::connect(&db.url(), 4).await.unwrap());
    store.migrate().await.unwrap();
    let outcome = tokio::spawn(check(store.clone())).await;
    store.close().await;
    db.drop_now().await;
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}

/// Runs `check` on a migrated in-memory SQLite store.
pub async fn on_sqlite<F, Fut>(check: F)
where
    F: FnOnce(Arc<SqliteStore>) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let store = Arc::new(SqliteStore::in_memory().await.unwrap());
    store.migrate().await.unwrap();
    check(store).await;
}

/// `mod $check { postgres, sqlite }`: the generic check once per backend.
#[macro_export]
macro_rules! on_both {
    ($($check:ident),* $(,)?) => {$(
        mod $check {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                $crate::common::on_postgres(|s| async move { super::$check(s).await }).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                $crate::common::on_sqlite(|s| async move { super::$check(s).await }).await;
            }
        }
    )*};
}

/// A commissioned meter under `feeder`/`transformer`.
pub fn meter(serial: &str, feeder: &str, transformer: &str) -> Meter {
    let mut m = Meter::new(serial, "dlms");
    m.feeder = feeder.into();
    m.transformer = transformer.into();
    m.status = MeterStatus::Commissioned;
    m
}

/// Registers meters (numbered lines from 2).
pub async fn register<S: RegistryStore>(store: &S, meters: Vec<Meter>) {
    let rows: Vec<(u32, Meter)> = meters
        .into_iter()
        .enumerate()
        .map(|(i, mut m)| {
            m.normalise().unwrap();
            (i as u32 + 2, m)
        })
        .collect();
    let refused = store.insert_meters(&rows).await.unwrap();
    assert!(refused.is_empty(), "{refused:?}");
}
