//! The receiver configuring a dongle through a pseudo terminal. The test plays an iM871A on
//! the master end: it checks every request the receiver sends byte for byte (ping, device
//! information, `SET_CONFIG` with the link mode, device mode "other" and RSSI and time stamp
//! attachment), answers as real dongles do (CRC-closed frames, empty `PING_RSP` and
//! `SET_CONFIG_RSP`), slips telegrams in between the answers, then sends telegrams with RSSI
//! and finds the RSSI in dBm in a real NATS JetStream (`Ami-Rssi-Dbm`, at 127.0.0.1:4222 or
//! `AMI_TEST_NATS_URL`, under a subject root of the test's own) and in the per-meter table.
//! Dongles that refuse, stay silent, answer nonsense or cannot do the link mode end the
//! receiver with the typed error, within the timeouts.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use ami_adapter::{Adapter, AdapterConfig};
use ami_bus::{Bus, ConsumerSettings, NatsBus, RawFrame, StreamKind, StreamSettings, Topology};
use ami_serial_readers::port::{self, LineSettings};
use ami_wmbus_receiver::config::{
    ConfigBlock, DongleSettings, GET_DEVICEINFO_RSP, LinkMode, PING_RSP, SET_CONFIG_RSP,
};
use ami_wmbus_receiver::hci::HciFrame;
use ami_wmbus_receiver::receiver::{self, CrcPolicy, ReceiverConfig, ReceiverError, WmbusStats};
use ami_wmbus_receiver::setup::{ConfigError, SetupConfig, Step};

mod common;

use common::Dongle;

const PING: [u8; 4] = [0xA5, 0x01, 0x01, 0x00];
const GET_DEVICEINFO: [u8; 4] = [0xA5, 0x01, 0x0F, 0x00];
/// `SET_CONFIG_REQ`, 7 bytes: RAM only; IIFlag1 0x03 (device mode, link mode): other (0x00),
/// C1 and T1 at once (0x0A); IIFlag2 0x30 (RSSI, time stamp): both on.
const SET_CONFIG_C1_T1: [u8; 11] = [
    0xA5, 0x01, 0x03, 0x07, 0x00, 0x03, 0x00, 0x0A, 0x30, 0x01, 0x01,
];

/// `GET_DEVICEINFO_RSP` payload: iM871A, device mode other, firmware `fw`, HCI 0x16, id.
fn device_info(fw: u8) -> [u8; 8] {
    [0x33, 0x00, fw, 0x16, 0x78, 0x56, 0x34, 0x12]
}

fn nats_url() -> String {
    std::env::var("AMI_TEST_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into())
}

/// A subject root no other test or run uses.
fn unique_root() -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!(
        "t{}x{}x{:x}wmcfg",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed),
        nanos & 0xffffff
    )
}

fn setup(link_mode: LinkMode, timeout_ms: u64) -> SetupConfig {
    SetupConfig {
        settings: DongleSettings {
            link_mode,
            save: false,
        },
        response_timeout: Duration::from_millis(timeout_ms),
        attempts: 3,
    }
}

/// Runs the receiver on the dongle's slave end in a thread; its result comes on the channel.
fn spawn_receiver(
    dongle: &Dongle,
    adapter: &Adapter,
    cfg: ReceiverConfig,
    stats: &Arc<WmbusStats>,
    stop: &Arc<AtomicBool>,
) -> mpsc::Receiver<Result<(), ReceiverError>> {
    let (tx, rx) = mpsc::channel();
    let slave = dongle.pty.slave.clone();
    let (adapter, stats, stop) = (adapter.clone(), Arc::clone(stats), Arc::clone(stop));
    std::thread::spawn(move || {
        let mut link =
            port::open(&slave, LineSettings::DONGLE, Duration::from_millis(100)).unwrap();
        let _ = tx.send(receiver::run(&mut link, &adapter, &cfg, &stats, &stop));
    });
    rx
}

fn indication(telegram: &[u8], rssi: u8) -> Vec<u8> {
    HciFrame::indication(telegram, Some(rssi), true).encode()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configures_the_dongle_and_carries_rssi_to_nats() {
    let (_fleet, telegrams) = common::fleet(5, 23);
    let root = unique_root();
    let nats = NatsBus::connect(&nats_url(), Topology::new(&root), 1000)
        .await
        .expect("nats-server with JetStream at the test URL");
    nats.ensure_streams(&StreamSettings {
        raw_max_age: Duration::from_secs(600),
        max_age: Duration::from_secs(600),
        ..StreamSettings::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let adapter = Adapter::open(AdapterConfig::new("wmbus-cfg"), dir.path()).unwrap();
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let fwd = {
        let (a, b) = (adapter.clone(), Bus::Nats(nats.clone()));
        tokio::spawn(async move { a.forward(b, stop_rx).await })
    };

    let mut dongle = Dongle::new();
    let stop = Arc::new(AtomicBool::new(false));
    let stats = Arc::new(WmbusStats::default());
    let rx = spawn_receiver(
        &dongle,
        &adapter,
        ReceiverConfig {
            setup: Some(setup(LinkMode::C1T1, 400)),
            crc: CrcPolicy::Auto,
            idle: Duration::from_millis(300),
            signal_log_interval: Duration::from_secs(3600),
        },
        &stats,
        &stop,
    );
    dongle.wait_open();

    // (telegram, raw RSSI, the dBm expected: 8/15 * raw - 380/3, rounded)
    let plan: Vec<(&Vec<u8>, u8, i16)> = vec![
        (&telegrams[0].1, 50, -100),
        (&telegrams[1].1, 200, -20),
        (&telegrams[2].1, 150, -47),
        (&telegrams[3].1, 100, -73),
        (&telegrams[0].1, 230, -4),
    ];

    // Ping: the first goes unanswered, the receiver asks again.
    let t = Duration::from_secs(5);
    assert_eq!(dongle.request(t).unwrap(), PING);
    assert_eq!(dongle.request(t).unwrap(), PING, "the ping is sent again");
    // The radio is on already: a telegram comes before the answer.
    dongle.send(&indication(plan[0].0, plan[0].1));
    dongle.send(&Dongle::answer(PING_RSP, &[]));

    assert_eq!(dongle.request(t).unwrap(), GET_DEVICEINFO);
    // The answer and a telegram in one write (one read on the receiver's side).
    let mut burst = Dongle::answer(GET_DEVICEINFO_RSP, &device_info(0x15));
    burst.extend(indication(plan[1].0, plan[1].1));
    dongle.send(&burst);

    let set = dongle.request(t).unwrap();
    assert_eq!(set, SET_CONFIG_C1_T1);
    assert_eq!(set[4], 0x00, "RAM only");
    let block = ConfigBlock::decode(&set[5..]).unwrap();
    assert_eq!(block, ConfigBlock::receiver(LinkMode::C1T1));
    let mut with_ts = HciFrame::indication(plan[2].0, Some(plan[2].1), true);
    with_ts.timestamp = Some(0x0012_3456);
    dongle.send(&with_ts.encode());
    dongle.send(&Dongle::answer(SET_CONFIG_RSP, &[]));
    // (Frames in the same read as the last answer are split before the CRC rule changes.)
    std::thread::sleep(Duration::from_millis(200));

    // Configured. Every answer carried a CRC, so from now on a frame without one is dropped.
    dongle.send(&indication(plan[3].0, plan[3].1));
    dongle.send(&HciFrame::indication(&telegrams[4].1, Some(0x80), false).encode());
    dongle.send(&indication(plan[4].0, plan[4].1));

    let deadline = Instant::now() + Duration::from_secs(10);
    while stats.telegrams.load(Ordering::Relaxed) < 5 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(
        dongle.request(Duration::from_millis(200)).is_none(),
        "nothing more is asked"
    );
    stop.store(true, Ordering::Relaxed);
    rx.recv_timeout(Duration::from_secs(5)).unwrap().unwrap();
    assert_eq!(stats.telegrams.load(Ordering::Relaxed), 5);
    assert_eq!(stats.configured.load(Ordering::Relaxed), 1);
    assert_eq!(
        stats.bad_frames.load(Ordering::Relaxed),
        1,
        "the frame without CRC"
    );
    let info = stats.dongle.lock().unwrap().unwrap();
    assert_eq!((info.module(), info.firmware), ("iM871A".to_string(), 0x15));
    assert_eq!(info.device_id, 0x1234_5678);

    // The per-meter table: last dBm and count per meter; the dropped one is not in it.
    let m = |i: usize| telegrams[i].0.as_str();
    let s0 = stats.meter_signal(m(0)).unwrap();
    assert_eq!((s0.last_dbm, s0.telegrams), (Some(-4), 2));
    for (i, dbm) in [(1, -20), (2, -47), (3, -73)] {
        let s = stats.meter_signal(m(i)).unwrap();
        assert_eq!((s.last_dbm, s.telegrams), (Some(dbm), 1), "meter {i}");
    }
    assert_eq!(stats.meter_signal(m(4)), None);
    assert_eq!(stats.signal_table().len(), 4);

    // What JetStream stored: every telegram once, in order, with its RSSI in the header.
    let consumer = Bus::Nats(nats.clone())
        .consumer(StreamKind::Raw, &ConsumerSettings::new("count"))
        .await
        .unwrap();
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while got.len() < 5 && Instant::now() < deadline {
        for d in consumer
            .fetch(100, Duration::from_millis(300))
            .await
            .unwrap()
        {
            let (msg, ack) = d.into_parts();
            ack.ack().await.unwrap();
            got.push(msg);
        }
    }
    for d in consumer
        .fetch(100, Duration::from_millis(500))
        .await
        .unwrap()
    {
        got.push(d.message);
    }
    let _ = stop_tx.send(true);
    fwd.await.unwrap();
    nats.delete_streams().await.unwrap();
    assert_eq!(got.len(), 5, "each telegram once");
    for (i, (msg, (telegram, _raw, dbm))) in got.iter().zip(&plan).enumerate() {
        assert_eq!(msg.subject, format!("{root}.raw.wmbus.wmbus-cfg"));
        let want = dbm.to_string();
        assert_eq!(
            msg.headers.get("Ami-Rssi-Dbm"),
            Some(want.as_str()),
            "telegram {i}"
        );
        let f = RawFrame::from_message(msg).unwrap();
        assert_eq!(f.rssi_dbm, Some(*dbm), "telegram {i}");
        assert_eq!(f.data.as_ref(), telegram.as_slice(), "telegram {i}");
        assert_eq!(f.protocol, "wmbus");
        assert_eq!(
            f.meter_hint.as_deref(),
            Some(telegrams[[0, 1, 2, 3, 0][i]].0.as_str())
        );
    }
}

/// Answers ping and device information, then `answer` to `SET_CONFIG`; returns what the
/// receiver ended with and how long after the `SET_CONFIG` request.
fn run_until_set_config(
    fw: u8,
    link_mode: LinkMode,
    answer: Option<&[u8]>,
) -> (Result<(), ReceiverError>, Duration, Dongle) {
    let dir = tempfile::tempdir().unwrap();
    let adapter = Adapter::open(AdapterConfig::new("wmbus-no"), dir.path()).unwrap();
    let mut dongle = Dongle::new();
    let stop = Arc::new(AtomicBool::new(false));
    let stats = Arc::new(WmbusStats::default());
    let rx = spawn_receiver(
        &dongle,
        &adapter,
        ReceiverConfig {
            setup: Some(setup(link_mode, 300)),
            ..ReceiverConfig::default()
        },
        &stats,
        &stop,
    );
    dongle.wait_open();
    let t = Duration::from_secs(5);
    assert_eq!(dongle.request(t).unwrap(), PING);
    dongle.send(&Dongle::answer(PING_RSP, &[]));
    assert_eq!(dongle.request(t).unwrap(), GET_DEVICEINFO);
    dongle.send(&Dongle::answer(GET_DEVICEINFO_RSP, &device_info(fw)));
    let asked = Instant::now();
    if let Some(a) = answer {
        let set = dongle.request(t).unwrap();
        assert_eq!(&set[..4], [0xA5, 0x01, 0x03, 0x07]);
        assert_eq!(set[7], link_mode.code());
        dongle.send(&Dongle::answer(SET_CONFIG_RSP, a));
    }
    let result = rx.recv_timeout(Duration::from_secs(10)).expect("no hang");
    stop.store(true, Ordering::Relaxed);
    (result, asked.elapsed(), dongle)
}

#[test]
fn a_dongle_that_refuses_set_config_is_a_typed_error() {
    let (result, took, _) = run_until_set_config(0x15, LinkMode::T1, Some(&[0x01]));
    let err = result.unwrap_err();
    let ReceiverError::Config(e) = &err else {
        panic!("{err}")
    };
    assert!(
        matches!(
            e,
            ConfigError::Refused {
                step: Step::SetConfig,
                status: 0x01,
                ..
            }
        ),
        "{e}"
    );
    assert!(e.is_fatal());
    assert_eq!(
        err.to_string(),
        "configuring the dongle: the dongle refused SET_CONFIG_REQ: status 0x01 (operation failed)"
    );
    assert!(took < Duration::from_secs(2), "{took:?}");
}

#[test]
fn c1_t1_on_old_firmware_is_refused_before_asking() {
    let (result, took, mut dongle) = run_until_set_config(0x13, LinkMode::C1T1, None);
    let err = result.unwrap_err();
    assert!(
        matches!(
            err,
            ReceiverError::Config(ConfigError::Unsupported {
                link_mode: LinkMode::C1T1,
                ..
            })
        ),
        "{err}"
    );
    assert!(err.to_string().contains("iM871A firmware 1.3"), "{err}");
    assert!(took < Duration::from_secs(2), "{took:?}");
    assert_eq!(
        dongle.request(Duration::from_millis(300)),
        None,
        "no SET_CONFIG was sent"
    );
}

#[test]
fn a_silent_dongle_is_a_typed_error_within_the_timeouts() {
    let dir = tempfile::tempdir().unwrap();
    let adapter = Adapter::open(AdapterConfig::new("wmbus-mute"), dir.path()).unwrap();
    let mut dongle = Dongle::new();
    let stop = Arc::new(AtomicBool::new(false));
    let stats = Arc::new(WmbusStats::default());
    let rx = spawn_receiver(
        &dongle,
        &adapter,
        ReceiverConfig {
            setup: Some(setup(LinkMode::C1T1, 250)),
            ..ReceiverConfig::default()
        },
        &stats,
        &stop,
    );
    dongle.wait_open();
    let started = Instant::now();
    let t = Duration::from_secs(5);
    for _ in 0..3 {
        assert_eq!(dongle.request(t).unwrap(), PING);
    }
    let result = rx.recv_timeout(Duration::from_secs(5)).expect("no hang");
    let took = started.elapsed();
    let err = result.unwrap_err();
    let ReceiverError::Config(e) = &err else {
        panic!("{err}")
    };
    assert!(
        matches!(
            e,
            ConfigError::Silent {
                step: Step::Ping,
                attempts: 3,
                ..
            }
        ),
        "{e}"
    );
    assert!(!e.is_fatal(), "silence may pass: the port is opened again");
    assert_eq!(
        e.to_string(),
        "the dongle did not answer PING_REQ: 3 attempts, 250ms each"
    );
    assert!(took < Duration::from_secs(3), "{took:?}");
    assert_eq!(dongle.request(Duration::from_millis(200)), None);
    assert_eq!(stats.configured.load(Ordering::Relaxed), 0);
}

#[test]
fn malformed_device_information_is_a_typed_error() {
    let dir = tempfile::tempdir().unwrap();
    let adapter = Adapter::open(AdapterConfig::new("wmbus-bad"), dir.path()).unwrap();
    let mut dongle = Dongle::new();
    let stop = Arc::new(AtomicBool::new(false));
    let stats = Arc::new(WmbusStats::default());
    let rx = spawn_receiver(
        &dongle,
        &adapter,
        ReceiverConfig {
            setup: Some(setup(LinkMode::C1, 250)),
            ..ReceiverConfig::default()
        },
        &stats,
        &stop,
    );
    dongle.wait_open();
    let t = Duration::from_secs(5);
    assert_eq!(dongle.request(t).unwrap(), PING);
    dongle.send(&Dongle::answer(PING_RSP, &[]));
    for _ in 0..3 {
        assert_eq!(dongle.request(t).unwrap(), GET_DEVICEINFO);
        dongle.send(&Dongle::answer(GET_DEVICEINFO_RSP, &[0x33, 0x00, 0x15]));
    }
    let err = rx
        .recv_timeout(Duration::from_secs(5))
        .expect("no hang")
        .unwrap_err();
    assert!(
        matches!(
            err,
            ReceiverError::Config(ConfigError::Malformed {
                step: Step::DeviceInfo,
                attempts: 3,
                ..
            })
        ),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains("device information: 3 bytes, at least 4 expected"),
        "{err}"
    );
}
