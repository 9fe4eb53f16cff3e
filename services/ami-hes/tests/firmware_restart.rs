//! A firmware campaign over 100 simulated meters survives a restart of their adapter in the
//! middle of the image transfer: the HES (registry and commands on a PostgreSQL database of the
//! test's own) drives the campaign over a nats-server of the test's own; the adapter's
//! downlink keeps its memory of commands in a state directory. Part way through, the bus
//! stalls while the adapter has answers to publish, and the adapter dies: commands carried out
//! on the meters, their answers recorded and never sent. Started again over the same
//! directory, it gets those commands again and answers them from its memory. Every meter ends
//! on the new firmware, each block reached each meter exactly once (the transfer resumed where
//! it stood, nothing was resent from block 0 nor carried out twice), and no meter was
//! activated twice.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ami_adapter::{Downlink, DownlinkConfig, LinkError, MeterLink};
use ami_bus::command::{AckResult, CommandKind};
use ami_bus::{Bus, NatsBus, StreamSettings, Topology};
use ami_commands::{EngineConfig, RetryPolicy, SegmentLimit};
use ami_hes::auth::TokenSource;
use ami_hes::commands::SigningKeySource;
use ami_hes::proto::v1;
use ami_hes::proto::v1::command_service_client::CommandServiceClient;
use ami_hes::server::{ServerConfig, bind};
use ami_hes::{MasterKeySource, Meter};
use ami_sim::{Command, CommandOutcome, Fleet, SimError};
use tokio::sync::watch;
use tonic::Request;
use zeroize::Zeroizing;

const MASTER: &str = "2222222222222222222222222222222222222222222222222222222222222222";
const OPERATOR: &str = "tok-operator-0123456789";
const READER: &str = "tok-reader-0123456789";
const TOKENS: &str = "otto operator tok-operator-0123456789\nrita reader tok-reader-0123456789";
const ADAPTER: &str = "dcu-9";
const METERS: usize = 100;
const VERSION: &str = "AMI-SIM 3.1.0";

/// A nats-server with JetStream of the test's own, on a free port with its own store.
struct OwnNats {
    port: u16,
    _store: tempfile::TempDir,
    child: std::process::Child,
}

impl OwnNats {
    fn start() -> OwnNats {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .unwrap();
        let store = tempfile::tempdir().unwrap();
        let bin = ["/usr/sbin/nats-server", "/usr/local/bin/nats-server"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists())
            .unwrap_or("nats-server");
        let child = std::process::Command::new(bin)
            .args(["-a", "127.0.0.1", "-p", &port.to_string(), "-js", "-sd"])
            .arg(store.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("nats-server");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "nats-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        OwnNats {
            port,
            _store: store,
            child,
        }
    }
}

impl OwnNats {
    /// Freezes the server (SIGSTOP): connections stay open, nothing is answered.
    fn pause(&self) {
        self.signal("-STOP");
    }

    /// Lets it run again.
    fn resume(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, sig: &str) {
        let ok = std::process::Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill {sig}");
    }
}

impl Drop for OwnNats {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The simulator behind the adapter, counting the firmware commands each meter carries out.
struct CountingLink {
    fleet: Mutex<Fleet>,
    /// Firmware blocks carried out, by meter, in order.
    blocks: Mutex<HashMap<String, Vec<u32>>>,
    /// Activations carried out, by meter.
    activations: Mutex<HashMap<String, u32>>,
    executed: AtomicU32,
    /// While armed, each command carried out is held before its answer goes back to the
    /// adapter, until the gate opens.
    armed: AtomicBool,
    held: AtomicU32,
    open: watch::Sender<bool>,
}

impl CountingLink {
    fn new(meters: usize) -> Arc<CountingLink> {
        let mut fleet = Fleet::new(meters);
        fleet.step(1_763_000_000_000, 10_000);
        Arc::new(CountingLink {
            fleet: Mutex::new(fleet),
            blocks: Mutex::new(HashMap::new()),
            activations: Mutex::new(HashMap::new()),
            executed: AtomicU32::new(0),
            armed: AtomicBool::new(false),
            held: AtomicU32::new(0),
            open: watch::channel(false).0,
        })
    }

    fn meter_ids(&self) -> Vec<String> {
        let f = self.fleet.lock().unwrap();
        f.meters.iter().map(|m| m.id.clone()).collect()
    }

    fn firmware(&self, meter: &str) -> String {
        let f = self.fleet.lock().unwrap();
        f.meter(meter).unwrap().firmware.clone()
    }

    fn blocks_carried_out(&self) -> usize {
        self.blocks.lock().unwrap().values().map(Vec::len).sum()
    }
}

impl MeterLink for CountingLink {
    async fn execute(&self, meter: &str, command: &CommandKind) -> Result<AckResult, LinkError> {
        self.executed.fetch_add(1, Ordering::Relaxed);
        let sim = match command {
            CommandKind::FirmwareBlock {
                version,
                number,
                total,
                data,
            } => {
                self.blocks
                    .lock()
                    .unwrap()
                    .entry(meter.to_owned())
                    .or_default()
                    .push(*number);
                Command::FirmwareBlock {
                    version: version.clone(),
                    number: *number,
                    total: *total,
                    data: data.clone(),
                }
            }
            CommandKind::FirmwareVerify { crc32 } => Command::FirmwareVerify { crc32: *crc32 },
            CommandKind::FirmwareActivate => {
                *self
                    .activations
                    .lock()
                    .unwrap()
                    .entry(meter.to_owned())
                    .or_default() += 1;
                Command::FirmwareActivate
            }
            other => return Err(LinkError::Unsupported(other.name().into())),
        };
        let outcome = self
            .fleet
            .lock()
            .unwrap()
            .command(meter, sim)
            .map_err(|e| match e {
                SimError::FirmwareBlockRefused { expected, .. } => LinkError::Refused {
                    detail: e.to_string(),
                    result: Some(AckResult::Firmware {
                        next_block: expected,
                    }),
                },
                other => LinkError::Refused {
                    detail: other.to_string(),
                    result: None,
                },
            })?;
        // A link that takes a little while, as a PLC link does.
        tokio::time::sleep(Duration::from_millis(2)).await;
        if self.armed.load(Ordering::SeqCst) {
            self.held.fetch_add(1, Ordering::SeqCst);
            let _ = self.open.subscribe().wait_for(|open| *open).await;
        }
        Ok(match outcome {
            CommandOutcome::BlockAccepted { next } => AckResult::Firmware { next_block: next },
            CommandOutcome::Verified => AckResult::Verified,
            CommandOutcome::Activated { version } => AckResult::Activated { version },
            CommandOutcome::Done | CommandOutcome::Frame(_) => AckResult::Done,
        })
    }
}

/// The adapter's downlink as a task, over a state directory.
struct Adapter {
    downlink: Arc<Downlink<CountingLink>>,
    task: tokio::task::JoinHandle<()>,
    _stop: watch::Sender<bool>,
}

impl Adapter {
    fn start(
        bus: &Bus,
        trusted: ed25519_dalek::VerifyingKey,
        link: &Arc<CountingLink>,
        dir: &std::path::Path,
    ) -> Adapter {
        let mut cfg = DownlinkConfig::new(ADAPTER, vec![trusted]);
        cfg.ack_wait = Duration::from_secs(1);
        let downlink = Arc::new(Downlink::open(cfg, Arc::clone(link), dir).unwrap());
        let (stop, rx) = watch::channel(false);
        let task = {
            let (dl, bus) = (Arc::clone(&downlink), bus.clone());
            tokio::spawn(async move { dl.run(bus, rx).await })
        };
        Adapter {
            downlink,
            task,
            _stop: stop,
        }
    }

    /// Kills it where it stands (a crash of the adapter process).
    async fn kill(self) {
        self.task.abort();
        let _ = self.task.await;
    }
}

fn req<T>(msg: T, token: &str) -> Request<T> {
    let mut r = Request::new(msg);
    r.metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    r
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

async fn campaign(
    c: &mut CommandServiceClient<tonic::transport::Channel>,
    id: &str,
) -> v1::Campaign {
    c.get_campaign(req(v1::GetCampaignRequest { id: id.into() }, READER))
        .await
        .unwrap()
        .into_inner()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_campaign_over_100_meters_survives_an_adapter_restart_mid_transfer() {
    let nats = Arc::new(OwnNats::start());
    let bus_nats = NatsBus::connect(
        &format!("nats://127.0.0.1:{}", nats.port),
        Topology::new("fwrestart"),
        1024,
    )
    .await
    .unwrap();
    bus_nats
        .ensure_streams(&StreamSettings {
            max_age: Duration::from_secs(600),
            raw_max_age: Duration::from_secs(600),
            duplicate_window: Duration::from_secs(120),
            ..StreamSettings::default()
        })
        .await
        .unwrap();
    let bus = Bus::Nats(bus_nats);
    let db = common::TestDb::create().await;
    let seed = ed25519_dalek::SigningKey::generate(&mut rand_core::OsRng);
    let mut config = ServerConfig::new(
        "127.0.0.1:0".parse().unwrap(),
        &db.url(),
        MasterKeySource::Inline(Zeroizing::new(MASTER.to_owned())),
        TokenSource::Inline(Zeroizing::new(TOKENS.to_owned())),
    );
    config.max_connections = 4;
    config.bus = Some(bus.clone());
    config.signing_key = Some(SigningKeySource::Inline(Zeroizing::new(hex::encode(
        seed.to_bytes(),
    ))));
    config.commands = fast_engine();
    let bound = bind(config).await.unwrap();
    let addr = bound.local_addr().unwrap();
    let hes = bound.hes();
    let (hes_stop, hes_rx) = tokio::sync::oneshot::channel::<()>();
    let hes_task = tokio::spawn(bound.serve(async {
        let _ = hes_rx.await;
    }));

    let server = Arc::clone(&nats);
    let outcome = tokio::spawn(async move {
        let link = CountingLink::new(METERS);
        let ids = link.meter_ids();
        let meters: Vec<Meter> = ids
            .iter()
            .enumerate()
            .map(|(i, id)| {
                let mut m = common::meter(id, "F1", &format!("T{}", i % 5));
                m.adapter = ADAPTER.into();
                m.concentrator = ADAPTER.into();
                m
            })
            .collect();
        common::register(hes.store.as_ref(), meters).await;
        let channel = tonic::transport::Channel::from_shared(format!("http://{addr}"))
            .unwrap()
            .connect()
            .await
            .unwrap();
        let mut c = CommandServiceClient::new(channel);
        let key = c
            .get_signing_key(req(v1::GetSigningKeyRequest {}, READER))
            .await
            .unwrap()
            .into_inner();
        let trusted =
            ed25519_dalek::VerifyingKey::from_bytes(&key.public_key.try_into().unwrap()).unwrap();
        let state = tempfile::tempdir().unwrap();
        let adapter = Adapter::start(&bus, trusted, &link, state.path());

        // 6 blocks of 200 bytes to each of the 100 meters.
        let image: Vec<u8> = (0..1200u32).map(|i| (i * 13 % 251) as u8).collect();
        let started = c
            .start_campaign(req(
                v1::StartCampaignRequest {
                    image,
                    version: VERSION.into(),
                    block_size: 200,
                    serials: ids.clone(),
                    command_deadline_seconds: 60,
                    max_failures: 10,
                },
                OPERATOR,
            ))
            .await
            .unwrap()
            .into_inner();
        assert_eq!((started.blocks, started.meters.len()), (6, METERS));
        let blocks = started.blocks as usize;

        // Mid-transfer, about a third of the blocks carried out: the meters in hand carry out
        // their blocks, the bus stalls before their answers reach the adapter, the adapter
        // records the answers and cannot publish them; it crashes.
        let t = Instant::now();
        while link.blocks_carried_out() < METERS * blocks / 3 {
            assert!(t.elapsed() < Duration::from_secs(30), "the transfer did not start");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        link.armed.store(true, Ordering::SeqCst);
        let t = Instant::now();
        while link.held.load(Ordering::SeqCst) == 0 {
            assert!(t.elapsed() < Duration::from_secs(10), "no command in hand");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        // The other commands of the batch in hand reach the gate too.
        tokio::time::sleep(Duration::from_millis(200)).await;
        server.pause();
        link.armed.store(false, Ordering::SeqCst);
        link.open.send_replace(true);
        tokio::time::sleep(Duration::from_millis(500)).await;
        adapter.kill().await;
        server.resume();
        let held = link.held.load(Ordering::SeqCst);
        let at_crash = link.blocks_carried_out();
        let mid = campaign(&mut c, &started.id).await;
        assert_eq!(
            v1::CampaignState::try_from(mid.state).unwrap(),
            v1::CampaignState::Running
        );
        assert!(
            at_crash < METERS * blocks,
            "crashed before the transfer ended: {at_crash} blocks"
        );
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert_eq!(link.blocks_carried_out(), at_crash, "nothing while it is down");

        // Started again over the same state directory.
        let adapter = Adapter::start(&bus, trusted, &link, state.path());
        let t = Instant::now();
        let done = loop {
            let r = campaign(&mut c, &started.id).await;
            if v1::CampaignState::try_from(r.state).unwrap() != v1::CampaignState::Running
                || t.elapsed() > Duration::from_secs(45)
            {
                break r;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        };
        assert_eq!(
            v1::CampaignState::try_from(done.state).unwrap(),
            v1::CampaignState::Completed,
            "{:?}",
            done.meters
                .iter()
                .filter(|m| m.phase != v1::MeterPhase::Done as i32)
                .collect::<Vec<_>>()
        );
        assert_eq!((done.done, done.failed), (METERS as u32, 0));
        for id in &ids {
            assert_eq!(link.firmware(id), VERSION, "{id}");
        }
        assert!(done.meters.iter().all(|m| m.version == VERSION));

        // Each meter got each block exactly once, in order: the restart resumed every transfer
        // where it stood, and the blocks carried out before the crash whose answers were never
        // sent came again and were answered from the adapter's memory, not sent to the meter.
        let sent = link.blocks.lock().unwrap().clone();
        let in_order: Vec<u32> = (0..started.blocks).collect();
        for id in &ids {
            assert_eq!(sent.get(id), Some(&in_order), "blocks carried out on {id}");
        }
        let stats = adapter.downlink.stats();
        assert!(
            stats.duplicates.load(Ordering::Relaxed) >= u64::from(held),
            "the {held} commands answered before the crash came again and were answered from memory"
        );
        let activations = link.activations.lock().unwrap().clone();
        for id in &ids {
            assert_eq!(activations.get(id), Some(&1), "activations of {id}");
        }
        eprintln!(
            "blocks at the crash: {at_crash}, {held} of them unanswered; after the restart: executed {}, answered from memory {}",
            stats.executed.load(Ordering::Relaxed),
            stats.duplicates.load(Ordering::Relaxed)
        );
        assert_eq!(stats.journal_errors.load(Ordering::Relaxed), 0);
        adapter.kill().await;
    })
    .await;
    let _ = hes_stop.send(());
    let served = hes_task.await.unwrap();
    db.drop_now().await;
    drop(nats);
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
    served.unwrap();
}
