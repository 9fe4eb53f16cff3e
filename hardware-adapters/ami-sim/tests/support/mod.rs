//! Shared by the tests: calm fleets of one protocol, the decoders of the protocol crates
//! with the fleet's keys in ami-crypto's key store, and reading look-ups.

#![allow(dead_code)]

use std::sync::Arc;

use ami_crypto::{CryptoCtx, MemoryKeyStore};
use ami_domain::time::unix_ms;
use ami_domain::{DecodeError, Decoded, Obis, Quantity, Reading, Unit};
use ami_sim::{Fleet, FleetConfig, Meter, Protocol, ProtocolMix};

/// Monday 2023-07-03 10:00 CEST (tariff 2 by the Dutch table).
pub const T0: i64 = unix_ms(2023, 7, 3, 8, 0, 0);
/// A quarter of an hour.
pub const STEP: i64 = 15 * 60 * 1000;

/// A fleet of `n` meters of one protocol without random faults, PV or EV (the load of a
/// daytime household is then above zero), seed 7.
pub fn calm(protocol: Protocol, n: usize) -> Fleet {
    let cfg = FleetConfig {
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
    };
    Fleet::with_config(&cfg).expect("valid config")
}

/// Steps `fleet` `n` times from `T0`; returns the time of the last step.
pub fn run(fleet: &mut Fleet, n: i64) -> i64 {
    for i in 1..=n {
        fleet.step(T0 + i * STEP, STEP);
    }
    T0 + n * STEP
}

/// The key store of the whole fleet, behind the host's crypto context.
pub fn keys(fleet: &Fleet) -> CryptoCtx {
    let store = MemoryKeyStore::new();
    for (meter, role, key) in fleet.key_entries() {
        store.insert(&meter, role, key);
    }
    CryptoCtx::new(Arc::new(store))
}

/// Decodes a frame of `m` with the decoder crate of its protocol.
pub fn decode(
    m: &Meter,
    frame: &[u8],
    ts_ms: i64,
    crypto: &mut CryptoCtx,
) -> Result<Decoded, DecodeError> {
    match m.protocol {
        Protocol::Dsmr => ami_dsmr::decode(frame, ts_ms),
        Protocol::Dlms => ami_dlms::decode(frame, ts_ms, crypto),
        Protocol::WirelessMbus => ami_mbus::decode(frame, ts_ms, crypto),
        Protocol::Iec62056_21 => ami_iec62056_21::decode(frame, ts_ms),
    }
}

/// The reading of a register (`1-0:1.8.0`, F = 255 unless written).
pub fn reading<'d>(d: &'d Decoded, register: &str) -> &'d Reading {
    let o: Obis = register.parse().expect("obis");
    d.readings
        .iter()
        .find(|r| r.register == o)
        .unwrap_or_else(|| panic!("no reading {register} in {d:#?}"))
}

/// Asserts a reading's value and unit.
pub fn assert_reading(d: &Decoded, register: &str, value: i64, unit: Unit) {
    let r = reading(d, register);
    assert_eq!(
        (r.value, r.unit),
        (Quantity::new(value, 0), unit),
        "{register}: {:?}",
        r
    );
}

/// The attribute text of a register.
pub fn attribute<'d>(d: &'d Decoded, register: &str) -> &'d str {
    let o: Obis = register.parse().expect("obis");
    d.attributes
        .iter()
        .find(|(r, _)| *r == o)
        .map(|(_, t)| t.as_str())
        .unwrap_or_else(|| panic!("no attribute {register} in {d:#?}"))
}

/// The import and export energy totals, Wh.
pub fn totals(m: &Meter) -> (i64, i64) {
    (
        (m.import_wh[0] + m.import_wh[1]) as i64,
        (m.export_wh[0] + m.export_wh[1]) as i64,
    )
}

/// The import power the frame of `m` reports, W (M-Bus: the net power).
pub fn power(m: &Meter, d: &Decoded) -> Quantity {
    let _ = m;
    reading(d, "1-0:1.7.0").value
}

/// The active tariff the frame of `m` reports.
pub fn tariff(m: &Meter, d: &Decoded) -> String {
    match m.protocol {
        Protocol::Dsmr => attribute(d, "0-0:96.14.0")
            .trim_start_matches('0')
            .to_owned(),
        Protocol::Dlms => reading(d, "0-0:96.14.0").value.mantissa.to_string(),
        Protocol::WirelessMbus => reading(d, "1-0:96.14.0").value.mantissa.to_string(),
        Protocol::Iec62056_21 => attribute(d, "1-0:96.14.0").to_owned(),
    }
}

/// A frame of `m` at `ts_ms`, decoded.
pub fn decoded(fleet: &Fleet, m: &Meter, ts_ms: i64) -> Decoded {
    let frame = ami_sim::frame(m, ts_ms);
    decode(m, &frame, ts_ms, &mut keys(fleet)).unwrap_or_else(|e| panic!("{}: {e}", m.id))
}
