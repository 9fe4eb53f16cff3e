//! The bridge between the real Mosquitto broker (127.0.0.1:1883, or `AMI_TEST_MQTT_HOST` and
//! `AMI_TEST_MQTT_PORT`) and the real nats-server with JetStream (127.0.0.1:4222, or
//! `AMI_TEST_NATS_URL`): the test publishes the simulator's frames as a concentrator would,
//! on a topic prefix of its own, and counts exactly what lands in a JetStream stream under a
//! subject root of its own.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use ami_adapter::{Adapter, AdapterConfig};
use ami_bus::{Bus, ConsumerSettings, NatsBus, RawFrame, StreamKind, StreamSettings, Topology};
use ami_mqtt_bridge::config::MqttSettings;
use ami_mqtt_bridge::{BridgeConfig, BridgeStats, PayloadFormat, Route};
use ami_sim::{Fleet, FleetConfig, Protocol, ProtocolMix};
use base64::Engine as _;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use tokio::sync::watch;

const T0: i64 = 1_688_371_200_000;

fn nats_url() -> String {
    std::env::var("AMI_TEST_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into())
}

fn mqtt_host() -> (String, u16) {
    let host = std::env::var("AMI_TEST_MQTT_HOST").unwrap_or_else(|_| "127.0.0.1".into());
    let port = std::env::var("AMI_TEST_MQTT_PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(1883);
    (host, port)
}

/// A name no other test or run uses.
fn unique(tag: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!(
        "t{}x{}x{:x}{tag}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed),
        nanos & 0xffffff
    )
}

/// NATS with the platform's streams under a root of the test's own; deleted by `close`.
struct TestNats {
    bus: NatsBus,
}

impl TestNats {
    async fn new(root: &str) -> TestNats {
        let bus = NatsBus::connect(&nats_url(), Topology::new(root), 1000)
            .await
            .expect("nats-server with JetStream at the test URL");
        bus.ensure_streams(&StreamSettings {
            raw_max_age: Duration::from_secs(600),
            max_age: Duration::from_secs(600),
            ..StreamSettings::default()
        })
        .await
        .unwrap();
        TestNats { bus }
    }

    /// Every raw message, waiting until `n` have come (or 20 s), then a little longer for
    /// any extra.
    async fn raw(&self, n: usize) -> Vec<ami_bus::Message> {
        let consumer = Bus::Nats(self.bus.clone())
            .consumer(StreamKind::Raw, &ConsumerSettings::new("count"))
            .await
            .unwrap();
        let mut got = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        while got.len() < n && Instant::now() < deadline {
            for d in consumer
                .fetch(500, Duration::from_millis(300))
                .await
                .unwrap()
            {
                let (m, ack) = d.into_parts();
                ack.ack().await.unwrap();
                got.push(m);
            }
        }
        for d in consumer
            .fetch(500, Duration::from_millis(500))
            .await
            .unwrap()
        {
            got.push(d.message);
        }
        got
    }

    async fn close(self) {
        self.bus.delete_streams().await.unwrap();
    }
}

/// A concentrator: an MQTT client that publishes with QoS 1 and counts the broker's acks.
struct Concentrator {
    client: AsyncClient,
    acked: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl Concentrator {
    fn connect(id: &str) -> Concentrator {
        let (host, port) = mqtt_host();
        let mut o = MqttOptions::new(id, host, port);
        o.set_keep_alive(Duration::from_secs(10));
        o.set_max_packet_size(256 * 1024, 256 * 1024);
        let (client, mut events) = AsyncClient::new(o, 100);
        let acked = Arc::new(AtomicU64::new(0));
        let counter = Arc::clone(&acked);
        let task = tokio::spawn(async move {
            loop {
                match events.poll().await {
                    Ok(Event::Incoming(Packet::PubAck(_))) => {
                        counter.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(_) => {}
                    Err(e) => panic!("concentrator's broker connection: {e}"),
                }
            }
        });
        Concentrator {
            client,
            acked,
            task,
        }
    }

    async fn publish(&self, topic: &str, payload: Vec<u8>) {
        self.client
            .publish(topic, QoS::AtLeastOnce, false, payload)
            .await
            .unwrap();
    }

    async fn wait_acked(&self, n: u64) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.acked.load(Ordering::Relaxed) < n && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(
            self.acked.load(Ordering::Relaxed),
            n,
            "the broker took every message"
        );
    }

    fn close(self) {
        self.task.abort();
    }
}

/// Ends the bridge's persistent session on the broker (a clean-session connection under its
/// client id), so that test runs leave nothing behind.
async fn forget_session(client_id: &str) {
    let (host, port) = mqtt_host();
    let mut o = MqttOptions::new(client_id, host, port);
    o.set_clean_session(true);
    let (client, mut events) = AsyncClient::new(o, 10);
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        match tokio::time::timeout(Duration::from_secs(1), events.poll()).await {
            Ok(Ok(Event::Incoming(Packet::ConnAck(_)))) => break,
            Ok(Ok(_)) | Err(_) => {}
            Ok(Err(e)) => panic!("broker: {e}"),
        }
    }
    let _ = client.disconnect().await;
    let _ = tokio::time::timeout(Duration::from_millis(500), events.poll()).await;
}

fn config(root: &str, prefix: &str) -> BridgeConfig {
    let (host, port) = mqtt_host();
    let route = |leaf: &str, protocol: &str, payload, meter_level| Route {
        filter: format!("{prefix}/dcu/+/{leaf}"),
        protocol: protocol.into(),
        payload,
        meter_level,
    };
    // Topic levels: ami-test(0) / <root>(1) / dcu(2) / <meter>(3) / <leaf>(4).
    let cfg = BridgeConfig {
        mqtt: MqttSettings {
            host,
            port,
            client_id: format!("bridge-{root}"),
            username: None,
            password: None,
            keep_alive_s: 10,
            max_packet: 256 * 1024,
        },
        routes: vec![
            route("p1", "dsmr", PayloadFormat::Raw, Some(3)),
            route("wmbus", "wmbus", PayloadFormat::Hex, None),
            route("iec", "iec62056-21", PayloadFormat::Json, Some(3)),
        ],
    };
    cfg.validate().unwrap();
    cfg
}

/// The simulator's frames: (topic leaf, meter, bytes) for DSMR, wM-Bus and IEC meters.
fn sim_frames(n_each: usize) -> Vec<(&'static str, String, Vec<u8>)> {
    let fleet = Fleet::with_config(&FleetConfig {
        meters: 8,
        seed: 5,
        mix: ProtocolMix::EVEN,
        outages_per_day: 0.0,
        tampers_per_day: 0.0,
        gap_probability: 0.0,
        ..FleetConfig::default()
    })
    .unwrap();
    let mut out = Vec::new();
    for i in 0..n_each {
        let ts = T0 + i as i64 * 900_000;
        for m in &fleet.meters {
            let leaf = match m.protocol {
                Protocol::Dsmr => "p1",
                Protocol::WirelessMbus => "wmbus",
                Protocol::Iec62056_21 => "iec",
                Protocol::Dlms => continue,
            };
            out.push((leaf, m.id.clone(), ami_sim::try_frame(m, ts).unwrap()));
        }
    }
    out
}

fn payload(leaf: &str, meter: &str, frame: &[u8]) -> Vec<u8> {
    match leaf {
        "p1" => frame.to_vec(),
        "wmbus" => hex::encode(frame).into_bytes(),
        _ => serde_json::json!({
            "data": base64::engine::general_purpose::STANDARD.encode(frame),
            "meter": meter,
        })
        .to_string()
        .into_bytes(),
    }
}

async fn wait_for(what: &str, f: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !f() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(f(), "timed out waiting for {what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concentrator_frames_reach_jetstream_exactly_once() {
    let root = unique("mq");
    let prefix = format!("ami-test/{root}");
    let nats = TestNats::new(&root).await;
    let dir = tempfile::tempdir().unwrap();
    let adapter = Adapter::open(AdapterConfig::new("dcu-17"), dir.path()).unwrap();
    let (stop_tx, stop_rx) = watch::channel(false);
    let forwarder = {
        let (a, b, rx) = (
            adapter.clone(),
            Bus::Nats(nats.bus.clone()),
            stop_rx.clone(),
        );
        tokio::spawn(async move { a.forward(b, rx).await })
    };
    let cfg = config(&root, &prefix);
    let stats = Arc::new(BridgeStats::default());
    let bridge = {
        let (cfg, a, s, rx) = (
            cfg.clone(),
            adapter.clone(),
            Arc::clone(&stats),
            stop_rx.clone(),
        );
        tokio::spawn(async move { ami_mqtt_bridge::run(&cfg, &a, &s, rx).await })
    };
    wait_for("the subscriptions", || {
        stats.subscribed.load(Ordering::Relaxed) >= 3
    })
    .await;

    let frames = sim_frames(3);
    assert_eq!(
        frames.len(),
        18,
        "two meters of each protocol, three rounds"
    );
    let conc = Concentrator::connect(&format!("conc-{root}"));
    for (leaf, meter, frame) in &frames {
        conc.publish(
            &format!("{prefix}/dcu/{meter}/{leaf}"),
            payload(leaf, meter, frame),
        )
        .await;
    }
    // Bad payloads between the good ones: dropped, counted, never on the bus.
    conc.publish(&format!("{prefix}/dcu/m/wmbus"), b"not hex at all".to_vec())
        .await;
    conc.publish(
        &format!("{prefix}/dcu/m/iec"),
        br#"{"frame":"AQID"}"#.to_vec(),
    )
    .await;
    // A topic outside the routes: the bridge never sees it.
    conc.publish(&format!("{prefix}/elsewhere/p1"), b"/X".to_vec())
        .await;
    conc.wait_acked(21).await;

    wait_for("every message", || {
        stats.received.load(Ordering::Relaxed) >= 20
    })
    .await;
    let msgs = nats.raw(18).await;
    assert_eq!(msgs.len(), 18, "exactly the good frames, once each");
    assert_eq!(stats.accepted.load(Ordering::Relaxed), 18);
    assert_eq!(stats.bad_payload.load(Ordering::Relaxed), 2);
    assert_eq!(stats.unrouted.load(Ordering::Relaxed), 0);
    assert_eq!(stats.received.load(Ordering::Relaxed), 20);

    // In order, byte for byte, with the protocol and the meter hint of their route.
    for (m, (leaf, meter, frame)) in msgs.iter().zip(&frames) {
        let f = RawFrame::from_message(m).unwrap();
        let protocol = match *leaf {
            "p1" => "dsmr",
            "wmbus" => "wmbus",
            _ => "iec62056-21",
        };
        assert_eq!(m.subject, format!("{root}.raw.{protocol}.dcu-17"));
        assert_eq!(f.protocol, protocol);
        assert_eq!(f.data.as_ref(), frame.as_slice());
        let hint = if *leaf == "wmbus" {
            None
        } else {
            Some(meter.as_str())
        };
        assert_eq!(f.meter_hint.as_deref(), hint);
    }

    let _ = stop_tx.send(true);
    bridge.await.unwrap().unwrap();
    forwarder.await.unwrap();
    conc.close();
    forget_session(&cfg.mqtt.client_id).await;
    nats.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frames_wait_in_the_spool_while_the_bus_is_away() {
    let root = unique("mqdown");
    let prefix = format!("ami-test/{root}");
    let dir = tempfile::tempdir().unwrap();
    let adapter = Adapter::open(AdapterConfig::new("dcu-18"), dir.path()).unwrap();
    let cfg = config(&root, &prefix);
    let stats = Arc::new(BridgeStats::default());
    let (stop_tx, stop_rx) = watch::channel(false);
    let bridge = {
        let (cfg, a, s, rx) = (
            cfg.clone(),
            adapter.clone(),
            Arc::clone(&stats),
            stop_rx.clone(),
        );
        tokio::spawn(async move { ami_mqtt_bridge::run(&cfg, &a, &s, rx).await })
    };
    wait_for("the subscriptions", || {
        stats.subscribed.load(Ordering::Relaxed) >= 3
    })
    .await;
    let frames = sim_frames(1);
    let conc = Concentrator::connect(&format!("conc-{root}"));
    for (leaf, meter, frame) in &frames {
        conc.publish(
            &format!("{prefix}/dcu/{meter}/{leaf}"),
            payload(leaf, meter, frame),
        )
        .await;
    }
    conc.wait_acked(frames.len() as u64).await;
    // No bus yet: the frames are on disk, acknowledged to the broker, waiting.
    wait_for("the spool", || adapter.pending() == frames.len() as u64).await;

    // The bus comes: the backlog goes out, once.
    let nats = TestNats::new(&root).await;
    let forwarder = {
        let (a, b, rx) = (
            adapter.clone(),
            Bus::Nats(nats.bus.clone()),
            stop_rx.clone(),
        );
        tokio::spawn(async move { a.forward(b, rx).await })
    };
    let msgs = nats.raw(frames.len()).await;
    assert_eq!(msgs.len(), frames.len());
    for (m, (_, _, frame)) in msgs.iter().zip(&frames) {
        assert_eq!(m.payload.as_ref(), frame.as_slice());
    }
    wait_for("the spool to empty", || adapter.pending() == 0).await;
    let _ = stop_tx.send(true);
    bridge.await.unwrap().unwrap();
    forwarder.await.unwrap();
    conc.close();
    forget_session(&cfg.mqtt.client_id).await;
    nats.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frames_a_full_spool_refuses_stay_with_the_broker() {
    let root = unique("mqfull");
    let prefix = format!("ami-test/{root}");
    let cfg = config(&root, &prefix);
    let frames: Vec<Vec<u8>> = (0..3u8).map(|i| vec![b'0' + i; 600]).collect();
    let topic = format!("{prefix}/dcu/m1/p1");

    // A spool with room for one frame: the others are refused and left unacknowledged.
    let small_dir = tempfile::tempdir().unwrap();
    let small = Adapter::open(
        AdapterConfig {
            spool_bytes: 1000,
            ..AdapterConfig::new("dcu-19")
        },
        small_dir.path(),
    )
    .unwrap();
    let stats = Arc::new(BridgeStats::default());
    let (stop_tx, stop_rx) = watch::channel(false);
    let bridge = {
        let (cfg, a, s) = (cfg.clone(), small.clone(), Arc::clone(&stats));
        tokio::spawn(async move { ami_mqtt_bridge::run(&cfg, &a, &s, stop_rx).await })
    };
    wait_for("the subscriptions", || {
        stats.subscribed.load(Ordering::Relaxed) >= 3
    })
    .await;
    let conc = Concentrator::connect(&format!("conc-{root}"));
    for f in &frames {
        conc.publish(&topic, f.clone()).await;
    }
    conc.wait_acked(3).await;
    wait_for("a refusal", || stats.refused.load(Ordering::Relaxed) >= 1).await;
    assert_eq!(stats.accepted.load(Ordering::Relaxed), 1);
    assert_eq!(small.pending(), 1);
    let _ = stop_tx.send(true);
    bridge.await.unwrap().unwrap();

    // The bridge comes back with room: the broker sends what was never acknowledged.
    let dir = tempfile::tempdir().unwrap();
    let roomy = Adapter::open(AdapterConfig::new("dcu-19"), dir.path()).unwrap();
    let stats = Arc::new(BridgeStats::default());
    let (stop_tx, stop_rx) = watch::channel(false);
    let bridge = {
        let (cfg, a, s) = (cfg.clone(), roomy.clone(), Arc::clone(&stats));
        tokio::spawn(async move { ami_mqtt_bridge::run(&cfg, &a, &s, stop_rx).await })
    };
    wait_for("the redelivery", || {
        stats.accepted.load(Ordering::Relaxed) >= 2
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        stats.accepted.load(Ordering::Relaxed),
        2,
        "each refused frame once"
    );
    let _ = stop_tx.send(true);
    bridge.await.unwrap().unwrap();

    let bus = Arc::new(ami_bus::LocalBus::new(Topology::new(&root), 100));
    let (stop_tx, stop_rx) = watch::channel(false);
    let fwd = {
        let (a, b) = (roomy.clone(), Bus::Local(Arc::clone(&bus)));
        tokio::spawn(async move { a.forward(b, stop_rx).await })
    };
    wait_for("the forwarder", || roomy.pending() == 0).await;
    let _ = stop_tx.send(true);
    fwd.await.unwrap();
    let consumer = bus.consumer(StreamKind::Raw, "t", None).unwrap();
    let mut got: Vec<Vec<u8>> = consumer
        .fetch(10, Duration::from_millis(200))
        .await
        .unwrap()
        .into_iter()
        .map(|d| d.message.payload.to_vec())
        .collect();
    got.sort();
    assert_eq!(got, frames[1..].to_vec());
    conc.close();
    forget_session(&cfg.mqtt.client_id).await;
}
