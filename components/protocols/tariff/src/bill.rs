//! Building a bill: determinants, line items rounded to the currency's minor unit, the total.

use ami_domain::{Obis, Quantity};

use crate::decimal::Dec;
use crate::{Bill, Determinant, LineItem, TariffError};

/// Import energy, `1-0:1.8.0`.
pub(crate) const IMPORT: Obis = Obis::new(1, 0, 1, 8, 0, 255);
/// Export energy, `1-0:2.8.0`.
pub(crate) const EXPORT: Obis = Obis::new(1, 0, 2, 8, 0, 255);
/// Net energy, import - export, `1-0:16.8.0`.
pub(crate) const NET: Obis = Obis::new(1, 0, 16, 8, 0, 255);
/// Maximum import demand, `1-0:1.6.0`.
pub(crate) const MAX_DEMAND: Obis = Obis::new(1, 0, 1, 6, 0, 255);

/// Energy in Wh as kWh.
pub(crate) fn kwh(wh: Dec) -> Result<Dec, TariffError> {
    wh.mul(Dec::new(1, -3), "kWh")
}

/// A bill under construction.
pub(crate) struct Builder {
    /// Minor unit exponent: -2 for cents.
    money: i32,
    end: i64,
    determinants: Vec<Determinant>,
    lines: Vec<LineItem>,
    total: Dec,
}

impl Builder {
    /// A bill in a currency with `decimals` minor digits for a period ending at `end`.
    pub(crate) fn new(decimals: i64, end: i64) -> Self {
        Self {
            money: -i32::try_from(decimals).unwrap_or(2),
            end,
            determinants: Vec::new(),
            lines: Vec::new(),
            total: Dec::ZERO,
        }
    }

    /// Adds a determinant of the whole period.
    pub(crate) fn determinant(
        &mut self,
        name: &str,
        register: Obis,
        value: Dec,
    ) -> Result<(), TariffError> {
        let end = self.end;
        self.determinant_at(name, register, value, end)
    }

    /// Adds a determinant that happened at `at`.
    pub(crate) fn determinant_at(
        &mut self,
        name: &str,
        register: Obis,
        value: Dec,
        at: i64,
    ) -> Result<(), TariffError> {
        self.determinants.push(Determinant {
            name: name.to_owned(),
            register,
            value: value.to_quantity(-3, name)?,
            at,
        });
        Ok(())
    }

    /// Adds a line charging `quantity` of determinant `name` at `rate`.
    pub(crate) fn line(
        &mut self,
        description: String,
        determinant: &str,
        quantity: Dec,
        rate: Quantity,
    ) -> Result<(), TariffError> {
        let exact = quantity.mul(Dec::from_q(rate), determinant)?;
        let rounded = exact.round_half_even(self.money, determinant)?;
        self.total = self.total.add(rounded, "total")?;
        self.lines.push(LineItem {
            description,
            determinant: determinant.to_owned(),
            rate,
            amount: rounded.to_quantity_at(self.money, determinant)?,
        });
        Ok(())
    }

    /// The finished bill.
    pub(crate) fn finish(self) -> Result<Bill, TariffError> {
        Ok(Bill {
            determinants: self.determinants,
            lines: self.lines,
            total: self.total.to_quantity_at(self.money, "total")?,
        })
    }
}
