//! Faults and determinism: an outage sends its last gasp, goes dark and is restored (with
//! the protocol's own evidence: DLMS event notifications, M-Bus alarms, DSMR's power failure
//! log); gaps skip a report; tamper shows; the same seed gives the same frames.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use ami_domain::EventKind;
use ami_sim::{Fleet, FleetConfig, Protocol, ProtocolMix, SimEventKind, Tick, UplinkKind};
use support::*;

fn outage_fleet(protocol: Protocol) -> Fleet {
    let cfg = FleetConfig {
        meters: 3,
        seed: 5,
        mix: ProtocolMix::only(protocol),
        outages_per_day: 30.0,
        gap_probability: 0.0,
        spike_probability: 0.0,
        tampers_per_day: 0.0,
        ..FleetConfig::default()
    };
    Fleet::with_config(&cfg).expect("config")
}

/// Ticks a minute at a time until `want` restores happened; returns the ticks.
fn ticks_until_restores(fleet: &mut Fleet, want: usize) -> Vec<(i64, Tick)> {
    let step = 60_000;
    let mut out = Vec::new();
    let mut restores = 0;
    for i in 1..=20_000 {
        let ts = T0 + i * step;
        let t = fleet.tick(ts, step);
        restores += t
            .events
            .iter()
            .filter(|e| matches!(e.kind, SimEventKind::PowerRestored { .. }))
            .count();
        out.push((ts, t));
        if restores >= want {
            return out;
        }
    }
    panic!("fewer than {want} restores");
}

#[test]
fn an_outage_sends_last_gasp_goes_dark_and_restores() {
    for protocol in Protocol::ALL {
        let mut fleet = outage_fleet(protocol);
        let mut crypto = keys(&fleet);
        let ticks = ticks_until_restores(&mut fleet, 6);
        for m in &fleet.meters {
            // The meter's events in order: last gasp, restore, last gasp, restore, ...
            let mut dark = false;
            let mut gasp_at = 0;
            for (ts, t) in &ticks {
                for e in t.events.iter().filter(|e| e.meter_id == m.id) {
                    match &e.kind {
                        SimEventKind::LastGasp => {
                            assert!(!dark, "{protocol:?} {}: two last gasps", m.id);
                            dark = true;
                            gasp_at = e.ts_ms;
                        }
                        SimEventKind::PowerRestored { outage_s } => {
                            assert!(dark, "{protocol:?} {}: restore without last gasp", m.id);
                            dark = false;
                            assert_eq!(i64::from(*outage_s), (e.ts_ms - gasp_at) / 1000);
                        }
                        _ => {}
                    }
                }
                let sent = t
                    .uplinks
                    .iter()
                    .any(|u| u.meter_id == m.id && u.kind == UplinkKind::Periodic);
                assert_eq!(
                    sent, !dark,
                    "{protocol:?} {} at {ts}: reports only when powered",
                    m.id
                );
                // The event frames decode to the events, in order.
                let kinds: Vec<EventKind> = t
                    .uplinks
                    .iter()
                    .filter(|u| u.meter_id == m.id && u.kind == UplinkKind::Event)
                    .flat_map(|u| {
                        decode(m, &u.bytes, *ts, &mut crypto)
                            .expect("decodes")
                            .events
                    })
                    .map(|e| e.kind)
                    .collect();
                let want: Vec<EventKind> = t
                    .events
                    .iter()
                    .filter(|e| e.meter_id == m.id)
                    .filter_map(|e| match (protocol, &e.kind) {
                        (Protocol::Dlms, SimEventKind::LastGasp) => Some(EventKind::PowerDown),
                        (Protocol::Dlms, SimEventKind::PowerRestored { .. }) => {
                            Some(EventKind::PowerUp)
                        }
                        (
                            Protocol::WirelessMbus,
                            SimEventKind::LastGasp | SimEventKind::PowerRestored { .. },
                        ) => Some(EventKind::Alarm),
                        _ => None,
                    })
                    .collect();
                assert_eq!(kinds, want, "{protocol:?} {} at {ts}", m.id);
            }
        }
        let restores: u32 = fleet.meters.iter().map(|m| m.power_failures).sum();
        assert!(restores >= 6, "{protocol:?}: {restores}");
    }
}

#[test]
fn dsmr_reports_outages_in_its_power_failure_log() {
    let mut fleet = outage_fleet(Protocol::Dsmr);
    let ticks = ticks_until_restores(&mut fleet, 12);
    // The last restore of a long outage: the next telegram's log ends with it.
    let long = ticks
        .iter()
        .flat_map(|(_, t)| t.events.iter())
        .rfind(|e| matches!(e.kind, SimEventKind::PowerRestored { outage_s } if outage_s > 180))
        .expect("a long outage among twelve");
    let m = fleet.meter(&long.meter_id).expect("meter");
    let (ts, _) = ticks.last().expect("ticks");
    let d = decoded(&fleet, m, *ts);
    let failures: Vec<_> = d
        .events
        .iter()
        .filter(|e| e.kind == EventKind::PowerDown)
        .collect();
    assert_eq!(failures.len(), m.failure_log.len());
    let SimEventKind::PowerRestored { outage_s } = long.kind else {
        unreachable!()
    };
    assert!(
        failures.iter().any(|e| e.duration_s == outage_s
            && e.ts_ms == m.clock_ms(long.ts_ms).div_euclid(1000) * 1000)
    );
    assert_eq!(
        reading(&d, "0-0:96.7.21").value.mantissa,
        i64::from(m.power_failures)
    );
    assert_eq!(
        reading(&d, "0-0:96.7.9").value.mantissa,
        i64::from(m.long_power_failures)
    );
}

#[test]
fn gaps_skip_reports_and_tamper_shows() {
    let cfg = FleetConfig {
        meters: 8,
        seed: 3,
        gap_probability: 0.2,
        tampers_per_day: 20.0,
        outages_per_day: 0.0,
        ..FleetConfig::default()
    };
    let mut fleet = Fleet::with_config(&cfg).expect("config");
    let mut crypto = keys(&fleet);
    let mut skipped = 0;
    let mut tampered = 0;
    for i in 1..=96 {
        let ts = T0 + i * STEP;
        let t = fleet.tick(ts, STEP);
        for e in &t.events {
            let periodic = t
                .uplinks
                .iter()
                .any(|u| u.meter_id == e.meter_id && u.kind == UplinkKind::Periodic);
            match e.kind {
                SimEventKind::ReportSkipped => {
                    skipped += 1;
                    assert!(!periodic, "a skipped report is not sent");
                }
                SimEventKind::Tamper(_) => {
                    tampered += 1;
                    let m = fleet.meter(&e.meter_id).expect("meter");
                    if m.protocol == Protocol::Dlms {
                        let ev = t
                            .uplinks
                            .iter()
                            .find(|u| u.meter_id == e.meter_id && u.kind == UplinkKind::Event)
                            .expect("event frame");
                        let d = decode(m, &ev.bytes, ts, &mut crypto).expect("decodes");
                        assert!(d.events.iter().any(|x| Some(x.kind) == e.kind.event_kind()));
                    }
                }
                _ => {}
            }
        }
    }
    assert!(skipped > 50, "{skipped}");
    assert!(tampered > 10, "{tampered}");
}

#[test]
fn the_same_seed_gives_the_same_frames() {
    let cfg = FleetConfig {
        meters: 16,
        seed: 42,
        outages_per_day: 4.0,
        tampers_per_day: 1.0,
        spike_probability: 0.05,
        gap_probability: 0.05,
        ..FleetConfig::default()
    };
    let run = |cfg: &FleetConfig| {
        let mut fleet = Fleet::with_config(cfg).expect("config");
        let ticks: Vec<Tick> = (1..=96).map(|i| fleet.tick(T0 + i * STEP, STEP)).collect();
        (fleet.key_entries(), ticks)
    };
    let (keys_a, a) = run(&cfg);
    let (keys_b, b) = run(&cfg);
    assert_eq!(keys_a, keys_b);
    assert_eq!(a, b);
    assert!(a.iter().map(|t| t.uplinks.len()).sum::<usize>() > 1000);
    let (keys_c, c) = run(&FleetConfig { seed: 43, ..cfg });
    assert_ne!(keys_a, keys_c);
    assert_ne!(a, c);
}

#[test]
fn ev_and_pv_shape_the_load() {
    let cfg = FleetConfig {
        meters: 40,
        seed: 11,
        mix: ProtocolMix::only(Protocol::Dsmr),
        pv_share: 0.5,
        ev_share: 0.5,
        gap_probability: 0.0,
        spike_probability: 0.0,
        outages_per_day: 0.0,
        tampers_per_day: 0.0,
        ..FleetConfig::default()
    };
    let mut fleet = Fleet::with_config(&cfg).expect("config");
    let mut noon_export = 0;
    let mut evening_ev = 0u64;
    for i in 1..=(7 * 96) {
        let ts = T0 + i * STEP;
        fleet.step(ts, STEP);
        let hour = (ts / 3_600_000 + 2) % 24; // CEST
        for m in &fleet.meters {
            if hour == 13 && m.pv_peak_w > 0.0 && m.power_w.1 > 0 {
                noon_export += 1;
            }
            if (18..22).contains(&hour) && m.ev_charger_w > 0.0 && m.power_w.0 > 5000 {
                evening_ev += 1;
            }
        }
    }
    assert!(noon_export > 50, "{noon_export}");
    assert!(evening_ev > 20, "{evening_ev}");
    assert!(
        fleet
            .meters
            .iter()
            .any(|m| m.export_wh[0] + m.export_wh[1] > 0)
    );
}
