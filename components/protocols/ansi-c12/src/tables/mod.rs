//! The ANSI C12.19 table model.
//!
//! A C12.19 device describes itself: ST 0 (General Configuration) says in which byte order,
//! character set, time format, integer format and non-integer formats every other table is
//! written, and the "actual" tables (ST 21 registers, ST 51 time and TOU, ST 61 load profile,
//! ST 71 logs) give the dimensions of the tables that follow them. [`Config`] holds all of
//! it, and [`TableReader`] reads the data types of the standard (`UINT8`..`UINT32`,
//! `INT8`..`INT64` in the device's integer format, `NI_FMAT1`/`NI_FMAT2`, `STIME_DATE`,
//! `LTIME_DATE`, `SET`, `CHAR`, `BCD`) by it, so the readers of the tables ([`st0`],
//! [`registers`], [`time`], [`load_profile`], [`log`]) are written against the standard's
//! element lists, not against byte offsets.
//!
//! A table read without its ST 0 is read with [`Config::default`] (little-endian, ISO 8859/1
//! characters, `TM_FORMAT` 2 (binary date and time), two's complement, `NI_FMAT1` and
//! `NI_FMAT2` INT32), and the decoder says so.

pub mod load_profile;
pub mod log;
pub mod registers;
pub mod st0;
pub mod time;

use ami_domain::Quantity;

use crate::Error;
use crate::read::Reader;

/// `TM_FORMAT` of ST 0: how dates and times are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TmFormat {
    /// 0: the device keeps no time; time fields are absent.
    None,
    /// 1: BCD year (2 digits), month, day, hour, minute [, second].
    Bcd,
    /// 2: the same fields as binary `UINT8`s.
    Binary,
    /// 3: `UINT32` minutes since 1970-01-01 00:00 [, `UINT8` seconds].
    Minutes,
    /// 4: `UINT32` seconds since 1970-01-01 00:00.
    Seconds,
}

impl TmFormat {
    /// The format of a `TM_FORMAT` code (0-4).
    pub fn from_code(code: u8) -> Result<TmFormat, Error> {
        Ok(match code {
            0 => TmFormat::None,
            1 => TmFormat::Bcd,
            2 => TmFormat::Binary,
            3 => TmFormat::Minutes,
            4 => TmFormat::Seconds,
            other => {
                return Err(Error::malformed(
                    "ST 0",
                    format!("TM_FORMAT {other} (0-4 defined)"),
                ));
            }
        })
    }
}

/// `INT_FORMAT` of ST 0: how signed integers are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IntFormat {
    /// 0: two's complement.
    TwosComplement,
    /// 1: one's complement.
    OnesComplement,
    /// 2: sign and magnitude.
    SignMagnitude,
}

/// A non-integer format (`NI_FORMAT1`/`NI_FORMAT2` of ST 0).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NiFormat {
    /// 0: IEEE 754 binary64.
    Float64,
    /// 1: IEEE 754 binary32.
    Float32,
    /// 2: a decimal number as 12 characters.
    FloatChar12,
    /// 3: a decimal number as 6 characters.
    FloatChar6,
    /// 4: `INT32` with four implied decimals (value / 10000).
    Int32Fixed4,
    /// 5: 6 BCD digits (3 bytes).
    FixedBcd6,
    /// 6: 4 BCD digits (2 bytes).
    FixedBcd4,
    /// 7: `INT24`.
    Int24,
    /// 8: `INT32`.
    Int32,
    /// 9: `INT40`.
    Int40,
    /// 10: `INT48`.
    Int48,
    /// 11: `INT64`.
    Int64,
    /// 12: 8 BCD digits (4 bytes).
    FixedBcd8,
    /// 13: a decimal number as 21 characters.
    FloatChar21,
}

impl NiFormat {
    /// The format of a code (0-13).
    pub fn from_code(code: u8) -> Result<NiFormat, Error> {
        use NiFormat::*;
        Ok(match code {
            0 => Float64,
            1 => Float32,
            2 => FloatChar12,
            3 => FloatChar6,
            4 => Int32Fixed4,
            5 => FixedBcd6,
            6 => FixedBcd4,
            7 => Int24,
            8 => Int32,
            9 => Int40,
            10 => Int48,
            11 => Int64,
            12 => FixedBcd8,
            13 => FloatChar21,
            other => {
                return Err(Error::malformed(
                    "ST 0",
                    format!("NI_FORMAT {other} (0-13 defined)"),
                ));
            }
        })
    }

    /// Its size in bytes.
    pub fn size(self) -> usize {
        use NiFormat::*;
        match self {
            Float64 | Int64 => 8,
            Float32 | Int32Fixed4 | Int32 | FixedBcd8 => 4,
            FloatChar12 => 12,
            FloatChar6 | Int48 => 6,
            FloatChar21 => 21,
            FixedBcd6 | Int24 => 3,
            FixedBcd4 => 2,
            Int40 => 5,
        }
    }
}

/// ST 21 dimensions (Actual Register Limiting Table).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RegisterDims {
    /// `REG_FUNC1_FLAGS`.
    pub func1: u8,
    /// `REG_FUNC2_FLAGS`.
    pub func2: u8,
    /// `NBR_SELF_READS`.
    pub self_reads: u8,
    /// `NBR_SUMMATIONS`.
    pub summations: u8,
    /// `NBR_DEMANDS`.
    pub demands: u8,
    /// `NBR_COIN_VALUES`.
    pub coin_values: u8,
    /// `NBR_OCCUR`.
    pub occur: u8,
    /// `NBR_TIERS`.
    pub tiers: u8,
    /// `NBR_PRESENT_DEMANDS`.
    pub present_demands: u8,
    /// `NBR_PRESENT_VALUES`.
    pub present_values: u8,
}

impl RegisterDims {
    /// `SEASON_INFO_FIELD_FLAG`.
    pub fn season_info(&self) -> bool {
        self.func1 & 0x01 != 0
    }
    /// `DATE_TIME_FIELD_FLAG`: demands carry their event times.
    pub fn date_time_field(&self) -> bool {
        self.func1 & 0x02 != 0
    }
    /// `DEMAND_RESET_CTR_FLAG`: ST 23 starts with the demand reset count.
    pub fn demand_reset_ctr(&self) -> bool {
        self.func1 & 0x04 != 0
    }
    /// `CUM_DEMAND_FLAG`.
    pub fn cum_demand(&self) -> bool {
        self.func1 & 0x10 != 0
    }
    /// `CONT_CUM_DEMAND_FLAG`.
    pub fn cont_cum_demand(&self) -> bool {
        self.func1 & 0x20 != 0
    }
}

/// Everything that decides how tables are read: ST 0's formats and the dimensions of ST 21,
/// ST 61 and ST 71.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// `DATA_ORDER`: multi-byte numbers are little-endian (0) or big-endian (1).
    pub big_endian: bool,
    /// `CHAR_FORMAT` (1 ISO 7-bit, 2 ISO 8859/1, 3 UTF-8, 4 UTF-16, 5 UTF-32).
    pub char_format: u8,
    /// `MODEL_SELECT`.
    pub model_select: u8,
    /// `TM_FORMAT`.
    pub tm_format: TmFormat,
    /// `DATA_ACCESS_METHOD`.
    pub data_access_method: u8,
    /// `ID_FORM`: identifiers are BCD (true) or characters.
    pub id_form_bcd: bool,
    /// `INT_FORMAT`.
    pub int_format: IntFormat,
    /// `NI_FORMAT1`.
    pub ni1: NiFormat,
    /// `NI_FORMAT2`.
    pub ni2: NiFormat,
    /// `NAMEPLATE_TYPE` (0 gas, 1 water, 2 electric), if ST 0 was read.
    pub nameplate_type: Option<u8>,
    /// `DIM_STD_TBLS_USED`, `DIM_MFG_TBLS_USED`, `DIM_STD_PROC_USED`, `DIM_MFG_PROC_USED`.
    pub dims: [u8; 4],
    /// ST 21, once read.
    pub registers: Option<RegisterDims>,
    /// ST 61, once read.
    pub load_profile: Option<load_profile::Actual>,
    /// ST 71, once read.
    pub log: Option<log::Actual>,
    /// The configuration came from ST 0 (not the defaults).
    pub from_st0: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            big_endian: false,
            char_format: 2,
            model_select: 0,
            tm_format: TmFormat::Binary,
            data_access_method: 0,
            id_form_bcd: false,
            int_format: IntFormat::TwosComplement,
            ni1: NiFormat::Int32,
            ni2: NiFormat::Int32,
            nameplate_type: None,
            dims: [0; 4],
            registers: None,
            load_profile: None,
            log: None,
            from_st0: false,
        }
    }
}

impl Config {
    /// The OBIS A group of the device's medium (1 electricity, 7 gas, 8 water; 1 when ST 0
    /// was not read: C12.19 devices are electricity meters far more often than not).
    pub fn medium_group(&self) -> u8 {
        match self.nameplate_type {
            Some(0) => 7,
            Some(1) => 8,
            _ => 1,
        }
    }
}

/// Reads the standard's data types under a [`Config`].
#[derive(Clone, Debug)]
pub struct TableReader<'a, 'c> {
    /// The cursor.
    pub r: Reader<'a>,
    /// The configuration.
    pub cfg: &'c Config,
    /// The table being read (for messages).
    pub what: &'static str,
}

/// Days in a month, for checking dates.
fn valid_date(y: i64, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> bool {
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let days = match mo {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return false,
    };
    d >= 1 && d <= days && h < 24 && mi < 60 && s < 60
}

fn bcd_byte(b: u8) -> Option<u32> {
    let (hi, lo) = (b >> 4, b & 0x0F);
    (hi < 10 && lo < 10).then_some(u32::from(hi) * 10 + u32::from(lo))
}

impl<'a, 'c> TableReader<'a, 'c> {
    /// A reader of table `what`'s bytes.
    pub fn new(data: &'a [u8], cfg: &'c Config, what: &'static str) -> Self {
        Self {
            r: Reader::new(data),
            cfg,
            what,
        }
    }

    /// Bytes left.
    pub fn remaining(&self) -> usize {
        self.r.remaining()
    }

    /// `n` raw bytes.
    pub fn bytes(&mut self, n: usize) -> Result<&'a [u8], Error> {
        self.r.take(n, self.what)
    }

    /// An unsigned integer of `n` bytes (1-8) in the device's byte order.
    pub fn uint(&mut self, n: usize) -> Result<u64, Error> {
        let s = self.r.take(n.min(8), self.what)?;
        let fold = |v: u64, &b: &u8| (v << 8) | u64::from(b);
        Ok(if self.cfg.big_endian {
            s.iter().fold(0, fold)
        } else {
            s.iter().rev().fold(0, fold)
        })
    }

    /// `UINT8`.
    pub fn u8(&mut self) -> Result<u8, Error> {
        self.r.u8(self.what)
    }

    /// `UINT16`.
    pub fn u16(&mut self) -> Result<u16, Error> {
        Ok(self.uint(2)? as u16)
    }

    /// `UINT32`.
    pub fn u32(&mut self) -> Result<u32, Error> {
        Ok(self.uint(4)? as u32)
    }

    /// A signed integer of `n` bytes (1-8) in the device's byte order and `INT_FORMAT`.
    pub fn int(&mut self, n: usize) -> Result<i64, Error> {
        let n = n.clamp(1, 8);
        let raw = self.uint(n)?;
        let bits = 8 * n as u32;
        let sign = 1u64 << (bits - 1);
        let mask = if bits == 64 {
            u64::MAX
        } else {
            (1u64 << bits) - 1
        };
        let negative = raw & sign != 0;
        Ok(match (self.cfg.int_format, negative) {
            (_, false) => raw as i64,
            (IntFormat::TwosComplement, true) => (raw | !mask) as i64,
            (IntFormat::OnesComplement, true) => -(((!raw) & mask) as i64),
            (IntFormat::SignMagnitude, true) => -((raw & !sign) as i64),
        })
    }

    /// `n` characters as text (trailing spaces and NULs dropped; bytes outside ASCII kept as
    /// Latin-1).
    pub fn chars(&mut self, n: usize) -> Result<String, Error> {
        let s = self.r.take(n, self.what)?;
        let text: String = s.iter().map(|&b| char::from(b)).collect();
        Ok(text.trim_end_matches([' ', '\0']).to_owned())
    }

    /// A `SET` of `n` bytes: bit `i` is bit `i % 8` of byte `i / 8`.
    pub fn set(&mut self, n: usize) -> Result<&'a [u8], Error> {
        self.r.take(n, self.what)
    }

    /// A non-integer value: `None` where the bytes are no number (a NaN, an infinity, text
    /// that is no decimal, BCD with non-decimal digits).
    pub fn ni(&mut self, fmt: NiFormat) -> Result<Option<Quantity>, Error> {
        use NiFormat::*;
        Ok(match fmt {
            Float64 => {
                let raw = self.uint(8)?;
                float_quantity(f64::from_bits(raw), false)
            }
            Float32 => {
                let raw = self.uint(4)? as u32;
                float_quantity(f64::from(f32::from_bits(raw)), true)
            }
            FloatChar12 | FloatChar6 | FloatChar21 => {
                let text = self.chars(fmt.size())?;
                text.trim().parse::<Quantity>().ok()
            }
            Int32Fixed4 => Some(Quantity::new(self.int(4)?, -4)),
            FixedBcd4 | FixedBcd6 | FixedBcd8 => {
                let s = self.r.take(fmt.size(), self.what)?;
                s.iter()
                    .try_fold(0i64, |v, &b| bcd_byte(b).map(|d| v * 100 + i64::from(d)))
                    .map(|v| Quantity::new(v, 0))
            }
            Int24 => Some(Quantity::new(self.int(3)?, 0)),
            Int32 => Some(Quantity::new(self.int(4)?, 0)),
            Int40 => Some(Quantity::new(self.int(5)?, 0)),
            Int48 => Some(Quantity::new(self.int(6)?, 0)),
            Int64 => Some(Quantity::new(self.int(8)?, 0)),
        })
    }

    /// The civil fields of a date and time written as bytes (BCD or binary).
    fn civil(&mut self, seconds: bool) -> Result<Option<i64>, Error> {
        let n = if seconds { 6 } else { 5 };
        let s = self.r.take(n, self.what)?;
        let field = |b: u8| -> Option<u32> {
            if self.cfg.tm_format == TmFormat::Bcd {
                bcd_byte(b)
            } else {
                Some(u32::from(b))
            }
        };
        let mut v = [0u32; 6];
        for (slot, &b) in v.iter_mut().zip(s) {
            match field(b) {
                Some(x) => *slot = x,
                None => return Ok(None),
            }
        }
        let [yy, mo, d, h, mi, sec] = v;
        // Two-digit years: 70-99 are 1970-1999, 0-69 are 2000-2069.
        let year = i64::from(if yy >= 70 { 1900 + yy } else { 2000 + yy });
        if !valid_date(year, mo, d, h, mi, sec) {
            return Ok(None);
        }
        Ok(Some(ami_domain::time::unix_ms(year, mo, d, h, mi, sec)))
    }

    /// `STIME_DATE`: a time to the minute (ms since the epoch), `None` when the device keeps
    /// no time (`TM_FORMAT` 0, no bytes) or the fields are no valid date.
    pub fn stime_date(&mut self) -> Result<Option<i64>, Error> {
        Ok(match self.cfg.tm_format {
            TmFormat::None => None,
            TmFormat::Bcd | TmFormat::Binary => self.civil(false)?,
            TmFormat::Minutes => Some(i64::from(self.u32()?) * 60_000),
            TmFormat::Seconds => Some(i64::from(self.u32()?) * 1000),
        })
    }

    /// `LTIME_DATE`: a time to the second.
    pub fn ltime_date(&mut self) -> Result<Option<i64>, Error> {
        Ok(match self.cfg.tm_format {
            TmFormat::None => None,
            TmFormat::Bcd | TmFormat::Binary => self.civil(true)?,
            TmFormat::Minutes => {
                let min = i64::from(self.u32()?);
                let sec = i64::from(self.u8()?);
                Some(min * 60_000 + sec.min(59) * 1000)
            }
            TmFormat::Seconds => Some(i64::from(self.u32()?) * 1000),
        })
    }

    /// Fails unless the table was read to its end (`exact`), else ignores what is left.
    pub fn finish(&self, exact: bool) -> Result<(), Error> {
        if exact && self.remaining() != 0 {
            return Err(Error::malformed(
                self.what,
                format!("{} bytes after the table's last element", self.remaining()),
            ));
        }
        Ok(())
    }
}

/// A binary float as the shortest decimal that reads back as the same float.
fn float_quantity(v: f64, single: bool) -> Option<Quantity> {
    if !v.is_finite() {
        return None;
    }
    let text = if single {
        format!("{}", v as f32)
    } else {
        format!("{v}")
    };
    text.parse::<Quantity>().ok()
}

/// Whether bit `i` of a C12.19 `SET` is set.
pub fn set_bit(set: &[u8], i: usize) -> bool {
    set.get(i / 8).is_some_and(|b| b & (1 << (i % 8)) != 0)
}
