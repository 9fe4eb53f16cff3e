//! What the store takes and gives back: interval readings in, versioned readings with
//! provenance out, and the checks every backend applies to its input before any I/O.

use std::collections::HashMap;
use std::ops::{Range, RangeInclusive};

use ami_domain::time::unix_ms;
use ami_domain::{Obis, Quality, Quantity, Reading, Unit};

use crate::error::{InvalidInput, StoreError};

/// The longest meter id the store takes, in bytes.
pub const MAX_METER_LEN: usize = 64;
/// The decimal exponents a stored value may have (an i64 mantissa holds 18 digits).
pub const EXPONENT_RANGE: RangeInclusive<i8> = -18..=18;
/// The timestamps the store takes: 1970-01-01 up to (not including) 2200-01-01, UTC.
pub const TS_RANGE_MS: Range<i64> = 0..unix_ms(2200, 1, 1, 0, 0, 0);
/// The actor named in the provenance of values that came in through [`crate::MeterDataStore::ingest`].
pub const INGEST_ACTOR: &str = "ingest";
/// The reason given to a received value that differs from the original already stored.
pub const CONFLICTING_REREAD: &str = "conflicting re-read";

/// One reading of one meter, as the decoders deliver it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IntervalReading {
    /// The meter id.
    pub meter: String,
    /// Register, value, unit, interval end (UTC ms) and quality flags.
    pub reading: Reading,
}

/// Which version of each interval a query returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum View {
    /// The original as received (version 1); intervals never received are absent.
    Raw,
    /// The latest version of each interval: of the original and its versions, the one
    /// recorded last (the higher version number on a tie). So an edit or an estimate replaces
    /// the original, and an original that arrives after its gap was estimated replaces the
    /// estimate; intervals only estimated are present.
    Latest,
}

/// The intervals that end in `(after_ms, until_ms]`: a day's 96 quarter-hours are
/// `Span { after_ms: midnight, until_ms: next midnight }`, since a stamp is an interval's end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Span {
    /// Exclusive start, UTC Unix milliseconds.
    pub after_ms: i64,
    /// Inclusive end, UTC Unix milliseconds.
    pub until_ms: i64,
}

impl Span {
    /// The intervals ending after `after_ms` and at or before `until_ms`.
    pub const fn new(after_ms: i64, until_ms: i64) -> Self {
        Self { after_ms, until_ms }
    }

    pub(crate) fn check(self) -> Result<(), InvalidInput> {
        if self.after_ms >= self.until_ms {
            return Err(InvalidInput::EmptySpan {
                after_ms: self.after_ms,
                until_ms: self.until_ms,
            });
        }
        Ok(())
    }
}

/// Where a version of a value came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Source {
    /// From the meter, through ingest.
    Received,
    /// Estimated by a VEE rule.
    Estimated,
    /// Edited by a person.
    Edited,
}

impl Source {
    /// The code stored in the database.
    pub const fn code(self) -> i16 {
        match self {
            Source::Received => 1,
            Source::Estimated => 2,
            Source::Edited => 3,
        }
    }

    /// The source of a stored code.
    pub fn from_code(code: i16) -> Result<Self, StoreError> {
        match code {
            1 => Ok(Source::Received),
            2 => Ok(Source::Estimated),
            3 => Ok(Source::Edited),
            other => Err(StoreError::Corrupt(format!("unknown source code {other}"))),
        }
    }
}

/// Who made a version, when and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Provenance {
    /// Received, estimated or edited.
    pub source: Source,
    /// Who: [`INGEST_ACTOR`] for received values, the rule pack or the user otherwise.
    pub actor: String,
    /// When the store recorded it, UTC Unix milliseconds.
    pub at_ms: i64,
    /// Why ([`CONFLICTING_REREAD`] for a received value that differs from the original).
    pub reason: Option<String>,
    /// The VEE rule or estimation method, if any.
    pub method: Option<String>,
}

/// One version of one interval's value, as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredReading {
    /// Interval end, UTC Unix milliseconds.
    pub ts_ms: i64,
    /// The value (mantissa and exponent exactly as stored).
    pub value: Quantity,
    /// Its base unit.
    pub unit: Unit,
    /// Quality flags.
    pub quality: Quality,
    /// 1 for the original as received, 2 and up for later versions.
    pub version: u32,
    /// Where it came from.
    pub provenance: Provenance,
}

/// A new version of an interval's value, for VEE estimates and manual edits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewVersion {
    /// The new value.
    pub value: Quantity,
    /// Its base unit.
    pub unit: Unit,
    /// Quality flags; the store adds [`Quality::ESTIMATED`] or [`Quality::EDITED`] by source.
    pub quality: Quality,
    /// [`Source::Estimated`] or [`Source::Edited`].
    pub source: Source,
    /// Who: a user name or a rule pack id.
    pub actor: String,
    /// Why, for the audit trail.
    pub reason: Option<String>,
    /// The VEE rule or estimation method.
    pub method: Option<String>,
}

impl NewVersion {
    /// The quality stored: the given flags plus the one its source implies.
    pub fn stored_quality(&self) -> Quality {
        match self.source {
            Source::Estimated => self.quality.with(Quality::ESTIMATED),
            Source::Edited => self.quality.with(Quality::EDITED),
            Source::Received => self.quality,
        }
    }

    pub(crate) fn check(&self, meter: &str, ts_ms: i64) -> Result<(), InvalidInput> {
        check_meter(meter, 0)?;
        check_value(meter, self.value, ts_ms, 0)?;
        if self.actor.trim().is_empty() {
            return Err(InvalidInput::EmptyActor);
        }
        if self.source == Source::Received {
            return Err(InvalidInput::ReceivedVersion);
        }
        Ok(())
    }
}

/// What one ingest call did; `received == inserted + conflicts + duplicates`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IngestReport {
    /// Readings in the batch.
    pub received: usize,
    /// New originals stored (version 1).
    pub inserted: usize,
    /// Readings whose value differs from the stored original, kept as a new received version
    /// flagged [`Quality::SUSPECT`] with the reason [`CONFLICTING_REREAD`].
    pub conflicts: usize,
    /// Readings already stored with the same value, unit and quality (as original or as a
    /// conflicting re-read), or repeated within the batch: nothing written.
    pub duplicates: usize,
}

impl IngestReport {
    pub(crate) fn add(&mut self, other: IngestReport) {
        self.received += other.received;
        self.inserted += other.inserted;
        self.conflicts += other.conflicts;
        self.duplicates += other.duplicates;
    }
}

/// A register as stored: the six OBIS groups packed into the low 48 bits, A highest.
pub const fn register_key(obis: Obis) -> i64 {
    let b = obis.to_bytes();
    ((b[0] as i64) << 40)
        | ((b[1] as i64) << 32)
        | ((b[2] as i64) << 24)
        | ((b[3] as i64) << 16)
        | ((b[4] as i64) << 8)
        | (b[5] as i64)
}

/// The stored quality column of a quality set.
pub(crate) fn quality_code(q: Quality) -> i32 {
    i32::from(q.0)
}

/// The quality set of a stored column.
pub(crate) fn quality_from_code(code: i32) -> Result<Quality, StoreError> {
    u16::try_from(code)
        .map(Quality)
        .map_err(|_| StoreError::Corrupt(format!("quality {code} out of range")))
}

/// The unit of a stored code.
pub(crate) fn unit_from_code(code: i16) -> Result<Unit, StoreError> {
    u8::try_from(code)
        .ok()
        .and_then(Unit::from_code)
        .ok_or_else(|| StoreError::Corrupt(format!("unknown unit code {code}")))
}

/// The version number of a stored column.
pub(crate) fn version_from_code(code: i32) -> Result<u32, StoreError> {
    u32::try_from(code).map_err(|_| StoreError::Corrupt(format!("version {code} out of range")))
}

pub(crate) fn check_meter(meter: &str, index: usize) -> Result<(), InvalidInput> {
    if meter.is_empty() {
        return Err(InvalidInput::EmptyMeter { index });
    }
    if meter.len() > MAX_METER_LEN || meter.chars().any(char::is_control) {
        return Err(InvalidInput::BadMeter {
            meter: meter.to_owned(),
            index,
        });
    }
    Ok(())
}

fn check_value(meter: &str, value: Quantity, ts_ms: i64, index: usize) -> Result<(), InvalidInput> {
    if !EXPONENT_RANGE.contains(&value.scale) {
        return Err(InvalidInput::ExponentOutOfRange {
            meter: meter.to_owned(),
            exponent: value.scale,
            index,
        });
    }
    if !TS_RANGE_MS.contains(&ts_ms) {
        return Err(InvalidInput::TimestampOutOfRange {
            meter: meter.to_owned(),
            ts_ms,
            index,
        });
    }
    Ok(())
}

/// Checks a whole batch; the first bad reading refuses it.
pub(crate) fn check_batch(batch: &[IntervalReading]) -> Result<(), InvalidInput> {
    for (index, r) in batch.iter().enumerate() {
        check_meter(&r.meter, index)?;
        check_value(&r.meter, r.reading.value, r.reading.ts_ms, index)?;
    }
    Ok(())
}

/// A batch split for writing: round 0 holds each key's first reading, round k its (k+1)-th
/// distinct one, so that within a round every (meter, register, ts) is unique.
pub(crate) struct Plan<'a> {
    /// The rounds; round 0 is nearly always the only one.
    pub rounds: Vec<Vec<&'a IntervalReading>>,
    /// Readings repeated exactly within the batch.
    pub duplicates: usize,
}

/// Splits a batch into rounds of unique keys and drops exact repeats.
pub(crate) fn plan(batch: &[IntervalReading]) -> Plan<'_> {
    type Key<'a> = (&'a str, Obis, i64);
    let mut first: HashMap<Key<'_>, usize> = HashMap::with_capacity(batch.len());
    let mut rounds: Vec<Vec<&IntervalReading>> = vec![Vec::with_capacity(batch.len())];
    // Keys seen more than once: every distinct reading so far.
    let mut repeated: HashMap<Key<'_>, Vec<&IntervalReading>> = HashMap::new();
    let mut duplicates = 0;
    for r in batch {
        let key = (r.meter.as_str(), r.reading.register, r.reading.ts_ms);
        let Some(&at) = first.get(&key) else {
            first.insert(key, rounds[0].len());
            rounds[0].push(r);
            continue;
        };
        let seen = repeated.entry(key).or_insert_with(|| vec![rounds[0][at]]);
        if seen.iter().any(|s| same_value(&s.reading, &r.reading)) {
            duplicates += 1;
            continue;
        }
        let round = seen.len();
        seen.push(r);
        if rounds.len() <= round {
            rounds.push(Vec::new());
        }
        rounds[round].push(r);
    }
    Plan { rounds, duplicates }
}

/// Whether two readings of one key carry the same stored content.
fn same_value(a: &Reading, b: &Reading) -> bool {
    a.value.mantissa == b.value.mantissa
        && a.value.scale == b.value.scale
        && a.unit == b.unit
        && a.quality == b.quality
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(meter: &str, ts: i64, m: i64) -> IntervalReading {
        IntervalReading {
            meter: meter.into(),
            reading: Reading {
                register: Obis::new(1, 0, 1, 8, 0, 255),
                value: Quantity::new(m, 0),
                unit: Unit::WattHour,
                ts_ms: ts,
                quality: Quality::VALID,
            },
        }
    }

    #[test]
    fn plan_splits_repeats_into_rounds() {
        let batch = vec![
            r("a", 1, 5),
            r("a", 1, 5),
            r("a", 1, 6),
            r("b", 1, 5),
            r("a", 1, 6),
            r("a", 1, 7),
        ];
        let p = plan(&batch);
        assert_eq!(p.duplicates, 2);
        assert_eq!(p.rounds.len(), 3);
        assert_eq!(p.rounds[0].len(), 2);
        assert_eq!(p.rounds[1][0].reading.value.mantissa, 6);
        assert_eq!(p.rounds[2][0].reading.value.mantissa, 7);
    }

    #[test]
    fn register_keys_keep_order_and_groups() {
        assert_eq!(
            register_key(Obis::new(1, 0, 1, 8, 0, 255)),
            0x01_00_01_08_00_ff
        );
        assert!(register_key(Obis::new(255, 255, 255, 255, 255, 255)) > 0);
    }
}
