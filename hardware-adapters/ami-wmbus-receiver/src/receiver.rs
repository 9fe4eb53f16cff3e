//! The receiver loop: HCI frames from the dongle's serial line, the wireless M-Bus telegram
//! of every `WMBUSMSG_IND` to the adapter as protocol `wmbus` (what the `mbus` decoder serves
//! for wireless frames), with the meter named from the link header (`AMI-10000002`) as the
//! hint.
//!
//! The RSSI and time stamp the dongle attaches are not carried: a raw frame on the bus has
//! no header for them (`ami_bus::RawFrame`), and the decoder reads the telegram alone. They
//! are logged at debug level and the RSSI of the last telegram is kept in [`WmbusStats`].

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use ami_adapter::{Adapter, SpoolFrame};
use ami_serial_readers::port::{Link, LinkError, is_timeout};
use bytes::Bytes;

use crate::hci::{Piece, Reason, Splitter};

/// The protocol name of wireless M-Bus telegrams on the bus.
pub const PROTOCOL: &str = "wmbus";

/// How the receiver runs.
#[derive(Clone, Debug)]
pub struct ReceiverConfig {
    /// Drop frames without a CRC (configure the dongle to send one).
    pub require_crc: bool,
    /// Silence after which a partial frame counts as broken.
    pub idle: Duration,
}

impl Default for ReceiverConfig {
    fn default() -> Self {
        ReceiverConfig {
            require_crc: false,
            idle: Duration::from_millis(200),
        }
    }
}

/// Counters of a receiver.
#[derive(Debug, Default)]
pub struct WmbusStats {
    /// Telegrams handed to the adapter.
    pub telegrams: AtomicU64,
    /// HCI frames that were not a received telegram (responses, test messages).
    pub other_frames: AtomicU64,
    /// Candidate frames dropped for a CRC mismatch.
    pub bad_crc: AtomicU64,
    /// Candidate frames dropped for a bad header, a missing CRC or silence before their end.
    pub bad_frames: AtomicU64,
    /// Bytes of noise between frames.
    pub noise_bytes: AtomicU64,
    /// Telegrams the spool refused (full).
    pub refused: AtomicU64,
    /// RSSI (raw) of the last telegram that had one, plus one (0: none yet).
    pub last_rssi: AtomicU64,
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// The meter a telegram names in its link header, if it has one.
pub fn meter_hint(telegram: &[u8]) -> Option<String> {
    ami_mbus::wireless::parse(telegram)
        .ok()
        .map(|f| f.header.meter())
}

fn deliver(pieces: Vec<Piece>, adapter: &Adapter, stats: &WmbusStats) {
    let mut frames = Vec::new();
    for p in pieces {
        match p {
            Piece::Frame(f) => {
                let Some(t) = f.telegram() else {
                    stats.other_frames.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(
                        endpoint = f.endpoint,
                        msg_id = f.msg_id,
                        "HCI frame other than a telegram ignored"
                    );
                    continue;
                };
                if let Some(r) = f.rssi {
                    stats.last_rssi.store(u64::from(r) + 1, Ordering::Relaxed);
                }
                let meter = meter_hint(&t);
                tracing::debug!(
                    meter = meter.as_deref().unwrap_or("?"),
                    rssi = f.rssi,
                    timestamp = f.timestamp,
                    bytes = t.len(),
                    "telegram"
                );
                frames.push(SpoolFrame {
                    protocol: PROTOCOL.into(),
                    meter_hint: meter,
                    received_at_ms: now_ms(),
                    traceparent: None,
                    data: Bytes::from(t),
                });
            }
            Piece::Rejected { reason, bytes } => {
                let c = match reason {
                    Reason::Noise => {
                        stats.noise_bytes.fetch_add(bytes as u64, Ordering::Relaxed);
                        continue;
                    }
                    Reason::Crc { .. } => &stats.bad_crc,
                    _ => &stats.bad_frames,
                };
                c.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(adapter = adapter.name(), reason = %reason, "HCI frame dropped");
            }
        }
    }
    if frames.is_empty() {
        return;
    }
    let n = frames.len() as u64;
    match adapter.accept(frames) {
        Ok(_) => {
            stats.telegrams.fetch_add(n, Ordering::Relaxed);
        }
        Err(e) => {
            stats.refused.fetch_add(n, Ordering::Relaxed);
            tracing::error!(adapter = adapter.name(), error = %e, telegrams = n, "telegrams lost: the spool refused them");
        }
    }
}

/// Reads the dongle on `link` into `adapter` until `stop` is set or the line fails.
pub fn run<L: Link + ?Sized>(
    link: &mut L,
    adapter: &Adapter,
    cfg: &ReceiverConfig,
    stats: &WmbusStats,
    stop: &AtomicBool,
) -> Result<(), LinkError> {
    let mut splitter = Splitter::new(cfg.require_crc);
    let mut buf = [0u8; 1024];
    let tick = cfg
        .idle
        .clamp(Duration::from_millis(1), Duration::from_millis(100));
    link.set_timeout(tick)?;
    let mut last_byte = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        match link.read(&mut buf) {
            Ok(0) => std::thread::sleep(tick),
            Ok(n) => {
                last_byte = Instant::now();
                deliver(
                    splitter.push(buf.get(..n).unwrap_or_default()),
                    adapter,
                    stats,
                );
            }
            Err(e) if is_timeout(&e) => {}
            Err(e) => return Err(LinkError::Io(e)),
        }
        if splitter.buffered() > 0 && last_byte.elapsed() >= cfg.idle {
            deliver(splitter.idle(), adapter, stats);
        }
    }
    Ok(())
}
