//! Every protocol's frames decode with ami's decoder crates into the values the simulated
//! meter holds: energy registers, power, the active tariff, the meter's (drifting) clock,
//! its name and firmware; ciphered frames decode only with the meter's own keys, served by
//! ami-crypto's `CryptoCtx` over a `MemoryKeyStore`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use ami_domain::{DecodeError, EventKind, Unit};
use ami_sim::{
    DlmsFraming, Fleet, FleetConfig, Protocol, ProtocolMix, SimEvent, SimEventKind, UplinkKind,
};
use support::*;

#[test]
fn dsmr_telegram_carries_the_registers() {
    let mut fleet = calm(Protocol::Dsmr, 3);
    let ts = run(&mut fleet, 8);
    for m in &fleet.meters {
        let d = decoded(&fleet, m, ts);
        let hex_id: String = m.id.bytes().map(|b| format!("{b:02X}")).collect();
        assert_eq!(d.meter.as_deref(), Some(hex_id.as_str()));
        assert_reading(&d, "1-0:1.8.1", m.import_wh[0] as i64, Unit::WattHour);
        assert_reading(&d, "1-0:1.8.2", m.import_wh[1] as i64, Unit::WattHour);
        assert_reading(&d, "1-0:2.8.1", m.export_wh[0] as i64, Unit::WattHour);
        assert_reading(&d, "1-0:2.8.2", m.export_wh[1] as i64, Unit::WattHour);
        assert_reading(&d, "1-0:1.7.0", m.power_w.0 as i64, Unit::Watt);
        assert_reading(&d, "1-0:2.7.0", m.power_w.1 as i64, Unit::Watt);
        assert!(m.power_w.0 > 0);
        assert_eq!(tariff(m, &d), "2");
        assert_eq!(attribute(&d, "1-0:0.2.0"), ami_sim::fleet::FACTORY_FIRMWARE);
        // Stamped by the meter's clock, to the second.
        let clock = m.clock_ms(ts).div_euclid(1000) * 1000;
        assert_eq!(reading(&d, "1-0:1.8.1").ts_ms, clock);
    }
}

#[test]
fn dlms_push_ciphered_with_the_meters_keys_carries_the_registers() {
    let mut fleet = calm(Protocol::Dlms, 3);
    let ts = run(&mut fleet, 8);
    for m in &fleet.meters {
        assert!(m.keys.encryption.is_some() && m.keys.authentication.is_some());
        let frame = ami_sim::frame(m, ts);
        assert_eq!(frame.first(), Some(&0x7E), "HDLC");
        let d = decode(m, &frame, ts, &mut keys(&fleet)).expect("decodes");
        assert_eq!(d.meter.as_deref(), Some(m.id.as_str()));
        assert_eq!(
            m.system_title().map(|st| st[..3].to_vec()),
            Some(b"AMI".to_vec())
        );
        let (imp, exp) = totals(m);
        assert_reading(&d, "1-0:1.8.0", imp, Unit::WattHour);
        assert_reading(&d, "1-0:1.8.1", m.import_wh[0] as i64, Unit::WattHour);
        assert_reading(&d, "1-0:1.8.2", m.import_wh[1] as i64, Unit::WattHour);
        assert_reading(&d, "1-0:2.8.0", exp, Unit::WattHour);
        assert_reading(&d, "1-0:1.7.0", m.power_w.0 as i64, Unit::Watt);
        assert_reading(&d, "1-0:2.7.0", m.power_w.1 as i64, Unit::Watt);
        assert_eq!(reading(&d, "1-0:32.7.0").unit, Unit::Volt);
        assert_eq!(tariff(m, &d), "2");
        assert_eq!(attribute(&d, "1-0:0.2.0"), ami_sim::fleet::FACTORY_FIRMWARE);
        // The meter's clock, to the hundredth of a second.
        let clock = m.clock_ms(ts).div_euclid(10) * 10;
        assert_eq!(reading(&d, "1-0:1.8.0").ts_ms, clock);
    }
}

#[test]
fn dlms_push_needs_the_right_key() {
    let mut fleet = calm(Protocol::Dlms, 2);
    let ts = run(&mut fleet, 2);
    let (a, b) = (&fleet.meters[0], &fleet.meters[1]);
    let frame = ami_sim::frame(a, ts);
    // The other meter's keys under this meter's name: the tag does not verify.
    let store = ami_crypto::MemoryKeyStore::new();
    for (_, role, key) in b.key_entries() {
        store.insert(&a.id, role, key);
    }
    let mut wrong = ami_crypto::CryptoCtx::new(std::sync::Arc::new(store));
    let got = ami_dlms::decode(&frame, ts, &mut wrong);
    assert!(
        matches!(got, Err(DecodeError::Authentication(_))),
        "{got:?}"
    );
    let got = ami_dlms::decode(&frame, ts, &mut ami_domain::crypto::NoKeys);
    assert!(
        matches!(&got, Err(DecodeError::MissingKey(m)) if m.contains(&a.id)),
        "{got:?}"
    );
}

#[test]
fn dlms_wrapper_and_plaintext_pushes_decode() {
    let cfg = FleetConfig {
        meters: 2,
        mix: ProtocolMix::only(Protocol::Dlms),
        dlms_framing: DlmsFraming::Wrapper,
        dlms_ciphered: false,
        ..FleetConfig::default()
    };
    let mut fleet = Fleet::with_config(&cfg).expect("config");
    let ts = run(&mut fleet, 3);
    for m in &fleet.meters {
        assert_eq!(m.keys, ami_sim::MeterKeys::default());
        let frame = ami_sim::frame(m, ts);
        assert_eq!(&frame[..2], &[0x00, 0x01], "wrapper");
        let d = ami_dlms::decode(&frame, ts, &mut ami_domain::crypto::NoKeys).expect("decodes");
        // Without ciphering the meter is named by its equipment identifier.
        assert_eq!(d.meter.as_deref(), Some(m.id.as_str()));
        assert_reading(&d, "1-0:1.8.0", totals(m).0, Unit::WattHour);
    }
}

#[test]
fn wmbus_mode5_telegram_carries_the_registers() {
    let mut fleet = calm(Protocol::WirelessMbus, 3);
    let ts = run(&mut fleet, 8);
    for m in &fleet.meters {
        assert!(m.keys.encryption.is_some());
        assert!(m.id.starts_with("AMI-"), "{}", m.id);
        let d = decoded(&fleet, m, ts);
        assert_eq!(d.meter.as_deref(), Some(m.id.as_str()));
        let (imp, exp) = totals(m);
        assert_reading(&d, "1-0:1.8.0", imp, Unit::WattHour);
        assert_reading(&d, "1-0:1.8.1", m.import_wh[0] as i64, Unit::WattHour);
        assert_reading(&d, "1-0:1.8.2", m.import_wh[1] as i64, Unit::WattHour);
        assert_reading(&d, "1-0:2.8.0", exp, Unit::WattHour);
        assert_reading(&d, "1-0:2.8.1", m.export_wh[0] as i64, Unit::WattHour);
        assert_reading(
            &d,
            "1-0:1.7.0",
            m.power_w.0 as i64 - m.power_w.1 as i64,
            Unit::Watt,
        );
        assert_eq!(tariff(m, &d), "2");
        assert_eq!(attribute(&d, "1-0:0.2.0"), ami_sim::fleet::FACTORY_FIRMWARE);
        // Stamped by the meter's clock (type F: minutes).
        let clock = m.clock_ms(ts).div_euclid(60_000) * 60_000;
        assert_eq!(reading(&d, "1-0:1.8.0").ts_ms, clock);
    }
}

#[test]
fn wmbus_telegram_needs_the_right_key() {
    let mut fleet = calm(Protocol::WirelessMbus, 2);
    let ts = run(&mut fleet, 2);
    let (a, b) = (&fleet.meters[0], &fleet.meters[1]);
    let frame = ami_sim::frame(a, ts);
    let store = ami_crypto::MemoryKeyStore::new();
    for (_, role, key) in b.key_entries() {
        store.insert(&a.id, role, key);
    }
    let mut wrong = ami_crypto::CryptoCtx::new(std::sync::Arc::new(store));
    let got = ami_mbus::decode(&frame, ts, &mut wrong);
    assert!(
        matches!(got, Err(DecodeError::Authentication(_))),
        "{got:?}"
    );
    let got = ami_mbus::decode(&frame, ts, &mut ami_domain::crypto::NoKeys);
    assert!(
        matches!(&got, Err(DecodeError::MissingKey(m)) if m.contains(&a.id)),
        "{got:?}"
    );
}

#[test]
fn wmbus_plaintext_telegram_decodes_without_keys() {
    let cfg = FleetConfig {
        meters: 2,
        mix: ProtocolMix::only(Protocol::WirelessMbus),
        wmbus_encrypted: false,
        ..FleetConfig::default()
    };
    let mut fleet = Fleet::with_config(&cfg).expect("config");
    let ts = run(&mut fleet, 3);
    for m in &fleet.meters {
        assert!(m.key_entries().is_empty());
        let frame = ami_sim::frame(m, ts);
        let d = ami_mbus::decode(&frame, ts, &mut ami_domain::crypto::NoKeys).expect("decodes");
        assert_eq!(d.meter.as_deref(), Some(m.id.as_str()));
        assert_reading(&d, "1-0:1.8.0", totals(m).0, Unit::WattHour);
    }
}

#[test]
fn iec62056_21_readout_carries_the_registers() {
    let mut fleet = calm(Protocol::Iec62056_21, 3);
    let ts = run(&mut fleet, 8);
    for m in &fleet.meters {
        let frame = ami_sim::frame(m, ts);
        let r = ami_iec62056_21::parse(&frame).expect("parses");
        assert!(r.framed);
        assert!(matches!(r.checksum, ami_iec62056_21::Checksum::Bcc(_)));
        let d = decoded(&fleet, m, ts);
        assert_eq!(d.meter.as_deref(), Some(m.id.as_str()));
        let (imp, exp) = totals(m);
        assert_reading(&d, "1-0:1.8.0", imp, Unit::WattHour);
        assert_reading(&d, "1-0:1.8.1", m.import_wh[0] as i64, Unit::WattHour);
        assert_reading(&d, "1-0:1.8.2", m.import_wh[1] as i64, Unit::WattHour);
        assert_reading(&d, "1-0:2.8.0", exp, Unit::WattHour);
        assert_reading(&d, "1-0:1.7.0", m.power_w.0 as i64, Unit::Watt);
        assert_eq!(tariff(m, &d), "2");
        assert_eq!(attribute(&d, "1-0:0.2.0"), ami_sim::fleet::FACTORY_FIRMWARE);
        assert_eq!(attribute(&d, "1-0:96.3.10"), "1");
        // The meter's clock in local time (CEST in July).
        let local = m.clock_ms(ts).div_euclid(1000) + 7200;
        let (h, mi, s) = (local / 3600 % 24, local / 60 % 60, local % 60);
        assert_eq!(attribute(&d, "1-0:0.9.1"), format!("{h:02}:{mi:02}:{s:02}"));
        assert_eq!(attribute(&d, "1-0:0.9.2"), "230703");
    }
}

#[test]
fn a_mixed_faulty_fleet_sends_only_frames_that_decode() {
    let cfg = FleetConfig {
        meters: 24,
        seed: 99,
        outages_per_day: 3.0,
        tampers_per_day: 1.0,
        gap_probability: 0.05,
        spike_probability: 0.05,
        pv_share: 0.5,
        ev_share: 0.5,
        ..FleetConfig::default()
    };
    let mut fleet = Fleet::with_config(&cfg).expect("config");
    let mut crypto = keys(&fleet);
    let mut per_protocol = std::collections::HashMap::new();
    let mut events = 0;
    for i in 1..=96 {
        let ts = T0 + i * STEP;
        let tick = fleet.tick(ts, STEP);
        events += tick.events.len();
        for u in &tick.uplinks {
            let m = fleet.meter(&u.meter_id).expect("meter");
            let d = decode(m, &u.bytes, ts, &mut crypto)
                .unwrap_or_else(|e| panic!("{} {:?}: {e}", u.meter_id, u.kind));
            if u.kind == UplinkKind::Periodic {
                assert!(!d.readings.is_empty(), "{}", u.meter_id);
            } else {
                assert!(!d.events.is_empty(), "{}", u.meter_id);
            }
            *per_protocol.entry(u.protocol).or_insert(0) += 1;
        }
    }
    assert_eq!(per_protocol.len(), 4, "{per_protocol:?}");
    assert!(events > 0);
}

#[test]
fn event_frames_decode_to_their_events() {
    for protocol in [Protocol::Dlms, Protocol::WirelessMbus] {
        let fleet = calm(protocol, 1);
        let m = &fleet.meters[0];
        let mut crypto = keys(&fleet);
        let ts = T0;
        let event = |kind| SimEvent {
            meter_id: m.id.clone(),
            ts_ms: ts,
            kind,
        };
        for (kind, dlms, mbus) in [
            (SimEventKind::LastGasp, EventKind::PowerDown, 1),
            (
                SimEventKind::PowerRestored { outage_s: 60 },
                EventKind::PowerUp,
                2,
            ),
            (
                SimEventKind::Tamper(ami_sim::TamperKind::CoverOpen),
                EventKind::CoverOpen,
                0x10,
            ),
        ] {
            let frame = ami_sim::event_frame(m, &event(kind)).expect("an event frame");
            let d = decode(m, &frame, ts, &mut crypto).expect("decodes");
            let e = d.events.first().expect("an event");
            match protocol {
                Protocol::Dlms => {
                    assert_eq!(e.kind, dlms);
                    assert_eq!(e.ts_ms, m.clock_ms(ts).div_euclid(10) * 10);
                }
                _ => assert_eq!((e.kind, e.code), (EventKind::Alarm, mbus)),
            }
        }
        // Spikes are no meter event.
        assert_eq!(
            ami_sim::event_frame(m, &event(SimEventKind::LoadSpike { w: 3000 })),
            None
        );
    }
}

#[test]
fn dsmr_fleet_of_ami_up_is_unchanged_in_shape() {
    // `ami up` builds `Fleet::new(n)`, steps it and renders `dsmr::telegram`.
    let mut fleet = Fleet::new(8);
    fleet.step(T0, 10_000);
    for m in &fleet.meters {
        assert_eq!(m.protocol, Protocol::Dsmr);
        let t = ami_sim::dsmr::telegram(m, T0);
        let d = ami_dsmr::decode(t.as_bytes(), T0).expect("decodes");
        assert_reading(&d, "1-0:1.8.2", m.import_wh[1] as i64, Unit::WattHour);
        // No drift in the calm fleet: the telegram time is the true time.
        assert_eq!(reading(&d, "1-0:1.8.2").ts_ms, T0);
    }
    assert_eq!(fleet.meters.iter().filter(|m| m.pv_peak_w > 0.0).count(), 2);
}
