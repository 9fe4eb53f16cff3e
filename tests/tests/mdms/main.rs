//! End-to-end MDMS: readings from a real nats-server (JetStream) into PostgreSQL and the
//! embedded store, VEE through the standard rule pack component, bills through the standard
//! tariff component, and the `ami.mdms.v1` gRPC API (with a client that discovers it by
//! reflection).

#![allow(clippy::expect_used, clippy::panic, clippy::unwrap_used, missing_docs)]

mod api;
mod flow;
mod vee_billing;

use std::sync::Arc;

use ami_bus::{Bus, NatsBus, ReadingsMessage, StreamSettings, Topology, WireReading};
use ami_domain::Obis;
use ami_e2e::nats::{shared_url, unique_root};
use ami_mdms::Mdms;
use ami_mdms::vee::RuleSets;
use ami_mdms_store::{AnyStore, MeterDataStore};
use ami_plugin_host::{Host, MemoryKeyStore};

/// The register of the data sets: interval energy import, Wh.
pub const IMPORT: Obis = Obis::new(1, 0, 1, 8, 0, 255);
/// 2026-03-02T00:00:00Z, a Monday.
pub const DAY0: i64 = 1_772_409_600_000;
/// Fifteen minutes.
pub const QUARTER: i64 = 900_000;

/// A NATS bus with streams of a fresh root on the shared server.
pub async fn nats_bus(tag: &str) -> Bus {
    let bus = NatsBus::connect(&shared_url(), Topology::new(&unique_root(tag)), 4096)
        .await
        .expect("connect to NATS");
    bus.ensure_streams(&StreamSettings::default())
        .await
        .expect("create streams");
    Bus::Nats(bus)
}

/// The readings message of one meter's interval values (Wh at scale 0), as the host
/// publishes it.
pub fn readings_message(frame: &str, meter: &str, values: &[(i64, i64)]) -> ReadingsMessage {
    ReadingsMessage {
        frame: frame.into(),
        meter: meter.into(),
        protocol: "dlms".into(),
        decoder: "test@0".into(),
        received_at_ms: values.first().map(|v| v.0).unwrap_or_default(),
        readings: values
            .iter()
            .map(|&(ts_ms, wh)| WireReading {
                register: IMPORT.to_string(),
                value: wh,
                scale: 0,
                unit: ami_domain::Unit::WattHour as u8,
                ts_ms,
                quality: 0,
            })
            .collect(),
        attributes: Vec::new(),
    }
}

/// A plugin host with the shipped standard VEE rule pack and tariffs installed.
pub fn mdms_host(dir: &std::path::Path) -> Arc<Host> {
    let key = ami_e2e::vendor();
    let host = ami_e2e::host(&[&key], Arc::new(MemoryKeyStore::new()));
    for (crate_dir, crate_name) in [
        ("vee/standard", "ami-vee-standard"),
        ("tariffs/standard", "ami-tariff-standard"),
    ] {
        let pkg = ami_e2e::shipped_package(dir, crate_dir, crate_name, &key);
        host.install_dir(&pkg).expect("install component");
    }
    Arc::new(host)
}

/// An MDMS over a migrated store at `url` with the standard rule sets.
pub async fn mdms(url: &str, host: Arc<Host>) -> Arc<Mdms> {
    let store = Arc::new(AnyStore::open(url, 4).await.expect("open store"));
    store.migrate().await.expect("migrate");
    Arc::new(Mdms::new(store, host, RuleSets::standard(), 28))
}
