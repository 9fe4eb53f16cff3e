//! Load summed over a group of meters (feeder, transformer, customer class) per bucket of
//! time: each interval counts in the bucket that holds its end.

use std::collections::BTreeMap;

use ami_domain::{Obis, Quantity, Unit};
use ami_mdms_store::{GroupKind, Span, StoredReading};

use crate::error::{MdmsError, Result};
use crate::service::{Mdms, ReadView};

/// One bucket of an aggregate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LoadPoint {
    /// The bucket's end, UTC ms.
    pub ts_ms: i64,
    /// The sum.
    pub value: Quantity,
    /// Meters with data in the bucket.
    pub meters: u32,
}

/// An aggregate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Aggregate {
    /// Buckets in time order (only those with data).
    pub points: Vec<LoadPoint>,
    /// The unit of the sums.
    pub unit: Option<Unit>,
    /// Meters in the group.
    pub meters_in_group: u32,
}

/// Adds one series into the buckets: (end) → (sum as mantissa at `scale`, meters).
fn add_series(
    buckets: &mut BTreeMap<i64, (i128, i8, u32)>,
    rows: &[StoredReading],
    bucket_ms: i64,
) -> Result<()> {
    let mut last_bucket = None;
    for r in rows {
        let end = r.ts_ms.div_euclid(bucket_ms) * bucket_ms
            + if r.ts_ms.rem_euclid(bucket_ms) == 0 {
                0
            } else {
                bucket_ms
            };
        let entry = buckets.entry(end).or_insert((0, r.value.scale, 0));
        // Keep the finest scale of the bucket; rescale the running sum when a finer one comes.
        if r.value.scale < entry.1 {
            let shift = u32::try_from(i32::from(entry.1) - i32::from(r.value.scale)).unwrap_or(0);
            entry.0 = entry
                .0
                .checked_mul(10i128.pow(shift.min(30)))
                .ok_or_else(|| MdmsError::InvalidRequest("aggregate overflows".into()))?;
            entry.1 = r.value.scale;
        }
        let shift = u32::try_from(i32::from(r.value.scale) - i32::from(entry.1)).unwrap_or(0);
        let v = i128::from(r.value.mantissa)
            .checked_mul(10i128.pow(shift.min(30)))
            .ok_or_else(|| MdmsError::InvalidRequest("aggregate overflows".into()))?;
        entry.0 = entry
            .0
            .checked_add(v)
            .ok_or_else(|| MdmsError::InvalidRequest("aggregate overflows".into()))?;
        if last_bucket != Some(end) {
            entry.2 += 1;
            last_bucket = Some(end);
        }
    }
    Ok(())
}

impl Mdms {
    /// The load of `register` summed over a group, in buckets of `bucket_s` seconds.
    pub async fn aggregate(
        &self,
        kind: GroupKind,
        group: &str,
        register: Obis,
        span: Span,
        bucket_s: u32,
    ) -> Result<Aggregate> {
        if bucket_s == 0 {
            return Err(MdmsError::InvalidRequest(
                "the bucket length must be above zero".into(),
            ));
        }
        let meters = self.group(kind, group).await?;
        let mut buckets = BTreeMap::new();
        let mut unit = None;
        for m in &meters {
            let rows = self.readings(m, register, span, ReadView::Latest).await?;
            if let Some(first) = rows.first() {
                match unit {
                    None => unit = Some(first.unit),
                    Some(u) if u != first.unit => {
                        return Err(MdmsError::InvalidRequest(format!(
                            "meter {m} reports {register} in {}, others in {}",
                            first.unit.symbol(),
                            u.symbol()
                        )));
                    }
                    Some(_) => {}
                }
            }
            add_series(&mut buckets, &rows, i64::from(bucket_s) * 1000)?;
        }
        let points = buckets
            .into_iter()
            .map(|(ts_ms, (sum, scale, meters))| {
                let mantissa = i64::try_from(sum).map_err(|_| {
                    MdmsError::InvalidRequest(format!("the sum at {ts_ms} overflows"))
                })?;
                Ok(LoadPoint {
                    ts_ms,
                    value: Quantity::new(mantissa, scale),
                    meters,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Aggregate {
            points,
            unit,
            meters_in_group: u32::try_from(meters.len()).unwrap_or(u32::MAX),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ami_domain::Quality;
    use ami_mdms_store::{Provenance, Source};

    fn row(ts_ms: i64, mantissa: i64, scale: i8) -> StoredReading {
        StoredReading {
            ts_ms,
            value: Quantity::new(mantissa, scale),
            unit: Unit::WattHour,
            quality: Quality::VALID,
            version: 1,
            provenance: Provenance {
                source: Source::Received,
                actor: "ingest".into(),
                at_ms: 0,
                reason: None,
                method: None,
            },
        }
    }

    #[test]
    fn quarter_hours_sum_into_hours_by_their_end() {
        let q = 900_000;
        let mut b = BTreeMap::new();
        // Meter 1: four quarter-hours ending 00:15..01:00 in the first hour, one in the next.
        add_series(
            &mut b,
            &[
                row(q, 1, 0),
                row(2 * q, 2, 0),
                row(3 * q, 3, 0),
                row(4 * q, 4, 0),
                row(5 * q, 5, 0),
            ],
            3_600_000,
        )
        .unwrap();
        // Meter 2, at a finer scale.
        add_series(&mut b, &[row(4 * q, 15, -1)], 3_600_000).unwrap();
        let v: Vec<_> = b.into_iter().collect();
        assert_eq!(v, [(3_600_000, (115, -1, 2)), (7_200_000, (5, 0, 1))]);
    }
}
