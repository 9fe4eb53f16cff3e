//! Readings out as text: CSV (one row per version, header first) and Green Button, the ESPI
//! (NAESB REQ.21) Atom feed of UsagePoint, ReadingType, MeterReading and IntervalBlock entries
//! that utilities' customer portals and third parties read.

use std::fmt::Write as _;

use ami_domain::time::rfc3339;
use ami_domain::{Obis, Unit};
use ami_mdms_store::{Source, StoredReading};

use crate::error::{MdmsError, Result};

/// The CSV header line.
pub const CSV_HEADER: &str = "meter,register,interval_end,value,unit,quality,version,source,actor,recorded_at,reason,method\n";

fn csv_field(out: &mut String, text: &str) {
    if text.contains([',', '"', '\n', '\r']) {
        out.push('"');
        out.push_str(&text.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(text);
    }
}

/// The name of a version's source.
pub const fn source_name(s: Source) -> &'static str {
    match s {
        Source::Received => "received",
        Source::Estimated => "estimated",
        Source::Edited => "edited",
    }
}

/// CSV rows (no header) for one series.
pub fn csv_rows(meter: &str, register: Obis, rows: &[StoredReading]) -> String {
    let mut out = String::with_capacity(rows.len() * 96);
    let register = register.to_string();
    for r in rows {
        let p = &r.provenance;
        let fields = [
            meter.to_owned(),
            register.clone(),
            rfc3339(r.ts_ms),
            r.value.to_string(),
            r.unit.symbol().to_owned(),
            r.quality.names().join("|"),
            r.version.to_string(),
            source_name(p.source).to_owned(),
            p.actor.clone(),
            rfc3339(p.at_ms),
            p.reason.clone().unwrap_or_default(),
            p.method.clone().unwrap_or_default(),
        ];
        for (i, f) in fields.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            csv_field(&mut out, f);
        }
        out.push('\n');
    }
    out
}

/// The ESPI unit of measure code (IEC 61968-9 `UnitSymbolKind`) of a unit, 0 when none fits.
pub const fn espi_uom(unit: Unit) -> u16 {
    match unit {
        Unit::WattHour => 72,
        Unit::Watt => 38,
        Unit::VarHour => 73,
        Unit::Var => 63,
        Unit::VoltAmpereHour => 71,
        Unit::VoltAmpere => 61,
        Unit::CubicMetre => 42,
        Unit::Volt => 29,
        Unit::Ampere => 5,
        _ => 0,
    }
}

fn xml_text(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The feed's opening, up to its first entry.
pub fn espi_open(title: &str, updated_ms: i64) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<feed xmlns=\"http://www.w3.org/2005/Atom\" xmlns:espi=\"http://naesb.org/espi\">\n  <id>urn:ami:export</id>\n  <title>{}</title>\n  <updated>{}</updated>\n",
        xml_text(title),
        rfc3339(updated_ms)
    )
}

/// The feed's close.
pub const ESPI_CLOSE: &str = "</feed>\n";

/// The entries of one meter's series: a UsagePoint, its ReadingType, a MeterReading and one
/// IntervalBlock holding every interval. Values are written at one power of ten (the
/// series' finest), as ESPI keeps the multiplier in the ReadingType; `interval_s` is each
/// interval's length (its start is its end minus that).
pub fn espi_entries(
    meter: &str,
    register: Obis,
    interval_s: u32,
    rows: &[StoredReading],
) -> Result<String> {
    let unit = rows.first().map(|r| r.unit).unwrap_or(Unit::WattHour);
    if let Some(r) = rows.iter().find(|r| r.unit != unit) {
        return Err(MdmsError::InvalidRequest(format!(
            "meter {meter} register {register}: units {} and {} in one series",
            unit.symbol(),
            r.unit.symbol()
        )));
    }
    let scale = rows.iter().map(|r| r.value.scale).min().unwrap_or(0);
    let id = xml_text(&format!("{meter}/{register}"));
    let mut out = String::new();
    let _ = write!(
        out,
        "  <entry>\n    <id>urn:ami:usagepoint:{id}</id>\n    <title>{m}</title>\n    <content><espi:UsagePoint><espi:ServiceCategory><espi:kind>0</espi:kind></espi:ServiceCategory></espi:UsagePoint></content>\n  </entry>\n",
        m = xml_text(meter)
    );
    let _ = write!(
        out,
        "  <entry>\n    <id>urn:ami:readingtype:{id}</id>\n    <title>{r}</title>\n    <content><espi:ReadingType><espi:accumulationBehaviour>4</espi:accumulationBehaviour><espi:commodity>1</espi:commodity><espi:flowDirection>1</espi:flowDirection><espi:intervalLength>{interval_s}</espi:intervalLength><espi:powerOfTenMultiplier>{scale}</espi:powerOfTenMultiplier><espi:uom>{uom}</espi:uom></espi:ReadingType></content>\n  </entry>\n",
        r = xml_text(&register.to_string()),
        uom = espi_uom(unit)
    );
    let _ = write!(
        out,
        "  <entry>\n    <id>urn:ami:meterreading:{id}</id>\n    <content><espi:MeterReading/></content>\n  </entry>\n"
    );
    let start = rows
        .first()
        .map(|r| r.ts_ms / 1000 - i64::from(interval_s))
        .unwrap_or(0);
    let end = rows.last().map(|r| r.ts_ms / 1000).unwrap_or(0);
    let _ = write!(
        out,
        "  <entry>\n    <id>urn:ami:intervalblock:{id}</id>\n    <content><espi:IntervalBlock>\n      <espi:interval><espi:duration>{}</espi:duration><espi:start>{start}</espi:start></espi:interval>\n",
        end - start
    );
    for r in rows {
        let value = r.value.rescaled(scale).ok_or_else(|| {
            MdmsError::InvalidRequest(format!(
                "meter {meter}: value {} does not fit at 10^{scale}",
                r.value
            ))
        })?;
        let quality = if r.provenance.source == Source::Received && r.quality.0 == 0 {
            String::new()
        } else {
            // ESPI quality 8 = estimated, 7 = manually edited, 17 = validated-suspect.
            let code = match r.provenance.source {
                Source::Estimated => 8,
                Source::Edited => 7,
                Source::Received => 17,
            };
            format!(
                "<espi:ReadingQuality><espi:quality>{code}</espi:quality></espi:ReadingQuality>"
            )
        };
        let _ = writeln!(
            out,
            "      <espi:IntervalReading><espi:timePeriod><espi:duration>{interval_s}</espi:duration><espi:start>{}</espi:start></espi:timePeriod><espi:value>{}</espi:value>{quality}</espi:IntervalReading>",
            r.ts_ms / 1000 - i64::from(interval_s),
            value.mantissa
        );
    }
    out.push_str("    </espi:IntervalBlock></content>\n  </entry>\n");
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ami_domain::{Quality, Quantity};
    use ami_mdms_store::Provenance;

    fn row(ts_ms: i64, mantissa: i64, scale: i8, source: Source) -> StoredReading {
        StoredReading {
            ts_ms,
            value: Quantity::new(mantissa, scale),
            unit: Unit::WattHour,
            quality: Quality::VALID,
            version: 1,
            provenance: Provenance {
                source,
                actor: "ingest".into(),
                at_ms: ts_ms,
                reason: Some("a, \"quoted\" reason".into()),
                method: None,
            },
        }
    }

    #[test]
    fn csv_quotes_what_needs_quoting() {
        let text = csv_rows(
            "m-1",
            Obis::new(1, 0, 1, 8, 0, 255),
            &[row(900_000, 1234, -1, Source::Received)],
        );
        assert_eq!(
            text,
            "m-1,1-0:1.8.0*255,1970-01-01T00:15:00Z,123.4,Wh,,1,received,ingest,1970-01-01T00:15:00Z,\"a, \"\"quoted\"\" reason\",\n"
        );
        assert_eq!(
            CSV_HEADER.split(',').count(),
            text.trim_end().split(',').count() - 1
        );
    }

    #[test]
    fn espi_blocks_share_one_multiplier_and_start_at_interval_starts() {
        let rows = [
            row(900_000, 5, 0, Source::Received),
            row(1_800_000, 25, -1, Source::Estimated),
        ];
        let xml = espi_entries("m-<1>", Obis::new(1, 0, 1, 8, 0, 255), 900, &rows).unwrap();
        assert!(xml.contains(
            "<espi:powerOfTenMultiplier>-1</espi:powerOfTenMultiplier><espi:uom>72</espi:uom>"
        ));
        assert!(xml.contains("<espi:start>0</espi:start></espi:timePeriod><espi:value>50</espi:value></espi:IntervalReading>"));
        assert!(xml.contains("<espi:start>900</espi:start></espi:timePeriod><espi:value>25</espi:value><espi:ReadingQuality><espi:quality>8</espi:quality>"));
        assert!(xml.contains("<title>m-&lt;1&gt;</title>"));
        assert!(xml.contains(
            "<espi:duration>1800</espi:duration><espi:start>0</espi:start></espi:interval>"
        ));
        let mixed = [
            row(900_000, 5, 0, Source::Received),
            StoredReading {
                unit: Unit::Watt,
                ..row(1_800_000, 1, 0, Source::Received)
            },
        ];
        assert!(espi_entries("m", Obis::new(1, 0, 1, 8, 0, 255), 900, &mixed).is_err());
    }
}
