//! ST 71 (Actual Log), ST 72 (Events Identification), ST 73 (History Log Control), ST 74
//! (History Log Data), ST 75 (Event Log Control) and ST 76 (Event Log Data).
//!
//! ```text
//! ST 71  LOG_FLAGS UINT8 (bit 0 EVENT_NUMBER, bit 1 HIST_DATE_TIME, bit 2 HIST_SEQ_NBR,
//!        bit 3 HIST_INHIBIT_OVF, bit 4 EVENT_INHIBIT_OVF), NBR_STD_EVENTS, NBR_MFG_EVENTS,
//!        HIST_DATA_LENGTH, EVENT_DATA_LENGTH (UINT8), NBR_HISTORY_ENTRIES,
//!        NBR_EVENT_ENTRIES (UINT16)
//! ST 72  STD_EVENTS_SUPPORTED SET(NBR_STD_EVENTS), MFG_EVENTS_SUPPORTED SET(NBR_MFG_EVENTS)
//! ST 73  the monitored events, tables and procedures, and the event actions, as SETs
//! ST 74  HIST_FLAGS UINT8, NBR_VALID_ENTRIES UINT16, LAST_ENTRY_ELEMENT UINT16,
//!        LAST_ENTRY_SEQ_NBR UINT32, NBR_UNREAD_ENTRIES UINT16,
//!        ENTRIES ARRAY[NBR_HISTORY_ENTRIES] OF
//!          {HISTORY_TIME LTIME_DATE if HIST_DATE_TIME, EVENT_NUMBER UINT16 if EVENT_NUMBER,
//!           HISTORY_SEQ_NBR UINT16 if HIST_SEQ_NBR, USER_ID UINT16,
//!           HISTORY_CODE TABLE_IDB_BFLD, HISTORY_ARGUMENT BINARY(HIST_DATA_LENGTH)}
//! ST 75  the monitored events, tables and procedures of the event log, as SETs
//! ST 76  EVENT_FLAGS UINT8, NBR_VALID_ENTRIES UINT16, LAST_ENTRY_ELEMENT UINT16,
//!        LAST_ENTRY_SEQ_NBR UINT32, NBR_UNREAD_ENTRIES UINT16,
//!        ENTRIES ARRAY[NBR_EVENT_ENTRIES] OF
//!          {EVENT_TIME LTIME_DATE if HIST_DATE_TIME, EVENT_NUMBER UINT16 if EVENT_NUMBER,
//!           EVENT_SEQ_NBR UINT16, USER_ID UINT16, EVENT_CODE TABLE_IDB_BFLD,
//!           EVENT_ARGUMENT BINARY(EVENT_DATA_LENGTH)}
//! ```
//!
//! `TABLE_IDB_BFLD` (UINT16): bits 0-10 the event (or table/procedure) number, bit 11
//! `STD_VS_MFG_FLAG` (set: a manufacturer event), bits 12-15 a selector.
//!
//! The entries form a circular list: the newest is `LAST_ENTRY_ELEMENT`, the
//! `NBR_VALID_ENTRIES` before it are valid; they come out oldest first.
//!
//! # Events
//!
//! The standard event codes map onto [`EventKind`]: 1 primary power down →
//! [`EventKind::PowerDown`], 2 primary power up → [`EventKind::PowerUp`], 3-6 time or time of
//! day changed → [`EventKind::ClockAdjusted`], 47 tamper attempt and 48 reverse rotation →
//! [`EventKind::Tamper`]. Every other standard code, and every manufacturer code, is an
//! [`EventKind::Alarm`] with its code kept: the event's `code` is bits 0-11 of the
//! `TABLE_IDB_BFLD` (so a manufacturer event `n` is `0x800 + n`), and its name is in
//! [`std_event_name`].

use ami_domain::{Event, EventKind};

use super::{Config, TableReader};
use crate::Error;

/// The most entries a log may declare that ami reads.
pub const MAX_ENTRIES: usize = 1 << 16;

/// ST 71.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Actual {
    /// `LOG_FLAGS`.
    pub flags: u8,
    /// `NBR_STD_EVENTS` (bytes of the standard events SET).
    pub std_events: u8,
    /// `NBR_MFG_EVENTS`.
    pub mfg_events: u8,
    /// `HIST_DATA_LENGTH`.
    pub hist_data_len: u8,
    /// `EVENT_DATA_LENGTH`.
    pub event_data_len: u8,
    /// `NBR_HISTORY_ENTRIES`.
    pub history_entries: u16,
    /// `NBR_EVENT_ENTRIES`.
    pub event_entries: u16,
}

impl Actual {
    /// `EVENT_NUMBER_FLAG`.
    pub fn event_number(&self) -> bool {
        self.flags & 0x01 != 0
    }
    /// `HIST_DATE_TIME_FLAG`.
    pub fn date_time(&self) -> bool {
        self.flags & 0x02 != 0
    }
    /// `HIST_SEQ_NBR_FLAG`.
    pub fn seq_nbr(&self) -> bool {
        self.flags & 0x04 != 0
    }
}

/// Reads ST 71.
pub fn st71(data: &[u8], cfg: &Config) -> Result<Actual, Error> {
    let mut t = TableReader::new(data, cfg, "ST 71");
    Ok(Actual {
        flags: t.u8()?,
        std_events: t.u8()?,
        mfg_events: t.u8()?,
        hist_data_len: t.u8()?,
        event_data_len: t.u8()?,
        history_entries: t.u16()?,
        event_entries: t.u16()?,
    })
}

/// ST 72: which events the device supports (standard, manufacturer) as event numbers.
pub fn st72(data: &[u8], cfg: &Config, act: &Actual) -> Result<(Vec<u16>, Vec<u16>), Error> {
    let mut t = TableReader::new(data, cfg, "ST 72");
    let std = t.set(usize::from(act.std_events))?;
    let mfg = t.set(usize::from(act.mfg_events))?;
    let bits = |s: &[u8]| -> Vec<u16> {
        (0..s.len() * 8)
            .filter(|&i| super::set_bit(s, i))
            .filter_map(|i| u16::try_from(i).ok())
            .collect()
    };
    Ok((bits(std), bits(mfg)))
}

/// One entry of the history (ST 74) or event (ST 76) log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// When, if the log keeps times.
    pub time: Option<i64>,
    /// `EVENT_NUMBER`.
    pub event_number: Option<u16>,
    /// `HISTORY_SEQ_NBR` / `EVENT_SEQ_NBR`.
    pub seq: Option<u16>,
    /// `USER_ID`.
    pub user_id: u16,
    /// The `TABLE_IDB_BFLD`.
    pub code: u16,
    /// The argument.
    pub argument: Vec<u8>,
}

impl Entry {
    /// The event number (bits 0-10).
    pub fn number(&self) -> u16 {
        self.code & 0x07FF
    }
    /// A manufacturer event (bit 11).
    pub fn manufacturer(&self) -> bool {
        self.code & 0x0800 != 0
    }
}

/// A log's header and entries, oldest first.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Log {
    /// `HIST_FLAGS` / `EVENT_FLAGS`.
    pub flags: u8,
    /// `LAST_ENTRY_SEQ_NBR`.
    pub last_seq: u32,
    /// `NBR_UNREAD_ENTRIES`.
    pub unread: u16,
    /// The valid entries, oldest first.
    pub entries: Vec<Entry>,
}

fn log(data: &[u8], cfg: &Config, act: &Actual, history: bool) -> Result<Log, Error> {
    let what = if history { "ST 74" } else { "ST 76" };
    let mut t = TableReader::new(data, cfg, what);
    let flags = t.u8()?;
    let valid = usize::from(t.u16()?);
    let last = usize::from(t.u16()?);
    let last_seq = t.u32()?;
    let unread = t.u16()?;
    let (n, arg_len) = if history {
        (
            usize::from(act.history_entries),
            usize::from(act.hist_data_len),
        )
    } else {
        (
            usize::from(act.event_entries),
            usize::from(act.event_data_len),
        )
    };
    let mut all = Vec::with_capacity(n.min(t.remaining()));
    for _ in 0..n.min(MAX_ENTRIES) {
        // A log read in part (fewer entries than declared) keeps what it has.
        if t.remaining() == 0 {
            break;
        }
        let time = if act.date_time() {
            t.ltime_date()?
        } else {
            None
        };
        let event_number = if act.event_number() {
            Some(t.u16()?)
        } else {
            None
        };
        let seq = if !history || act.seq_nbr() {
            Some(t.u16()?)
        } else {
            None
        };
        let user_id = t.u16()?;
        let code = t.u16()?;
        let argument = t.bytes(arg_len)?.to_vec();
        all.push(Entry {
            time,
            event_number,
            seq,
            user_id,
            code,
            argument,
        });
    }
    let entries = oldest_first(all, valid, last);
    Ok(Log {
        flags,
        last_seq,
        unread,
        entries,
    })
}

/// The `valid` entries of a circular list whose newest entry is at index `last`, oldest first
/// (C12.19's list-of-entries convention, shared by the OSGP tables).
pub(crate) fn oldest_first<T>(all: Vec<T>, valid: usize, last: usize) -> Vec<T> {
    let n = all.len();
    let valid = valid.min(n);
    if n == 0 {
        return Vec::new();
    }
    // Rotate so the entry after `last` (the oldest of a full list) comes first, then keep the
    // newest `valid`.
    let mut all = all;
    all.rotate_left((last % n + 1) % n);
    all.split_off(n - valid)
}

/// Reads ST 74 (needs ST 71).
pub fn st74(data: &[u8], cfg: &Config, act: &Actual) -> Result<Log, Error> {
    log(data, cfg, act, true)
}

/// Reads ST 76 (needs ST 71).
pub fn st76(data: &[u8], cfg: &Config, act: &Actual) -> Result<Log, Error> {
    log(data, cfg, act, false)
}

/// The name of a standard event code (C12.19 standard events).
pub fn std_event_name(code: u16) -> &'static str {
    match code {
        0 => "no event",
        1 => "primary power down",
        2 => "primary power up",
        3 => "time changed (old time)",
        4 => "time changed (new time)",
        5 => "time of day changed (old time)",
        6 => "time of day changed (new time)",
        7 => "end device accessed for read",
        8 => "end device accessed for write",
        9 => "procedure invoked",
        10 => "table written to",
        11 => "end device programmed",
        12 => "communication terminated normally",
        13 => "communication terminated abnormally",
        14 => "reset list pointers",
        15 => "updated list pointers",
        16 => "history log cleared",
        17 => "history log pointers updated",
        18 => "event log cleared",
        19 => "event log pointers updated",
        20 => "demand reset occurred",
        21 => "self read occurred",
        22 => "daylight saving time on",
        23 => "daylight saving time off",
        24 => "season changed",
        25 => "rate change",
        26 => "special schedule activated",
        27 => "tier switch change",
        28 => "pending table activation",
        29 => "pending table clear",
        30 => "metering mode started",
        31 => "metering mode stopped",
        32 => "test mode started",
        33 => "test mode stopped",
        34 => "meter shop mode started",
        35 => "meter shop mode stopped",
        36 => "end device reprogrammed",
        37 => "configuration error detected",
        38 => "self check error detected",
        39 => "RAM failure detected",
        40 => "ROM failure detected",
        41 => "nonvolatile memory failure detected",
        42 => "clock error detected",
        43 => "measurement error detected",
        44 => "low battery detected",
        45 => "low loss potential detected",
        46 => "demand overload detected",
        47 => "tamper attempt detected",
        48 => "reverse rotation detected",
        _ => "standard event",
    }
}

/// The event kind of a log entry.
pub fn event_kind(e: &Entry) -> EventKind {
    if e.manufacturer() {
        return EventKind::Alarm;
    }
    match e.number() {
        1 => EventKind::PowerDown,
        2 => EventKind::PowerUp,
        3..=6 => EventKind::ClockAdjusted,
        47 | 48 => EventKind::Tamper,
        _ => EventKind::Alarm,
    }
}

/// The events of a log's entries (entry 0, "no event", is skipped); entries without a time
/// are stamped `received_at_ms`.
pub fn events(log: &Log, received_at_ms: i64, source: ami_domain::Obis) -> Vec<Event> {
    log.entries
        .iter()
        .filter(|e| e.code & 0x0FFF != 0)
        .map(|e| Event {
            kind: event_kind(e),
            ts_ms: e.time.unwrap_or(received_at_ms),
            code: u32::from(e.code & 0x0FFF),
            source: Some(source),
            duration_s: 0,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::oldest_first;

    #[test]
    fn circular_lists_come_out_oldest_first() {
        // Full list of 5 whose newest entry is at index 1: oldest is index 2.
        assert_eq!(oldest_first(vec![0, 1, 2, 3, 4], 5, 1), [2, 3, 4, 0, 1]);
        // Three valid entries ending at index 1.
        assert_eq!(oldest_first(vec![0, 1, 2, 3, 4], 3, 1), [4, 0, 1]);
        // More valid than stored, `last` out of range, empty list.
        assert_eq!(oldest_first(vec![0, 1, 2], 9, 7), [2, 0, 1]);
        assert_eq!(oldest_first(Vec::<u8>::new(), 3, 0), Vec::<u8>::new());
    }
}
