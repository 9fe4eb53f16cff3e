//! Commands through the `ami.hes.v1` API, end to end: the HES (registry and commands on a
//! PostgreSQL database of the test's own) signs a command for a registered meter, NATS
//! JetStream carries it (a subject root of the test's own on the server at
//! `AMI_TEST_NATS_URL`), the adapter's downlink (trusting the key `GetSigningKey` serves)
//! carries it out on a simulated meter, and the lifecycle comes back through `WatchCommands`,
//! `GetCommand`, `GetAudit`, `GetBulk` and `GetCampaign`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ami_adapter::fleet_link::FleetLink;
use ami_adapter::{Downlink, DownlinkConfig, LinkError, MeterLink};
use ami_bus::command::{AckResult, CommandKind};
use ami_bus::{Bus, NatsBus, StreamSettings, Topology};
use ami_commands::{EngineConfig, RetryPolicy, SegmentLimit};
use ami_hes::auth::TokenSource;
use ami_hes::commands::SigningKeySource;
use ami_hes::proto::v1;
use ami_hes::proto::v1::command_service_client::CommandServiceClient;
use ami_hes::proto::v1::registry_service_client::RegistryServiceClient;
use ami_hes::server::{ServerConfig, bind};
use ami_hes::{HesError, MasterKeySource};
use ami_sim::Fleet;
use ed25519_dalek::VerifyingKey;
use tokio::sync::watch;
use tokio_stream::StreamExt;
use tonic::transport::Channel;
use tonic::{Code, Request};
use zeroize::Zeroizing;

const MASTER: &str = "1111111111111111111111111111111111111111111111111111111111111111";
const READER: &str = "tok-reader-0123456789";
const OPERATOR: &str = "tok-operator-0123456789";
const ADA: &str = "tok-admin-ada-0123456789";
const ALAN: &str = "tok-admin-alan-0123456789";
const TOKENS: &str = "rita reader tok-reader-0123456789\n\
    otto operator tok-operator-0123456789\n\
    ada admin tok-admin-ada-0123456789\n\
    alan admin tok-admin-alan-0123456789";
const ADAPTER: &str = "dcu-7";

fn signing_seed() -> String {
    let k = ed25519_dalek::SigningKey::generate(&mut rand_core::OsRng);
    hex::encode(k.to_bytes())
}

fn unique_root(tag: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "hescmd{}x{}x{nanos:x}{tag}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

fn fast_engine() -> EngineConfig {
    EngineConfig {
        retry: RetryPolicy {
            ack_timeout: Duration::from_secs(3),
            first_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(1),
            max_attempts: 6,
        },
        default_deadline: Duration::from_secs(60),
        tick: Duration::from_millis(50),
        segment_limit: SegmentLimit {
            burst: 100,
            per_second: 100.0,
        },
        durable: "hes-acks".into(),
    }
}

fn req<T>(msg: T, token: &str) -> Request<T> {
    let mut r = Request::new(msg);
    r.metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    r
}

/// The simulator behind the adapter: each meter command is a simulator command.
struct SimLink {
    link: FleetLink,
}

impl SimLink {
    fn new(meters: usize) -> Arc<SimLink> {
        let mut fleet = Fleet::new(meters);
        fleet.step(1_763_000_000_000, 10_000);
        Arc::new(SimLink {
            link: FleetLink::new(Arc::new(Mutex::new(fleet))),
        })
    }

    fn meter_ids(&self) -> Vec<String> {
        let f = self.link.fleet().lock().unwrap();
        f.meters.iter().map(|m| m.id.clone()).collect()
    }

    fn relay_closed(&self, meter: &str) -> bool {
        self.link
            .fleet()
            .lock()
            .unwrap()
            .meter(meter)
            .unwrap()
            .relay_closed
    }

    fn firmware(&self, meter: &str) -> String {
        let f = self.link.fleet().lock().unwrap();
        f.meter(meter).unwrap().firmware.clone()
    }
}

impl MeterLink for SimLink {
    async fn execute(&self, meter: &str, command: &CommandKind) -> Result<AckResult, LinkError> {
        self.link.carry_out(meter, command)
    }
}

/// A HES with commands on, the adapter's downlink over the simulator, and the meters
/// registered through the API.
struct Setup {
    addr: SocketAddr,
    nats: NatsBus,
    db: Option<common::TestDb>,
    link: Arc<SimLink>,
    hes_stop: tokio::sync::oneshot::Sender<()>,
    hes_task: tokio::task::JoinHandle<Result<(), HesError>>,
    adapter_stop: watch::Sender<bool>,
    adapter_task: tokio::task::JoinHandle<()>,
}

impl Setup {
    async fn start(tag: &str, meters: usize) -> Setup {
        let url =
            std::env::var("AMI_TEST_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into());
        let nats = NatsBus::connect(&url, Topology::new(&unique_root(tag)), 1024)
            .await
            .expect("NATS at AMI_TEST_NATS_URL");
        nats.ensure_streams(&StreamSettings {
            max_age: Duration::from_secs(600),
            raw_max_age: Duration::from_secs(600),
            duplicate_window: Duration::from_secs(120),
            ..StreamSettings::default()
        })
        .await
        .unwrap();
        let bus = Bus::Nats(nats.clone());
        let db = common::TestDb::create().await;
        let mut config = ServerConfig::new(
            "127.0.0.1:0".parse().unwrap(),
            &db.url(),
            MasterKeySource::Inline(Zeroizing::new(MASTER.to_owned())),
            TokenSource::Inline(Zeroizing::new(TOKENS.to_owned())),
        );
        config.max_connections = 4;
        config.bus = Some(bus.clone());
        config.signing_key = Some(SigningKeySource::Inline(Zeroizing::new(signing_seed())));
        config.commands = fast_engine();
        let bound = bind(config).await.unwrap();
        let addr = bound.local_addr().unwrap();
        let (hes_stop, rx) = tokio::sync::oneshot::channel::<()>();
        let hes_task = tokio::spawn(bound.serve(async {
            let _ = rx.await;
        }));

        let link = SimLink::new(meters);
        let mut s = Setup {
            addr,
            nats,
            db: Some(db),
            link: link.clone(),
            hes_stop,
            hes_task,
            adapter_stop: watch::channel(false).0,
            adapter_task: tokio::spawn(async {}),
        };
        // Registered through the API: route (adapter, concentrator) and topology.
        let mut csv = String::from("serial,protocol,adapter,concentrator,feeder,transformer\n");
        for (i, id) in link.meter_ids().iter().enumerate() {
            csv.push_str(&format!("{id},dlms,{ADAPTER},dcu-7,F1,T{}\n", i % 3));
        }
        let imported = RegistryServiceClient::new(s.channel().await)
            .import_meters(req(v1::ImportMetersRequest { csv }, OPERATOR))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(imported.imported as usize, meters, "{:?}", imported.errors);

        // The adapter is provisioned with the key the HES serves.
        let key = s
            .commands()
            .await
            .get_signing_key(req(v1::GetSigningKeyRequest {}, READER))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(key.public_key_hex, hex::encode(&key.public_key));
        let trusted = VerifyingKey::from_bytes(&key.public_key.try_into().unwrap()).unwrap();
        let mut cfg = DownlinkConfig::new(ADAPTER, vec![trusted]);
        cfg.ack_wait = Duration::from_secs(1);
        let downlink = Arc::new(Downlink::new(cfg, link));
        let (adapter_stop, stop_rx) = watch::channel(false);
        s.adapter_stop = adapter_stop;
        s.adapter_task = tokio::spawn(async move { downlink.run(bus, stop_rx).await });
        s
    }

    async fn channel(&self) -> Channel {
        Channel::from_shared(format!("http://{}", self.addr))
            .unwrap()
            .connect()
            .await
            .unwrap()
    }

    async fn commands(&self) -> CommandServiceClient<Channel> {
        CommandServiceClient::new(self.channel().await)
    }

    async fn stop(mut self) {
        let _ = self.adapter_stop.send(true);
        let _ = self.adapter_task.await;
        let _ = self.hes_stop.send(());
        let served = self.hes_task.await.unwrap();
        self.nats.delete_streams().await.unwrap();
        if let Some(db) = self.db.take() {
            db.drop_now().await;
        }
        served.unwrap();
    }
}

/// Runs `check` on a fresh setup, tearing it down (streams, database) even when it panics.
async fn with_setup<F, Fut>(tag: &str, meters: usize, check: F)
where
    F: FnOnce(Arc<SimLink>, CommandServiceClient<Channel>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let s = Setup::start(tag, meters).await;
    let outcome = tokio::spawn(check(s.link.clone(), s.commands().await)).await;
    s.stop().await;
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}

fn kind(k: v1::command_kind::Kind) -> Option<v1::CommandKind> {
    Some(v1::CommandKind { kind: Some(k) })
}

fn state(s: i32) -> v1::CommandState {
    v1::CommandState::try_from(s).unwrap()
}

async fn wait_command(
    c: &mut CommandServiceClient<Channel>,
    id: &str,
    within: Duration,
) -> v1::Command {
    let deadline = Instant::now() + within;
    loop {
        let rec = c
            .get_command(req(v1::GetCommandRequest { id: id.into() }, READER))
            .await
            .unwrap()
            .into_inner();
        let s = state(rec.state);
        if matches!(
            s,
            v1::CommandState::Confirmed | v1::CommandState::Failed | v1::CommandState::Expired
        ) || Instant::now() > deadline
        {
            return rec;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disconnect_travels_to_the_meter_and_its_lifecycle_comes_back() {
    with_setup("disc", 3, |link, mut c| async move {
        let meter = link.meter_ids()[1].clone();
        assert!(link.relay_closed(&meter));
        let mut watch = c
            .watch_commands(req(
                v1::WatchCommandsRequest {
                    serial: meter.clone(),
                    command_id: String::new(),
                },
                READER,
            ))
            .await
            .unwrap()
            .into_inner();

        // A reader cannot submit; an unknown meter is not found.
        let disconnect = |serial: &str| v1::SubmitCommandRequest {
            serial: serial.into(),
            kind: kind(v1::command_kind::Kind::Disconnect(v1::Disconnect {})),
            reason: "non-payment, case 4711".into(),
            deadline_seconds: 30,
        };
        let e = c
            .submit_command(req(disconnect(&meter), READER))
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
        let e = c
            .submit_command(req(disconnect("NO-SUCH-METER"), OPERATOR))
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::NotFound, "{e:?}");
        let e = c
            .submit_command(req(
                v1::SubmitCommandRequest {
                    kind: None,
                    ..disconnect(&meter)
                },
                OPERATOR,
            ))
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
        assert!(link.relay_closed(&meter), "nothing was sent");

        let rec = c
            .submit_command(req(disconnect(&meter), OPERATOR))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(state(rec.state), v1::CommandState::Queued);
        assert_eq!(rec.serial, meter);
        assert_eq!(rec.adapter, ADAPTER);
        assert_eq!(rec.segment, "dcu-7");
        assert_eq!(rec.kind_name, "disconnect");
        assert_eq!(rec.requested_by, "otto");

        // The watch stream shows the whole lifecycle, the last update with the relay open.
        let mut seen = Vec::new();
        let mut last = None;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while let Ok(Some(u)) = tokio::time::timeout_at(deadline, watch.next()).await {
            let u = u.unwrap();
            assert_eq!(u.serial, meter);
            if u.id != rec.id {
                continue;
            }
            seen.push(state(u.to));
            if state(u.to) == v1::CommandState::Confirmed {
                last = Some(u);
                break;
            }
        }
        assert_eq!(
            seen,
            [
                v1::CommandState::Queued,
                v1::CommandState::Sent,
                v1::CommandState::Delivered,
                v1::CommandState::Confirmed
            ]
        );
        let result = last.unwrap().result.expect("a result on confirmation");
        assert_eq!(result.r#type, "relay");
        assert_eq!(result.relay_closed, Some(false), "the relay reads open");
        assert!(!link.relay_closed(&meter), "the simulated relay is open");
        assert!(link.relay_closed(&link.meter_ids()[0]), "others untouched");

        let done = wait_command(&mut c, &rec.id, Duration::from_secs(5)).await;
        assert_eq!(state(done.state), v1::CommandState::Confirmed, "{done:?}");
        assert_eq!(done.attempts, 1);
        assert_eq!(done.result.unwrap().relay_closed, Some(false));

        let trail = c
            .get_audit(req(v1::GetAuditRequest { id: rec.id.clone() }, READER))
            .await
            .unwrap()
            .into_inner()
            .entries;
        let path: Vec<_> = trail.iter().map(|a| (state(a.from), state(a.to))).collect();
        assert_eq!(
            path,
            [
                (v1::CommandState::Unspecified, v1::CommandState::Queued),
                (v1::CommandState::Queued, v1::CommandState::Sent),
                (v1::CommandState::Sent, v1::CommandState::Delivered),
                (v1::CommandState::Delivered, v1::CommandState::Confirmed),
            ]
        );
        assert_eq!(trail[0].actor, "otto");
        assert_eq!(trail[0].reason, "non-payment, case 4711");
        let e = c
            .get_audit(req(v1::GetAuditRequest { id: "cmd-x".into() }, READER))
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::NotFound);

        // A reconnect closes it again.
        let rec = c
            .submit_command(req(
                v1::SubmitCommandRequest {
                    kind: kind(v1::command_kind::Kind::Reconnect(v1::Reconnect {})),
                    reason: "paid".into(),
                    ..disconnect(&meter)
                },
                OPERATOR,
            ))
            .await
            .unwrap()
            .into_inner();
        let done = wait_command(&mut c, &rec.id, Duration::from_secs(30)).await;
        assert_eq!(state(done.state), v1::CommandState::Confirmed, "{done:?}");
        assert!(link.relay_closed(&meter));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bulk_disconnect_needs_a_second_approval_by_another_admin() {
    with_setup("bulk", 4, |link, mut c| async move {
        let ids = link.meter_ids();
        let serials: Vec<String> = ids[..3].to_vec();
        let b = c
            .request_bulk_disconnect(req(
                v1::RequestBulkDisconnectRequest {
                    serials: serials.clone(),
                    reason: "feeder works".into(),
                    deadline_seconds: 60,
                },
                OPERATOR,
            ))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            v1::BulkState::try_from(b.state).unwrap(),
            v1::BulkState::PendingApproval
        );
        assert!(b.commands.is_empty());
        // The requester (an operator) cannot approve it, nor can a reader.
        for token in [OPERATOR, READER] {
            let e = c
                .approve_bulk(req(v1::ApproveBulkRequest { id: b.id.clone() }, token))
                .await
                .unwrap_err();
            assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
        }
        // An admin's own request needs another admin.
        let own = c
            .request_bulk_disconnect(req(
                v1::RequestBulkDisconnectRequest {
                    serials: serials.clone(),
                    reason: "own".into(),
                    deadline_seconds: 60,
                },
                ADA,
            ))
            .await
            .unwrap()
            .into_inner();
        let e = c
            .approve_bulk(req(v1::ApproveBulkRequest { id: own.id.clone() }, ADA))
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
        let rejected = c
            .reject_bulk(req(
                v1::RejectBulkRequest {
                    id: own.id.clone(),
                    reason: "not today".into(),
                },
                ALAN,
            ))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            v1::BulkState::try_from(rejected.state).unwrap(),
            v1::BulkState::Rejected
        );
        assert_eq!(rejected.decided_by, "alan");
        let e = c
            .approve_bulk(req(v1::ApproveBulkRequest { id: own.id }, ALAN))
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
        // Nothing was sent so far.
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert!(ids.iter().all(|m| link.relay_closed(m)));
        let pending = c
            .get_bulk(req(v1::GetBulkRequest { id: b.id.clone() }, READER))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            v1::BulkState::try_from(pending.state).unwrap(),
            v1::BulkState::PendingApproval
        );

        // Approved by an admin other than the requester: the commands are made and carried out.
        let approved = c
            .approve_bulk(req(v1::ApproveBulkRequest { id: b.id.clone() }, ADA))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            v1::BulkState::try_from(approved.state).unwrap(),
            v1::BulkState::Approved
        );
        assert_eq!(approved.decided_by, "ada");
        assert_eq!(approved.commands.len(), 3);
        for cmd in &approved.commands {
            let done = wait_command(&mut c, &cmd.id, Duration::from_secs(30)).await;
            assert_eq!(state(done.state), v1::CommandState::Confirmed, "{done:?}");
            assert_eq!(done.bulk, b.id);
        }
        for m in &serials {
            assert!(!link.relay_closed(m), "{m} is open");
        }
        assert!(link.relay_closed(&ids[3]), "the fourth meter was not in it");
        let after = c
            .get_bulk(req(v1::GetBulkRequest { id: b.id }, READER))
            .await
            .unwrap()
            .into_inner();
        assert!(
            after
                .commands
                .iter()
                .all(|c| state(c.state) == v1::CommandState::Confirmed)
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_firmware_campaign_over_20_meters_finishes() {
    with_setup("fw", 20, |link, mut c| async move {
        let ids = link.meter_ids();
        let image: Vec<u8> = (0..2000u32).map(|i| (i * 7 % 251) as u8).collect();
        let version = "AMI-SIM 2.0.0";
        let e = c
            .start_campaign(req(
                v1::StartCampaignRequest {
                    image: image.clone(),
                    version: version.into(),
                    block_size: 250,
                    serials: ids.clone(),
                    command_deadline_seconds: 60,
                    max_failures: 10,
                },
                READER,
            ))
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::PermissionDenied);
        let started = c
            .start_campaign(req(
                v1::StartCampaignRequest {
                    image,
                    version: version.into(),
                    block_size: 250,
                    serials: ids.clone(),
                    command_deadline_seconds: 60,
                    max_failures: 10,
                },
                OPERATOR,
            ))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(started.blocks, 8);
        assert_eq!(started.meters.len(), 20);
        let deadline = Instant::now() + Duration::from_secs(120);
        let report = loop {
            let r = c
                .get_campaign(req(
                    v1::GetCampaignRequest {
                        id: started.id.clone(),
                    },
                    READER,
                ))
                .await
                .unwrap()
                .into_inner();
            if v1::CampaignState::try_from(r.state).unwrap() != v1::CampaignState::Running
                || Instant::now() > deadline
            {
                break r;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        };
        assert_eq!(
            v1::CampaignState::try_from(report.state).unwrap(),
            v1::CampaignState::Completed,
            "{report:?}"
        );
        assert_eq!((report.done, report.failed), (20, 0));
        for m in &report.meters {
            assert_eq!(
                v1::MeterPhase::try_from(m.phase).unwrap(),
                v1::MeterPhase::Done
            );
            assert_eq!(m.version, version);
            assert_eq!(link.firmware(&m.serial), version);
        }
    })
    .await;
}

/// A bus without a signing key stops the start; a bad key too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_need_a_signing_key() {
    let bus = Bus::Local(Arc::new(ami_bus::LocalBus::new(Topology::new("k"), 100)));
    let mut config = ServerConfig::new(
        "127.0.0.1:0".parse().unwrap(),
        "sqlite::memory:",
        MasterKeySource::Inline(Zeroizing::new(MASTER.to_owned())),
        TokenSource::Inline(Zeroizing::new(TOKENS.to_owned())),
    );
    config.bus = Some(bus);
    let e = bind(config.clone()).await.expect_err("no key, no start");
    assert!(
        matches!(&e, HesError::Config(m) if m.contains("AMI_HES_SIGNING_KEY")),
        "{e}"
    );
    config.signing_key = Some(SigningKeySource::Inline(Zeroizing::new("abcd".into())));
    let e = bind(config).await.expect_err("a bad key, no start");
    assert!(matches!(e, HesError::Config(_)), "{e}");
}
