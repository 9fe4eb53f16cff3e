//! A PostgreSQL database of a test's own on the shared server (`AMI_TEST_PG_URL`, default
//! `postgres://postgres@127.0.0.1:5432`), created fresh and dropped at the end.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use sqlx::{AssertSqlSafe, Connection, Executor, PgConnection};

/// The server's URL without a database.
pub fn server_url() -> String {
    std::env::var("AMI_TEST_PG_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
}

/// A database of its own for one test.
pub struct TestDb {
    name: String,
}

impl TestDb {
    /// Creates `ami_<tag>_<pid>_<nanos>_<n>`.
    pub async fn create(tag: &str) -> Self {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or_default();
        let name = format!(
            "ami_{tag}_{}_{nanos}_{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let mut admin = PgConnection::connect(&format!("{}/postgres", server_url()))
            .await
            .expect("PostgreSQL at AMI_TEST_PG_URL (cargo xtask test starts one)");
        admin
            .execute(AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .await
            .expect("create database");
        let _ = admin.close().await;
        Self { name }
    }

    /// Its URL.
    pub fn url(&self) -> String {
        format!("{}/{}", server_url(), self.name)
    }

    /// Drops it, closing whatever still connects.
    pub async fn drop_now(self) {
        if let Ok(mut admin) = PgConnection::connect(&format!("{}/postgres", server_url())).await {
            let _ = admin
                .execute(AssertSqlSafe(format!(
                    "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                    self.name
                )))
                .await;
            let _ = admin.close().await;
        }
    }
}
