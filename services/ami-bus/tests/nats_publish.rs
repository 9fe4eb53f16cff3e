//! Publishing to a real nats-server with JetStream: a batch larger than the window of
//! outstanding acks flows through (the oldest acks are awaited first) and every message is
//! stored once; the same batch again is all duplicates.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::time::Duration;

use ami_bus::{Headers, Message, NatsBus, StreamKind, StreamSettings, Topology, header};
use bytes::Bytes;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_larger_than_the_ack_window_is_stored_once() {
    let root = format!("buspub{}", std::process::id());
    let bus = NatsBus::connect("nats://127.0.0.1:4222", Topology::new(&root), 16)
        .await
        .unwrap();
    bus.ensure_streams(&StreamSettings::default())
        .await
        .unwrap();
    let batch = || -> Vec<Message> {
        (0..500)
            .map(|i| Message {
                subject: bus.topology().readings(&format!("m{i}")),
                headers: Headers::new().with(header::MSG_ID, format!("pub-{i}")),
                payload: Bytes::from(format!("{{\"n\":{i}}}")),
            })
            .collect()
    };
    let report = tokio::time::timeout(Duration::from_secs(30), bus.publish_batch(batch()))
        .await
        .expect("the batch does not wait on itself")
        .unwrap();
    assert_eq!((report.stored, report.duplicates), (500, 0));
    let again = tokio::time::timeout(Duration::from_secs(30), bus.publish_batch(batch()))
        .await
        .expect("no deadlock")
        .unwrap();
    assert_eq!((again.stored, again.duplicates), (0, 500));
    assert_eq!(
        bus.stream_messages(StreamKind::Readings).await.unwrap(),
        500
    );
    bus.delete_streams().await.unwrap();
}
