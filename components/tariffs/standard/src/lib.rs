//! The standard tariffs component: `ami-tariff` on the `tariff` world.
//!
//! Serves the tariff ids `tou`, `tiered`, `demand`, `cpp` and `net-metering`; their
//! parameters, the calendar rules and the rounding are documented in `ami-tariff`. This crate
//! only converts between the WIT records and the library's types. The library's errors map onto
//! the two WIT cases: a bad parameter or calendar, and arithmetic overflow, are
//! `bad-parameter`; missing intervals and unbillable usage (off the grid, negative,
//! duplicated) are `missing-data`, each with the library's message.

use ami_plugin_sdk::convert::{obis, obis_from, quantity, quantity_from};
use ami_plugin_sdk::tariff::exports::ami::plugin::rate::{
    Bill, Calendar, Determinant, Guest, LineItem, Parameter, TariffError, Usage,
};

struct Standard;

fn error(e: ami_tariff::TariffError) -> TariffError {
    use ami_tariff::TariffError as E;
    match e {
        E::BadParameter(m) => TariffError::BadParameter(m),
        E::Overflow(m) => TariffError::BadParameter(format!("arithmetic overflow in {m}")),
        E::MissingData(m) => TariffError::MissingData(m),
        E::BadUsage(m) => TariffError::MissingData(format!("unbillable usage: {m}")),
    }
}

impl Guest for Standard {
    fn compute(
        tariff_id: String,
        params: Vec<Parameter>,
        calendar: Calendar,
        period_start: i64,
        period_end: i64,
        usage: Vec<Usage>,
    ) -> Result<Bill, TariffError> {
        let params: Vec<ami_tariff::Parameter> = params
            .into_iter()
            .map(|p| ami_tariff::Parameter::new(p.name, quantity_from(p.value)))
            .collect();
        let calendar = ami_tariff::Calendar {
            utc_offsets: calendar.utc_offsets,
            special_days: calendar
                .special_days
                .into_iter()
                .map(|s| ami_tariff::SpecialDay {
                    day: s.day,
                    day_type: s.day_type,
                })
                .collect(),
        };
        let usage: Vec<ami_tariff::Usage> = usage
            .into_iter()
            .map(|u| ami_tariff::Usage {
                register: obis_from(u.register),
                ts: u.ts,
                value: quantity_from(u.value),
            })
            .collect();
        let bill = ami_tariff::compute(
            &tariff_id,
            &params,
            &calendar,
            period_start,
            period_end,
            &usage,
        )
        .map_err(error)?;
        Ok(Bill {
            determinants: bill
                .determinants
                .into_iter()
                .map(|d| Determinant {
                    name: d.name,
                    register: obis(d.register),
                    value: quantity(d.value),
                    at: d.at,
                })
                .collect(),
            lines: bill
                .lines
                .into_iter()
                .map(|l| LineItem {
                    description: l.description,
                    determinant: l.determinant,
                    rate: quantity(l.rate),
                    amount: quantity(l.amount),
                })
                .collect(),
            total: quantity(bill.total),
        })
    }
}

ami_plugin_sdk::export_tariff!(Standard);
