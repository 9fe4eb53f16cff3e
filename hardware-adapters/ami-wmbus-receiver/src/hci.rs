//! The host controller interface (HCI) of the IMST iM871A wireless M-Bus USB dongle, as its
//! public "WMBus HCI" specification describes it, and the frames a receiver cares about.
//!
//! ```text
//! SOF 0xA5 | control (4 bits) + endpoint (4 bits) | message id | length | payload
//!          | [time stamp, 4 bytes LE] | [RSSI, 1 byte] | [CRC-16, 2 bytes LE]
//! ```
//!
//! Control bits (high nibble): `0x2` a time stamp follows the payload, `0x4` an RSSI byte,
//! `0x8` a CRC-16 closes the frame; `0x1` is reserved. The CRC is CRC-16/X-25 (the CCITT
//! polynomial, reflected, initial 0xFFFF, complemented) over every byte after SOF, sent low
//! byte first. Endpoints: 1 device management, 2 radio link, 3 radio link test, 4 hardware
//! test. A received radio telegram is radio link message `0x03` (`WMBUSMSG_IND`) whose
//! payload is the wireless M-Bus frame from its C field on, without L field and without the
//! link layer's CRC blocks: the telegram is `[length] ++ payload`.
//!
//! [`Splitter`] finds frames in the byte stream. It keeps the bytes from a candidate SOF to
//! the end of the frame its header announces (at most [`MAX_FRAME`]), so nothing it holds is
//! unbounded; a candidate that turns out wrong (reserved bit, unknown endpoint or message,
//! CRC mismatch, or silence before its end) loses only its SOF byte, and the bytes after it
//! are searched again, so a frame right after noise or after a false SOF is still found.

/// Start of frame.
pub const SOF: u8 = 0xA5;
/// Endpoint: device management.
pub const DEVMGMT: u8 = 0x01;
/// Endpoint: radio link.
pub const RADIOLINK: u8 = 0x02;
/// Endpoint: radio link test.
pub const RADIOLINKTEST: u8 = 0x03;
/// Endpoint: hardware test.
pub const HWTEST: u8 = 0x04;
/// Radio link message: a wireless M-Bus telegram received.
pub const WMBUSMSG_IND: u8 = 0x03;

/// Control bit: time stamp attached.
pub const CTRL_TIMESTAMP: u8 = 0x2;
/// Control bit: RSSI attached.
pub const CTRL_RSSI: u8 = 0x4;
/// Control bit: CRC-16 attached.
pub const CTRL_CRC: u8 = 0x8;

/// The longest frame: header 4, payload 255, time stamp 4, RSSI 1, CRC 2.
pub const MAX_FRAME: usize = 4 + 255 + 4 + 1 + 2;

/// The received signal strength in dBm of the raw RSSI byte an iM871A attaches.
///
/// The byte is the radio chip's RSSI register (a Silicon Labs Si1002 in the iM871A), which
/// rises by about half a dB per step. Two independent hosts of the iM871A convert it with the
/// same straight line, `dBm = 8/15 * raw - 380/3`, through (50, -100 dBm) and (200, -20 dBm):
/// the OpenMUC jmbus `WMBusConnectionImst` ("tested with the IMST iM871A-USB",
/// `m = 80/150`, `b = -100 - 4000/150`) and an IMST driver for Node.js
/// (`8.0/15.0 * rssi - 380.0/3.0`). wmbusmeters reads the same chip curve (Si1002 data sheet,
/// figure 7-3 "RSSI vs. input power") with nearby points, (45, -100) and (205, -20), and
/// saturates at 0 dBm; the two agree within 3 dB between -100 and -20 dBm. IMST's own
/// specification was not at hand to confirm either. The result is rounded to the nearest dB;
/// no clamp is applied (raw 0 gives -127 dBm, raw 255 gives +9 dBm, where the chip is
/// saturated anyway).
pub fn rssi_dbm(raw: u8) -> i16 {
    // 8/15 * raw - 380/3 = (8 * raw - 1900) / 15, rounded half away from zero.
    let n = 8 * i32::from(raw) - 1900;
    let q = if n >= 0 { (n + 7) / 15 } else { (n - 7) / 15 };
    q as i16
}

/// CRC-16/X-25 of `data`.
pub fn crc16(data: &[u8]) -> u16 {
    let mut crc: u16 = 0xFFFF;
    for &b in data {
        crc ^= u16::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0x8408
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// The highest message id of each endpoint (ids start at 1).
fn max_msg_id(endpoint: u8) -> Option<u8> {
    match endpoint {
        DEVMGMT => Some(0x27),
        RADIOLINK => Some(0x05),
        RADIOLINKTEST => Some(0x07),
        HWTEST => Some(0x02),
        _ => None,
    }
}

/// One HCI frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HciFrame {
    /// The endpoint.
    pub endpoint: u8,
    /// The message id.
    pub msg_id: u8,
    /// The payload.
    pub payload: Vec<u8>,
    /// The time stamp the dongle attached (its own ticks), if any.
    pub timestamp: Option<u32>,
    /// The RSSI the dongle attached (raw), if any.
    pub rssi: Option<u8>,
    /// Whether a CRC closed the frame (and matched).
    pub crc: bool,
}

impl HciFrame {
    /// The wireless M-Bus telegram of a `WMBUSMSG_IND` (L field put back in front), else
    /// `None`.
    pub fn telegram(&self) -> Option<Vec<u8>> {
        if self.endpoint != RADIOLINK || self.msg_id != WMBUSMSG_IND || self.payload.is_empty() {
            return None;
        }
        let mut t = Vec::with_capacity(self.payload.len() + 1);
        t.push(u8::try_from(self.payload.len()).ok()?);
        t.extend_from_slice(&self.payload);
        Some(t)
    }

    /// The frame on the wire, as the dongle sends it (for tests and simulators). A payload
    /// longer than 255 bytes is cut to 255.
    pub fn encode(&self) -> Vec<u8> {
        let payload = self
            .payload
            .get(..self.payload.len().min(255))
            .unwrap_or_default();
        let mut ctrl = 0u8;
        if self.timestamp.is_some() {
            ctrl |= CTRL_TIMESTAMP;
        }
        if self.rssi.is_some() {
            ctrl |= CTRL_RSSI;
        }
        if self.crc {
            ctrl |= CTRL_CRC;
        }
        let mut f = Vec::with_capacity(payload.len() + 11);
        f.push(SOF);
        f.push((ctrl << 4) | (self.endpoint & 0x0F));
        f.push(self.msg_id);
        f.push(payload.len() as u8);
        f.extend_from_slice(payload);
        if let Some(t) = self.timestamp {
            f.extend_from_slice(&t.to_le_bytes());
        }
        if let Some(r) = self.rssi {
            f.push(r);
        }
        if self.crc {
            let c = crc16(f.get(1..).unwrap_or_default());
            f.extend_from_slice(&c.to_le_bytes());
        }
        f
    }

    /// The RSSI attached, in dBm ([`rssi_dbm`]).
    pub fn rssi_dbm(&self) -> Option<i16> {
        self.rssi.map(rssi_dbm)
    }

    /// A `WMBUSMSG_IND` carrying `telegram` (L field first, without CRC blocks), with an RSSI
    /// and a CRC, as a dongle configured for both sends it.
    pub fn indication(telegram: &[u8], rssi: Option<u8>, crc: bool) -> HciFrame {
        HciFrame {
            endpoint: RADIOLINK,
            msg_id: WMBUSMSG_IND,
            payload: telegram.get(1..).unwrap_or_default().to_vec(),
            timestamp: None,
            rssi,
            crc,
        }
    }
}

/// Why bytes were dropped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reason {
    /// Bytes outside any frame.
    Noise,
    /// The reserved control bit is set.
    ReservedBit,
    /// No such endpoint.
    UnknownEndpoint(u8),
    /// No such message on the endpoint.
    UnknownMessage {
        /// The endpoint.
        endpoint: u8,
        /// The message id.
        msg_id: u8,
    },
    /// The CRC does not match.
    Crc {
        /// The CRC sent.
        sent: u16,
        /// The CRC of what arrived.
        computed: u16,
    },
    /// The frame has no CRC and the receiver requires one.
    NoCrc,
    /// The line fell silent before the frame's end.
    Truncated {
        /// Bytes the header announced.
        expected: usize,
        /// Bytes that came.
        got: usize,
    },
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Reason::Noise => f.write_str("noise outside frames"),
            Reason::ReservedBit => f.write_str("reserved control bit set"),
            Reason::UnknownEndpoint(e) => write!(f, "unknown endpoint {e:#x}"),
            Reason::UnknownMessage { endpoint, msg_id } => {
                write!(f, "unknown message {msg_id:#04x} on endpoint {endpoint:#x}")
            }
            Reason::Crc { sent, computed } => {
                write!(f, "CRC {sent:#06x} sent, {computed:#06x} computed")
            }
            Reason::NoCrc => f.write_str("frame without CRC, and one is required"),
            Reason::Truncated { expected, got } => {
                write!(f, "silence after {got} of {expected} bytes")
            }
        }
    }
}

/// What the splitter found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Piece {
    /// A frame whose header (and CRC, where sent) checked.
    Frame(HciFrame),
    /// Dropped bytes: noise, or the SOF of a candidate that failed.
    Rejected {
        /// Why.
        reason: Reason,
        /// How many bytes.
        bytes: usize,
    },
}

/// Finds HCI frames in a byte stream.
#[derive(Clone, Debug, Default)]
pub struct Splitter {
    buf: Vec<u8>,
    require_crc: bool,
    noise: usize,
}

enum Check {
    /// Not enough bytes yet.
    More,
    /// A frame of this many bytes.
    Frame(HciFrame, usize),
    /// The candidate at the front is wrong.
    Bad(Reason),
}

impl Splitter {
    /// A splitter; with `require_crc`, frames without CRC are dropped too.
    pub fn new(require_crc: bool) -> Self {
        Splitter {
            buf: Vec::with_capacity(MAX_FRAME),
            require_crc,
            noise: 0,
        }
    }

    /// From now on, drop (or accept) frames without a CRC; bytes held stay.
    pub fn set_require_crc(&mut self, require: bool) {
        self.require_crc = require;
    }

    /// Whether frames without a CRC are dropped.
    pub fn requires_crc(&self) -> bool {
        self.require_crc
    }

    /// Bytes held (never more than [`MAX_FRAME`]).
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Feeds the next bytes; returns what they completed.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<Piece> {
        let mut out = Vec::new();
        for chunk in bytes.chunks(MAX_FRAME) {
            self.buf.extend_from_slice(chunk);
            self.scan(&mut out);
        }
        out
    }

    /// The line fell silent: a partial candidate at the front fails (its SOF is dropped and
    /// the rest searched again); noise so far is reported.
    pub fn idle(&mut self) -> Vec<Piece> {
        let mut out = Vec::new();
        while !self.buf.is_empty() {
            let expected = self.expected_len().unwrap_or(4);
            self.reject_front(
                Reason::Truncated {
                    expected,
                    got: self.buf.len(),
                },
                &mut out,
            );
            self.scan(&mut out);
        }
        self.flush_noise(&mut out);
        out
    }

    fn flush_noise(&mut self, out: &mut Vec<Piece>) {
        if self.noise > 0 {
            out.push(Piece::Rejected {
                reason: Reason::Noise,
                bytes: self.noise,
            });
            self.noise = 0;
        }
    }

    fn reject_front(&mut self, reason: Reason, out: &mut Vec<Piece>) {
        self.flush_noise(out);
        out.push(Piece::Rejected { reason, bytes: 1 });
        self.buf.drain(..1.min(self.buf.len()));
    }

    fn expected_len(&self) -> Option<usize> {
        let ctrl = self.buf.get(1)? >> 4;
        let len = usize::from(*self.buf.get(3)?);
        Some(
            4 + len
                + if ctrl & CTRL_TIMESTAMP != 0 { 4 } else { 0 }
                + usize::from(ctrl & CTRL_RSSI != 0)
                + if ctrl & CTRL_CRC != 0 { 2 } else { 0 },
        )
    }

    fn scan(&mut self, out: &mut Vec<Piece>) {
        loop {
            // Drop noise up to the next SOF.
            let skip = self
                .buf
                .iter()
                .position(|&b| b == SOF)
                .unwrap_or(self.buf.len());
            if skip > 0 {
                self.noise += skip;
                self.buf.drain(..skip);
            }
            if self.buf.is_empty() {
                return;
            }
            match self.check() {
                Check::More => return,
                Check::Frame(f, n) => {
                    self.flush_noise(out);
                    out.push(Piece::Frame(f));
                    self.buf.drain(..n);
                }
                Check::Bad(reason) => self.reject_front(reason, out),
            }
        }
    }

    fn check(&self) -> Check {
        let b = &self.buf;
        let Some(&cb) = b.get(1) else {
            return Check::More;
        };
        let (ctrl, endpoint) = (cb >> 4, cb & 0x0F);
        if ctrl & 0x1 != 0 {
            return Check::Bad(Reason::ReservedBit);
        }
        let Some(max) = max_msg_id(endpoint) else {
            return Check::Bad(Reason::UnknownEndpoint(endpoint));
        };
        let Some(&msg_id) = b.get(2) else {
            return Check::More;
        };
        if msg_id == 0 || msg_id > max {
            return Check::Bad(Reason::UnknownMessage { endpoint, msg_id });
        }
        if self.require_crc && ctrl & CTRL_CRC == 0 {
            return Check::Bad(Reason::NoCrc);
        }
        let Some(total) = self.expected_len() else {
            return Check::More;
        };
        let Some(frame) = b.get(..total) else {
            return Check::More;
        };
        let len = usize::from(frame.get(3).copied().unwrap_or(0));
        let mut at = 4 + len;
        let payload = frame.get(4..at).unwrap_or_default().to_vec();
        let timestamp = if ctrl & CTRL_TIMESTAMP != 0 {
            let t = frame
                .get(at..at + 4)
                .and_then(|s| <[u8; 4]>::try_from(s).ok())
                .map(u32::from_le_bytes);
            at += 4;
            t
        } else {
            None
        };
        let rssi = if ctrl & CTRL_RSSI != 0 {
            let r = frame.get(at).copied();
            at += 1;
            r
        } else {
            None
        };
        let crc = ctrl & CTRL_CRC != 0;
        if crc {
            let sent = frame
                .get(at..at + 2)
                .map(|s| u16::from_le_bytes([s[0], s[1]]))
                .unwrap_or(0);
            let computed = crc16(frame.get(1..at).unwrap_or_default());
            if sent != computed {
                return Check::Bad(Reason::Crc { sent, computed });
            }
        }
        Check::Frame(
            HciFrame {
                endpoint,
                msg_id,
                payload,
                timestamp,
                rssi,
                crc,
            },
            total,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn frames(p: &[Piece]) -> Vec<&HciFrame> {
        p.iter()
            .filter_map(|p| match p {
                Piece::Frame(f) => Some(f),
                Piece::Rejected { .. } => None,
            })
            .collect()
    }

    fn telegram() -> Vec<u8> {
        // L C M(2) A(4) V T CI ... (a stripped wireless frame).
        let mut t = vec![
            0, 0x44, 0x2D, 0x2C, 0x78, 0x56, 0x34, 0x12, 0x01, 0x02, 0x7A, 0x01, 0x00, 0x00, 0x00,
        ];
        t.extend(0u8..20);
        t[0] = (t.len() - 1) as u8;
        t
    }

    #[test]
    fn rssi_in_dbm() {
        assert_eq!(rssi_dbm(50), -100);
        assert_eq!(rssi_dbm(200), -20);
        assert_eq!(rssi_dbm(0), -127);
        assert_eq!(rssi_dbm(255), 9);
        // 8/15 * 150 - 126.67 = -46.67
        assert_eq!(rssi_dbm(150), -47);
        // 8/15 * 100 - 126.67 = -73.33
        assert_eq!(rssi_dbm(100), -73);
        for raw in 0..=255u8 {
            let exact = 8.0 / 15.0 * f64::from(raw) - 380.0 / 3.0;
            assert!((f64::from(rssi_dbm(raw)) - exact).abs() <= 0.5, "{raw}");
        }
        assert_eq!(
            HciFrame::indication(&[1, 0x44], Some(200), true).rssi_dbm(),
            Some(-20)
        );
    }

    #[test]
    fn crc_check_value() {
        // CRC-16/X-25 of "123456789".
        assert_eq!(crc16(b"123456789"), 0x906E);
    }

    #[test]
    fn round_trip_with_every_attachment() {
        let t = telegram();
        let mut f = HciFrame::indication(&t, Some(0xC8), true);
        f.timestamp = Some(0x0102_0304);
        let wire = f.encode();
        assert_eq!(wire[1], 0xE2);
        let p = Splitter::new(true).push(&wire);
        assert_eq!(frames(&p), vec![&f]);
        assert_eq!(frames(&p)[0].telegram().unwrap(), t);
    }

    #[test]
    fn bad_crc_loses_only_the_sof_and_the_next_frame_is_found() {
        let t = telegram();
        let good = HciFrame::indication(&t, Some(0x80), true).encode();
        let mut bad = good.clone();
        bad[10] ^= 0xFF;
        let mut stream = bad.clone();
        stream.extend_from_slice(&good);
        let p = Splitter::new(false).push(&stream);
        assert_eq!(frames(&p).len(), 1);
        assert!(p.iter().any(|x| matches!(
            x,
            Piece::Rejected {
                reason: Reason::Crc { .. },
                ..
            }
        )));
    }

    #[test]
    fn a_false_sof_that_swallows_a_frame_is_undone_by_silence() {
        let t = telegram();
        let good = HciFrame::indication(&t, None, false).encode();
        // A5 22 03 FF: a plausible header announcing 255 bytes, without CRC.
        let mut stream = vec![0x11, SOF, 0x22, 0x03, 0xFF];
        stream.extend_from_slice(&good);
        let mut s = Splitter::new(false);
        let p = s.push(&stream);
        assert!(frames(&p).is_empty());
        let p = s.idle();
        assert_eq!(frames(&p).len(), 1);
        assert_eq!(frames(&p)[0].telegram().unwrap(), t);
        assert_eq!(s.buffered(), 0);
        // With CRCs required, the false SOF (no CRC bit) fails at once.
        let p = Splitter::new(true).push(&{
            let mut s = vec![SOF, 0x22, 0x03, 0xFF];
            s.extend_from_slice(&HciFrame::indication(&t, None, true).encode());
            s
        });
        assert_eq!(frames(&p).len(), 1);
    }

    #[test]
    fn other_messages_carry_no_telegram() {
        let f = HciFrame {
            endpoint: DEVMGMT,
            msg_id: 0x02,
            payload: vec![],
            timestamp: None,
            rssi: None,
            crc: false,
        };
        let p = Splitter::new(false).push(&f.encode());
        assert_eq!(frames(&p)[0].telegram(), None);
        let p = Splitter::new(false).push(&[SOF, 0x07, 0x01, 0x00, SOF, 0x12, 0x09, 0x00]);
        assert!(frames(&p).is_empty());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn random_bytes_never_panic_and_stay_bounded(bytes in proptest::collection::vec(any::<u8>(), 0..4096), crc in any::<bool>()) {
            let mut s = Splitter::new(crc);
            let _ = s.push(&bytes);
            prop_assert!(s.buffered() <= MAX_FRAME);
            let _ = s.idle();
            prop_assert_eq!(s.buffered(), 0);
        }

        #[test]
        fn a_good_frame_after_garbage_is_found(
            garbage in proptest::collection::vec(any::<u8>().prop_filter("no SOF", |b| *b != SOF), 0..1024),
            rssi in proptest::option::of(any::<u8>()),
            split in 0usize..1200,
        ) {
            let t = telegram();
            let f = HciFrame::indication(&t, rssi, true);
            let mut stream = garbage.clone();
            stream.extend_from_slice(&f.encode());
            let mut s = Splitter::new(false);
            let cut = split.min(stream.len());
            let mut p = s.push(&stream[..cut]);
            p.extend(s.push(&stream[cut..]));
            prop_assert_eq!(frames(&p), vec![&f]);
        }

        #[test]
        fn a_good_frame_after_false_sofs_is_found_with_crc(
            garbage in proptest::collection::vec(any::<u8>(), 0..300),
        ) {
            // Garbage with SOFs in it, then silence, then the frame: whatever the garbage
            // announced, the frame comes out once the line has been idle.
            let t = telegram();
            let f = HciFrame::indication(&t, Some(1), true);
            let mut s = Splitter::new(true);
            let mut p = s.push(&garbage);
            p.extend(s.idle());
            p.extend(s.push(&f.encode()));
            prop_assert_eq!(frames(&p).last().copied(), Some(&f));
        }
    }
}
