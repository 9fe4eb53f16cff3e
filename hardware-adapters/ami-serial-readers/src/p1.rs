//! The DSMR P1 port: a meter pushes a telegram every second (DSMR 5) or ten (DSMR 4, 2.2,
//! 3) on a one-way line, `/ident CR LF CR LF data lines ! CRC CR LF`.
//!
//! [`Splitter`] cuts whole telegrams out of the byte stream: it hunts for `/`, collects to
//! the end line (`!`, up to four hex digits of CRC-16, CR LF), and checks the framing and the
//! CRC with the `dsmr` decoder's own [`ami_dsmr::telegram::frame`]. Only whole, checked
//! telegrams come out; everything else is a [`Rejected`] with its [`Reason`] (noise between
//! telegrams, a telegram torn by a new `/` at the start of a line or by a silent line, one
//! longer than the bound, a CRC that does not match), counted and logged by the reader. The
//! buffer never holds more than the bound.
//!
//! [`run`] reads a [`Link`] until told to stop and hands every telegram to the adapter as
//! protocol `dsmr`.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use ami_adapter::{Adapter, SpoolFrame};
use bytes::Bytes;

use crate::port::{Link, LinkError, is_timeout};

/// The protocol name of P1 telegrams on the bus (the `dsmr` decoder's).
pub const PROTOCOL: &str = "dsmr";

/// The default bound on a telegram (a DSMR 5 telegram with a full failure log and four
/// M-Bus channels is about 2 KiB; Belgian ones with 13 months of history about 4 KiB).
pub const DEFAULT_MAX_TELEGRAM: usize = 16 * 1024;

/// Why bytes were dropped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reason {
    /// Bytes outside any telegram.
    Noise,
    /// A telegram cut off: a new `/` started a line before its end line came, or the line
    /// fell silent in the middle of it.
    Torn,
    /// A telegram past the bound.
    TooLong,
    /// The CRC sent does not match.
    Crc(String),
    /// The end line or the framing is wrong.
    Malformed(String),
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Reason::Noise => f.write_str("noise outside telegrams"),
            Reason::Torn => f.write_str("torn telegram"),
            Reason::TooLong => f.write_str("telegram longer than the bound"),
            Reason::Crc(m) => write!(f, "bad CRC: {m}"),
            Reason::Malformed(m) => write!(f, "malformed telegram: {m}"),
        }
    }
}

/// Bytes the splitter dropped, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejected {
    /// Why.
    pub reason: Reason,
    /// How many bytes.
    pub bytes: usize,
}

/// What the splitter found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Piece {
    /// A whole telegram whose framing (and CRC, where sent) checked.
    Telegram(Vec<u8>),
    /// Dropped bytes.
    Rejected(Rejected),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Waiting for `/`.
    Hunt,
    /// Inside the telegram; whether the last byte ended a line.
    Body { line_start: bool },
    /// After the end line's `!`: CRC digits so far, whether CR came.
    End { digits: u8, cr: bool },
}

/// Cuts telegrams out of a P1 byte stream.
#[derive(Clone, Debug)]
pub struct Splitter {
    state: State,
    buf: Vec<u8>,
    noise: usize,
    max: usize,
}

impl Default for Splitter {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_TELEGRAM)
    }
}

impl Splitter {
    /// A splitter that drops telegrams longer than `max` bytes.
    pub fn new(max: usize) -> Self {
        Splitter {
            state: State::Hunt,
            buf: Vec::new(),
            noise: 0,
            max: max.max(8),
        }
    }

    /// Bytes held for the telegram in progress.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Feeds the next bytes; returns what they completed, in order.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<Piece> {
        let mut out = Vec::new();
        for &b in bytes {
            self.step(b, &mut out);
        }
        out
    }

    /// The line fell silent: a telegram in progress is torn, and noise so far is reported.
    pub fn idle(&mut self) -> Vec<Piece> {
        let mut out = Vec::new();
        self.flush_noise(&mut out);
        if !self.buf.is_empty() {
            out.push(Piece::Rejected(Rejected {
                reason: Reason::Torn,
                bytes: self.buf.len(),
            }));
        }
        self.buf.clear();
        self.state = State::Hunt;
        out
    }

    fn flush_noise(&mut self, out: &mut Vec<Piece>) {
        if self.noise > 0 {
            out.push(Piece::Rejected(Rejected {
                reason: Reason::Noise,
                bytes: self.noise,
            }));
            self.noise = 0;
        }
    }

    fn start(&mut self, out: &mut Vec<Piece>) {
        self.flush_noise(out);
        self.buf.clear();
        self.buf.push(b'/');
        self.state = State::Body { line_start: false };
    }

    fn tear(&mut self, out: &mut Vec<Piece>) {
        out.push(Piece::Rejected(Rejected {
            reason: Reason::Torn,
            bytes: self.buf.len(),
        }));
        self.start(out);
    }

    fn reject(&mut self, reason: Reason, extra: usize, out: &mut Vec<Piece>) {
        out.push(Piece::Rejected(Rejected {
            reason,
            bytes: self.buf.len() + extra,
        }));
        self.buf.clear();
        self.state = State::Hunt;
    }

    fn step(&mut self, b: u8, out: &mut Vec<Piece>) {
        match self.state {
            State::Hunt => {
                if b == b'/' {
                    self.start(out);
                } else {
                    self.noise += 1;
                }
            }
            State::Body { line_start } => {
                if line_start && b == b'/' {
                    self.tear(out);
                    return;
                }
                if self.buf.len() >= self.max {
                    self.reject(Reason::TooLong, 1, out);
                    return;
                }
                self.buf.push(b);
                self.state = if line_start && b == b'!' {
                    State::End {
                        digits: 0,
                        cr: false,
                    }
                } else {
                    State::Body {
                        line_start: b == b'\n',
                    }
                };
            }
            State::End { digits, cr } => match b {
                b'\n' => {
                    self.buf.push(b);
                    self.finish(out);
                }
                b'\r' if !cr => {
                    self.buf.push(b);
                    self.state = State::End { digits, cr: true };
                }
                b'/' => self.tear(out),
                b if b.is_ascii_hexdigit() && digits < 4 && !cr => {
                    self.buf.push(b);
                    self.state = State::End {
                        digits: digits + 1,
                        cr,
                    };
                }
                b => {
                    let shown = char::from(b).escape_default().to_string();
                    self.reject(
                        Reason::Malformed(format!("byte {shown:?} in the end line")),
                        1,
                        out,
                    );
                }
            },
        }
    }

    fn finish(&mut self, out: &mut Vec<Piece>) {
        match ami_dsmr::telegram::frame(&self.buf) {
            Ok(_) => {
                out.push(Piece::Telegram(std::mem::take(&mut self.buf)));
                self.state = State::Hunt;
            }
            Err(ami_dsmr::DecodeError::Checksum(m)) => self.reject(Reason::Crc(m), 0, out),
            Err(e) => self.reject(Reason::Malformed(e.to_string()), 0, out),
        }
    }
}

/// Counters of a P1 reader.
#[derive(Debug, Default)]
pub struct P1Stats {
    /// Telegrams handed to the adapter.
    pub telegrams: AtomicU64,
    /// Telegrams dropped for a bad CRC.
    pub bad_crc: AtomicU64,
    /// Telegrams dropped as torn.
    pub torn: AtomicU64,
    /// Telegrams dropped as too long.
    pub too_long: AtomicU64,
    /// Telegrams dropped as malformed.
    pub malformed: AtomicU64,
    /// Bytes of noise dropped between telegrams.
    pub noise_bytes: AtomicU64,
    /// Telegrams the adapter's spool refused (full).
    pub refused: AtomicU64,
}

impl P1Stats {
    fn count(&self, r: &Rejected) {
        let c = match r.reason {
            Reason::Noise => {
                self.noise_bytes
                    .fetch_add(r.bytes as u64, Ordering::Relaxed);
                return;
            }
            Reason::Torn => &self.torn,
            Reason::TooLong => &self.too_long,
            Reason::Crc(_) => &self.bad_crc,
            Reason::Malformed(_) => &self.malformed,
        };
        c.fetch_add(1, Ordering::Relaxed);
    }
}

/// How a P1 reader runs.
#[derive(Clone, Debug)]
pub struct P1Config {
    /// The bound on a telegram.
    pub max_telegram: usize,
    /// Silence in the middle of a telegram after which it counts as torn.
    pub idle: Duration,
    /// The meter hint put on every frame (the decoder reads the meter from the telegram).
    pub meter_hint: Option<String>,
}

impl Default for P1Config {
    fn default() -> Self {
        P1Config {
            max_telegram: DEFAULT_MAX_TELEGRAM,
            idle: Duration::from_secs(2),
            meter_hint: None,
        }
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Hands the pieces to the adapter and the counters.
fn deliver(pieces: Vec<Piece>, adapter: &Adapter, cfg: &P1Config, stats: &P1Stats) {
    for p in pieces {
        match p {
            Piece::Telegram(t) => {
                let frame = SpoolFrame {
                    protocol: PROTOCOL.into(),
                    meter_hint: cfg.meter_hint.clone(),
                    received_at_ms: now_ms(),
                    traceparent: None,
                    rssi_dbm: None,
                    data: Bytes::from(t),
                };
                match adapter.accept(vec![frame]) {
                    Ok(_) => {
                        stats.telegrams.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) => {
                        stats.refused.fetch_add(1, Ordering::Relaxed);
                        tracing::error!(adapter = adapter.name(), error = %e, "telegram lost: the spool refused it");
                    }
                }
            }
            Piece::Rejected(r) => {
                stats.count(&r);
                if r.reason == Reason::Noise {
                    tracing::debug!(
                        adapter = adapter.name(),
                        bytes = r.bytes,
                        "noise on the P1 line dropped"
                    );
                } else {
                    tracing::warn!(adapter = adapter.name(), bytes = r.bytes, reason = %r.reason, "P1 telegram dropped");
                }
            }
        }
    }
}

/// Reads telegrams from `link` into `adapter` until `stop` is set or the line fails.
pub fn run<L: Link + ?Sized>(
    link: &mut L,
    adapter: &Adapter,
    cfg: &P1Config,
    stats: &P1Stats,
    stop: &AtomicBool,
) -> Result<(), LinkError> {
    let mut splitter = Splitter::new(cfg.max_telegram);
    let mut buf = [0u8; 4096];
    let tick = cfg
        .idle
        .min(Duration::from_millis(200))
        .max(Duration::from_millis(1));
    link.set_timeout(tick)?;
    let mut last_byte = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        match link.read(&mut buf) {
            Ok(0) => std::thread::sleep(tick),
            Ok(n) => {
                last_byte = Instant::now();
                let pieces = splitter.push(buf.get(..n).unwrap_or_default());
                deliver(pieces, adapter, cfg, stats);
            }
            Err(e) if is_timeout(&e) => {}
            Err(e) => return Err(LinkError::Io(e)),
        }
        if splitter.buffered() > 0 && last_byte.elapsed() >= cfg.idle {
            deliver(splitter.idle(), adapter, cfg, stats);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn telegram(body: &str) -> Vec<u8> {
        let mut t = format!("/ISK5\\2MT382-1000\r\n\r\n{body}!").into_bytes();
        let crc = ami_dsmr::telegram::crc16(&t);
        t.extend_from_slice(format!("{crc:04X}\r\n").as_bytes());
        t
    }

    fn telegrams(pieces: &[Piece]) -> Vec<&[u8]> {
        pieces
            .iter()
            .filter_map(|p| match p {
                Piece::Telegram(t) => Some(t.as_slice()),
                Piece::Rejected(_) => None,
            })
            .collect()
    }

    fn reasons(pieces: &[Piece]) -> Vec<Reason> {
        pieces
            .iter()
            .filter_map(|p| match p {
                Piece::Rejected(r) => Some(r.reason.clone()),
                Piece::Telegram(_) => None,
            })
            .collect()
    }

    #[test]
    fn whole_telegrams_come_out_byte_for_byte() {
        let t = telegram("1-0:1.8.1(000123.456*kWh)\r\n");
        let mut s = Splitter::default();
        let mut stream = b"\x00\xffnoise".to_vec();
        stream.extend_from_slice(&t);
        stream.extend_from_slice(&t);
        let p = s.push(&stream);
        assert_eq!(telegrams(&p), vec![t.as_slice(), t.as_slice()]);
        assert_eq!(reasons(&p), vec![Reason::Noise]);
        assert_eq!(s.buffered(), 0);
    }

    #[test]
    fn one_byte_at_a_time() {
        let t = telegram("0-0:96.1.1(4530303034)\r\n");
        let mut s = Splitter::default();
        let mut got = Vec::new();
        for b in &t {
            got.extend(s.push(std::slice::from_ref(b)));
        }
        assert_eq!(telegrams(&got), vec![t.as_slice()]);
    }

    #[test]
    fn bad_crc_is_dropped_with_its_reason() {
        let mut t = telegram("1-0:1.8.1(000123.456*kWh)\r\n");
        let i = t.iter().position(|&b| b == b'3').unwrap();
        t[i] = b'4';
        let good = telegram("1-0:1.8.2(000001.000*kWh)\r\n");
        let mut stream = t.clone();
        stream.extend_from_slice(&good);
        let p = Splitter::default().push(&stream);
        assert_eq!(telegrams(&p), vec![good.as_slice()]);
        assert!(matches!(reasons(&p).as_slice(), [Reason::Crc(m)] if m.contains("computed")));
    }

    #[test]
    fn torn_telegram_resyncs_on_the_next_slash() {
        let t = telegram("1-0:1.8.1(000123.456*kWh)\r\n");
        let mut stream = t[..t.len() / 2].to_vec();
        stream.extend_from_slice(b"\r\n");
        stream.extend_from_slice(&t);
        let p = Splitter::default().push(&stream);
        assert_eq!(telegrams(&p), vec![t.as_slice()]);
        assert_eq!(reasons(&p), vec![Reason::Torn]);
    }

    #[test]
    fn silence_tears_and_dsmr2_without_crc_passes() {
        let mut s = Splitter::default();
        assert!(s.push(b"/ISk5MT382-1000\r\n\r\n1-0:1.8.1(00").is_empty());
        assert_eq!(reasons(&s.idle()), vec![Reason::Torn]);
        let v2 = b"/ISk5MT382-1000\r\n\r\n1-0:1.8.1(00123.456*kWh)\r\n!\r\n";
        let p = s.push(v2);
        assert_eq!(telegrams(&p), vec![v2.as_slice()]);
    }

    #[test]
    fn the_bound_holds() {
        let mut s = Splitter::new(64);
        let mut stream = b"/XXX5\r\n\r\n".to_vec();
        stream.extend(std::iter::repeat_n(b'1', 200));
        let p = s.push(&stream);
        assert_eq!(reasons(&p).first(), Some(&Reason::TooLong));
        assert!(s.buffered() <= 64);
        let t = telegram("1-0:1.8.1(000123.456*kWh)\r\n");
        let mut small = Splitter::new(t.len() - 10);
        assert_eq!(reasons(&small.push(&t)), vec![Reason::TooLong]);
    }

    #[test]
    fn garbage_in_the_end_line_is_malformed() {
        let p = Splitter::default().push(b"/ABC5\r\n\r\n1-0:1.8.1(1)\r\n!12G4\r\n");
        assert!(matches!(
            reasons(&p).as_slice(),
            [Reason::Malformed(_), Reason::Noise] | [Reason::Malformed(_)]
        ));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn random_bytes_never_panic_and_stay_bounded(bytes in proptest::collection::vec(any::<u8>(), 0..4096)) {
            let mut s = Splitter::new(512);
            let p = s.push(&bytes);
            prop_assert!(s.buffered() <= 512);
            for t in telegrams(&p) {
                prop_assert!(ami_dsmr::telegram::frame(t).is_ok());
            }
        }

        #[test]
        fn a_good_telegram_after_garbage_is_found(
            garbage in proptest::collection::vec(any::<u8>(), 0..2048),
            split in 0usize..600,
        ) {
            let t = telegram("1-0:1.8.1(000123.456*kWh)\r\n0-0:96.14.0(0002)\r\n");
            // A line end closes whatever the garbage left open, as a meter's next telegram
            // always starts on a new line.
            let mut stream = garbage.clone();
            stream.extend_from_slice(b"\r\n");
            stream.extend_from_slice(&t);
            let mut s = Splitter::default();
            let cut = split.min(stream.len());
            let mut p = s.push(&stream[..cut]);
            p.extend(s.push(&stream[cut..]));
            prop_assert_eq!(telegrams(&p).last().copied(), Some(t.as_slice()));
        }
    }
}
