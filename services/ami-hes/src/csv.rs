//! Bulk import of meters from CSV.
//!
//! # Format
//!
//! UTF-8 text, comma-separated, one meter per line, fields optionally in double quotes (`""`
//! is a quote inside them; a field may not span lines). The first line is the header naming the
//! columns, in any order; `serial` and `protocol` are required, every other column optional,
//! and an unknown column refuses the whole file:
//!
//! ```text
//! serial,manufacturer,model,protocol,dlms_system_title,mbus_address,osgp_device_id,adapter,concentrator,service_point,customer,location,latitude_e6,longitude_e6,feeder,transformer,phase,status
//! ```
//!
//! `latitude_e6`/`longitude_e6` are integers (micro-degrees); `status` is `installed` (the
//! default when empty), `commissioned`, `disconnected` or `retired`. Blank lines and lines
//! starting with `#` are skipped.
//!
//! A bad row (a parse error, a bad field, a serial or identity already registered or repeated
//! in the file) is reported with its line number (the header is line 1); the good rows are
//! imported, [`BATCH_ROWS`] per transaction.

use std::collections::HashSet;

use crate::error::{HesError, Result};
use crate::model::{Meter, MeterStatus, now_ms};
use crate::store::RegistryStore;

/// Rows per import transaction.
pub const BATCH_ROWS: usize = 1000;

/// Every column the header may name.
pub const COLUMNS: [&str; 18] = [
    "serial",
    "manufacturer",
    "model",
    "protocol",
    "dlms_system_title",
    "mbus_address",
    "osgp_device_id",
    "adapter",
    "concentrator",
    "service_point",
    "customer",
    "location",
    "latitude_e6",
    "longitude_e6",
    "feeder",
    "transformer",
    "phase",
    "status",
];

/// A row the import refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RowError {
    /// 1-based line number (the header is line 1).
    pub line: u32,
    /// Why.
    pub message: String,
}

/// What an import did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImportReport {
    /// Meters registered.
    pub imported: u32,
    /// Rows refused, by line.
    pub errors: Vec<RowError>,
}

/// Splits one CSV line into fields.
fn split_line(line: &str) -> std::result::Result<Vec<String>, String> {
    let mut fields = Vec::new();
    let mut cur = String::new();
    let mut chars = line.chars().peekable();
    let mut quoted = false;
    let mut at_start = true;
    while let Some(c) = chars.next() {
        if quoted {
            if c == '"' {
                if chars.peek() == Some(&'"') {
                    chars.next();
                    cur.push('"');
                } else {
                    quoted = false;
                    if !matches!(chars.peek(), None | Some(',')) {
                        return Err("text after a closing quote".into());
                    }
                }
            } else {
                cur.push(c);
            }
        } else if c == ',' {
            fields.push(std::mem::take(&mut cur));
            at_start = true;
            continue;
        } else if c == '"' && at_start {
            quoted = true;
        } else if c == '"' {
            return Err("a quote inside an unquoted field".into());
        } else {
            cur.push(c);
        }
        at_start = false;
    }
    if quoted {
        return Err("unterminated quoted field".into());
    }
    fields.push(cur);
    Ok(fields)
}

/// Meters parsed from CSV with their line numbers.
pub type NumberedMeters = Vec<(u32, Meter)>;

/// Parses CSV text into meters: the good rows with their line numbers, and the refused ones.
/// A missing or bad header refuses the whole text.
pub fn parse(text: &str) -> Result<(NumberedMeters, Vec<RowError>)> {
    let mut lines = text
        .lines()
        .enumerate()
        .map(|(i, l)| {
            (
                u32::try_from(i + 1).unwrap_or(u32::MAX),
                l.trim_end_matches('\r'),
            )
        })
        .filter(|(_, l)| !l.trim().is_empty() && !l.starts_with('#'));
    let Some((_, header)) = lines.next() else {
        return Err(HesError::InvalidArgument("csv: no header line".into()));
    };
    let header =
        split_line(header).map_err(|e| HesError::InvalidArgument(format!("csv header: {e}")))?;
    let mut cols = Vec::with_capacity(header.len());
    for h in &header {
        let h = h.trim().to_ascii_lowercase();
        let Some(i) = COLUMNS.iter().position(|c| *c == h) else {
            return Err(HesError::InvalidArgument(format!(
                "csv header: unknown column {h:?} (known: {})",
                COLUMNS.join(",")
            )));
        };
        if cols.contains(&i) {
            return Err(HesError::InvalidArgument(format!(
                "csv header: column {h:?} twice"
            )));
        }
        cols.push(i);
    }
    for required in ["serial", "protocol"] {
        if !header
            .iter()
            .any(|h| h.trim().eq_ignore_ascii_case(required))
        {
            return Err(HesError::InvalidArgument(format!(
                "csv header: column {required:?} is required"
            )));
        }
    }
    let mut good = Vec::new();
    let mut bad = Vec::new();
    let mut seen = HashSet::new();
    let now = now_ms();
    for (line, text) in lines {
        match parse_row(text, &cols, now) {
            Ok(m) => {
                let ids = [
                    Some(format!("serial {}", m.serial)),
                    m.dlms_system_title
                        .as_ref()
                        .map(|s| format!("system title {s}")),
                    m.mbus_address
                        .as_ref()
                        .map(|s| format!("m-bus address {s}")),
                    m.osgp_device_id
                        .as_ref()
                        .map(|s| format!("osgp device id {s}")),
                ];
                if let Some(dup) = ids.iter().flatten().find(|id| seen.contains(*id)) {
                    bad.push(RowError {
                        line,
                        message: format!("{dup} repeated in the file"),
                    });
                    continue;
                }
                seen.extend(ids.into_iter().flatten());
                good.push((line, m));
            }
            Err(message) => bad.push(RowError { line, message }),
        }
    }
    Ok((good, bad))
}

fn parse_row(text: &str, cols: &[usize], now: i64) -> std::result::Result<Meter, String> {
    let fields = split_line(text)?;
    if fields.len() != cols.len() {
        return Err(format!(
            "{} fields, the header has {}",
            fields.len(),
            cols.len()
        ));
    }
    let mut m = Meter::new("", "");
    m.created_at_ms = now;
    m.status_changed_at_ms = now;
    for (&col, value) in cols.iter().zip(fields) {
        let v = value.trim().to_owned();
        let opt = |v: String| (!v.is_empty()).then_some(v);
        let int = |v: &str, name: &str| -> std::result::Result<Option<i64>, String> {
            if v.is_empty() {
                Ok(None)
            } else {
                v.parse()
                    .map(Some)
                    .map_err(|_| format!("{name} {v:?} is not an integer"))
            }
        };
        match COLUMNS.get(col).copied().unwrap_or_default() {
            "serial" => m.serial = v,
            "manufacturer" => m.manufacturer = v,
            "model" => m.model = v,
            "protocol" => m.protocol = v,
            "dlms_system_title" => m.dlms_system_title = opt(v),
            "mbus_address" => m.mbus_address = opt(v),
            "osgp_device_id" => m.osgp_device_id = opt(v),
            "adapter" => m.adapter = v,
            "concentrator" => m.concentrator = v,
            "service_point" => m.service_point = v,
            "customer" => m.customer = v,
            "location" => m.location = v,
            "latitude_e6" => m.latitude_e6 = int(&v, "latitude_e6")?,
            "longitude_e6" => m.longitude_e6 = int(&v, "longitude_e6")?,
            "feeder" => m.feeder = v,
            "transformer" => m.transformer = v,
            "phase" => m.phase = v,
            "status" if !v.is_empty() => {
                m.status = MeterStatus::parse(&v).ok_or_else(|| format!("unknown status {v:?}"))?;
            }
            _ => {}
        }
    }
    m.normalise().map_err(|e| match e {
        HesError::InvalidArgument(s) => s,
        other => other.to_string(),
    })?;
    Ok(m)
}

/// Imports CSV text into a store: parses, then registers the good rows [`BATCH_ROWS`] per
/// transaction; rows whose serial or identity is registered already join the errors.
pub async fn import<S: RegistryStore>(store: &S, text: &str) -> Result<ImportReport> {
    let (good, mut errors) = parse(text)?;
    let mut imported = 0u32;
    for batch in good.chunks(BATCH_ROWS) {
        let refused = store.insert_meters(batch).await?;
        let n = u32::try_from(batch.len() - refused.len()).unwrap_or(u32::MAX);
        imported = imported.saturating_add(n);
        errors.extend(
            refused
                .into_iter()
                .map(|(line, message)| RowError { line, message }),
        );
    }
    errors.sort_by_key(|e| e.line);
    Ok(ImportReport { imported, errors })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_fields() {
        assert_eq!(
            split_line(r#"a,"b,c","d ""e""",,"#).unwrap(),
            ["a", "b,c", "d \"e\"", "", ""]
        );
        assert!(split_line(r#"a,"b"#).is_err());
        assert!(split_line(r#"a,b"c"#).is_err());
    }

    #[test]
    fn bad_rows_by_line_good_rows_kept() {
        let text = "serial,protocol,transformer,status,latitude_e6\n\
                    M1,dlms,T1,commissioned,52000000\n\
                    # a comment\n\
                    M2,dlms,T1,sideways,\n\
                    ,dlms,T1,,\n\
                    M3,mbus,T2,,x\n\
                    M1,dlms,T1,,\n\
                    M4,dlms\n\
                    M5,osgp,T2,retired,\n";
        let (good, bad) = parse(text).unwrap();
        let serials: Vec<_> = good.iter().map(|(l, m)| (*l, m.serial.as_str())).collect();
        assert_eq!(serials, [(2, "M1"), (9, "M5")]);
        assert_eq!(good[0].1.status, MeterStatus::Commissioned);
        assert_eq!(good[0].1.latitude_e6, Some(52_000_000));
        let lines: Vec<u32> = bad.iter().map(|e| e.line).collect();
        assert_eq!(lines, [4, 5, 6, 7, 8]);
        assert!(bad[0].message.contains("sideways"));
        assert!(bad[3].message.contains("repeated"));
    }

    #[test]
    fn header_is_checked() {
        assert!(parse("").is_err());
        assert!(parse("serial,colour\nM1,red\n").is_err());
        assert!(parse("serial,model\nM1,x\n").is_err());
        assert!(parse("serial,protocol,serial\n").is_err());
    }
}
