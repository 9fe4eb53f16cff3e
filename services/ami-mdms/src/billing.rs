//! Bills: determinants and charges for one meter and period, computed by a `tariff` Wasm
//! component from validated interval data only.
//!
//! The registers billed hold interval energy (each value the energy of its interval, as a
//! load profile records it): by default `1-0:1.8.0*255` (import) and, where the meter has
//! any, `1-0:2.8.0*255` (export). An interval with an open VEE exception or flagged suspect
//! is unvalidated: the bill is refused, naming the first such intervals. Intervals missing
//! from the period are the tariff's to report (`missing-data`), also as a refusal.

use std::sync::Arc;

use ami_domain::time::{days_from_civil, rfc3339};
use ami_domain::{Obis, Quality, Quantity};
use ami_mdms_store::{Catalog, MeterDataStore, Span, View};
use ami_plugin_host::PluginKind;
use ami_plugin_host::bindings::tariff::exports::ami::plugin::rate as tw;
use ami_plugin_host::bindings::types as t;
use ami_plugin_host::convert::obis_to_wit;

use crate::auth::{Principal, Role};
use crate::error::{MdmsError, Result};
use crate::service::Mdms;

/// The default import register (interval energy).
pub const IMPORT: Obis = Obis::new(1, 0, 1, 8, 0, 255);
/// The default export register (interval energy).
pub const EXPORT: Obis = Obis::new(1, 0, 2, 8, 0, 255);

/// What a bill is asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BillRequest {
    /// The meter.
    pub meter: String,
    /// The tariff id (served by an installed tariff component).
    pub tariff: String,
    /// The tariff's parameters.
    pub params: Vec<(String, Quantity)>,
    /// Period start (inclusive), UTC ms.
    pub start_ms: i64,
    /// Period end (exclusive), UTC ms.
    pub end_ms: i64,
    /// UTC offset changes in force: (from, offset seconds).
    pub utc_offsets: Vec<(i64, i32)>,
    /// Special days: (local date `YYYY-MM-DD`, day type).
    pub special_days: Vec<(String, String)>,
    /// Registers to bill; empty for the defaults.
    pub registers: Vec<Obis>,
}

/// One determinant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Determinant {
    /// Its name (`kwh.import.peak`, `kw.max-demand`, ...).
    pub name: String,
    /// The register.
    pub register: Obis,
    /// The value.
    pub value: Quantity,
    /// When (peaks), else the period's end, UTC ms.
    pub at_ms: i64,
}

/// One line of a bill.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LineItem {
    /// What it is.
    pub description: String,
    /// The determinant it prices.
    pub determinant: String,
    /// The rate.
    pub rate: Quantity,
    /// The amount.
    pub amount: Quantity,
}

/// A computed bill.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bill {
    /// Determinants.
    pub determinants: Vec<Determinant>,
    /// Lines.
    pub lines: Vec<LineItem>,
    /// Total.
    pub total: Quantity,
    /// The component, `name@version`.
    pub computed_by: String,
}

fn parse_date(text: &str) -> Result<i32> {
    let bad = || MdmsError::InvalidRequest(format!("special day {text:?} is not YYYY-MM-DD"));
    let mut parts = text.splitn(3, '-');
    let (Some(y), Some(m), Some(d)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(bad());
    };
    let y: i64 = y.parse().map_err(|_| bad())?;
    let m: u32 = m.parse().map_err(|_| bad())?;
    let d: u32 = d.parse().map_err(|_| bad())?;
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) || !(1970..=2199).contains(&y) {
        return Err(bad());
    }
    i32::try_from(days_from_civil(y, m, d)).map_err(|_| bad())
}

fn q(x: Quantity) -> t::Quantity {
    t::Quantity {
        mantissa: x.mantissa,
        scale: x.scale,
    }
}

fn dq(x: t::Quantity) -> Quantity {
    Quantity::new(x.mantissa, x.scale)
}

impl Mdms {
    /// Computes a bill (see the module docs).
    pub async fn calculate_bill(&self, who: &Principal, req: &BillRequest) -> Result<Bill> {
        who.require(Role::Operator)?;
        if req.start_ms >= req.end_ms {
            return Err(MdmsError::InvalidRequest("the period is empty".into()));
        }
        let plugin = self
            .host()
            .plugin_for_rule(PluginKind::Tariff, &req.tariff)
            .ok_or_else(|| {
                MdmsError::NotFound(format!(
                    "no installed tariff component serves {}",
                    req.tariff
                ))
            })?;
        let name = format!("{}@{}", plugin.manifest().name, plugin.manifest().version);
        // Interval ends in (start, end]: the interval ending at `end` is the period's last.
        let span = Span::new(req.start_ms, req.end_ms);
        let store = self.store();
        let mut registers = req.registers.clone();
        let explicit = !registers.is_empty();
        if !explicit {
            registers = vec![IMPORT, EXPORT];
        }
        let mut usage = Vec::new();
        let mut unvalidated = Vec::new();
        for register in registers {
            let rows = store
                .readings(&req.meter, register, span, View::Latest)
                .await?;
            if rows.is_empty() && !explicit && register == EXPORT {
                continue;
            }
            let open = store
                .open_exception_times(&req.meter, register, span.after_ms, span.until_ms)
                .await?;
            unvalidated.extend(open.into_iter().map(|ts| (register, ts)));
            for r in &rows {
                if r.quality.contains(Quality::SUSPECT) {
                    unvalidated.push((register, r.ts_ms));
                }
                usage.push(tw::Usage {
                    register: obis_to_wit(register),
                    ts: r.ts_ms,
                    value: q(r.value),
                });
            }
        }
        if !unvalidated.is_empty() {
            unvalidated.sort_unstable();
            unvalidated.dedup();
            let first: Vec<String> = unvalidated
                .iter()
                .take(5)
                .map(|(reg, ts)| format!("{reg} at {}", rfc3339(*ts)))
                .collect();
            return Err(MdmsError::FailedPrecondition(format!(
                "{} unvalidated interval(s) in the period (open VEE exceptions or suspect values), first: {}",
                unvalidated.len(),
                first.join(", ")
            )));
        }
        let calendar = tw::Calendar {
            utc_offsets: req.utc_offsets.clone(),
            special_days: req
                .special_days
                .iter()
                .map(|(date, kind)| {
                    Ok(tw::SpecialDay {
                        day: parse_date(date)?,
                        day_type: kind.clone(),
                    })
                })
                .collect::<Result<Vec<_>>>()?,
        };
        let params: Vec<tw::Parameter> = req
            .params
            .iter()
            .map(|(n, v)| tw::Parameter {
                name: n.clone(),
                value: q(*v),
            })
            .collect();
        let tariff = req.tariff.clone();
        let (start, end) = (req.start_ms, req.end_ms);
        let plugin = Arc::clone(&plugin);
        let bill = tokio::task::spawn_blocking(move || {
            plugin.compute(&tariff, &params, &calendar, start, end, &usage)
        })
        .await
        .map_err(|e| MdmsError::Server(format!("tariff task: {e}")))??
        .map_err(|e| match e {
            tw::TariffError::MissingData(s) => {
                MdmsError::FailedPrecondition(format!("missing data for the period: {s}"))
            }
            tw::TariffError::BadParameter(s) => MdmsError::PluginRefused {
                plugin: name.clone(),
                reason: format!("bad parameter: {s}"),
            },
        })?;
        Ok(Bill {
            determinants: bill
                .determinants
                .into_iter()
                .map(|d| Determinant {
                    name: d.name,
                    register: ami_plugin_host::convert::obis(d.register),
                    value: dq(d.value),
                    at_ms: d.at,
                })
                .collect(),
            lines: bill
                .lines
                .into_iter()
                .map(|l| LineItem {
                    description: l.description,
                    determinant: l.determinant,
                    rate: dq(l.rate),
                    amount: dq(l.amount),
                })
                .collect(),
            total: dq(bill.total),
            computed_by: name,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn special_days_parse_strictly() {
        assert_eq!(parse_date("1970-01-02").unwrap(), 1);
        assert_eq!(parse_date("2026-12-25").unwrap(), 20_812);
        for bad in ["2026-13-01", "2026-12", "x", "2026-12-25-1", "1969-12-31"] {
            assert!(parse_date(bad).is_err(), "{bad}");
        }
    }
}
