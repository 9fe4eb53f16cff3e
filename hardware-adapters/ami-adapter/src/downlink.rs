//! The downlink: commands from the head-end to the meters behind this adapter.
//!
//! [`Downlink::run`] consumes `<root>.cmd.<adapter>.>` through a durable consumer (on NATS the
//! durable `cmd-<adapter>`, shared by replicas of the adapter; on the in-process bus the same
//! calls), and for each command:
//!
//! 1. reads the envelope strictly and checks it is for this adapter;
//! 2. verifies the head-end's Ed25519 signature against the trusted keys;
//! 3. de-duplicates by command id: JetStream delivers at least once, and the head-end retries
//!    a command whose answer it did not get. A command already carried out is not carried out
//!    again: its recorded answer is published again instead. An id seen before with other
//!    content is a replay and is refused;
//! 4. refuses a command whose deadline has passed;
//! 5. publishes a `received` ack, hands the command to the caller's [`MeterLink`] (bounded by
//!    [`DownlinkConfig::link_timeout`]; commands for different meters at once, each meter's
//!    in order), and publishes the answer (`confirmed` with the meter's result, or `failed`
//!    with the reason) on `<root>.cmdack.<adapter>.<meter>` with a `Nats-Msg-Id`;
//! 6. acknowledges the JetStream message only once its acks are stored. While the bus is away
//!    the acks are retried with backoff; a command whose message was never acknowledged (the
//!    adapter stopped or crashed) is delivered again after the consumer's `ack_wait`.
//!
//! On the in-process bus, start the downlink before commands are sent to it: that bus keeps
//! only what some existing consumer has still to read.
//!
//! The de-duplication memory is bounded ([`DownlinkConfig::remember`]). Made with
//! [`Downlink::open`], it is also kept on disk in the adapter's state directory (see
//! [`crate::replay`]): a restarted adapter still refuses a replayed id and answers a
//! re-delivered command from its recorded answer, without carrying it out again. Made with
//! [`Downlink::new`], it lives in the process only. Either way a command that was carried out
//! but whose answer was not recorded (a crash in between) reaches the meter again, which is why
//! meter commands are made idempotent or self-describing (a relay already open stays open, a
//! firmware block out of order is refused with the block the meter expects, and the head-end
//! resumes from there); the deadline bounds how long a replay can matter, and entries past it
//! are dropped. Refusals for signature problems are never remembered, so a forged message
//! cannot block a genuine command's id.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use ami_bus::command::{
    AckResult, AckStatus, CommandAck, CommandError, CommandKind, CommandRequest, FailReason,
    attempt_of,
};
use ami_bus::{Bus, BusError, ConsumerSettings, Delivery, Message, StreamKind, header};
use ed25519_dalek::VerifyingKey;
use tokio::sync::watch;

use crate::replay::{Entry, Journal, JournalError, digest};

/// Why a meter link could not carry out a command.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    /// The meter or link cannot do this kind of command.
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// The meter did not answer; a retry may succeed.
    #[error("unreachable: {0}")]
    Unreachable(String),
    /// The meter refused the command, with what it reported (e.g. the firmware block it
    /// expects).
    #[error("refused: {detail}")]
    Refused {
        /// Why.
        detail: String,
        /// What the meter reported with its refusal.
        result: Option<AckResult>,
    },
}

/// The last mile: carries a verified command out on a meter. Implemented by each adapter for
/// its link (DLMS client, PLC concentrator, the simulator).
pub trait MeterLink: Send + Sync + 'static {
    /// Carries `command` out on `meter` and returns what the meter answered.
    fn execute(
        &self,
        meter: &str,
        command: &CommandKind,
    ) -> impl Future<Output = Result<AckResult, LinkError>> + Send;
}

/// How a downlink runs.
#[derive(Clone, Debug)]
pub struct DownlinkConfig {
    /// The adapter's name (as in the command subjects).
    pub adapter: String,
    /// The head-end keys whose signatures are accepted.
    pub trusted: Vec<VerifyingKey>,
    /// Commands fetched at once; the meters among them are served at the same time.
    pub batch: usize,
    /// How long a fetched command may stay unacknowledged before NATS delivers it again.
    pub ack_wait: Duration,
    /// First and longest wait between retries while the bus is away.
    pub retry: (Duration, Duration),
    /// How many command ids are remembered for de-duplication.
    pub remember: usize,
    /// How long the meter link may take for one command before it counts as unreachable.
    pub link_timeout: Duration,
}

impl DownlinkConfig {
    /// Defaults for adapter `adapter` trusting `trusted`.
    pub fn new(adapter: &str, trusted: Vec<VerifyingKey>) -> Self {
        DownlinkConfig {
            adapter: adapter.to_owned(),
            trusted,
            batch: 64,
            ack_wait: Duration::from_secs(30),
            retry: (Duration::from_millis(100), Duration::from_secs(5)),
            remember: 100_000,
            link_timeout: Duration::from_secs(60),
        }
    }

    /// The durable consumer's name.
    pub fn durable(&self) -> String {
        format!("cmd-{}", ami_bus::subjects::token(&self.adapter))
    }
}

/// Counters of a downlink.
#[derive(Debug, Default)]
pub struct DownlinkStats {
    /// Command messages taken from the bus.
    pub received: AtomicU64,
    /// Commands handed to the meter link.
    pub executed: AtomicU64,
    /// Commands already carried out, answered from memory.
    pub duplicates: AtomicU64,
    /// Commands refused (signature, deadline, replay, wrong adapter, malformed).
    pub refused: AtomicU64,
    /// Failed attempts to publish acks or to acknowledge messages.
    pub bus_errors: AtomicU64,
    /// Failed writes of the on-disk memory of command ids.
    pub journal_errors: AtomicU64,
}

#[derive(Debug, Default)]
struct Memory {
    by_id: HashMap<String, Entry>,
    order: VecDeque<String>,
    journal: Option<Journal>,
}

/// A downlink for one adapter.
pub struct Downlink<L> {
    config: DownlinkConfig,
    link: Arc<L>,
    memory: Mutex<Memory>,
    stats: DownlinkStats,
}

impl<L> std::fmt::Debug for Downlink<L> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Downlink")
            .field("adapter", &self.config.adapter)
            .finish_non_exhaustive()
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// What to do with one command message.
enum Plan {
    /// Publish these acks, then acknowledge the message.
    Answer(Vec<CommandAck>),
    /// Publish `received`, carry it out, publish the answer.
    Execute(CommandRequest, u32),
}

impl<L: MeterLink> Downlink<L> {
    /// A downlink handing commands to `link`, remembering command ids in the process only.
    pub fn new(config: DownlinkConfig, link: Arc<L>) -> Self {
        Downlink {
            config,
            link,
            memory: Mutex::new(Memory::default()),
            stats: DownlinkStats::default(),
        }
    }

    /// A downlink handing commands to `link`, remembering command ids and their answers in
    /// `state_dir` as well (created if missing), and taking back what an earlier run there
    /// remembered.
    pub fn open(
        config: DownlinkConfig,
        link: Arc<L>,
        state_dir: &Path,
    ) -> Result<Self, JournalError> {
        let (journal, entries) = Journal::open(state_dir, now_ms(), config.remember)?;
        let mut memory = Memory::default();
        for (id, e) in entries {
            memory.order.push_back(id.clone());
            memory.by_id.insert(id, e);
        }
        memory.journal = Some(journal);
        tracing::info!(adapter = %config.adapter, remembered = memory.order.len(), "downlink memory taken back");
        Ok(Downlink {
            config,
            link,
            memory: Mutex::new(memory),
            stats: DownlinkStats::default(),
        })
    }

    /// Its counters.
    pub fn stats(&self) -> &DownlinkStats {
        &self.stats
    }

    fn memory(&self) -> MutexGuard<'_, Memory> {
        self.memory
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Consumes commands from `bus` until `stop` turns true. A bus that is away at the start
    /// or in between is waited for, with backoff.
    pub async fn run(&self, bus: Bus, mut stop: watch::Receiver<bool>) {
        let cfg = &self.config;
        let mut settings = ConsumerSettings::new(&cfg.durable());
        settings.filter = Some(bus.topology().commands_for(&cfg.adapter));
        settings.ack_wait = cfg.ack_wait;
        settings.max_ack_pending = i64::try_from(cfg.batch.max(1) * 4).unwrap_or(256);
        let mut backoff = cfg.retry.0;
        let consumer = loop {
            if *stop.borrow() {
                return;
            }
            match bus.consumer(StreamKind::Commands, &settings).await {
                Ok(c) => break c,
                Err(e) => {
                    tracing::warn!(adapter = %cfg.adapter, error = %e, "no command consumer yet");
                    self.stats.bus_errors.fetch_add(1, Ordering::Relaxed);
                    sleep_or_stop(&mut stop, backoff).await;
                    backoff = (backoff * 2).min(cfg.retry.1);
                }
            }
        };
        backoff = cfg.retry.0;
        loop {
            if *stop.borrow() {
                return;
            }
            let fetched = tokio::select! {
                r = consumer.fetch(cfg.batch.max(1), Duration::from_millis(500)) => r,
                _ = stop.changed() => return,
            };
            let deliveries = match fetched {
                Ok(d) => {
                    backoff = cfg.retry.0;
                    d
                }
                Err(e) => {
                    tracing::warn!(adapter = %cfg.adapter, error = %e, "cannot fetch commands");
                    self.stats.bus_errors.fetch_add(1, Ordering::Relaxed);
                    sleep_or_stop(&mut stop, backoff).await;
                    backoff = (backoff * 2).min(cfg.retry.1);
                    continue;
                }
            };
            // One lane per meter: a meter's commands in order, different meters at once
            // (a slow meter on a PLC link holds up only itself).
            let mut lanes: Vec<(String, Vec<Delivery>)> = Vec::new();
            for d in deliveries {
                self.stats.received.fetch_add(1, Ordering::Relaxed);
                let meter = d.message.subject.clone();
                match lanes.iter_mut().find(|(m, _)| *m == meter) {
                    Some((_, lane)) => lane.push(d),
                    None => lanes.push((meter, vec![d])),
                }
            }
            let runs = lanes.into_iter().map(|(_, lane)| {
                let bus = &bus;
                let mut stop = stop.clone();
                async move { self.lane(bus, lane, &mut stop).await }
            });
            if !futures_util::future::join_all(runs)
                .await
                .iter()
                .all(|ok| *ok)
            {
                return;
            }
        }
    }

    /// Handles one meter's commands in order; false if stopped before all were answered.
    async fn lane(&self, bus: &Bus, lane: Vec<Delivery>, stop: &mut watch::Receiver<bool>) -> bool {
        for d in lane {
            let (msg, acker) = d.into_parts();
            if !self.handle(bus, &msg, stop).await {
                // Stopped before the acks were stored: the message stays unacknowledged and
                // comes again.
                return false;
            }
            if let Err(e) = acker.ack().await {
                self.stats.bus_errors.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(adapter = %self.config.adapter, error = %e, "command not acknowledged; it will come again and be answered from memory");
            }
        }
        true
    }

    /// Handles one command message; false if stopped before its acks were stored.
    async fn handle(&self, bus: &Bus, msg: &Message, stop: &mut watch::Receiver<bool>) -> bool {
        match self.plan(msg) {
            Plan::Answer(acks) => self.publish(bus, acks, stop).await,
            Plan::Execute(req, attempt) => {
                let ack = |status, result| CommandAck {
                    id: req.id.clone(),
                    meter: req.meter.clone(),
                    adapter: self.config.adapter.clone(),
                    attempt,
                    status,
                    at_ms: now_ms(),
                    result,
                };
                if !self
                    .publish(bus, vec![ack(AckStatus::Received, None)], stop)
                    .await
                {
                    return false;
                }
                self.stats.executed.fetch_add(1, Ordering::Relaxed);
                let answer = tokio::time::timeout(
                    self.config.link_timeout,
                    self.link.execute(&req.meter, &req.kind),
                )
                .await
                .unwrap_or_else(|_| {
                    Err(LinkError::Unreachable(format!(
                        "no answer from the meter within {:?}",
                        self.config.link_timeout
                    )))
                });
                let (status, result) = match answer {
                    Ok(result) => (
                        AckStatus::Confirmed {
                            detail: format!("{} carried out", req.kind.name()),
                        },
                        Some(result),
                    ),
                    Err(e) => {
                        let reason = match &e {
                            LinkError::Unsupported(_) => FailReason::Unsupported,
                            LinkError::Unreachable(_) => FailReason::Unreachable,
                            LinkError::Refused { .. } => FailReason::Refused,
                        };
                        let (detail, result) = match e {
                            LinkError::Unsupported(d) | LinkError::Unreachable(d) => (d, None),
                            LinkError::Refused { detail, result } => (detail, result),
                        };
                        (AckStatus::Failed { reason, detail }, result)
                    }
                };
                self.remember_answer(&req.id, &status, &result);
                self.publish(bus, vec![ack(status, result)], stop).await
            }
        }
    }

    fn plan(&self, msg: &Message) -> Plan {
        let attempt = attempt_of(msg);
        let refuse = |id: String, meter: String, reason: FailReason, detail: String| {
            self.stats.refused.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(adapter = %self.config.adapter, command = %id, ?reason, %detail, "command refused");
            Plan::Answer(vec![CommandAck {
                id,
                meter,
                adapter: self.config.adapter.clone(),
                attempt,
                status: AckStatus::Failed { reason, detail },
                at_ms: now_ms(),
                result: None,
            }])
        };
        let req = match CommandRequest::from_slice(&msg.payload) {
            Ok(r) => r,
            Err(e) => {
                // Without a readable body the id comes from the de-duplication header.
                let id = msg
                    .msg_id()
                    .and_then(|m| m.rsplit_once(':').map(|(id, _)| id.to_owned()))
                    .unwrap_or_default();
                if id.is_empty() {
                    self.stats.refused.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(adapter = %self.config.adapter, error = %e, "unreadable command without an id dropped");
                    return Plan::Answer(Vec::new());
                }
                let meter = msg.headers.get(header::METER).unwrap_or("").to_owned();
                return refuse(id, meter, FailReason::Malformed, e.to_string());
            }
        };
        if req.adapter != self.config.adapter {
            return refuse(
                req.id.clone(),
                req.meter.clone(),
                FailReason::WrongAdapter,
                format!(
                    "for adapter {}, this is {}",
                    req.adapter, self.config.adapter
                ),
            );
        }
        if let Err(e) = req.verify(&self.config.trusted) {
            let reason = match e {
                CommandError::MissingSignature(_) => FailReason::MissingSignature,
                _ => FailReason::BadSignature,
            };
            return refuse(req.id.clone(), req.meter.clone(), reason, e.to_string());
        }
        let content = digest(&req.signing_bytes());
        {
            let mut mem = self.memory();
            match mem.by_id.get(&req.id) {
                Some(seen) if seen.digest != content => {
                    drop(mem);
                    return refuse(
                        req.id.clone(),
                        req.meter.clone(),
                        FailReason::Replayed,
                        format!("command id {} was used before for another command", req.id),
                    );
                }
                Some(Entry {
                    answer: Some((status, result)),
                    ..
                }) => {
                    self.stats.duplicates.fetch_add(1, Ordering::Relaxed);
                    return Plan::Answer(vec![CommandAck {
                        id: req.id.clone(),
                        meter: req.meter.clone(),
                        adapter: self.config.adapter.clone(),
                        attempt,
                        status: status.clone(),
                        at_ms: now_ms(),
                        result: result.clone(),
                    }]);
                }
                Some(_) => {}
                None => {
                    let entry = Entry {
                        digest: content,
                        deadline_ms: req.deadline_ms,
                        answer: None,
                    };
                    if let Some(j) = mem.journal.as_mut()
                        && let Err(e) = j.seen(&req.id, &entry)
                    {
                        self.journal_failed(&e);
                    }
                    mem.by_id.insert(req.id.clone(), entry);
                    mem.order.push_back(req.id.clone());
                    while mem.order.len() > self.config.remember.max(1) {
                        if let Some(old) = mem.order.pop_front() {
                            mem.by_id.remove(&old);
                        }
                    }
                    self.maybe_compact(&mut mem);
                }
            }
        }
        let now = now_ms();
        if now > req.deadline_ms {
            let status = AckStatus::Failed {
                reason: FailReason::Expired,
                detail: format!("deadline {} passed at {now}", req.deadline_ms),
            };
            self.remember_answer(&req.id, &status, &None);
            self.stats.refused.fetch_add(1, Ordering::Relaxed);
            return Plan::Answer(vec![CommandAck {
                id: req.id.clone(),
                meter: req.meter.clone(),
                adapter: self.config.adapter.clone(),
                attempt,
                status,
                at_ms: now,
                result: None,
            }]);
        }
        Plan::Execute(req, attempt)
    }

    /// Records a final answer, unless a retry of the command may still succeed.
    fn remember_answer(&self, id: &str, status: &AckStatus, result: &Option<AckResult>) {
        if let AckStatus::Failed { reason, .. } = status
            && reason.retryable()
        {
            return;
        }
        let mut mem = self.memory();
        let answer = (status.clone(), result.clone());
        if let Some(j) = mem.journal.as_mut()
            && let Err(e) = j.answer(id, &answer)
        {
            self.journal_failed(&e);
        }
        if let Some(seen) = mem.by_id.get_mut(id) {
            seen.answer = Some(answer);
        }
    }

    fn journal_failed(&self, e: &JournalError) {
        self.stats.journal_errors.fetch_add(1, Ordering::Relaxed);
        tracing::error!(adapter = %self.config.adapter, error = %e, "downlink memory not written to disk");
    }

    /// Rewrites the on-disk memory once it holds far more lines than entries, dropping the
    /// entries whose deadline has passed.
    fn maybe_compact(&self, mem: &mut Memory) {
        let live = mem.by_id.len();
        if !mem
            .journal
            .as_ref()
            .is_some_and(|j| j.wants_compaction(live))
        {
            return;
        }
        let now = now_ms();
        let Memory {
            by_id,
            order,
            journal,
        } = mem;
        by_id.retain(|_, e| e.deadline_ms >= now);
        order.retain(|id| by_id.contains_key(id));
        if let Some(j) = journal.as_mut() {
            let entries = order
                .iter()
                .filter_map(|id| by_id.get(id).map(|e| (id.as_str(), e)));
            if let Err(e) = j.compact(entries) {
                self.journal_failed(&e);
            }
        }
    }

    /// Publishes `acks` until stored; false if stopped first.
    async fn publish(
        &self,
        bus: &Bus,
        acks: Vec<CommandAck>,
        stop: &mut watch::Receiver<bool>,
    ) -> bool {
        if acks.is_empty() {
            return true;
        }
        let topology = bus.topology().clone();
        let msgs: Vec<Message> = acks.iter().map(|a| a.to_message(&topology)).collect();
        let mut backoff = self.config.retry.0;
        loop {
            match bus.publish_batch(msgs.clone()).await {
                Ok(_) => return true,
                Err(e) => {
                    self.stats.bus_errors.fetch_add(1, Ordering::Relaxed);
                    log_publish_error(&self.config.adapter, &e);
                    if *stop.borrow() {
                        return false;
                    }
                    sleep_or_stop(stop, backoff).await;
                    if *stop.borrow() {
                        return false;
                    }
                    backoff = (backoff * 2).min(self.config.retry.1);
                }
            }
        }
    }
}

fn log_publish_error(adapter: &str, e: &BusError) {
    tracing::warn!(%adapter, error = %e, "cannot publish command acks; retrying");
}

async fn sleep_or_stop(stop: &mut watch::Receiver<bool>, d: Duration) {
    tokio::select! {
        () = tokio::time::sleep(d) => {}
        _ = stop.changed() => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ami_bus::{LocalBus, Topology};
    use ed25519_dalek::SigningKey;

    /// A meter with a relay, counting what it is asked.
    #[derive(Default)]
    struct Relay {
        open: Mutex<bool>,
        calls: AtomicU64,
    }

    impl MeterLink for Relay {
        async fn execute(
            &self,
            _meter: &str,
            command: &CommandKind,
        ) -> Result<AckResult, LinkError> {
            self.calls.fetch_add(1, Ordering::Relaxed);
            let mut open = self.open.lock().unwrap();
            match command {
                CommandKind::Disconnect => *open = true,
                CommandKind::Reconnect => *open = false,
                other => return Err(LinkError::Unsupported(other.name().into())),
            }
            Ok(AckResult::Relay { closed: !*open })
        }
    }

    fn request(id: &str, kind: CommandKind, key: Option<&SigningKey>) -> CommandRequest {
        let now = now_ms();
        let mut r = CommandRequest {
            id: id.into(),
            meter: "m1".into(),
            adapter: "a1".into(),
            kind,
            issued_at_ms: now,
            deadline_ms: now + 60_000,
            requested_by: "hes".into(),
            signature: None,
        };
        if let Some(k) = key {
            r.sign(k);
        }
        r
    }

    async fn acks(bus: &Bus, n: usize) -> Vec<CommandAck> {
        let c = bus
            .consumer(StreamKind::Commands, &{
                let mut s = ConsumerSettings::new("test-acks");
                s.filter = Some(ami_bus::command::ack_filter(bus.topology()));
                s
            })
            .await
            .unwrap();
        let mut out = Vec::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while out.len() < n && tokio::time::Instant::now() < deadline {
            for d in c.fetch(100, Duration::from_millis(100)).await.unwrap() {
                out.push(CommandAck::from_slice(&d.message.payload).unwrap());
            }
        }
        out
    }

    #[tokio::test]
    async fn verifies_executes_deduplicates_and_refuses_on_the_local_bus() {
        let key = SigningKey::from_bytes(&[3; 32]);
        let forger = SigningKey::from_bytes(&[4; 32]);
        let bus = Bus::Local(Arc::new(LocalBus::new(Topology::new("t"), 1000)));
        let topo = bus.topology().clone();
        // The ack consumer exists before anything is published.
        acks(&bus, 0).await;
        let link = Arc::new(Relay::default());
        let dl = Arc::new(Downlink::new(
            DownlinkConfig::new("a1", vec![key.verifying_key()]),
            Arc::clone(&link),
        ));
        let good = request("c1", CommandKind::Disconnect, Some(&key));
        let mut expired = request("c2", CommandKind::Disconnect, Some(&key));
        expired.issued_at_ms -= 120_000;
        expired.deadline_ms -= 120_000;
        expired.sign(&key);
        let msgs = vec![
            good.to_message(&topo, 1),
            // JetStream-style re-delivery under another attempt: answered from memory.
            good.to_message(&topo, 2),
            request("c3", CommandKind::Disconnect, Some(&forger)).to_message(&topo, 1),
            request("c4", CommandKind::Disconnect, None).to_message(&topo, 1),
            expired.to_message(&topo, 1),
            // Same id, other content: a replay.
            request("c1", CommandKind::Reconnect, Some(&key)).to_message(&topo, 3),
        ];
        // The downlink's durable exists before commands flow (the in-process bus keeps only
        // what some consumer has still to read).
        let (tx, rx) = watch::channel(false);
        let task = {
            let (dl, bus) = (Arc::clone(&dl), bus.clone());
            tokio::spawn(async move { dl.run(bus, rx).await })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        bus.publish_batch(msgs).await.unwrap();
        let got = acks(&bus, 7).await;
        tx.send(true).unwrap();
        task.await.unwrap();
        let status = |id: &str, attempt: u32| -> Vec<AckStatus> {
            got.iter()
                .filter(|a| a.id == id && a.attempt == attempt)
                .map(|a| a.status.clone())
                .collect()
        };
        let reason = |id: &str, attempt: u32| match status(id, attempt).last() {
            Some(AckStatus::Failed { reason, .. }) => Some(*reason),
            _ => None,
        };
        assert_eq!(status("c1", 1).len(), 2, "{got:?}");
        assert!(matches!(status("c1", 1)[1], AckStatus::Confirmed { .. }));
        assert!(matches!(status("c1", 2)[..], [AckStatus::Confirmed { .. }]));
        assert_eq!(reason("c3", 1), Some(FailReason::BadSignature));
        assert_eq!(reason("c4", 1), Some(FailReason::MissingSignature));
        assert_eq!(reason("c2", 1), Some(FailReason::Expired));
        assert_eq!(reason("c1", 3), Some(FailReason::Replayed));
        assert_eq!(link.calls.load(Ordering::Relaxed), 1, "carried out once");
        assert!(*link.open.lock().unwrap(), "relay open");
        let c1 = got
            .iter()
            .find(|a| a.id == "c1" && a.attempt == 1 && a.status.is_final());
        assert_eq!(
            c1.and_then(|a| a.result.clone()),
            Some(AckResult::Relay { closed: false })
        );
        assert_eq!(dl.stats().duplicates.load(Ordering::Relaxed), 1);
        assert_eq!(dl.stats().refused.load(Ordering::Relaxed), 4);
    }

    /// Runs a downlink over a fresh in-process bus until `n` acks came back for `msgs`.
    async fn serve(
        dl: &Arc<Downlink<Relay>>,
        msgs: Vec<CommandRequest>,
        n: usize,
    ) -> Vec<CommandAck> {
        let bus = Bus::Local(Arc::new(LocalBus::new(Topology::new("t"), 1000)));
        acks(&bus, 0).await;
        let (tx, rx) = watch::channel(false);
        let task = {
            let (dl, bus) = (Arc::clone(dl), bus.clone());
            tokio::spawn(async move { dl.run(bus, rx).await })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        let topo = bus.topology().clone();
        let msgs = msgs
            .iter()
            .enumerate()
            .map(|(i, r)| r.to_message(&topo, i as u32 + 1))
            .collect();
        bus.publish_batch(msgs).await.unwrap();
        let got = acks(&bus, n).await;
        tx.send(true).unwrap();
        task.await.unwrap();
        got
    }

    #[tokio::test]
    async fn a_restarted_downlink_refuses_replays_and_answers_from_its_journal() {
        let key = SigningKey::from_bytes(&[6; 32]);
        let dir = tempfile::tempdir().unwrap();
        let cfg = DownlinkConfig::new("a1", vec![key.verifying_key()]);
        let link = Arc::new(Relay::default());
        let good = request("c1", CommandKind::Disconnect, Some(&key));
        let mut short = request("c2", CommandKind::Disconnect, Some(&key));
        short.deadline_ms = now_ms() + 300;
        short.sign(&key);
        {
            let dl = Arc::new(Downlink::open(cfg.clone(), Arc::clone(&link), dir.path()).unwrap());
            let got = serve(&dl, vec![good.clone(), short.clone()], 4).await;
            assert_eq!(
                got.iter().filter(|a| a.status.is_final()).count(),
                2,
                "{got:?}"
            );
            assert_eq!(link.calls.load(Ordering::Relaxed), 2);
        }
        // A crash left half a line behind; c2's deadline passes while the adapter is down.
        let path = dir.path().join(crate::replay::FILE);
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        std::io::Write::write_all(&mut f, br#"{"t":"seen","id":"c9","dig"#).unwrap();
        drop(f);
        tokio::time::sleep(Duration::from_millis(400)).await;

        // The restarted adapter: c1 re-delivered gets its recorded answer without reaching the
        // meter; c1 with other content is a replay; c2 is forgotten (past its deadline).
        let dl = Arc::new(Downlink::open(cfg.clone(), Arc::clone(&link), dir.path()).unwrap());
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.contains("\"c1\"") && !text.contains("\"c2\"") && !text.contains(r#""id":"c9""#),
            "{text}"
        );
        let replay = request("c1", CommandKind::Reconnect, Some(&key));
        let got = serve(&dl, vec![good.clone(), replay], 2).await;
        let c1: Vec<&CommandAck> = got.iter().filter(|a| a.id == "c1").collect();
        assert_eq!(c1.len(), 2, "{got:?}");
        assert!(
            matches!(c1[0].status, AckStatus::Confirmed { .. }),
            "{:?}",
            c1[0]
        );
        assert_eq!(c1[0].result, Some(AckResult::Relay { closed: false }));
        assert!(
            matches!(
                c1[1].status,
                AckStatus::Failed {
                    reason: FailReason::Replayed,
                    ..
                }
            ),
            "{:?}",
            c1[1]
        );
        assert_eq!(
            link.calls.load(Ordering::Relaxed),
            2,
            "nothing carried out again"
        );
        assert!(*link.open.lock().unwrap(), "the relay stays open");
        assert_eq!(dl.stats().duplicates.load(Ordering::Relaxed), 1);
        assert_eq!(dl.stats().journal_errors.load(Ordering::Relaxed), 0);

        // A downlink without the journal would have carried it out again.
        let forgetful = Arc::new(Downlink::new(cfg, Arc::clone(&link)));
        serve(&forgetful, vec![good], 2).await;
        assert_eq!(link.calls.load(Ordering::Relaxed), 3);
    }

    /// A link whose meter never answers.
    struct Silent;

    impl MeterLink for Silent {
        async fn execute(&self, _: &str, _: &CommandKind) -> Result<AckResult, LinkError> {
            std::future::pending().await
        }
    }

    #[tokio::test]
    async fn a_meter_that_never_answers_is_reported_unreachable_after_the_link_timeout() {
        let key = SigningKey::from_bytes(&[5; 32]);
        let bus = Bus::Local(Arc::new(LocalBus::new(Topology::new("t"), 1000)));
        acks(&bus, 0).await;
        let mut cfg = DownlinkConfig::new("a1", vec![key.verifying_key()]);
        cfg.link_timeout = Duration::from_millis(100);
        let dl = Arc::new(Downlink::new(cfg, Arc::new(Silent)));
        let (tx, rx) = watch::channel(false);
        let task = {
            let (dl, bus) = (Arc::clone(&dl), bus.clone());
            tokio::spawn(async move { dl.run(bus, rx).await })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        let r = request("c1", CommandKind::ReadNow, Some(&key));
        bus.publish_batch(vec![r.to_message(bus.topology(), 1)])
            .await
            .unwrap();
        let got = acks(&bus, 2).await;
        tx.send(true).unwrap();
        task.await.unwrap();
        assert!(
            matches!(
                got.last().map(|a| &a.status),
                Some(AckStatus::Failed {
                    reason: FailReason::Unreachable,
                    ..
                })
            ),
            "{got:?}"
        );
    }
}
