//! What the engine keeps: principals and roles, commands with their lifecycle, audit entries,
//! bulk requests awaiting approval, and firmware campaigns with per-meter progress.

use ami_bus::command::{AckResult, CommandKind};
use serde::{Deserialize, Serialize};

/// What a principal may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// Reads commands, their audit trail, campaigns and the watch stream.
    Reader,
    /// Also issues commands, asks for bulk disconnects and starts firmware campaigns.
    Operator,
    /// Also approves (or rejects) bulk disconnects asked for by someone else.
    Supervisor,
}

/// Who calls: a name (as authenticated by the caller's layer) and the roles it holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    /// The name, as written to the audit trail.
    pub name: String,
    /// The roles held.
    pub roles: Vec<Role>,
}

impl Principal {
    /// A principal `name` with `roles`.
    pub fn new(name: &str, roles: &[Role]) -> Self {
        Principal {
            name: name.to_owned(),
            roles: roles.to_vec(),
        }
    }

    /// Whether it holds `role` (a supervisor is also an operator and a reader; an operator is
    /// also a reader).
    pub fn has(&self, role: Role) -> bool {
        self.roles.iter().any(|r| match role {
            Role::Reader => true,
            Role::Operator => matches!(r, Role::Operator | Role::Supervisor),
            Role::Supervisor => *r == Role::Supervisor,
        })
    }
}

/// Where a command is sent: the meter, the adapter that reaches it, and the network segment
/// (concentrator, feeder or cell) it hangs on, as the registry knows them.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Target {
    /// The meter.
    pub meter: String,
    /// The adapter.
    pub adapter: String,
    /// The network segment.
    pub segment: String,
}

impl Target {
    /// A target.
    pub fn new(meter: &str, adapter: &str, segment: &str) -> Self {
        Target {
            meter: meter.to_owned(),
            adapter: adapter.to_owned(),
            segment: segment.to_owned(),
        }
    }
}

/// The lifecycle of a command: `queued → sent → delivered → confirmed | failed | expired`
/// (a retry goes back from `sent` or `delivered` to `queued`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CommandState {
    /// Waiting to be sent (first time, retry after backoff, or held by a segment's limit).
    Queued,
    /// Published to the adapter; no answer yet.
    Sent,
    /// The adapter has it (and, for a disconnect, the relay is still to be confirmed open).
    Delivered,
    /// The meter carried it out (a disconnect: the relay reads open).
    Confirmed,
    /// It will not be carried out.
    Failed,
    /// Its deadline passed first.
    Expired,
}

impl CommandState {
    /// Every state.
    pub const ALL: [CommandState; 6] = [
        CommandState::Queued,
        CommandState::Sent,
        CommandState::Delivered,
        CommandState::Confirmed,
        CommandState::Failed,
        CommandState::Expired,
    ];

    /// Its name.
    pub const fn name(self) -> &'static str {
        match self {
            CommandState::Queued => "queued",
            CommandState::Sent => "sent",
            CommandState::Delivered => "delivered",
            CommandState::Confirmed => "confirmed",
            CommandState::Failed => "failed",
            CommandState::Expired => "expired",
        }
    }

    /// The state of a name.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.name() == name)
    }

    /// Whether nothing more happens to it.
    pub const fn is_final(self) -> bool {
        matches!(
            self,
            CommandState::Confirmed | CommandState::Failed | CommandState::Expired
        )
    }
}

/// One command and where it stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommandRecord {
    /// Its id (also the envelope's).
    pub id: String,
    /// Where it goes.
    pub target: Target,
    /// What it asks.
    pub kind: CommandKind,
    /// Where it stands.
    pub state: CommandState,
    /// How many times it was sent.
    pub attempts: u32,
    /// Who asked for it.
    pub requested_by: String,
    /// Why they asked.
    pub reason: String,
    /// When it was made, ms since the Unix epoch.
    pub created_ms: i64,
    /// When it expires.
    pub deadline_ms: i64,
    /// When it last changed.
    pub updated_ms: i64,
    /// When the engine next looks at it: sends it (queued) or gives up waiting for its answer
    /// (sent, delivered).
    pub next_at_ms: i64,
    /// The last word on it (adapter's detail, failure reason).
    pub detail: String,
    /// What the meter answered.
    pub result: Option<AckResult>,
    /// The command this one checks (a read confirming a disconnect's relay state).
    pub parent: Option<String>,
    /// The bulk request it belongs to.
    pub bulk: Option<String>,
    /// The firmware campaign it belongs to.
    pub campaign: Option<String>,
}

impl CommandRecord {
    /// Sets when the engine next looks at it, never later than just past its deadline (so a
    /// command due for expiry is always among the due ones).
    pub fn look_at(&mut self, at_ms: i64) {
        self.next_at_ms = at_ms.min(self.deadline_ms.saturating_add(1));
    }
}

/// One transition of a command, kept for ever.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditEntry {
    /// The command.
    pub command: String,
    /// When, ms since the Unix epoch.
    pub at_ms: i64,
    /// Who made it happen (a principal, or `engine` / `adapter:<name>`).
    pub actor: String,
    /// From which state (none when it was made).
    pub from: Option<CommandState>,
    /// To which state.
    pub to: CommandState,
    /// Why.
    pub reason: String,
}

/// Where a bulk request stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BulkState {
    /// Waiting for a supervisor other than the requester.
    PendingApproval,
    /// Approved: its commands exist.
    Approved {
        /// The supervisor who approved.
        by: String,
    },
    /// Rejected: nothing is sent.
    Rejected {
        /// The supervisor who rejected.
        by: String,
        /// Why.
        reason: String,
    },
}

/// A bulk command (a disconnect of many meters) waiting for its second approval.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BulkRequest {
    /// Its id.
    pub id: String,
    /// What each meter is asked.
    pub kind: CommandKind,
    /// The meters.
    pub targets: Vec<Target>,
    /// Who asked.
    pub requested_by: String,
    /// Why.
    pub reason: String,
    /// When, ms since the Unix epoch.
    pub created_ms: i64,
    /// How long each command may take once approved, ms.
    pub deadline_after_ms: i64,
    /// Where it stands.
    pub state: BulkState,
}

/// A firmware image rolled out to many meters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Campaign {
    /// Its id.
    pub id: String,
    /// The version the image carries.
    pub version: String,
    /// The image.
    pub image: Vec<u8>,
    /// Bytes per block.
    pub block_size: u32,
    /// Who started it.
    pub requested_by: String,
    /// When, ms since the Unix epoch.
    pub created_ms: i64,
    /// How long each of its commands may take, ms.
    pub command_deadline_ms: i64,
    /// Failed commands a meter may have before it is given up.
    pub max_failures: u32,
}

impl Campaign {
    /// How many blocks the image has.
    pub fn blocks(&self) -> u32 {
        let size = self.block_size.max(1) as usize;
        u32::try_from(self.image.len().div_ceil(size)).unwrap_or(u32::MAX)
    }

    /// Block `n`'s bytes.
    pub fn block(&self, n: u32) -> &[u8] {
        let size = self.block_size.max(1) as usize;
        let start = (n as usize).saturating_mul(size).min(self.image.len());
        let end = start.saturating_add(size).min(self.image.len());
        self.image.get(start..end).unwrap_or_default()
    }
}

/// Where one meter of a campaign stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MeterPhase {
    /// Blocks are being transferred.
    Transfer,
    /// The image is being verified.
    Verify,
    /// The image is being activated.
    Activate,
    /// The meter runs the new version.
    Done,
    /// Given up.
    Failed,
}

impl MeterPhase {
    /// Every phase.
    pub const ALL: [MeterPhase; 5] = [
        MeterPhase::Transfer,
        MeterPhase::Verify,
        MeterPhase::Activate,
        MeterPhase::Done,
        MeterPhase::Failed,
    ];

    /// Its name.
    pub const fn name(self) -> &'static str {
        match self {
            MeterPhase::Transfer => "transfer",
            MeterPhase::Verify => "verify",
            MeterPhase::Activate => "activate",
            MeterPhase::Done => "done",
            MeterPhase::Failed => "failed",
        }
    }

    /// The phase of a name.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.name() == name)
    }
}

/// One meter's progress in a campaign.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CampaignMeter {
    /// The campaign.
    pub campaign: String,
    /// The meter.
    pub target: Target,
    /// Where it stands.
    pub phase: MeterPhase,
    /// The block to send next (as the meter last reported it).
    pub next_block: u32,
    /// The command in flight for it.
    pub in_flight: Option<String>,
    /// Failed or expired commands so far.
    pub failures: u32,
    /// The version it reported after activation.
    pub version: Option<String>,
    /// The last word on it.
    pub detail: String,
}

/// Where a whole campaign stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CampaignState {
    /// Meters are still in transfer, verification or activation.
    Running,
    /// Every meter runs the new version.
    Completed,
    /// Every meter is done or given up, some given up.
    CompletedWithFailures,
}

/// A campaign's overall and per-meter state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CampaignReport {
    /// The campaign.
    pub campaign: Campaign,
    /// Overall.
    pub state: CampaignState,
    /// Each meter.
    pub meters: Vec<CampaignMeter>,
}

impl CampaignReport {
    /// Meters in `phase`.
    pub fn count(&self, phase: MeterPhase) -> usize {
        self.meters.iter().filter(|m| m.phase == phase).count()
    }
}

/// A change of a command, as the watch stream carries it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommandUpdate {
    /// The command.
    pub id: String,
    /// Its meter.
    pub meter: String,
    /// From which state (none when it was made).
    pub from: Option<CommandState>,
    /// To which state.
    pub to: CommandState,
    /// When.
    pub at_ms: i64,
    /// Why.
    pub reason: String,
}
