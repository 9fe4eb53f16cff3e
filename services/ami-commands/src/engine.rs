//! The engine: takes commands from principals, checks their roles, signs and sends the
//! commands, follows their acks, retries, expires, and drives bulk approvals and firmware
//! campaigns.
//!
//! One driver ([`Engine::run`]) consumes the adapters' acks (`<root>.cmdack.>`, durable
//! consumer `hes-acks`) and, every tick, looks at the active commands: sends those queued and
//! due, retries those whose answer did not come within [`RetryPolicy::ack_timeout`] (with
//! exponential backoff up to [`RetryPolicy::max_backoff`], at most
//! [`RetryPolicy::max_attempts`] sends), and expires those past their deadline. The calls
//! (`submit`, `approve_bulk`, ...) only write to the store; the driver does the rest. Several
//! HES replicas may run drivers on one store: only the holder of the store's driver lease
//! ([`CommandStore::lead`], a PostgreSQL advisory lock) works, the others wait and take over
//! when it goes (within a tick; in that tick both may send, which the adapters'
//! de-duplication absorbs).
//!
//! Safety:
//! * every call takes a [`Principal`]; readers read, operators command, supervisors approve;
//! * a disconnect of more than one meter is a bulk request that a supervisor other than the
//!   requester must approve before any command exists;
//! * disconnects are limited per network segment by a token bucket ([`SegmentLimit`]): a
//!   disconnect over the limit stays `queued` until its segment has a token (its deadline
//!   still runs: held too long, it expires instead of switching off late);
//! * a disconnect is `confirmed` only when the relay reads open: from the ack's result, or
//!   else from an on-demand read the engine sends after it (a follow-up whose result carries
//!   the relay state). A relay that reads closed fails the disconnect.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ami_bus::command::{AckResult, AckStatus, CommandAck, CommandKind, CommandRequest, ack_filter};
use ami_bus::{Bus, ConsumerSettings, StreamKind};
use ed25519_dalek::{SigningKey, VerifyingKey};
use tokio::sync::{broadcast, watch};

use crate::error::EngineError;
use crate::model::{
    AuditEntry, BulkRequest, BulkState, Campaign, CampaignMeter, CampaignReport, CampaignState,
    CommandRecord, CommandState, CommandUpdate, MeterPhase, Principal, Role, Target,
};
use crate::store::CommandStore;

/// Commands looked at per driver pass, at most.
const DRIVE_BATCH: usize = 2_000;

/// The actor the engine writes for its own transitions.
pub const ENGINE_ACTOR: &str = "engine";

/// How commands are retried.
#[derive(Clone, Debug)]
pub struct RetryPolicy {
    /// How long to wait for an answer after sending (and after `received`).
    pub ack_timeout: Duration,
    /// Wait before the first retry; doubled for each further one.
    pub first_backoff: Duration,
    /// The longest wait between retries.
    pub max_backoff: Duration,
    /// Sends at most, the first included.
    pub max_attempts: u32,
}

impl RetryPolicy {
    /// The wait before sending attempt `attempts + 1`.
    pub fn backoff(&self, attempts: u32) -> Duration {
        let shift = attempts.saturating_sub(1).min(20);
        self.first_backoff
            .saturating_mul(1u32 << shift)
            .min(self.max_backoff)
    }
}

/// The disconnect limit of each network segment: a bucket of `burst` tokens refilled at
/// `per_second`; each disconnect sent takes one.
#[derive(Clone, Copy, Debug)]
pub struct SegmentLimit {
    /// Disconnects a segment may take at once.
    pub burst: u32,
    /// Tokens added per second.
    pub per_second: f64,
}

/// How the engine runs.
#[derive(Clone, Debug)]
pub struct EngineConfig {
    /// Retries.
    pub retry: RetryPolicy,
    /// The deadline of a command when the caller gives none.
    pub default_deadline: Duration,
    /// How often the driver looks at the active commands.
    pub tick: Duration,
    /// The disconnect limit per segment.
    pub segment_limit: SegmentLimit,
    /// The durable name of the ack consumer.
    pub durable: String,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            retry: RetryPolicy {
                ack_timeout: Duration::from_secs(30),
                first_backoff: Duration::from_secs(2),
                max_backoff: Duration::from_secs(120),
                max_attempts: 5,
            },
            default_deadline: Duration::from_secs(15 * 60),
            tick: Duration::from_millis(200),
            segment_limit: SegmentLimit {
                burst: 10,
                per_second: 1.0,
            },
            durable: "hes-acks".into(),
        }
    }
}

/// A command to submit.
#[derive(Clone, Debug)]
pub struct Submit {
    /// Where.
    pub target: Target,
    /// What.
    pub kind: CommandKind,
    /// Why (written to the audit trail).
    pub reason: String,
    /// How long it may take (the engine's default when none).
    pub deadline: Option<Duration>,
}

/// A firmware campaign to start.
#[derive(Clone, Debug)]
pub struct CampaignSpec {
    /// The version the image carries.
    pub version: String,
    /// The image.
    pub image: Vec<u8>,
    /// Bytes per block.
    pub block_size: u32,
    /// The meters.
    pub targets: Vec<Target>,
    /// How long each command may take.
    pub command_deadline: Duration,
    /// Failed commands a meter may have before it is given up.
    pub max_failures: u32,
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    at_ms: i64,
}

struct Inner<S> {
    store: S,
    bus: Bus,
    key: SigningKey,
    config: EngineConfig,
    buckets: Mutex<HashMap<String, Bucket>>,
    updates: broadcast::Sender<CommandUpdate>,
    seq: AtomicU64,
    boot: i64,
}

/// The command engine over a store `S`.
pub struct Engine<S> {
    inner: Arc<Inner<S>>,
}

impl<S> Clone for Engine<S> {
    fn clone(&self) -> Self {
        Engine {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<S> std::fmt::Debug for Engine<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine").finish_non_exhaustive()
    }
}

/// The present time, ms since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn need(who: &Principal, role: Role, action: &'static str) -> Result<(), EngineError> {
    if who.has(role) {
        Ok(())
    } else {
        Err(EngineError::Forbidden {
            principal: who.name.clone(),
            action,
            needs: match role {
                Role::Reader => "reader",
                Role::Operator => "operator",
                Role::Supervisor => "supervisor",
            },
        })
    }
}

/// The relay state an answer reports, if any.
fn relay_closed(result: Option<&AckResult>) -> Option<bool> {
    match result? {
        AckResult::Relay { closed } => Some(*closed),
        AckResult::Read { relay_closed, .. } => *relay_closed,
        _ => None,
    }
}

impl<S: CommandStore> Engine<S> {
    /// An engine storing in `store`, sending on `bus`, signing with `key`.
    pub fn new(store: S, bus: Bus, key: SigningKey, config: EngineConfig) -> Self {
        let (updates, _) = broadcast::channel(4096);
        Engine {
            inner: Arc::new(Inner {
                store,
                bus,
                key,
                config,
                buckets: Mutex::new(HashMap::new()),
                updates,
                seq: AtomicU64::new(0),
                boot: now_ms(),
            }),
        }
    }

    /// The key adapters verify commands with.
    pub fn verifying_key(&self) -> VerifyingKey {
        self.inner.key.verifying_key()
    }

    /// The store.
    pub fn store(&self) -> &S {
        &self.inner.store
    }

    fn new_id(&self, prefix: &str) -> String {
        let r: [u8; 6] = ami_bus::trace::random_bytes();
        let n = self.inner.seq.fetch_add(1, Ordering::Relaxed);
        let hex: String = r.iter().map(|b| format!("{b:02x}")).collect();
        format!("{prefix}-{:x}-{n:x}-{hex}", self.inner.boot)
    }

    /// Submits one command. A disconnect goes through its segment's limit when sent.
    pub async fn submit(&self, who: &Principal, s: Submit) -> Result<CommandRecord, EngineError> {
        need(who, Role::Operator, "issue commands")?;
        if let CommandKind::FirmwareBlock { number, total, .. } = &s.kind
            && number >= total
        {
            return Err(EngineError::Invalid(format!(
                "firmware block {number} of {total}"
            )));
        }
        let deadline = s.deadline.unwrap_or(self.inner.config.default_deadline);
        self.create(
            &who.name, s.target, s.kind, s.reason, deadline, None, None, None,
        )
        .await
    }

    #[allow(
        clippy::too_many_arguments,
        reason = "one private constructor for every origin"
    )]
    async fn create(
        &self,
        actor: &str,
        target: Target,
        kind: CommandKind,
        reason: String,
        deadline: Duration,
        parent: Option<String>,
        bulk: Option<String>,
        campaign: Option<String>,
    ) -> Result<CommandRecord, EngineError> {
        let now = now_ms();
        let rec = CommandRecord {
            id: self.new_id("cmd"),
            target,
            kind,
            state: CommandState::Queued,
            attempts: 0,
            requested_by: actor.to_owned(),
            reason: reason.clone(),
            created_ms: now,
            deadline_ms: now.saturating_add(ms(deadline)),
            updated_ms: now,
            next_at_ms: now,
            detail: String::new(),
            result: None,
            parent,
            bulk,
            campaign,
        };
        let audit = AuditEntry {
            command: rec.id.clone(),
            at_ms: now,
            actor: actor.to_owned(),
            from: None,
            to: CommandState::Queued,
            reason,
        };
        self.inner.store.insert_command(&rec, &audit).await?;
        self.publish_update(&rec, &audit);
        Ok(rec)
    }

    fn publish_update(&self, rec: &CommandRecord, a: &AuditEntry) {
        let _ = self.inner.updates.send(CommandUpdate {
            id: rec.id.clone(),
            meter: rec.target.meter.clone(),
            from: a.from,
            to: a.to,
            at_ms: a.at_ms,
            reason: a.reason.clone(),
        });
    }

    /// Moves `rec` to `to`, writing the audit entry and telling the watchers.
    async fn transition(
        &self,
        rec: &mut CommandRecord,
        to: CommandState,
        actor: &str,
        reason: String,
    ) -> Result<(), EngineError> {
        let now = now_ms();
        let audit = AuditEntry {
            command: rec.id.clone(),
            at_ms: now,
            actor: actor.to_owned(),
            from: Some(rec.state),
            to,
            reason: reason.clone(),
        };
        rec.state = to;
        rec.updated_ms = now;
        rec.detail = reason;
        self.inner.store.update_command(rec, Some(&audit)).await?;
        self.publish_update(rec, &audit);
        Ok(())
    }

    /// A command.
    pub async fn get(&self, who: &Principal, id: &str) -> Result<CommandRecord, EngineError> {
        need(who, Role::Reader, "read commands")?;
        self.inner
            .store
            .command(id)
            .await?
            .ok_or_else(|| EngineError::NotFound(format!("command {id}")))
    }

    /// A command's audit trail.
    pub async fn audit(&self, who: &Principal, id: &str) -> Result<Vec<AuditEntry>, EngineError> {
        need(who, Role::Reader, "read the audit trail")?;
        Ok(self.inner.store.audit(id).await?)
    }

    /// Every change of every command from now on (a slow watcher loses the oldest, and is
    /// told so by the receiver's `Lagged`).
    pub fn watch(
        &self,
        who: &Principal,
    ) -> Result<broadcast::Receiver<CommandUpdate>, EngineError> {
        need(who, Role::Reader, "watch commands")?;
        Ok(self.inner.updates.subscribe())
    }

    /// Asks for a disconnect of several meters: nothing is sent until a supervisor other than
    /// `who` approves it with [`Engine::approve_bulk`].
    pub async fn request_bulk_disconnect(
        &self,
        who: &Principal,
        targets: Vec<Target>,
        reason: &str,
        deadline: Duration,
    ) -> Result<BulkRequest, EngineError> {
        need(who, Role::Operator, "ask for a bulk disconnect")?;
        if targets.is_empty() {
            return Err(EngineError::Invalid("a bulk request without meters".into()));
        }
        let b = BulkRequest {
            id: self.new_id("bulk"),
            kind: CommandKind::Disconnect,
            targets,
            requested_by: who.name.clone(),
            reason: reason.to_owned(),
            created_ms: now_ms(),
            deadline_after_ms: ms(deadline),
            state: BulkState::PendingApproval,
        };
        self.inner.store.put_bulk(&b).await?;
        Ok(b)
    }

    /// Disconnects several meters at once: always refused, since a bulk disconnect needs a
    /// second approval ([`Engine::request_bulk_disconnect`] then [`Engine::approve_bulk`]);
    /// one meter is a plain [`Engine::submit`].
    pub async fn submit_bulk(
        &self,
        who: &Principal,
        kind: CommandKind,
        targets: Vec<Target>,
        reason: &str,
        deadline: Duration,
    ) -> Result<Vec<CommandRecord>, EngineError> {
        need(who, Role::Operator, "issue commands")?;
        if kind == CommandKind::Disconnect && targets.len() > 1 {
            return Err(EngineError::ApprovalRequired(targets.len()));
        }
        let mut out = Vec::with_capacity(targets.len());
        for t in targets {
            out.push(
                self.create(
                    &who.name,
                    t,
                    kind.clone(),
                    reason.to_owned(),
                    deadline,
                    None,
                    None,
                    None,
                )
                .await?,
            );
        }
        Ok(out)
    }

    /// The second approval of a bulk request: makes its commands (queued; sent within the
    /// segments' limits).
    pub async fn approve_bulk(
        &self,
        who: &Principal,
        bulk_id: &str,
    ) -> Result<Vec<CommandRecord>, EngineError> {
        need(who, Role::Supervisor, "approve bulk commands")?;
        let mut b = self
            .inner
            .store
            .bulk(bulk_id)
            .await?
            .ok_or_else(|| EngineError::NotFound(format!("bulk request {bulk_id}")))?;
        if b.requested_by == who.name {
            return Err(EngineError::SameApprover(b.id, who.name.clone()));
        }
        if b.state != BulkState::PendingApproval {
            return Err(EngineError::InvalidState(format!(
                "bulk request {bulk_id} is {:?}",
                b.state
            )));
        }
        b.state = BulkState::Approved {
            by: who.name.clone(),
        };
        self.inner.store.put_bulk(&b).await?;
        let deadline = Duration::from_millis(u64::try_from(b.deadline_after_ms).unwrap_or(0));
        let mut out = Vec::with_capacity(b.targets.len());
        for t in &b.targets {
            out.push(
                self.create(
                    &b.requested_by,
                    t.clone(),
                    b.kind.clone(),
                    format!("{} (bulk {}, approved by {})", b.reason, b.id, who.name),
                    deadline,
                    None,
                    Some(b.id.clone()),
                    None,
                )
                .await?,
            );
        }
        Ok(out)
    }

    /// Rejects a bulk request: nothing is sent.
    pub async fn reject_bulk(
        &self,
        who: &Principal,
        bulk_id: &str,
        reason: &str,
    ) -> Result<BulkRequest, EngineError> {
        need(who, Role::Supervisor, "reject bulk commands")?;
        let mut b = self
            .inner
            .store
            .bulk(bulk_id)
            .await?
            .ok_or_else(|| EngineError::NotFound(format!("bulk request {bulk_id}")))?;
        if b.state != BulkState::PendingApproval {
            return Err(EngineError::InvalidState(format!(
                "bulk request {bulk_id} is {:?}",
                b.state
            )));
        }
        b.state = BulkState::Rejected {
            by: who.name.clone(),
            reason: reason.to_owned(),
        };
        self.inner.store.put_bulk(&b).await?;
        Ok(b)
    }

    /// A bulk request and its commands.
    pub async fn bulk(
        &self,
        who: &Principal,
        bulk_id: &str,
    ) -> Result<(BulkRequest, Vec<CommandRecord>), EngineError> {
        need(who, Role::Reader, "read bulk requests")?;
        let b = self
            .inner
            .store
            .bulk(bulk_id)
            .await?
            .ok_or_else(|| EngineError::NotFound(format!("bulk request {bulk_id}")))?;
        let cmds = self.inner.store.bulk_commands(bulk_id).await?;
        Ok((b, cmds))
    }

    /// Starts a firmware campaign: each meter gets the image block by block, then verify, then
    /// activate. A meter that loses track (a restart, a block re-sent) says which block it
    /// expects and the transfer resumes from there.
    pub async fn start_campaign(
        &self,
        who: &Principal,
        spec: CampaignSpec,
    ) -> Result<CampaignReport, EngineError> {
        need(who, Role::Operator, "start firmware campaigns")?;
        if spec.image.is_empty() || spec.block_size == 0 || spec.targets.is_empty() {
            return Err(EngineError::Invalid(
                "a campaign needs an image, a block size and meters".into(),
            ));
        }
        if spec.version.is_empty() {
            return Err(EngineError::Invalid("a campaign needs a version".into()));
        }
        let c = Campaign {
            id: self.new_id("fw"),
            version: spec.version,
            image: spec.image,
            block_size: spec.block_size,
            requested_by: who.name.clone(),
            created_ms: now_ms(),
            command_deadline_ms: ms(spec.command_deadline),
            max_failures: spec.max_failures,
        };
        let meters: Vec<CampaignMeter> = spec
            .targets
            .into_iter()
            .map(|t| CampaignMeter {
                campaign: c.id.clone(),
                target: t,
                phase: MeterPhase::Transfer,
                next_block: 0,
                in_flight: None,
                failures: 0,
                version: None,
                detail: String::new(),
            })
            .collect();
        self.inner.store.insert_campaign(&c, &meters).await?;
        for mut m in meters {
            self.campaign_next(&c, &mut m).await?;
        }
        self.campaign_report(&c.id).await
    }

    /// A campaign's overall and per-meter state.
    pub async fn campaign(&self, who: &Principal, id: &str) -> Result<CampaignReport, EngineError> {
        need(who, Role::Reader, "read campaigns")?;
        self.campaign_report(id).await
    }

    async fn campaign_report(&self, id: &str) -> Result<CampaignReport, EngineError> {
        let campaign = self
            .inner
            .store
            .campaign(id)
            .await?
            .ok_or_else(|| EngineError::NotFound(format!("campaign {id}")))?;
        let meters = self.inner.store.campaign_meters(id).await?;
        let state = if meters
            .iter()
            .any(|m| !matches!(m.phase, MeterPhase::Done | MeterPhase::Failed))
        {
            CampaignState::Running
        } else if meters.iter().all(|m| m.phase == MeterPhase::Done) {
            CampaignState::Completed
        } else {
            CampaignState::CompletedWithFailures
        };
        Ok(CampaignReport {
            campaign,
            state,
            meters,
        })
    }

    /// Issues the next command of a campaign meter, if it needs one.
    async fn campaign_next(&self, c: &Campaign, m: &mut CampaignMeter) -> Result<(), EngineError> {
        let blocks = c.blocks();
        if m.phase == MeterPhase::Transfer && m.next_block >= blocks {
            m.phase = MeterPhase::Verify;
        }
        let kind = match m.phase {
            MeterPhase::Transfer => CommandKind::FirmwareBlock {
                version: c.version.clone(),
                number: m.next_block,
                total: blocks,
                data: c.block(m.next_block).to_vec(),
            },
            MeterPhase::Verify => CommandKind::FirmwareVerify {
                crc32: crc32(&c.image),
            },
            MeterPhase::Activate => CommandKind::FirmwareActivate,
            MeterPhase::Done | MeterPhase::Failed => {
                m.in_flight = None;
                self.inner.store.update_campaign_meter(m).await?;
                return Ok(());
            }
        };
        let rec = self
            .create(
                &c.requested_by,
                m.target.clone(),
                kind,
                format!("firmware campaign {} ({})", c.id, m.phase.name()),
                Duration::from_millis(u64::try_from(c.command_deadline_ms).unwrap_or(0)),
                None,
                None,
                Some(c.id.clone()),
            )
            .await?;
        m.in_flight = Some(rec.id);
        self.inner.store.update_campaign_meter(m).await?;
        Ok(())
    }

    /// A campaign command ended: move its meter on.
    async fn campaign_step(&self, rec: &CommandRecord) -> Result<(), EngineError> {
        let Some(cid) = &rec.campaign else {
            return Ok(());
        };
        let Some(c) = self.inner.store.campaign(cid).await? else {
            return Ok(());
        };
        let meters = self.inner.store.campaign_meters(cid).await?;
        let Some(mut m) = meters
            .into_iter()
            .find(|m| m.target.meter == rec.target.meter)
        else {
            return Ok(());
        };
        if m.in_flight.as_deref() != Some(rec.id.as_str()) {
            return Ok(());
        }
        m.in_flight = None;
        let confirmed = rec.state == CommandState::Confirmed;
        match (&rec.kind, confirmed, &rec.result) {
            (CommandKind::FirmwareBlock { .. }, true, Some(AckResult::Firmware { next_block })) => {
                m.next_block = *next_block;
            }
            // Refused with the block the meter expects: resume from there.
            (
                CommandKind::FirmwareBlock { .. },
                false,
                Some(AckResult::Firmware { next_block }),
            ) => {
                m.failures += 1;
                m.detail = format!("resumed at block {next_block}: {}", rec.detail);
                m.next_block = *next_block;
            }
            (CommandKind::FirmwareVerify { .. }, true, _) => m.phase = MeterPhase::Activate,
            (CommandKind::FirmwareActivate, true, Some(AckResult::Activated { version })) => {
                if *version == c.version {
                    m.phase = MeterPhase::Done;
                    m.detail = format!("runs {version}");
                } else {
                    m.failures += 1;
                    m.detail = format!("activated {version}, expected {}", c.version);
                    m.phase = MeterPhase::Transfer;
                    m.next_block = 0;
                }
                m.version = Some(version.clone());
            }
            (CommandKind::FirmwareVerify { .. }, false, _) => {
                // The image is not whole: transfer it again.
                m.failures += 1;
                m.detail = rec.detail.clone();
                m.phase = MeterPhase::Transfer;
                m.next_block = 0;
            }
            _ => {
                m.failures += 1;
                m.detail = rec.detail.clone();
            }
        }
        if m.failures > c.max_failures && m.phase != MeterPhase::Done {
            m.phase = MeterPhase::Failed;
        }
        self.campaign_next(&c, &mut m).await
    }

    /// Runs the driver until `stop` turns true: acks in, commands out. While the bus is away
    /// it keeps trying (commands stay queued, acks wait in the stream).
    pub async fn run(&self, mut stop: watch::Receiver<bool>) -> Result<(), EngineError> {
        let bus = &self.inner.bus;
        let mut settings = ConsumerSettings::new(&self.inner.config.durable);
        settings.filter = Some(ack_filter(bus.topology()));
        let tick = self.inner.config.tick;
        // A bus away at the start is waited for.
        let mut wait = tick;
        let consumer = loop {
            match bus.consumer(StreamKind::Commands, &settings).await {
                Ok(c) => break c,
                Err(e) => {
                    tracing::warn!(error = %e, "no command ack consumer yet");
                    tokio::select! {
                        () = tokio::time::sleep(wait) => {}
                        _ = stop.changed() => return Ok(()),
                    }
                    wait = (wait * 2).min(self.inner.config.retry.max_backoff);
                }
            }
        };
        let mut leading = false;
        loop {
            if *stop.borrow() {
                return Ok(());
            }
            // One driver per store: the others wait, neither sending nor applying acks.
            let lead = self.inner.store.lead().await.unwrap_or_else(|e| {
                tracing::warn!(error = %e, "cannot check the driver lease");
                false
            });
            if lead != leading {
                tracing::info!(leading = lead, "command driver lease");
                leading = lead;
            }
            if !lead {
                tokio::select! {
                    () = tokio::time::sleep(tick) => {}
                    _ = stop.changed() => return Ok(()),
                }
                continue;
            }
            let fetched = tokio::select! {
                r = consumer.fetch(512, tick) => r,
                _ = stop.changed() => return Ok(()),
            };
            match fetched {
                Ok(deliveries) => {
                    for d in deliveries {
                        let (msg, acker) = d.into_parts();
                        match CommandAck::from_slice(&msg.payload) {
                            Ok(ack) => {
                                if let Err(e) = self.on_ack(ack).await {
                                    // Not acknowledged: it comes again after ack_wait.
                                    tracing::warn!(error = %e, "cannot apply a command ack");
                                    continue;
                                }
                            }
                            Err(e) => {
                                tracing::warn!(subject = %msg.subject, error = %e, "unreadable command ack dropped")
                            }
                        }
                        if let Err(e) = acker.ack().await {
                            tracing::warn!(error = %e, "command ack not acknowledged");
                        }
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot fetch command acks");
                    tokio::time::sleep(tick).await;
                }
            }
            if let Err(e) = self.drive().await {
                tracing::warn!(error = %e, "command driver pass failed");
            }
        }
    }

    /// Applies one ack.
    async fn on_ack(&self, ack: CommandAck) -> Result<(), EngineError> {
        let Some(mut rec) = self.inner.store.command(&ack.id).await? else {
            tracing::debug!(command = %ack.id, "ack for an unknown command");
            return Ok(());
        };
        if rec.state.is_final() || rec.state == CommandState::Queued && !ack.status.is_final() {
            return Ok(());
        }
        let actor = format!("adapter:{}", ack.adapter);
        let retry = &self.inner.config.retry;
        let now = now_ms();
        match &ack.status {
            AckStatus::Received | AckStatus::Delivered => {
                if rec.state == CommandState::Sent && ack.attempt == rec.attempts {
                    rec.look_at(now.saturating_add(ms(retry.ack_timeout)));
                    self.transition(
                        &mut rec,
                        CommandState::Delivered,
                        &actor,
                        format!("{} by the adapter", ack.status.name()),
                    )
                    .await?;
                }
            }
            AckStatus::Confirmed { detail } => {
                rec.result = ack.result.clone();
                let want_closed = match rec.kind {
                    CommandKind::Disconnect => Some(false),
                    CommandKind::Reconnect => Some(true),
                    _ => None,
                };
                match (want_closed, relay_closed(ack.result.as_ref())) {
                    (None, _) => {
                        self.transition(&mut rec, CommandState::Confirmed, &actor, detail.clone())
                            .await?;
                        self.on_final(&rec).await?;
                    }
                    (Some(want), Some(got)) if want == got => {
                        let r = format!(
                            "{detail}; relay reads {}",
                            if got { "closed" } else { "open" }
                        );
                        self.transition(&mut rec, CommandState::Confirmed, &actor, r)
                            .await?;
                        self.on_final(&rec).await?;
                    }
                    (Some(_), Some(got)) => {
                        let r = format!(
                            "meter answered but the relay reads {}",
                            if got { "closed" } else { "open" }
                        );
                        self.transition(&mut rec, CommandState::Failed, &actor, r)
                            .await?;
                        self.on_final(&rec).await?;
                    }
                    (Some(_), None) => {
                        // Delivered, relay state unknown: read the meter to confirm it.
                        rec.look_at(rec.deadline_ms);
                        let to = CommandState::Delivered;
                        self.transition(
                            &mut rec,
                            to,
                            &actor,
                            format!("{detail}; reading the relay state to confirm"),
                        )
                        .await?;
                        let left = Duration::from_millis(
                            u64::try_from(rec.deadline_ms - now).unwrap_or(0),
                        );
                        self.create(
                            ENGINE_ACTOR,
                            rec.target.clone(),
                            CommandKind::ReadNow,
                            format!("relay state confirmation of {}", rec.id),
                            left,
                            Some(rec.id.clone()),
                            None,
                            None,
                        )
                        .await?;
                    }
                }
            }
            AckStatus::Failed { reason, detail } => {
                rec.result = ack.result.clone();
                let text = format!(
                    "{}: {detail}",
                    serde_json::to_string(reason)
                        .unwrap_or_default()
                        .trim_matches('"')
                );
                if reason.retryable() && rec.attempts < retry.max_attempts {
                    let wait = retry.backoff(rec.attempts);
                    rec.look_at(now.saturating_add(ms(wait)));
                    self.transition(
                        &mut rec,
                        CommandState::Queued,
                        &actor,
                        format!("{text}; retry in {wait:?}"),
                    )
                    .await?;
                } else {
                    self.transition(&mut rec, CommandState::Failed, &actor, text)
                        .await?;
                    self.on_final(&rec).await?;
                }
            }
        }
        Ok(())
    }

    /// A command reached a final state: tell whoever waits on it.
    async fn on_final(&self, rec: &CommandRecord) -> Result<(), EngineError> {
        if rec.campaign.is_some() {
            self.campaign_step(rec).await?;
        }
        if let Some(pid) = &rec.parent
            && let Some(mut parent) = self.inner.store.command(pid).await?
            && !parent.state.is_final()
        {
            let want_closed = parent.kind == CommandKind::Reconnect;
            let got = (rec.state == CommandState::Confirmed)
                .then(|| relay_closed(rec.result.as_ref()))
                .flatten();
            let (to, why) = match got {
                Some(c) if c == want_closed => (
                    CommandState::Confirmed,
                    format!(
                        "relay reads {} (read {})",
                        if c { "closed" } else { "open" },
                        rec.id
                    ),
                ),
                Some(c) => (
                    CommandState::Failed,
                    format!(
                        "relay reads {} (read {})",
                        if c { "closed" } else { "open" },
                        rec.id
                    ),
                ),
                None => (
                    CommandState::Failed,
                    format!(
                        "relay state could not be confirmed (read {} {})",
                        rec.id,
                        rec.state.name()
                    ),
                ),
            };
            // A parent is a connect or disconnect: no campaign or parent of its own to tell.
            self.transition(&mut parent, to, ENGINE_ACTOR, why).await?;
        }
        Ok(())
    }

    /// Takes a token of `segment`'s bucket, if it has one.
    fn take_token(&self, segment: &str, now: i64) -> bool {
        let limit = self.inner.config.segment_limit;
        let mut b = self
            .inner
            .buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let bucket = b.entry(segment.to_owned()).or_insert(Bucket {
            tokens: f64::from(limit.burst),
            at_ms: now,
        });
        let elapsed = (now - bucket.at_ms).max(0) as f64 / 1000.0;
        bucket.tokens = (bucket.tokens + elapsed * limit.per_second).min(f64::from(limit.burst));
        bucket.at_ms = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// One pass over the active commands: expire, retry, send.
    async fn drive(&self) -> Result<(), EngineError> {
        let retry = &self.inner.config.retry;
        let topology = self.inner.bus.topology().clone();
        let due = self.inner.store.due_commands(now_ms(), DRIVE_BATCH).await?;
        for mut rec in due {
            let now = now_ms();
            if now > rec.deadline_ms {
                let why = format!("deadline passed while {}", rec.state.name());
                self.transition(&mut rec, CommandState::Expired, ENGINE_ACTOR, why)
                    .await?;
                self.on_final(&rec).await?;
                continue;
            }
            if now < rec.next_at_ms {
                continue;
            }
            match rec.state {
                CommandState::Queued => {
                    if rec.kind == CommandKind::Disconnect
                        && !self.take_token(&rec.target.segment, now)
                    {
                        continue;
                    }
                    let mut req = CommandRequest {
                        id: rec.id.clone(),
                        meter: rec.target.meter.clone(),
                        adapter: rec.target.adapter.clone(),
                        kind: rec.kind.clone(),
                        issued_at_ms: rec.created_ms,
                        deadline_ms: rec.deadline_ms,
                        requested_by: rec.requested_by.clone(),
                        signature: None,
                    };
                    req.sign(&self.inner.key);
                    let attempt = rec.attempts + 1;
                    match self
                        .inner
                        .bus
                        .publish_batch(vec![req.to_message(&topology, attempt)])
                        .await
                    {
                        Ok(_) => {
                            rec.attempts = attempt;
                            rec.look_at(now.saturating_add(ms(retry.ack_timeout)));
                            self.transition(
                                &mut rec,
                                CommandState::Sent,
                                ENGINE_ACTOR,
                                format!("attempt {attempt} sent"),
                            )
                            .await?;
                        }
                        Err(e) => {
                            rec.look_at(now.saturating_add(ms(retry.backoff(attempt))));
                            rec.detail = format!("not sent: {e}");
                            self.inner.store.update_command(&rec, None).await?;
                        }
                    }
                }
                CommandState::Sent | CommandState::Delivered => {
                    if rec.attempts >= retry.max_attempts {
                        let why = format!("no answer after {} attempts", rec.attempts);
                        self.transition(&mut rec, CommandState::Failed, ENGINE_ACTOR, why)
                            .await?;
                        self.on_final(&rec).await?;
                    } else {
                        let wait = retry.backoff(rec.attempts);
                        rec.look_at(now.saturating_add(ms(wait)));
                        let why = format!(
                            "no answer within {:?}; retry in {wait:?}",
                            retry.ack_timeout
                        );
                        self.transition(&mut rec, CommandState::Queued, ENGINE_ACTOR, why)
                            .await?;
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }
}

/// CRC-32 (IEEE 802.3, reflected), the checksum firmware verification carries.
pub fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_is_bounded() {
        let p = RetryPolicy {
            ack_timeout: Duration::from_secs(1),
            first_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(700),
            max_attempts: 9,
        };
        let waits: Vec<u128> = (1..=6).map(|a| p.backoff(a).as_millis()).collect();
        assert_eq!(waits, [100, 200, 400, 700, 700, 700]);
        assert_eq!(p.backoff(u32::MAX).as_millis(), 700);
    }

    #[test]
    fn crc32_check_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }

    #[test]
    fn roles_nest() {
        let s = Principal::new("s", &[Role::Supervisor]);
        let o = Principal::new("o", &[Role::Operator]);
        let r = Principal::new("r", &[Role::Reader]);
        let n = Principal::new("n", &[]);
        assert!(s.has(Role::Operator) && s.has(Role::Reader));
        assert!(o.has(Role::Operator) && !o.has(Role::Supervisor));
        assert!(r.has(Role::Reader) && !r.has(Role::Operator));
        assert!(need(&n, Role::Reader, "x").is_err(), "no role, no access");
    }
}
