//! The standard tariffs component through the plugin host: the time-of-use month worked out by
//! hand in `components/protocols/tariff/tests/tou.rs` (`march_2026_by_hand`) gives the same
//! bill through Wasm, and the library's typed errors arrive as the WIT's.

use ami_e2e::{host, shipped_package, vendor};
use ami_plugin_host::bindings::tariff::exports::ami::plugin::rate as tw;
use ami_plugin_host::bindings::types::{Obis, Quantity};
use ami_plugin_host::{MemoryKeyStore, PluginKind};
use ami_tariff::example;
use std::sync::Arc;

fn q(mantissa: i64, scale: i8) -> Quantity {
    Quantity { mantissa, scale }
}

fn dq(x: Quantity) -> ami_domain::Quantity {
    ami_domain::Quantity::new(x.mantissa, x.scale)
}

fn obis(o: ami_domain::Obis) -> Obis {
    Obis {
        a: o.a,
        b: o.b,
        c: o.c,
        d: o.d,
        e: o.e,
        f: o.f,
    }
}

fn params(list: &[ami_tariff::Parameter]) -> Vec<tw::Parameter> {
    list.iter()
        .map(|p| tw::Parameter {
            name: p.name.clone(),
            value: q(p.value.mantissa, p.value.scale),
        })
        .collect()
}

fn calendar(c: &ami_tariff::Calendar) -> tw::Calendar {
    tw::Calendar {
        utc_offsets: c.utc_offsets.clone(),
        special_days: c
            .special_days
            .iter()
            .map(|s| tw::SpecialDay {
                day: s.day,
                day_type: s.day_type.clone(),
            })
            .collect(),
    }
}

fn usage(list: &[ami_tariff::Usage]) -> Vec<tw::Usage> {
    list.iter()
        .map(|u| tw::Usage {
            register: obis(u.register),
            ts: u.ts,
            value: q(u.value.mantissa, u.value.scale),
        })
        .collect()
}

#[test]
fn integration_tariff_standard_tou_month_by_hand() {
    let dir = tempfile::tempdir().unwrap();
    let key = vendor();
    let host = host(&[&key], Arc::new(MemoryKeyStore::new()));
    host.install_dir(&shipped_package(
        dir.path(),
        "tariffs/standard",
        "ami-tariff-standard",
        &key,
    ))
    .unwrap();
    for id in ami_tariff::TARIFF_IDS {
        assert!(
            host.plugin_for_rule(PluginKind::Tariff, id).is_some(),
            "{id} served"
        );
    }
    let tariff = host.plugin_for_rule(PluginKind::Tariff, "tou").unwrap();
    let (start, end) = (example::MARCH_START, example::MARCH_END);
    let month = usage(&example::steady_usage(start, end));
    let cal = calendar(&example::march_calendar());
    let bill = tariff
        .compute(
            "tou",
            &params(&example::tou_params()),
            &cal,
            start,
            end,
            &month,
        )
        .unwrap()
        .unwrap();

    // The arithmetic is in `march_2026_by_hand`: 743 kWh = 140 winter peak + 220 winter
    // off-peak + 154 summer peak + 229 summer off-peak; 42.17 + 44.00 + 38.50 + 35.20.
    let value = |name: &str| {
        dq(bill
            .determinants
            .iter()
            .find(|d| d.name == name)
            .unwrap_or_else(|| panic!("{name} in {bill:?}"))
            .value)
    };
    assert_eq!(value("kwh.import"), "743".parse().unwrap());
    assert_eq!(value("kwh.import.winter.peak"), "140".parse().unwrap());
    assert_eq!(value("kwh.import.winter.offpeak"), "220".parse().unwrap());
    assert_eq!(value("kwh.import.summer.peak"), "154".parse().unwrap());
    assert_eq!(value("kwh.import.summer.offpeak"), "229".parse().unwrap());
    let amounts: Vec<(String, i64, i8)> = bill
        .lines
        .iter()
        .map(|l| (l.determinant.clone(), l.amount.mantissa, l.amount.scale))
        .collect();
    assert_eq!(
        amounts,
        [
            ("kwh.import.summer.offpeak".to_owned(), 3520, -2),
            ("kwh.import.summer.peak".to_owned(), 3850, -2),
            ("kwh.import.winter.offpeak".to_owned(), 4400, -2),
            ("kwh.import.winter.peak".to_owned(), 4217, -2),
        ]
    );
    assert_eq!((bill.total.mantissa, bill.total.scale), (15987, -2));

    // The same inputs natively give the same bill.
    let native = ami_tariff::compute(
        "tou",
        &example::tou_params(),
        &example::march_calendar(),
        start,
        end,
        &example::steady_usage(start, end),
    )
    .unwrap();
    assert_eq!(native.total.mantissa, bill.total.mantissa);
    assert_eq!(native.lines.len(), bill.lines.len());

    // A quarter missing is missing-data saying where; a misspelt parameter is pointed out.
    let mut gap = month.clone();
    gap.remove(100);
    match tariff
        .compute(
            "tou",
            &params(&example::tou_params()),
            &cal,
            start,
            end,
            &gap,
        )
        .unwrap()
    {
        Err(tw::TariffError::MissingData(m)) => {
            assert!(m.contains("1 of 2972 intervals missing"), "{m}")
        }
        other => panic!("{other:?}"),
    }
    let mut typo = params(&example::tou_params());
    typo[6].name = "weekday.peak.start-hr".into();
    match tariff
        .compute("tou", &typo, &cal, start, end, &month)
        .unwrap()
    {
        Err(tw::TariffError::BadParameter(m)) => {
            assert_eq!(
                m,
                "parameter weekday.peak.start-hour is missing (is weekday.peak.start-hr misspelt?)"
            )
        }
        other => panic!("{other:?}"),
    }
}
