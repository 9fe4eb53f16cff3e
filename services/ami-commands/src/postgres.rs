//! The PostgreSQL store, for production. Schema: `migrations/postgres/`. A command change and
//! its audit entry are one transaction; the commands due are found through a partial index
//! on `next_at_ms` over the states that are not final.

use std::sync::Arc;

use sqlx::postgres::{PgConnection, PgPool, PgPoolOptions, PgRow};
use sqlx::{Connection, Row, Transaction};

use crate::error::StoreError;
use crate::model::{
    AuditEntry, BulkRequest, BulkState, Campaign, CampaignMeter, CommandRecord, CommandState,
    MeterPhase, Target,
};
use crate::store::CommandStore;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");

const COMMAND_COLUMNS: &str = "id, meter, adapter, segment, kind, state, attempts, requested_by, reason, created_ms, deadline_ms, updated_ms, next_at_ms, detail, result, parent, bulk, campaign";

/// The advisory lock whose holder drives the commands (`ami` + 'cmd').
const DRIVER_LEASE: i64 = 0x616d_6963_6d64;

/// The PostgreSQL store. Clones share the pool and the driver lease.
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
    /// The connection holding the driver lease (a session advisory lock, released when the
    /// connection closes: the process stops or loses the database).
    lease: Arc<tokio::sync::Mutex<Option<PgConnection>>>,
}

fn json<T: serde::Serialize>(v: &T) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn unjson<T: serde::de::DeserializeOwned>(what: &str, text: &str) -> Result<T, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(format!("{what}: {e}")))
}

fn int(what: &str, v: u32) -> Result<i32, StoreError> {
    i32::try_from(v).map_err(|_| StoreError::Corrupt(format!("{what} {v} out of range")))
}

fn uint(what: &str, v: i32) -> Result<u32, StoreError> {
    u32::try_from(v).map_err(|_| StoreError::Corrupt(format!("{what} {v} out of range")))
}

fn state(text: &str) -> Result<CommandState, StoreError> {
    CommandState::from_name(text).ok_or_else(|| StoreError::Corrupt(format!("state {text}")))
}

fn command_row(r: &PgRow) -> Result<CommandRecord, StoreError> {
    let kind: String = r.try_get("kind")?;
    let result: Option<String> = r.try_get("result")?;
    let st: String = r.try_get("state")?;
    Ok(CommandRecord {
        id: r.try_get("id")?,
        target: Target {
            meter: r.try_get("meter")?,
            adapter: r.try_get("adapter")?,
            segment: r.try_get("segment")?,
        },
        kind: unjson("kind", &kind)?,
        state: state(&st)?,
        attempts: uint("attempts", r.try_get("attempts")?)?,
        requested_by: r.try_get("requested_by")?,
        reason: r.try_get("reason")?,
        created_ms: r.try_get("created_ms")?,
        deadline_ms: r.try_get("deadline_ms")?,
        updated_ms: r.try_get("updated_ms")?,
        next_at_ms: r.try_get("next_at_ms")?,
        detail: r.try_get("detail")?,
        result: result.map(|t| unjson("result", &t)).transpose()?,
        parent: r.try_get("parent")?,
        bulk: r.try_get("bulk")?,
        campaign: r.try_get("campaign")?,
    })
}

async fn append_audit(
    tx: &mut Transaction<'_, sqlx::Postgres>,
    a: &AuditEntry,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO command_audit (command, at_ms, actor, from_state, to_state, reason)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&a.command)
    .bind(a.at_ms)
    .bind(&a.actor)
    .bind(a.from.map(CommandState::name))
    .bind(a.to.name())
    .bind(&a.reason)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

impl PgStore {
    /// Connects with a pool of up to `max_connections` to `url`.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self, StoreError> {
        let pool = PgPoolOptions::new()
            .max_connections(max_connections.max(1))
            .connect(url)
            .await?;
        Ok(PgStore {
            pool,
            lease: Arc::new(tokio::sync::Mutex::new(None)),
        })
    }

    /// Brings the schema up to date.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        MIGRATOR
            .run(&self.pool)
            .await
            .map_err(|e| StoreError::Migrate(e.to_string()))
    }

    /// Gives the driver lease up and closes the pool.
    pub async fn close(&self) {
        if let Some(conn) = self.lease.lock().await.take() {
            let _ = conn.close().await;
        }
        self.pool.close().await;
    }

    async fn commands_where(
        &self,
        clause: &str,
        arg: Option<&str>,
    ) -> Result<Vec<CommandRecord>, StoreError> {
        let sql = format!("SELECT {COMMAND_COLUMNS} FROM command WHERE {clause} ORDER BY seq");
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        if let Some(a) = arg {
            q = q.bind(a.to_owned());
        }
        let rows = q.fetch_all(&self.pool).await?;
        rows.iter().map(command_row).collect()
    }
}

impl CommandStore for PgStore {
    /// The lease is a session advisory lock on a connection taken out of the pool; checking it
    /// is a round trip on that connection, and a connection that fails gives it up.
    async fn lead(&self) -> Result<bool, StoreError> {
        let mut lease = self.lease.lock().await;
        if let Some(conn) = lease.as_mut() {
            if sqlx::query("SELECT 1").execute(&mut *conn).await.is_ok() {
                return Ok(true);
            }
            *lease = None;
        }
        let mut conn = self.pool.acquire().await?;
        let got: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
            .bind(DRIVER_LEASE)
            .fetch_one(&mut *conn)
            .await?;
        if got {
            // Out of the pool, so the lock goes with this connection and nowhere else.
            *lease = Some(conn.detach());
        }
        Ok(got)
    }

    async fn insert_command(
        &self,
        rec: &CommandRecord,
        audit: &AuditEntry,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query(
            "INSERT INTO command (id, meter, adapter, segment, kind, state, attempts, requested_by,
                reason, created_ms, deadline_ms, updated_ms, next_at_ms, detail, result, parent, bulk,
                campaign)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(&rec.id)
        .bind(&rec.target.meter)
        .bind(&rec.target.adapter)
        .bind(&rec.target.segment)
        .bind(json(&rec.kind)?)
        .bind(rec.state.name())
        .bind(int("attempts", rec.attempts)?)
        .bind(&rec.requested_by)
        .bind(&rec.reason)
        .bind(rec.created_ms)
        .bind(rec.deadline_ms)
        .bind(rec.updated_ms)
        .bind(rec.next_at_ms)
        .bind(&rec.detail)
        .bind(rec.result.as_ref().map(json).transpose()?)
        .bind(&rec.parent)
        .bind(&rec.bulk)
        .bind(&rec.campaign)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::Conflict(format!("command {} exists", rec.id)));
        }
        append_audit(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn update_command(
        &self,
        rec: &CommandRecord,
        audit: Option<&AuditEntry>,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query(
            "UPDATE command SET state = $2, attempts = $3, updated_ms = $4, next_at_ms = $5,
                detail = $6, result = $7, deadline_ms = $8
             WHERE id = $1",
        )
        .bind(&rec.id)
        .bind(rec.state.name())
        .bind(int("attempts", rec.attempts)?)
        .bind(rec.updated_ms)
        .bind(rec.next_at_ms)
        .bind(&rec.detail)
        .bind(rec.result.as_ref().map(json).transpose()?)
        .bind(rec.deadline_ms)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("command {}", rec.id)));
        }
        if let Some(a) = audit {
            append_audit(&mut tx, a).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn command(&self, id: &str) -> Result<Option<CommandRecord>, StoreError> {
        Ok(self
            .commands_where("id = $1", Some(id))
            .await?
            .into_iter()
            .next())
    }

    async fn active_commands(&self) -> Result<Vec<CommandRecord>, StoreError> {
        self.commands_where("state IN ('queued', 'sent', 'delivered')", None)
            .await
    }

    async fn due_commands(
        &self,
        now_ms: i64,
        limit: usize,
    ) -> Result<Vec<CommandRecord>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COMMAND_COLUMNS} FROM command
             WHERE state IN ('queued', 'sent', 'delivered') AND next_at_ms <= $1
             ORDER BY next_at_ms, seq LIMIT $2"
        )))
        .bind(now_ms)
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(command_row).collect()
    }

    async fn bulk_commands(&self, bulk: &str) -> Result<Vec<CommandRecord>, StoreError> {
        self.commands_where("bulk = $1", Some(bulk)).await
    }

    async fn audit(&self, id: &str) -> Result<Vec<AuditEntry>, StoreError> {
        let rows = sqlx::query(
            "SELECT command, at_ms, actor, from_state, to_state, reason FROM command_audit
             WHERE command = $1 ORDER BY id",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let from: Option<String> = r.try_get("from_state")?;
                let to: String = r.try_get("to_state")?;
                Ok(AuditEntry {
                    command: r.try_get("command")?,
                    at_ms: r.try_get("at_ms")?,
                    actor: r.try_get("actor")?,
                    from: from.as_deref().map(state).transpose()?,
                    to: state(&to)?,
                    reason: r.try_get("reason")?,
                })
            })
            .collect()
    }

    async fn put_bulk(&self, b: &BulkRequest) -> Result<(), StoreError> {
        let (st, by, why) = match &b.state {
            BulkState::PendingApproval => ("pending-approval", None, None),
            BulkState::Approved { by } => ("approved", Some(by.as_str()), None),
            BulkState::Rejected { by, reason } => {
                ("rejected", Some(by.as_str()), Some(reason.as_str()))
            }
        };
        sqlx::query(
            "INSERT INTO bulk_request (id, kind, targets, requested_by, reason, created_ms,
                deadline_after_ms, state, decided_by, decision_reason)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
             ON CONFLICT (id) DO UPDATE SET state = EXCLUDED.state,
                decided_by = EXCLUDED.decided_by, decision_reason = EXCLUDED.decision_reason",
        )
        .bind(&b.id)
        .bind(json(&b.kind)?)
        .bind(json(&b.targets)?)
        .bind(&b.requested_by)
        .bind(&b.reason)
        .bind(b.created_ms)
        .bind(b.deadline_after_ms)
        .bind(st)
        .bind(by)
        .bind(why)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn bulk(&self, id: &str) -> Result<Option<BulkRequest>, StoreError> {
        let Some(r) = sqlx::query(
            "SELECT id, kind, targets, requested_by, reason, created_ms, deadline_after_ms, state,
                decided_by, decision_reason FROM bulk_request WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?
        else {
            return Ok(None);
        };
        let kind: String = r.try_get("kind")?;
        let targets: String = r.try_get("targets")?;
        let st: String = r.try_get("state")?;
        let by: Option<String> = r.try_get("decided_by")?;
        let why: Option<String> = r.try_get("decision_reason")?;
        let state = match (st.as_str(), by) {
            ("pending-approval", _) => BulkState::PendingApproval,
            ("approved", Some(by)) => BulkState::Approved { by },
            ("rejected", Some(by)) => BulkState::Rejected {
                by,
                reason: why.unwrap_or_default(),
            },
            (other, _) => return Err(StoreError::Corrupt(format!("bulk state {other}"))),
        };
        Ok(Some(BulkRequest {
            id: r.try_get("id")?,
            kind: unjson("kind", &kind)?,
            targets: unjson("targets", &targets)?,
            requested_by: r.try_get("requested_by")?,
            reason: r.try_get("reason")?,
            created_ms: r.try_get("created_ms")?,
            deadline_after_ms: r.try_get("deadline_after_ms")?,
            state,
        }))
    }

    async fn insert_campaign(
        &self,
        c: &Campaign,
        meters: &[CampaignMeter],
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO campaign (id, version, image, block_size, requested_by, created_ms,
                command_deadline_ms, max_failures) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&c.id)
        .bind(&c.version)
        .bind(&c.image)
        .bind(int("block_size", c.block_size)?)
        .bind(&c.requested_by)
        .bind(c.created_ms)
        .bind(c.command_deadline_ms)
        .bind(int("max_failures", c.max_failures)?)
        .execute(&mut *tx)
        .await?;
        for (i, m) in meters.iter().enumerate() {
            sqlx::query(
                "INSERT INTO campaign_meter (campaign, ord, meter, adapter, segment, phase,
                    next_block, in_flight, failures, version, detail)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
            )
            .bind(&m.campaign)
            .bind(i32::try_from(i).unwrap_or(i32::MAX))
            .bind(&m.target.meter)
            .bind(&m.target.adapter)
            .bind(&m.target.segment)
            .bind(m.phase.name())
            .bind(int("next_block", m.next_block)?)
            .bind(&m.in_flight)
            .bind(int("failures", m.failures)?)
            .bind(&m.version)
            .bind(&m.detail)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn campaign(&self, id: &str) -> Result<Option<Campaign>, StoreError> {
        let Some(r) = sqlx::query(
            "SELECT id, version, image, block_size, requested_by, created_ms, command_deadline_ms,
                max_failures FROM campaign WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?
        else {
            return Ok(None);
        };
        Ok(Some(Campaign {
            id: r.try_get("id")?,
            version: r.try_get("version")?,
            image: r.try_get("image")?,
            block_size: uint("block_size", r.try_get("block_size")?)?,
            requested_by: r.try_get("requested_by")?,
            created_ms: r.try_get("created_ms")?,
            command_deadline_ms: r.try_get("command_deadline_ms")?,
            max_failures: uint("max_failures", r.try_get("max_failures")?)?,
        }))
    }

    async fn campaign_meters(&self, id: &str) -> Result<Vec<CampaignMeter>, StoreError> {
        let rows = sqlx::query(
            "SELECT campaign, meter, adapter, segment, phase, next_block, in_flight, failures,
                version, detail FROM campaign_meter WHERE campaign = $1 ORDER BY ord",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let phase: String = r.try_get("phase")?;
                Ok(CampaignMeter {
                    campaign: r.try_get("campaign")?,
                    target: Target {
                        meter: r.try_get("meter")?,
                        adapter: r.try_get("adapter")?,
                        segment: r.try_get("segment")?,
                    },
                    phase: MeterPhase::from_name(&phase)
                        .ok_or_else(|| StoreError::Corrupt(format!("phase {phase}")))?,
                    next_block: uint("next_block", r.try_get("next_block")?)?,
                    in_flight: r.try_get("in_flight")?,
                    failures: uint("failures", r.try_get("failures")?)?,
                    version: r.try_get("version")?,
                    detail: r.try_get("detail")?,
                })
            })
            .collect()
    }

    async fn update_campaign_meter(&self, m: &CampaignMeter) -> Result<(), StoreError> {
        let done = sqlx::query(
            "UPDATE campaign_meter SET phase = $3, next_block = $4, in_flight = $5, failures = $6,
                version = $7, detail = $8 WHERE campaign = $1 AND meter = $2",
        )
        .bind(&m.campaign)
        .bind(&m.target.meter)
        .bind(m.phase.name())
        .bind(int("next_block", m.next_block)?)
        .bind(&m.in_flight)
        .bind(int("failures", m.failures)?)
        .bind(&m.version)
        .bind(&m.detail)
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!(
                "meter {} in campaign {}",
                m.target.meter, m.campaign
            )));
        }
        Ok(())
    }
}
