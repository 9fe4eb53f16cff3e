//! The pipeline on a healthy bus: exact counts, shared work between replicas, dead letters.

use super::*;

async fn run_exact(bus: Bus, replicas: usize, meters: usize, ticks: usize, bundle: usize) {
    let dir = tempfile::tempdir().unwrap();
    let host = dsmr_host(dir.path());
    let adapter = adapter("p1-test", &dir.path().join("spool"), bundle);
    let (frames, expected_readings) = telegrams(meters, ticks);
    let n = frames.len();
    let checker = raw_checker(&bus).await;
    let running = start(&bus, &adapter, &host, replicas);
    for chunk in frames.chunks(97) {
        adapter.accept(chunk.to_vec()).unwrap();
    }
    let got = drain(&bus, StreamKind::Readings, n, Duration::from_secs(30)).await;
    let stats = running.shutdown().await;
    let c = check_readings(&got);
    assert_eq!(c.messages, n, "one readings message per frame, none twice");
    assert_eq!(c.frames.len(), n, "every frame's readings, each once");
    assert_eq!(
        c.readings, expected_readings,
        "every reading the native decoder finds"
    );
    assert_eq!(c.meters.len(), meters, "every meter");
    assert!(
        c.meters.values().all(|&f| f == ticks),
        "each meter's every telegram"
    );
    let handled: u64 = stats
        .iter()
        .map(|s| s.decoded.load(std::sync::atomic::Ordering::Relaxed))
        .sum();
    assert_eq!(
        handled, n as u64,
        "replicas together decoded each frame once"
    );
    if replicas > 1 {
        let busy = stats
            .iter()
            .filter(|s| s.frames.load(std::sync::atomic::Ordering::Relaxed) > 0)
            .count();
        assert!(
            busy > 1,
            "the replicas shared the work: {busy} of {replicas} took frames"
        );
    }
    assert_eq!(
        adapter.pending(),
        0,
        "the spool is empty once the bus has everything"
    );
    assert!(
        drain(&bus, StreamKind::Dead, 1, Duration::from_millis(300))
            .await
            .is_empty()
    );
    let (stored, messages) = raw_frames_stored(&checker, n).await;
    assert_eq!(stored, n, "the raw stream holds every frame once");
    if bundle > 1 {
        assert!(
            messages < n && messages >= n.div_ceil(bundle),
            "{n} frames went in {messages} bundles of up to {bundle}"
        );
    } else {
        assert_eq!(messages, n, "a message per frame");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn integration_ingest_nats_exact_counts() {
    let bus = nats_bus(&ami_e2e::nats::shared_url(), "exact").await;
    run_exact(Bus::Nats(bus.clone()), 1, 40, 10, 1).await;
    assert_eq!(bus.stream_messages(StreamKind::Raw).await.unwrap(), 400);
    bus.delete_streams().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn integration_ingest_nats_bundles_exact_counts() {
    let bus = nats_bus(&ami_e2e::nats::shared_url(), "bundles").await;
    run_exact(Bus::Nats(bus.clone()), 2, 60, 10, 16).await;
    bus.delete_streams().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn integration_ingest_nats_two_replicas_share_the_work() {
    let bus = nats_bus(&ami_e2e::nats::shared_url(), "replicas").await;
    run_exact(Bus::Nats(bus.clone()), 2, 100, 12, 1).await;
    bus.delete_streams().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn integration_ingest_local_bus_exact_counts() {
    // Six batches of 200: more than one replica can hold in flight, so both take frames.
    run_exact(local_bus("local"), 2, 60, 20, 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn integration_ingest_local_bus_bundles_exact_counts() {
    run_exact(local_bus("local-bundles"), 1, 60, 10, 32).await;
}

/// Frames that cannot be decoded land in dead letters with their reason and the plugin's
/// version, while good frames around them are decoded.
async fn run_poison(bus: Bus, bundle: usize) {
    let dir = tempfile::tempdir().unwrap();
    let host = dsmr_host(dir.path());
    let adapter = adapter("p1-poison", &dir.path().join("spool"), bundle);
    let (good, _) = telegrams(20, 3);
    let mut bad_crc = good[0].clone();
    let mut text = String::from_utf8(bad_crc.data.to_vec()).unwrap();
    text = text.replacen("1-0:1.8.1(", "1-0:1.8.1(9", 1);
    bad_crc.data = Bytes::from(text.into_bytes());
    let garbage = SpoolFrame {
        data: Bytes::from_static(b"\x00\xffnot a telegram"),
        ..good[1].clone()
    };
    let unknown = SpoolFrame {
        protocol: "ansi-c12.99".into(),
        ..good[2].clone()
    };
    let mut frames = good.clone();
    frames.insert(5, bad_crc);
    frames.insert(17, garbage);
    frames.insert(33, unknown);
    let running = start(&bus, &adapter, &host, 1);
    adapter.accept(frames).unwrap();
    let readings = drain(
        &bus,
        StreamKind::Readings,
        good.len(),
        Duration::from_secs(30),
    )
    .await;
    let dead = drain(&bus, StreamKind::Dead, 3, Duration::from_secs(10)).await;
    running.shutdown().await;
    assert_eq!(readings.len(), good.len(), "every good frame decoded");
    assert_eq!(dead.len(), 3, "each bad frame dead-lettered once");
    let mut kinds: Vec<(String, String, Option<String>)> = dead
        .iter()
        .map(|d| {
            let h = &d.message.headers;
            (
                h.get(header::DEAD_KIND).unwrap().to_owned(),
                h.get(header::DEAD_REASON).unwrap().to_owned(),
                h.get(header::PLUGIN).map(str::to_owned),
            )
        })
        .collect();
    kinds.sort();
    assert_eq!(kinds[0].0, "decode");
    assert_eq!(kinds[1].0, "decode");
    assert_eq!(kinds[2].0, "no-decoder");
    assert!(kinds[2].1.contains("ansi-c12.99"), "{}", kinds[2].1);
    let reasons = format!("{} | {}", kinds[0].1, kinds[1].1);
    assert!(
        reasons.to_lowercase().contains("crc"),
        "a CRC mismatch is named: {reasons}"
    );
    assert!(
        kinds[0]
            .2
            .as_deref()
            .is_some_and(|p| p.starts_with("dsmr@")),
        "plugin version named"
    );
    // The frame itself is kept, byte for byte, alone under its own id (even out of a bundle).
    let garbage = dead
        .iter()
        .find(|d| d.message.payload.as_ref() == b"\x00\xffnot a telegram")
        .expect("the garbage frame's dead letter");
    let id = garbage.message.msg_id().unwrap();
    assert!(
        id.starts_with("p1-poison:") && id.ends_with(":dead") && !id.contains('+'),
        "{id}"
    );
    assert!(garbage.message.headers.get("Ami-Bundle").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn integration_ingest_nats_poison_frames_to_dead_letters() {
    let bus = nats_bus(&ami_e2e::nats::shared_url(), "poison").await;
    run_poison(Bus::Nats(bus.clone()), 1).await;
    bus.delete_streams().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn integration_ingest_nats_poison_frames_in_bundles_to_dead_letters() {
    let bus = nats_bus(&ami_e2e::nats::shared_url(), "poison-bundles").await;
    run_poison(Bus::Nats(bus.clone()), 8).await;
    bus.delete_streams().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn integration_ingest_local_poison_frames_to_dead_letters() {
    run_poison(local_bus("poison"), 1).await;
}
