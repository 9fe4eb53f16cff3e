//! The `ami.mdms.v1` API as integrators use it: authenticated calls, edits that need a second
//! person and keep the original, health, exports, and discovery by reflection from a client
//! that no one here wrote.

use std::sync::Arc;

use ami_domain::time::rfc3339;
use ami_mdms::Mdms;
use ami_mdms::auth::Auth;
use ami_mdms::proto::meter_data_client::MeterDataClient;
use ami_mdms::proto::vee_client::VeeClient;
use ami_mdms::proto::{self as pb, Decimal};
use ami_mdms::server::{Api, serve};
use ami_mdms_store::{Catalog, IntervalReading, MeterDataStore};
use tonic::Code;
use tonic::metadata::MetadataValue;
use tonic::transport::Channel;

use crate::{DAY0, IMPORT, QUARTER};

const TOKENS: &str = "tok-alice-0123456789=alice:operator; tok-bob-0123456789=bob:approver; \
    tok-carol-0123456789=carol:operator,approver; tok-reader-0123456789=rita:reader";

/// A running API on a free port over an embedded store with one meter's day of data.
async fn start() -> (
    String,
    Arc<Mdms>,
    tokio::sync::oneshot::Sender<()>,
    tempfile::TempDir,
) {
    let dir = tempfile::tempdir().unwrap();
    let host = crate::mdms_host(dir.path());
    let mdms = crate::mdms(
        &format!("sqlite:{}", dir.path().join("mdms.db").display()),
        host,
    )
    .await;
    let rows: Vec<IntervalReading> = (1..=96)
        .map(|n| IntervalReading {
            meter: "api-1".into(),
            reading: ami_domain::Reading {
                register: IMPORT,
                value: ami_domain::Quantity::new(200 + n, 0),
                unit: ami_domain::Unit::WattHour,
                ts_ms: DAY0 + n * QUARTER,
                quality: ami_domain::Quality::VALID,
            },
        })
        .collect();
    mdms.store().ingest(&rows).await.unwrap();
    // As the readings consumer does for every meter it stores: the catalog knows the meter.
    mdms.store()
        .touch_meters(&["api-1".to_owned()], DAY0)
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let api = Api::new(Arc::clone(&mdms), Auth::parse_tokens(TOKENS).unwrap());
    tokio::spawn(async move {
        serve(api, listener, async move {
            let _ = rx.await;
        })
        .await
        .unwrap();
    });
    (addr, mdms, tx, dir)
}

fn with_token<T>(msg: T, token: &str) -> tonic::Request<T> {
    let mut r = tonic::Request::new(msg);
    r.metadata_mut().insert(
        "authorization",
        MetadataValue::try_from(format!("Bearer {token}")).unwrap(),
    );
    r
}

async fn channel(addr: &str) -> Channel {
    Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap()
}

fn ts(ms: i64) -> Option<prost_types::Timestamp> {
    Some(ami_mdms::convert::timestamp(ms))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn integration_mdms_api_edit_needs_a_second_person_and_keeps_the_original() {
    let (addr, _mdms, stop, _dir) = start().await;
    let ch = channel(&addr).await;
    let mut vee = VeeClient::new(ch.clone());
    let mut data = MeterDataClient::new(ch);
    let at = DAY0 + 10 * QUARTER;
    let propose = pb::ProposeEditRequest {
        meter: "api-1".into(),
        register: IMPORT.to_string(),
        ts: ts(at),
        value: Some(Decimal {
            mantissa: 1995,
            scale: -1,
        }),
        unit: "Wh".into(),
        reason: "customer photo of the register".into(),
    };
    // No token, and a reader's token: refused with the codes a client can act on.
    let e = vee
        .propose_edit(tonic::Request::new(propose.clone()))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated);
    let e = vee
        .propose_edit(with_token(propose.clone(), "tok-reader-0123456789"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    let bad = pb::ProposeEditRequest {
        register: "1.8.x".into(),
        ..propose.clone()
    };
    let e = vee
        .propose_edit(with_token(bad, "tok-alice-0123456789"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().contains("register"), "{}", e.message());

    let edit = vee
        .propose_edit(with_token(propose, "tok-alice-0123456789"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(edit.status, "pending");
    assert_eq!(edit.proposed_by, "alice");
    // Alice may not approve (no approver role); carol may not approve her own edit.
    let review = |id, approve| pb::ReviewEditRequest {
        id,
        approve,
        comment: "checked".into(),
    };
    let e = vee
        .review_edit(with_token(review(edit.id, true), "tok-alice-0123456789"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    let own = vee
        .propose_edit(with_token(
            pb::ProposeEditRequest {
                meter: "api-1".into(),
                register: IMPORT.to_string(),
                ts: ts(at + QUARTER),
                value: Some(Decimal {
                    mantissa: 1,
                    scale: 0,
                }),
                unit: "Wh".into(),
                reason: "mine".into(),
            },
            "tok-carol-0123456789",
        ))
        .await
        .unwrap()
        .into_inner();
    let e = vee
        .review_edit(with_token(review(own.id, true), "tok-carol-0123456789"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);

    let approved = vee
        .review_edit(with_token(review(edit.id, true), "tok-bob-0123456789"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (
            approved.status.as_str(),
            approved.reviewed_by.as_str(),
            approved.version
        ),
        ("approved", "bob", 2)
    );
    let e = vee
        .review_edit(with_token(review(edit.id, false), "tok-bob-0123456789"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "reviewed once only");

    // The original stays readable; the latest view shows the edit; history has both.
    let read = |view: pb::View| pb::GetReadingsRequest {
        meter: "api-1".into(),
        register: IMPORT.to_string(),
        from: ts(at - QUARTER),
        to: ts(at),
        view: view as i32,
    };
    let raw = data
        .get_readings(with_token(read(pb::View::Raw), "tok-reader-0123456789"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        raw.readings[0].value,
        Some(Decimal {
            mantissa: 210,
            scale: 0
        })
    );
    let latest = data
        .get_readings(with_token(read(pb::View::Latest), "tok-reader-0123456789"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        latest.readings[0].value,
        Some(Decimal {
            mantissa: 1995,
            scale: -1
        })
    );
    assert_eq!(latest.readings[0].source, pb::Source::Edited as i32);
    assert_eq!(latest.readings[0].actor, "alice");
    assert!(
        latest.readings[0].reason.contains("approved by bob"),
        "{}",
        latest.readings[0].reason
    );
    let history = data
        .get_history(with_token(
            pb::GetHistoryRequest {
                meter: "api-1".into(),
                register: IMPORT.to_string(),
                ts: ts(at),
            },
            "tok-reader-0123456789",
        ))
        .await
        .unwrap()
        .into_inner();
    let versions: Vec<(u32, i32)> = history
        .versions
        .iter()
        .map(|v| (v.version, v.source))
        .collect();
    assert_eq!(
        versions,
        [
            (1, pb::Source::Received as i32),
            (2, pb::Source::Edited as i32)
        ]
    );
    stop.send(()).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn integration_mdms_api_exports_csv_and_green_button() {
    let (addr, _mdms, stop, _dir) = start().await;
    let mut data = MeterDataClient::new(channel(&addr).await);
    let export = |format: pb::ExportFormat| pb::ExportRequest {
        meters: Vec::new(),
        register: IMPORT.to_string(),
        from: ts(DAY0),
        to: ts(DAY0 + 96 * QUARTER),
        view: pb::View::Raw as i32,
        format: format as i32,
    };
    let mut text = String::new();
    let mut stream = data
        .export(with_token(
            export(pb::ExportFormat::Csv),
            "tok-reader-0123456789",
        ))
        .await
        .unwrap()
        .into_inner();
    while let Some(chunk) = stream.message().await.unwrap() {
        text.push_str(&chunk.text);
    }
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 97, "header and 96 rows");
    assert!(lines[0].starts_with("meter,register,interval_end,value"));
    assert_eq!(
        lines[1].split(',').take(4).collect::<Vec<_>>(),
        [
            "api-1",
            "1-0:1.8.0*255",
            rfc3339(DAY0 + QUARTER).as_str(),
            "201"
        ]
    );

    let mut xml = String::new();
    let mut stream = data
        .export(with_token(
            export(pb::ExportFormat::GreenButton),
            "tok-reader-0123456789",
        ))
        .await
        .unwrap()
        .into_inner();
    while let Some(chunk) = stream.message().await.unwrap() {
        xml.push_str(&chunk.text);
    }
    assert!(xml.starts_with("<?xml"));
    assert!(xml.trim_end().ends_with("</feed>"));
    assert_eq!(xml.matches("<espi:IntervalReading>").count(), 96);
    assert!(xml.contains("<espi:intervalLength>900</espi:intervalLength>"));
    assert!(xml.contains(&format!(
        "<espi:start>{}</espi:start></espi:timePeriod><espi:value>201</espi:value>",
        DAY0 / 1000
    )));
    stop.send(()).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn integration_mdms_api_is_discovered_by_reflection_from_a_foreign_client() {
    let (addr, _mdms, stop, _dir) = start().await;
    // The standard health service answers for each API service.
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel(&addr).await);
    for service in [
        "ami.mdms.v1.MeterData",
        "ami.mdms.v1.Vee",
        "ami.mdms.v1.Billing",
    ] {
        let status = health
            .check(tonic_health::pb::HealthCheckRequest {
                service: service.into(),
            })
            .await
            .unwrap()
            .into_inner()
            .status;
        assert_eq!(
            status,
            tonic_health::pb::health_check_response::ServingStatus::Serving as i32,
            "{service}"
        );
    }
    // The Python grpcio client with grpcio-reflection (`cargo xtask setup` installs them).
    let python = ami_e2e::test_python();
    let script = ami_e2e::root().join("tests/harness/grpc_reflect_call.py");
    let addr2 = addr.clone();
    let body = format!(
        r#"{{"meter":"api-1","register":"1-0:1.8.0*255","from":"{}","to":"{}","view":"VIEW_RAW"}}"#,
        rfc3339(DAY0),
        rfc3339(DAY0 + 4 * QUARTER)
    );
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(python)
            .arg(script)
            .args([
                addr2.as_str(),
                "tok-reader-0123456789",
                "ami.mdms.v1.MeterData/GetReadings",
                &body,
            ])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "client failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = stdout.lines().collect();
    for service in [
        "ami.mdms.v1.Billing",
        "ami.mdms.v1.MeterData",
        "ami.mdms.v1.Vee",
        "grpc.health.v1.Health",
    ] {
        assert!(
            lines[0].contains(&format!("\"{service}\"")),
            "{service} not listed: {}",
            lines[0]
        );
    }
    // Four readings of the first hour, values 201..204, as the client decoded them itself.
    for v in ["\"mantissa\": \"201\"", "\"mantissa\": \"204\""] {
        assert!(lines[1].contains(v), "{v} missing from {}", lines[1]);
    }
    assert_eq!(
        lines[1].matches("\"version\": 1").count(),
        4,
        "{}",
        lines[1]
    );
    assert_eq!(lines[2], "{\"without_token\": \"UNAUTHENTICATED\"}");
    stop.send(()).unwrap();
}
