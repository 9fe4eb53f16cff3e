//! What the receiver's pseudo-terminal tests share: the simulator's encrypted telegrams as a
//! dongle hands them over, and a dongle played on the master end of a pty.

#![allow(dead_code)]

use std::time::{Duration, Instant};

use ami_serial_readers::testing::Pty;
use ami_sim::{Fleet, FleetConfig, Protocol, ProtocolMix};
use ami_wmbus_receiver::hci::{DEVMGMT, HciFrame, SOF};

/// Simulated time of the telegrams.
pub const T0: i64 = 1_688_371_200_000;

/// A sim telegram as a dongle hands it over: L field, then C onwards, CRC blocks removed.
pub fn stripped(format_a: &[u8]) -> Vec<u8> {
    let f = ami_mbus::wireless::parse(format_a).unwrap();
    assert_eq!(f.format, ami_mbus::wireless::FrameFormat::A);
    let h = f.header;
    let mut t = vec![h.l, h.c];
    t.extend_from_slice(&h.manufacturer.to_le_bytes());
    t.extend_from_slice(&h.id.to_le_bytes());
    t.extend_from_slice(&[h.version, h.device_type]);
    t.extend_from_slice(&f.body);
    assert_eq!(usize::from(h.l), t.len() - 1);
    t
}

/// A fleet of `n` encrypted wM-Bus meters and one stripped telegram of each.
pub fn fleet(n: usize, seed: u64) -> (Fleet, Vec<(String, Vec<u8>)>) {
    let fleet = Fleet::with_config(&FleetConfig {
        meters: n,
        seed,
        mix: ProtocolMix::only(Protocol::WirelessMbus),
        wmbus_encrypted: true,
        outages_per_day: 0.0,
        tampers_per_day: 0.0,
        gap_probability: 0.0,
        ..FleetConfig::default()
    })
    .unwrap();
    let telegrams = fleet
        .meters
        .iter()
        .map(|m| {
            let t = ami_sim::wmbus::telegram(m, T0).unwrap();
            // Security mode 5: the configuration word says so, and the records are ciphered.
            assert_eq!(t[16] & 0x1F, 0x05, "encrypted telegram");
            (m.id.clone(), stripped(&t))
        })
        .collect();
    (fleet, telegrams)
}

/// The length of the whole HCI frame at the front of `b`, once its header has come.
fn frame_len(b: &[u8]) -> Option<usize> {
    let ctrl = b.get(1)? >> 4;
    let len = usize::from(*b.get(3)?);
    Some(
        4 + len
            + if ctrl & 0x2 != 0 { 4 } else { 0 }
            + usize::from(ctrl & 0x4 != 0)
            + if ctrl & 0x8 != 0 { 2 } else { 0 },
    )
}

/// An iM871A played on the master end of a pseudo terminal.
pub struct Dongle {
    /// The pty.
    pub pty: Pty,
    buf: Vec<u8>,
}

impl Dongle {
    /// A dongle on a new pty.
    pub fn new() -> Dongle {
        Dongle {
            pty: Pty::open().unwrap(),
            buf: Vec::new(),
        }
    }

    /// Waits until the receiver has opened the slave at the dongle's 57600 baud.
    pub fn wait_open(&self) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.pty.speed().unwrap() != 57_600 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// The next whole frame the receiver sent, byte for byte, or `None` after `timeout`.
    pub fn request(&mut self, timeout: Duration) -> Option<Vec<u8>> {
        let Dongle { pty, buf } = self;
        if buf.first().is_none_or(|&b| b == SOF) && frame_len(buf).is_none_or(|n| buf.len() < n) {
            let have = buf.clone();
            let more = pty.read_until(timeout, |got| {
                let all = [have.as_slice(), got].concat();
                frame_len(&all).is_some_and(|n| all.len() >= n)
            });
            buf.extend_from_slice(&more);
        }
        assert!(
            buf.first().is_none_or(|&b| b == SOF),
            "the receiver sent {buf:02X?}"
        );
        let n = frame_len(buf).filter(|&n| buf.len() >= n)?;
        Some(buf.drain(..n).collect())
    }

    /// Sends bytes to the receiver.
    pub fn send(&mut self, bytes: &[u8]) {
        self.pty.write(bytes).unwrap();
    }

    /// An answer on the device management endpoint, closed by a CRC as real dongles send it.
    pub fn answer(msg_id: u8, payload: &[u8]) -> Vec<u8> {
        HciFrame {
            endpoint: DEVMGMT,
            msg_id,
            payload: payload.to_vec(),
            timestamp: None,
            rssi: None,
            crc: true,
        }
        .encode()
    }
}
