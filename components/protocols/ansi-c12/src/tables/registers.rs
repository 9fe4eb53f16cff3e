//! ST 12 (Units of Measure), ST 21 (Actual Registers), ST 22 (Data Selection) and ST 23
//! (Current Register Data).
//!
//! ST 23 (`CURR_REG_DATA_TBL`), dimensioned by ST 21:
//!
//! ```text
//! NBR_DEMAND_RESETS  UINT8                       if DEMAND_RESET_CTR_FLAG
//! TOT_DATA_BLOCK     DATA_BLK_RCD
//! TIER_DATA_BLOCK    ARRAY[NBR_TIERS] OF DATA_BLK_RCD
//! DATA_BLK_RCD:
//!   SUMMATIONS   ARRAY[NBR_SUMMATIONS] OF NI_FMAT1
//!   DEMANDS      ARRAY[NBR_DEMANDS] OF DEMANDS_RCD
//!   COINCIDENTS  ARRAY[NBR_COIN_VALUES] OF ARRAY[NBR_OCCUR] OF NI_FMAT2
//! DEMANDS_RCD:
//!   EVENT_TIME      ARRAY[NBR_OCCUR] OF STIME_DATE  if DATE_TIME_FIELD_FLAG
//!   CUM_DEMAND      NI_FMAT1                        if CUM_DEMAND_FLAG
//!   CONT_CUM_DEMAND NI_FMAT1                        if CONT_CUM_DEMAND_FLAG
//!   DEMAND          ARRAY[NBR_OCCUR] OF NI_FMAT2
//! ```
//!
//! # Register ids
//!
//! A summation or demand is measured from a source (ST 22 `SUMMATION_SELECT` /
//! `DEMAND_SELECT` pick an index into the sources of ST 12-16); ST 12 gives that source's
//! unit of measure (`ID_CODE`, `MULTIPLIER`, the quadrants it accounts for). Where both are
//! known the register is OBIS-like: A from the nameplate (1 electricity), B 0, C from the
//! quantity and quadrants (1 = +A: Q1+Q4 active, 2 = -A: Q2+Q3, 15 = |A| all four,
//! 16 = A net; 3 = +R: Q1+Q2 reactive, 4 = -R: Q3+Q4, 5-8 = R in Q1..Q4 alone; 9 = +VA:
//! Q1+Q4 apparent, 10 = -VA), D 8 for summations, 6 for demands (maximum), 2 for cumulative
//! and 3 for continuous cumulative demand, 5 for coincident values (the demand's C), E the
//! tier (0 = total, 1.. = tier 1..), F 255; the unit is Wh/varh/VAh (summations) or
//! W/var/VA (demands) with the UOM's multiplier in the scale.
//!
//! Otherwise the mapping is ami's, by position: C = 128 + the summation's (or demand's)
//! index in ST 23, same D and E, unit [`Unit::Count`] (the raw number: its unit is in ST 12,
//! which the frame does not carry).

use ami_domain::{Obis, Quality, Quantity, Reading, Unit};

use super::{Config, RegisterDims, TableReader};
use crate::Error;

/// One ST 12 `UOM_ENTRY_BFLD` (32 bits).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Uom(pub u32);

impl Uom {
    /// `ID_CODE` (0 active power W, 1 reactive power var, 2 apparent power VA, ...).
    pub fn id_code(self) -> u8 {
        (self.0 & 0xFF) as u8
    }
    /// `MULTIPLIER` as a power of ten.
    pub fn exponent(self) -> i8 {
        match (self.0 >> 11) & 0x07 {
            0 => 0,
            1 => 2,
            2 => 3,
            3 => 6,
            4 => 9,
            5 => -2,
            6 => -3,
            _ => -6,
        }
    }
    /// The quadrants accounted for (Q1..Q4 as bits 0..3).
    pub fn quadrants(self) -> u8 {
        ((self.0 >> 14) & 0x0F) as u8
    }
    /// `NET_FLOW_ACCOUNTABILITY`.
    pub fn net_flow(self) -> bool {
        self.0 & (1 << 18) != 0
    }

    /// OBIS C, the energy unit and the power unit of this measure, if ami maps it.
    pub fn obis_c(self) -> Option<(u8, Unit, Unit)> {
        let q = self.quadrants();
        match self.id_code() {
            0 => {
                let c = match (q, self.net_flow()) {
                    (0b1001, _) => 1,
                    (0b0110, _) => 2,
                    (0b1111, true) => 16,
                    (0b1111, false) => 15,
                    _ => return None,
                };
                Some((c, Unit::WattHour, Unit::Watt))
            }
            1 => {
                let c = match q {
                    0b0011 => 3,
                    0b1100 => 4,
                    0b0001 => 5,
                    0b0010 => 6,
                    0b0100 => 7,
                    0b1000 => 8,
                    _ => return None,
                };
                Some((c, Unit::VarHour, Unit::Var))
            }
            2 => {
                let c = match q {
                    0b1001 => 9,
                    0b0110 => 10,
                    _ => return None,
                };
                Some((c, Unit::VoltAmpereHour, Unit::VoltAmpere))
            }
            _ => None,
        }
    }
}

/// Reads ST 12: `UOM_ENTRY_BFLD` per source, as many as the table holds.
pub fn st12(data: &[u8], cfg: &Config) -> Result<Vec<Uom>, Error> {
    let mut t = TableReader::new(data, cfg, "ST 12");
    let mut out = Vec::with_capacity(data.len() / 4);
    while t.remaining() >= 4 {
        out.push(Uom(t.u32()?));
    }
    Ok(out)
}

/// Reads ST 21.
pub fn st21(data: &[u8], cfg: &Config) -> Result<RegisterDims, Error> {
    let mut t = TableReader::new(data, cfg, "ST 21");
    Ok(RegisterDims {
        func1: t.u8()?,
        func2: t.u8()?,
        self_reads: t.u8()?,
        summations: t.u8()?,
        demands: t.u8()?,
        coin_values: t.u8()?,
        occur: t.u8()?,
        tiers: t.u8()?,
        present_demands: t.u8()?,
        present_values: t.u8()?,
    })
}

/// ST 22: which source each summation, demand and coincident value measures.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Selection {
    /// `SUMMATION_SELECT`.
    pub summations: Vec<u8>,
    /// `DEMAND_SELECT`.
    pub demands: Vec<u8>,
    /// `MIN_OR_MAX_FLAGS` (bit set: the demand is a minimum).
    pub min_or_max: Vec<u8>,
    /// `COINCIDENT_SELECT`.
    pub coincidents: Vec<u8>,
    /// `COIN_DEMAND_ASSOC`: the demand each coincident value goes with.
    pub coin_demand_assoc: Vec<u8>,
}

/// Reads ST 22 (needs ST 21).
pub fn st22(data: &[u8], cfg: &Config, dims: &RegisterDims) -> Result<Selection, Error> {
    let mut t = TableReader::new(data, cfg, "ST 22");
    let n = |x: u8| usize::from(x);
    Ok(Selection {
        summations: t.bytes(n(dims.summations))?.to_vec(),
        demands: t.bytes(n(dims.demands))?.to_vec(),
        min_or_max: t.set(n(dims.demands).div_ceil(8))?.to_vec(),
        coincidents: t.bytes(n(dims.coin_values))?.to_vec(),
        coin_demand_assoc: t.bytes(n(dims.coin_values))?.to_vec(),
    })
}

/// One demand of ST 23.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Demand {
    /// `EVENT_TIME` per occurrence.
    pub event_times: Vec<Option<i64>>,
    /// `CUM_DEMAND`.
    pub cum: Option<Quantity>,
    /// `CONT_CUM_DEMAND`.
    pub cont_cum: Option<Quantity>,
    /// `DEMAND` per occurrence.
    pub values: Vec<Option<Quantity>>,
}

/// One `DATA_BLK_RCD`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DataBlock {
    /// Summations.
    pub summations: Vec<Option<Quantity>>,
    /// Demands.
    pub demands: Vec<Demand>,
    /// Coincident values per occurrence.
    pub coincidents: Vec<Vec<Option<Quantity>>>,
}

/// ST 23 as read.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct St23 {
    /// `NBR_DEMAND_RESETS`.
    pub demand_resets: Option<u8>,
    /// The total block, then one per tier.
    pub blocks: Vec<DataBlock>,
}

fn data_block(t: &mut TableReader<'_, '_>, dims: &RegisterDims) -> Result<DataBlock, Error> {
    let (ni1, ni2) = (t.cfg.ni1, t.cfg.ni2);
    let mut b = DataBlock::default();
    for _ in 0..dims.summations {
        b.summations.push(t.ni(ni1)?);
    }
    for _ in 0..dims.demands {
        let mut d = Demand::default();
        if dims.date_time_field() {
            for _ in 0..dims.occur {
                d.event_times.push(t.stime_date()?);
            }
        }
        if dims.cum_demand() {
            d.cum = t.ni(ni1)?;
        }
        if dims.cont_cum_demand() {
            d.cont_cum = t.ni(ni1)?;
        }
        for _ in 0..dims.occur {
            d.values.push(t.ni(ni2)?);
        }
        b.demands.push(d);
    }
    for _ in 0..dims.coin_values {
        let mut v = Vec::new();
        for _ in 0..dims.occur {
            v.push(t.ni(ni2)?);
        }
        b.coincidents.push(v);
    }
    Ok(b)
}

/// Reads ST 23 (needs ST 21's dimensions).
pub fn st23(data: &[u8], cfg: &Config, dims: &RegisterDims) -> Result<St23, Error> {
    let mut t = TableReader::new(data, cfg, "ST 23");
    let out = register_data(&mut t, dims)?;
    t.finish(true)?;
    Ok(out)
}

/// Reads one `REGISTER_DATA_RCD` (the record of ST 23, also inside ST 24-26) from `t`.
pub fn register_data(t: &mut TableReader<'_, '_>, dims: &RegisterDims) -> Result<St23, Error> {
    let mut out = St23 {
        demand_resets: if dims.demand_reset_ctr() {
            Some(t.u8()?)
        } else {
            None
        },
        blocks: Vec::new(),
    };
    for _ in 0..=dims.tiers {
        out.blocks.push(data_block(t, dims)?);
    }
    Ok(out)
}

/// The register and unit of a value: `kind_d` is OBIS D, `index` the value's position,
/// `source` the source it measures (ST 22), `energy` whether its unit is an energy.
fn register(
    cfg: &Config,
    uoms: &[Uom],
    source: Option<u8>,
    index: usize,
    d: u8,
    tier: usize,
    energy: bool,
) -> (Obis, Unit, i8) {
    let a = cfg.medium_group();
    let e = u8::try_from(tier).unwrap_or(u8::MAX);
    let uom = source.and_then(|s| uoms.get(usize::from(s)));
    if let Some(u) = uom
        && let Some((c, eu, pu)) = u.obis_c()
    {
        return (
            Obis::new(a, 0, c, d, e, 255),
            if energy { eu } else { pu },
            u.exponent(),
        );
    }
    let c = 128u8.saturating_add(u8::try_from(index).unwrap_or(u8::MAX));
    (Obis::new(a, 0, c, d, e, 255), Unit::Count, 0)
}

/// The readings of ST 23: every summation, demand (with its event time where given),
/// cumulative demand and coincident value, per tier, stamped `ts_ms` with `quality`.
pub fn st23_readings(
    st23: &St23,
    cfg: &Config,
    uoms: &[Uom],
    sel: Option<&Selection>,
    ts_ms: i64,
    quality: Quality,
) -> Vec<Reading> {
    let mut out = Vec::new();
    let mut push = |(register, unit, exp): (Obis, Unit, i8), q: Quantity, ts: i64, qual| {
        if let Some(value) = q.shifted(exp) {
            out.push(Reading {
                register,
                value,
                unit,
                ts_ms: ts,
                quality: qual,
            });
        }
    };
    for (tier, block) in st23.blocks.iter().enumerate() {
        for (i, v) in block.summations.iter().enumerate() {
            let src = sel.and_then(|s| s.summations.get(i).copied());
            if let Some(v) = v {
                push(
                    register(cfg, uoms, src, i, 8, tier, true),
                    *v,
                    ts_ms,
                    quality,
                );
            }
        }
        for (i, d) in block.demands.iter().enumerate() {
            let src = sel.and_then(|s| s.demands.get(i).copied());
            for (k, v) in d.values.iter().enumerate() {
                let Some(v) = v else { continue };
                // A maximum demand is stamped with the time it occurred, when the meter gives it.
                let (ts, q) = match d.event_times.get(k).copied().flatten() {
                    Some(t) => (t, Quality::VALID),
                    None => (ts_ms, quality),
                };
                push(register(cfg, uoms, src, i, 6, tier, false), *v, ts, q);
            }
            if let Some(v) = d.cum {
                push(
                    register(cfg, uoms, src, i, 2, tier, false),
                    v,
                    ts_ms,
                    quality,
                );
            }
            if let Some(v) = d.cont_cum {
                push(
                    register(cfg, uoms, src, i, 3, tier, false),
                    v,
                    ts_ms,
                    quality,
                );
            }
        }
        for (i, vals) in block.coincidents.iter().enumerate() {
            let src = sel.and_then(|s| s.coincidents.get(i).copied());
            for v in vals.iter().flatten() {
                let (reg, unit, exp) = register(cfg, uoms, src, i, 5, tier, false);
                push((reg, unit, exp), *v, ts_ms, quality);
            }
        }
    }
    out
}
