//! The `ami.hes.v1` server as an integrator sees it: started on 127.0.0.1:0 over a SQLite
//! file, called with the generated clients and bearer tokens. Roles are enforced on every
//! call, key bytes never come back, events and outages stream, reflection lists the services,
//! health answers without a token, and a wrong master key stops the start.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use ami_bus::EventMessage;
use ami_hes::auth::{Access, TokenSource, required_access};
use ami_hes::proto::v1;
use ami_hes::proto::v1::event_service_client::EventServiceClient;
use ami_hes::proto::v1::key_service_client::KeyServiceClient;
use ami_hes::proto::v1::outage_service_client::OutageServiceClient;
use ami_hes::proto::v1::registry_service_client::RegistryServiceClient;
use ami_hes::server::{Hes, ServerConfig, bind};
use ami_hes::{HesError, MasterKeySource};
use prost::Message as _;
use tokio_stream::StreamExt;
use tonic::transport::Channel;
use tonic::{Code, Request};
use zeroize::Zeroizing;

const MASTER_A: &str = "1111111111111111111111111111111111111111111111111111111111111111";
const MASTER_B: &str = "2222222222222222222222222222222222222222222222222222222222222222";
const READER: &str = "tok-reader-0123456789";
const OPERATOR: &str = "tok-operator-0123456789";
const KEYADMIN: &str = "tok-keyadmin-0123456789";
const TOKENS: &str = "rita reader tok-reader-0123456789\n\
    otto operator tok-operator-0123456789\n\
    kim key-admin tok-keyadmin-0123456789";

struct Running {
    addr: SocketAddr,
    hes: Arc<Hes>,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Result<(), HesError>>,
}

fn config(db: &std::path::Path, master: &str) -> ServerConfig {
    ServerConfig::new(
        "127.0.0.1:0".parse().unwrap(),
        &format!("sqlite:{}", db.display()),
        MasterKeySource::Inline(Zeroizing::new(master.to_owned())),
        TokenSource::Inline(Zeroizing::new(TOKENS.to_owned())),
    )
}

async fn start(db: &std::path::Path, master: &str) -> Result<Running, HesError> {
    start_with(config(db, master)).await
}

async fn start_with(config: ServerConfig) -> Result<Running, HesError> {
    let bound = bind(config).await?;
    let addr = bound.local_addr()?;
    let hes = bound.hes();
    let (stop, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(bound.serve(async {
        let _ = rx.await;
    }));
    Ok(Running {
        addr,
        hes,
        stop,
        task,
    })
}

impl Running {
    async fn channel(&self) -> Channel {
        Channel::from_shared(format!("http://{}", self.addr))
            .unwrap()
            .connect()
            .await
            .unwrap()
    }

    async fn stop(self) {
        let _ = self.stop.send(());
        self.task.await.unwrap().unwrap();
    }
}

fn req<T>(msg: T, token: &str) -> Request<T> {
    let mut r = Request::new(msg);
    r.metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    r
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Fails if any encoded response holds the key, raw or in hex.
fn assert_no_key(responses: &[Vec<u8>], key: &[u8; 16]) {
    for r in responses {
        assert!(!contains(r, key), "a response holds key bytes");
        assert!(
            !contains(r, hex::encode(key).as_bytes()),
            "a response holds the key in hex"
        );
    }
}

const CSV: &str = "serial,protocol,dlms_system_title,feeder,transformer,phase,status\n\
    G-1,dlms,00000000000000a1,F1,T1,A,commissioned\n\
    G-2,dlms,00000000000000a2,F1,T1,B,commissioned\n\
    G-3,dlms,00000000000000a3,F1,T1,C,commissioned\n\
    G-4,dlms,not-hex,F1,T1,A,\n\
    G-5,dlms,00000000000000a5,F1,T2,A,installed\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registry_keys_events_and_outages_over_grpc() {
    let dir = tempfile::tempdir().unwrap();
    let srv = start(&dir.path().join("hes.db"), MASTER_A).await.unwrap();
    let ch = srv.channel().await;
    let mut registry = RegistryServiceClient::new(ch.clone());
    let mut keys = KeyServiceClient::new(ch.clone());
    let mut events = EventServiceClient::new(ch.clone());
    let mut outages = OutageServiceClient::new(ch.clone());
    let mut responses: Vec<Vec<u8>> = Vec::new();

    // Authentication and roles, before anything else.
    let get = v1::GetMeterRequest { id: "G-1".into() };
    let e = registry
        .get_meter(Request::new(get.clone()))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated);
    let e = registry
        .get_meter(req(get.clone(), "tok-stranger-0123456789"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated);
    let import = v1::ImportMetersRequest { csv: CSV.into() };
    let e = registry
        .import_meters(req(import.clone(), READER))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);

    // Registry: import with a bad row, get by serial or identity, list by topology, lifecycle.
    let r = registry
        .import_meters(req(import, OPERATOR))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.imported, 4);
    assert_eq!(r.errors.iter().map(|e| e.line).collect::<Vec<_>>(), [5]);
    let m = registry
        .get_meter(req(
            v1::GetMeterRequest {
                id: "00000000000000a2".into(),
            },
            READER,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((m.serial.as_str(), m.transformer.as_str()), ("G-2", "T1"));
    let e = registry
        .get_meter(req(v1::GetMeterRequest { id: "nope".into() }, READER))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    let list = registry
        .list_meters(req(
            v1::ListMetersRequest {
                transformer: "T1".into(),
                ..Default::default()
            },
            READER,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        list.meters
            .iter()
            .map(|m| m.serial.as_str())
            .collect::<Vec<_>>(),
        ["G-1", "G-2", "G-3"]
    );
    let bad = v1::UpdateStatusRequest {
        serial: "G-5".into(),
        status: v1::MeterStatus::Disconnected as i32,
    };
    let e = registry
        .update_status(req(bad, OPERATOR))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);
    let ok = v1::UpdateStatusRequest {
        serial: "G-5".into(),
        status: v1::MeterStatus::Commissioned as i32,
    };
    let m = registry
        .update_status(req(ok, OPERATOR))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(m.status, v1::MeterStatus::Commissioned as i32);

    // Keys: in, never out.
    let k1 = [
        0x5au8, 0x17, 0xc3, 0x88, 0x01, 0xfe, 0x42, 0x9d, 0x33, 0x6b, 0xe0, 0x0c, 0x71, 0xa4, 0x28,
        0xd5,
    ];
    let k2 = [
        0x61u8, 0x0f, 0x9e, 0x24, 0xbb, 0x13, 0x7c, 0xd8, 0x45, 0x2a, 0xf1, 0x06, 0x93, 0x5e, 0xc7,
        0x3b,
    ];
    let put = v1::PutKeyRequest {
        serial: "G-1".into(),
        role: v1::KeyRole::DlmsUnicast as i32,
        key: k1.to_vec(),
    };
    let e = keys.put_key(req(put.clone(), OPERATOR)).await.unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    let short = v1::PutKeyRequest {
        key: vec![1; 8],
        ..put.clone()
    };
    assert_eq!(
        keys.put_key(req(short, KEYADMIN)).await.unwrap_err().code(),
        Code::InvalidArgument
    );
    let meta = keys
        .put_key(req(put.clone(), KEYADMIN))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((meta.version, meta.created_by.as_str()), (1, "kim"));
    responses.push(meta.encode_to_vec());
    let e = keys.put_key(req(put, KEYADMIN)).await.unwrap_err();
    assert_eq!(e.code(), Code::AlreadyExists);
    assert!(!contains(
        e.message().as_bytes(),
        hex::encode(k1).as_bytes()
    ));
    let rot = v1::RotateKeyRequest {
        serial: "G-1".into(),
        role: v1::KeyRole::DlmsUnicast as i32,
        new_key: k2.to_vec(),
        grace_seconds: 600,
    };
    let meta = keys
        .rotate_key(req(rot, KEYADMIN))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(meta.version, 2);
    responses.push(meta.encode_to_vec());
    let listed = keys
        .list_keys(req(
            v1::ListKeysRequest {
                serial: "G-1".into(),
            },
            OPERATOR,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        listed
            .keys
            .iter()
            .map(|k| (k.version, k.state))
            .collect::<Vec<_>>(),
        [
            (1, v1::KeyState::Previous as i32),
            (2, v1::KeyState::Active as i32)
        ]
    );
    responses.push(listed.encode_to_vec());
    // The host, and only the host, gets the key: by the name the decoder uses.
    use ami_crypto::KeyStore as _;
    let provider = srv.hes.vault.provider();
    assert_eq!(
        *provider
            .key("00000000000000a1", ami_domain::crypto::KeyRole::DlmsUnicast)
            .unwrap(),
        k2
    );

    // Events: streamed as they are stored, then queried.
    let mut stream = events
        .stream_events(req(
            v1::StreamEventsRequest {
                serial: "G-2".into(),
                kinds: vec![],
            },
            READER,
        ))
        .await
        .unwrap()
        .into_inner();
    let mut outage_stream = outages
        .stream_outages(req(v1::StreamOutagesRequest {}, READER))
        .await
        .unwrap()
        .into_inner();
    let now = ami_hes::model::now_ms();
    let t0 = now - 120_000;
    let ev = |meter: &str, kind: &str, ts_ms: i64| EventMessage {
        frame: format!("fr-{meter}-{kind}"),
        meter: meter.into(),
        kind: kind.into(),
        ts_ms,
        code: 1,
        source: None,
        duration_s: 0,
    };
    srv.hes
        .events
        .ingest(&[
            ev("00000000000000a1", "last-gasp", t0),
            ev("00000000000000a2", "last-gasp", t0 + 10),
            ev("00000000000000a3", "last-gasp", t0 + 20),
        ])
        .await
        .unwrap();
    let got = tokio::time::timeout(Duration::from_secs(10), stream.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(
        (got.serial.as_str(), got.kind.as_str()),
        ("G-2", "last-gasp")
    );
    responses.push(got.encode_to_vec());
    let q = events
        .query_events(req(
            v1::QueryEventsRequest {
                kinds: vec!["last-gasp".into()],
                ..Default::default()
            },
            READER,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(q.events.len(), 3);
    responses.push(q.encode_to_vec());

    // Outages: the server's own ticker evaluates the closed window (no pinger: confirmed on
    // the events' evidence).
    let first = tokio::time::timeout(Duration::from_secs(10), outage_stream.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(
        (first.scope, first.node.as_str(), first.state),
        (
            v1::OutageScope::Transformer as i32,
            "T1",
            v1::OutageState::Detected as i32
        )
    );
    let listed = outages
        .list_outages(req(v1::ListOutagesRequest { active_only: true }, READER))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.outages.len(), 1);
    assert_eq!(listed.outages[0].meters, ["G-1", "G-2", "G-3"]);
    responses.push(listed.encode_to_vec());

    assert_no_key(&responses, &k1);
    assert_no_key(&responses, &k2);

    // The HES restarts over the same database in the middle of the outage: it is listed as it
    // was, and the power-ups that come after restore it.
    let id = listed.outages[0].id.clone();
    srv.stop().await;
    let srv = start(&dir.path().join("hes.db"), MASTER_A).await.unwrap();
    let mut outages = OutageServiceClient::new(srv.channel().await);
    let list = |active_only| v1::ListOutagesRequest { active_only };
    let listed = outages
        .list_outages(req(list(true), READER))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.outages.len(), 1, "{listed:?}");
    assert_eq!(listed.outages[0].id, id);
    assert_eq!(listed.outages[0].state, v1::OutageState::Confirmed as i32);
    let mut outage_stream = outages
        .stream_outages(req(v1::StreamOutagesRequest {}, READER))
        .await
        .unwrap()
        .into_inner();
    srv.hes
        .events
        .ingest(&[
            ev("00000000000000a1", "power-up", now),
            ev("00000000000000a2", "power-up", now + 10),
            ev("00000000000000a3", "power-up", now + 20),
        ])
        .await
        .unwrap();
    let mut states = Vec::new();
    while states.last() != Some(&(v1::OutageState::Restored as i32)) {
        let u = tokio::time::timeout(Duration::from_secs(10), outage_stream.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(u.id, id);
        states.push(u.state);
    }
    assert_eq!(states.len(), 3, "{states:?}");
    let active = outages
        .list_outages(req(list(true), READER))
        .await
        .unwrap()
        .into_inner();
    assert!(active.outages.is_empty(), "{active:?}");
    let all = outages
        .list_outages(req(list(false), READER))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(all.outages.len(), 1);
    assert_eq!(
        (
            all.outages[0].id.as_str(),
            all.outages[0].state,
            all.outages[0].restored,
            all.outages[0].restored_at_ms
        ),
        (id.as_str(), v1::OutageState::Restored as i32, 3, now + 20)
    );
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reflection_lists_the_services_and_health_needs_no_token() {
    use tonic_health::pb::health_client::HealthClient;
    use tonic_reflection::pb::v1::ServerReflectionRequest;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

    let dir = tempfile::tempdir().unwrap();
    let srv = start(&dir.path().join("hes.db"), MASTER_A).await.unwrap();
    let ch = srv.channel().await;

    let mut health = HealthClient::new(ch.clone());
    let status = health
        .check(tonic_health::pb::HealthCheckRequest {
            service: "ami.hes.v1.RegistryService".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        status.status,
        tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );

    let ask = || {
        tokio_stream::iter([ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::ListServices(String::new())),
        }])
    };
    let mut reflection = ServerReflectionClient::new(ch);
    let e = reflection
        .server_reflection_info(Request::new(ask()))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated);
    let mut answers = reflection
        .server_reflection_info(req(ask(), READER))
        .await
        .unwrap()
        .into_inner();
    let answer = answers.next().await.unwrap().unwrap();
    let Some(MessageResponse::ListServicesResponse(list)) = answer.message_response else {
        panic!("not a service list: {answer:?}");
    };
    let mut names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    names.sort();
    for expected in [
        "ami.hes.v1.CommandService",
        "ami.hes.v1.EventService",
        "ami.hes.v1.KeyService",
        "ami.hes.v1.OutageService",
        "ami.hes.v1.RegistryService",
        "grpc.health.v1.Health",
    ] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} missing from {names:?}"
        );
    }
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_or_missing_master_key_stops_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("hes.db");
    let srv = start(&db, MASTER_A).await.unwrap();
    srv.hes
        .store
        .insert_meters(&[(2, ami_hes::Meter::new("W-1", "mbus"))])
        .await
        .unwrap();
    srv.hes
        .vault
        .put(
            "W-1",
            ami_domain::crypto::KeyRole::Mbus,
            &ami_hes::KeyBytes::random(),
            "t",
        )
        .await
        .unwrap();
    srv.stop().await;

    let e = start(&db, MASTER_B)
        .await
        .err()
        .expect("the start must fail");
    assert!(matches!(e, HesError::KeyUnwrap { .. }), "{e}");
    assert!(e.to_string().contains("W-1/mbus/v1"), "{e}");
    let e = start(&db, "").await.err().expect("no key, no start");
    assert!(matches!(e, HesError::Config(_)), "{e}");
    // The right key still starts it.
    start(&db, MASTER_A).await.unwrap().stop().await;
}

use ami_hes::RegistryStore as _;

/// Publishes two events (one of them twice) and a message that is no event on `bus`, with the
/// HES consuming its events stream; the API then shows the two events, once each.
async fn events_from_the_bus_reach_the_api(bus: ami_bus::Bus) {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(&dir.path().join("hes.db"), MASTER_A);
    cfg.bus = Some(bus.clone());
    cfg.signing_key = Some(ami_hes::commands::SigningKeySource::Inline(Zeroizing::new(
        "07".repeat(32),
    )));
    let srv = start_with(cfg).await.unwrap();
    srv.hes
        .store
        .insert_meters(&[(2, ami_hes::Meter::new("B-1", "dlms"))])
        .await
        .unwrap();
    let topo = bus.topology().clone();
    let now = ami_hes::model::now_ms();
    let ev = |frame: &str, kind: &str| EventMessage {
        frame: frame.into(),
        meter: "B-1".into(),
        kind: kind.into(),
        ts_ms: now,
        code: 3,
        source: None,
        duration_s: 0,
    };
    let tamper = ev("bus-1", "tamper");
    let mut msgs = vec![
        tamper.to_message(&topo, 0, None),
        ev("bus-2", "cover-open").to_message(&topo, 0, None),
        tamper.to_message(&topo, 0, None),
    ];
    msgs.push(ami_bus::Message {
        subject: topo.event("tamper", "B-1"),
        headers: ami_bus::Headers::new().with(ami_bus::header::MSG_ID, "junk-1"),
        payload: bytes::Bytes::from_static(b"not json"),
    });
    bus.publish_batch(msgs).await.unwrap();

    let mut events = EventServiceClient::new(srv.channel().await);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let got = loop {
        let q = events
            .query_events(req(
                v1::QueryEventsRequest {
                    serial: "B-1".into(),
                    ..Default::default()
                },
                READER,
            ))
            .await
            .unwrap()
            .into_inner();
        if q.events.len() >= 2 || tokio::time::Instant::now() > deadline {
            break q.events;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let mut kinds: Vec<&str> = got.iter().map(|e| e.kind.as_str()).collect();
    kinds.sort();
    assert_eq!(kinds, ["cover-open", "tamper"]);
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_from_the_local_bus_reach_the_api() {
    let bus = ami_bus::LocalBus::new(ami_bus::Topology::new("hes-local"), 1000);
    events_from_the_bus_reach_the_api(ami_bus::Bus::Local(Arc::new(bus))).await;
}

/// On the NATS JetStream server at `AMI_TEST_NATS_URL` (default `nats://127.0.0.1:4222`),
/// under a root of its own whose streams are deleted at the end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_from_nats_jetstream_reach_the_api() {
    let url = std::env::var("AMI_TEST_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into());
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let root = format!("hes{}x{nanos}", std::process::id());
    let nats = ami_bus::NatsBus::connect(&url, ami_bus::Topology::new(&root), 100)
        .await
        .expect("NATS at AMI_TEST_NATS_URL");
    nats.ensure_streams(&ami_bus::StreamSettings::default())
        .await
        .unwrap();
    let bus = ami_bus::Bus::Nats(nats.clone());
    let outcome = tokio::spawn(events_from_the_bus_reach_the_api(bus)).await;
    nats.delete_streams().await.unwrap();
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}

#[test]
fn every_rpc_of_the_proto_needs_a_role() {
    let fds = prost_types::FileDescriptorSet::decode(ami_hes::proto::FILE_DESCRIPTOR_SET).unwrap();
    let mut n = 0;
    for file in fds.file {
        let package = file.package.unwrap_or_default();
        for service in file.service {
            for method in service.method {
                let path = format!(
                    "/{package}.{}/{}",
                    service.name.as_deref().unwrap_or_default(),
                    method.name.as_deref().unwrap_or_default()
                );
                assert!(
                    matches!(required_access(&path), Some(Access::Role(_))),
                    "{path} has no role"
                );
                n += 1;
            }
        }
    }
    assert_eq!(n, 22);
}
