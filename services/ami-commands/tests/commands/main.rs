//! Two-way commands end to end: the engine (on the in-memory store and on PostgreSQL) signs a
//! command, NATS JetStream carries it (a subject root of each test's own on the shared
//! server), the adapter's downlink verifies it and carries it out on a simulated meter, and
//! the acks come back to the engine.

#![allow(clippy::expect_used, clippy::panic, clippy::unwrap_used, missing_docs)]

mod store;
mod support;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use ami_bus::command::{
    AckStatus, CommandAck, CommandKind, CommandRequest, FailReason, ack_filter,
};
use ami_bus::{Bus, ConsumerSettings, LocalBus, StreamKind, Topology};
use ami_commands::{
    CampaignSpec, CampaignState, CommandState, CommandStore, Engine, EngineError, MeterPhase,
    SegmentLimit, Submit, Target,
};
use support::*;

const ADAPTER: &str = "dcu-7";

fn target(meter: &str, segment: &str) -> Target {
    Target::new(meter, ADAPTER, segment)
}

async fn wait_final<S: CommandStore>(
    engine: &Engine<S>,
    id: &str,
    within: Duration,
) -> ami_commands::CommandRecord {
    let who = reader();
    eventually(within, || async {
        engine.get(&who, id).await.unwrap().state.is_final()
    })
    .await;
    engine.get(&who, id).await.unwrap()
}

async fn disconnect_is_confirmed_with_the_relay_open<S: CommandStore>(store: S) {
    let nats = nats_bus("disc").await;
    let bus = Bus::Nats(nats.clone());
    let link = SimLink::new(3);
    let meter = link.meter_ids()[1].clone();
    let engine = Engine::new(store, bus.clone(), key(), fast_config());
    let mut updates = engine.watch(&reader()).unwrap();
    let driver = RunningEngine::start(&engine);
    let adapter = RunningDownlink::start(&bus, ADAPTER, engine.verifying_key(), &link);
    assert!(link.relay_closed(&meter));
    let rec = engine
        .submit(
            &operator(),
            Submit {
                target: target(&meter, "feeder-1"),
                kind: CommandKind::Disconnect,
                reason: "non-payment, case 4711".into(),
                deadline: Some(Duration::from_secs(30)),
            },
        )
        .await
        .unwrap();
    let done = wait_final(&engine, &rec.id, Duration::from_secs(20)).await;
    assert_eq!(done.state, CommandState::Confirmed, "{done:?}");
    assert!(!link.relay_closed(&meter), "the simulated relay is open");
    assert!(done.detail.contains("relay reads open"), "{}", done.detail);
    assert_eq!(done.attempts, 1);
    // The others are untouched.
    assert!(link.relay_closed(&link.meter_ids()[0]));
    // The audit trail: who, when, why, every transition.
    let trail = engine.audit(&reader(), &rec.id).await.unwrap();
    let path: Vec<_> = trail.iter().map(|a| (a.from, a.to)).collect();
    assert_eq!(
        path,
        [
            (None, CommandState::Queued),
            (Some(CommandState::Queued), CommandState::Sent),
            (Some(CommandState::Sent), CommandState::Delivered),
            (Some(CommandState::Delivered), CommandState::Confirmed),
        ]
    );
    assert_eq!(trail[0].actor, "olga");
    assert_eq!(trail[0].reason, "non-payment, case 4711");
    assert_eq!(trail[3].actor, format!("adapter:{ADAPTER}"));
    assert!(trail.windows(2).all(|w| w[0].at_ms <= w[1].at_ms));
    // The watch stream saw the same.
    let mut seen = Vec::new();
    while let Ok(u) = updates.try_recv() {
        if u.id == rec.id {
            seen.push(u.to);
        }
    }
    assert_eq!(seen.last(), Some(&CommandState::Confirmed), "{seen:?}");
    // And back: a reconnect is confirmed once the relay reads closed.
    let rec = engine
        .submit(
            &operator(),
            Submit {
                target: target(&meter, "feeder-1"),
                kind: CommandKind::Reconnect,
                reason: "paid".into(),
                deadline: None,
            },
        )
        .await
        .unwrap();
    let done = wait_final(&engine, &rec.id, Duration::from_secs(20)).await;
    assert_eq!(done.state, CommandState::Confirmed, "{done:?}");
    assert!(
        done.detail.contains("relay reads closed"),
        "{}",
        done.detail
    );
    assert!(link.relay_closed(&meter));
    adapter.stop().await;
    driver.stop().await;
    nats.delete_streams().await.unwrap();
}
both_stores!(disconnect_is_confirmed_with_the_relay_open);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disconnect_over_the_in_process_bus() {
    let bus = Bus::Local(Arc::new(LocalBus::new(Topology::new("local"), 10_000)));
    let link = SimLink::new(2);
    let meter = link.meter_ids()[0].clone();
    let engine = Engine::new(
        ami_commands::MemoryStore::new(),
        bus.clone(),
        key(),
        fast_config(),
    );
    let driver = RunningEngine::start(&engine);
    let adapter = RunningDownlink::start(&bus, ADAPTER, engine.verifying_key(), &link);
    let rec = engine
        .submit(
            &operator(),
            Submit {
                target: target(&meter, "f"),
                kind: CommandKind::Disconnect,
                reason: "test".into(),
                deadline: None,
            },
        )
        .await
        .unwrap();
    let done = wait_final(&engine, &rec.id, Duration::from_secs(10)).await;
    assert_eq!(done.state, CommandState::Confirmed, "{done:?}");
    assert!(!link.relay_closed(&meter));
    // A kind the meter cannot do fails at once, not retried.
    let rec = engine
        .submit(
            &operator(),
            Submit {
                target: target(&meter, "f"),
                kind: CommandKind::PricePush {
                    tariff: 1,
                    mantissa: 2_315,
                    scale: -4,
                    currency: "EUR".into(),
                    valid_from_ms: 0,
                },
                reason: "dynamic tariff".into(),
                deadline: None,
            },
        )
        .await
        .unwrap();
    let done = wait_final(&engine, &rec.id, Duration::from_secs(10)).await;
    assert_eq!(done.state, CommandState::Failed, "{done:?}");
    assert!(done.detail.starts_with("unsupported"), "{}", done.detail);
    assert_eq!(done.attempts, 1);
    adapter.stop().await;
    driver.stop().await;
}

async fn disconnect_without_relay_state_is_confirmed_by_a_read<S: CommandStore>(store: S) {
    let nats = nats_bus("read").await;
    let bus = Bus::Nats(nats.clone());
    let mut link = SimLink::new(1);
    {
        let l = Arc::get_mut(&mut link).unwrap();
        l.link = l.link.clone().without_relay_state();
    }
    let meter = link.meter_ids()[0].clone();
    let engine = Engine::new(store, bus.clone(), key(), fast_config());
    let driver = RunningEngine::start(&engine);
    let adapter = RunningDownlink::start(&bus, ADAPTER, engine.verifying_key(), &link);
    let rec = engine
        .submit(
            &operator(),
            Submit {
                target: target(&meter, "f"),
                kind: CommandKind::Disconnect,
                reason: "move-out".into(),
                deadline: None,
            },
        )
        .await
        .unwrap();
    let done = wait_final(&engine, &rec.id, Duration::from_secs(20)).await;
    assert_eq!(done.state, CommandState::Confirmed, "{done:?}");
    assert!(
        done.detail.contains("relay reads open (read "),
        "{}",
        done.detail
    );
    let trail = engine.audit(&reader(), &rec.id).await.unwrap();
    assert!(
        trail.iter().any(
            |a| a.to == CommandState::Delivered && a.reason.contains("reading the relay state")
        ),
        "{trail:?}"
    );
    assert_eq!(
        link.executed.load(Ordering::Relaxed),
        2,
        "disconnect, then a read"
    );
    adapter.stop().await;
    driver.stop().await;
    nats.delete_streams().await.unwrap();
}
both_stores!(disconnect_without_relay_state_is_confirmed_by_a_read);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampered_or_foreign_signatures_are_refused() {
    let nats = nats_bus("sig").await;
    let bus = Bus::Nats(nats.clone());
    let topo = bus.topology().clone();
    let link = SimLink::new(2);
    let meter = link.meter_ids()[0].clone();
    let hes = key();
    // Our own ack consumer, to read what the adapter answers.
    let mut s = ConsumerSettings::new("test-acks");
    s.filter = Some(ack_filter(&topo));
    let acks = bus.consumer(StreamKind::Commands, &s).await.unwrap();
    let adapter = RunningDownlink::start(&bus, ADAPTER, hes.verifying_key(), &link);
    let now = ami_commands::engine::now_ms();
    let mut genuine = CommandRequest {
        id: "c-limit".into(),
        meter: meter.clone(),
        adapter: ADAPTER.into(),
        kind: CommandKind::LoadLimit { watts: 4000 },
        issued_at_ms: now,
        deadline_ms: now + 60_000,
        requested_by: "olga".into(),
        signature: None,
    };
    genuine.sign(&hes);
    // Tampered on the way: a disconnect under the limit command's signature.
    let mut tampered = genuine.clone();
    tampered.id = "c-tampered".into();
    tampered.kind = CommandKind::Disconnect;
    let mut unsigned = genuine.clone();
    unsigned.id = "c-unsigned".into();
    unsigned.kind = CommandKind::Disconnect;
    unsigned.signature = None;
    let mut foreign = unsigned.clone();
    foreign.id = "c-foreign".into();
    foreign.sign(&key());
    bus.publish_batch(vec![
        tampered.to_message(&topo, 1),
        unsigned.to_message(&topo, 1),
        foreign.to_message(&topo, 1),
        genuine.to_message(&topo, 1),
    ])
    .await
    .unwrap();
    let mut got: HashMap<String, AckStatus> = HashMap::new();
    let until = std::time::Instant::now() + Duration::from_secs(15);
    while got.len() < 4 && std::time::Instant::now() < until {
        for d in acks.fetch(100, Duration::from_millis(100)).await.unwrap() {
            let a = CommandAck::from_slice(&d.message.payload).unwrap();
            if a.status.is_final() {
                got.insert(a.id.clone(), a.status.clone());
            }
            d.ack().await.unwrap();
        }
    }
    assert_eq!(got.len(), 4, "{got:?}");
    let reason = |id: &str| match &got[id] {
        AckStatus::Failed { reason, .. } => Some(*reason),
        _ => None,
    };
    assert_eq!(reason("c-tampered"), Some(FailReason::BadSignature));
    assert_eq!(reason("c-unsigned"), Some(FailReason::MissingSignature));
    assert_eq!(reason("c-foreign"), Some(FailReason::BadSignature));
    assert!(matches!(got["c-limit"], AckStatus::Confirmed { .. }));
    assert!(
        link.relay_closed(&meter),
        "no forged disconnect reached the meter"
    );
    assert_eq!(
        link.executed.load(Ordering::Relaxed),
        1,
        "only the genuine command"
    );

    // Through the engine: an adapter that does not trust the engine's key refuses, and the
    // command ends failed with the reason, not retried.
    adapter.stop().await;
    let engine = Engine::new(
        ami_commands::MemoryStore::new(),
        bus.clone(),
        key(),
        fast_config(),
    );
    let driver = RunningEngine::start(&engine);
    let adapter = RunningDownlink::start(&bus, ADAPTER, hes.verifying_key(), &link);
    let rec = engine
        .submit(
            &operator(),
            Submit {
                target: target(&meter, "f"),
                kind: CommandKind::Disconnect,
                reason: "test".into(),
                deadline: None,
            },
        )
        .await
        .unwrap();
    let done = wait_final(&engine, &rec.id, Duration::from_secs(15)).await;
    assert_eq!(done.state, CommandState::Failed, "{done:?}");
    assert!(done.detail.starts_with("bad-signature"), "{}", done.detail);
    assert_eq!(done.attempts, 1);
    assert!(link.relay_closed(&meter));
    adapter.stop().await;
    driver.stop().await;
    nats.delete_streams().await.unwrap();
}

async fn bulk_disconnect_needs_a_second_approval_and_is_throttled<S: CommandStore>(store: S) {
    let nats = nats_bus("bulk").await;
    let bus = Bus::Nats(nats.clone());
    let link = SimLink::new(12);
    let ids = link.meter_ids();
    let targets: Vec<Target> = ids
        .iter()
        .enumerate()
        .map(|(i, m)| target(m, if i % 2 == 0 { "dcu-a" } else { "dcu-b" }))
        .collect();
    let mut cfg = fast_config();
    cfg.segment_limit = SegmentLimit {
        burst: 2,
        per_second: 4.0,
    };
    let engine = Engine::new(store, bus.clone(), key(), cfg);
    let driver = RunningEngine::start(&engine);
    let adapter = RunningDownlink::start(&bus, ADAPTER, engine.verifying_key(), &link);
    let deadline = Duration::from_secs(60);

    // Without a second approval: refused.
    let err = engine
        .submit_bulk(
            &operator(),
            CommandKind::Disconnect,
            targets.clone(),
            "arrears",
            deadline,
        )
        .await
        .unwrap_err();
    assert_eq!(err, EngineError::ApprovalRequired(12));
    let req = engine
        .request_bulk_disconnect(&operator(), targets.clone(), "arrears", deadline)
        .await
        .unwrap();
    // Not by a reader, not by an operator, not by the requester even if a supervisor.
    assert!(matches!(
        engine
            .request_bulk_disconnect(&reader(), targets.clone(), "x", deadline)
            .await,
        Err(EngineError::Forbidden { .. })
    ));
    assert!(matches!(
        engine.approve_bulk(&operator(), &req.id).await,
        Err(EngineError::Forbidden { .. })
    ));
    let own = ami_commands::Principal::new("olga", &[ami_commands::Role::Supervisor]);
    assert!(matches!(
        engine.approve_bulk(&own, &req.id).await,
        Err(EngineError::SameApprover(..))
    ));
    // A rejected request sends nothing and cannot be approved afterwards.
    let rejected = engine
        .request_bulk_disconnect(&operator(), targets.clone(), "arrears", deadline)
        .await
        .unwrap();
    engine
        .reject_bulk(&supervisor(), &rejected.id, "wrong list")
        .await
        .unwrap();
    assert!(matches!(
        engine.approve_bulk(&supervisor(), &rejected.id).await,
        Err(EngineError::InvalidState(_))
    ));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        ids.iter().all(|m| link.relay_closed(m)),
        "nothing sent before approval"
    );
    assert!(engine.bulk(&reader(), &req.id).await.unwrap().1.is_empty());

    // With it: every meter ends disconnected, each segment at its limit's pace.
    let cmds = engine.approve_bulk(&supervisor(), &req.id).await.unwrap();
    assert_eq!(cmds.len(), 12);
    assert!(matches!(
        engine.approve_bulk(&supervisor(), &req.id).await,
        Err(EngineError::InvalidState(_))
    ));
    for c in &cmds {
        let done = wait_final(&engine, &c.id, Duration::from_secs(30)).await;
        assert_eq!(done.state, CommandState::Confirmed, "{done:?}");
    }
    assert!(ids.iter().all(|m| !link.relay_closed(m)));
    for segment in ["dcu-a", "dcu-b"] {
        let mut sent = Vec::new();
        for c in cmds.iter().filter(|c| c.target.segment == segment) {
            let trail = engine.audit(&reader(), &c.id).await.unwrap();
            sent.extend(
                trail
                    .iter()
                    .filter(|a| a.to == CommandState::Sent)
                    .map(|a| a.at_ms),
            );
        }
        sent.sort_unstable();
        assert_eq!(sent.len(), 6);
        let first = sent[0];
        for (k, t) in sent.iter().enumerate() {
            // A bucket of 2 refilled at 4/s: the (k+1)-th send needs (k+1-2)/4 s.
            let allowed = 2.0 + 4.0 * (t - first) as f64 / 1000.0;
            assert!(
                (k + 1) as f64 <= allowed + 0.05,
                "{segment}: send {k} at +{} ms",
                t - first
            );
        }
        assert!(
            sent[5] - first >= 900,
            "{segment}: the whole segment went in {} ms",
            sent[5] - first
        );
    }
    adapter.stop().await;
    driver.stop().await;
    nats.delete_streams().await.unwrap();
}
both_stores!(bulk_disconnect_needs_a_second_approval_and_is_throttled);

async fn firmware_campaign_survives_an_adapter_restart<S: CommandStore>(store: S) {
    let nats = nats_bus("fw").await;
    let bus = Bus::Nats(nats.clone());
    let link = SimLink::new(100);
    let ids = link.meter_ids();
    let image: Vec<u8> = (0..2000u32).map(|i| (i * 7 % 251) as u8).collect();
    let engine = Engine::new(store, bus.clone(), key(), fast_config());
    let driver = RunningEngine::start(&engine);
    // The link hangs after its 250th command, a firmware block carried out on the meter and
    // never answered.
    link.hang_after.store(250, Ordering::Relaxed);
    let adapter = RunningDownlink::start(&bus, ADAPTER, engine.verifying_key(), &link);
    let report = engine
        .start_campaign(
            &operator(),
            CampaignSpec {
                version: "AMI-SIM 2.0.0".into(),
                image: image.clone(),
                block_size: 250,
                targets: ids.iter().map(|m| target(m, "dcu-7")).collect(),
                command_deadline: Duration::from_secs(120),
                max_failures: 20,
            },
        )
        .await
        .unwrap();
    let cid = report.campaign.id.clone();
    assert_eq!(report.campaign.blocks(), 8);
    // Mid-transfer: the link hung with meters part way through their blocks.
    let who = reader();
    assert!(
        eventually(Duration::from_secs(60), || async {
            link.executed.load(Ordering::Relaxed) >= 250
        })
        .await
    );
    // The other meters of the batch in hand are served, then the adapter waits on the hung one.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let stuck = link.executed.load(Ordering::Relaxed);
    let mid = engine.campaign(&who, &cid).await.unwrap();
    assert_eq!(mid.state, CampaignState::Running);
    assert!(mid.count(MeterPhase::Done) < 100);
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(
        link.executed.load(Ordering::Relaxed),
        stuck,
        "no progress while hung"
    );
    // The adapter crashes, and comes back with no memory of what it did.
    adapter.kill().await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let adapter = RunningDownlink::start(&bus, ADAPTER, engine.verifying_key(), &link);
    assert!(
        eventually(Duration::from_secs(120), || async {
            engine.campaign(&who, &cid).await.unwrap().state != CampaignState::Running
        })
        .await,
        "campaign finished"
    );
    let done = engine.campaign(&who, &cid).await.unwrap();
    assert_eq!(
        done.state,
        CampaignState::Completed,
        "{:?}",
        done.meters
            .iter()
            .filter(|m| m.phase != MeterPhase::Done)
            .collect::<Vec<_>>()
    );
    assert_eq!(done.count(MeterPhase::Done), 100);
    for m in &ids {
        assert_eq!(link.firmware(m), "AMI-SIM 2.0.0", "{m}");
    }
    assert!(
        done.meters
            .iter()
            .all(|m| m.version.as_deref() == Some("AMI-SIM 2.0.0"))
    );
    // The block carried out before the crash came again; its meter said which block it
    // expected, and the transfer resumed there.
    let resumed: Vec<_> = done
        .meters
        .iter()
        .filter(|m| m.failures > 0)
        .map(|m| (m.target.meter.clone(), m.detail.clone(), m.failures))
        .collect();
    assert!(
        done.meters.iter().any(|m| m.failures >= 1),
        "a meter resumed from its reported block: {resumed:?}"
    );
    adapter.stop().await;
    driver.stop().await;
    nats.delete_streams().await.unwrap();
}
both_stores!(firmware_campaign_survives_an_adapter_restart);

async fn a_command_expires_after_its_deadline<S: CommandStore>(store: S) {
    let nats = nats_bus("exp").await;
    let bus = Bus::Nats(nats.clone());
    let link = SimLink::new(1);
    let meter = link.meter_ids()[0].clone();
    let engine = Engine::new(store, bus.clone(), key(), fast_config());
    let driver = RunningEngine::start(&engine);
    // No adapter is running: nobody answers.
    let rec = engine
        .submit(
            &operator(),
            Submit {
                target: target(&meter, "f"),
                kind: CommandKind::Disconnect,
                reason: "test".into(),
                deadline: Some(Duration::from_millis(1500)),
            },
        )
        .await
        .unwrap();
    let done = wait_final(&engine, &rec.id, Duration::from_secs(10)).await;
    assert_eq!(done.state, CommandState::Expired, "{done:?}");
    assert!(ami_commands::engine::now_ms() >= done.deadline_ms);
    // The adapter comes back later: the command waiting in the stream is refused, not obeyed.
    let adapter = RunningDownlink::start(&bus, ADAPTER, engine.verifying_key(), &link);
    assert!(
        eventually(Duration::from_secs(10), || async {
            adapter.downlink.stats().refused.load(Ordering::Relaxed) >= 1
        })
        .await
    );
    assert!(
        link.relay_closed(&meter),
        "an expired disconnect is never carried out"
    );
    assert_eq!(
        engine.get(&reader(), &rec.id).await.unwrap().state,
        CommandState::Expired
    );
    adapter.stop().await;
    driver.stop().await;
    nats.delete_streams().await.unwrap();
}
both_stores!(a_command_expires_after_its_deadline);

async fn lost_answers_are_retried<S: CommandStore>(store: S) {
    let nats = nats_bus("retry").await;
    let bus = Bus::Nats(nats.clone());
    let link = SimLink::new(2);
    let (m0, m1) = (link.meter_ids()[0].clone(), link.meter_ids()[1].clone());
    let engine = Engine::new(store, bus.clone(), key(), fast_config());
    let driver = RunningEngine::start(&engine);
    // 1. The meter acts but its answer is lost on the last mile: reported unreachable, retried.
    link.lose.store(1, Ordering::Relaxed);
    let adapter = RunningDownlink::start(&bus, ADAPTER, engine.verifying_key(), &link);
    let rec = engine
        .submit(
            &operator(),
            Submit {
                target: target(&m0, "f"),
                kind: CommandKind::Disconnect,
                reason: "test".into(),
                deadline: None,
            },
        )
        .await
        .unwrap();
    let done = wait_final(&engine, &rec.id, Duration::from_secs(20)).await;
    assert_eq!(done.state, CommandState::Confirmed, "{done:?}");
    assert_eq!(done.attempts, 2);
    let trail = engine.audit(&reader(), &rec.id).await.unwrap();
    assert!(
        trail
            .iter()
            .any(|a| a.to == CommandState::Queued && a.reason.starts_with("unreachable")),
        "{trail:?}"
    );
    assert!(!link.relay_closed(&m0));
    adapter.stop().await;

    // 2. No answer at all (the adapter is away): the engine re-sends after its ack timeout;
    // when the adapter returns it carries the command out once and answers both attempts.
    let before = link.executed.load(Ordering::Relaxed);
    let rec = engine
        .submit(
            &operator(),
            Submit {
                target: target(&m1, "f"),
                kind: CommandKind::Disconnect,
                reason: "test".into(),
                deadline: None,
            },
        )
        .await
        .unwrap();
    let who = reader();
    assert!(
        eventually(Duration::from_secs(15), || async {
            engine.get(&who, &rec.id).await.unwrap().attempts >= 2
        })
        .await
    );
    let adapter = RunningDownlink::start(&bus, ADAPTER, engine.verifying_key(), &link);
    let done = wait_final(&engine, &rec.id, Duration::from_secs(20)).await;
    assert_eq!(done.state, CommandState::Confirmed, "{done:?}");
    assert!(!link.relay_closed(&m1));
    let trail = engine.audit(&reader(), &rec.id).await.unwrap();
    assert!(
        trail
            .iter()
            .any(|a| a.reason.starts_with("no answer within")),
        "{trail:?}"
    );
    assert!(
        eventually(Duration::from_secs(10), || async {
            adapter.downlink.stats().duplicates.load(Ordering::Relaxed) >= 1
        })
        .await,
        "the re-sent attempt is answered from memory"
    );
    assert_eq!(
        link.executed.load(Ordering::Relaxed) - before,
        1,
        "carried out once"
    );
    adapter.stop().await;
    driver.stop().await;
    nats.delete_streams().await.unwrap();
}
both_stores!(lost_answers_are_retried);

async fn commands_survive_a_bus_outage<S: CommandStore>(store: S) {
    let mut server = OwnNats::start();
    let topology = Topology::new(&unique("outage"));
    let connect = || async {
        let b = ami_bus::NatsBus::connect(&server.url(), topology.clone(), 256)
            .await
            .unwrap();
        b.ensure_streams(&ami_bus::StreamSettings::default())
            .await
            .unwrap();
        Bus::Nats(b)
    };
    // The head-end and the adapter each with a connection of their own.
    let (hes_bus, adapter_bus) = (connect().await, connect().await);
    let link = SimLink::new(2);
    let (m0, m1) = (link.meter_ids()[0].clone(), link.meter_ids()[1].clone());
    let engine = Engine::new(store, hes_bus, key(), fast_config());
    let driver = RunningEngine::start(&engine);
    let adapter = RunningDownlink::start(&adapter_bus, ADAPTER, engine.verifying_key(), &link);
    let submit = |m: String| {
        let engine = engine.clone();
        async move {
            engine
                .submit(
                    &operator(),
                    Submit {
                        target: target(&m, "f"),
                        kind: CommandKind::Disconnect,
                        reason: "test".into(),
                        deadline: Some(Duration::from_secs(90)),
                    },
                )
                .await
                .unwrap()
        }
    };
    let first = submit(m0.clone()).await;
    let done = wait_final(&engine, &first.id, Duration::from_secs(20)).await;
    assert_eq!(done.state, CommandState::Confirmed, "{done:?}");
    // The broker goes down; a command asked for meanwhile waits and goes out when it returns.
    server.stop();
    let second = submit(m1.clone()).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(link.relay_closed(&m1));
    assert!(
        !engine
            .get(&reader(), &second.id)
            .await
            .unwrap()
            .state
            .is_final()
    );
    server.restart();
    let done = wait_final(&engine, &second.id, Duration::from_secs(60)).await;
    assert_eq!(done.state, CommandState::Confirmed, "{done:?}");
    assert!(!link.relay_closed(&m1));
    adapter.stop().await;
    driver.stop().await;
}
both_stores!(commands_survive_a_bus_outage);

/// Two HES replicas on one database: one drives, the other takes over when it goes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_driver_per_database_and_a_takeover() {
    let db = TestDb::create().await;
    let url = db.url();
    let outcome = tokio::spawn(async move { two_replicas(url).await }).await;
    db.drop_now().await;
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}

async fn two_replicas(url: String) {
    let db_url = url;
    let (a, b) = (
        ami_commands::PgStore::connect(&db_url, 4).await.unwrap(),
        ami_commands::PgStore::connect(&db_url, 4).await.unwrap(),
    );
    a.migrate().await.unwrap();
    let nats = nats_bus("lead").await;
    let bus = Bus::Nats(nats.clone());
    let link = SimLink::new(8);
    let ids = link.meter_ids();
    let hes = key();
    let first = Engine::new(a.clone(), bus.clone(), hes.clone(), fast_config());
    let second = Engine::new(b.clone(), bus.clone(), hes.clone(), fast_config());
    let d1 = RunningEngine::start(&first);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let d2 = RunningEngine::start(&second);
    let adapter = RunningDownlink::start(&bus, ADAPTER, hes.verifying_key(), &link);
    let submit = |engine: Engine<ami_commands::PgStore>, m: String| async move {
        engine
            .submit(
                &operator(),
                Submit {
                    target: target(&m, "f"),
                    kind: CommandKind::Disconnect,
                    reason: "test".into(),
                    deadline: None,
                },
            )
            .await
            .unwrap()
    };
    // Commands asked through either replica are each sent once.
    let mut cmds = Vec::new();
    for (i, m) in ids[..4].iter().enumerate() {
        let e = if i % 2 == 0 {
            first.clone()
        } else {
            second.clone()
        };
        cmds.push(submit(e, m.clone()).await);
    }
    for c in &cmds {
        let done = wait_final(&second, &c.id, Duration::from_secs(20)).await;
        assert_eq!(done.state, CommandState::Confirmed, "{done:?}");
        let trail = second.audit(&reader(), &c.id).await.unwrap();
        let sends = trail.iter().filter(|t| t.to == CommandState::Sent).count();
        assert_eq!(sends, 1, "sent by one driver only: {trail:?}");
    }
    // The leader goes: the other replica takes over.
    d1.stop().await;
    a.close().await;
    let c = submit(second.clone(), ids[5].clone()).await;
    let done = wait_final(&second, &c.id, Duration::from_secs(20)).await;
    assert_eq!(done.state, CommandState::Confirmed, "{done:?}");
    assert!(!link.relay_closed(&ids[5]));
    adapter.stop().await;
    d2.stop().await;
    b.close().await;
    nats.delete_streams().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roles_are_enforced() {
    let bus = Bus::Local(Arc::new(LocalBus::new(Topology::new("roles"), 100)));
    let engine = Engine::new(ami_commands::MemoryStore::new(), bus, key(), fast_config());
    let s = Submit {
        target: target("m", "f"),
        kind: CommandKind::Disconnect,
        reason: "x".into(),
        deadline: None,
    };
    assert!(matches!(
        engine.submit(&reader(), s.clone()).await,
        Err(EngineError::Forbidden { .. })
    ));
    let nobody = ami_commands::Principal::new("nobody", &[]);
    assert!(matches!(
        engine.submit(&nobody, s.clone()).await,
        Err(EngineError::Forbidden { .. })
    ));
    let rec = engine.submit(&operator(), s).await.unwrap();
    assert!(engine.get(&nobody, &rec.id).await.is_err());
    assert!(engine.watch(&nobody).is_err());
    assert_eq!(
        engine.get(&reader(), &rec.id).await.unwrap().state,
        CommandState::Queued
    );
    assert!(matches!(
        engine
            .start_campaign(
                &reader(),
                CampaignSpec {
                    version: "v".into(),
                    image: vec![1],
                    block_size: 1,
                    targets: vec![target("m", "f")],
                    command_deadline: Duration::from_secs(1),
                    max_failures: 1,
                }
            )
            .await,
        Err(EngineError::Forbidden { .. })
    ));
}
