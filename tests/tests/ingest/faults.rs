//! Faults, each on a private nats-server: the broker killed and restarted mid-stream, and an
//! adapter cut off from NATS (and restarted itself) while frames keep coming. After recovery
//! nothing is lost and nothing is stored twice.

use super::*;
use ami_e2e::nats::PrivateNats;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn integration_ingest_nats_restart_mid_stream_loses_nothing() {
    restart_mid_stream(1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn integration_ingest_nats_restart_mid_stream_with_bundles_loses_nothing() {
    restart_mid_stream(16).await;
}

async fn restart_mid_stream(bundle: usize) {
    let mut server = PrivateNats::start();
    let dir = tempfile::tempdir().unwrap();
    let host = dsmr_host(dir.path());
    let nats = nats_bus(&server.url(), "restart").await;
    let bus = Bus::Nats(nats.clone());
    let adapter = adapter("p1-restart", &dir.path().join("spool"), bundle);
    let (frames, expected_readings) = telegrams(50, 8);
    let n = frames.len();
    let (first, second) = frames.split_at(n / 2);
    let running = start(&bus, &adapter, &host, 1);
    adapter.accept(first.to_vec()).unwrap();
    let stats = Arc::clone(&running.stats[0]);
    assert!(
        eventually(Duration::from_secs(20), || stats
            .decoded
            .load(std::sync::atomic::Ordering::Relaxed)
            > 0)
        .await,
        "frames flow before the restart"
    );
    server.stop();
    // Frames keep arriving while the broker is down: they wait in the spool.
    for chunk in second.chunks(50) {
        adapter.accept(chunk.to_vec()).unwrap();
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        adapter.pending() > 0,
        "the spool holds frames while the broker is down"
    );
    server.restart();
    let got = drain(&bus, StreamKind::Readings, n, Duration::from_secs(40)).await;
    running.shutdown().await;
    let c = check_readings(&got);
    assert_eq!(c.frames.len(), n, "no frame lost");
    assert_eq!(c.messages, n, "no frame stored twice");
    assert_eq!(c.readings, expected_readings);
    assert_eq!(adapter.pending(), 0);
    let messages = nats.stream_messages(StreamKind::Raw).await.unwrap() as usize;
    let checker = raw_checker(&bus).await;
    assert_eq!(raw_frames_stored(&checker, messages).await, (n, messages));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn integration_ingest_adapter_cut_off_and_restarted_loses_nothing() {
    cut_off_and_restarted(1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn integration_ingest_adapter_with_bundles_cut_off_and_restarted_loses_nothing() {
    cut_off_and_restarted(16).await;
}

async fn cut_off_and_restarted(bundle: usize) {
    let mut server = PrivateNats::start();
    let dir = tempfile::tempdir().unwrap();
    let spool = dir.path().join("spool");
    let host = dsmr_host(dir.path());
    let nats = nats_bus(&server.url(), "cut").await;
    let topology = nats.topology().clone();
    let host_bus = Bus::Nats(nats.clone());
    let (frames, expected_readings) = telegrams(40, 6);
    let n = frames.len();
    let (a, rest) = frames.split_at(n / 3);
    let (b, c) = rest.split_at(n / 3);

    // The adapter runs with its own connection.
    let adapter_bus = Bus::Nats(
        NatsBus::connect(&server.url(), topology.clone(), 1024)
            .await
            .unwrap(),
    );
    let adapter = adapter("p1-cut", &spool, bundle);
    let (stop_fwd, rx) = watch::channel(false);
    let fwd = {
        let (ad, bus) = (adapter.clone(), adapter_bus.clone());
        tokio::spawn(async move { ad.forward(bus, rx).await })
    };
    adapter.accept(a.to_vec()).unwrap();
    assert!(
        eventually(Duration::from_secs(20), || adapter.pending() == 0).await,
        "first third forwarded"
    );

    // The link to NATS goes down: frames are spooled.
    server.stop();
    adapter.accept(b.to_vec()).unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(adapter.pending(), b.len() as u64, "spooled while cut off");

    // The adapter itself restarts while cut off, and more frames come in.
    stop_fwd.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(20), fwd)
        .await
        .unwrap()
        .unwrap();
    drop(adapter);
    let adapter = super::adapter("p1-cut", &spool, bundle);
    assert_eq!(
        adapter.pending(),
        b.len() as u64,
        "the spool survived the restart"
    );
    adapter.accept(c.to_vec()).unwrap();

    // NATS comes back; the host starts consuming; the adapter forwards its backlog.
    server.restart();
    let adapter_bus = Bus::Nats(
        NatsBus::connect(&server.url(), topology, 1024)
            .await
            .unwrap(),
    );
    let running = start(&adapter_bus, &adapter, &host, 1);
    let got = drain(&host_bus, StreamKind::Readings, n, Duration::from_secs(40)).await;
    running.shutdown().await;
    let checked = check_readings(&got);
    assert_eq!(checked.frames.len(), n, "no frame lost");
    assert_eq!(checked.messages, n, "no frame stored twice");
    assert_eq!(checked.readings, expected_readings);
    assert_eq!(adapter.pending(), 0);
    let messages = nats.stream_messages(StreamKind::Raw).await.unwrap() as usize;
    let checker = raw_checker(&host_bus).await;
    assert_eq!(raw_frames_stored(&checker, messages).await, (n, messages));
}
