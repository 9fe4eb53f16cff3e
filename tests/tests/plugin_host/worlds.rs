//! The VEE rule and tariff worlds run through the same host; calls of the wrong kind are typed
//! errors.

use ami_e2e::{host, shipped_package, vendor};
use ami_plugin_host::bindings::tariff::exports::ami::plugin::rate as tw;
use ami_plugin_host::bindings::types::{Obis, Quality, Quantity, Unit};
use ami_plugin_host::bindings::vee::exports::ami::plugin::validate as vw;
use ami_plugin_host::{CallFailure, InputFrame, MemoryKeyStore, PluginKind};
use std::sync::Arc;

fn q(mantissa: i64, scale: i8) -> Quantity {
    Quantity { mantissa, scale }
}

const IMPORT: Obis = Obis {
    a: 1,
    b: 0,
    c: 1,
    d: 8,
    e: 0,
    f: 255,
};

#[test]
fn integration_worlds_vee_rule_and_tariff() {
    let dir = tempfile::tempdir().unwrap();
    let key = vendor();
    let host = host(&[&key], Arc::new(MemoryKeyStore::new()));
    host.install_dir(&shipped_package(
        dir.path(),
        "examples/example-vee-rule",
        "ami-example-vee-rule",
        &key,
    ))
    .unwrap();
    host.install_dir(&shipped_package(
        dir.path(),
        "examples/example-tariff",
        "ami-example-tariff",
        &key,
    ))
    .unwrap();

    let vee = host.plugin_for_rule(PluginKind::VeeRule, "limits").unwrap();
    let iv = |ts: i64, v: i64| vw::Interval {
        ts,
        value: q(v, 0),
        quality: Quality::empty(),
    };
    let series = vw::Series {
        meter: "m1".into(),
        register: IMPORT,
        unit: Unit::WattHour,
        interval_s: 900,
        values: vec![iv(900_000, 5), iv(1_800_000, 50), iv(2_700_000, 500)],
        history: vec![],
    };
    let params = [
        vw::Parameter {
            name: "min".into(),
            value: q(10, 0),
        },
        vw::Parameter {
            name: "max".into(),
            value: q(1, 2),
        },
    ];
    let findings = vee.check("limits", &params, &series).unwrap().unwrap();
    let failed: Vec<i64> = findings.iter().map(|f| f.ts).collect();
    assert_eq!(failed, vec![900_000, 2_700_000]);
    assert!(
        matches!(&findings[1].verdict, vw::Verdict::Fail(why) if why.contains("500 above 100"))
    );

    // A gap of two intervals is estimated by linear interpolation.
    let gappy = vw::Series {
        values: vec![iv(900_000, 10), iv(3_600_000, 40)],
        ..series.clone()
    };
    let est = vee.check("linear-fill", &[], &gappy).unwrap().unwrap();
    let got: Vec<(i64, i64)> = est
        .iter()
        .map(|f| match &f.verdict {
            vw::Verdict::Estimate((v, vw::EstimationMethod::LinearInterpolation)) => {
                (f.ts, v.mantissa)
            }
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(got, vec![(1_800_000, 20), (2_700_000, 30)]);
    // A missing parameter is the rule's typed error, not a trap.
    assert!(matches!(
        vee.check("limits", &[], &series).unwrap(),
        Err(vw::RuleError::BadParameter(_))
    ));

    let tariff = host.plugin_for_rule(PluginKind::Tariff, "flat").unwrap();
    let use_ = |ts: i64, wh: i64| tw::Usage {
        register: IMPORT,
        ts,
        value: q(wh, 0),
    };
    let usage = [
        use_(900_000, 1000),
        use_(1_800_000, 500),
        use_(2_700_000, 1500),
    ];
    let price = [tw::Parameter {
        name: "price".into(),
        value: q(25, -2),
    }];
    let calendar = tw::Calendar {
        utc_offsets: vec![],
        special_days: vec![],
    };
    let bill = tariff
        .compute("flat", &price, &calendar, 0, 3_600_000, &usage)
        .unwrap()
        .unwrap();
    let total = ami_domain::Quantity::new(bill.total.mantissa, bill.total.scale);
    assert_eq!(total, "0.75".parse().unwrap());
    assert_eq!(bill.determinants[0].name, "energy");
    assert_eq!(
        ami_domain::Quantity::new(
            bill.determinants[0].value.mantissa,
            bill.determinants[0].value.scale
        ),
        "3".parse().unwrap()
    );
    assert!(matches!(
        tariff
            .compute("flat", &price, &calendar, 10_000_000, 20_000_000, &usage)
            .unwrap(),
        Err(tw::TariffError::MissingData(_))
    ));

    // Asking a VEE rule to decode is a typed error.
    let e = vee
        .decode(&[InputFrame {
            data: b"x",
            received_at_ms: 0,
            meter_hint: None,
        }])
        .unwrap_err();
    assert!(matches!(e.failure, CallFailure::WrongKind { .. }), "{e}");
}
