//! Readings from NATS into the store: exact counts, acknowledgement after commit, dead letters
//! for what the store cannot take, and idempotence under redelivery.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use ami_bus::{Bus, ConsumerSettings, Message, StreamKind, header};
use ami_e2e::pg::TestDb;
use ami_mdms::ReadingsConsumer;
use ami_mdms_store::{AnyStore, Catalog, MeterDataStore, Span, View};
use bytes::Bytes;
use tokio::sync::watch;

use crate::{DAY0, IMPORT, QUARTER, nats_bus, readings_message};

/// 20 meters x 96 quarter-hours, one message per meter and 8 intervals (12 per meter).
fn day_of_messages(topology: &ami_bus::Topology) -> Vec<Message> {
    let mut out = Vec::new();
    for m in 0..20 {
        let meter = format!("mdms-{m:02}");
        for block in 0..12 {
            let values: Vec<(i64, i64)> = (0..8)
                .map(|i| {
                    let n = block * 8 + i + 1;
                    (DAY0 + n * QUARTER, 100 + m * 10 + n)
                })
                .collect();
            out.push(
                readings_message(&format!("f-{m}-{block}"), &meter, &values)
                    .to_message(topology, None),
            );
        }
    }
    out
}

async fn run_until(consumer: Arc<ReadingsConsumer>, want_messages: u64) {
    let (stop, rx) = watch::channel(false);
    let stats = consumer.stats();
    let task = {
        let c = Arc::clone(&consumer);
        tokio::spawn(async move { c.run(rx).await })
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while stats.messages.load(Ordering::Relaxed) < want_messages && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.send(true).unwrap();
    task.await.unwrap().unwrap();
    assert_eq!(
        stats.messages.load(Ordering::Relaxed),
        want_messages,
        "messages settled"
    );
}

async fn readings_flow_into(url: &str) {
    let bus = nats_bus("mdms-flow").await;
    let topology = bus.topology().clone();
    let mut msgs = day_of_messages(&topology);
    // Two the MDMS cannot take: not JSON, and a reading stamped before 1970.
    msgs.push(Message {
        subject: topology.readings("mdms-00"),
        headers: ami_bus::Headers::new().with(header::MSG_ID, "junk-1"),
        payload: Bytes::from_static(b"{not json"),
    });
    msgs.push(
        readings_message("f-bad-ts", "mdms-00", &[(-QUARTER, 5)]).to_message(&topology, None),
    );
    let total = msgs.len() as u64;
    bus.publish_batch(msgs).await.unwrap();

    let store = Arc::new(AnyStore::open(url, 4).await.unwrap());
    store.migrate().await.unwrap();
    let consumer = Arc::new(ReadingsConsumer::new(
        bus.clone(),
        Arc::clone(&store),
        "mdms-test",
        100,
    ));
    run_until(Arc::clone(&consumer), total).await;
    let stats = consumer.stats();
    assert_eq!(stats.readings.load(Ordering::Relaxed), 20 * 96);
    assert_eq!(stats.inserted.load(Ordering::Relaxed), 20 * 96);
    assert_eq!(stats.dead.load(Ordering::Relaxed), 2);

    // Every interval of every meter is stored with its value.
    let day = Span::new(DAY0, DAY0 + 96 * QUARTER);
    for m in 0..20i64 {
        let rows = store
            .readings(&format!("mdms-{m:02}"), IMPORT, day, View::Raw)
            .await
            .unwrap();
        assert_eq!(rows.len(), 96, "meter {m}");
        assert_eq!(rows[9].value.mantissa, 100 + m * 10 + 10);
    }
    assert_eq!(
        store.meters().await.unwrap().len(),
        20,
        "meters seen are in the catalog"
    );

    // The dead letters say why.
    let dead = bus
        .consumer(StreamKind::Dead, &ConsumerSettings::new("dead-check"))
        .await
        .unwrap()
        .fetch(10, Duration::from_secs(2))
        .await
        .unwrap();
    let mut kinds: Vec<(String, String)> = dead
        .iter()
        .map(|d| {
            let h = &d.message.headers;
            (
                h.get(header::DEAD_KIND).unwrap().to_owned(),
                h.get(header::DEAD_REASON).unwrap().to_owned(),
            )
        })
        .collect();
    kinds.sort();
    assert_eq!(kinds.len(), 2, "{kinds:?}");
    assert_eq!(kinds[0].0, "envelope");
    assert!(kinds[0].1.contains("not a readings message"), "{kinds:?}");
    assert_eq!(kinds[1].0, "refused");
    assert!(kinds[1].1.contains("timestamp"), "{kinds:?}");

    // The same readings again under new message ids (a replayed adapter spool): stored once.
    let again: Vec<Message> = day_of_messages(&topology)
        .into_iter()
        .map(|mut m| {
            let id = format!("{}-replay", m.msg_id().unwrap());
            m.headers.insert(header::MSG_ID, id);
            m
        })
        .collect();
    bus.publish_batch(again).await.unwrap();
    let replay = Arc::new(ReadingsConsumer::new(
        bus.clone(),
        Arc::clone(&store),
        "mdms-test",
        100,
    ));
    run_until(Arc::clone(&replay), 240).await;
    assert_eq!(replay.stats().duplicates.load(Ordering::Relaxed), 20 * 96);
    assert_eq!(replay.stats().inserted.load(Ordering::Relaxed), 0);
    if let Bus::Nats(n) = &bus {
        n.delete_streams().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn integration_mdms_readings_from_nats_into_postgres() {
    let db = TestDb::create("mdms_flow").await;
    readings_flow_into(&db.url()).await;
    db.drop_now().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn integration_mdms_readings_from_nats_into_the_embedded_store() {
    let dir = tempfile::tempdir().unwrap();
    readings_flow_into(&format!("sqlite:{}", dir.path().join("mdms.db").display())).await;
}

/// A store that is down: nothing is acknowledged, and once it is back every message is
/// stored (redelivered by JetStream after the ack wait).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn integration_mdms_store_outage_loses_nothing() {
    let bus = nats_bus("mdms-outage").await;
    let topology = bus.topology().clone();
    bus.publish_batch(day_of_messages(&topology)).await.unwrap();
    let db = TestDb::create("mdms_outage").await;
    let store = Arc::new(AnyStore::open(&db.url(), 2).await.unwrap());
    store.migrate().await.unwrap();
    // Take the store away under the consumer: its tables vanish, every batch fails.
    if let AnyStore::Postgres(pg) = store.as_ref() {
        sqlx::query("ALTER TABLE interval_reading RENAME TO interval_reading_away")
            .execute(pg.pool())
            .await
            .unwrap();
    }
    let consumer = Arc::new(
        ReadingsConsumer::new(bus.clone(), Arc::clone(&store), "mdms-outage", 100)
            .with_ack_wait(Duration::from_secs(2)),
    );
    let (stop, rx) = watch::channel(false);
    let task = {
        let c = Arc::clone(&consumer);
        tokio::spawn(async move { c.run(rx).await })
    };
    tokio::time::sleep(Duration::from_secs(2)).await;
    let stats = consumer.stats();
    assert_eq!(
        stats.messages.load(Ordering::Relaxed),
        0,
        "nothing acknowledged while the store is down"
    );
    assert!(stats.store_errors.load(Ordering::Relaxed) > 0);
    if let AnyStore::Postgres(pg) = store.as_ref() {
        sqlx::query("ALTER TABLE interval_reading_away RENAME TO interval_reading")
            .execute(pg.pool())
            .await
            .unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while stats.messages.load(Ordering::Relaxed) < 240 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop.send(true).unwrap();
    task.await.unwrap().unwrap();
    let day = Span::new(DAY0, DAY0 + 96 * QUARTER);
    for m in 0..20 {
        let rows = store
            .readings(&format!("mdms-{m:02}"), IMPORT, day, View::Raw)
            .await
            .unwrap();
        assert_eq!(rows.len(), 96, "meter {m} complete after the outage");
    }
    if let Bus::Nats(n) = &bus {
        n.delete_streams().await.unwrap();
    }
    if let AnyStore::Postgres(pg) = store.as_ref() {
        pg.close().await;
    }
    db.drop_now().await;
}
