//! Helpers shared by the tariff tests.

#![allow(dead_code)]

use ami_domain::time::unix_ms;
use ami_domain::{Obis, Quantity};
use ami_tariff::{Bill, Parameter, Usage};

/// `mantissa * 10^scale`.
pub fn q(mantissa: i64, scale: i8) -> Quantity {
    Quantity::new(mantissa, scale)
}

/// A decimal from text, `"12.34"`.
pub fn d(text: &str) -> Quantity {
    text.parse().unwrap()
}

/// A parameter from a name and decimal text.
pub fn p(name: &str, value: &str) -> Parameter {
    Parameter::new(name, d(value))
}

/// Import `1-0:1.8.0`.
pub const IMPORT: Obis = Obis::new(1, 0, 1, 8, 0, 255);
/// Export `1-0:2.8.0`.
pub const EXPORT: Obis = Obis::new(1, 0, 2, 8, 0, 255);

/// UTC ms of a civil UTC time.
pub fn utc(y: i64, mo: u32, d: u32, h: u32, mi: u32) -> i64 {
    unix_ms(y, mo, d, h, mi, 0)
}

/// `wh(i)` Wh in each `minutes` interval of `[start, end)` on `register`.
pub fn series(
    register: Obis,
    start: i64,
    end: i64,
    minutes: i64,
    wh: impl Fn(usize) -> i64,
) -> Vec<Usage> {
    let iv = minutes * 60_000;
    (0..)
        .map(|i: usize| (i, start + (i as i64 + 1) * iv))
        .take_while(|(_, ts)| *ts <= end)
        .map(|(i, ts)| Usage {
            register,
            ts,
            value: q(wh(i), 0),
        })
        .collect()
}

/// A determinant's value by name.
pub fn det(bill: &Bill, name: &str) -> Quantity {
    bill.determinants
        .iter()
        .find(|x| x.name == name)
        .unwrap_or_else(|| panic!("no determinant {name} in {bill:#?}"))
        .value
}

/// A line's amount by determinant name.
pub fn amount(bill: &Bill, determinant: &str) -> Quantity {
    bill.lines
        .iter()
        .find(|x| x.determinant == determinant)
        .unwrap_or_else(|| panic!("no line for {determinant} in {bill:#?}"))
        .amount
}
