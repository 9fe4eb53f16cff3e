//! The receiver through a pseudo terminal: the test plays an iM871A dongle on the master end,
//! wrapping the simulator's encrypted wireless M-Bus telegrams in HCI frames, with noise, a
//! corrupted frame, a false start of frame and a device management response in between, and
//! counts what reaches the bus.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use ami_adapter::{Adapter, AdapterConfig};
use ami_bus::{Bus, LocalBus, RawFrame, StreamKind, Topology};
use ami_serial_readers::port::{self, LineSettings};
use ami_serial_readers::testing::Pty;
use ami_wmbus_receiver::hci::{DEVMGMT, HciFrame, SOF, rssi_dbm};
use ami_wmbus_receiver::receiver::{self, ReceiverConfig, WmbusStats};

mod common;

use common::T0;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn encrypted_telegrams_reach_the_bus_and_bad_frames_are_dropped() {
    let (fleet, telegrams) = common::fleet(4, 11);

    let mut pty = Pty::open().unwrap();
    let slave = pty.slave.clone();
    let dir = tempfile::tempdir().unwrap();
    let adapter = Adapter::open(AdapterConfig::new("wmbus-1"), dir.path()).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let stats = Arc::new(WmbusStats::default());
    let rx = {
        let (adapter, stop, stats) = (adapter.clone(), Arc::clone(&stop), Arc::clone(&stats));
        std::thread::spawn(move || {
            let mut link =
                port::open(&slave, LineSettings::DONGLE, Duration::from_millis(100)).unwrap();
            // A dongle configured once with the vendor's tool: the receiver only listens.
            let cfg = ReceiverConfig {
                setup: None,
                idle: Duration::from_millis(600),
                ..ReceiverConfig::default()
            };
            receiver::run(&mut link, &adapter, &cfg, &stats, &stop)
        })
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    while pty.speed().unwrap() != 57_600 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }

    let good: Vec<Vec<u8>> = telegrams
        .iter()
        .enumerate()
        .map(|(i, (_, t))| {
            let mut f = HciFrame::indication(t, Some(0x90 + i as u8), i != 2);
            if i == 3 {
                f.timestamp = Some(123_456);
            }
            f.encode()
        })
        .collect();
    let mut corrupted = good[1].clone();
    corrupted[20] ^= 0x40;
    let pong = HciFrame {
        endpoint: DEVMGMT,
        msg_id: 0x02,
        payload: vec![],
        timestamp: None,
        rssi: None,
        crc: true,
    }
    .encode();

    pty.write(b"\x00\x13 boot noise \xff").unwrap();
    pty.write(&good[0]).unwrap();
    pty.write(&corrupted).unwrap();
    pty.write(&good[1]).unwrap();
    pty.write(&pong).unwrap();
    // A false start of frame that announces more than ever comes, then silence.
    pty.write(&[SOF, 0x22, 0x03, 0xF0, 0x01, 0x02]).unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    for chunk in good[2].chunks(5) {
        pty.write(chunk).unwrap();
    }
    pty.write(&good[3]).unwrap();

    let deadline = Instant::now() + Duration::from_secs(10);
    while stats.telegrams.load(Ordering::Relaxed) < 4 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    stop.store(true, Ordering::Relaxed);
    rx.join().unwrap().unwrap();
    assert_eq!(stats.telegrams.load(Ordering::Relaxed), 4);
    assert_eq!(stats.bad_crc.load(Ordering::Relaxed), 1);
    assert_eq!(
        stats.other_frames.load(Ordering::Relaxed),
        1,
        "the ping response"
    );
    assert!(
        stats.bad_frames.load(Ordering::Relaxed) >= 1,
        "the false start of frame"
    );
    assert_eq!(stats.last_rssi.load(Ordering::Relaxed), 0x93 + 1);

    // Forward to the in-process bus and count exactly what arrived.
    let bus = Arc::new(LocalBus::new(Topology::new("twm"), 1000));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let fwd = {
        let (a, b) = (adapter.clone(), Bus::Local(Arc::clone(&bus)));
        tokio::spawn(async move { a.forward(b, stop_rx).await })
    };
    let consumer = bus.consumer(StreamKind::Raw, "t", None).unwrap();
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while got.len() < 4 && Instant::now() < deadline {
        got.extend(
            consumer
                .fetch(100, Duration::from_millis(200))
                .await
                .unwrap(),
        );
    }
    got.extend(
        consumer
            .fetch(100, Duration::from_millis(200))
            .await
            .unwrap(),
    );
    let _ = stop_tx.send(true);
    fwd.await.unwrap();
    assert_eq!(got.len(), 4);
    let store = ami_crypto::MemoryKeyStore::new();
    for (meter, role, key) in fleet.key_entries() {
        store.insert(&meter, role, key);
    }
    let mut crypto = ami_crypto::CryptoCtx::new(Arc::new(store));
    for (i, (d, (meter, t))) in got.iter().zip(&telegrams).enumerate() {
        assert_eq!(d.message.subject, "twm.raw.wmbus.wmbus-1");
        let f = RawFrame::from_message(&d.message).unwrap();
        assert_eq!(f.rssi_dbm, Some(rssi_dbm(0x90 + i as u8)), "telegram {i}");
        assert_eq!(f.protocol, "wmbus");
        assert_eq!(f.meter_hint.as_deref(), Some(meter.as_str()));
        assert_eq!(f.data.as_ref(), t.as_slice(), "the telegram byte for byte");
        // What went on the bus is what the mbus decoder reads: deciphered with the meter's
        // key, it names the meter and gives its registers.
        let decoded = ami_mbus::decode(&f.data, T0, &mut crypto).unwrap();
        assert_eq!(decoded.meter.as_deref(), Some(meter.as_str()));
        assert!(decoded.readings.len() >= 6, "{decoded:?}");
    }
}
