//! Between `ami.mdms.v1` messages and the domain: timestamps, OBIS codes, decimals, views.
//! Every conversion of client input checks it and names the field it refuses.

use ami_domain::{Obis, Quantity, Unit};
use ami_mdms_store::{GroupKind, Source, StoredReading};
use prost_types::Timestamp;

use crate::error::{MdmsError, Result};
use crate::export::source_name;
use crate::proto;
use crate::service::ReadView;

/// UTC ms of a required timestamp field.
pub fn ts_ms(field: &'static str, t: Option<&Timestamp>) -> Result<i64> {
    let t = t.ok_or_else(|| MdmsError::InvalidRequest(format!("{field} is required")))?;
    if !(0..1_000_000_000).contains(&t.nanos) {
        return Err(MdmsError::InvalidRequest(format!(
            "{field} has nanos out of range"
        )));
    }
    t.seconds
        .checked_mul(1000)
        .and_then(|ms| ms.checked_add(i64::from(t.nanos / 1_000_000)))
        .ok_or_else(|| MdmsError::InvalidRequest(format!("{field} is out of range")))
}

/// The timestamp of UTC ms.
pub fn timestamp(ms: i64) -> Timestamp {
    Timestamp {
        seconds: ms.div_euclid(1000),
        nanos: i32::try_from(ms.rem_euclid(1000) * 1_000_000).unwrap_or(0),
    }
}

/// An OBIS code field.
pub fn obis(field: &'static str, text: &str) -> Result<Obis> {
    text.trim()
        .parse()
        .map_err(|e| MdmsError::InvalidRequest(format!("{field} {text:?}: {e}")))
}

/// A decimal field.
pub fn decimal(field: &'static str, d: Option<&proto::Decimal>) -> Result<Quantity> {
    let d = d.ok_or_else(|| MdmsError::InvalidRequest(format!("{field} is required")))?;
    let scale = i8::try_from(d.scale)
        .ok()
        .filter(|s| (-18..=18).contains(s))
        .ok_or_else(|| {
            MdmsError::InvalidRequest(format!("{field} has scale {} outside -18..=18", d.scale))
        })?;
    Ok(Quantity::new(d.mantissa, scale))
}

/// The message of a decimal.
pub fn to_decimal(q: Quantity) -> proto::Decimal {
    proto::Decimal {
        mantissa: q.mantissa,
        scale: i32::from(q.scale),
    }
}

/// A unit field given by its symbol (`Wh`, `W`, `m3`); a prefixed symbol (`kWh`) is refused
/// since the prefix belongs in the value's scale.
pub fn unit(text: &str) -> Result<Unit> {
    Unit::ALL
        .iter()
        .copied()
        .find(|u| u.symbol() == text.trim())
        .ok_or_else(|| {
            MdmsError::InvalidRequest(format!(
                "unit {text:?} is not a base unit symbol (Wh, W, m3, ...)"
            ))
        })
}

/// The read view of a request (unspecified means latest).
pub fn view(v: i32) -> Result<ReadView> {
    match proto::View::try_from(v) {
        Ok(proto::View::Raw) => Ok(ReadView::Raw),
        Ok(proto::View::Latest | proto::View::Unspecified) => Ok(ReadView::Latest),
        Ok(proto::View::Validated) => Ok(ReadView::Validated),
        Err(_) => Err(MdmsError::InvalidRequest(format!("view {v} is unknown"))),
    }
}

/// The group kind of a request.
pub fn group_kind(v: i32) -> Result<GroupKind> {
    match proto::GroupKind::try_from(v) {
        Ok(proto::GroupKind::Feeder) => Ok(GroupKind::Feeder),
        Ok(proto::GroupKind::Transformer) => Ok(GroupKind::Transformer),
        Ok(proto::GroupKind::CustomerClass) => Ok(GroupKind::CustomerClass),
        _ => Err(MdmsError::InvalidRequest(format!(
            "group kind {v} is not feeder, transformer or customer class"
        ))),
    }
}

/// The message of a stored version.
pub fn reading(r: &StoredReading) -> proto::Reading {
    let p = &r.provenance;
    proto::Reading {
        ts: Some(timestamp(r.ts_ms)),
        value: Some(to_decimal(r.value)),
        unit: r.unit.symbol().to_owned(),
        quality: r.quality.names().into_iter().map(str::to_owned).collect(),
        version: r.version,
        source: match p.source {
            Source::Received => proto::Source::Received,
            Source::Estimated => proto::Source::Estimated,
            Source::Edited => proto::Source::Edited,
        } as i32,
        actor: p.actor.clone(),
        recorded_at: Some(timestamp(p.at_ms)),
        reason: p.reason.clone().unwrap_or_default(),
        method: p.method.clone().unwrap_or_else(|| {
            if p.source == Source::Received {
                String::new()
            } else {
                source_name(p.source).to_owned()
            }
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_round_trip_and_bad_fields_are_named() {
        for ms in [0, 1, 999, 1_790_000_000_123, -1] {
            assert_eq!(ts_ms("t", Some(&timestamp(ms))).unwrap(), ms);
        }
        let e = ts_ms("from", None).unwrap_err().to_string();
        assert!(e.contains("from"), "{e}");
        let bad = Timestamp {
            seconds: i64::MAX,
            nanos: 0,
        };
        assert!(ts_ms("t", Some(&bad)).is_err());
        assert!(obis("register", "1-0:1.8.0*255").is_ok());
        assert!(
            obis("register", "1.8.0.x")
                .unwrap_err()
                .to_string()
                .contains("register")
        );
        assert!(
            decimal(
                "value",
                Some(&proto::Decimal {
                    mantissa: 1,
                    scale: 40
                })
            )
            .is_err()
        );
        assert_eq!(unit("Wh").unwrap(), Unit::WattHour);
        assert!(unit("kWh").is_err());
        assert!(view(99).is_err());
        assert!(group_kind(0).is_err());
    }
}
