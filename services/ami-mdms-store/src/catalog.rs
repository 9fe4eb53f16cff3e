//! The MDMS catalog beside the interval data: the meters the MDMS knows (their class picks a
//! VEE rule set, their grid groups drive aggregation), the VEE exceptions raised on intervals
//! and their resolution, and manual edits that wait for a second person's approval.
//!
//! One SQL text serves both backends (`$n` parameters in order, portable types); the
//! [`Catalog`] trait is implemented by [`PgStore`], [`SqliteStore`] and [`AnyStore`].

use std::future::Future;

use ami_domain::{Obis, Quantity, Unit};
use sqlx::Row;

use crate::error::{InvalidInput, Result, StoreError};
use crate::model::register_key;
use crate::{AnyStore, PgStore, SqliteStore};

/// A meter as the MDMS knows it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MeterInfo {
    /// The meter id, as in the readings.
    pub id: String,
    /// The meter class that picks its VEE rule set (`default` when never set).
    pub class: String,
    /// Feeder it hangs on (empty when unknown).
    pub feeder: String,
    /// Transformer it hangs on (empty when unknown).
    pub transformer: String,
    /// Customer class (empty when unknown).
    pub customer_class: String,
}

/// A grouping that load is summed by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GroupKind {
    /// By feeder.
    Feeder,
    /// By distribution transformer.
    Transformer,
    /// By customer class.
    CustomerClass,
}

impl GroupKind {
    const fn column(self) -> &'static str {
        match self {
            GroupKind::Feeder => "feeder",
            GroupKind::Transformer => "transformer",
            GroupKind::CustomerClass => "customer_class",
        }
    }
}

/// A VEE finding to record on one interval.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewException {
    /// The meter.
    pub meter: String,
    /// The register.
    pub register: Obis,
    /// Interval end, UTC ms.
    pub ts_ms: i64,
    /// The rule that raised it.
    pub rule: String,
    /// The rule's reason.
    pub reason: String,
}

/// A recorded VEE exception.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VeeException {
    /// Its id.
    pub id: i64,
    /// The meter.
    pub meter: String,
    /// The register.
    pub register: Obis,
    /// Interval end, UTC ms.
    pub ts_ms: i64,
    /// The rule that raised it.
    pub rule: String,
    /// The rule's reason.
    pub reason: String,
    /// `None` while open; the resolution, who and when once resolved.
    pub resolved: Option<Resolution>,
    /// When it was raised, UTC ms.
    pub raised_at_ms: i64,
}

/// How an exception was closed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resolution {
    /// What was decided.
    pub text: String,
    /// Who decided.
    pub by: String,
    /// When, UTC ms.
    pub at_ms: i64,
}

/// A manual edit as proposed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewEdit {
    /// The meter.
    pub meter: String,
    /// The register.
    pub register: Obis,
    /// Interval end, UTC ms.
    pub ts_ms: i64,
    /// The proposed value.
    pub value: Quantity,
    /// Its unit.
    pub unit: Unit,
    /// Why.
    pub reason: String,
    /// Who proposes it.
    pub proposed_by: String,
}

/// Where an edit stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EditStatus {
    /// Waiting for review.
    Pending,
    /// Approved and applied as a new version.
    Approved,
    /// Rejected; nothing applied.
    Rejected,
}

impl EditStatus {
    const fn code(self) -> i16 {
        match self {
            EditStatus::Pending => 0,
            EditStatus::Approved => 1,
            EditStatus::Rejected => 2,
        }
    }

    fn from_code(code: i16) -> Result<Self> {
        match code {
            0 => Ok(EditStatus::Pending),
            1 => Ok(EditStatus::Approved),
            2 => Ok(EditStatus::Rejected),
            other => Err(StoreError::Corrupt(format!("unknown edit status {other}"))),
        }
    }

    /// `pending`, `approved` or `rejected`.
    pub const fn name(self) -> &'static str {
        match self {
            EditStatus::Pending => "pending",
            EditStatus::Approved => "approved",
            EditStatus::Rejected => "rejected",
        }
    }
}

/// A recorded edit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Edit {
    /// Its id.
    pub id: i64,
    /// What was proposed.
    pub edit: NewEdit,
    /// When it was proposed, UTC ms.
    pub proposed_at_ms: i64,
    /// Where it stands.
    pub status: EditStatus,
    /// Who reviewed it, when, and the reviewer's note.
    pub review: Option<Resolution>,
    /// The version it became, once approved.
    pub version: Option<u32>,
}

/// The catalog operations; every future is `Send`.
pub trait Catalog: Send + Sync {
    /// Inserts or replaces meters' class and groups; returns how many were written.
    fn upsert_meters(&self, meters: &[MeterInfo]) -> impl Future<Output = Result<u64>> + Send;

    /// Records meters seen in readings (class `default`, no groups) unless already known.
    fn touch_meters(&self, ids: &[String], now_ms: i64) -> impl Future<Output = Result<()>> + Send;

    /// Every known meter, by id.
    fn meters(&self) -> impl Future<Output = Result<Vec<MeterInfo>>> + Send;

    /// One meter, if known.
    fn meter(&self, id: &str) -> impl Future<Output = Result<Option<MeterInfo>>> + Send;

    /// The ids of the meters in one group, by id.
    fn meters_in_group(
        &self,
        kind: GroupKind,
        group: &str,
    ) -> impl Future<Output = Result<Vec<String>>> + Send;

    /// Records findings; one already open or resolved for the same interval and rule is kept
    /// as it is. Returns how many were new.
    fn raise_exceptions(
        &self,
        found: &[NewException],
        now_ms: i64,
    ) -> impl Future<Output = Result<u64>> + Send;

    /// Exceptions, of one meter or all, open only unless `include_resolved`, by id.
    fn exceptions(
        &self,
        meter: Option<&str>,
        include_resolved: bool,
    ) -> impl Future<Output = Result<Vec<VeeException>>> + Send;

    /// The interval ends of one series in `(after_ms, until_ms]` with an open exception.
    fn open_exception_times(
        &self,
        meter: &str,
        register: Obis,
        after_ms: i64,
        until_ms: i64,
    ) -> impl Future<Output = Result<Vec<i64>>> + Send;

    /// Resolves an open exception.
    fn resolve_exception(
        &self,
        id: i64,
        resolution: Resolution,
    ) -> impl Future<Output = Result<VeeException>> + Send;

    /// Records a proposed edit (pending).
    fn propose_edit(
        &self,
        edit: &NewEdit,
        now_ms: i64,
    ) -> impl Future<Output = Result<Edit>> + Send;

    /// One edit.
    fn edit(&self, id: i64) -> impl Future<Output = Result<Edit>> + Send;

    /// Closes a pending edit as approved (with the version it became) or rejected.
    fn close_edit(
        &self,
        id: i64,
        status: EditStatus,
        review: Resolution,
        version: Option<u32>,
    ) -> impl Future<Output = Result<Edit>> + Send;

    /// Edits, pending only unless `include_closed`, by id.
    fn edits(&self, include_closed: bool) -> impl Future<Output = Result<Vec<Edit>>> + Send;
}

fn obis_of_key(key: i64) -> Obis {
    let b = key.to_be_bytes();
    Obis::new(b[2], b[3], b[4], b[5], b[6], b[7])
}

fn check_text(what: &'static str, value: &str) -> Result<()> {
    if value.trim().is_empty() {
        return Err(InvalidInput::EmptyField(what).into());
    }
    Ok(())
}

const METER_COLS: &str = "id, class, feeder, transformer, customer_class";
const EXCEPTION_COLS: &str = "id, meter, register, ts, rule, reason, status, resolution, resolved_by, raised_at, resolved_at";
const EDIT_COLS: &str = "id, meter, register, ts, mantissa, exponent, unit, reason, status, proposed_by, proposed_at, reviewed_by, reviewed_at, review_note, version";

/// Runs the same code against whichever pool the store has: `$pool` is bound to a
/// `&PgPool` in one arm and a `&SqlitePool` in the other.
macro_rules! on_pool {
    ($pools:expr, |$pool:ident| $body:expr) => {
        match $pools {
            Pools::Pg($pool) => $body,
            Pools::Lite($pool) => $body,
        }
    };
}

/// Maps a row of either backend; the same column reads compile for both.
macro_rules! map_rows {
    ($rows:expr, $f:ident) => {
        $rows.iter().map($f).collect::<Result<Vec<_>>>()
    };
}

fn meter_row<R: Row>(row: &R) -> Result<MeterInfo>
where
    for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    usize: sqlx::ColumnIndex<R>,
{
    Ok(MeterInfo {
        id: row.try_get(0)?,
        class: row.try_get(1)?,
        feeder: row.try_get(2)?,
        transformer: row.try_get(3)?,
        customer_class: row.try_get(4)?,
    })
}

fn exception_row<R: Row>(row: &R) -> Result<VeeException>
where
    for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> Option<String>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> Option<i64>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> i16: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    usize: sqlx::ColumnIndex<R>,
{
    let status: i16 = row.try_get(6)?;
    let resolved = match status {
        0 => None,
        1 => Some(Resolution {
            text: row.try_get::<Option<String>, _>(7)?.unwrap_or_default(),
            by: row.try_get::<Option<String>, _>(8)?.unwrap_or_default(),
            at_ms: row.try_get::<Option<i64>, _>(10)?.unwrap_or_default(),
        }),
        other => {
            return Err(StoreError::Corrupt(format!(
                "unknown exception status {other}"
            )));
        }
    };
    Ok(VeeException {
        id: row.try_get(0)?,
        meter: row.try_get(1)?,
        register: obis_of_key(row.try_get(2)?),
        ts_ms: row.try_get(3)?,
        rule: row.try_get(4)?,
        reason: row.try_get(5)?,
        resolved,
        raised_at_ms: row.try_get(9)?,
    })
}

fn edit_row<R: Row>(row: &R) -> Result<Edit>
where
    for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> Option<String>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> Option<i64>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> i16: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> Option<i32>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    usize: sqlx::ColumnIndex<R>,
{
    let exponent: i16 = row.try_get(5)?;
    let unit_code: i16 = row.try_get(6)?;
    let unit = u8::try_from(unit_code)
        .ok()
        .and_then(Unit::from_code)
        .ok_or_else(|| StoreError::Corrupt(format!("unknown unit code {unit_code}")))?;
    let scale = i8::try_from(exponent)
        .map_err(|_| StoreError::Corrupt(format!("exponent {exponent} out of range")))?;
    let status = EditStatus::from_code(row.try_get(8)?)?;
    let review = match row.try_get::<Option<String>, _>(11)? {
        Some(by) => Some(Resolution {
            text: row.try_get::<Option<String>, _>(13)?.unwrap_or_default(),
            by,
            at_ms: row.try_get::<Option<i64>, _>(12)?.unwrap_or_default(),
        }),
        None => None,
    };
    let version = row
        .try_get::<Option<i32>, _>(14)?
        .map(|v| u32::try_from(v).unwrap_or_default());
    Ok(Edit {
        id: row.try_get(0)?,
        edit: NewEdit {
            meter: row.try_get(1)?,
            register: obis_of_key(row.try_get(2)?),
            ts_ms: row.try_get(3)?,
            value: Quantity::new(row.try_get(4)?, scale),
            unit,
            reason: row.try_get(7)?,
            proposed_by: row.try_get(9)?,
        },
        proposed_at_ms: row.try_get(10)?,
        status,
        review,
        version,
    })
}

/// The pool a catalog query runs on.
#[derive(Clone, Copy)]
enum Pools<'a> {
    Pg(&'a sqlx::PgPool),
    Lite(&'a sqlx::SqlitePool),
}

/// The catalog over either backend's pool.
struct Sql<'a>(Pools<'a>);

impl Sql<'_> {
    async fn upsert_meters(&self, meters: &[MeterInfo], now_ms: i64) -> Result<u64> {
        let sql =
            "INSERT INTO mdms_meter (id, class, feeder, transformer, customer_class, first_seen)
            VALUES ($1, $2, $3, $4, $5, $6)
            ON CONFLICT (id) DO UPDATE SET class = excluded.class, feeder = excluded.feeder,
                transformer = excluded.transformer, customer_class = excluded.customer_class";
        for m in meters {
            check_text("meter id", &m.id)?;
            check_text("meter class", &m.class)?;
        }
        on_pool!(self.0, |pool| {
            let mut tx = pool.begin().await?;
            for m in meters {
                sqlx::query(sql)
                    .bind(&m.id)
                    .bind(&m.class)
                    .bind(&m.feeder)
                    .bind(&m.transformer)
                    .bind(&m.customer_class)
                    .bind(now_ms)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
        });
        Ok(meters.len() as u64)
    }

    async fn touch_meters(&self, ids: &[String], now_ms: i64) -> Result<()> {
        let sql =
            "INSERT INTO mdms_meter (id, first_seen) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING";
        on_pool!(self.0, |pool| {
            let mut tx = pool.begin().await?;
            for id in ids {
                sqlx::query(sql)
                    .bind(id)
                    .bind(now_ms)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
        });
        Ok(())
    }

    async fn meters(&self, id: Option<&str>) -> Result<Vec<MeterInfo>> {
        let sql = match id {
            Some(_) => format!("SELECT {METER_COLS} FROM mdms_meter WHERE id = $1"),
            None => format!("SELECT {METER_COLS} FROM mdms_meter ORDER BY id"),
        };
        on_pool!(self.0, |pool| {
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql.as_str()));
            if let Some(id) = id {
                q = q.bind(id);
            }
            let rows = q.fetch_all(pool).await?;
            map_rows!(rows, meter_row)
        })
    }

    async fn meters_in_group(&self, kind: GroupKind, group: &str) -> Result<Vec<String>> {
        let sql = format!(
            "SELECT id FROM mdms_meter WHERE {} = $1 ORDER BY id",
            kind.column()
        );
        on_pool!(self.0, |pool| {
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql.as_str()))
                .bind(group)
                .fetch_all(pool)
                .await?;
            rows.iter()
                .map(|r| r.try_get::<String, _>(0).map_err(StoreError::from))
                .collect()
        })
    }

    async fn raise_exceptions(&self, found: &[NewException], now_ms: i64) -> Result<u64> {
        let sql = "INSERT INTO vee_exception (meter, register, ts, rule, reason, raised_at)
            VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (meter, register, ts, rule) DO NOTHING";
        let mut added = 0;
        on_pool!(self.0, |pool| {
            let mut tx = pool.begin().await?;
            for f in found {
                added += sqlx::query(sql)
                    .bind(&f.meter)
                    .bind(register_key(f.register))
                    .bind(f.ts_ms)
                    .bind(&f.rule)
                    .bind(&f.reason)
                    .bind(now_ms)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
            }
            tx.commit().await?;
        });
        Ok(added)
    }

    async fn exceptions(
        &self,
        meter: Option<&str>,
        include_resolved: bool,
        id: Option<i64>,
    ) -> Result<Vec<VeeException>> {
        let mut sql = format!("SELECT {EXCEPTION_COLS} FROM vee_exception WHERE 1 = 1");
        let mut n = 0;
        if meter.is_some() {
            n += 1;
            sql.push_str(&format!(" AND meter = ${n}"));
        }
        if id.is_some() {
            n += 1;
            sql.push_str(&format!(" AND id = ${n}"));
        }
        if !include_resolved {
            sql.push_str(" AND status = 0");
        }
        sql.push_str(" ORDER BY id");
        on_pool!(self.0, |pool| {
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql.as_str()));
            if let Some(m) = meter {
                q = q.bind(m);
            }
            if let Some(id) = id {
                q = q.bind(id);
            }
            let rows = q.fetch_all(pool).await?;
            map_rows!(rows, exception_row)
        })
    }

    async fn open_exception_times(
        &self,
        meter: &str,
        register: Obis,
        after_ms: i64,
        until_ms: i64,
    ) -> Result<Vec<i64>> {
        let sql = "SELECT DISTINCT ts FROM vee_exception
            WHERE meter = $1 AND register = $2 AND ts > $3 AND ts <= $4 AND status = 0 ORDER BY ts";
        on_pool!(self.0, |pool| {
            let rows = sqlx::query(sql)
                .bind(meter)
                .bind(register_key(register))
                .bind(after_ms)
                .bind(until_ms)
                .fetch_all(pool)
                .await?;
            rows.iter()
                .map(|r| r.try_get::<i64, _>(0).map_err(StoreError::from))
                .collect()
        })
    }

    async fn resolve_exception(&self, id: i64, r: Resolution) -> Result<VeeException> {
        check_text("resolution", &r.text)?;
        check_text("resolver", &r.by)?;
        let sql = "UPDATE vee_exception SET status = 1, resolution = $1, resolved_by = $2,
            resolved_at = $3 WHERE id = $4 AND status = 0";
        let changed = on_pool!(self.0, |pool| {
            sqlx::query(sql)
                .bind(&r.text)
                .bind(&r.by)
                .bind(r.at_ms)
                .bind(id)
                .execute(pool)
                .await?
                .rows_affected()
        });
        let found = self.exceptions(None, true, Some(id)).await?;
        let exception = found
            .into_iter()
            .next()
            .ok_or_else(|| StoreError::NotFound(format!("vee exception {id}")))?;
        if changed == 0 {
            return Err(StoreError::Conflict(format!(
                "vee exception {id} is already resolved"
            )));
        }
        Ok(exception)
    }

    async fn propose_edit(&self, e: &NewEdit, now_ms: i64) -> Result<Edit> {
        check_text("meter id", &e.meter)?;
        check_text("edit reason", &e.reason)?;
        check_text("proposer", &e.proposed_by)?;
        let sql = format!(
            "INSERT INTO meter_edit (meter, register, ts, mantissa, exponent, unit, reason, proposed_by, proposed_at)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING {EDIT_COLS}"
        );
        on_pool!(self.0, |pool| {
            let row = sqlx::query(sqlx::AssertSqlSafe(sql.as_str()))
                .bind(&e.meter)
                .bind(register_key(e.register))
                .bind(e.ts_ms)
                .bind(e.value.mantissa)
                .bind(i16::from(e.value.scale))
                .bind(i16::from(e.unit as u8))
                .bind(&e.reason)
                .bind(&e.proposed_by)
                .bind(now_ms)
                .fetch_one(pool)
                .await?;
            edit_row(&row)
        })
    }

    async fn edits(&self, include_closed: bool, id: Option<i64>) -> Result<Vec<Edit>> {
        let mut sql = format!("SELECT {EDIT_COLS} FROM meter_edit WHERE 1 = 1");
        if id.is_some() {
            sql.push_str(" AND id = $1");
        }
        if !include_closed {
            sql.push_str(" AND status = 0");
        }
        sql.push_str(" ORDER BY id");
        on_pool!(self.0, |pool| {
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql.as_str()));
            if let Some(id) = id {
                q = q.bind(id);
            }
            let rows = q.fetch_all(pool).await?;
            map_rows!(rows, edit_row)
        })
    }

    async fn edit(&self, id: i64) -> Result<Edit> {
        self.edits(true, Some(id))
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| StoreError::NotFound(format!("edit {id}")))
    }

    async fn close_edit(
        &self,
        id: i64,
        status: EditStatus,
        review: Resolution,
        version: Option<u32>,
    ) -> Result<Edit> {
        check_text("reviewer", &review.by)?;
        let sql = "UPDATE meter_edit SET status = $1, reviewed_by = $2, reviewed_at = $3,
            review_note = $4, version = $5 WHERE id = $6 AND status = 0";
        let version = version.map(|v| i32::try_from(v).unwrap_or(i32::MAX));
        let changed = on_pool!(self.0, |pool| {
            sqlx::query(sql)
                .bind(status.code())
                .bind(&review.by)
                .bind(review.at_ms)
                .bind(&review.text)
                .bind(version)
                .bind(id)
                .execute(pool)
                .await?
                .rows_affected()
        });
        let edit = self.edit(id).await?;
        if changed == 0 {
            return Err(StoreError::Conflict(format!(
                "edit {id} is already {}",
                edit.status.name()
            )));
        }
        Ok(edit)
    }
}

/// Implements [`Catalog`] for a store through its [`Sql`] view.
macro_rules! catalog_impl {
    ($ty:ty, |$s:ident| $sql:expr) => {
        impl Catalog for $ty {
            async fn upsert_meters(&self, meters: &[MeterInfo]) -> Result<u64> {
                let $s = self;
                $sql.upsert_meters(meters, ami_domain::time::now_ms()).await
            }
            async fn touch_meters(&self, ids: &[String], now_ms: i64) -> Result<()> {
                let $s = self;
                $sql.touch_meters(ids, now_ms).await
            }
            async fn meters(&self) -> Result<Vec<MeterInfo>> {
                let $s = self;
                $sql.meters(None).await
            }
            async fn meter(&self, id: &str) -> Result<Option<MeterInfo>> {
                let $s = self;
                Ok($sql.meters(Some(id)).await?.into_iter().next())
            }
            async fn meters_in_group(&self, kind: GroupKind, group: &str) -> Result<Vec<String>> {
                let $s = self;
                $sql.meters_in_group(kind, group).await
            }
            async fn raise_exceptions(&self, found: &[NewException], now_ms: i64) -> Result<u64> {
                let $s = self;
                $sql.raise_exceptions(found, now_ms).await
            }
            async fn exceptions(
                &self,
                meter: Option<&str>,
                include_resolved: bool,
            ) -> Result<Vec<VeeException>> {
                let $s = self;
                $sql.exceptions(meter, include_resolved, None).await
            }
            async fn open_exception_times(
                &self,
                meter: &str,
                register: Obis,
                after_ms: i64,
                until_ms: i64,
            ) -> Result<Vec<i64>> {
                let $s = self;
                $sql.open_exception_times(meter, register, after_ms, until_ms)
                    .await
            }
            async fn resolve_exception(&self, id: i64, r: Resolution) -> Result<VeeException> {
                let $s = self;
                $sql.resolve_exception(id, r).await
            }
            async fn propose_edit(&self, edit: &NewEdit, now_ms: i64) -> Result<Edit> {
                let $s = self;
                $sql.propose_edit(edit, now_ms).await
            }
            async fn edit(&self, id: i64) -> Result<Edit> {
                let $s = self;
                $sql.edit(id).await
            }
            async fn close_edit(
                &self,
                id: i64,
                status: EditStatus,
                review: Resolution,
                version: Option<u32>,
            ) -> Result<Edit> {
                let $s = self;
                $sql.close_edit(id, status, review, version).await
            }
            async fn edits(&self, include_closed: bool) -> Result<Vec<Edit>> {
                let $s = self;
                $sql.edits(include_closed, None).await
            }
        }
    };
}

catalog_impl!(PgStore, |s| Sql(Pools::Pg(s.pool())));
catalog_impl!(SqliteStore, |s| Sql(Pools::Lite(s.writer())));
catalog_impl!(AnyStore, |s| match s {
    AnyStore::Postgres(p) => Sql(Pools::Pg(p.pool())),
    AnyStore::Sqlite(l) => Sql(Pools::Lite(l.writer())),
});
