//! The OSGP tables for metering and events, as the OSGP Alliance documents them for OSGP
//! meters.
//!
//! # Sources
//!
//! The text of ETSI GS OSG 001 (and of its successor ETSI TS 104 001) could not be read:
//! the public copies found hold only its front matter. Its scope says the tables are in
//! Annex A (basic) and Annex B (extended), the procedures in Annexes C and D, the messages
//! in clause 9 and the security in Annex F; none of those annexes was reachable.
//!
//! What this module implements is what the OSGP Alliance's own released documentation of
//! the OSGP meter tables fixes (repository `OSGP-Alliance-MEP-and-Optical/Documentation`):
//!
//! * **\[OPG\]** *Optical Port Programmer's Guide*, OSGP Alliance, version 1.1 (June 2021):
//!   chapter 1 "Table Naming Conventions" (page 8), chapter 2 "BT23: Current Register
//!   Data" (pages 24-27), "BT03: End Device Mode Status" (pages 45-47), "BT00: General
//!   Configuration" (page 48), "BT71"/"BT74" (pages 50-53) and "BT28: Present Register
//!   Data" (pages 53-57).
//! * **\[MEP\]** *OSGP MEP Client Developer's Guide* (078-0372-01BD): chapter 2 "RC4 MEP
//!   Example Messages", Example 1 (pages 15-16), a worked BT23 read.
//!
//! Those documents describe the tables of OSGP meters (the basic tables BT are the C12.19
//! standard tables, the extended tables ET its manufacturer tables), so the C12.19 table
//! model of [`crate::tables`] reads them; what is OSGP's is what the values mean:
//!
//! * table ids (\[OPG\] page 8): BT n is table n, ET n is table 2048 + n, and the pending copy
//!   of a table is its id + 4096 ([`table_name`]);
//! * BT23 summations (\[OPG\] pages 24-27): numbered sources 0-18 with fixed meanings
//!   ([`summation`]); BT22 `Summation Sources` names the source of each summation, without
//!   BT22 summation *i* is source *i*. Sources 4, 5, 8, 9 and 10 are "not populated in tier
//!   groups" and are read from the total block only. Demands and coincident values are
//!   left to the C12.19 reading ("source identification should be handled by the head-end
//!   utility software", \[OPG\] page 23);
//! * BT26 self reads, the billing snapshots (\[OPG\] pages 28-29): a 6-byte header, then
//!   entries of a 2-byte Billing Interface Definition Number (present when BT21.4, the
//!   number of demands, is not 0), the capture time (`STIME_DATE`), the season and a BT23
//!   record ([`bt26`]); their summations are read as BT23's, stamped with the capture time;
//! * BT28 present values (\[OPG\] pages 53-57): numbered values 0-83 ([`present_value`]; the
//!   ones with an OBIS code are read, the others are counted);
//! * BT03 alarms (\[OPG\] pages 45-47): the standard status bits and the OSGP
//!   manufacturer-defined alarm bits ([`alarm`]);
//! * ET79, the alternate event log of firmware 3.70 and later, has "the same syntax as
//!   BT74" (\[OPG\] page 49) and is read as one.
//!
//! The event ids logged in BT74/ET79 are not fixed by these documents ("consult the
//! documentation for your meter", \[OPG\] page 53): their codes are passed on as they are.

use ami_domain::{Event, EventKind, Obis, Quality, Quantity, Reading, Unit};

use crate::Error;
use crate::tables::registers::{Selection, St23, register_data};
use crate::tables::{Config, RegisterDims, TableReader};

/// The id of extended table 0 (\[OPG\] page 8: "ET = Extended Table (2048)").
pub const ET_BASE: u16 = 2048;
/// What a pending table adds to the id of the table it mirrors (\[OPG\] page 8).
pub const PENDING: u16 = 4096;
/// BT03, End Device Mode Status.
pub const BT03: u16 = 3;
/// BT26, Self Read Data.
pub const BT26: u16 = 26;
/// BT28, Present Register Data.
pub const BT28: u16 = 28;
/// ET79, History Log Data (Alternate Event Log), firmware 3.70 and later.
pub const ET79: u16 = ET_BASE + 79;

/// The OSGP name of a table id: `BT23`, `ET79`, `pending BT54`.
pub fn table_name(id: u16) -> String {
    let (pending, id) = if id >= PENDING {
        ("pending ", id - PENDING)
    } else {
        ("", id)
    };
    if id >= ET_BASE {
        format!("{pending}ET{:02}", id - ET_BASE)
    } else {
        format!("{pending}BT{id:02}")
    }
}

/// What a numbered OSGP value measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Source {
    /// Its number in the table.
    pub number: u8,
    /// Its name in the table.
    pub name: &'static str,
    /// OBIS A and C (D is the table's: 8 for BT23 summations, 7 for BT28 present values).
    pub ac: (u8, u8),
    /// The unit.
    pub unit: Unit,
    /// The decimal exponent of one count (mA: -3).
    pub exp: i8,
    /// Whether the tier blocks carry it (\[OPG\]: "not populated in tier groups").
    pub in_tiers: bool,
}

const fn src(number: u8, name: &'static str, ac: (u8, u8), unit: Unit, exp: i8) -> Source {
    Source {
        number,
        name,
        ac,
        unit,
        exp,
        in_tiers: true,
    }
}

const fn total_only(s: Source) -> Source {
    Source {
        in_tiers: false,
        ..s
    }
}

/// The BT23 summation sources, \[OPG\] pages 25-27. Energies map onto their OBIS quantities
/// (1 +A, 2 -A, 3 +R, 4 -R, 5-8 R in Q1-Q4, 15 |+A|+|-A|, 16 +A - -A); the counters onto
/// ami's OSGP registers `0-0:128.14.x` (see [`crate::registers`]); the apparent energies per
/// quadrant, which OBIS has no code for, onto `1-0:(128 + source).8.tier`.
const SUMMATIONS: [Source; 19] = [
    src(0, "Fwd Active Wh L1L2L3", (1, 1), Unit::WattHour, 0),
    src(1, "Rev Active Wh L1L2L3", (1, 2), Unit::WattHour, 0),
    src(2, "Import Reactive VArh L1L2L3", (1, 3), Unit::VarHour, 0),
    src(3, "Export Reactive VArh L1L2L3", (1, 4), Unit::VarHour, 0),
    total_only(src(4, "Power Outage Duration", (0, 128), Unit::Second, 0)),
    total_only(src(5, "Power Outage Qty", (0, 128), Unit::Count, 0)),
    src(6, "Fwd+Rev Active Wh L1L2L3", (1, 15), Unit::WattHour, 0),
    src(7, "Fwd-Rev Active Wh L1L2L3", (1, 16), Unit::WattHour, 0),
    total_only(src(8, "Pulse Input 1", (0, 128), Unit::Count, 0)),
    total_only(src(9, "Pulse Input 2", (0, 128), Unit::Count, 0)),
    total_only(src(10, "Error Counter", (0, 128), Unit::Count, 0)),
    src(11, "Reactive VArh Q1", (1, 5), Unit::VarHour, 0),
    src(12, "Reactive VArh Q2", (1, 6), Unit::VarHour, 0),
    src(13, "Reactive VArh Q3", (1, 7), Unit::VarHour, 0),
    src(14, "Reactive VArh Q4", (1, 8), Unit::VarHour, 0),
    src(15, "Apparent Energy Q1", (1, 143), Unit::VoltAmpereHour, 0),
    src(16, "Apparent Energy Q2", (1, 144), Unit::VoltAmpereHour, 0),
    src(17, "Apparent Energy Q3", (1, 145), Unit::VoltAmpereHour, 0),
    src(18, "Apparent Energy Q4", (1, 146), Unit::VoltAmpereHour, 0),
];

/// A BT23 summation source (0-18), \[OPG\] pages 25-27.
pub fn summation(number: u8) -> Option<&'static Source> {
    SUMMATIONS.get(usize::from(number))
}

/// The register of a summation source in tier `tier` (0 = total).
pub fn summation_register(s: &Source, tier: u8) -> Obis {
    match (s.ac.0, s.number) {
        // ami's OSGP counters 0-0:128.14.(6 + source): 10, 11, 14, 15, 16; never per tier.
        (0, n) => Obis::new(0, 0, 128, 14, 6 + n, 255),
        (a, _) => Obis::new(a, 0, s.ac.1, 8, tier, 255),
    }
}

/// The BT28 present values that have an OBIS code, \[OPG\] pages 53-57 (W, var, mA, mV,
/// 1/1000 power factor, mHz). The others (post-CT/VT copies, averages, sines, apparent
/// power per quadrant, angles) are counted, not read.
const PRESENT: [Source; 29] = [
    src(0, "Fwd Active W L1L2L3", (1, 1), Unit::Watt, 0),
    src(1, "Rev Active W L1L2L3", (1, 2), Unit::Watt, 0),
    src(2, "Import Reactive VAr L1L2L3", (1, 3), Unit::Var, 0),
    src(3, "Export Reactive VAr L1L2L3", (1, 4), Unit::Var, 0),
    src(4, "RMS Current (mA) L1", (1, 31), Unit::Ampere, -3),
    src(5, "RMS Current (mA) L2", (1, 51), Unit::Ampere, -3),
    src(6, "RMS Current (mA) L3", (1, 71), Unit::Ampere, -3),
    src(7, "RMS Voltage (mV) L1", (1, 32), Unit::Volt, -3),
    src(8, "RMS Voltage (mV) L2", (1, 52), Unit::Volt, -3),
    src(9, "RMS Voltage (mV) L3", (1, 72), Unit::Volt, -3),
    src(10, "Power Factor L1 (1/1000)", (1, 33), Unit::Count, -3),
    src(11, "Frequency (mHz)", (1, 14), Unit::Hertz, -3),
    src(12, "VA L1L2L3", (1, 9), Unit::VoltAmpere, 0),
    src(13, "Power Factor L2 (1/1000)", (1, 53), Unit::Count, -3),
    src(14, "Power Factor L3 (1/1000)", (1, 73), Unit::Count, -3),
    src(22, "Q1 Reactive Var L1L2L3", (1, 5), Unit::Var, 0),
    src(23, "Q2 Reactive Var L1L2L3", (1, 6), Unit::Var, 0),
    src(24, "Q3 Reactive Var L1L2L3", (1, 7), Unit::Var, 0),
    src(25, "Q4 Reactive Var L1L2L3", (1, 8), Unit::Var, 0),
    src(26, "Fwd Active W L1", (1, 21), Unit::Watt, 0),
    src(27, "Fwd Active W L2", (1, 41), Unit::Watt, 0),
    src(28, "Fwd Active W L3", (1, 61), Unit::Watt, 0),
    src(29, "Rev Active W L1", (1, 22), Unit::Watt, 0),
    src(30, "Rev Active W L2", (1, 42), Unit::Watt, 0),
    src(31, "Rev Active W L3", (1, 62), Unit::Watt, 0),
    src(71, "Neutral Current mA", (1, 91), Unit::Ampere, -3),
    src(78, "Imp Reactive VAr A", (1, 23), Unit::Var, 0),
    src(79, "Imp Reactive VAr B", (1, 43), Unit::Var, 0),
    src(80, "Imp Reactive VAr C", (1, 63), Unit::Var, 0),
];

/// A BT28 present value with an OBIS code, \[OPG\] pages 53-57.
pub fn present_value(number: u8) -> Option<&'static Source> {
    PRESENT.iter().find(|s| s.number == number)
}

/// The readings of BT23's summations by their OSGP sources (`sel`: BT22, if the frame
/// carried it), stamped `ts_ms` with `quality`. Demands and coincident values are not
/// read here (see the module documentation).
pub fn bt23_summations(
    st23: &St23,
    sel: Option<&Selection>,
    ts_ms: i64,
    quality: Quality,
) -> Vec<Reading> {
    let mut out = Vec::new();
    for (tier, block) in st23.blocks.iter().enumerate() {
        let tier = u8::try_from(tier).unwrap_or(u8::MAX);
        for (i, v) in block.summations.iter().enumerate() {
            let number = match sel {
                Some(s) => s.summations.get(i).copied(),
                None => u8::try_from(i).ok(),
            };
            let (Some(v), Some(s)) = (v, number.and_then(summation)) else {
                continue;
            };
            if tier > 0 && !s.in_tiers {
                continue;
            }
            if let Some(value) = v.shifted(s.exp) {
                out.push(Reading {
                    register: summation_register(s, tier),
                    value,
                    unit: s.unit,
                    ts_ms,
                    quality,
                });
            }
        }
    }
    out
}

/// One BT26 self read.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SelfRead {
    /// The Billing Interface Definition Number, when BT21.4 is not 0.
    pub bidn: Option<u16>,
    /// When the snapshot was taken.
    pub time: Option<i64>,
    /// The season.
    pub season: Option<u8>,
    /// The snapshot of BT23.
    pub registers: St23,
}

/// BT26 as read: its header and its valid entries, oldest first.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Bt26 {
    /// Order, overflow, list type, inhibit overflow (byte 0).
    pub flags: u8,
    /// Sequence number of the most recent self read.
    pub last_seq: u16,
    /// Number of unread entries.
    pub unread: u8,
    /// The valid entries, oldest first.
    pub entries: Vec<SelfRead>,
}

/// Reads BT26 (\[OPG\] pages 28-29), dimensioned by BT21: flags, number of valid entries,
/// last entry element, last entry sequence number (`UINT16`), number of unread entries,
/// then `ARRAY[BT21.2]` of self reads (a table read in part keeps the entries it has). The
/// circular queue is put in order from the entry after the last one.
pub fn bt26(data: &[u8], cfg: &Config, dims: &RegisterDims) -> Result<Bt26, Error> {
    let mut t = TableReader::new(data, cfg, "BT26");
    let flags = t.u8()?;
    let valid = usize::from(t.u8()?);
    let last = usize::from(t.u8()?);
    let last_seq = t.u16()?;
    let unread = t.u8()?;
    let mut all = Vec::new();
    for _ in 0..dims.self_reads {
        if t.remaining() == 0 {
            break;
        }
        let bidn = if dims.demands != 0 {
            Some(t.u16()?)
        } else {
            None
        };
        let time = if dims.date_time_field() {
            t.stime_date()?
        } else {
            None
        };
        let season = if dims.season_info() {
            Some(t.u8()?)
        } else {
            None
        };
        let registers = register_data(&mut t, dims)?;
        all.push(SelfRead {
            bidn,
            time,
            season,
            registers,
        });
    }
    t.finish(false)?;
    let entries = crate::tables::log::oldest_first(all, valid, last);
    Ok(Bt26 {
        flags,
        last_seq,
        unread,
        entries,
    })
}

/// BT28 as read: the present demands and the numbered present values.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Bt28 {
    /// The present demands (`NI_FMAT2`).
    pub demands: Vec<Option<Quantity>>,
    /// The present values (`NI_FMAT1`), by number.
    pub values: Vec<Option<Quantity>>,
}

/// Reads BT28 (\[OPG\] pages 53-57), dimensioned by BT21: `ARRAY[BT21.8]` of (time
/// remaining `TIME` if BT21.0.6, demand `NI_FMAT2`), then `ARRAY[BT21.9]` of `NI_FMAT1`.
pub fn bt28(data: &[u8], cfg: &Config, dims: &RegisterDims) -> Result<Bt28, Error> {
    let mut t = TableReader::new(data, cfg, "BT28");
    let time_remaining = dims.func1 & 0x40 != 0;
    let mut out = Bt28::default();
    for _ in 0..dims.present_demands {
        if time_remaining {
            t.bytes(3)?;
        }
        out.demands.push(t.ni(cfg.ni2)?);
    }
    for _ in 0..dims.present_values {
        out.values.push(t.ni(cfg.ni1)?);
    }
    t.finish(true)?;
    Ok(out)
}

/// The readings of BT28's present values that have an OBIS code (D 7, instantaneous), and
/// how many present values were left unread.
pub fn bt28_readings(b: &Bt28, ts_ms: i64, quality: Quality) -> (Vec<Reading>, usize) {
    let mut out = Vec::new();
    let mut unread = 0;
    for (i, v) in b.values.iter().enumerate() {
        let s = u8::try_from(i).ok().and_then(present_value);
        match (v, s) {
            (Some(v), Some(s)) => {
                if let Some(value) = v.shifted(s.exp) {
                    out.push(Reading {
                        register: Obis::new(s.ac.0, 0, s.ac.1, 7, 0, 255),
                        value,
                        unit: s.unit,
                        ts_ms,
                        quality,
                    });
                }
            }
            (Some(_), None) => unread += 1,
            (None, _) => {}
        }
    }
    (out, unread)
}

/// A BT03 alarm: its code (`8 × offset + bit` in \[OPG\]'s `BT03.offset.bit` notation, the
/// 16 standard status bits at offset 1 counted 0-15), its name and its event kind.
pub fn alarm(code: u16) -> Option<(&'static str, EventKind)> {
    use EventKind::{Alarm, CoverOpen, MagneticField, PowerDown, RelayOpen, Tamper};
    Some(match code {
        // BT03.1: ED_STD_STATUS1, bits 0-15.
        8 => ("Unprogrammed", Alarm),
        9 => ("Configuration Error", Alarm),
        10 => ("System Reset", Alarm),
        11 => ("RAM Failure", Alarm),
        12 => ("ROM Failure", Alarm),
        13 => ("Non-volatile Memory Failure", Alarm),
        14 => ("Clock Error", Alarm),
        15 => ("Measurement Error", Alarm),
        16 => ("Low Battery", Alarm),
        17 => ("Low Loss Potential", Alarm),
        18 => ("Demand Overload", Alarm),
        19 => ("Power Failure", PowerDown),
        20 => ("Cover Removed", CoverOpen),
        21 => ("Reverse Energy", Alarm),
        22 => ("Data Backup Incomplete", Alarm),
        23 => ("Disconnect Switch Error", Alarm),
        // BT03.3: extended alarms (firmware 3.50 and later).
        24 => ("Load Profile Data Set 2 Unread Entries Exist", Alarm),
        25 => ("Load Profile Data Set 3 Unread Entries Exist", Alarm),
        26 => ("Load Profile Data Set 4 Unread Entries Exist", Alarm),
        27 => ("Neutral Current Deviation", Alarm),
        // BT03.4 onwards: manufacturer-defined alarms, SET(BT00.17).
        32 => ("Load Profile Overflow", Alarm),
        33 => ("Self-Read Occurred", Alarm),
        34 => ("Load Disconnect Has Changed State", Alarm),
        35 => ("Control Relay (1) Open", RelayOpen),
        36 => ("Phase Loss", Alarm),
        37 => ("Phase Inversion", Alarm),
        38 => ("PLC Config Failure", Alarm),
        39 => ("General Error", Alarm),
        40 => ("Invalid Password", Alarm),
        41 => ("Remote Communications Inactive", Alarm),
        42 => ("Current on Missing or Unused Phase", Alarm),
        43 => ("Pulse Input 1 Tamper", Tamper),
        44 => ("Pulse Input 2 Tamper", Tamper),
        45 => ("Software CRC Error", Alarm),
        46 => ("Code Bank Changed", Alarm),
        47 => ("Load Profile Backfill Failed", Alarm),
        48 => ("MEP Installed or Removed", Alarm),
        49 => ("M-Bus Alarm", Alarm),
        50 => ("M-Bus Auto-Discovery Complete", Alarm),
        51 => ("Phase Rotation Changed", Alarm),
        52 => ("Prepay Credit Exhausted", Alarm),
        53 => ("Prepay Warning Acknowledged", Alarm),
        54 => ("Event Log Overflow Pending", Alarm),
        55 => ("Mfg Log Entry Available", Alarm),
        56 => ("Dimension Change", Alarm),
        57 => ("Magnetic Tamper Detected", MagneticField),
        58 => ("Access Lockout Override", Alarm),
        59 => ("Power Quality Event Detected", Alarm),
        60 => ("Event Log Unread Entries", Alarm),
        61 => ("THD State Changed", Alarm),
        62 => ("Load Profile 1 Unread Entries Exist", Alarm),
        63 => ("Load Side Voltage Detected", Alarm),
        64 => ("Unbalanced Voltage Detected", Alarm),
        65 => ("Password Table Written To", Alarm),
        66 => ("Password (Key) Expiration Pending", Alarm),
        67 => ("P2P Security", Alarm),
        68 => ("Firmware Separation Violation", Alarm),
        69 => ("Modem Error", Alarm),
        70 => ("G3 Alarm", Alarm),
        71 => ("G3 Event Logged", Alarm),
        72 => ("Control Relay (2) Open", RelayOpen),
        _ => return None,
    })
}

/// The alarms set in BT03 (\[OPG\] pages 45-47): byte 0 is the metering mode (not an
/// alarm), the standard status follows as `UINT16` in the table's byte order, then
/// the extended byte and the manufacturer-defined bytes (`SET`, bit 0 first). Only the
/// alarms the documentation names ([`alarm`]) are returned; other set bits are not.
pub fn bt03_alarms(data: &[u8], cfg: &Config) -> Result<Vec<u16>, Error> {
    let mut t = TableReader::new(data, cfg, "BT03");
    t.u8()?;
    let std = t.u16()?;
    let mut codes: Vec<u16> = (0..16u16)
        .filter(|b| std & (1 << b) != 0)
        .map(|b| 8 + b)
        .collect();
    let rest = t.bytes(t.remaining())?;
    for (i, byte) in rest.iter().enumerate() {
        let Ok(offset) = u16::try_from(3 + i) else {
            break;
        };
        for bit in 0..8u16 {
            let code = offset.saturating_mul(8).saturating_add(bit);
            if byte & (1 << bit) != 0 && alarm(code).is_some() {
                codes.push(code);
            }
        }
    }
    Ok(codes)
}

/// The events of BT03's alarms, stamped `ts_ms` (the table keeps no times; an alarm is a
/// status the meter holds, reported each time the table is).
pub fn alarm_events(codes: &[u16], ts_ms: i64, source: Obis) -> Vec<Event> {
    codes
        .iter()
        .map(|&c| Event {
            kind: alarm(c).map_or(EventKind::Alarm, |(_, k)| k),
            ts_ms,
            code: u32::from(c),
            source: Some(source),
            duration_s: 0,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_names_follow_the_naming_convention() {
        // \[OPG\] page 8: "ET03 index = 2048 + 3 = 2051", "pending table BT54 is numbered
        // (4096 + 54 = 4150)", "pending table ET47 is numbered (4096 + 2048 + 47 = 6191)".
        assert_eq!(table_name(2051), "ET03");
        assert_eq!(table_name(4150), "pending BT54");
        assert_eq!(table_name(6191), "pending ET47");
        assert_eq!(table_name(23), "BT23");
    }

    #[test]
    fn counters_have_distinct_registers() {
        let regs: Vec<Obis> = [4u8, 5, 8, 9, 10]
            .iter()
            .filter_map(|&n| summation(n))
            .map(|s| summation_register(s, 0))
            .collect();
        assert_eq!(regs.len(), 5);
        for (i, r) in regs.iter().enumerate() {
            assert!(!regs[i + 1..].contains(r));
        }
    }
}
