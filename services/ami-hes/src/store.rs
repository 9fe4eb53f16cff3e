//! The persistent state of the HES behind one trait, [`RegistryStore`]: meters, sealed key
//! records, the event log and the outages, on PostgreSQL ([`PgStore`], production) or embedded SQLite
//! ([`SqliteStore`], the single-machine default); [`AnyStore`] picks one from a URL.
//!
//! Both backends run the very same SQL (times as BIGINT Unix ms, `$n` parameters, which sqlx's
//! SQLite driver binds by number); only the migrations differ (`migrations/postgres`,
//! `migrations/sqlite`), so the two cannot drift apart in meaning.

use std::future::Future;
use std::str::FromStr;
use std::time::Duration;

use ami_domain::crypto::KeyRole;
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};

use crate::error::{HesError, Result};
use crate::model::{
    ActiveKey, EventFilter, KeyMetadata, KeyRecord, Meter, MeterFilter, MeterStatus, NewEvent,
    StoredEvent,
};
use crate::outage::{Outage, OutageScope, OutageState};

/// How a new key version treats the active one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyWrite {
    /// The first key of the meter and role: refused if one is active.
    Put,
    /// A rotation: the active version becomes previous, usable until `grace_until_ms`
    /// (retired at once when that is not in the future).
    Rotate {
        /// When the replaced version is retired, Unix ms.
        grace_until_ms: i64,
    },
}

/// The sealed material of a new key version, made by the caller once the version is known
/// (the version is bound into the ciphertext's associated data).
pub struct Sealed {
    /// The data key wrapped under the master key.
    pub wrapped_dek: Vec<u8>,
    /// The key encrypted under the data key.
    pub ciphertext: Vec<u8>,
    /// Which master key wrapped it.
    pub master_key_id: String,
}

/// Seals a key for a given version.
pub type SealFn<'a> = dyn Fn(u32) -> Result<Sealed> + Send + Sync + 'a;

/// The persistent state of the HES. Every future is `Send` so a server can spawn it.
pub trait RegistryStore: Send + Sync + 'static {
    /// Applies the schema migrations shipped with this crate (idempotent; run at start).
    fn migrate(&self) -> impl Future<Output = Result<()>> + Send;

    /// Registers meters (already normalised) in one transaction; returns the rows refused
    /// because their serial or a protocol identity is registered already, as (line, reason).
    fn insert_meters(
        &self,
        rows: &[(u32, Meter)],
    ) -> impl Future<Output = Result<Vec<(u32, String)>>> + Send;

    /// The meter with this serial or protocol identity.
    fn meter(&self, id: &str) -> impl Future<Output = Result<Option<Meter>>> + Send;

    /// Meters by serial order, filtered.
    fn list_meters(&self, filter: &MeterFilter) -> impl Future<Output = Result<Vec<Meter>>> + Send;

    /// Changes a meter's status if the lifecycle allows it.
    fn set_status(
        &self,
        serial: &str,
        to: MeterStatus,
        now_ms: i64,
    ) -> impl Future<Output = Result<Meter>> + Send;

    /// Stores a new version of a meter's key for `role`, sealed by `seal` once the version
    /// number is known, in one transaction with the change to the active version.
    fn store_key(
        &self,
        serial: &str,
        role: KeyRole,
        write: KeyWrite,
        created_by: &str,
        now_ms: i64,
        seal: &SealFn<'_>,
    ) -> impl Future<Output = Result<KeyMetadata>> + Send;

    /// Every version of every key of a meter (sealed), by role and version.
    fn key_records(&self, serial: &str) -> impl Future<Output = Result<Vec<KeyRecord>>> + Send;

    /// The active and previous (in grace) key versions, of one meter or of all, with the
    /// names their meter goes by.
    fn usable_keys(
        &self,
        serial: Option<&str>,
    ) -> impl Future<Output = Result<Vec<ActiveKey>>> + Send;

    /// Retires previous versions whose grace ended by `now_ms`, erasing their material;
    /// returns how many.
    fn retire_expired_keys(&self, now_ms: i64) -> impl Future<Output = Result<u64>> + Send;

    /// Stores events, once each (a redelivered event is skipped); returns those stored now.
    fn insert_events(
        &self,
        events: &[NewEvent],
        now_ms: i64,
    ) -> impl Future<Output = Result<Vec<StoredEvent>>> + Send;

    /// Events matching the filter, newest first.
    fn query_events(
        &self,
        filter: &EventFilter,
    ) -> impl Future<Output = Result<Vec<StoredEvent>>> + Send;

    /// Writes an outage as it stands now (made or changed) with its meters and which of them
    /// are back, in one transaction.
    fn save_outage(&self, outage: &Outage) -> impl Future<Output = Result<()>> + Send;

    /// Outages oldest first: every one not fully restored if `active_only`, else the
    /// [`crate::model::MAX_PAGE`] most recent.
    fn outages(&self, active_only: bool) -> impl Future<Output = Result<Vec<Outage>>> + Send;
}

/// PostgreSQL.
#[derive(Clone, Debug)]
pub struct PgStore {
    pool: PgPool,
}

impl PgStore {
    /// Connects with a pool of `max_connections`.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self> {
        let pool = PgPoolOptions::new()
            .max_connections(max_connections.max(1))
            .acquire_timeout(Duration::from_secs(10))
            .connect(url)
            .await?;
        Ok(Self { pool })
    }

    /// The pool (for tests and tools that inspect raw rows).
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Closes the pool.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Embedded SQLite (WAL, foreign keys on).
#[derive(Clone, Debug)]
pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    /// Opens (creating if missing) the database file at `path`.
    pub async fn open(path: &str) -> Result<Self> {
        let opts = SqliteConnectOptions::from_str(&format!("sqlite://{path}"))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(opts)
            .await?;
        Ok(Self { pool })
    }

    /// A database in memory (one connection, so every call sees the same database).
    pub async fn in_memory() -> Result<Self> {
        let opts = SqliteConnectOptions::from_str("sqlite::memory:")?.foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(opts)
            .await?;
        Ok(Self { pool })
    }

    /// The pool (for tests and tools that inspect raw rows).
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }
}

static PG_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");
static SQLITE_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");

const METER_COLS: &str = "serial, manufacturer, model, protocol, dlms_system_title, mbus_address, \
     osgp_device_id, adapter, concentrator, service_point, customer, location, latitude_e6, \
     longitude_e6, feeder, transformer, phase, status, status_changed_at, created_at";

const INSERT_METER: &str = "INSERT INTO meter (serial, manufacturer, model, protocol, \
     dlms_system_title, mbus_address, osgp_device_id, adapter, concentrator, service_point, \
     customer, location, latitude_e6, longitude_e6, feeder, transformer, phase, status, \
     status_changed_at, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, \
     $13, $14, $15, $16, $17, $18, $19, $20) ON CONFLICT DO NOTHING";

const SELECT_METER_BY_ID: &str = "SELECT serial, manufacturer, model, protocol, \
     dlms_system_title, mbus_address, osgp_device_id, adapter, concentrator, service_point, \
     customer, location, latitude_e6, longitude_e6, feeder, transformer, phase, status, \
     status_changed_at, created_at FROM meter WHERE serial = $1 OR dlms_system_title = $2 \
     OR mbus_address = $3 OR osgp_device_id = $2 ORDER BY serial = $1 DESC LIMIT 1";

const UPDATE_STATUS: &str =
    "UPDATE meter SET status = $1, status_changed_at = $2 WHERE serial = $3 AND status = $4";

const KEY_COLS: &str = "k.serial, k.role, k.version, k.state, k.master_key_id, k.wrapped_dek, \
     k.ciphertext, k.created_at, k.grace_until, k.created_by";

const MAX_KEY_VERSION: &str =
    "SELECT COALESCE(MAX(version), 0) FROM meter_key WHERE serial = $1 AND role = $2";

const COUNT_ACTIVE_KEY: &str =
    "SELECT COUNT(*) FROM meter_key WHERE serial = $1 AND role = $2 AND state = 1";

const DEMOTE_ACTIVE: &str = "UPDATE meter_key SET state = 2, grace_until = $3 \
     WHERE serial = $1 AND role = $2 AND state = 1";

const INSERT_KEY: &str = "INSERT INTO meter_key (serial, role, version, state, master_key_id, \
     wrapped_dek, ciphertext, created_at, grace_until, created_by) \
     VALUES ($1, $2, $3, 1, $4, $5, $6, $7, 0, $8)";

const RETIRE_EXPIRED: &str = "UPDATE meter_key SET state = 3, wrapped_dek = $2, ciphertext = $2 \
     WHERE state = 2 AND grace_until <= $1";

const INSERT_EVENT: &str = "INSERT INTO meter_event (frame, meter, serial, kind, ts, code, source, \
     duration_s, received_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
     ON CONFLICT DO NOTHING RETURNING id";

const EVENT_COLS: &str = "id, frame, meter, serial, kind, ts, code, source, duration_s";

const UPSERT_OUTAGE: &str = "INSERT INTO outage (id, scope, node, state, started_at, \
     confirmed_at, restored_at) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (id) DO UPDATE \
     SET state = excluded.state, confirmed_at = excluded.confirmed_at, \
     restored_at = excluded.restored_at";

const SELECT_ACTIVE_OUTAGES: &str = "SELECT id, scope, node, state, started_at, confirmed_at, \
     restored_at FROM outage WHERE state <> 'restored' ORDER BY started_at, id";

const SELECT_RECENT_OUTAGES: &str = "SELECT id, scope, node, state, started_at, confirmed_at, \
     restored_at FROM outage ORDER BY started_at DESC, id DESC LIMIT $1";

/// Rows per statement when an outage's meters are written or read (well under the bound
/// parameters either backend takes).
const OUTAGE_CHUNK: usize = 500;

/// The page size when a filter names none, and the largest.
fn page(limit: u32) -> i64 {
    i64::from(if limit == 0 {
        1000
    } else {
        limit.min(crate::model::MAX_PAGE)
    })
}

/// Implements [`RegistryStore`] for a backend; the SQL above is shared.
macro_rules! sql_store {
    ($store:ty, $db:ty, $migrator:expr) => {
        impl RegistryStore for $store {
            async fn migrate(&self) -> Result<()> {
                $migrator.run(&self.pool).await?;
                Ok(())
            }

            async fn insert_meters(&self, rows: &[(u32, Meter)]) -> Result<Vec<(u32, String)>> {
                let mut refused = Vec::new();
                let mut tx = self.pool.begin().await?;
                for (line, m) in rows {
                    let done = sqlx::query(INSERT_METER)
                        .bind(&m.serial)
                        .bind(&m.manufacturer)
                        .bind(&m.model)
                        .bind(&m.protocol)
                        .bind(&m.dlms_system_title)
                        .bind(&m.mbus_address)
                        .bind(&m.osgp_device_id)
                        .bind(&m.adapter)
                        .bind(&m.concentrator)
                        .bind(&m.service_point)
                        .bind(&m.customer)
                        .bind(&m.location)
                        .bind(m.latitude_e6)
                        .bind(m.longitude_e6)
                        .bind(&m.feeder)
                        .bind(&m.transformer)
                        .bind(&m.phase)
                        .bind(m.status.code())
                        .bind(m.status_changed_at_ms)
                        .bind(m.created_at_ms)
                        .execute(&mut *tx)
                        .await?;
                    if done.rows_affected() == 0 {
                        refused.push((
                            *line,
                            format!(
                                "meter {} or one of its protocol identities is registered already",
                                m.serial
                            ),
                        ));
                    }
                }
                tx.commit().await?;
                Ok(refused)
            }

            async fn meter(&self, id: &str) -> Result<Option<Meter>> {
                let row = sqlx::query(SELECT_METER_BY_ID)
                    .bind(id)
                    .bind(id.to_ascii_lowercase())
                    .bind(id.to_ascii_uppercase())
                    .fetch_optional(&self.pool)
                    .await?;
                row.as_ref().map(meter_from_row).transpose()
            }

            async fn list_meters(&self, filter: &MeterFilter) -> Result<Vec<Meter>> {
                let mut q = sqlx::QueryBuilder::<$db>::new(format!(
                    "SELECT {METER_COLS} FROM meter WHERE 1 = 1"
                ));
                if let Some(f) = &filter.feeder {
                    q.push(" AND feeder = ").push_bind(f.clone());
                }
                if let Some(t) = &filter.transformer {
                    q.push(" AND transformer = ").push_bind(t.clone());
                }
                if let Some(s) = filter.status {
                    q.push(" AND status = ").push_bind(s.code());
                }
                if let Some(a) = &filter.after_serial {
                    q.push(" AND serial > ").push_bind(a.clone());
                }
                q.push(" ORDER BY serial LIMIT ")
                    .push_bind(page(filter.limit));
                let rows = q.build().fetch_all(&self.pool).await?;
                rows.iter().map(meter_from_row).collect()
            }

            async fn set_status(
                &self,
                serial: &str,
                to: MeterStatus,
                now_ms: i64,
            ) -> Result<Meter> {
                // Optimistic: the update applies only to the status that was checked; a
                // concurrent change makes it miss, and the check runs again.
                for _ in 0..3 {
                    let Some(mut m) = self.meter(serial).await?.filter(|m| m.serial == serial)
                    else {
                        return Err(HesError::NotFound(format!("meter {serial}")));
                    };
                    if !m.status.can_become(to) {
                        return Err(HesError::InvalidTransition {
                            serial: serial.to_owned(),
                            from: m.status,
                            to,
                        });
                    }
                    let done = sqlx::query(UPDATE_STATUS)
                        .bind(to.code())
                        .bind(now_ms)
                        .bind(serial)
                        .bind(m.status.code())
                        .execute(&self.pool)
                        .await?;
                    if done.rows_affected() == 1 {
                        m.status = to;
                        m.status_changed_at_ms = now_ms;
                        return Ok(m);
                    }
                }
                Err(HesError::AlreadyExists(format!(
                    "meter {serial}: status changed concurrently, try again"
                )))
            }

            async fn store_key(
                &self,
                serial: &str,
                role: KeyRole,
                write: KeyWrite,
                created_by: &str,
                now_ms: i64,
                seal: &SealFn<'_>,
            ) -> Result<KeyMetadata> {
                let role_name = crate::model::role_name(role);
                let mut tx = self.pool.begin().await?;
                let known: Option<String> =
                    sqlx::query_scalar("SELECT serial FROM meter WHERE serial = $1")
                        .bind(serial)
                        .fetch_optional(&mut *tx)
                        .await?;
                if known.is_none() {
                    return Err(HesError::NotFound(format!("meter {serial}")));
                }
                let active: i64 = sqlx::query_scalar(COUNT_ACTIVE_KEY)
                    .bind(serial)
                    .bind(role_name)
                    .fetch_one(&mut *tx)
                    .await?;
                match write {
                    KeyWrite::Put if active > 0 => {
                        return Err(HesError::AlreadyExists(format!(
                            "meter {serial} has an active {role_name} key: rotate it instead"
                        )));
                    }
                    KeyWrite::Rotate { .. } if active == 0 => {
                        return Err(HesError::NotFound(format!(
                            "meter {serial} has no active {role_name} key to rotate"
                        )));
                    }
                    KeyWrite::Put => {}
                    KeyWrite::Rotate { grace_until_ms } => {
                        sqlx::query(DEMOTE_ACTIVE)
                            .bind(serial)
                            .bind(role_name)
                            .bind(grace_until_ms)
                            .execute(&mut *tx)
                            .await?;
                    }
                }
                let max: i64 = sqlx::query_scalar(MAX_KEY_VERSION)
                    .bind(serial)
                    .bind(role_name)
                    .fetch_one(&mut *tx)
                    .await?;
                let version = u32::try_from(max + 1)
                    .map_err(|_| HesError::Corrupt(format!("key version {max} of {serial}")))?;
                let sealed = seal(version)?;
                sqlx::query(INSERT_KEY)
                    .bind(serial)
                    .bind(role_name)
                    .bind(i64::from(version))
                    .bind(&sealed.master_key_id)
                    .bind(&sealed.wrapped_dek)
                    .bind(&sealed.ciphertext)
                    .bind(now_ms)
                    .bind(created_by)
                    .execute(&mut *tx)
                    .await?;
                if let KeyWrite::Rotate { .. } = write {
                    sqlx::query(RETIRE_EXPIRED)
                        .bind(now_ms)
                        .bind(Vec::<u8>::new())
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await?;
                Ok(KeyMetadata {
                    serial: serial.to_owned(),
                    role,
                    version,
                    state: crate::model::KeyState::Active,
                    created_at_ms: now_ms,
                    grace_until_ms: 0,
                    master_key_id: sealed.master_key_id,
                    created_by: created_by.to_owned(),
                })
            }

            async fn key_records(&self, serial: &str) -> Result<Vec<KeyRecord>> {
                let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
                    "SELECT {KEY_COLS} FROM meter_key k WHERE k.serial = $1 \
                     ORDER BY k.role, k.version"
                )))
                .bind(serial)
                .fetch_all(&self.pool)
                .await?;
                rows.iter().map(key_from_row).collect()
            }

            async fn usable_keys(&self, serial: Option<&str>) -> Result<Vec<ActiveKey>> {
                let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
                    "SELECT {KEY_COLS}, m.dlms_system_title, m.mbus_address, m.osgp_device_id \
                     FROM meter_key k JOIN meter m ON m.serial = k.serial \
                     WHERE k.state IN (1, 2) AND ($1 IS NULL OR k.serial = $1) \
                     ORDER BY k.serial, k.role, k.version"
                )))
                .bind(serial)
                .fetch_all(&self.pool)
                .await?;
                rows.iter()
                    .map(|row| {
                        use sqlx::Row;
                        let record = key_from_row(row)?;
                        let mut names = vec![record.meta.serial.clone()];
                        for col in ["dlms_system_title", "mbus_address", "osgp_device_id"] {
                            if let Some(n) = row.try_get::<Option<String>, _>(col)? {
                                names.push(n);
                            }
                        }
                        Ok(ActiveKey { names, record })
                    })
                    .collect()
            }

            async fn retire_expired_keys(&self, now_ms: i64) -> Result<u64> {
                let done = sqlx::query(RETIRE_EXPIRED)
                    .bind(now_ms)
                    .bind(Vec::<u8>::new())
                    .execute(&self.pool)
                    .await?;
                Ok(done.rows_affected())
            }

            async fn insert_events(
                &self,
                events: &[NewEvent],
                now_ms: i64,
            ) -> Result<Vec<StoredEvent>> {
                let mut stored = Vec::new();
                let mut tx = self.pool.begin().await?;
                for e in events {
                    let id: Option<i64> = sqlx::query_scalar(INSERT_EVENT)
                        .bind(&e.frame)
                        .bind(&e.meter)
                        .bind(&e.serial)
                        .bind(&e.kind)
                        .bind(e.ts_ms)
                        .bind(i64::from(e.code))
                        .bind(&e.source)
                        .bind(i64::from(e.duration_s))
                        .bind(now_ms)
                        .fetch_optional(&mut *tx)
                        .await?;
                    if let Some(id) = id {
                        stored.push(StoredEvent {
                            id,
                            event: e.clone(),
                        });
                    }
                }
                tx.commit().await?;
                Ok(stored)
            }

            async fn query_events(&self, filter: &EventFilter) -> Result<Vec<StoredEvent>> {
                let mut q = sqlx::QueryBuilder::<$db>::new(format!(
                    "SELECT {EVENT_COLS} FROM meter_event WHERE 1 = 1"
                ));
                if let Some(s) = &filter.serial {
                    q.push(" AND serial = ").push_bind(s.clone());
                }
                if !filter.kinds.is_empty() {
                    q.push(" AND kind IN (");
                    let mut sep = q.separated(", ");
                    for k in &filter.kinds {
                        sep.push_bind(k.clone());
                    }
                    q.push(")");
                }
                if let Some(a) = filter.after_ms {
                    q.push(" AND ts > ").push_bind(a);
                }
                if let Some(u) = filter.until_ms {
                    q.push(" AND ts <= ").push_bind(u);
                }
                q.push(" ORDER BY ts DESC, id DESC LIMIT ")
                    .push_bind(page(filter.limit));
                let rows = q.build().fetch_all(&self.pool).await?;
                rows.iter()
                    .map(|row| {
                        use sqlx::Row;
                        let code: i64 = row.try_get("code")?;
                        let duration: i64 = row.try_get("duration_s")?;
                        Ok(StoredEvent {
                            id: row.try_get("id")?,
                            event: NewEvent {
                                frame: row.try_get("frame")?,
                                meter: row.try_get("meter")?,
                                serial: row.try_get("serial")?,
                                kind: row.try_get("kind")?,
                                ts_ms: row.try_get("ts")?,
                                code: u32::try_from(code)
                                    .map_err(|_| HesError::Corrupt(format!("event code {code}")))?,
                                source: row.try_get("source")?,
                                duration_s: u32::try_from(duration).map_err(|_| {
                                    HesError::Corrupt(format!("event duration {duration}"))
                                })?,
                            },
                        })
                    })
                    .collect()
            }

            async fn save_outage(&self, o: &Outage) -> Result<()> {
                let mut tx = self.pool.begin().await?;
                sqlx::query(UPSERT_OUTAGE)
                    .bind(&o.id)
                    .bind(o.scope.name())
                    .bind(&o.node)
                    .bind(o.state.name())
                    .bind(o.started_at_ms)
                    .bind(o.confirmed_at_ms)
                    .bind(o.restored_at_ms)
                    .execute(&mut *tx)
                    .await?;
                let meters: Vec<&String> = o.meters.iter().collect();
                for chunk in meters.chunks(OUTAGE_CHUNK) {
                    let mut q = sqlx::QueryBuilder::<$db>::new(
                        "INSERT INTO outage_meter (outage, serial, restored) ",
                    );
                    q.push_values(chunk, |mut b, serial| {
                        b.push_bind(o.id.clone())
                            .push_bind((*serial).clone())
                            .push_bind(i64::from(o.restored.contains(*serial)));
                    });
                    q.push(
                        " ON CONFLICT (outage, serial) DO UPDATE SET restored = excluded.restored",
                    );
                    q.build().execute(&mut *tx).await?;
                }
                tx.commit().await?;
                Ok(())
            }

            async fn outages(&self, active_only: bool) -> Result<Vec<Outage>> {
                let rows = if active_only {
                    sqlx::query(SELECT_ACTIVE_OUTAGES)
                        .fetch_all(&self.pool)
                        .await?
                } else {
                    let mut rows = sqlx::query(SELECT_RECENT_OUTAGES)
                        .bind(i64::from(crate::model::MAX_PAGE))
                        .fetch_all(&self.pool)
                        .await?;
                    rows.reverse();
                    rows
                };
                let mut outages = rows
                    .iter()
                    .map(outage_from_row)
                    .collect::<Result<Vec<Outage>>>()?;
                let index: std::collections::HashMap<String, usize> = outages
                    .iter()
                    .enumerate()
                    .map(|(i, o)| (o.id.clone(), i))
                    .collect();
                let ids: Vec<String> = outages.iter().map(|o| o.id.clone()).collect();
                for chunk in ids.chunks(OUTAGE_CHUNK) {
                    let mut q = sqlx::QueryBuilder::<$db>::new(
                        "SELECT outage, serial, restored FROM outage_meter WHERE outage IN (",
                    );
                    let mut sep = q.separated(", ");
                    for id in chunk {
                        sep.push_bind(id.clone());
                    }
                    q.push(")");
                    for row in q.build().fetch_all(&self.pool).await? {
                        use sqlx::Row;
                        let id: String = row.try_get("outage")?;
                        let serial: String = row.try_get("serial")?;
                        let restored: i64 = row.try_get("restored")?;
                        if let Some(o) = index.get(&id).and_then(|&i| outages.get_mut(i)) {
                            if restored != 0 {
                                o.restored.insert(serial.clone());
                            }
                            o.meters.insert(serial);
                        }
                    }
                }
                Ok(outages)
            }
        }
    };
}

/// Reads an outage row, without its meters (either backend).
fn outage_from_row<R>(row: &R) -> Result<Outage>
where
    R: sqlx::Row,
    usize: sqlx::ColumnIndex<R>,
    for<'a> &'a str: sqlx::ColumnIndex<R>,
    for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    let scope: String = row.try_get("scope")?;
    let state: String = row.try_get("state")?;
    Ok(Outage {
        id: row.try_get("id")?,
        scope: OutageScope::from_name(&scope)
            .ok_or_else(|| HesError::Corrupt(format!("outage scope {scope:?}")))?,
        node: row.try_get("node")?,
        state: OutageState::from_name(&state)
            .ok_or_else(|| HesError::Corrupt(format!("outage state {state:?}")))?,
        started_at_ms: row.try_get("started_at")?,
        confirmed_at_ms: row.try_get("confirmed_at")?,
        restored_at_ms: row.try_get("restored_at")?,
        meters: std::collections::BTreeSet::new(),
        restored: std::collections::BTreeSet::new(),
    })
}

/// Reads a meter row (either backend).
fn meter_from_row<R>(row: &R) -> Result<Meter>
where
    R: sqlx::Row,
    usize: sqlx::ColumnIndex<R>,
    for<'a> &'a str: sqlx::ColumnIndex<R>,
    for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> Option<String>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> Option<i64>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    let status: i64 = row.try_get("status")?;
    Ok(Meter {
        serial: row.try_get("serial")?,
        manufacturer: row.try_get("manufacturer")?,
        model: row.try_get("model")?,
        protocol: row.try_get("protocol")?,
        dlms_system_title: row.try_get("dlms_system_title")?,
        mbus_address: row.try_get("mbus_address")?,
        osgp_device_id: row.try_get("osgp_device_id")?,
        adapter: row.try_get("adapter")?,
        concentrator: row.try_get("concentrator")?,
        service_point: row.try_get("service_point")?,
        customer: row.try_get("customer")?,
        location: row.try_get("location")?,
        latitude_e6: row.try_get("latitude_e6")?,
        longitude_e6: row.try_get("longitude_e6")?,
        feeder: row.try_get("feeder")?,
        transformer: row.try_get("transformer")?,
        phase: row.try_get("phase")?,
        status: MeterStatus::from_code(status)
            .ok_or_else(|| HesError::Corrupt(format!("meter status {status}")))?,
        status_changed_at_ms: row.try_get("status_changed_at")?,
        created_at_ms: row.try_get("created_at")?,
    })
}

/// Reads a key row (either backend).
fn key_from_row<R>(row: &R) -> Result<KeyRecord>
where
    R: sqlx::Row,
    usize: sqlx::ColumnIndex<R>,
    for<'a> &'a str: sqlx::ColumnIndex<R>,
    for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> Vec<u8>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    let role: String = row.try_get("role")?;
    let version: i64 = row.try_get("version")?;
    let state: i64 = row.try_get("state")?;
    Ok(KeyRecord {
        meta: KeyMetadata {
            serial: row.try_get("serial")?,
            role: crate::model::role_from_name(&role)
                .ok_or_else(|| HesError::Corrupt(format!("key role {role:?}")))?,
            version: u32::try_from(version)
                .map_err(|_| HesError::Corrupt(format!("key version {version}")))?,
            state: crate::model::KeyState::from_code(state)
                .ok_or_else(|| HesError::Corrupt(format!("key state {state}")))?,
            created_at_ms: row.try_get("created_at")?,
            grace_until_ms: row.try_get("grace_until")?,
            master_key_id: row.try_get("master_key_id")?,
            created_by: row.try_get("created_by")?,
        },
        wrapped_dek: row.try_get("wrapped_dek")?,
        ciphertext: row.try_get("ciphertext")?,
    })
}

sql_store!(PgStore, sqlx::Postgres, PG_MIGRATOR);
sql_store!(SqliteStore, sqlx::Sqlite, SQLITE_MIGRATOR);

/// A [`PgStore`] or a [`SqliteStore`], chosen from a URL.
#[derive(Clone, Debug)]
pub enum AnyStore {
    /// PostgreSQL.
    Postgres(PgStore),
    /// Embedded SQLite.
    Sqlite(SqliteStore),
}

impl AnyStore {
    /// Opens the store a URL names: `postgres://` / `postgresql://`, `sqlite::memory:`, or
    /// `sqlite:<path>` / `sqlite://<path>` (created if missing). Call
    /// [`RegistryStore::migrate`] before use.
    pub async fn open(url: &str, max_connections: u32) -> Result<Self> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(Self::Postgres(
                PgStore::connect(url, max_connections).await?,
            ));
        }
        if url == "sqlite::memory:" {
            return Ok(Self::Sqlite(SqliteStore::in_memory().await?));
        }
        if let Some(path) = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
            .filter(|p| !p.is_empty())
        {
            return Ok(Self::Sqlite(SqliteStore::open(path).await?));
        }
        Err(HesError::Config(format!(
            "unsupported database url {url:?}: expected postgres://, sqlite: or sqlite::memory:"
        )))
    }
}

macro_rules! delegate {
    ($self:ident, $s:ident => $call:expr) => {
        match $self {
            AnyStore::Postgres($s) => $call.await,
            AnyStore::Sqlite($s) => $call.await,
        }
    };
}

impl RegistryStore for AnyStore {
    async fn migrate(&self) -> Result<()> {
        delegate!(self, s => s.migrate())
    }
    async fn insert_meters(&self, rows: &[(u32, Meter)]) -> Result<Vec<(u32, String)>> {
        delegate!(self, s => s.insert_meters(rows))
    }
    async fn meter(&self, id: &str) -> Result<Option<Meter>> {
        delegate!(self, s => s.meter(id))
    }
    async fn list_meters(&self, filter: &MeterFilter) -> Result<Vec<Meter>> {
        delegate!(self, s => s.list_meters(filter))
    }
    async fn set_status(&self, serial: &str, to: MeterStatus, now_ms: i64) -> Result<Meter> {
        delegate!(self, s => s.set_status(serial, to, now_ms))
    }
    async fn store_key(
        &self,
        serial: &str,
        role: KeyRole,
        write: KeyWrite,
        created_by: &str,
        now_ms: i64,
        seal: &SealFn<'_>,
    ) -> Result<KeyMetadata> {
        delegate!(self, s => s.store_key(serial, role, write, created_by, now_ms, seal))
    }
    async fn key_records(&self, serial: &str) -> Result<Vec<KeyRecord>> {
        delegate!(self, s => s.key_records(serial))
    }
    async fn usable_keys(&self, serial: Option<&str>) -> Result<Vec<ActiveKey>> {
        delegate!(self, s => s.usable_keys(serial))
    }
    async fn retire_expired_keys(&self, now_ms: i64) -> Result<u64> {
        delegate!(self, s => s.retire_expired_keys(now_ms))
    }
    async fn insert_events(&self, events: &[NewEvent], now_ms: i64) -> Result<Vec<StoredEvent>> {
        delegate!(self, s => s.insert_events(events, now_ms))
    }
    async fn query_events(&self, filter: &EventFilter) -> Result<Vec<StoredEvent>> {
        delegate!(self, s => s.query_events(filter))
    }
    async fn save_outage(&self, outage: &Outage) -> Result<()> {
        delegate!(self, s => s.save_outage(outage))
    }
    async fn outages(&self, active_only: bool) -> Result<Vec<Outage>> {
        delegate!(self, s => s.outages(active_only))
    }
}
