//! IEC 62056-21 mode C readout sessions, the reader's side.
//!
//! ```text
//! reader  /?<address>!CR LF                      300 baud 7E1
//! meter   /XXXZ<ident>CR LF                      Z: the highest baud rate it offers ('0'..'6')
//! reader  ACK '0' Z '0' CR LF                    normal procedure, Z, data readout
//!         both sides switch to Z's baud rate
//! meter   STX <data sets> ! CR LF ETX BCC        BCC: XOR of the bytes after STX up to ETX
//! ```
//!
//! [`read_mode_c`] runs one session on a [`Link`] and returns the [`Readout`]: the
//! identification line and the data message, byte for byte as the meter sent them, which
//! is the frame the `iec62056-21` decoder takes. Every wait has a deadline; every buffer has
//! a bound; the echo of the reader's own messages (half-duplex optical probes) is skipped;
//! anything else that does not fit the session fails it with an [`IecError`] that says what
//! came instead. [`read_with_retries`] starts over (at 300 baud, after a pause that lets the
//! meter fall back to its idle state) up to a number of times.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use ami_adapter::{Adapter, SpoolFrame};
use bytes::Bytes;

use crate::port::{Link, LinkError, is_timeout};

/// Start of text.
pub const STX: u8 = 0x02;
/// End of text.
pub const ETX: u8 = 0x03;
/// End of a partial block.
pub const EOT: u8 = 0x04;
/// Acknowledge: leads the option select message.
pub const ACK: u8 = 0x06;

/// The longest identification line (`/XXXZ\W` + 16 characters + CR LF is 25; some meters
/// send more).
pub const MAX_IDENT: usize = 80;

/// How a session runs.
#[derive(Clone, Debug)]
pub struct ModeCConfig {
    /// The device address in the request (`/?<address>!`); empty asks any meter on the line.
    pub address: String,
    /// The highest baud rate the reader accepts (the meter's proposal is lowered to it).
    pub max_baud: u32,
    /// How long to wait for the identification after the request.
    pub ident_timeout: Duration,
    /// The pause between the identification and the option select (the standard's reaction
    /// time: at least 200 ms; some meters miss an ACK sent sooner).
    pub ack_delay: Duration,
    /// How long to wait for the first byte of the data message after the option select,
    /// and for each following byte.
    pub data_timeout: Duration,
    /// How long the whole data message may take.
    pub readout_timeout: Duration,
    /// The longest data message accepted.
    pub max_readout: usize,
    /// Bytes of noise tolerated while waiting for the identification or STX.
    pub max_garbage: usize,
    /// Sessions tried again after a failure.
    pub retries: u32,
    /// Pause before a retry (the meter returns to idle after 1.5 s without traffic).
    pub retry_pause: Duration,
}

impl Default for ModeCConfig {
    fn default() -> Self {
        ModeCConfig {
            address: String::new(),
            max_baud: 19_200,
            ident_timeout: Duration::from_secs(3),
            ack_delay: Duration::from_millis(200),
            data_timeout: Duration::from_secs(3),
            readout_timeout: Duration::from_secs(120),
            max_readout: 64 * 1024,
            max_garbage: 512,
            retries: 2,
            retry_pause: Duration::from_millis(1600),
        }
    }
}

/// A readout as the meter sent it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Readout {
    /// The identification line without `/` and CR LF (`AMI5SIM-IEC`).
    pub ident: String,
    /// The baud rate the data message came at.
    pub baud: u32,
    /// Identification line and data message (`/…CR LF STX … ETX BCC`).
    pub frame: Vec<u8>,
}

/// Which step of a session failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Waiting for the identification.
    Identification,
    /// Waiting for or reading the data message.
    Data,
}

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Phase::Identification => "identification",
            Phase::Data => "data message",
        })
    }
}

/// Why a session failed.
#[derive(Debug, thiserror::Error)]
pub enum IecError {
    /// The serial line failed.
    #[error(transparent)]
    Link(#[from] LinkError),
    /// The meter did not answer in time.
    #[error("no {phase} within {waited_ms} ms ({received} bytes received)")]
    Timeout {
        /// The step.
        phase: Phase,
        /// How long the reader waited.
        waited_ms: u64,
        /// Bytes received in the step.
        received: usize,
    },
    /// Only noise came.
    #[error("{bytes} bytes of noise while waiting for the {phase}, starting {head}")]
    Garbage {
        /// The step.
        phase: Phase,
        /// Bytes dropped.
        bytes: usize,
        /// The first of them, as hex.
        head: String,
    },
    /// The identification line does not have the shape `/XXXZ…`.
    #[error("bad identification {line:?}: {reason}")]
    BadIdent {
        /// The line as received (lossy).
        line: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The meter does not speak mode C (its baud character is a mode A or B one).
    #[error("identification {ident:?} offers baud character {z:?}, not a mode C one ('0' to '6')")]
    NotModeC {
        /// The identification.
        ident: String,
        /// The baud character.
        z: char,
    },
    /// The data message grew past the bound.
    #[error("data message longer than {limit} bytes; dropped")]
    TooLong {
        /// The bound.
        limit: usize,
    },
    /// The meter sent a partial block (EOT), which a data readout does not use.
    #[error(
        "partial block (EOT) after {bytes} bytes of data; mode C readouts send one data message"
    )]
    PartialBlock {
        /// Data bytes before EOT.
        bytes: usize,
    },
    /// The block check character does not match.
    #[error("BCC {sent:#04x} sent, {computed:#04x} computed over {bytes} bytes")]
    Bcc {
        /// The BCC the meter sent.
        sent: u8,
        /// The BCC of what arrived.
        computed: u8,
        /// Bytes it covers.
        bytes: usize,
    },
}

/// The baud rate of a mode C baud character.
pub fn mode_c_baud(z: u8) -> Option<u32> {
    Some(match z {
        b'0' => 300,
        b'1' => 600,
        b'2' => 1200,
        b'3' => 2400,
        b'4' => 4800,
        b'5' => 9600,
        b'6' => 19_200,
        _ => return None,
    })
}

/// The mode C baud character of the highest rate at or below `baud` (at least `'0'`).
pub fn mode_c_char(baud: u32) -> u8 {
    (b'0'..=b'6')
        .rev()
        .find(|&z| mode_c_baud(z).is_some_and(|b| b <= baud))
        .unwrap_or(b'0')
}

/// The request message `/?<address>!CR LF`.
pub fn request(address: &str) -> Vec<u8> {
    let mut m = Vec::with_capacity(address.len() + 5);
    m.extend_from_slice(b"/?");
    m.extend_from_slice(address.as_bytes());
    m.extend_from_slice(b"!\r\n");
    m
}

/// The option select message for a data readout at baud character `z`: `ACK 0 Z 0 CR LF`.
pub fn option_select(z: u8) -> [u8; 6] {
    [ACK, b'0', z, b'0', b'\r', b'\n']
}

/// The identification line's parts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ident {
    /// The three manufacturer letters.
    pub manufacturer: String,
    /// The baud character.
    pub z: u8,
    /// Everything after Z (with an enhanced `\W` if sent).
    pub ident: String,
}

/// Parses an identification line (`/XXXZ…`, without CR LF).
pub fn parse_ident(line: &[u8]) -> Result<Ident, IecError> {
    let bad = |reason| IecError::BadIdent {
        line: String::from_utf8_lossy(line).into_owned(),
        reason,
    };
    let rest = line
        .strip_prefix(b"/")
        .ok_or_else(|| bad("no leading '/'"))?;
    if rest.len() < 4 {
        return Err(bad("shorter than /XXXZ"));
    }
    if !rest.iter().all(|b| (0x20..0x7F).contains(b)) {
        return Err(bad("not printable ASCII"));
    }
    let (mfr, tail) = rest.split_at(3);
    if !mfr.iter().all(u8::is_ascii_alphabetic) {
        return Err(bad("manufacturer is not three letters"));
    }
    let (z, ident) = tail.split_first().ok_or_else(|| bad("no baud character"))?;
    Ok(Ident {
        manufacturer: String::from_utf8_lossy(mfr).into_owned(),
        z: *z,
        ident: String::from_utf8_lossy(ident).into_owned(),
    })
}

/// Reads bytes from a link one at a time under deadlines, through a small buffer.
struct Rx<'a, L: Link + ?Sized> {
    link: &'a mut L,
    buf: [u8; 256],
    pos: usize,
    len: usize,
}

impl<'a, L: Link + ?Sized> Rx<'a, L> {
    fn new(link: &'a mut L) -> Self {
        Rx {
            link,
            buf: [0; 256],
            pos: 0,
            len: 0,
        }
    }

    /// The next byte, or `None` once `deadline` has passed.
    fn next(&mut self, deadline: Instant) -> Result<Option<u8>, LinkError> {
        loop {
            if let Some(&b) = self.buf.get(self.pos).filter(|_| self.pos < self.len) {
                self.pos += 1;
                return Ok(Some(b));
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(None);
            }
            self.link
                .set_timeout((deadline - now).max(Duration::from_millis(1)))?;
            match self.link.read(&mut self.buf) {
                Ok(0) => {
                    // A closed line reads as end of file: wait out the deadline's granularity.
                    std::thread::sleep(Duration::from_millis(5));
                }
                Ok(n) => {
                    self.pos = 0;
                    self.len = n;
                }
                Err(e) if is_timeout(&e) => {}
                Err(e) => return Err(LinkError::Io(e)),
            }
        }
    }
}

fn hex_head(bytes: &[u8]) -> String {
    bytes.iter().take(16).map(|b| format!("{b:02x}")).collect()
}

/// Runs one mode C data readout session on `link` (opened at 300 7E1).
pub fn read_mode_c<L: Link + ?Sized>(link: &mut L, cfg: &ModeCConfig) -> Result<Readout, IecError> {
    if link.baud()? != 300 {
        link.set_baud(300)?;
    }
    link.clear_input()?;
    let req = request(&cfg.address);
    link.write_all(&req).map_err(LinkError::Io)?;
    link.drain()?;

    // The identification: hunt '/', keep the line to LF; skip the echo of the request.
    let started = Instant::now();
    let deadline = started + cfg.ident_timeout;
    let mut rx = Rx::new(link);
    let mut noise = Vec::new();
    let mut received = 0usize;
    let line = loop {
        let mut line = Vec::new();
        // Hunt.
        loop {
            let Some(b) = rx.next(deadline)? else {
                return Err(timeout_or_noise(
                    Phase::Identification,
                    started,
                    received,
                    &noise,
                ));
            };
            received += 1;
            if b == b'/' {
                line.push(b);
                break;
            }
            if !matches!(b, b'\r' | b'\n') {
                noise.push(b);
                if noise.len() > cfg.max_garbage {
                    return Err(garbage(Phase::Identification, &noise));
                }
            }
        }
        // The line.
        loop {
            let Some(b) = rx.next(deadline)? else {
                return Err(IecError::Timeout {
                    phase: Phase::Identification,
                    waited_ms: started.elapsed().as_millis() as u64,
                    received,
                });
            };
            received += 1;
            if b == b'\n' {
                break;
            }
            line.push(b);
            if line.len() > MAX_IDENT {
                return Err(IecError::BadIdent {
                    line: String::from_utf8_lossy(&line).into_owned(),
                    reason: "longer than 80 characters",
                });
            }
        }
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        if line.starts_with(b"/?") {
            // Our own request, echoed by the probe.
            continue;
        }
        break line;
    };
    let ident = parse_ident(&line)?;
    let Some(offered) = mode_c_baud(ident.z) else {
        return Err(IecError::NotModeC {
            ident: String::from_utf8_lossy(&line[1..]).into_owned(),
            z: char::from(ident.z),
        });
    };
    let z = mode_c_char(offered.min(cfg.max_baud));
    let baud = mode_c_baud(z).unwrap_or(300);

    // Option select at 300 baud after the reaction time; only once it has left, the switch.
    std::thread::sleep(cfg.ack_delay);
    link.write_all(&option_select(z)).map_err(LinkError::Io)?;
    link.drain()?;
    link.set_baud(baud)?;
    tracing::debug!(ident = %String::from_utf8_lossy(&line), baud, "option select sent, line switched");

    let mut frame = Vec::with_capacity(line.len() + 2 + 512);
    frame.extend_from_slice(&line);
    frame.extend_from_slice(b"\r\n");
    read_data(link, cfg, &mut frame)?;
    Ok(Readout {
        ident: String::from_utf8_lossy(&line[1..]).into_owned(),
        baud,
        frame,
    })
}

fn timeout_or_noise(phase: Phase, started: Instant, received: usize, noise: &[u8]) -> IecError {
    if noise.is_empty() {
        IecError::Timeout {
            phase,
            waited_ms: started.elapsed().as_millis() as u64,
            received,
        }
    } else {
        garbage(phase, noise)
    }
}

fn garbage(phase: Phase, noise: &[u8]) -> IecError {
    IecError::Garbage {
        phase,
        bytes: noise.len(),
        head: hex_head(noise),
    }
}

/// Reads `STX … ETX BCC` onto `frame`, checking the BCC.
fn read_data<L: Link + ?Sized>(
    link: &mut L,
    cfg: &ModeCConfig,
    frame: &mut Vec<u8>,
) -> Result<(), IecError> {
    let started = Instant::now();
    let whole = started + cfg.readout_timeout;
    let mut rx = Rx::new(link);
    let mut noise = Vec::new();
    let mut received = 0usize;
    let step = |now: Instant| (now + cfg.data_timeout).min(whole);
    // Hunt STX; the echo of the option select (ACK 0 Z 0 CR LF) is noise we expect.
    loop {
        let Some(b) = rx.next(step(Instant::now()))? else {
            return Err(timeout_or_noise(Phase::Data, started, received, &noise));
        };
        received += 1;
        if b == STX {
            break;
        }
        noise.push(b);
        if noise.len() > cfg.max_garbage {
            return Err(garbage(Phase::Data, &noise));
        }
    }
    frame.push(STX);
    let data_start = frame.len();
    let mut bcc = 0u8;
    loop {
        let Some(b) = rx.next(step(Instant::now()))? else {
            return Err(IecError::Timeout {
                phase: Phase::Data,
                waited_ms: started.elapsed().as_millis() as u64,
                received,
            });
        };
        received += 1;
        frame.push(b);
        bcc ^= b;
        if frame.len() - data_start > cfg.max_readout {
            return Err(IecError::TooLong {
                limit: cfg.max_readout,
            });
        }
        match b {
            ETX => break,
            EOT => {
                return Err(IecError::PartialBlock {
                    bytes: frame.len() - data_start - 1,
                });
            }
            _ => {}
        }
    }
    let Some(sent) = rx.next(step(Instant::now()))? else {
        return Err(IecError::Timeout {
            phase: Phase::Data,
            waited_ms: started.elapsed().as_millis() as u64,
            received,
        });
    };
    if sent != bcc {
        return Err(IecError::Bcc {
            sent,
            computed: bcc,
            bytes: frame.len() - data_start,
        });
    }
    frame.push(sent);
    Ok(())
}

/// [`read_mode_c`], started over after a failure up to `cfg.retries` times; the errors of
/// the failed attempts are logged, the last one returned.
pub fn read_with_retries<L: Link + ?Sized>(
    link: &mut L,
    cfg: &ModeCConfig,
) -> Result<Readout, IecError> {
    let mut attempt = 0;
    loop {
        match read_mode_c(link, cfg) {
            Ok(r) => return Ok(r),
            Err(IecError::Link(e)) => return Err(IecError::Link(e)),
            Err(e) if attempt < cfg.retries => {
                attempt += 1;
                tracing::warn!(error = %e, attempt, "mode C session failed; trying again");
                std::thread::sleep(cfg.retry_pause);
            }
            Err(e) => return Err(e),
        }
    }
}

/// The protocol name of IEC 62056-21 readouts on the bus (the `iec62056-21` decoder's).
pub const PROTOCOL: &str = "iec62056-21";

/// Counters of a mode C poller.
#[derive(Debug, Default)]
pub struct IecStats {
    /// Readouts handed to the adapter.
    pub readouts: AtomicU64,
    /// Polls that failed after every retry.
    pub failed: AtomicU64,
    /// Readouts the adapter's spool refused (full).
    pub refused: AtomicU64,
}

/// Polls the meter on `link` every `interval` until `stop` is set: each readout goes to
/// `adapter` as protocol `iec62056-21` with `meter_hint`. A failed poll is logged and
/// counted; a failed line ends the loop with its error.
pub fn run<L: Link + ?Sized>(
    link: &mut L,
    adapter: &Adapter,
    cfg: &ModeCConfig,
    interval: Duration,
    meter_hint: Option<&str>,
    stats: &IecStats,
    stop: &AtomicBool,
) -> Result<(), LinkError> {
    while !stop.load(Ordering::Relaxed) {
        let started = Instant::now();
        match read_with_retries(link, cfg) {
            Ok(r) => {
                let frame = SpoolFrame {
                    protocol: PROTOCOL.into(),
                    meter_hint: meter_hint.map(str::to_owned),
                    received_at_ms: now_ms(),
                    traceparent: None,
                    rssi_dbm: None,
                    data: Bytes::from(r.frame),
                };
                match adapter.accept(vec![frame]) {
                    Ok(_) => {
                        stats.readouts.fetch_add(1, Ordering::Relaxed);
                        tracing::info!(adapter = adapter.name(), ident = %r.ident, baud = r.baud, "readout");
                    }
                    Err(e) => {
                        stats.refused.fetch_add(1, Ordering::Relaxed);
                        tracing::error!(adapter = adapter.name(), error = %e, "readout lost: the spool refused it");
                    }
                }
            }
            Err(IecError::Link(e)) => return Err(e),
            Err(e) => {
                stats.failed.fetch_add(1, Ordering::Relaxed);
                tracing::error!(adapter = adapter.name(), error = %e, "poll failed");
            }
        }
        // Sleep out the interval in small steps so that a stop is seen soon.
        while !stop.load(Ordering::Relaxed) && started.elapsed() < interval {
            std::thread::sleep(
                (interval.saturating_sub(started.elapsed())).min(Duration::from_millis(100)),
            );
        }
    }
    Ok(())
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::Strategy as _;
    use std::io::{Read, Write};

    #[test]
    fn baud_characters() {
        assert_eq!(mode_c_baud(b'5'), Some(9600));
        assert_eq!(mode_c_baud(b'A'), None);
        assert_eq!(mode_c_char(9600), b'5');
        assert_eq!(mode_c_char(10_000), b'5');
        assert_eq!(mode_c_char(19_200), b'6');
        assert_eq!(mode_c_char(100), b'0');
        assert_eq!(option_select(b'5'), *b"\x06050\r\n");
        assert_eq!(request("12345678"), b"/?12345678!\r\n");
    }

    /// A meter in memory: answers the request with `ident`, the option select with `data`.
    struct MockMeter {
        ident: Vec<u8>,
        data: Vec<u8>,
        inbox: std::collections::VecDeque<u8>,
        baud: u32,
        bauds: Vec<u32>,
    }

    impl MockMeter {
        fn new(ident: &[u8], data: &[u8]) -> Self {
            MockMeter {
                ident: ident.to_vec(),
                data: data.to_vec(),
                inbox: Default::default(),
                baud: 300,
                bauds: vec![],
            }
        }
    }

    impl Read for MockMeter {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            if self.inbox.is_empty() {
                std::thread::sleep(Duration::from_micros(200));
                return Err(std::io::ErrorKind::TimedOut.into());
            }
            let n = buf.len().min(self.inbox.len()).min(7);
            for b in buf.iter_mut().take(n) {
                *b = self.inbox.pop_front().unwrap();
            }
            Ok(n)
        }
    }

    impl Write for MockMeter {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            if buf.starts_with(b"/?") {
                self.inbox.extend(self.ident.iter());
            } else if buf.first() == Some(&ACK) {
                self.inbox.extend(self.data.iter());
            }
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Link for MockMeter {
        fn set_baud(&mut self, baud: u32) -> Result<(), LinkError> {
            self.baud = baud;
            self.bauds.push(baud);
            Ok(())
        }
        fn baud(&self) -> Result<u32, LinkError> {
            Ok(self.baud)
        }
        fn set_timeout(&mut self, _: Duration) -> Result<(), LinkError> {
            Ok(())
        }
        fn clear_input(&mut self) -> Result<(), LinkError> {
            self.inbox.clear();
            Ok(())
        }
        fn drain(&mut self) -> Result<(), LinkError> {
            Ok(())
        }
    }

    fn quick() -> ModeCConfig {
        ModeCConfig {
            ident_timeout: Duration::from_millis(20),
            ack_delay: Duration::ZERO,
            data_timeout: Duration::from_millis(20),
            readout_timeout: Duration::from_millis(200),
            max_readout: 4096,
            retry_pause: Duration::ZERO,
            ..ModeCConfig::default()
        }
    }

    fn data_message(body: &[u8]) -> Vec<u8> {
        let mut d = vec![STX];
        d.extend_from_slice(body);
        d.push(ETX);
        let bcc = d[1..].iter().fold(0, |a, b| a ^ b);
        d.push(bcc);
        d
    }

    #[test]
    fn a_session_in_memory_lowers_the_baud_to_the_bound() {
        let data = data_message(b"1.8.0(000123.456*kWh)\r\n!\r\n");
        let mut m = MockMeter::new(b"/?!\r\n/XYZ6METER\r\n", &data);
        let cfg = ModeCConfig {
            max_baud: 9600,
            ..quick()
        };
        let r = read_mode_c(&mut m, &cfg).unwrap();
        assert_eq!(r.baud, 9600);
        assert_eq!(m.bauds, vec![9600]);
        let mut want = b"/XYZ6METER\r\n".to_vec();
        want.extend_from_slice(&data);
        assert_eq!(r.frame, want);
    }

    #[test]
    fn overlong_and_partial_data_fail_clearly() {
        let mut long = vec![STX];
        long.extend(std::iter::repeat_n(b'1', 5000));
        let mut m = MockMeter::new(b"/XYZ5M\r\n", &long);
        assert!(matches!(
            read_mode_c(&mut m, &quick()),
            Err(IecError::TooLong { limit: 4096 })
        ));
        let mut m = MockMeter::new(b"/XYZ5M\r\n", &[STX, b'1', EOT, 0x30]);
        assert!(matches!(
            read_mode_c(&mut m, &quick()),
            Err(IecError::PartialBlock { bytes: 1 })
        ));
        let mut m = MockMeter::new(&[b'/'; 100], &[]);
        assert!(matches!(
            read_mode_c(&mut m, &quick()),
            Err(IecError::BadIdent { .. })
        ));
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]

        #[test]
        fn random_answers_never_panic_nor_hang(
            ident in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300),
            data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..600),
        ) {
            let mut m = MockMeter::new(&ident, &data);
            let started = Instant::now();
            let _ = read_mode_c(&mut m, &quick());
            proptest::prop_assert!(started.elapsed() < Duration::from_secs(2));
        }

        #[test]
        fn a_good_readout_after_noise_is_read(
            noise1 in proptest::collection::vec(proptest::prelude::any::<u8>().prop_filter("no slash", |b| *b != b'/'), 0..200),
            noise2 in proptest::collection::vec(proptest::prelude::any::<u8>().prop_filter("no STX", |b| *b != STX), 0..200),
        ) {
            let data = data_message(b"0.0.0(20000003)\r\n1.8.0(000001.000*kWh)\r\n!\r\n");
            let mut ident = noise1.clone();
            ident.extend_from_slice(b"\r\n/AMI5SIM-IEC\r\n");
            let mut d = noise2.clone();
            d.extend_from_slice(&data);
            let mut m = MockMeter::new(&ident, &d);
            let r = read_mode_c(&mut m, &quick()).unwrap();
            proptest::prop_assert_eq!(r.ident.as_str(), "AMI5SIM-IEC");
            proptest::prop_assert!(r.frame.ends_with(&data));
        }
    }

    #[test]
    fn identification_lines() {
        let i = parse_ident(b"/AMI5SIM-IEC").unwrap();
        assert_eq!(
            (i.manufacturer.as_str(), i.z, i.ident.as_str()),
            ("AMI", b'5', "SIM-IEC")
        );
        let i = parse_ident(b"/ISk5\\2MT382-1000").unwrap();
        assert_eq!(i.ident, "\\2MT382-1000");
        assert!(matches!(
            parse_ident(b"/AM"),
            Err(IecError::BadIdent { .. })
        ));
        assert!(matches!(
            parse_ident(b"/1235x"),
            Err(IecError::BadIdent { .. })
        ));
        assert!(matches!(
            parse_ident(b"/AB\x01\x02x"),
            Err(IecError::BadIdent { .. })
        ));
    }
}
