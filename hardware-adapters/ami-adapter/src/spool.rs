//! The on-disk spool: every frame an adapter receives is appended here first, and leaves only
//! once the bus has stored it, so nothing is lost while NATS or the WAN is down, or across a
//! restart of the adapter.
//!
//! Layout of a spool directory:
//! - `spool-id`: a random id made when the spool is created; it goes into every frame's
//!   de-duplication id, so a new spool never collides with an old one's sequence numbers;
//! - `seg-<first sequence>.log`: segments of records `[word u32][crc32 u32][body]`, appended
//!   in order and synced per batch; a torn record at the end of the last segment (a crash
//!   while writing) is cut off when the spool opens;
//! - `acked`: the sequence of the last frame the bus stored, replaced atomically.
//!
//! Records are versioned in the top byte of their first word, whose low 24 bits are the body's
//! length (bodies are at most [`MAX_RECORD`], 1 MiB, so every record written before versions
//! existed has a zero there):
//! - version 0 (every record before RSSI was carried, and every frame without RSSI since,
//!   byte for byte): body `seq u64 | received_at_ms i64 | proto_len u8 | protocol |
//!   meter_len u16 (0xFFFF: none) | meter | tp_len u8 | traceparent | data`, CRC-32 of the
//!   body;
//! - version 1 (a frame with [`SpoolFrame::rssi_dbm`]): version 0's body with `rssi_dbm i16`
//!   between the traceparent and the data; its CRC-32 covers the version byte, then the body,
//!   so a flipped version byte fails the check.
//!
//! A record whose CRC checks but whose version this code does not know (written by a newer
//! adapter) stops the spool from opening with [`SpoolError::UnknownVersion`] rather than being
//! cut off as torn: downgrading an adapter must not destroy frames it cannot read. An older
//! adapter reading version 1 records takes them for a torn tail: drain the spool before
//! downgrading a receiver that carries RSSI.
//!
//! The spool is bounded: an append that would take it past `max_bytes` is refused with
//! [`SpoolError::Full`] rather than dropping older frames; the link then holds its frames (a
//! meter keeps its own profile) until the bus catches up.

use std::fs::{self, File, OpenOptions};
use std::io::{BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use bytes::Bytes;

/// Segments roll over past this size.
const SEGMENT_BYTES: u64 = 16 << 20;
/// Largest record body accepted (a frame plus its metadata).
pub const MAX_RECORD: usize = 1 << 20;
/// The length bits of a record's first word.
const LEN_MASK: u32 = 0x00FF_FFFF;
/// Where the record version sits in a record's first word.
const VERSION_SHIFT: u32 = 24;
/// Record version: the body before RSSI was carried.
const V0: u8 = 0;
/// Record version: RSSI in dBm between traceparent and data.
const V1_RSSI: u8 = 1;
const _: () = assert!(MAX_RECORD <= LEN_MASK as usize);

/// What went wrong in the spool.
#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    /// A file could not be read or written.
    #[error("spool {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The spool holds `max_bytes` already.
    #[error("spool full: {used} of {max} bytes held; frames wait at the link")]
    Full {
        /// Bytes held.
        used: u64,
        /// The bound.
        max: u64,
    },
    /// A frame is larger than a record may be.
    #[error("frame of {0} bytes is larger than the spool accepts ({MAX_RECORD})")]
    TooLarge(usize),
    /// A field does not fit its record slot.
    #[error("{0} is too long for the spool record")]
    FieldTooLong(&'static str),
    /// A record is of a version this code cannot read (written by a newer adapter).
    #[error(
        "spool {path}: record version {version} is newer than this adapter reads; run the newer adapter until its spool is drained"
    )]
    UnknownVersion {
        /// The segment.
        path: PathBuf,
        /// The record's version.
        version: u8,
    },
    /// The acknowledged sequence is beyond what was appended.
    #[error("ack of sequence {acked} beyond the last appended {last}")]
    AckBeyondEnd {
        /// The sequence acked.
        acked: u64,
        /// The last appended.
        last: u64,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> SpoolError + '_ {
    move |source| SpoolError::Io {
        path: path.to_owned(),
        source,
    }
}

/// A frame as the link received it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpoolFrame {
    /// Protocol name (`dsmr`, `dlms`, ...).
    pub protocol: String,
    /// The meter the link believes sent it.
    pub meter_hint: Option<String>,
    /// When it was received, ms since the Unix epoch, UTC.
    pub received_at_ms: i64,
    /// W3C trace context of the receiving span.
    pub traceparent: Option<String>,
    /// Received signal strength in dBm, for links over radio that measure it.
    pub rssi_dbm: Option<i16>,
    /// The bytes.
    pub data: Bytes,
}

/// A frame in the spool, with its sequence.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpoolRecord {
    /// Its sequence number (from 1, gap-free).
    pub seq: u64,
    /// The frame.
    pub frame: SpoolFrame,
}

#[derive(Debug)]
struct Segment {
    first: u64,
    path: PathBuf,
    bytes: u64,
    /// Sequence of its last record (first - 1 when empty).
    last: u64,
}

/// Where the reader stands: the next record to read and where it starts.
#[derive(Debug, Clone, Copy)]
struct ReadPos {
    segment_first: u64,
    offset: u64,
    seq: u64,
}

/// The spool of one adapter.
#[derive(Debug)]
pub struct Spool {
    dir: PathBuf,
    id: String,
    max_bytes: u64,
    segments: Vec<Segment>,
    writer: Option<File>,
    next_seq: u64,
    acked: u64,
    read: Option<ReadPos>,
}

fn encode(seq: u64, f: &SpoolFrame, out: &mut Vec<u8>) -> Result<(), SpoolError> {
    let proto = f.protocol.as_bytes();
    let meter = f.meter_hint.as_deref().map(str::as_bytes);
    let tp = f.traceparent.as_deref().unwrap_or("").as_bytes();
    let proto_len = u8::try_from(proto.len()).map_err(|_| SpoolError::FieldTooLong("protocol"))?;
    let tp_len = u8::try_from(tp.len()).map_err(|_| SpoolError::FieldTooLong("traceparent"))?;
    let meter_len = match meter {
        Some(m) if m.len() < 0xFFFF => m.len() as u16,
        Some(_) => return Err(SpoolError::FieldTooLong("meter hint")),
        None => 0xFFFF,
    };
    let version = if f.rssi_dbm.is_some() { V1_RSSI } else { V0 };
    let body_len = 8
        + 8
        + 1
        + proto.len()
        + 2
        + meter.map_or(0, <[u8]>::len)
        + 1
        + tp.len()
        + if version == V1_RSSI { 2 } else { 0 }
        + f.data.len();
    if body_len > MAX_RECORD {
        return Err(SpoolError::TooLarge(f.data.len()));
    }
    let start = out.len();
    let word = (body_len as u32) | (u32::from(version) << VERSION_SHIFT);
    out.extend_from_slice(&word.to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    let body = out.len();
    out.extend_from_slice(&seq.to_le_bytes());
    out.extend_from_slice(&f.received_at_ms.to_le_bytes());
    out.push(proto_len);
    out.extend_from_slice(proto);
    out.extend_from_slice(&meter_len.to_le_bytes());
    if let Some(m) = meter {
        out.extend_from_slice(m);
    }
    out.push(tp_len);
    out.extend_from_slice(tp);
    if let Some(r) = f.rssi_dbm {
        out.extend_from_slice(&r.to_le_bytes());
    }
    out.extend_from_slice(&f.data);
    let crc = record_crc(version, &out[body..]);
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
    Ok(())
}

/// The CRC-32 of a record: of its body for version 0 (as before versions existed), of the
/// version byte then the body for later versions.
fn record_crc(version: u8, body: &[u8]) -> u32 {
    if version == V0 {
        return crc32fast::hash(body);
    }
    let mut h = crc32fast::Hasher::new();
    h.update(&[version]);
    h.update(body);
    h.finalize()
}

/// Splits `n` bytes off the front of `b`.
fn take<'a>(b: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
    if b.len() < n {
        return None;
    }
    let (head, rest) = b.split_at(n);
    *b = rest;
    Some(head)
}

fn decode(version: u8, body: &[u8]) -> Option<SpoolRecord> {
    let mut b = body;
    let seq = u64::from_le_bytes(take(&mut b, 8)?.try_into().ok()?);
    let received_at_ms = i64::from_le_bytes(take(&mut b, 8)?.try_into().ok()?);
    let proto_len = *take(&mut b, 1)?.first()? as usize;
    let protocol = String::from_utf8(take(&mut b, proto_len)?.to_vec()).ok()?;
    let meter_len = u16::from_le_bytes(take(&mut b, 2)?.try_into().ok()?);
    let meter_hint = if meter_len == 0xFFFF {
        None
    } else {
        Some(String::from_utf8(take(&mut b, meter_len as usize)?.to_vec()).ok()?)
    };
    let tp_len = *take(&mut b, 1)?.first()? as usize;
    let tp = String::from_utf8(take(&mut b, tp_len)?.to_vec()).ok()?;
    let rssi_dbm = match version {
        V1_RSSI => Some(i16::from_le_bytes(take(&mut b, 2)?.try_into().ok()?)),
        _ => None,
    };
    Some(SpoolRecord {
        seq,
        frame: SpoolFrame {
            protocol,
            meter_hint,
            received_at_ms,
            traceparent: (!tp.is_empty()).then_some(tp),
            rssi_dbm,
            data: Bytes::copy_from_slice(b),
        },
    })
}

/// Reads the record at the reader's position (in segment `path`): `Ok(None)` at a clean end
/// or a torn tail; a whole record of a version this code does not know is an error.
fn read_record(r: &mut impl Read, path: &Path) -> Result<Option<(SpoolRecord, u64)>, SpoolError> {
    let mut head = [0u8; 8];
    match r.read_exact(&mut head) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(io(path)(e)),
    }
    let word = u32::from_le_bytes([head[0], head[1], head[2], head[3]]);
    let crc = u32::from_le_bytes([head[4], head[5], head[6], head[7]]);
    let len = (word & LEN_MASK) as usize;
    let version = (word >> VERSION_SHIFT) as u8;
    if len > MAX_RECORD {
        return Ok(None);
    }
    let mut body = vec![0u8; len];
    match r.read_exact(&mut body) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(io(path)(e)),
    }
    if record_crc(version, &body) != crc {
        return Ok(None);
    }
    if version > V1_RSSI {
        return Err(SpoolError::UnknownVersion {
            path: path.to_owned(),
            version,
        });
    }
    Ok(decode(version, &body).map(|rec| (rec, 8 + len as u64)))
}

fn new_id() -> String {
    ami_bus::trace::random_bytes::<8>()
        .iter()
        .map(|x| format!("{x:02x}"))
        .collect()
}

impl Spool {
    /// Opens (or creates) the spool in `dir`, holding at most `max_bytes`.
    pub fn open(dir: &Path, max_bytes: u64) -> Result<Spool, SpoolError> {
        fs::create_dir_all(dir).map_err(io(dir))?;
        let id_path = dir.join("spool-id");
        let id = match fs::read_to_string(&id_path) {
            Ok(s) if !s.trim().is_empty() => s.trim().to_owned(),
            _ => {
                let id = new_id();
                write_atomic(&id_path, id.as_bytes())?;
                id
            }
        };
        let mut firsts: Vec<(u64, PathBuf)> = fs::read_dir(dir)
            .map_err(io(dir))?
            .filter_map(Result::ok)
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                let first = name
                    .strip_prefix("seg-")?
                    .strip_suffix(".log")?
                    .parse()
                    .ok()?;
                Some((first, e.path()))
            })
            .collect();
        firsts.sort();
        let mut segments = Vec::new();
        let mut expected: Option<u64> = None;
        for (first, path) in firsts {
            if expected.is_some_and(|e| e != first) {
                // A segment that does not continue the sequence is left from a torn roll-over:
                // what follows it cannot be trusted to be in order.
                break;
            }
            let (bytes, last) = scan(&path, first)?;
            segments.push(Segment {
                first,
                path,
                bytes,
                last,
            });
            expected = Some(last + 1);
        }
        let next_seq = segments.last().map_or(1, |s| s.last + 1);
        let first_seq = segments.first().map_or(1, |s| s.first);
        let acked = match fs::read_to_string(dir.join("acked")) {
            Ok(s) => s.trim().parse::<u64>().unwrap_or(0),
            Err(_) => 0,
        }
        .clamp(first_seq.saturating_sub(1), next_seq - 1);
        let mut spool = Spool {
            dir: dir.to_owned(),
            id,
            max_bytes,
            segments,
            writer: None,
            next_seq,
            acked,
            read: None,
        };
        spool.drop_acked_segments()?;
        Ok(spool)
    }

    /// The spool's random id (part of every frame's de-duplication id).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Sequence of the last frame the bus stored.
    pub fn acked(&self) -> u64 {
        self.acked
    }

    /// Sequence the next appended frame gets.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Frames appended and not yet acknowledged.
    pub fn pending(&self) -> u64 {
        self.next_seq - 1 - self.acked
    }

    /// Bytes on disk.
    pub fn bytes(&self) -> u64 {
        self.segments.iter().map(|s| s.bytes).sum()
    }

    /// Appends `frames` in order and syncs them to disk; returns the first sequence given.
    /// All or none: a refused batch appends nothing.
    pub fn append(&mut self, frames: &[SpoolFrame]) -> Result<u64, SpoolError> {
        let first_seq = self.next_seq;
        let mut buf = Vec::with_capacity(frames.iter().map(|f| f.data.len() + 64).sum());
        for (i, f) in frames.iter().enumerate() {
            encode(first_seq + i as u64, f, &mut buf)?;
        }
        let used = self.bytes();
        if used + buf.len() as u64 > self.max_bytes {
            return Err(SpoolError::Full {
                used,
                max: self.max_bytes,
            });
        }
        let roll = self
            .segments
            .last()
            .is_none_or(|s| s.bytes >= SEGMENT_BYTES);
        if roll {
            let path = self.dir.join(format!("seg-{first_seq:020}.log"));
            self.writer = None;
            self.segments.push(Segment {
                first: first_seq,
                path,
                bytes: 0,
                last: first_seq - 1,
            });
        }
        let Some(seg) = self.segments.last_mut() else {
            return Ok(first_seq);
        };
        if self.writer.is_none() {
            let f = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&seg.path)
                .map_err(io(&seg.path))?;
            self.writer = Some(f);
        }
        if let Some(w) = self.writer.as_mut() {
            w.write_all(&buf).map_err(io(&seg.path))?;
            w.sync_data().map_err(io(&seg.path))?;
        }
        if roll {
            // A new file's name must survive a crash too.
            if let Ok(d) = File::open(&self.dir) {
                let _ = d.sync_all();
            }
        }
        seg.bytes += buf.len() as u64;
        seg.last = first_seq + frames.len() as u64 - 1;
        self.next_seq += frames.len() as u64;
        Ok(first_seq)
    }

    /// Up to `max` frames after the last acknowledged one, in order.
    pub fn unacked(&mut self, max: usize) -> Result<Vec<SpoolRecord>, SpoolError> {
        self.read_from(self.acked + 1, max)
    }

    /// Up to `max` frames from sequence `from`, in order.
    pub fn read_from(&mut self, from: u64, max: usize) -> Result<Vec<SpoolRecord>, SpoolError> {
        let mut out = Vec::new();
        if from >= self.next_seq || max == 0 {
            return Ok(out);
        }
        let Some(idx) = self.segments.iter().rposition(|s| s.first <= from) else {
            return Ok(out);
        };
        let segs: Vec<(u64, u64, PathBuf)> = self.segments[idx..]
            .iter()
            .map(|s| (s.first, s.last, s.path.clone()))
            .collect();
        for (first, last, path) in segs {
            if out.len() >= max {
                break;
            }
            // Resume where the last read stopped when it is in this segment and not past `from`.
            let start = match self.read {
                Some(p) if p.segment_first == first && p.seq <= from.max(first) => p,
                _ => ReadPos {
                    segment_first: first,
                    offset: 0,
                    seq: first,
                },
            };
            let mut file = File::open(&path).map_err(io(&path))?;
            file.seek(SeekFrom::Start(start.offset))
                .map_err(io(&path))?;
            let mut r = BufReader::with_capacity(256 << 10, file);
            let mut pos = start;
            while out.len() < max && pos.seq <= last {
                let Some((rec, len)) = read_record(&mut r, &path)? else {
                    break;
                };
                pos.offset += len;
                pos.seq = rec.seq + 1;
                if rec.seq >= from {
                    out.push(rec);
                }
            }
            self.read = Some(pos);
        }
        Ok(out)
    }

    /// Records that the bus stored every frame up to `seq`; drops segments wholly acknowledged.
    pub fn ack(&mut self, seq: u64) -> Result<(), SpoolError> {
        if seq >= self.next_seq {
            return Err(SpoolError::AckBeyondEnd {
                acked: seq,
                last: self.next_seq - 1,
            });
        }
        if seq <= self.acked {
            return Ok(());
        }
        self.acked = seq;
        write_atomic(&self.dir.join("acked"), seq.to_string().as_bytes())?;
        self.drop_acked_segments()
    }

    fn drop_acked_segments(&mut self) -> Result<(), SpoolError> {
        // Keep the last segment (it is being written); drop older ones that are fully acked.
        while self.segments.len() > 1 && self.segments.first().is_some_and(|s| s.last <= self.acked)
        {
            let seg = self.segments.remove(0);
            fs::remove_file(&seg.path).map_err(io(&seg.path))?;
            if self.read.is_some_and(|p| p.segment_first == seg.first) {
                self.read = None;
            }
        }
        Ok(())
    }
}

/// Scans a segment: its valid length and last sequence; a torn tail is cut off.
fn scan(path: &Path, first: u64) -> Result<(u64, u64), SpoolError> {
    let file = File::open(path).map_err(io(path))?;
    let size = file.metadata().map_err(io(path))?.len();
    let mut r = BufReader::new(file);
    let (mut valid, mut last) = (0u64, first - 1);
    while let Some((rec, len)) = read_record(&mut r, path)? {
        if rec.seq != last + 1 {
            break;
        }
        valid += len;
        last = rec.seq;
    }
    if valid < size {
        tracing::warn!(
            segment = %path.display(),
            kept = valid,
            cut = size - valid,
            "spool segment ends in a torn record; cutting it off"
        );
        let f = OpenOptions::new()
            .write(true)
            .open(path)
            .map_err(io(path))?;
        f.set_len(valid).map_err(io(path))?;
        f.sync_all().map_err(io(path))?;
    }
    Ok((valid, last))
}

fn write_atomic(path: &Path, data: &[u8]) -> Result<(), SpoolError> {
    let tmp = path.with_extension("tmp");
    let mut f = File::create(&tmp).map_err(io(&tmp))?;
    f.write_all(data).map_err(io(&tmp))?;
    f.sync_data().map_err(io(&tmp))?;
    fs::rename(&tmp, path).map_err(io(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(i: u64) -> SpoolFrame {
        SpoolFrame {
            protocol: "dsmr".into(),
            meter_hint: i.is_multiple_of(2).then(|| format!("m{i}")),
            received_at_ms: i as i64,
            traceparent: None,
            rssi_dbm: None,
            data: Bytes::from(format!("frame {i}")),
        }
    }

    #[test]
    fn appends_reads_acks_and_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Spool::open(dir.path(), 1 << 20).unwrap();
        let frames: Vec<_> = (1..=10).map(frame).collect();
        assert_eq!(s.append(&frames).unwrap(), 1);
        let got = s.unacked(4).unwrap();
        assert_eq!(got.iter().map(|r| r.seq).collect::<Vec<_>>(), [1, 2, 3, 4]);
        assert_eq!(got[1].frame, frame(2));
        s.ack(4).unwrap();
        let id = s.id().to_owned();
        drop(s);
        let mut s = Spool::open(dir.path(), 1 << 20).unwrap();
        assert_eq!(s.id(), id);
        assert_eq!((s.acked(), s.next_seq(), s.pending()), (4, 11, 6));
        let rest = s.unacked(100).unwrap();
        assert_eq!(rest.len(), 6);
        assert_eq!(rest[0].seq, 5);
        assert_eq!(rest[5].frame, frame(10));
        assert!(matches!(s.ack(11), Err(SpoolError::AckBeyondEnd { .. })));
    }

    #[test]
    fn a_torn_tail_is_cut_and_the_rest_kept() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Spool::open(dir.path(), 1 << 20).unwrap();
        s.append(&(1..=3).map(frame).collect::<Vec<_>>()).unwrap();
        drop(s);
        let seg = dir.path().join(format!("seg-{:020}.log", 1));
        let mut f = OpenOptions::new().append(true).open(&seg).unwrap();
        f.write_all(&[40, 0, 0, 0, 1, 2, 3, 4, 5]).unwrap();
        drop(f);
        let mut s = Spool::open(dir.path(), 1 << 20).unwrap();
        assert_eq!(s.next_seq(), 4);
        s.append(&[frame(4)]).unwrap();
        let all = s.unacked(10).unwrap();
        assert_eq!(all.iter().map(|r| r.seq).collect::<Vec<_>>(), [1, 2, 3, 4]);
    }

    #[test]
    fn full_spool_refuses_and_keeps_what_it_has() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Spool::open(dir.path(), 200).unwrap();
        s.append(&[frame(1), frame(2), frame(3)]).unwrap();
        let err = s
            .append(&(4..=10).map(frame).collect::<Vec<_>>())
            .unwrap_err();
        assert!(matches!(err, SpoolError::Full { .. }), "{err}");
        assert_eq!(s.next_seq(), 4);
        assert_eq!(s.unacked(10).unwrap().len(), 3);
    }

    #[test]
    fn acknowledged_segments_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Spool::open(dir.path(), 1 << 30).unwrap();
        let big = SpoolFrame {
            data: Bytes::from(vec![7u8; 512 << 10]),
            ..frame(0)
        };
        for _ in 0..40 {
            s.append(std::slice::from_ref(&big)).unwrap();
        }
        let segs = || {
            fs::read_dir(dir.path())
                .unwrap()
                .filter(|e| {
                    e.as_ref()
                        .unwrap()
                        .file_name()
                        .to_string_lossy()
                        .starts_with("seg-")
                })
                .count()
        };
        assert!(segs() >= 2);
        s.ack(40).unwrap();
        assert_eq!(segs(), 1);
        assert_eq!(s.pending(), 0);
    }

    /// A record as adapters wrote them before records had versions, built by hand.
    fn old_record(seq: u64, meter: Option<&str>, tp: &str, data: &[u8]) -> Vec<u8> {
        let mut body = Vec::new();
        body.extend_from_slice(&seq.to_le_bytes());
        body.extend_from_slice(&1_700_000_000_000i64.to_le_bytes());
        body.push(4);
        body.extend_from_slice(b"dsmr");
        match meter {
            Some(m) => {
                body.extend_from_slice(&(m.len() as u16).to_le_bytes());
                body.extend_from_slice(m.as_bytes());
            }
            None => body.extend_from_slice(&[0xFF, 0xFF]),
        }
        body.push(tp.len() as u8);
        body.extend_from_slice(tp.as_bytes());
        body.extend_from_slice(data);
        let mut rec = (body.len() as u32).to_le_bytes().to_vec();
        rec.extend_from_slice(&crc32fast::hash(&body).to_le_bytes());
        rec.extend_from_slice(&body);
        rec
    }

    fn old_frame(meter: Option<&str>, tp: &str, data: &[u8]) -> SpoolFrame {
        SpoolFrame {
            protocol: "dsmr".into(),
            meter_hint: meter.map(str::to_owned),
            received_at_ms: 1_700_000_000_000,
            traceparent: (!tp.is_empty()).then(|| tp.to_owned()),
            rssi_dbm: None,
            data: Bytes::copy_from_slice(data),
        }
    }

    #[test]
    fn records_written_before_versions_still_read() {
        let dir = tempfile::tempdir().unwrap();
        let tp = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
        let mut seg = old_record(1, Some("E0025"), tp, b"/ISK5\r\n!1234\r\n");
        seg.extend(old_record(2, None, "", b"\x00\xff"));
        fs::write(dir.path().join(format!("seg-{:020}.log", 1)), &seg).unwrap();
        fs::write(dir.path().join("spool-id"), "0123456789abcdef").unwrap();
        let mut s = Spool::open(dir.path(), 1 << 20).unwrap();
        assert_eq!(
            (s.next_seq(), s.bytes()),
            (3, seg.len() as u64),
            "nothing cut"
        );
        let got = s.unacked(10).unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(
            got[0].frame,
            old_frame(Some("E0025"), tp, b"/ISK5\r\n!1234\r\n")
        );
        assert_eq!(got[1].frame, old_frame(None, "", b"\x00\xff"));
        // A frame without RSSI is still written exactly as before.
        let mut buf = Vec::new();
        encode(
            1,
            &old_frame(Some("E0025"), tp, b"/ISK5\r\n!1234\r\n"),
            &mut buf,
        )
        .unwrap();
        assert_eq!(buf, old_record(1, Some("E0025"), tp, b"/ISK5\r\n!1234\r\n"));
        // New records go after the old ones in the same segment, and all read back.
        let with_rssi = SpoolFrame {
            protocol: "wmbus".into(),
            rssi_dbm: Some(-87),
            ..old_frame(Some("AMI-10000002"), "", &[0x2E, 0x44])
        };
        let extreme = SpoolFrame {
            rssi_dbm: Some(i16::MIN),
            ..with_rssi.clone()
        };
        s.append(&[
            with_rssi.clone(),
            old_frame(None, "", b"x"),
            extreme.clone(),
        ])
        .unwrap();
        drop(s);
        let mut s = Spool::open(dir.path(), 1 << 20).unwrap();
        let all = s.unacked(10).unwrap();
        assert_eq!(
            all.iter().map(|r| r.seq).collect::<Vec<_>>(),
            [1, 2, 3, 4, 5]
        );
        assert_eq!(all[2].frame, with_rssi);
        assert_eq!(all[3].frame.rssi_dbm, None);
        assert_eq!(all[4].frame, extreme);
    }

    #[test]
    fn a_flipped_version_byte_fails_the_check() {
        let f = SpoolFrame {
            rssi_dbm: Some(-50),
            ..frame(1)
        };
        let mut buf = Vec::new();
        encode(1, &f, &mut buf).unwrap();
        assert_eq!(buf[3], V1_RSSI);
        let path = Path::new("seg");
        assert_eq!(
            read_record(&mut buf.as_slice(), path)
                .unwrap()
                .unwrap()
                .0
                .frame,
            f
        );
        let mut flipped = buf.clone();
        flipped[3] = V0;
        assert!(
            read_record(&mut flipped.as_slice(), path)
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn a_record_of_a_newer_version_stops_the_spool_rather_than_being_cut() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Spool::open(dir.path(), 1 << 20).unwrap();
        s.append(&[frame(1)]).unwrap();
        drop(s);
        // A well-formed record of version 9 (its CRC covers the version byte).
        let mut body = Vec::new();
        encode(2, &frame(2), &mut body).unwrap();
        let body = body[8..].to_vec();
        let mut rec = ((body.len() as u32) | (9 << VERSION_SHIFT))
            .to_le_bytes()
            .to_vec();
        rec.extend_from_slice(&record_crc(9, &body).to_le_bytes());
        rec.extend_from_slice(&body);
        let seg = dir.path().join(format!("seg-{:020}.log", 1));
        let before = fs::metadata(&seg).unwrap().len();
        let mut f = OpenOptions::new().append(true).open(&seg).unwrap();
        f.write_all(&rec).unwrap();
        drop(f);
        let err = Spool::open(dir.path(), 1 << 20).unwrap_err();
        assert!(
            matches!(err, SpoolError::UnknownVersion { version: 9, .. }),
            "{err}"
        );
        assert_eq!(
            fs::metadata(&seg).unwrap().len(),
            before + rec.len() as u64,
            "nothing cut"
        );
        // The same bytes with a wrong CRC are a torn tail, cut as before.
        let mut f = OpenOptions::new().write(true).open(&seg).unwrap();
        f.set_len(before).unwrap();
        let mut bad = rec.clone();
        bad[4] ^= 1;
        f.seek(SeekFrom::End(0)).unwrap();
        f.write_all(&bad).unwrap();
        drop(f);
        let s = Spool::open(dir.path(), 1 << 20).unwrap();
        assert_eq!(s.next_seq(), 2);
        assert_eq!(fs::metadata(&seg).unwrap().len(), before);
    }

    #[test]
    fn oversized_fields_are_typed_errors() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Spool::open(dir.path(), 1 << 30).unwrap();
        let f = SpoolFrame {
            protocol: "x".repeat(300),
            ..frame(1)
        };
        assert!(matches!(
            s.append(&[f]),
            Err(SpoolError::FieldTooLong("protocol"))
        ));
        let f = SpoolFrame {
            data: Bytes::from(vec![0; MAX_RECORD + 1]),
            ..frame(1)
        };
        assert!(matches!(s.append(&[f]), Err(SpoolError::TooLarge(_))));
        assert_eq!(s.next_seq(), 1);
    }
}
