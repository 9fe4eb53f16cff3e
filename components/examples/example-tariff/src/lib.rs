//! Example tariff `flat`: one energy price for the whole period.
//!
//! Parameter `price` (currency per kWh). Determinant `energy` (kWh imported, register
//! `1-0:1.8.0`, summed over the period); one line item; total = energy x price, exact decimals.

use ami_plugin_sdk::convert::{obis, quantity, quantity_from};
use ami_plugin_sdk::domain::{Obis, Quantity};
use ami_plugin_sdk::tariff::exports::ami::plugin::rate::{
    Bill, Calendar, Determinant, Guest, LineItem, Parameter, TariffError, Usage,
};

struct Flat;

const IMPORT: Obis = Obis::new(1, 0, 1, 8, 0, 255);

impl Guest for Flat {
    fn compute(
        tariff_id: String,
        params: Vec<Parameter>,
        _calendar: Calendar,
        start: i64,
        end: i64,
        usage: Vec<Usage>,
    ) -> Result<Bill, TariffError> {
        if tariff_id != "flat" {
            return Err(TariffError::BadParameter(format!(
                "unknown tariff {tariff_id:?}"
            )));
        }
        let price = params
            .iter()
            .find(|p| p.name == "price")
            .map(|p| quantity_from(p.value))
            .ok_or_else(|| TariffError::BadParameter("parameter price is required".into()))?;
        // Sum Wh at a common scale of 0 (Wh), then express in kWh (scale -3 on Wh = kWh).
        let mut wh: i64 = 0;
        let mut seen = false;
        for u in usage
            .iter()
            .filter(|u| u.ts > start && u.ts <= end && u.register == obis(IMPORT))
        {
            let v = quantity_from(u.value)
                .rescaled(0)
                .ok_or_else(|| TariffError::BadParameter("usage below 1 Wh resolution".into()))?;
            wh = wh.saturating_add(v.mantissa);
            seen = true;
        }
        if !seen {
            return Err(TariffError::MissingData(
                "no import energy in the period".into(),
            ));
        }
        let kwh = Quantity::new(wh, -3);
        let amount = Quantity::new(
            kwh.mantissa.saturating_mul(price.mantissa),
            kwh.scale.saturating_add(price.scale),
        );
        Ok(Bill {
            determinants: vec![Determinant {
                name: "energy".into(),
                register: obis(IMPORT),
                value: quantity(kwh),
                at: end,
            }],
            lines: vec![LineItem {
                description: "energy at flat price".into(),
                determinant: "energy".into(),
                rate: quantity(price),
                amount: quantity(amount),
            }],
            total: quantity(amount),
        })
    }
}

ami_plugin_sdk::export_tariff!(Flat);
