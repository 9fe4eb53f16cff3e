//! VEE and billing on PostgreSQL with readings that came through NATS: the standard rule pack
//! flags the faults planted in a simulated data set and estimates the gaps, and a time-of-use
//! bill computed through the tariff component then matches a calculation done by hand.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use ami_domain::time::unix_ms;
use ami_e2e::pg::TestDb;
use ami_mdms::auth::{Auth, Principal, Role};
use ami_mdms::proto::billing_client::BillingClient;
use ami_mdms::proto::{self as pb, Decimal};
use ami_mdms::server::{Api, serve};
use ami_mdms::vee::RuleSets;
use ami_mdms::{Mdms, MdmsError, ReadingsConsumer};
use ami_mdms_store::{AnyStore, Catalog, MeterDataStore, MeterInfo, Source, Span, View};
use tokio::sync::watch;

use crate::{IMPORT, QUARTER, nats_bus, readings_message};

/// 2026-03-01 00:00 CET (the billing period's start) and 2026-04-01 00:00 CEST (its end).
const MARCH_START: i64 = unix_ms(2026, 2, 28, 23, 0, 0);
const MARCH_END: i64 = unix_ms(2026, 3, 31, 22, 0, 0);

/// The planted faults of the billed meter (steady 250 Wh per quarter-hour otherwise).
const GAP: [i64; 2] = [
    unix_ms(2026, 3, 10, 10, 15, 0),
    unix_ms(2026, 3, 10, 10, 30, 0),
];
const SPIKE: i64 = unix_ms(2026, 3, 12, 12, 0, 0);
const NEGATIVE: i64 = unix_ms(2026, 3, 20, 8, 0, 0);

/// Rule sets: the billed meter's class without the flat-line check (its steady load is flat
/// by design); the default class with it, for the meter whose flat line is the fault.
const RULES: &str = r#"
[class.steady]
rules = [
  { rule = "missing-intervals" },
  { rule = "high-low-limits", params = { high = "25000", low = "0" } },
  { rule = "negative-flow" },
  { rule = "spike", params = { factor = "10", min-history = "3" } },
  { rule = "estimate-linear", params = { max-gap-intervals = "4" } },
]
[class.default]
rules = [
  { rule = "stuck-register", params = { max-flat-run = "16" } },
  { rule = "zero-consumption", params = { max-zero-run = "8" } },
]
"#;

/// The billed meter's data: the last week of February (history for the spike rule) and
/// March with the planted faults.
fn march_values() -> Vec<(i64, i64)> {
    let from = MARCH_START - 7 * 96 * QUARTER;
    (1..)
        .map(|k| from + k * QUARTER)
        .take_while(|ts| *ts <= MARCH_END)
        .filter(|ts| !GAP.contains(ts))
        .map(|ts| {
            let wh = match ts {
                SPIKE => 90_000,
                NEGATIVE => -40,
                _ => 250,
            };
            (ts, wh)
        })
        .collect()
}

/// A day of a varying load with a flat run of 20 intervals and a zero run of 10.
fn faulty_day() -> Vec<(i64, i64)> {
    let day = unix_ms(2026, 3, 3, 0, 0, 0);
    (1..=96)
        .map(|k| {
            let wh = match k {
                30..=49 => 333,
                60..=69 => 0,
                _ => 100 + (k * 37) % 101,
            };
            (day + k * QUARTER, wh)
        })
        .collect()
}

fn operator() -> Principal {
    Principal {
        name: "vee-runner".into(),
        roles: [Role::Operator].into(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn integration_mdms_vee_flags_planted_faults_and_a_tou_bill_matches_the_hand_calculation() {
    let db = TestDb::create("mdms_vee").await;
    let dir = tempfile::tempdir().unwrap();
    let host = crate::mdms_host(dir.path());
    let store = Arc::new(AnyStore::open(&db.url(), 4).await.unwrap());
    store.migrate().await.unwrap();
    let mdms = Arc::new(Mdms::new(
        Arc::clone(&store),
        host,
        RuleSets::parse(RULES).unwrap(),
        28,
    ));

    // The readings arrive through NATS, a day per message.
    let bus = nats_bus("mdms-vee").await;
    let topology = bus.topology().clone();
    let march = march_values();
    let mut msgs: Vec<_> = march
        .chunks(96)
        .enumerate()
        .map(|(i, day)| {
            readings_message(&format!("bill-{i}"), "bill-1", day).to_message(&topology, None)
        })
        .collect();
    msgs.push(readings_message("faulty", "faulty-1", &faulty_day()).to_message(&topology, None));
    let total = msgs.len() as u64;
    bus.publish_batch(msgs).await.unwrap();
    let consumer = Arc::new(ReadingsConsumer::new(
        bus.clone(),
        Arc::clone(&store),
        "mdms-vee",
        50,
    ));
    let (stop, rx) = watch::channel(false);
    let task = {
        let c = Arc::clone(&consumer);
        tokio::spawn(async move { c.run(rx).await })
    };
    let stats = consumer.stats();
    let deadline = Instant::now() + Duration::from_secs(60);
    while stats.messages.load(Ordering::Relaxed) < total && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.send(true).unwrap();
    task.await.unwrap().unwrap();
    assert_eq!(
        stats.inserted.load(Ordering::Relaxed) as usize,
        march.len() + 96
    );
    store
        .upsert_meters(&[MeterInfo {
            id: "bill-1".into(),
            class: "steady".into(),
            feeder: "f-1".into(),
            transformer: "t-1".into(),
            customer_class: "residential".into(),
        }])
        .await
        .unwrap();

    // A bill before VEE is refused: two intervals of the month are missing.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (srv_stop, srv_rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(serve(
        Api::new(
            Arc::clone(&mdms),
            Auth::parse_tokens("tok-billing-0123456789=billing:operator").unwrap(),
        ),
        listener,
        async move {
            let _ = srv_rx.await;
        },
    ));
    let mut billing = BillingClient::connect(format!("http://{addr}"))
        .await
        .unwrap();
    let e = billing.calculate_bill(bill_request()).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::FailedPrecondition, "{}", e.message());
    assert!(e.message().contains("missing"), "{}", e.message());

    // VEE over March for the billed meter and the faulty one.
    let month = Span::new(MARCH_START, MARCH_END);
    let report = mdms
        .run_vee(
            &operator(),
            &["bill-1".into(), "faulty-1".into()],
            IMPORT,
            month,
        )
        .await
        .unwrap();
    assert_eq!(report.series, 2);
    // bill-1: 2 missing, spike (spike + high limit), negative (negative-flow + low limit);
    // faulty-1: 20 flat intervals and 10 zero intervals.
    let exceptions = mdms.exceptions(None, true).await.unwrap();
    let on = |meter: &str, rule: &str| -> Vec<i64> {
        exceptions
            .iter()
            .filter(|x| x.meter == meter && x.rule == rule)
            .map(|x| x.ts_ms)
            .collect()
    };
    assert_eq!(on("bill-1", "missing-intervals"), GAP);
    assert_eq!(on("bill-1", "spike"), [SPIKE]);
    assert_eq!(on("bill-1", "high-low-limits"), [SPIKE, NEGATIVE]);
    assert_eq!(on("bill-1", "negative-flow"), [NEGATIVE]);
    let day = unix_ms(2026, 3, 3, 0, 0, 0);
    let flat: Vec<i64> = (30..=49).map(|k| day + k * QUARTER).collect();
    let zeros: Vec<i64> = (60..=69).map(|k| day + k * QUARTER).collect();
    assert_eq!(on("faulty-1", "stuck-register"), flat);
    assert_eq!(on("faulty-1", "zero-consumption"), zeros);
    // Every exception of bill-1 was answered by an estimate; those of faulty-1 stay open.
    for x in exceptions.iter().filter(|x| x.meter == "bill-1") {
        let r = x.resolved.as_ref().unwrap_or_else(|| panic!("open: {x:?}"));
        assert!(r.text.contains("linear-interpolation"), "{r:?}");
        assert!(r.by.starts_with("standard-vee@"), "{r:?}");
    }
    assert!(
        exceptions
            .iter()
            .filter(|x| x.meter == "faulty-1")
            .all(|x| x.resolved.is_none())
    );
    assert_eq!(
        report.estimates, 4,
        "2 gaps, the spike and the negative value estimated"
    );

    // The original stays as received; the latest view shows the flagged estimate.
    let at = |ts: i64| Span::new(ts - QUARTER, ts);
    let raw = store
        .readings("bill-1", IMPORT, at(SPIKE), View::Raw)
        .await
        .unwrap();
    assert_eq!(raw[0].value.mantissa, 90_000);
    let latest = store
        .readings("bill-1", IMPORT, at(SPIKE), View::Latest)
        .await
        .unwrap();
    assert_eq!(latest[0].value.mantissa, 250);
    assert_eq!(latest[0].provenance.source, Source::Estimated);
    assert_eq!(
        latest[0].provenance.method.as_deref(),
        Some("linear-interpolation")
    );
    assert!(latest[0].quality.contains(ami_domain::Quality::ESTIMATED));
    assert!(
        store
            .readings("bill-1", IMPORT, at(GAP[0]), View::Raw)
            .await
            .unwrap()
            .is_empty()
    );

    // Validated data only: the faulty meter's open exceptions refuse its bill.
    let e = mdms
        .calculate_bill(
            &operator(),
            &ami_mdms::billing::BillRequest {
                meter: "faulty-1".into(),
                tariff: "tou".into(),
                params: Vec::new(),
                start_ms: MARCH_START,
                end_ms: MARCH_END,
                utc_offsets: Vec::new(),
                special_days: Vec::new(),
                registers: Vec::new(),
            },
        )
        .await
        .unwrap_err();
    assert!(
        matches!(e, MdmsError::FailedPrecondition(ref m) if m.contains("unvalidated")),
        "{e}"
    );

    // March 2026 in Europe/Amsterdam, steady 1 kW (each hour 1 kWh) once estimated; 1 March
    // is a Sunday, Tuesday 17 March a holiday (off-peak all day), summer from 16 March, DST on
    // Sunday 29 March (a 23-hour day). Weekdays: peak 07-21 (14 h), off-peak 10 h.
    //   winter peak    10 weekdays x 14 h                     = 140 kWh x 0.3012 = 42.168 -> 42.17
    //   winter offpeak 10 x 10 h + 5 weekend days x 24 h      = 220 kWh x 0.2000 = 44.00
    //   summer peak    11 weekdays x 14 h                     = 154 kWh x 0.2500 = 38.50
    //   summer offpeak 11 x 10 h + 24 (holiday) + 3 x 24 + 23 = 229 kWh x 0.1537 = 35.1973 -> 35.20
    //   total 42.17 + 44.00 + 38.50 + 35.20 = 159.87; import 743 kWh.
    let bill = billing
        .calculate_bill(bill_request())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        bill.total,
        Some(Decimal {
            mantissa: 15987,
            scale: -2
        }),
        "{bill:#?}"
    );
    let det = |name: &str| {
        bill.determinants
            .iter()
            .find(|d| d.name == name)
            .and_then(|d| d.value)
            .map(|v| ami_domain::Quantity::new(v.mantissa, i8::try_from(v.scale).unwrap()))
            .unwrap_or_else(|| panic!("no determinant {name}"))
    };
    for (name, kwh) in [
        ("kwh.import", 743),
        ("kwh.import.winter.peak", 140),
        ("kwh.import.winter.offpeak", 220),
        ("kwh.import.summer.peak", 154),
        ("kwh.import.summer.offpeak", 229),
    ] {
        assert_eq!(
            det(name).normalized(),
            ami_domain::Quantity::new(kwh, 0),
            "{name}"
        );
    }
    assert!(
        bill.computed_by.starts_with("standard-tariffs@"),
        "{}",
        bill.computed_by
    );
    srv_stop.send(()).unwrap();
    if let ami_bus::Bus::Nats(n) = &bus {
        n.delete_streams().await.unwrap();
    }
    if let AnyStore::Postgres(pg) = store.as_ref() {
        pg.close().await;
    }
    db.drop_now().await;
}

fn bill_request() -> tonic::Request<pb::CalculateBillRequest> {
    let p = |name: &str, mantissa: i64, scale: i32| pb::Parameter {
        name: name.into(),
        value: Some(Decimal { mantissa, scale }),
    };
    let ts = |ms: i64| Some(ami_mdms::convert::timestamp(ms));
    let mut r = tonic::Request::new(pb::CalculateBillRequest {
        meter: "bill-1".into(),
        tariff: "tou".into(),
        parameters: vec![
            p("interval-minutes", 15, 0),
            p("currency.decimals", 2, 0),
            p("season.winter.start-month", 10, 0),
            p("season.winter.start-day", 1, 0),
            p("season.summer.start-month", 3, 0),
            p("season.summer.start-day", 16, 0),
            p("weekday.peak.start-hour", 7, 0),
            p("weekday.peak.end-hour", 21, 0),
            p("weekday.offpeak.start-hour", 21, 0),
            p("weekday.offpeak.end-hour", 7, 0),
            p("weekend.offpeak.start-hour", 0, 0),
            p("weekend.offpeak.end-hour", 24, 0),
            p("price.winter.peak", 3012, -4),
            p("price.winter.offpeak", 2000, -4),
            p("price.summer.peak", 2500, -4),
            p("price.summer.offpeak", 1537, -4),
        ],
        period_start: ts(MARCH_START),
        period_end: ts(MARCH_END),
        // Europe/Amsterdam: CET since October 2025, CEST from 29 March 01:00 UTC.
        utc_offsets: vec![
            pb::UtcOffset {
                from: ts(unix_ms(2025, 10, 26, 1, 0, 0)),
                offset_s: 3600,
            },
            pb::UtcOffset {
                from: ts(unix_ms(2026, 3, 29, 1, 0, 0)),
                offset_s: 7200,
            },
        ],
        special_days: vec![pb::SpecialDay {
            date: "2026-03-17".into(),
            day_type: "holiday".into(),
        }],
        registers: Vec::new(),
    });
    r.metadata_mut().insert(
        "authorization",
        "Bearer tok-billing-0123456789".parse().unwrap(),
    );
    r
}
