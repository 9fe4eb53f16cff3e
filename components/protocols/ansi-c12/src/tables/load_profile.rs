//! ST 61 (Actual Load Profile), ST 62 (Load Profile Control), ST 63 (Load Profile Status)
//! and ST 64-67 (Load Profile Data Sets 1-4).
//!
//! ```text
//! ST 61  LP_MEMORY_LEN UINT32, LP_FLAGS UINT16, LP_FMATS UINT8,
//!        per set (up to 4): NBR_BLKS_SET UINT16, NBR_BLK_INTS_SET UINT16,
//!                           NBR_CHNS_SET UINT8, MAX_INT_TIME_SET UINT8 (minutes)
//!        LP_FLAGS: bits 0-3 SETn_INHIBIT_OVF, bit 4 BLK_END_READ, bit 5 BLK_END_PULSE,
//!                  bits 6-9 SCALAR_DIVISOR_SETn, bit 10 EXTENDED_INT_STATUS,
//!                  bit 11 SIMPLE_INT_STATUS, bit 12 CLOSURE_STATUS
//! ST 62  per set: LP_SEL ARRAY[NBR_CHNS] OF {CHNL_FLAG, LP_SOURCE_SELECT,
//!                 END_BLK_RDG_SOURCE_SELECT} (UINT8 each), INT_FMT_CDE UINT8,
//!                 SCALARS ARRAY[NBR_CHNS] OF UINT16, DIVISOR ARRAY[NBR_CHNS] OF UINT16
//!                 (both if SCALAR_DIVISOR_SETn)
//! ST 63  per set: LP_SET_STATUS_FLAGS UINT8, NBR_VALID_BLOCKS UINT16,
//!                 LAST_BLOCK_ELEMENT UINT16, LAST_BLOCK_SEQ_NBR UINT32,
//!                 NBR_UNREAD_BLOCKS UINT16, NBR_VALID_INT UINT16
//! ST 64  ARRAY[NBR_BLKS_SET1] OF LP_BLK_DAT_RCD:
//!          BLK_END_TIME STIME_DATE
//!          END_READINGS ARRAY[NBR_CHNS] OF {BLOCK_END_READ NI_FMAT1 if BLK_END_READ,
//!                                           BLOCK_END_PULSE UINT32 if BLK_END_PULSE}
//!          SIMPLE_INT_STATUS SET((NBR_BLK_INTS+7)/8)     if SIMPLE_INT_STATUS
//!          LP_INT ARRAY[NBR_BLK_INTS] OF {EXTENDED_INT_STATUS ARRAY[NBR_CHNS/2+1] OF UINT8
//!                                           if EXTENDED_INT_STATUS,
//!                                         INT_DATA ARRAY[NBR_CHNS] OF INT_FMT}
//!          CLOSURE_STATUS ARRAY[NBR_CHNS] OF {STATUS UINT16, END_DATE_TIME STIME_DATE}
//!                                                           if CLOSURE_STATUS
//! ```
//!
//! `INT_FMT_CDE`: 1 UINT8, 2 UINT16, 4 UINT32, 8 INT8, 16 INT16, 32 INT32, 64 NI_FMAT1,
//! 128 NI_FMAT2. An interval's value is `INT_DATA * SCALAR / DIVISOR`.
//!
//! Extended interval status, as ami reads it: one nibble of common flags (the high nibble of
//! the first byte: bit 0 DST, bit 1 power fail, bit 2 clock reset forward, bit 3 clock reset
//! backward), then one nibble per channel (0 none, 1 overflow, 2 partial, 3 long, 4 skipped,
//! 5 test mode). Power fail marks [`Quality::POWER_OUTAGE`], a clock reset
//! [`Quality::CLOCK_ADJUSTED`], overflow [`Quality::OVERFLOW`], partial, long and test
//! intervals [`Quality::SUSPECT`]; a skipped interval gives no reading.
//!
//! Time: `BLK_END_TIME` is the end of the block's last valid interval; interval `i` of a
//! block of `n` valid intervals ends `(n - 1 - i) * MAX_INT_TIME` minutes before it. The
//! blocks form a circular list (ST 63: the newest is `LAST_BLOCK_ELEMENT`, `NBR_VALID_BLOCKS`
//! are valid, the newest holds `NBR_VALID_INT` intervals); without ST 63 every block is read
//! in full, in table order.
//!
//! Registers: channel `k` (1-based) of a set is OBIS `A-k:C.29.0`, C from the channel's
//! source (ST 62 `LP_SOURCE_SELECT`) in ST 12 as for [`super::registers`], else ami's
//! `A-k:128.29.0` with [`Unit::Count`].

use ami_domain::{Obis, Quality, Quantity, Reading, Unit};

use super::registers::Uom;
use super::{Config, TableReader};
use crate::Error;

/// The most intervals one set may make a decoder stamp (bounds the output of a tiny table
/// with huge dimensions; a year of 5-minute intervals is about 105k).
pub const MAX_INTERVALS: usize = 1 << 20;

/// One set's dimensions (ST 61).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SetDims {
    /// `NBR_BLKS_SET`.
    pub blocks: u16,
    /// `NBR_BLK_INTS_SET`.
    pub intervals: u16,
    /// `NBR_CHNS_SET`.
    pub channels: u8,
    /// `MAX_INT_TIME_SET`, minutes.
    pub interval_minutes: u8,
}

/// ST 61.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Actual {
    /// `LP_MEMORY_LEN`.
    pub memory_len: u32,
    /// `LP_FLAGS`.
    pub flags: u16,
    /// `LP_FMATS`.
    pub formats: u8,
    /// The sets.
    pub sets: Vec<SetDims>,
}

impl Actual {
    fn flag(&self, bit: u16) -> bool {
        self.flags & (1 << bit) != 0
    }
    /// `BLK_END_READ_FLAG`.
    pub fn blk_end_read(&self) -> bool {
        self.flag(4)
    }
    /// `BLK_END_PULSE_FLAG`.
    pub fn blk_end_pulse(&self) -> bool {
        self.flag(5)
    }
    /// `SCALAR_DIVISOR_FLAG_SETn` (set 0-3).
    pub fn scalar_divisor(&self, set: usize) -> bool {
        set < 4 && self.flag(6 + set as u16)
    }
    /// `EXTENDED_INT_STATUS_FLAG`.
    pub fn extended_status(&self) -> bool {
        self.flag(10)
    }
    /// `SIMPLE_INT_STATUS_FLAG`.
    pub fn simple_status(&self) -> bool {
        self.flag(11)
    }
    /// `CLOSURE_STATUS_FLAG`.
    pub fn closure_status(&self) -> bool {
        self.flag(12)
    }
}

/// Reads ST 61.
pub fn st61(data: &[u8], cfg: &Config) -> Result<Actual, Error> {
    let mut t = TableReader::new(data, cfg, "ST 61");
    let mut a = Actual {
        memory_len: t.u32()?,
        flags: t.u16()?,
        formats: t.u8()?,
        sets: Vec::new(),
    };
    while a.sets.len() < 4 && t.remaining() >= 6 {
        a.sets.push(SetDims {
            blocks: t.u16()?,
            intervals: t.u16()?,
            channels: t.u8()?,
            interval_minutes: t.u8()?,
        });
    }
    if a.sets.is_empty() {
        return Err(Error::malformed("ST 61", "no load profile set"));
    }
    Ok(a)
}

/// One set's control (ST 62).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SetControl {
    /// `LP_SOURCE_SELECT` per channel.
    pub sources: Vec<u8>,
    /// `INT_FMT_CDE`.
    pub int_fmt: u8,
    /// `SCALARS_SET` per channel (empty: 1).
    pub scalars: Vec<u16>,
    /// `DIVISOR_SET` per channel (empty: 1).
    pub divisors: Vec<u16>,
}

/// Reads ST 62 (needs ST 61).
pub fn st62(data: &[u8], cfg: &Config, act: &Actual) -> Result<Vec<SetControl>, Error> {
    let mut t = TableReader::new(data, cfg, "ST 62");
    let mut out = Vec::new();
    for (i, set) in act.sets.iter().enumerate() {
        let mut c = SetControl::default();
        for _ in 0..set.channels {
            let _flags = t.u8()?;
            c.sources.push(t.u8()?);
            let _end_src = t.u8()?;
        }
        c.int_fmt = t.u8()?;
        if act.scalar_divisor(i) {
            for _ in 0..set.channels {
                c.scalars.push(t.u16()?);
            }
            for _ in 0..set.channels {
                c.divisors.push(t.u16()?);
            }
        }
        out.push(c);
    }
    Ok(out)
}

/// One set's status (ST 63).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SetStatus {
    /// `LP_SET_STATUS_FLAGS`.
    pub flags: u8,
    /// `NBR_VALID_BLOCKS`.
    pub valid_blocks: u16,
    /// `LAST_BLOCK_ELEMENT`.
    pub last_block: u16,
    /// `LAST_BLOCK_SEQ_NBR`.
    pub last_seq: u32,
    /// `NBR_UNREAD_BLOCKS`.
    pub unread_blocks: u16,
    /// `NBR_VALID_INT`.
    pub valid_intervals: u16,
}

/// Reads ST 63 (needs ST 61).
pub fn st63(data: &[u8], cfg: &Config, act: &Actual) -> Result<Vec<SetStatus>, Error> {
    let mut t = TableReader::new(data, cfg, "ST 63");
    let mut out = Vec::new();
    for _ in &act.sets {
        if t.remaining() == 0 {
            break;
        }
        out.push(SetStatus {
            flags: t.u8()?,
            valid_blocks: t.u16()?,
            last_block: t.u16()?,
            last_seq: t.u32()?,
            unread_blocks: t.u16()?,
            valid_intervals: t.u16()?,
        });
    }
    Ok(out)
}

/// One interval.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Interval {
    /// The channel (0-based).
    pub channel: usize,
    /// End of the interval, ms since the epoch.
    pub end_ms: i64,
    /// The value after scalar and divisor.
    pub value: Quantity,
    /// Quality flags from the interval status.
    pub quality: Quality,
}

fn int_value(t: &mut TableReader<'_, '_>, code: u8) -> Result<Option<Quantity>, Error> {
    let q = |v: i64| Some(Quantity::new(v, 0));
    Ok(match code {
        1 => q(i64::from(t.u8()?)),
        2 => q(i64::from(t.u16()?)),
        4 => q(i64::from(t.u32()?)),
        8 => q(t.int(1)?),
        16 => q(t.int(2)?),
        32 => q(t.int(4)?),
        64 => t.ni(t.cfg.ni1)?,
        128 => t.ni(t.cfg.ni2)?,
        other => {
            return Err(Error::malformed(
                "ST 62",
                format!("INT_FMT_CDE {other} (1, 2, 4, 8, 16, 32, 64 or 128)"),
            ));
        }
    })
}

/// `value * scalar / divisor`, exact when the divisor is a power of ten, else to six
/// decimals.
fn scaled(v: Quantity, scalar: u16, divisor: u16) -> Option<Quantity> {
    let m = v.mantissa.checked_mul(i64::from(scalar))?;
    if divisor <= 1 {
        return Some(Quantity::new(m, v.scale));
    }
    let mut d = divisor;
    let mut exp = 0i8;
    while d.is_multiple_of(10) {
        d /= 10;
        exp += 1;
    }
    if d == 1 {
        return Some(Quantity::new(m, v.scale.checked_sub(exp)?));
    }
    let wide = i128::from(m) * 1_000_000 / i128::from(divisor);
    Some(Quantity::new(
        i64::try_from(wide).ok()?,
        v.scale.checked_sub(6)?,
    ))
}

fn status_quality(common: u8, channel: u8) -> Option<Quality> {
    let mut q = Quality::VALID;
    if common & 0x02 != 0 {
        q = q.with(Quality::POWER_OUTAGE);
    }
    if common & 0x0C != 0 {
        q = q.with(Quality::CLOCK_ADJUSTED);
    }
    match channel {
        1 => q = q.with(Quality::OVERFLOW),
        2 | 3 | 5 => q = q.with(Quality::SUSPECT),
        4 => return None,
        _ => {}
    }
    Some(q)
}

/// Reads a load profile data set (ST 64 for set 0, ST 65-67 for sets 1-3) into intervals.
pub fn data_set(
    data: &[u8],
    cfg: &Config,
    act: &Actual,
    set: usize,
    ctrl: &SetControl,
    status: Option<&SetStatus>,
) -> Result<Vec<Interval>, Error> {
    let dims = *act
        .sets
        .get(set)
        .ok_or_else(|| Error::malformed("ST 61", format!("no set {}", set + 1)))?;
    let what = match set {
        0 => "ST 64",
        1 => "ST 65",
        2 => "ST 66",
        _ => "ST 67",
    };
    let mut t = TableReader::new(data, cfg, what);
    let nch = usize::from(dims.channels);
    let nint = usize::from(dims.intervals);
    let nblk = usize::from(dims.blocks);
    if nch.saturating_mul(nint).saturating_mul(nblk) > MAX_INTERVALS {
        return Err(Error::Unsupported(format!(
            "{what}: {nblk} blocks of {nint} intervals of {nch} channels (above {MAX_INTERVALS} values)"
        )));
    }
    // Which blocks hold data, oldest first, and how many intervals the newest holds.
    let order: Vec<usize> = match status {
        Some(s) if nblk > 0 => {
            let valid = usize::from(s.valid_blocks).min(nblk);
            let last = usize::from(s.last_block) % nblk;
            (0..valid)
                .map(|i| (last + nblk + 1 + i - valid) % nblk)
                .collect()
        }
        _ => (0..nblk).collect(),
    };
    let newest = order.last().copied();
    let step_ms = i64::from(dims.interval_minutes) * 60_000;
    if nch == 0 {
        return Ok(Vec::new());
    }
    let mut blocks: Vec<Vec<Interval>> = Vec::new();
    for b in 0..nblk {
        if t.remaining() == 0 && status.is_some() {
            break;
        }
        let mut slot = Vec::new();
        let end = t.stime_date()?;
        if act.blk_end_read() || act.blk_end_pulse() {
            for _ in 0..nch {
                if act.blk_end_read() {
                    t.ni(cfg.ni1)?;
                }
                if act.blk_end_pulse() {
                    t.u32()?;
                }
            }
        }
        if act.simple_status() {
            t.set(nint.div_ceil(8))?;
        }
        let valid = match status {
            Some(s) if Some(b) == newest => usize::from(s.valid_intervals).min(nint),
            _ => nint,
        };
        for i in 0..nint {
            let mut nibbles = [0u8; 2 * 129];
            if act.extended_status() {
                for (k, byte) in t.bytes(nch / 2 + 1)?.iter().enumerate() {
                    if let Some(pair) = nibbles.get_mut(2 * k..2 * k + 2) {
                        pair.copy_from_slice(&[byte >> 4, byte & 0x0F]);
                    }
                }
            }
            for ch in 0..nch {
                let raw = int_value(&mut t, ctrl.int_fmt)?;
                let (Some(end), Some(raw)) = (end, raw) else {
                    continue;
                };
                if i >= valid {
                    continue;
                }
                let common = nibbles.first().copied().unwrap_or(0);
                let chan = nibbles.get(ch + 1).copied().unwrap_or(0);
                let Some(quality) = status_quality(common, chan) else {
                    continue;
                };
                let scalar = ctrl.scalars.get(ch).copied().unwrap_or(1);
                let divisor = ctrl.divisors.get(ch).copied().unwrap_or(1);
                let Some(value) = scaled(raw, scalar, divisor) else {
                    continue;
                };
                let back = i64::try_from(valid - 1 - i).unwrap_or(0);
                slot.push(Interval {
                    channel: ch,
                    end_ms: end.saturating_sub(back.saturating_mul(step_ms)),
                    value,
                    quality,
                });
            }
        }
        if act.closure_status() {
            for _ in 0..nch {
                t.u16()?;
                t.stime_date()?;
            }
        }
        blocks.push(slot);
    }
    let mut out = Vec::new();
    for b in order {
        if let Some(v) = blocks.get_mut(b) {
            out.append(v);
        }
    }
    Ok(out)
}

/// The readings of a set's intervals.
pub fn readings(
    intervals: &[Interval],
    cfg: &Config,
    ctrl: &SetControl,
    uoms: &[Uom],
) -> Vec<Reading> {
    let a = cfg.medium_group();
    intervals
        .iter()
        .filter_map(|iv| {
            let b = u8::try_from(iv.channel + 1).unwrap_or(u8::MAX);
            let uom = ctrl
                .sources
                .get(iv.channel)
                .and_then(|&s| uoms.get(usize::from(s)));
            let (register, unit, exp) = match uom.and_then(|u| u.obis_c().map(|c| (u, c))) {
                Some((u, (c, energy, _))) => (Obis::new(a, b, c, 29, 0, 255), energy, u.exponent()),
                None => (Obis::new(a, b, 128, 29, 0, 255), Unit::Count, 0),
            };
            Some(Reading {
                register,
                value: iv.value.shifted(exp)?,
                unit,
                ts_ms: iv.end_ms,
                quality: iv.quality,
            })
        })
        .collect()
}
