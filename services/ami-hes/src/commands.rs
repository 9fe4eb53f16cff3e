//! Commands in the HES: the `ami.hes.v1.CommandService` over the `ami-commands` engine.
//!
//! The HES owns one [`Engine`] when a bus is configured: it signs commands with the HES's
//! Ed25519 key ([`SigningKeySource`], `AMI_HES_SIGNING_KEY` / `AMI_HES_SIGNING_KEY_FILE`), sends
//! them on `<root>.cmd.<adapter>.<meter>` and follows the adapters' acks. Each target's adapter
//! and network segment come from the registry ([`target_of`]): the route's adapter, and as
//! segment the concentrator, else `feeder/transformer`, else the feeder, else the adapter. A
//! meter the registry does not know is `NOT_FOUND`; one without an adapter, or retired, is
//! `FAILED_PRECONDITION`.
//!
//! Roles: the HES authorisation layer checks the HES role of each rpc first
//! ([`crate::auth::required_access`]); the engine then checks its own role, mapped here, in
//! one place ([`engine_roles`]):
//!
//! | HES role | engine role |
//! | --- | --- |
//! | `admin` | `Supervisor` (also operator and reader): approves or rejects bulk disconnects |
//! | `operator` | `Operator`: submits commands, asks for bulk disconnects, starts campaigns |
//! | `reader`, `key-admin` | `Reader`: reads commands, audit, bulk requests, campaigns, watches |
//!
//! Store: on a PostgreSQL HES database the engine's [`PgStore`], in the schema `ami_commands`
//! of the same database (its own migrations, apart from the registry's); on SQLite the
//! [`MemoryStore`]: commands on the embedded default do not survive a restart.
//!
//! Outages: [`CommandPinger`] is the outage detector's [`Pinger`] when commands are on: a meter
//! answers a ping when an on-demand read through the engine is confirmed in time.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use ami_bus::Bus;
use ami_bus::command::{AckResult, CommandKind};
use ami_commands::{
    AuditEntry, BulkRequest, BulkState, CampaignReport, CampaignSpec, CampaignState, CommandRecord,
    CommandState, CommandUpdate, Engine, EngineConfig, EngineError, MemoryStore, MeterPhase,
    PgStore, Submit, Target,
};
use ed25519_dalek::{SigningKey, VerifyingKey};
use tokio::sync::watch;
use tokio_stream::wrappers::BroadcastStream;
use tonic::{Request, Response, Status};
use zeroize::Zeroizing;

use crate::auth::{Principal, Role};
use crate::error::{HesError, Result};
use crate::model::{Meter, MeterStatus};
use crate::outage::Pinger;
use crate::proto::v1;
use crate::server::Api;
use crate::store::RegistryStore;

/// The PostgreSQL schema of the command store.
pub const PG_SCHEMA: &str = "ami_commands";

/// The default firmware block size of a campaign.
pub const DEFAULT_BLOCK_SIZE: u32 = 256;

/// The default number of failed commands a campaign meter may have.
pub const DEFAULT_MAX_FAILURES: u32 = 5;

/// Where the HES's command signing key (an Ed25519 seed, 64 hex digits) comes from.
#[derive(Clone, PartialEq, Eq)]
pub enum SigningKeySource {
    /// The seed itself (as `AMI_HES_SIGNING_KEY` holds it).
    Inline(Zeroizing<String>),
    /// A file holding it (`AMI_HES_SIGNING_KEY_FILE`, e.g. a mounted secret).
    File(std::path::PathBuf),
}

impl fmt::Debug for SigningKeySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SigningKeySource::Inline(_) => f.write_str("Inline(<redacted>)"),
            SigningKeySource::File(p) => write!(f, "File({})", p.display()),
        }
    }
}

impl SigningKeySource {
    /// `AMI_HES_SIGNING_KEY`, else `AMI_HES_SIGNING_KEY_FILE`, else none.
    pub fn from_env() -> Option<Self> {
        if let Ok(v) = std::env::var("AMI_HES_SIGNING_KEY") {
            return Some(SigningKeySource::Inline(Zeroizing::new(v)));
        }
        std::env::var("AMI_HES_SIGNING_KEY_FILE")
            .ok()
            .map(|p| SigningKeySource::File(p.into()))
    }

    /// The key.
    pub fn load(&self) -> Result<SigningKey> {
        let text = match self {
            SigningKeySource::Inline(t) => t.clone(),
            SigningKeySource::File(p) => {
                Zeroizing::new(std::fs::read_to_string(p).map_err(|e| {
                    HesError::Config(format!("signing key file {}: {e}", p.display()))
                })?)
            }
        };
        let seed = Zeroizing::new(hex::decode(text.trim()).map_err(|_| {
            HesError::Config(
                "signing key: not hex (expected an Ed25519 seed, 64 hex digits)".into(),
            )
        })?);
        let seed: [u8; 32] = seed.as_slice().try_into().map_err(|_| {
            HesError::Config(format!(
                "signing key: {} bytes, an Ed25519 seed has 32",
                seed.len()
            ))
        })?;
        let seed = Zeroizing::new(seed);
        Ok(SigningKey::from_bytes(&seed))
    }
}

/// The engine roles of HES roles: the one mapping (see the module docs).
pub fn engine_roles(roles: &[Role]) -> Vec<ami_commands::Role> {
    let mut out: Vec<ami_commands::Role> = roles
        .iter()
        .map(|r| match r {
            Role::Admin => ami_commands::Role::Supervisor,
            Role::Operator => ami_commands::Role::Operator,
            Role::Reader | Role::KeyAdmin => ami_commands::Role::Reader,
        })
        .collect();
    out.dedup();
    out
}

/// The engine principal of a HES principal.
pub fn engine_principal(p: &Principal) -> ami_commands::Principal {
    ami_commands::Principal {
        name: p.name.clone(),
        roles: engine_roles(&p.roles),
    }
}

/// The target of a registered meter: its adapter, and its segment (see the module docs).
pub fn target_of(m: &Meter) -> Result<Target> {
    if m.adapter.is_empty() {
        return Err(HesError::CommandRefused(format!(
            "meter {} has no adapter in the registry",
            m.serial
        )));
    }
    if m.status == MeterStatus::Retired {
        return Err(HesError::CommandRefused(format!(
            "meter {} is retired",
            m.serial
        )));
    }
    let segment = if !m.concentrator.is_empty() {
        m.concentrator.clone()
    } else if !m.transformer.is_empty() {
        format!("{}/{}", m.feeder, m.transformer)
    } else if !m.feeder.is_empty() {
        m.feeder.clone()
    } else {
        m.adapter.clone()
    };
    Ok(Target::new(&m.serial, &m.adapter, &segment))
}

/// The engine over its store.
#[derive(Clone, Debug)]
pub enum Commands {
    /// In memory (embedded SQLite HES).
    Memory(Engine<MemoryStore>),
    /// On PostgreSQL.
    Pg(Engine<PgStore>),
}

macro_rules! engine {
    ($c:expr, $e:ident => $body:expr) => {
        match $c {
            Commands::Memory($e) => $body,
            Commands::Pg($e) => $body,
        }
    };
}

/// `url` with the command schema first on the search path.
fn with_schema(url: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}options=-c%20search_path%3D{PG_SCHEMA}")
}

impl Commands {
    /// The engine for the HES database at `database_url` (see the module docs).
    pub async fn open(
        database_url: &str,
        max_connections: u32,
        bus: Bus,
        key: SigningKey,
        config: EngineConfig,
    ) -> Result<Self> {
        if database_url.starts_with("postgres://") || database_url.starts_with("postgresql://") {
            {
                use sqlx::{Connection, Executor};
                let mut conn = sqlx::PgConnection::connect(database_url).await?;
                conn.execute(sqlx::AssertSqlSafe(format!(
                    "CREATE SCHEMA IF NOT EXISTS {PG_SCHEMA}"
                )))
                .await?;
                conn.close().await?;
            }
            let store = PgStore::connect(&with_schema(database_url), max_connections)
                .await
                .map_err(EngineError::from)?;
            store.migrate().await.map_err(EngineError::from)?;
            Ok(Commands::Pg(Engine::new(store, bus, key, config)))
        } else {
            tracing::warn!(
                "commands are kept in memory (the HES database is not PostgreSQL): they do not survive a restart"
            );
            Ok(Commands::Memory(Engine::new(
                MemoryStore::new(),
                bus,
                key,
                config,
            )))
        }
    }

    /// The key adapters trust.
    pub fn verifying_key(&self) -> VerifyingKey {
        engine!(self, e => e.verifying_key())
    }

    /// Drives the commands until `stop` turns true, then lets the store go.
    pub async fn run(&self, stop: watch::Receiver<bool>) -> Result<()> {
        let r = engine!(self, e => e.run(stop).await);
        if let Commands::Pg(e) = self {
            e.store().close().await;
        }
        Ok(r?)
    }

    async fn submit(&self, who: &ami_commands::Principal, s: Submit) -> Result<CommandRecord> {
        Ok(engine!(self, e => e.submit(who, s).await)?)
    }

    async fn get(&self, who: &ami_commands::Principal, id: &str) -> Result<CommandRecord> {
        Ok(engine!(self, e => e.get(who, id).await)?)
    }

    async fn audit(&self, who: &ami_commands::Principal, id: &str) -> Result<Vec<AuditEntry>> {
        Ok(engine!(self, e => e.audit(who, id).await)?)
    }

    fn watch(
        &self,
        who: &ami_commands::Principal,
    ) -> Result<tokio::sync::broadcast::Receiver<CommandUpdate>> {
        Ok(engine!(self, e => e.watch(who))?)
    }

    async fn request_bulk_disconnect(
        &self,
        who: &ami_commands::Principal,
        targets: Vec<Target>,
        reason: &str,
        deadline: Duration,
    ) -> Result<BulkRequest> {
        Ok(engine!(self, e => e.request_bulk_disconnect(who, targets, reason, deadline).await)?)
    }

    async fn approve_bulk(&self, who: &ami_commands::Principal, id: &str) -> Result<()> {
        engine!(self, e => e.approve_bulk(who, id).await)?;
        Ok(())
    }

    async fn reject_bulk(
        &self,
        who: &ami_commands::Principal,
        id: &str,
        reason: &str,
    ) -> Result<()> {
        engine!(self, e => e.reject_bulk(who, id, reason).await)?;
        Ok(())
    }

    async fn bulk(
        &self,
        who: &ami_commands::Principal,
        id: &str,
    ) -> Result<(BulkRequest, Vec<CommandRecord>)> {
        Ok(engine!(self, e => e.bulk(who, id).await)?)
    }

    async fn start_campaign(
        &self,
        who: &ami_commands::Principal,
        spec: CampaignSpec,
    ) -> Result<CampaignReport> {
        Ok(engine!(self, e => e.start_campaign(who, spec).await)?)
    }

    async fn campaign(&self, who: &ami_commands::Principal, id: &str) -> Result<CampaignReport> {
        Ok(engine!(self, e => e.campaign(who, id).await)?)
    }
}

// ---------------------------------------------------------------------------------------------
// Pings for the outage detector

/// The name the outage detector's pings go by in the command audit trail.
pub const PING_PRINCIPAL: &str = "hes-outage";

/// The default time a meter has to answer a ping.
pub const DEFAULT_PING_TIMEOUT: Duration = Duration::from_secs(30);

/// Pings meters with on-demand reads ([`CommandKind::ReadNow`], the cheapest command a meter
/// answers) through the command engine: a meter answers when its read is confirmed within the
/// timeout, which is also the read's deadline; a failed or expired read, or none in time, is no
/// answer. A meter without a route (no adapter, retired) cannot answer. The reads of one ping
/// run at once, so a ping takes at most the timeout.
#[derive(Clone)]
pub struct CommandPinger {
    commands: Arc<Commands>,
    timeout: Duration,
    principal: ami_commands::Principal,
}

impl fmt::Debug for CommandPinger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CommandPinger")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl CommandPinger {
    /// A pinger over the engine, giving each meter `timeout` to answer.
    pub fn new(commands: Arc<Commands>, timeout: Duration) -> Self {
        CommandPinger {
            commands,
            timeout,
            principal: ami_commands::Principal::new(
                PING_PRINCIPAL,
                &[ami_commands::Role::Operator],
            ),
        }
    }

    /// The serials of `meters` whose on-demand read was confirmed within the timeout.
    pub async fn ping_meters(&self, meters: &[Meter]) -> HashSet<String> {
        let mut answered = HashSet::new();
        if meters.is_empty() {
            return answered;
        }
        let until = tokio::time::Instant::now() + self.timeout;
        // Watching before submitting, so that no answer is missed.
        let mut updates = match self.commands.watch(&self.principal) {
            Ok(u) => u,
            Err(e) => {
                tracing::warn!(error = %e, "cannot watch commands: no ping answered");
                return answered;
            }
        };
        // Command id -> meter serial, for those still waited for.
        let mut waiting: HashMap<String, String> = HashMap::new();
        for m in meters {
            let target = match target_of(m) {
                Ok(t) => t,
                Err(e) => {
                    tracing::debug!(meter = %m.serial, error = %e, "meter cannot be pinged");
                    continue;
                }
            };
            let submit = Submit {
                target,
                kind: CommandKind::ReadNow,
                reason: "outage confirmation ping".into(),
                deadline: Some(self.timeout),
            };
            match self.commands.submit(&self.principal, submit).await {
                Ok(rec) => {
                    waiting.insert(rec.id, m.serial.clone());
                }
                Err(e) => {
                    tracing::warn!(meter = %m.serial, error = %e, "ping not submitted")
                }
            }
        }
        use tokio::sync::broadcast::error::RecvError;
        while !waiting.is_empty() {
            match tokio::time::timeout_at(until, updates.recv()).await {
                Err(_) => break,
                Ok(Ok(u)) => {
                    if u.to.is_final()
                        && let Some(serial) = waiting.remove(&u.id)
                        && u.to == CommandState::Confirmed
                    {
                        answered.insert(serial);
                    }
                }
                Ok(Err(RecvError::Lagged(_))) => self.poll(&mut waiting, &mut answered).await,
                Ok(Err(RecvError::Closed)) => {
                    self.poll(&mut waiting, &mut answered).await;
                    break;
                }
            }
        }
        answered
    }

    /// Reads the commands still waited for from the store (the watch stream lost some).
    async fn poll(&self, waiting: &mut HashMap<String, String>, answered: &mut HashSet<String>) {
        let ids: Vec<String> = waiting.keys().cloned().collect();
        for id in ids {
            match self.commands.get(&self.principal, &id).await {
                Ok(rec) if rec.state.is_final() => {
                    if let Some(serial) = waiting.remove(&id)
                        && rec.state == CommandState::Confirmed
                    {
                        answered.insert(serial);
                    }
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(command = %id, error = %e, "cannot read a ping"),
            }
        }
    }
}

impl Pinger for CommandPinger {
    fn ping<'a>(
        &'a self,
        meters: &'a [Meter],
    ) -> Pin<Box<dyn Future<Output = HashSet<String>> + Send + 'a>> {
        Box::pin(self.ping_meters(meters))
    }
}

// ---------------------------------------------------------------------------------------------
// Wire conversions

fn state_to_wire(s: CommandState) -> v1::CommandState {
    match s {
        CommandState::Queued => v1::CommandState::Queued,
        CommandState::Sent => v1::CommandState::Sent,
        CommandState::Delivered => v1::CommandState::Delivered,
        CommandState::Confirmed => v1::CommandState::Confirmed,
        CommandState::Failed => v1::CommandState::Failed,
        CommandState::Expired => v1::CommandState::Expired,
    }
}

fn opt_state(s: Option<CommandState>) -> i32 {
    s.map_or(v1::CommandState::Unspecified, state_to_wire) as i32
}

fn bad(what: &str) -> HesError {
    HesError::InvalidArgument(what.to_owned())
}

/// The engine's command kind of a submitted wire kind (campaign kinds are refused).
pub fn kind_from_wire(k: Option<v1::CommandKind>) -> Result<CommandKind> {
    use v1::command_kind::Kind;
    let kind = k
        .and_then(|k| k.kind)
        .ok_or_else(|| bad("a command kind is required"))?;
    Ok(match kind {
        Kind::ReadNow(_) => CommandKind::ReadNow,
        Kind::Disconnect(_) => CommandKind::Disconnect,
        Kind::Reconnect(_) => CommandKind::Reconnect,
        Kind::SetClock(c) => CommandKind::SetClock { to_ms: c.to_ms },
        Kind::SetTou(t) => {
            let switches = t
                .switches
                .iter()
                .map(|s| {
                    let minute = u16::try_from(s.minute)
                        .ok()
                        .filter(|m| *m < 1440)
                        .ok_or_else(|| bad(&format!("tou minute {} not in 0..1439", s.minute)))?;
                    let tariff = u8::try_from(s.tariff)
                        .map_err(|_| bad(&format!("tou tariff {} not in 0..255", s.tariff)))?;
                    Ok((minute, tariff))
                })
                .collect::<Result<Vec<_>>>()?;
            let weekend = t
                .weekend
                .map(|w| u8::try_from(w).map_err(|_| bad(&format!("weekend tariff {w}"))))
                .transpose()?;
            CommandKind::SetTou { switches, weekend }
        }
        Kind::PricePush(p) => CommandKind::PricePush {
            tariff: u8::try_from(p.tariff).map_err(|_| bad(&format!("tariff {}", p.tariff)))?,
            mantissa: p.mantissa,
            scale: i8::try_from(p.scale).map_err(|_| bad(&format!("price scale {}", p.scale)))?,
            currency: p.currency,
            valid_from_ms: p.valid_from_ms,
        },
        Kind::LoadLimit(l) => CommandKind::LoadLimit { watts: l.watts },
        Kind::ClearAlarms(_) => CommandKind::ClearAlarms,
        Kind::FirmwareBlock(_) | Kind::FirmwareVerify(_) | Kind::FirmwareActivate(_) => {
            return Err(bad(
                "firmware commands are sent by campaigns: use StartCampaign",
            ));
        }
    })
}

fn kind_to_wire(k: &CommandKind) -> v1::CommandKind {
    use v1::command_kind::Kind;
    let kind = match k {
        CommandKind::ReadNow => Kind::ReadNow(v1::ReadNow {}),
        CommandKind::Disconnect => Kind::Disconnect(v1::Disconnect {}),
        CommandKind::Reconnect => Kind::Reconnect(v1::Reconnect {}),
        CommandKind::SetClock { to_ms } => Kind::SetClock(v1::SetClock { to_ms: *to_ms }),
        CommandKind::SetTou { switches, weekend } => Kind::SetTou(v1::SetTou {
            switches: switches
                .iter()
                .map(|(m, t)| v1::TouSwitch {
                    minute: u32::from(*m),
                    tariff: u32::from(*t),
                })
                .collect(),
            weekend: weekend.map(u32::from),
        }),
        CommandKind::PricePush {
            tariff,
            mantissa,
            scale,
            currency,
            valid_from_ms,
        } => Kind::PricePush(v1::PricePush {
            tariff: u32::from(*tariff),
            mantissa: *mantissa,
            scale: i32::from(*scale),
            currency: currency.clone(),
            valid_from_ms: *valid_from_ms,
        }),
        CommandKind::LoadLimit { watts } => Kind::LoadLimit(v1::LoadLimit { watts: *watts }),
        CommandKind::ClearAlarms => Kind::ClearAlarms(v1::ClearAlarms {}),
        CommandKind::FirmwareBlock {
            version,
            number,
            total,
            ..
        } => Kind::FirmwareBlock(v1::FirmwareBlock {
            version: version.clone(),
            number: *number,
            total: *total,
        }),
        CommandKind::FirmwareVerify { crc32 } => {
            Kind::FirmwareVerify(v1::FirmwareVerify { crc32: *crc32 })
        }
        CommandKind::FirmwareActivate => Kind::FirmwareActivate(v1::FirmwareActivate {}),
    };
    v1::CommandKind { kind: Some(kind) }
}

fn result_to_wire(r: &AckResult) -> v1::CommandResult {
    let mut w = v1::CommandResult::default();
    match r {
        AckResult::Done => w.r#type = "done".into(),
        AckResult::Read {
            frame,
            relay_closed,
        } => {
            w.r#type = "read".into();
            w.frame = frame.clone();
            w.relay_closed = *relay_closed;
        }
        AckResult::Relay { closed } => {
            w.r#type = "relay".into();
            w.relay_closed = Some(*closed);
        }
        AckResult::Firmware { next_block } => {
            w.r#type = "firmware".into();
            w.next_block = *next_block;
        }
        AckResult::Verified => w.r#type = "verified".into(),
        AckResult::Activated { version } => {
            w.r#type = "activated".into();
            w.version = version.clone();
        }
    }
    w
}

fn command_to_wire(r: CommandRecord) -> v1::Command {
    v1::Command {
        kind: Some(kind_to_wire(&r.kind)),
        kind_name: r.kind.name().into(),
        state: state_to_wire(r.state) as i32,
        result: r.result.as_ref().map(result_to_wire),
        id: r.id,
        serial: r.target.meter,
        adapter: r.target.adapter,
        segment: r.target.segment,
        attempts: r.attempts,
        requested_by: r.requested_by,
        reason: r.reason,
        created_at_ms: r.created_ms,
        deadline_ms: r.deadline_ms,
        updated_at_ms: r.updated_ms,
        detail: r.detail,
        parent: r.parent.unwrap_or_default(),
        bulk: r.bulk.unwrap_or_default(),
        campaign: r.campaign.unwrap_or_default(),
    }
}

fn bulk_to_wire(b: BulkRequest, commands: Vec<CommandRecord>) -> v1::BulkRequest {
    let (state, decided_by, decision_reason) = match b.state {
        BulkState::PendingApproval => {
            (v1::BulkState::PendingApproval, String::new(), String::new())
        }
        BulkState::Approved { by } => (v1::BulkState::Approved, by, String::new()),
        BulkState::Rejected { by, reason } => (v1::BulkState::Rejected, by, reason),
    };
    v1::BulkRequest {
        id: b.id,
        kind_name: b.kind.name().into(),
        serials: b.targets.into_iter().map(|t| t.meter).collect(),
        requested_by: b.requested_by,
        reason: b.reason,
        created_at_ms: b.created_ms,
        state: state as i32,
        decided_by,
        decision_reason,
        commands: commands.into_iter().map(command_to_wire).collect(),
    }
}

fn n32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

fn campaign_to_wire(r: CampaignReport) -> v1::Campaign {
    let done = n32(r.count(MeterPhase::Done));
    let failed = n32(r.count(MeterPhase::Failed));
    let c = r.campaign;
    v1::Campaign {
        blocks: c.blocks(),
        image_size: n32(c.image.len()),
        id: c.id,
        version: c.version,
        block_size: c.block_size,
        requested_by: c.requested_by,
        created_at_ms: c.created_ms,
        state: match r.state {
            CampaignState::Running => v1::CampaignState::Running,
            CampaignState::Completed => v1::CampaignState::Completed,
            CampaignState::CompletedWithFailures => v1::CampaignState::CompletedWithFailures,
        } as i32,
        done,
        failed,
        meters: r
            .meters
            .into_iter()
            .map(|m| v1::CampaignMeter {
                serial: m.target.meter,
                phase: match m.phase {
                    MeterPhase::Transfer => v1::MeterPhase::Transfer,
                    MeterPhase::Verify => v1::MeterPhase::Verify,
                    MeterPhase::Activate => v1::MeterPhase::Activate,
                    MeterPhase::Done => v1::MeterPhase::Done,
                    MeterPhase::Failed => v1::MeterPhase::Failed,
                } as i32,
                next_block: m.next_block,
                failures: m.failures,
                version: m.version.unwrap_or_default(),
                detail: m.detail,
            })
            .collect(),
    }
}

fn audit_to_wire(a: AuditEntry) -> v1::AuditEntry {
    v1::AuditEntry {
        command: a.command,
        at_ms: a.at_ms,
        actor: a.actor,
        from: opt_state(a.from),
        to: state_to_wire(a.to) as i32,
        reason: a.reason,
    }
}

fn deadline(seconds: u64) -> Option<Duration> {
    (seconds > 0).then(|| Duration::from_secs(seconds))
}

// ---------------------------------------------------------------------------------------------
// The service

type Reply<T> = std::result::Result<Response<T>, Status>;

impl Api {
    fn commands(&self) -> Result<&Commands> {
        self.hes.commands.as_deref().ok_or_else(|| {
            HesError::CommandRefused("commands are off: the HES runs without a bus".into())
        })
    }

    async fn target(&self, serial: &str) -> Result<Target> {
        let m = self
            .hes
            .store
            .meter(serial.trim())
            .await?
            .ok_or_else(|| HesError::NotFound(format!("meter {serial}")))?;
        target_of(&m)
    }

    async fn targets(&self, serials: &[String]) -> Result<Vec<Target>> {
        let mut out = Vec::with_capacity(serials.len());
        for s in serials {
            out.push(self.target(s).await?);
        }
        Ok(out)
    }
}

fn who<T>(req: &Request<T>) -> std::result::Result<ami_commands::Principal, Status> {
    req.extensions()
        .get::<Principal>()
        .map(engine_principal)
        .ok_or_else(|| Status::from(HesError::Unauthenticated("no principal".into())))
}

#[tonic::async_trait]
impl v1::command_service_server::CommandService for Api {
    async fn submit_command(&self, req: Request<v1::SubmitCommandRequest>) -> Reply<v1::Command> {
        let p = who(&req)?;
        let r = req.into_inner();
        let c = self.commands()?;
        let kind = kind_from_wire(r.kind)?;
        let target = self.target(&r.serial).await?;
        let rec = c
            .submit(
                &p,
                Submit {
                    target,
                    kind,
                    reason: r.reason,
                    deadline: deadline(r.deadline_seconds),
                },
            )
            .await?;
        tracing::info!(principal = %p.name, id = %rec.id, meter = %rec.target.meter, kind = rec.kind.name(), "command submitted");
        Ok(Response::new(command_to_wire(rec)))
    }

    async fn get_command(&self, req: Request<v1::GetCommandRequest>) -> Reply<v1::Command> {
        let p = who(&req)?;
        let rec = self.commands()?.get(&p, &req.into_inner().id).await?;
        Ok(Response::new(command_to_wire(rec)))
    }

    async fn get_audit(&self, req: Request<v1::GetAuditRequest>) -> Reply<v1::GetAuditResponse> {
        let p = who(&req)?;
        let id = req.into_inner().id;
        let c = self.commands()?;
        // A command that does not exist is NOT_FOUND, not an empty trail.
        c.get(&p, &id).await?;
        let entries = c.audit(&p, &id).await?;
        Ok(Response::new(v1::GetAuditResponse {
            entries: entries.into_iter().map(audit_to_wire).collect(),
        }))
    }

    type WatchCommandsStream = crate::server::StreamOf<v1::CommandUpdate>;

    async fn watch_commands(
        &self,
        req: Request<v1::WatchCommandsRequest>,
    ) -> Reply<Self::WatchCommandsStream> {
        use futures_util::StreamExt as _;
        let p = who(&req)?;
        let r = req.into_inner();
        let c = self.commands()?.clone();
        let rx = c.watch(&p)?;
        let (serial, id) = (r.serial, r.command_id);
        let stream = BroadcastStream::new(rx).filter_map(move |item| {
            let (c, p) = (c.clone(), p.clone());
            let keep = match &item {
                Ok(u) => (serial.is_empty() || u.meter == serial) && (id.is_empty() || u.id == id),
                Err(_) => true,
            };
            async move {
                let u = match item {
                    Ok(u) if keep => u,
                    Ok(_) => return None,
                    Err(e) => {
                        return Some(Err(Status::resource_exhausted(format!(
                            "watcher too slow: {e}"
                        ))));
                    }
                };
                let result = if u.to.is_final() {
                    c.get(&p, &u.id)
                        .await
                        .ok()
                        .and_then(|r| r.result.as_ref().map(result_to_wire))
                } else {
                    None
                };
                Some(Ok(v1::CommandUpdate {
                    from: opt_state(u.from),
                    to: state_to_wire(u.to) as i32,
                    id: u.id,
                    serial: u.meter,
                    at_ms: u.at_ms,
                    reason: u.reason,
                    result,
                }))
            }
        });
        Ok(Response::new(self.until_stop(stream)))
    }

    async fn request_bulk_disconnect(
        &self,
        req: Request<v1::RequestBulkDisconnectRequest>,
    ) -> Reply<v1::BulkRequest> {
        let p = who(&req)?;
        let r = req.into_inner();
        let c = self.commands()?;
        let targets = self.targets(&r.serials).await?;
        let d = deadline(r.deadline_seconds).unwrap_or(Duration::from_secs(15 * 60));
        let b = c.request_bulk_disconnect(&p, targets, &r.reason, d).await?;
        tracing::info!(principal = %p.name, id = %b.id, meters = b.targets.len(), "bulk disconnect requested");
        Ok(Response::new(bulk_to_wire(b, Vec::new())))
    }

    async fn approve_bulk(&self, req: Request<v1::ApproveBulkRequest>) -> Reply<v1::BulkRequest> {
        let p = who(&req)?;
        let id = req.into_inner().id;
        let c = self.commands()?;
        c.approve_bulk(&p, &id).await?;
        tracing::info!(principal = %p.name, id = %id, "bulk request approved");
        let (b, cmds) = c.bulk(&p, &id).await?;
        Ok(Response::new(bulk_to_wire(b, cmds)))
    }

    async fn reject_bulk(&self, req: Request<v1::RejectBulkRequest>) -> Reply<v1::BulkRequest> {
        let p = who(&req)?;
        let r = req.into_inner();
        let c = self.commands()?;
        c.reject_bulk(&p, &r.id, &r.reason).await?;
        tracing::info!(principal = %p.name, id = %r.id, "bulk request rejected");
        let (b, cmds) = c.bulk(&p, &r.id).await?;
        Ok(Response::new(bulk_to_wire(b, cmds)))
    }

    async fn get_bulk(&self, req: Request<v1::GetBulkRequest>) -> Reply<v1::BulkRequest> {
        let p = who(&req)?;
        let (b, cmds) = self.commands()?.bulk(&p, &req.into_inner().id).await?;
        Ok(Response::new(bulk_to_wire(b, cmds)))
    }

    async fn start_campaign(&self, req: Request<v1::StartCampaignRequest>) -> Reply<v1::Campaign> {
        let p = who(&req)?;
        let r = req.into_inner();
        let c = self.commands()?;
        let targets = self.targets(&r.serials).await?;
        let spec = CampaignSpec {
            version: r.version,
            image: r.image,
            block_size: if r.block_size == 0 {
                DEFAULT_BLOCK_SIZE
            } else {
                r.block_size
            },
            targets,
            command_deadline: deadline(r.command_deadline_seconds)
                .unwrap_or(Duration::from_secs(15 * 60)),
            max_failures: if r.max_failures == 0 {
                DEFAULT_MAX_FAILURES
            } else {
                r.max_failures
            },
        };
        let report = c.start_campaign(&p, spec).await?;
        tracing::info!(principal = %p.name, id = %report.campaign.id, meters = report.meters.len(), "firmware campaign started");
        Ok(Response::new(campaign_to_wire(report)))
    }

    async fn get_campaign(&self, req: Request<v1::GetCampaignRequest>) -> Reply<v1::Campaign> {
        let p = who(&req)?;
        let report = self.commands()?.campaign(&p, &req.into_inner().id).await?;
        Ok(Response::new(campaign_to_wire(report)))
    }

    async fn get_signing_key(&self, _: Request<v1::GetSigningKeyRequest>) -> Reply<v1::SigningKey> {
        let key = self.commands()?.verifying_key().to_bytes();
        Ok(Response::new(v1::SigningKey {
            public_key: key.to_vec(),
            public_key_hex: hex::encode(key),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hes_roles_map_onto_engine_roles() {
        use ami_commands::Role as E;
        assert_eq!(engine_roles(&[Role::Admin]), [E::Supervisor]);
        assert_eq!(engine_roles(&[Role::Operator]), [E::Operator]);
        assert_eq!(engine_roles(&[Role::Reader]), [E::Reader]);
        assert_eq!(engine_roles(&[Role::KeyAdmin]), [E::Reader]);
        let p = engine_principal(&Principal {
            name: "k".into(),
            roles: vec![Role::KeyAdmin, Role::Operator],
        });
        assert!(p.has(E::Operator) && !p.has(E::Supervisor));
    }

    #[test]
    fn signing_keys_are_64_hex_digits() {
        let k = SigningKeySource::Inline(Zeroizing::new("07".repeat(32)));
        assert_eq!(k.load().unwrap().to_bytes(), [7u8; 32]);
        for bad in ["07", "zz".repeat(32).as_str(), ""] {
            let e = SigningKeySource::Inline(Zeroizing::new(bad.into()))
                .load()
                .unwrap_err();
            assert!(matches!(e, HesError::Config(_)), "{e}");
        }
        assert!(!format!("{k:?}").contains("07"));
    }

    #[test]
    fn segments_come_from_the_registry() {
        let mut m = Meter::new("M-1", "dlms");
        assert!(matches!(target_of(&m), Err(HesError::CommandRefused(_))));
        m.adapter = "a-1".into();
        assert_eq!(target_of(&m).unwrap().segment, "a-1");
        m.feeder = "F1".into();
        assert_eq!(target_of(&m).unwrap().segment, "F1");
        m.transformer = "T1".into();
        assert_eq!(target_of(&m).unwrap().segment, "F1/T1");
        m.concentrator = "dcu-1".into();
        let t = target_of(&m).unwrap();
        assert_eq!((t.adapter.as_str(), t.segment.as_str()), ("a-1", "dcu-1"));
        m.status = MeterStatus::Retired;
        assert!(target_of(&m).is_err());
    }

    #[test]
    fn submitted_kinds_round_trip_and_campaign_kinds_are_refused() {
        let kinds = [
            CommandKind::ReadNow,
            CommandKind::Disconnect,
            CommandKind::Reconnect,
            CommandKind::SetClock { to_ms: 5 },
            CommandKind::SetTou {
                switches: vec![(420, 1), (1320, 2)],
                weekend: Some(2),
            },
            CommandKind::PricePush {
                tariff: 1,
                mantissa: 2315,
                scale: -4,
                currency: "EUR".into(),
                valid_from_ms: 9,
            },
            CommandKind::LoadLimit { watts: 3000 },
            CommandKind::ClearAlarms,
        ];
        for k in kinds {
            assert_eq!(kind_from_wire(Some(kind_to_wire(&k))).unwrap(), k);
        }
        assert!(kind_from_wire(Some(kind_to_wire(&CommandKind::FirmwareActivate))).is_err());
        assert!(kind_from_wire(None).is_err());
        let tou = v1::CommandKind {
            kind: Some(v1::command_kind::Kind::SetTou(v1::SetTou {
                switches: vec![v1::TouSwitch {
                    minute: 1440,
                    tariff: 1,
                }],
                weekend: None,
            })),
        };
        assert!(kind_from_wire(Some(tou)).is_err());
    }

    #[test]
    fn the_schema_goes_on_the_search_path() {
        assert_eq!(
            with_schema("postgres://h/db"),
            "postgres://h/db?options=-c%20search_path%3Dami_commands"
        );
        assert!(with_schema("postgres://h/db?sslmode=disable").contains("disable&options="));
    }
}
