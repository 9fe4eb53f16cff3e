//! ST 51-55: actual time and TOU, the clock, time offsets, the calendar and the clock state.
//!
//! ```text
//! ST 51 ACT_TIME_TOU_TBL  TIME_FUNC_FLAG1, TIME_FUNC_FLAG2, CALENDAR_FUNC (NBR_SEASONS bits
//!                         0-3, NBR_SPECIAL_SCHED bits 4-7), NBR_NON_RECURR_DATES,
//!                         NBR_RECURR_DATES (UINT8), NBR_TIER_SWITCHES, CALENDAR_TBL_SIZE (UINT16)
//! ST 52 CLOCK_TBL         CLOCK_CALENDAR LTIME_DATE, TIME_DATE_QUAL (DAY_OF_WEEK bits 0-2,
//!                         DST_FLAG bit 3, GMT_FLAG bit 4, TM_ZN_APPLIED bit 5, DST_APPLIED bit 6)
//! ST 53 TIME_OFFSET_TBL   DST_TIME_EFF (STIME: hour, minute), DST_TIME_AMT UINT8 (minutes),
//!                         TIME_ZONE_OFFSET INT16 (minutes), STD_TIME_EFF (STIME)
//! ST 54 CALENDAR_TBL      dimensioned by ST 51; kept as its size only
//! ST 55 CLOCK_STATE_TBL   CLOCK_CALENDAR LTIME_DATE, TIME_DATE_QUAL, STATUS (the TOU state,
//!                         current tiers in its first byte: summation tier bits 0-2, demand
//!                         tier bits 3-5)
//! ```

use super::{Config, TableReader};
use crate::Error;

/// ST 51.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct St51 {
    /// `TIME_FUNC_FLAG1`, `TIME_FUNC_FLAG2`.
    pub flags: (u8, u8),
    /// `NBR_SEASONS`.
    pub seasons: u8,
    /// `NBR_SPECIAL_SCHED`.
    pub special_schedules: u8,
    /// `NBR_NON_RECURR_DATES`, `NBR_RECURR_DATES`.
    pub dates: (u8, u8),
    /// `NBR_TIER_SWITCHES`.
    pub tier_switches: u16,
    /// `CALENDAR_TBL_SIZE`.
    pub calendar_size: u16,
}

/// Reads ST 51.
pub fn st51(data: &[u8], cfg: &Config) -> Result<St51, Error> {
    let mut t = TableReader::new(data, cfg, "ST 51");
    let flags = (t.u8()?, t.u8()?);
    let cal = t.u8()?;
    Ok(St51 {
        flags,
        seasons: cal & 0x0F,
        special_schedules: cal >> 4,
        dates: (t.u8()?, t.u8()?),
        tier_switches: t.u16()?,
        calendar_size: t.u16()?,
    })
}

/// The clock of ST 52 or ST 55.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Clock {
    /// `CLOCK_CALENDAR` (ms since the epoch, in the device's local time unless `gmt`).
    pub time: Option<i64>,
    /// `TIME_DATE_QUAL`.
    pub qual: u8,
    /// ST 55's first status byte (current summation tier bits 0-2, demand tier bits 3-5).
    pub status: Option<u8>,
}

impl Clock {
    /// `DAY_OF_WEEK` (0 Sunday .. 6 Saturday, 7 unknown).
    pub fn day_of_week(&self) -> u8 {
        self.qual & 0x07
    }
    /// `DST_FLAG`: daylight saving time is in effect.
    pub fn dst(&self) -> bool {
        self.qual & 0x08 != 0
    }
    /// `GMT_FLAG`: the time is UTC.
    pub fn gmt(&self) -> bool {
        self.qual & 0x10 != 0
    }
}

/// Reads ST 52.
pub fn st52(data: &[u8], cfg: &Config) -> Result<Clock, Error> {
    let mut t = TableReader::new(data, cfg, "ST 52");
    Ok(Clock {
        time: t.ltime_date()?,
        qual: t.u8()?,
        status: None,
    })
}

/// Reads ST 55.
pub fn st55(data: &[u8], cfg: &Config) -> Result<Clock, Error> {
    let mut t = TableReader::new(data, cfg, "ST 55");
    let time = t.ltime_date()?;
    let qual = t.u8()?;
    let status = if t.remaining() > 0 {
        Some(t.u8()?)
    } else {
        None
    };
    Ok(Clock { time, qual, status })
}

/// ST 53.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct St53 {
    /// `DST_TIME_AMT`, minutes.
    pub dst_minutes: u8,
    /// `TIME_ZONE_OFFSET`, minutes.
    pub zone_minutes: i64,
}

/// Reads ST 53.
pub fn st53(data: &[u8], cfg: &Config) -> Result<St53, Error> {
    let mut t = TableReader::new(data, cfg, "ST 53");
    t.bytes(2)?;
    let dst_minutes = t.u8()?;
    let zone_minutes = t.int(2)?;
    Ok(St53 {
        dst_minutes,
        zone_minutes,
    })
}
