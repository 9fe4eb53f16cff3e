//! ST 0 (General Configuration) and ST 1 (General Manufacturer Identification).
//!
//! ST 0 (C12.19 clause "Decade 0", `GEN_CONFIG_TBL`):
//!
//! ```text
//! FORMAT_CONTROL_1  bit 0 DATA_ORDER, bits 1-3 CHAR_FORMAT, bits 4-6 MODEL_SELECT
//! FORMAT_CONTROL_2  bits 0-2 TM_FORMAT, bits 3-4 DATA_ACCESS_METHOD, bit 5 ID_FORM,
//!                   bits 6-7 INT_FORMAT
//! FORMAT_CONTROL_3  bits 0-3 NI_FORMAT1, bits 4-7 NI_FORMAT2
//! DEVICE_CLASS      4 bytes
//! NAMEPLATE_TYPE, DEFAULT_SET_USED, MAX_PROC_PARM_LENGTH, MAX_RESP_DATA_LEN,
//! STD_VERSION_NO, STD_REVISION_NO, DIM_STD_TBLS_USED, DIM_MFG_TBLS_USED,
//! DIM_STD_PROC_USED, DIM_MFG_PROC_USED, DIM_MFG_STATUS_USED, NBR_PENDING   (UINT8 each)
//! STD_TBLS_USED SET(DIM_STD_TBLS_USED), MFG_TBLS_USED SET(DIM_MFG_TBLS_USED),
//! STD_PROC_USED SET(DIM_STD_PROC_USED), MFG_PROC_USED SET(DIM_MFG_PROC_USED),
//! STD_TBLS_WRITE SET(DIM_STD_TBLS_USED), MFG_TBLS_WRITE SET(DIM_MFG_TBLS_USED)
//! ```

use super::{Config, IntFormat, NiFormat, TableReader, TmFormat};
use crate::Error;

/// ST 0 as read.
#[derive(Clone, Debug, PartialEq)]
pub struct St0 {
    /// The configuration it sets.
    pub config: Config,
    /// `DEVICE_CLASS`.
    pub device_class: [u8; 4],
    /// `STD_VERSION_NO`, `STD_REVISION_NO`.
    pub std_version: (u8, u8),
    /// `STD_TBLS_USED`.
    pub std_tbls_used: Vec<u8>,
}

/// Reads ST 0 (its own byte order is the one it declares).
pub fn st0(data: &[u8]) -> Result<St0, Error> {
    let [fc1, fc2, fc3] = match data.get(..3) {
        Some(&[a, b, c]) => [a, b, c],
        _ => {
            return Err(Error::Truncated {
                what: "ST 0 format control",
                at: 0,
                need: 3,
                have: data.len(),
            });
        }
    };
    let int_format = match fc2 >> 6 {
        0 => IntFormat::TwosComplement,
        1 => IntFormat::OnesComplement,
        2 => IntFormat::SignMagnitude,
        other => {
            return Err(Error::malformed(
                "ST 0",
                format!("INT_FORMAT {other} (0-2 defined)"),
            ));
        }
    };
    let mut config = Config {
        big_endian: fc1 & 0x01 != 0,
        char_format: (fc1 >> 1) & 0x07,
        model_select: (fc1 >> 4) & 0x07,
        tm_format: TmFormat::from_code(fc2 & 0x07)?,
        data_access_method: (fc2 >> 3) & 0x03,
        id_form_bcd: fc2 & 0x20 != 0,
        int_format,
        ni1: NiFormat::from_code(fc3 & 0x0F)?,
        ni2: NiFormat::from_code(fc3 >> 4)?,
        from_st0: true,
        ..Config::default()
    };
    let snapshot = config.clone();
    let mut t = TableReader::new(data, &snapshot, "ST 0");
    t.bytes(3)?;
    let mut device_class = [0u8; 4];
    device_class.copy_from_slice(t.bytes(4)?);
    let nameplate = t.u8()?;
    let _default_set = t.u8()?;
    let _max_proc_parm = t.u8()?;
    let _max_resp = t.u8()?;
    let version = t.u8()?;
    let revision = t.u8()?;
    let dims = [t.u8()?, t.u8()?, t.u8()?, t.u8()?];
    let _dim_mfg_status = t.u8()?;
    let _pending = t.u8()?;
    let [std_t, mfg_t, std_p, mfg_p] = dims.map(usize::from);
    let std_tbls_used = t.set(std_t)?.to_vec();
    for n in [mfg_t, std_p, mfg_p, std_t, mfg_t] {
        t.set(n)?;
    }
    config.nameplate_type = Some(nameplate);
    config.dims = dims;
    Ok(St0 {
        config,
        device_class,
        std_version: (version, revision),
        std_tbls_used,
    })
}

/// ST 1 as read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct St1 {
    /// `MANUFACTURER` (4 characters).
    pub manufacturer: String,
    /// `ED_MODEL` (8 characters).
    pub model: String,
    /// Hardware version and revision.
    pub hw: (u8, u8),
    /// Firmware version and revision.
    pub fw: (u8, u8),
    /// `MFG_SERIAL_NUMBER`: 16 characters, or 8 BCD bytes (16 digits) with `ID_FORM` 1.
    pub serial: String,
}

/// Reads ST 1.
pub fn st1(data: &[u8], cfg: &Config) -> Result<St1, Error> {
    let mut t = TableReader::new(data, cfg, "ST 1");
    let manufacturer = t.chars(4)?;
    let model = t.chars(8)?;
    let hw = (t.u8()?, t.u8()?);
    let fw = (t.u8()?, t.u8()?);
    let serial = if cfg.id_form_bcd {
        t.bytes(8)?
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    } else {
        t.chars(16)?.trim().to_owned()
    };
    Ok(St1 {
        manufacturer: manufacturer.trim().to_owned(),
        model: model.trim().to_owned(),
        hw,
        fw,
        serial,
    })
}
