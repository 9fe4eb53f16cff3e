//! IEC 62056-21 mode C through a pseudo terminal: the test plays the meter on the master
//! end with the simulator's readout, the reader runs on the slave end as on a real port.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use ami_bus::RawFrame;
use ami_serial_readers::iec::{self, IecError, ModeCConfig, Phase};
use ami_serial_readers::port::{self, LineSettings};
use ami_sim::Protocol;
use support::{Pty, T0, adapter, fleet, forward_all, local_bus};

/// The simulator's readout of its first IEC meter, split into identification line (with CR
/// LF) and data message.
fn sim_readout() -> (Vec<u8>, Vec<u8>, Vec<u8>, String) {
    let f = fleet(Protocol::Iec62056_21, 1);
    let m = &f.meters[0];
    let whole = ami_sim::iec62056_21::readout(m, T0);
    let lf = whole.iter().position(|&b| b == b'\n').unwrap();
    (
        whole[..=lf].to_vec(),
        whole[lf + 1..].to_vec(),
        whole,
        m.id.clone(),
    )
}

fn ends_with_crlf(b: &[u8]) -> bool {
    b.ends_with(b"\r\n")
}

fn fast() -> ModeCConfig {
    ModeCConfig {
        ident_timeout: Duration::from_millis(1500),
        data_timeout: Duration::from_millis(1500),
        retry_pause: Duration::from_millis(50),
        ..ModeCConfig::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mode_c_switches_baud_and_the_readout_reaches_the_bus_intact() {
    let (ident, data, whole, serial) = sim_readout();
    let mut pty = Pty::open().unwrap();
    let slave = pty.slave.clone();
    let dir = tempfile::tempdir().unwrap();
    let adapter = adapter("probe-1", dir.path());
    let stop = Arc::new(AtomicBool::new(false));

    let reader = {
        let adapter = adapter.clone();
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            let mut link =
                port::open(&slave, LineSettings::IEC_SIGN_ON, Duration::from_secs(1)).unwrap();
            let stats = iec::IecStats::default();
            let cfg = ModeCConfig {
                address: "20000001".into(),
                ..fast()
            };
            iec::run(
                &mut link,
                &adapter,
                &cfg,
                Duration::from_secs(3600),
                Some("20000001"),
                &stats,
                &stop,
            )
            .unwrap();
            stats
        })
    };

    // The meter: request at 300 7E1.
    let req = pty.read_until(Duration::from_secs(5), ends_with_crlf);
    assert_eq!(req, b"/?20000001!\r\n");
    assert_eq!(pty.speed().unwrap(), 300, "sign-on at 300 baud");
    pty.write(&ident).unwrap();
    let ack = pty.read_until(Duration::from_secs(5), ends_with_crlf);
    assert_eq!(
        ack, b"\x06050\r\n",
        "option select for 9600 baud, data readout"
    );
    // A real meter's answer at 9600 is noise to a reader still at 300: this one sends the
    // data message only once the reader's line is at 9600, and noise otherwise.
    let speed = pty.wait_speed(9600, Duration::from_secs(2)).unwrap();
    assert_eq!(
        speed, 9600,
        "the reader switched the line to the meter's baud rate"
    );
    stop.store(true, Ordering::Relaxed);
    pty.write(&data).unwrap();

    let stats = reader.join().unwrap();
    assert_eq!(stats.readouts.load(Ordering::Relaxed), 1);
    assert_eq!(stats.failed.load(Ordering::Relaxed), 0);

    let bus = local_bus("tiec");
    let msgs = forward_all(&adapter, &bus).await;
    assert_eq!(msgs.len(), 1);
    assert_eq!(msgs[0].subject, "tiec.raw.iec62056-21.probe-1");
    let frame = RawFrame::from_message(&msgs[0]).unwrap();
    assert_eq!(frame.protocol, "iec62056-21");
    assert_eq!(frame.meter_hint.as_deref(), Some("20000001"));
    assert_eq!(
        frame.data.as_ref(),
        whole.as_slice(),
        "the readout byte for byte"
    );
    let decoded = ami_iec62056_21::decode(&frame.data, T0).unwrap();
    assert_eq!(decoded.meter.as_deref(), Some(serial.as_str()));
    assert!(!decoded.readings.is_empty());
}

/// Plays one session: answers the request with `ident`, the option select with `data`.
fn meter_session(pty: &mut Pty, ident: &[u8], data: &[u8]) {
    let req = pty.read_until(Duration::from_secs(5), ends_with_crlf);
    assert!(req.starts_with(b"/?"), "request, got {req:?}");
    pty.write(ident).unwrap();
    let ack = pty.read_until(Duration::from_secs(5), ends_with_crlf);
    assert_eq!(ack.first(), Some(&iec::ACK), "option select, got {ack:?}");
    pty.wait_speed(9600, Duration::from_secs(2)).unwrap();
    pty.write(data).unwrap();
}

#[test]
fn bad_bcc_fails_the_session_and_the_retry_reads_it() {
    let (ident, data, whole, _) = sim_readout();
    let mut pty = Pty::open().unwrap();
    let slave = pty.slave.clone();
    let reader = std::thread::spawn(move || {
        let mut link =
            port::open(&slave, LineSettings::IEC_SIGN_ON, Duration::from_secs(1)).unwrap();
        let first = iec::read_mode_c(&mut link, &fast());
        let second = iec::read_with_retries(
            &mut link,
            &ModeCConfig {
                retries: 1,
                ..fast()
            },
        );
        (first, second, link)
    });
    // A corrupted value: the BCC no longer matches.
    let mut bad = data.clone();
    let i = bad.iter().position(|&b| b == b'(').unwrap() + 1;
    bad[i] ^= 0x01;
    meter_session(&mut pty, &ident, &bad);
    // read_with_retries: first a line of noise instead of an identification, then good.
    let _ = pty.read_until(Duration::from_secs(5), ends_with_crlf);
    pty.write(b"\x15\x00\xff\xfe noise without a slash")
        .unwrap();
    meter_session(&mut pty, &ident, &data);
    let (first, second, link) = reader.join().unwrap();
    match first {
        Err(IecError::Bcc { sent, computed, .. }) => assert_ne!(sent, computed),
        other => panic!("expected a BCC error, got {other:?}"),
    }
    let r = second.unwrap();
    assert_eq!(r.frame, whole);
    assert_eq!(r.baud, 9600);
    assert_eq!(r.ident, "AMI5SIM-IEC");
    drop(link);
}

#[test]
fn a_silent_meter_times_out_and_noise_is_named() {
    let mut pty = Pty::open().unwrap();
    let slave = pty.slave.clone();
    let reader = std::thread::spawn(move || {
        let mut link =
            port::open(&slave, LineSettings::IEC_SIGN_ON, Duration::from_secs(1)).unwrap();
        let cfg = ModeCConfig {
            ident_timeout: Duration::from_millis(300),
            max_garbage: 16,
            ..fast()
        };
        let silent = iec::read_mode_c(&mut link, &cfg);
        let noisy = iec::read_mode_c(&mut link, &cfg);
        let mode_b = iec::read_mode_c(&mut link, &cfg);
        (silent, noisy, mode_b)
    });
    let _ = pty.read_until(Duration::from_secs(5), ends_with_crlf);
    let _ = pty.read_until(Duration::from_secs(5), ends_with_crlf);
    pty.write(&[0x55; 40]).unwrap();
    let _ = pty.read_until(Duration::from_secs(5), ends_with_crlf);
    pty.write(b"/ABCE METER-B\r\n").unwrap();
    let (silent, noisy, mode_b) = reader.join().unwrap();
    assert!(
        matches!(
            silent,
            Err(IecError::Timeout {
                phase: Phase::Identification,
                received: 0,
                ..
            })
        ),
        "{silent:?}"
    );
    match noisy {
        Err(IecError::Garbage {
            phase: Phase::Identification,
            bytes,
            head,
        }) => {
            assert_eq!(bytes, 17);
            assert!(head.starts_with("5555"));
        }
        other => panic!("expected noise, got {other:?}"),
    }
    assert!(
        matches!(mode_b, Err(IecError::NotModeC { z: 'E', .. })),
        "{mode_b:?}"
    );
}
