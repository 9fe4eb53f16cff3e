//! Shared by the tests: the simulator's fleets, and an adapter forwarding into the
//! in-process bus.

#![allow(dead_code)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use ami_adapter::{Adapter, AdapterConfig};
use ami_bus::{Bus, LocalBus, Message, StreamKind, Topology};
use ami_sim::{Fleet, FleetConfig, Protocol, ProtocolMix};

pub use ami_serial_readers::testing::Pty;

/// A calm fleet of `n` meters of one protocol, seed 7.
pub fn fleet(protocol: Protocol, n: usize) -> Fleet {
    Fleet::with_config(&FleetConfig {
        meters: n,
        seed: 7,
        mix: ProtocolMix::only(protocol),
        pv_share: 0.0,
        ev_share: 0.0,
        gap_probability: 0.0,
        spike_probability: 0.0,
        outages_per_day: 0.0,
        tampers_per_day: 0.0,
        ..FleetConfig::default()
    })
    .expect("fleet")
}

/// 2023-07-03 08:00 UTC.
pub const T0: i64 = 1_688_371_200_000;

/// An adapter named `name` with its spool in `dir`.
pub fn adapter(name: &str, dir: &std::path::Path) -> Adapter {
    Adapter::open(AdapterConfig::new(name), dir).expect("adapter")
}

/// The in-process bus under root `root`.
pub fn local_bus(root: &str) -> Arc<LocalBus> {
    Arc::new(LocalBus::new(Topology::new(root), 10_000))
}

/// Forwards what `adapter` holds to `bus` until the spool is empty; returns every raw
/// message the bus then has.
pub async fn forward_all(adapter: &Adapter, bus: &Arc<LocalBus>) -> Vec<Message> {
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let fwd = {
        let a = adapter.clone();
        let b = Bus::Local(Arc::clone(bus));
        tokio::spawn(async move { a.forward(b, stop_rx).await })
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while adapter.pending() > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let _ = stop_tx.send(true);
    fwd.await.expect("forwarder");
    let consumer = bus
        .consumer(StreamKind::Raw, "test", None)
        .expect("consumer");
    let mut out = Vec::new();
    loop {
        let batch = consumer
            .fetch(1000, Duration::from_millis(100))
            .await
            .expect("fetch");
        if batch.is_empty() {
            break;
        }
        out.extend(batch.into_iter().map(|d| d.message));
    }
    out
}
