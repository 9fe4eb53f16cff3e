//! The DSMR P1 reader through a pseudo terminal: the test plays several meters' ports on
//! the master end with the simulator's telegrams, noise, a torn and a corrupted telegram in
//! between, and counts what reaches the bus.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use ami_bus::RawFrame;
use ami_serial_readers::p1::{self, P1Config, P1Stats};
use ami_serial_readers::port::{self, LineSettings};
use ami_sim::Protocol;
use support::{Pty, T0, adapter, fleet, forward_all, local_bus};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn telegrams_reach_the_bus_and_bad_ones_are_counted() {
    let f = fleet(Protocol::Dsmr, 3);
    let good: Vec<Vec<u8>> = (0..6)
        .map(|i| ami_sim::dsmr::telegram(&f.meters[i % 3], T0 + i as i64 * 1000).into_bytes())
        .collect();
    let mut pty = Pty::open().unwrap();
    let slave = pty.slave.clone();
    let dir = tempfile::tempdir().unwrap();
    let adapter = adapter("p1-7", dir.path());
    let stop = Arc::new(AtomicBool::new(false));
    let stats = Arc::new(P1Stats::default());
    let reader = {
        let (adapter, stop, stats) = (adapter.clone(), Arc::clone(&stop), Arc::clone(&stats));
        std::thread::spawn(move || {
            let mut link =
                port::open(&slave, LineSettings::P1_V4, Duration::from_millis(100)).unwrap();
            let cfg = P1Config {
                idle: Duration::from_millis(800),
                ..P1Config::default()
            };
            p1::run(&mut link, &adapter, &cfg, &stats, &stop)
        })
    };
    // The reader has the port once its settings show.
    let deadline = Instant::now() + Duration::from_secs(5);
    while pty.speed().unwrap() != 115_200 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(pty.speed().unwrap(), 115_200);

    let mut corrupted = good[1].clone();
    let i = corrupted.iter().position(|&b| b == b'*').unwrap() - 1;
    corrupted[i] = if corrupted[i] == b'0' { b'1' } else { b'0' };
    let torn = &good[2][..good[2].len() / 2];

    pty.write(b"\x00\xff line noise at power-up \r\n").unwrap();
    pty.write(&good[0]).unwrap();
    pty.write(&corrupted).unwrap();
    pty.write(&good[1]).unwrap();
    pty.write(torn).unwrap();
    pty.write(b"\r\n").unwrap();
    pty.write(&good[2]).unwrap();
    // Sent in pieces, as a UART delivers them.
    for chunk in good[3].chunks(7) {
        pty.write(chunk).unwrap();
    }
    pty.write(&good[4]).unwrap();
    // A telegram cut off by silence (the cable pulled), then the last one.
    pty.write(&good[5][..100]).unwrap();
    std::thread::sleep(Duration::from_millis(2000));
    pty.write(&good[5]).unwrap();

    let deadline = Instant::now() + Duration::from_secs(10);
    while stats.telegrams.load(Ordering::Relaxed) < 6 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    stop.store(true, Ordering::Relaxed);
    reader.join().unwrap().unwrap();

    assert_eq!(stats.telegrams.load(Ordering::Relaxed), 6);
    assert_eq!(stats.bad_crc.load(Ordering::Relaxed), 1);
    assert_eq!(
        stats.torn.load(Ordering::Relaxed),
        2,
        "one by a new '/', one by silence"
    );
    assert_eq!(stats.malformed.load(Ordering::Relaxed), 0);
    assert!(stats.noise_bytes.load(Ordering::Relaxed) >= 20);

    let bus = local_bus("tp1");
    let msgs = forward_all(&adapter, &bus).await;
    assert_eq!(msgs.len(), 6, "exactly the good telegrams");
    for (m, t) in msgs.iter().zip(&good) {
        assert_eq!(m.subject, "tp1.raw.dsmr.p1-7");
        let frame = RawFrame::from_message(m).unwrap();
        assert_eq!(frame.protocol, "dsmr");
        assert_eq!(frame.data.as_ref(), t.as_slice());
        assert!(ami_dsmr::decode(&frame.data, T0).is_ok());
    }
}

#[test]
fn dsmr2_line_runs_at_9600() {
    let pty = Pty::open().unwrap();
    let link = port::open(&pty.slave, LineSettings::P1_V2, Duration::from_millis(100)).unwrap();
    assert_eq!(pty.speed().unwrap(), 9600);
    drop(link);
}
