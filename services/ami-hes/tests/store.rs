//! The registry store's user-level checks, each run on PostgreSQL (a fresh database per test)
//! and on embedded SQLite: meters by serial, identity and topology, the status lifecycle, CSV
//! import with bad rows reported by line, and the event log.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;

use ami_hes::model::{NewEvent, now_ms};
use ami_hes::{EventFilter, HesError, MeterFilter, MeterStatus, RegistryStore};
use common::{meter, register};

async fn meters_by_serial_identity_and_topology<S: RegistryStore>(s: Arc<S>) {
    let mut a = meter("SER-1", "F1", "T1");
    a.dlms_system_title = Some("4D4D4D0000BC614E".into());
    a.adapter = "dcu-17".into();
    a.concentrator = "dcu-17".into();
    a.latitude_e6 = Some(52_370_216);
    let mut b = meter("SER-2", "F1", "T2");
    b.mbus_address = Some("KAM-12345678".into());
    let c = meter("SER-3", "F2", "T3");
    register(s.as_ref(), vec![a, b, c]).await;

    let got = s.meter("SER-1").await.unwrap().unwrap();
    assert_eq!(got.dlms_system_title.as_deref(), Some("4d4d4d0000bc614e"));
    assert_eq!(got.latitude_e6, Some(52_370_216));
    assert_eq!(got.adapter, "dcu-17");
    // The names decoders use find the same meter, whatever their case.
    assert_eq!(
        s.meter("4d4d4d0000bc614e").await.unwrap().unwrap().serial,
        "SER-1"
    );
    assert_eq!(
        s.meter("4D4D4D0000BC614E").await.unwrap().unwrap().serial,
        "SER-1"
    );
    assert_eq!(
        s.meter("KAM-12345678").await.unwrap().unwrap().serial,
        "SER-2"
    );
    assert!(s.meter("nobody").await.unwrap().is_none());

    let under = |f: Option<&str>, t: Option<&str>| MeterFilter {
        feeder: f.map(Into::into),
        transformer: t.map(Into::into),
        ..MeterFilter::default()
    };
    let serials = |v: Vec<ami_hes::Meter>| v.into_iter().map(|m| m.serial).collect::<Vec<_>>();
    assert_eq!(
        serials(s.list_meters(&under(Some("F1"), None)).await.unwrap()),
        ["SER-1", "SER-2"]
    );
    assert_eq!(
        serials(s.list_meters(&under(None, Some("T3"))).await.unwrap()),
        ["SER-3"]
    );
    let page = MeterFilter {
        after_serial: Some("SER-1".into()),
        limit: 1,
        ..MeterFilter::default()
    };
    assert_eq!(serials(s.list_meters(&page).await.unwrap()), ["SER-2"]);

    // A serial or identity registered twice is refused, by line.
    let mut dup = meter("SER-9", "F1", "T1");
    dup.dlms_system_title = Some("4d4d4d0000bc614e".into());
    let refused = s
        .insert_meters(&[(7, meter("SER-1", "F9", "T9")), (8, dup)])
        .await
        .unwrap();
    assert_eq!(refused.iter().map(|r| r.0).collect::<Vec<_>>(), [7, 8]);
    assert!(s.meter("SER-9").await.unwrap().is_none());
}

async fn status_lifecycle<S: RegistryStore>(s: Arc<S>) {
    let mut m = meter("LC-1", "F1", "T1");
    m.status = MeterStatus::Installed;
    register(s.as_ref(), vec![m]).await;
    let now = now_ms();
    let m = s
        .set_status("LC-1", MeterStatus::Commissioned, now)
        .await
        .unwrap();
    assert_eq!(m.status, MeterStatus::Commissioned);
    assert_eq!(m.status_changed_at_ms, now);
    s.set_status("LC-1", MeterStatus::Disconnected, now)
        .await
        .unwrap();
    s.set_status("LC-1", MeterStatus::Commissioned, now)
        .await
        .unwrap();
    s.set_status("LC-1", MeterStatus::Retired, now)
        .await
        .unwrap();
    let e = s
        .set_status("LC-1", MeterStatus::Commissioned, now)
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            HesError::InvalidTransition {
                from: MeterStatus::Retired,
                to: MeterStatus::Commissioned,
                ..
            }
        ),
        "{e}"
    );
    assert_eq!(
        s.meter("LC-1").await.unwrap().unwrap().status,
        MeterStatus::Retired
    );
    assert!(matches!(
        s.set_status("nobody", MeterStatus::Retired, now).await,
        Err(HesError::NotFound(_))
    ));
}

async fn csv_import_reports_bad_rows_by_line<S: RegistryStore>(s: Arc<S>) {
    register(s.as_ref(), vec![meter("OLD-1", "F1", "T1")]).await;
    let text = "serial,protocol,dlms_system_title,feeder,transformer,phase,status\n\
        CSV-1,dlms,0000000000000001,F1,T1,A,commissioned\n\
        CSV-2,dlms,zz,F1,T1,B,\n\
        OLD-1,dlms,,F1,T1,C,\n\
        CSV-3,mbus,,F1,T2,A,installed\n\
        \"CSV-4\",\"dlms\",\"0000000000000002\",F2,\"T,3\",ABC,retired\n\
        CSV-5,dlms,0000000000000001,F1,T1,A,\n";
    let report = ami_hes::csv::import(s.as_ref(), text).await.unwrap();
    assert_eq!(report.imported, 3);
    let lines: Vec<u32> = report.errors.iter().map(|e| e.line).collect();
    assert_eq!(lines, [3, 4, 7], "{:?}", report.errors);
    assert!(report.errors[0].message.contains("dlms_system_title"));
    assert!(report.errors[1].message.contains("OLD-1"));
    let m4 = s.meter("CSV-4").await.unwrap().unwrap();
    assert_eq!(m4.transformer, "T,3");
    assert_eq!(m4.status, MeterStatus::Retired);
    assert_eq!(
        s.meter("0000000000000001").await.unwrap().unwrap().serial,
        "CSV-1"
    );
    // A bad header refuses the whole text and imports nothing.
    assert!(
        ami_hes::csv::import(s.as_ref(), "serial,colour\nX,red\n")
            .await
            .is_err()
    );
    assert!(s.meter("X").await.unwrap().is_none());
}

fn event(frame: &str, meter: &str, serial: Option<&str>, kind: &str, ts_ms: i64) -> NewEvent {
    NewEvent {
        frame: frame.into(),
        meter: meter.into(),
        serial: serial.map(Into::into),
        kind: kind.into(),
        ts_ms,
        code: 7,
        source: Some("0-0:99.98.1.255".into()),
        duration_s: 0,
    }
}

async fn events_are_stored_once_and_queried<S: RegistryStore>(s: Arc<S>) {
    let batch = vec![
        event("f1", "m1", Some("S1"), "last-gasp", 1_000),
        event("f2", "m1", Some("S1"), "power-up", 5_000),
        event("f3", "m2", None, "tamper", 3_000),
    ];
    let stored = s.insert_events(&batch, now_ms()).await.unwrap();
    assert_eq!(stored.len(), 3);
    // Redelivery stores nothing new.
    let again = s.insert_events(&batch[..2], now_ms()).await.unwrap();
    assert!(again.is_empty());
    let all = s.query_events(&EventFilter::default()).await.unwrap();
    assert_eq!(
        all.iter().map(|e| e.event.ts_ms).collect::<Vec<_>>(),
        [5_000, 3_000, 1_000]
    );
    assert_eq!(all[2].event, batch[0]);
    let of_s1 = EventFilter {
        serial: Some("S1".into()),
        kinds: vec!["last-gasp".into(), "tamper".into()],
        ..EventFilter::default()
    };
    let got = s.query_events(&of_s1).await.unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].event.kind, "last-gasp");
    let window = EventFilter {
        after_ms: Some(1_000),
        until_ms: Some(3_000),
        ..EventFilter::default()
    };
    let got = s.query_events(&window).await.unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].event.frame, "f3");
}

on_both!(
    meters_by_serial_identity_and_topology,
    status_lifecycle,
    csv_import_reports_bad_rows_by_line,
    events_are_stored_once_and_queried,
);
