//! What the command tests share: a NATS bus under a subject root of the test's own, a
//! PostgreSQL database of the test's own, the simulator as a meter link, and an adapter
//! downlink that can be stopped and started again.

use std::future::Future;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ami_adapter::fleet_link::FleetLink;
use ami_adapter::{Downlink, DownlinkConfig, LinkError, MeterLink};
use ami_bus::command::{AckResult, CommandKind};
use ami_bus::{Bus, NatsBus, StreamSettings, Topology};
use ami_commands::{
    CommandStore, Engine, EngineConfig, MemoryStore, PgStore, Principal, RetryPolicy, Role,
    SegmentLimit,
};
use ami_sim::Fleet;
use ed25519_dalek::{SigningKey, VerifyingKey};
use sqlx::{Connection, Executor};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// The shared test server (`AMI_TEST_NATS_URL`, default 127.0.0.1:4222).
pub fn nats_url() -> String {
    std::env::var("AMI_TEST_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into())
}

fn pg_admin_url() -> String {
    std::env::var("AMI_TEST_PG_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
}

/// A name no other test or run uses (subject roots, databases).
pub fn unique(tag: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "c{}x{}x{:x}{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed),
        nanos & 0xffff,
        tag.replace(|c: char| !c.is_ascii_alphanumeric(), "")
    )
}

/// A NATS bus with fresh streams under a root of its own.
pub async fn nats_bus(tag: &str) -> NatsBus {
    let bus = NatsBus::connect(&nats_url(), Topology::new(&unique(tag)), 1024)
        .await
        .expect("nats-server at AMI_TEST_NATS_URL");
    bus.ensure_streams(&StreamSettings {
        max_age: Duration::from_secs(600),
        raw_max_age: Duration::from_secs(600),
        duplicate_window: Duration::from_secs(120),
        ..StreamSettings::default()
    })
    .await
    .expect("streams");
    bus
}

/// A nats-server with JetStream of the test's own (on a free port, with its own store), for
/// outages: stopped like a crash and started again on the same port and store.
pub struct OwnNats {
    port: u16,
    store: tempfile::TempDir,
    child: Option<std::process::Child>,
}

impl OwnNats {
    pub fn start() -> OwnNats {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .unwrap();
        let mut n = OwnNats {
            port,
            store: tempfile::tempdir().unwrap(),
            child: None,
        };
        n.restart();
        n
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn restart(&mut self) {
        self.stop();
        let bin = [
            "/usr/sbin/nats-server",
            "/usr/local/bin/nats-server",
            "/usr/bin/nats-server",
        ]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
        .unwrap_or("nats-server");
        let child = std::process::Command::new(bin)
            .args([
                "-a",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-js",
                "-sd",
            ])
            .arg(self.store.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("nats-server on the PATH");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "nats-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for OwnNats {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A PostgreSQL database of its own, dropped by [`TestDb::drop_now`].
pub struct TestDb {
    name: String,
}

impl TestDb {
    pub async fn create() -> Self {
        let name = format!("ami_cmd_{}", unique("pg").to_lowercase());
        let mut admin = sqlx::PgConnection::connect(&format!("{}/postgres", pg_admin_url()))
            .await
            .expect("PostgreSQL at AMI_TEST_PG_URL");
        admin
            .execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .await
            .unwrap();
        admin.close().await.unwrap();
        TestDb { name }
    }

    pub fn url(&self) -> String {
        format!("{}/{}", pg_admin_url(), self.name)
    }

    pub async fn drop_now(self) {
        let mut admin = sqlx::PgConnection::connect(&format!("{}/postgres", pg_admin_url()))
            .await
            .unwrap();
        admin
            .execute(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            )))
            .await
            .unwrap();
        admin.close().await.unwrap();
    }
}

/// Runs `check` on a fresh in-memory store.
pub async fn on_memory<F, Fut>(check: F)
where
    F: FnOnce(MemoryStore) -> Fut,
    Fut: Future<Output = ()>,
{
    check(MemoryStore::new()).await;
}

/// Runs `check` on a migrated PostgreSQL store in a database of its own, dropped even when
/// the check panics.
pub async fn on_postgres<F, Fut>(check: F)
where
    F: FnOnce(PgStore) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let db = TestDb::create().await;
    let store = PgStore::connect(&db.url(), 4).await.unwrap();
    store.migrate().await.unwrap();
    let outcome = tokio::spawn(check(store.clone())).await;
    store.close().await;
    db.drop_now().await;
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}

/// `mod $check { memory, postgres }`: a generic check over a store, once per backend.
macro_rules! both_stores {
    ($check:ident) => {
        mod $check {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn memory() {
                crate::support::on_memory(super::$check).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                crate::support::on_postgres(super::$check).await;
            }
        }
    };
}
pub(crate) use both_stores;

/// The principals of the tests.
pub fn operator() -> Principal {
    Principal::new("olga", &[Role::Operator])
}

pub fn supervisor() -> Principal {
    Principal::new("sam", &[Role::Supervisor])
}

pub fn reader() -> Principal {
    Principal::new("rita", &[Role::Reader])
}

/// An engine config with short timers for tests.
pub fn fast_config() -> EngineConfig {
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

/// The simulator behind an adapter: each meter command is a simulator command at the fleet's
/// present time.
pub struct SimLink {
    /// The meters; connect and disconnect answers carry the relay state unless the link was
    /// made `without_relay_state` (then the head-end has to read the meter to learn it).
    pub link: FleetLink,
    /// Answers still to lose (carried out on the meter, reported unreachable).
    pub lose: AtomicU32,
    /// Commands carried out.
    pub executed: AtomicU32,
    /// Commands to carry out before the link hangs for good (0: never), its answer never
    /// coming: the adapter is then stuck with a command carried out and not acknowledged.
    pub hang_after: AtomicU32,
}

impl SimLink {
    pub fn new(meters: usize) -> Arc<SimLink> {
        let mut fleet = Fleet::new(meters);
        fleet.step(1_763_000_000_000, 10_000);
        Arc::new(SimLink {
            link: FleetLink::new(Arc::new(Mutex::new(fleet))),
            lose: AtomicU32::new(0),
            executed: AtomicU32::new(0),
            hang_after: AtomicU32::new(0),
        })
    }

    pub fn meter_ids(&self) -> Vec<String> {
        self.link
            .fleet()
            .lock()
            .unwrap()
            .meters
            .iter()
            .map(|m| m.id.clone())
            .collect()
    }

    pub fn relay_closed(&self, meter: &str) -> bool {
        self.link
            .fleet()
            .lock()
            .unwrap()
            .meter(meter)
            .unwrap()
            .relay_closed
    }

    pub fn firmware(&self, meter: &str) -> String {
        self.link
            .fleet()
            .lock()
            .unwrap()
            .meter(meter)
            .unwrap()
            .firmware
            .clone()
    }
}

impl MeterLink for SimLink {
    async fn execute(&self, meter: &str, command: &CommandKind) -> Result<AckResult, LinkError> {
        self.executed.fetch_add(1, Ordering::Relaxed);
        let result = self.link.carry_out(meter, command)?;
        if self
            .hang_after
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
            == Ok(1)
        {
            std::future::pending::<()>().await;
        }
        if self
            .lose
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
            .is_ok()
        {
            return Err(LinkError::Unreachable(
                "the meter's answer was lost on the PLC link".into(),
            ));
        }
        Ok(result)
    }
}

/// An adapter downlink running as a task.
pub struct RunningDownlink {
    pub downlink: Arc<Downlink<SimLink>>,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl RunningDownlink {
    pub fn start(bus: &Bus, adapter: &str, trusted: VerifyingKey, link: &Arc<SimLink>) -> Self {
        let mut cfg = DownlinkConfig::new(adapter, vec![trusted]);
        cfg.ack_wait = Duration::from_secs(1);
        let downlink = Arc::new(Downlink::new(cfg, Arc::clone(link)));
        let (stop, rx) = watch::channel(false);
        let task = {
            let (dl, bus) = (Arc::clone(&downlink), bus.clone());
            tokio::spawn(async move { dl.run(bus, rx).await })
        };
        RunningDownlink {
            downlink,
            stop,
            task,
        }
    }

    /// Stops it cleanly.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }

    /// Kills it where it stands (a crash).
    pub async fn kill(self) {
        self.task.abort();
        let _ = self.task.await;
    }
}

/// An engine driver running as a task.
pub struct RunningEngine {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl RunningEngine {
    pub fn start<S: CommandStore>(engine: &Engine<S>) -> Self {
        let (stop, rx) = watch::channel(false);
        let e = engine.clone();
        let task = tokio::spawn(async move { e.run(rx).await.expect("engine driver") });
        RunningEngine { stop, task }
    }

    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

/// A fresh Ed25519 key.
pub fn key() -> SigningKey {
    SigningKey::generate(&mut rand_core::OsRng)
}

/// Polls `check` until it holds or `within` passes.
pub async fn eventually<F, Fut>(within: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + within;
    loop {
        if check().await {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
