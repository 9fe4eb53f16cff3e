//! The receiver loop: each time the line opens, the dongle is configured first
//! ([`crate::setup`]: link mode, device mode "other", RSSI and time stamp attached), unless
//! the receiver only listens; then HCI frames from the dongle's serial line, the wireless
//! M-Bus telegram of every `WMBUSMSG_IND` to the adapter as protocol `wmbus` (what the `mbus`
//! decoder serves for wireless frames), with the meter named from the link header
//! (`AMI-10000002`) as the hint and the RSSI in dBm ([`crate::hci::rssi_dbm`]) as
//! [`SpoolFrame::rssi_dbm`], which the bus carries in the `Ami-Rssi-Dbm` header.
//!
//! [`WmbusStats`] keeps, per meter, the last RSSI and the count of telegrams heard (bounded:
//! the meter heard longest ago makes room for a new one), so an installer sees each meter's
//! signal; the table is logged every [`ReceiverConfig::signal_log_interval`] and when the
//! loop ends. The dongle's time stamp is logged at debug level only.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use ami_adapter::{Adapter, SpoolFrame};
use ami_serial_readers::port::{Link, LinkError, is_timeout};
use bytes::Bytes;

use crate::config::DeviceInfo;
use crate::hci::{Piece, Reason, Splitter};
use crate::setup::{self, ConfigError, SetupConfig};

/// The protocol name of wireless M-Bus telegrams on the bus.
pub const PROTOCOL: &str = "wmbus";

/// The most meters [`WmbusStats`] keeps signal strength for by default.
pub const MAX_METERS: usize = 1024;

/// Which frames must close with a CRC-16.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CrcPolicy {
    /// Required once the receiver has configured the dongle and every answer it got carried
    /// a CRC (the dongle attaches one to what it sends); accepted otherwise, and when the
    /// receiver only listens.
    Auto,
    /// Frames without a CRC are dropped.
    Require,
    /// Frames without a CRC are accepted.
    Accept,
}

/// How the receiver runs.
#[derive(Clone, Debug)]
pub struct ReceiverConfig {
    /// Configure the dongle each time the line opens (`None`: only listen, the dongle keeps
    /// what its flash holds).
    pub setup: Option<SetupConfig>,
    /// Which frames must carry a CRC.
    pub crc: CrcPolicy,
    /// Silence after which a partial frame counts as broken.
    pub idle: Duration,
    /// How often the per-meter signal table is logged.
    pub signal_log_interval: Duration,
}

impl Default for ReceiverConfig {
    fn default() -> Self {
        ReceiverConfig {
            setup: Some(SetupConfig::default()),
            crc: CrcPolicy::Auto,
            idle: Duration::from_millis(200),
            signal_log_interval: Duration::from_secs(300),
        }
    }
}

/// Why the receiver stopped.
#[derive(Debug, thiserror::Error)]
pub enum ReceiverError {
    /// The line failed.
    #[error(transparent)]
    Link(#[from] LinkError),
    /// The dongle could not be configured.
    #[error("configuring the dongle: {0}")]
    Config(#[from] ConfigError),
}

/// Signal strength of one meter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MeterSignal {
    /// RSSI of its last telegram that had one, in dBm.
    pub last_dbm: Option<i16>,
    /// Telegrams heard from it.
    pub telegrams: u64,
    /// When its last telegram came, ms since the Unix epoch.
    pub last_seen_ms: i64,
}

/// The per-meter signal table, bounded.
#[derive(Debug)]
pub struct SignalTable {
    max: usize,
    meters: HashMap<String, (MeterSignal, u64)>,
    next: u64,
    evicted: u64,
}

impl SignalTable {
    /// A table holding at most `max` meters (at least 1).
    pub fn new(max: usize) -> Self {
        SignalTable {
            max: max.max(1),
            meters: HashMap::new(),
            next: 0,
            evicted: 0,
        }
    }

    /// Counts a telegram from `meter` with `dbm`; a new meter in a full table takes the place
    /// of the one heard longest ago.
    pub fn record(&mut self, meter: &str, dbm: Option<i16>, now_ms: i64) {
        self.next += 1;
        let order = self.next;
        if let Some((s, o)) = self.meters.get_mut(meter) {
            s.telegrams += 1;
            s.last_dbm = dbm.or(s.last_dbm);
            s.last_seen_ms = now_ms;
            *o = order;
            return;
        }
        if self.meters.len() >= self.max {
            let oldest = self
                .meters
                .iter()
                .min_by_key(|(_, (_, o))| *o)
                .map(|(k, _)| k.clone());
            if let Some(k) = oldest {
                self.meters.remove(&k);
                self.evicted += 1;
            }
        }
        self.meters.insert(
            meter.to_owned(),
            (
                MeterSignal {
                    last_dbm: dbm,
                    telegrams: 1,
                    last_seen_ms: now_ms,
                },
                order,
            ),
        );
    }

    /// The signal of `meter`.
    pub fn get(&self, meter: &str) -> Option<MeterSignal> {
        self.meters.get(meter).map(|(s, _)| *s)
    }

    /// Every meter, by name.
    pub fn entries(&self) -> Vec<(String, MeterSignal)> {
        let mut v: Vec<_> = self
            .meters
            .iter()
            .map(|(k, (s, _))| (k.clone(), *s))
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }

    /// Meters held.
    pub fn len(&self) -> usize {
        self.meters.len()
    }

    /// Whether no meter has been heard.
    pub fn is_empty(&self) -> bool {
        self.meters.is_empty()
    }

    /// Meters dropped to make room.
    pub fn evicted(&self) -> u64 {
        self.evicted
    }
}

/// Counters of a receiver.
#[derive(Debug)]
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
    /// Times the dongle was configured.
    pub configured: AtomicU64,
    /// What the dongle said about itself when it was last configured.
    pub dongle: Mutex<Option<DeviceInfo>>,
    /// Signal strength per meter.
    pub signal: Mutex<SignalTable>,
}

impl Default for WmbusStats {
    fn default() -> Self {
        WmbusStats::new(MAX_METERS)
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl WmbusStats {
    /// Counters keeping signal strength for at most `max_meters` meters.
    pub fn new(max_meters: usize) -> Self {
        WmbusStats {
            telegrams: AtomicU64::new(0),
            other_frames: AtomicU64::new(0),
            bad_crc: AtomicU64::new(0),
            bad_frames: AtomicU64::new(0),
            noise_bytes: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            last_rssi: AtomicU64::new(0),
            configured: AtomicU64::new(0),
            dongle: Mutex::new(None),
            signal: Mutex::new(SignalTable::new(max_meters)),
        }
    }

    /// The signal of `meter`, if it has been heard.
    pub fn meter_signal(&self, meter: &str) -> Option<MeterSignal> {
        lock(&self.signal).get(meter)
    }

    /// Every meter's signal, by name.
    pub fn signal_table(&self) -> Vec<(String, MeterSignal)> {
        lock(&self.signal).entries()
    }

    /// Logs the signal table, one line per meter.
    pub fn log_signal_table(&self, adapter: &str) {
        let (entries, evicted) = {
            let t = lock(&self.signal);
            (t.entries(), t.evicted())
        };
        tracing::info!(
            adapter,
            meters = entries.len(),
            evicted,
            "signal strength per meter"
        );
        for (meter, s) in entries {
            tracing::info!(
                adapter,
                meter = %meter,
                rssi_dbm = s.last_dbm,
                telegrams = s.telegrams,
                last_seen_ms = s.last_seen_ms,
                "meter signal"
            );
        }
    }
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
                let rssi_dbm = f.rssi_dbm();
                let meter = meter_hint(&t);
                let received_at_ms = now_ms();
                if let Some(m) = &meter {
                    lock(&stats.signal).record(m, rssi_dbm, received_at_ms);
                }
                tracing::debug!(
                    meter = meter.as_deref().unwrap_or("?"),
                    rssi_dbm,
                    timestamp = f.timestamp,
                    bytes = t.len(),
                    "telegram"
                );
                frames.push(SpoolFrame {
                    protocol: PROTOCOL.into(),
                    meter_hint: meter,
                    received_at_ms,
                    traceparent: None,
                    rssi_dbm,
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

/// Configures the dongle on `link` (unless `cfg.setup` is `None`), then reads it into
/// `adapter` until `stop` is set or the line fails. Telegrams that come while the dongle is
/// being configured reach the adapter too.
pub fn run<L: Link + ?Sized>(
    link: &mut L,
    adapter: &Adapter,
    cfg: &ReceiverConfig,
    stats: &WmbusStats,
    stop: &AtomicBool,
) -> Result<(), ReceiverError> {
    let mut splitter = Splitter::new(cfg.crc == CrcPolicy::Require);
    let require_crc = match &cfg.setup {
        None => cfg.crc == CrcPolicy::Require,
        Some(setup) => {
            let done = match setup::configure(
                link,
                setup,
                &mut splitter,
                cfg.idle,
                &mut |pieces: Vec<Piece>| deliver(pieces, adapter, stats),
                &|| stop.load(Ordering::Relaxed),
            ) {
                Ok(done) => done,
                Err(ConfigError::Stopped) => return Ok(()),
                Err(e) => return Err(e.into()),
            };
            stats.configured.fetch_add(1, Ordering::Relaxed);
            *lock(&stats.dongle) = Some(done.info);
            match cfg.crc {
                CrcPolicy::Require => true,
                CrcPolicy::Accept => false,
                CrcPolicy::Auto if done.answers_had_crc => {
                    tracing::info!(
                        adapter = adapter.name(),
                        "the dongle closes its frames with a CRC-16: frames without one are dropped"
                    );
                    true
                }
                CrcPolicy::Auto => {
                    tracing::warn!(
                        adapter = adapter.name(),
                        "the dongle's answers carried no CRC-16: frames without one are accepted"
                    );
                    false
                }
            }
        }
    };
    splitter.set_require_crc(require_crc);
    let result = listen(link, adapter, cfg, stats, stop, &mut splitter);
    stats.log_signal_table(adapter.name());
    result
}

fn listen<L: Link + ?Sized>(
    link: &mut L,
    adapter: &Adapter,
    cfg: &ReceiverConfig,
    stats: &WmbusStats,
    stop: &AtomicBool,
    splitter: &mut Splitter,
) -> Result<(), ReceiverError> {
    let mut buf = [0u8; 1024];
    let tick = cfg
        .idle
        .clamp(Duration::from_millis(1), Duration::from_millis(100));
    link.set_timeout(tick)?;
    let mut last_byte = Instant::now();
    let mut last_signal_log = Instant::now();
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
            Err(e) => return Err(LinkError::Io(e).into()),
        }
        if splitter.buffered() > 0 && last_byte.elapsed() >= cfg.idle {
            deliver(splitter.idle(), adapter, stats);
        }
        if last_signal_log.elapsed() >= cfg.signal_log_interval {
            stats.log_signal_table(adapter.name());
            last_signal_log = Instant::now();
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signal_table_is_bounded_and_keeps_the_recent_meters() {
        let mut t = SignalTable::new(3);
        t.record("a", Some(-80), 1);
        t.record("b", Some(-70), 2);
        t.record("c", None, 3);
        t.record("a", Some(-81), 4);
        // Full: "b" was heard longest ago.
        t.record("d", Some(-60), 5);
        assert_eq!(t.len(), 3);
        assert_eq!(t.evicted(), 1);
        assert_eq!(t.get("b"), None);
        assert_eq!(
            t.get("a"),
            Some(MeterSignal {
                last_dbm: Some(-81),
                telegrams: 2,
                last_seen_ms: 4
            })
        );
        // A telegram without RSSI keeps the last known one.
        t.record("a", None, 6);
        assert_eq!(t.get("a").unwrap().last_dbm, Some(-81));
        assert_eq!(t.get("c").unwrap().last_dbm, None);
        assert_eq!(
            t.entries()
                .iter()
                .map(|(k, _)| k.as_str())
                .collect::<Vec<_>>(),
            ["a", "c", "d"]
        );
        for i in 0..1000 {
            t.record(&format!("m{i}"), Some(-90), 10 + i);
        }
        assert_eq!(t.len(), 3);
        assert!(SignalTable::new(0).is_empty());
    }
}
