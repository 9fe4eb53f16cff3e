//! Property tests: no input makes a tariff panic, overflow silently or hang; a bill that
//! comes out adds up.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use ami_domain::{Obis, Quantity};
use ami_tariff::example::{amsterdam_2026, tou_params};
use ami_tariff::{Calendar, Parameter, SpecialDay, TARIFF_IDS, TariffError, Usage, compute};
use common::*;
use proptest::prelude::*;

const NAMES: &[&str] = &[
    "interval-minutes",
    "currency.decimals",
    "season.a.start-month",
    "season.a.start-day",
    "season.b.start-month",
    "weekday.x.start-hour",
    "weekday.x.end-hour",
    "weekday.y.start-hour",
    "weekday.y.end-minute",
    "weekend.x.start-hour",
    "weekend.x.end-hour",
    "holiday.x.1.start-hour",
    "price.a.x",
    "price.b.y",
    "cpp.price",
    "cpp.start-hour",
    "cpp.end-hour",
    "tier.1.up-to",
    "tier.1.price",
    "tier.2.price",
    "energy.price",
    "demand.price",
    "demand.sub-intervals",
    "import.price",
    "export.price",
    "netting",
    "carry-in.kwh",
];

fn quantity() -> impl Strategy<Value = Quantity> {
    prop_oneof![
        (0i64..100, -3i8..=1).prop_map(|(m, s)| Quantity::new(m, s)),
        (any::<i64>(), any::<i8>()).prop_map(|(m, s)| Quantity::new(m, s)),
        Just(Quantity::new(i64::MAX, 127)),
        Just(Quantity::new(i64::MIN, -128)),
    ]
}

fn small() -> impl Strategy<Value = Quantity> {
    (0i64..1_000_000, -6i8..=2).prop_map(|(m, s)| Quantity::new(m, s))
}

fn params() -> impl Strategy<Value = Vec<Parameter>> {
    prop::collection::vec(
        (prop::sample::select(NAMES), quantity()).prop_map(|(n, v)| Parameter::new(n, v)),
        0..12,
    )
}

fn usage(start: i64) -> impl Strategy<Value = Vec<Usage>> {
    prop::collection::vec(
        (1u8..=2, 0u8..=2, 0i64..=200, quantity(), any::<bool>()).prop_map(
            move |(c, e, k, value, on_grid)| Usage {
                register: Obis::new(1, 0, c, 8, e, 255),
                ts: start + k * 300_000 + if on_grid { 0 } else { 7 },
                value,
            },
        ),
        0..150,
    )
}

fn calendar() -> impl Strategy<Value = Calendar> {
    (
        prop::collection::vec((any::<i64>(), any::<i32>()), 0..3),
        prop::collection::vec(
            (
                any::<i32>(),
                prop::sample::select(&["holiday", "cpp", "x"][..]),
            ),
            0..3,
        ),
    )
        .prop_map(|(offsets, days)| Calendar {
            utc_offsets: offsets,
            special_days: days
                .into_iter()
                .map(|(day, t)| SpecialDay {
                    day,
                    day_type: t.into(),
                })
                .collect(),
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn random_inputs_never_panic(
        id in prop::sample::select(TARIFF_IDS),
        params in params(),
        cal in prop_oneof![Just(amsterdam_2026()), Just(Calendar::default()), calendar()],
        len in prop_oneof![1i64..=20_000_000, Just(i64::MAX), Just(0), Just(-1)],
        us in usage(utc(2026, 3, 1, 0, 0)),
    ) {
        let start = utc(2026, 3, 1, 0, 0);
        let _ = compute(id, &params, &cal, start, start.saturating_add(len), &us);
        let _ = compute(id, &params, &cal, i64::MIN, i64::MAX, &us);
    }

    #[test]
    fn extreme_values_give_a_bill_that_adds_up_or_a_typed_error(
        prices in prop_oneof![
            prop::collection::vec(small(), 4),
            prop::collection::vec(quantity(), 4),
        ],
        wh in prop_oneof![
            prop::collection::vec(small(), 96),
            prop::collection::vec(quantity(), 96),
        ]
        .prop_map(|v| v.into_iter().map(|q| Quantity::new(q.mantissa.saturating_abs(), q.scale)).collect::<Vec<_>>()),
        id in prop::sample::select(&["tou", "tiered", "demand"][..]),
    ) {
        let (start, end) = (utc(2026, 3, 17, 23, 0), utc(2026, 3, 18, 23, 0));
        let mut us = series(IMPORT, start, end, 15, |_| 0);
        for (u, v) in us.iter_mut().zip(&wh) {
            u.value = *v;
        }
        let params: Vec<Parameter> = match id {
            "tou" => tou_params()
                .into_iter()
                .map(|p| match p.name.strip_prefix("price.") {
                    Some(_) => Parameter::new(p.name.clone(), prices[p.name.len() % 4]),
                    None => p,
                })
                .collect(),
            "tiered" => vec![
                Parameter::new("tier.1.up-to", Quantity::new(prices[0].mantissa.saturating_abs().max(1), prices[0].scale)),
                Parameter::new("tier.1.price", prices[1]),
                Parameter::new("tier.2.price", prices[2]),
            ],
            _ => vec![
                Parameter::new("energy.price", prices[0]),
                Parameter::new("demand.price", prices[1]),
            ],
        };
        match compute(id, &params, &amsterdam_2026(), start, end, &us) {
            Ok(bill) => {
                let mut sum: i128 = 0;
                for l in &bill.lines {
                    prop_assert_eq!(l.amount.scale, -2);
                    sum += i128::from(l.amount.mantissa);
                }
                prop_assert_eq!(bill.total.scale, -2);
                prop_assert_eq!(i128::from(bill.total.mantissa), sum);
            }
            Err(TariffError::Overflow(_)) => {}
            // A tier bound below zero after scaling is refused as a parameter.
            Err(TariffError::BadParameter(m)) if id == "tiered" => prop_assert!(m.contains("tier"), "{}", m),
            Err(e) => prop_assert!(false, "unexpected {:?}", e),
        }
    }
}
