//! Obedience to downlink commands: an open relay reads zero power and stops the energy
//! registers, a new TOU table moves the active tariff register, the clock is set, the load
//! limiter trips, firmware images are transferred in order, verified and activated.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use ami_domain::{EventKind, Quantity, Unit};
use ami_sim::{
    Command, CommandOutcome, Fleet, Protocol, RelayCause, SimError, SimEventKind, TouTable,
    UplinkKind, crc32,
};
use support::*;

#[test]
fn disconnect_reads_zero_power_in_the_next_frame_and_stops_the_registers() {
    for protocol in Protocol::ALL {
        let mut fleet = calm(protocol, 2);
        let ts = run(&mut fleet, 4);
        let id = fleet.meters[0].id.clone();
        assert!(fleet.meters[0].power_w.0 > 0, "{protocol:?}");
        assert_eq!(
            fleet.command(&id, Command::Disconnect),
            Ok(CommandOutcome::Done)
        );
        let mut crypto = keys(&fleet);
        let t1 = ts + STEP;
        let tick = fleet.tick(t1, STEP);
        assert!(
            tick.events.iter().any(
                |e| e.meter_id == id && e.kind == SimEventKind::RelayOpened(RelayCause::Remote)
            )
        );
        let m = fleet.meter(&id).expect("meter");
        let periodic = tick
            .uplinks
            .iter()
            .find(|u| u.meter_id == id && u.kind == UplinkKind::Periodic)
            .expect("a periodic frame");
        let d = decode(m, &periodic.bytes, t1, &mut crypto).expect("decodes");
        assert_eq!(power(m, &d), Quantity::new(0, 0), "{protocol:?}");
        let before = totals(m);
        // DLMS tells the head-end with an event notification on the disconnect control.
        if protocol == Protocol::Dlms {
            let ev = tick
                .uplinks
                .iter()
                .find(|u| u.meter_id == id && u.kind == UplinkKind::Event)
                .expect("an event frame");
            let d = decode(m, &ev.bytes, t1, &mut crypto).expect("decodes");
            assert_eq!(d.events.first().map(|e| e.kind), Some(EventKind::RelayOpen));
        }
        fleet.tick(t1 + STEP, STEP);
        let m = fleet.meter(&id).expect("meter");
        assert_eq!(totals(m), before, "{protocol:?}: registers stopped");
        let d = decoded(&fleet, m, t1 + STEP);
        if protocol != Protocol::Dsmr {
            assert_reading(&d, "1-0:1.8.0", before.0, Unit::WattHour);
        }
        // The other meter goes on.
        assert!(fleet.meters[1].power_w.0 > 0);
        // Reconnect: power again.
        assert_eq!(
            fleet.command(&id, Command::Reconnect),
            Ok(CommandOutcome::Done)
        );
        let events = fleet.step(t1 + 2 * STEP, STEP);
        assert!(events.iter().any(|e| e.kind == SimEventKind::RelayClosed));
        let m = fleet.meter(&id).expect("meter");
        let d = decoded(&fleet, m, t1 + 2 * STEP);
        assert!(power(m, &d) > Quantity::new(0, 0), "{protocol:?}");
    }
}

#[test]
fn set_tou_changes_the_tariff_register() {
    for protocol in Protocol::ALL {
        let mut fleet = calm(protocol, 1);
        let ts = run(&mut fleet, 2);
        let id = fleet.meters[0].id.clone();
        assert_eq!(
            tariff(&fleet.meters[0], &decoded(&fleet, &fleet.meters[0], ts)),
            "2"
        );
        fleet
            .command(&id, Command::SetTou(TouTable::flat(1)))
            .expect("set");
        let m = &fleet.meters[0];
        assert_eq!(tariff(m, &decoded(&fleet, m, ts)), "1", "{protocol:?}");
        // The energy now goes to register 1 only.
        let before = m.import_wh;
        fleet.step(ts + STEP, STEP);
        fleet.step(ts + 2 * STEP, STEP);
        let m = &fleet.meters[0];
        assert!(m.import_wh[0] > before[0], "{protocol:?}");
        assert_eq!(m.import_wh[1], before[1], "{protocol:?}");
    }
    let mut fleet = calm(Protocol::Dsmr, 1);
    run(&mut fleet, 1);
    let id = fleet.meters[0].id.clone();
    let bad = fleet.command(&id, Command::SetTou(TouTable::flat(3)));
    assert!(matches!(bad, Err(SimError::InvalidTou(_))), "{bad:?}");
}

#[test]
fn set_clock_resets_the_drift() {
    let mut fleet = calm(Protocol::Dsmr, 1);
    let ts = run(&mut fleet, 96 * 4);
    let id = fleet.meters[0].id.clone();
    let drift = fleet.meters[0].clock_ms(ts) - ts;
    assert_ne!(drift, 0, "four days at up to 40 ppm drift");
    fleet.command(&id, Command::SetClock(ts)).expect("set");
    assert_eq!(fleet.meters[0].clock_ms(ts), ts);
    let d = decoded(&fleet, &fleet.meters[0], ts);
    assert_eq!(reading(&d, "1-0:1.8.1").ts_ms, ts);
    let events = fleet.step(ts + STEP, STEP);
    assert!(matches!(
        events.first().map(|e| &e.kind),
        Some(SimEventKind::ClockSet { to_ms, .. }) if *to_ms == ts
    ));
}

#[test]
fn load_limit_trips_the_relay() {
    let mut fleet = calm(Protocol::Dlms, 1);
    let ts = run(&mut fleet, 2);
    let id = fleet.meters[0].id.clone();
    fleet.command(&id, Command::LoadLimit(50)).expect("limit");
    let tick = fleet.tick(ts + STEP, STEP);
    assert!(
        tick.events
            .iter()
            .any(|e| e.kind == SimEventKind::RelayOpened(RelayCause::LoadLimit))
    );
    let m = &fleet.meters[0];
    assert!(!m.relay_closed);
    assert_eq!(m.power_w, (0, 0));
    // Raising the limit and reconnecting brings the supply back.
    fleet.command(&id, Command::LoadLimit(0)).expect("no limit");
    fleet.command(&id, Command::Reconnect).expect("reconnect");
    fleet.step(ts + 2 * STEP, STEP);
    assert!(fleet.meters[0].power_w.0 > 0);
}

fn block(version: &str, number: u32, total: u32, data: &[u8]) -> Command {
    Command::FirmwareBlock {
        version: version.into(),
        number,
        total,
        data: data.to_vec(),
    }
}

#[test]
fn firmware_is_transferred_in_order_verified_activated_and_reported() {
    for protocol in Protocol::ALL {
        let mut fleet = calm(protocol, 1);
        let ts = run(&mut fleet, 1);
        let id = fleet.meters[0].id.clone();
        let image: Vec<u8> = (0..1000u32).map(|i| (i * 7 % 251) as u8).collect();
        let blocks: Vec<&[u8]> = image.chunks(256).collect();
        let total = blocks.len() as u32;
        // Activation before anything arrives is refused.
        assert!(matches!(
            fleet.command(&id, Command::FirmwareActivate),
            Err(SimError::FirmwareNotVerified(_))
        ));
        assert_eq!(
            fleet.command(&id, block("2.0.0", 0, total, blocks[0])),
            Ok(CommandOutcome::BlockAccepted { next: 1 })
        );
        // Out of order.
        assert!(matches!(
            fleet.command(&id, block("2.0.0", 2, total, blocks[2])),
            Err(SimError::FirmwareBlockRefused {
                expected: 1,
                got: 2,
                ..
            })
        ));
        // Incomplete image.
        assert!(matches!(
            fleet.command(
                &id,
                Command::FirmwareVerify {
                    crc32: crc32(&image)
                }
            ),
            Err(SimError::FirmwareVerify { .. })
        ));
        for (n, b) in blocks.iter().enumerate().skip(1) {
            assert_eq!(
                fleet.command(&id, block("2.0.0", n as u32, total, b)),
                Ok(CommandOutcome::BlockAccepted { next: n as u32 + 1 })
            );
        }
        assert!(matches!(
            fleet.command(
                &id,
                Command::FirmwareVerify {
                    crc32: crc32(&image) ^ 1
                }
            ),
            Err(SimError::FirmwareVerify { .. })
        ));
        assert!(matches!(
            fleet.command(&id, Command::FirmwareActivate),
            Err(SimError::FirmwareNotVerified(_))
        ));
        assert_eq!(
            fleet.command(
                &id,
                Command::FirmwareVerify {
                    crc32: crc32(&image)
                }
            ),
            Ok(CommandOutcome::Verified)
        );
        assert_eq!(
            fleet.command(&id, Command::FirmwareActivate),
            Ok(CommandOutcome::Activated {
                version: "2.0.0".into()
            })
        );
        let d = decoded(&fleet, &fleet.meters[0], ts);
        // Every protocol reports the active firmware under 1-0:0.2.0.
        assert_eq!(attribute(&d, "1-0:0.2.0"), "2.0.0", "{protocol:?}");
        let events = fleet.step(ts + STEP, STEP);
        assert!(events.iter().any(|e| e.kind
            == SimEventKind::FirmwareActivated {
                version: "2.0.0".into()
            }));
    }
}

#[test]
fn read_now_answers_a_frame_with_a_fresh_counter() {
    let mut fleet = calm(Protocol::Dlms, 1);
    let ts = run(&mut fleet, 2);
    let id = fleet.meters[0].id.clone();
    let a = fleet.command(&id, Command::ReadNow).expect("read");
    let b = fleet.command(&id, Command::ReadNow).expect("read");
    let (CommandOutcome::Frame(a), CommandOutcome::Frame(b)) = (a, b) else {
        panic!("frames expected");
    };
    // A new invocation counter each time: the ciphertexts differ, both decode.
    assert_ne!(a, b);
    let m = &fleet.meters[0];
    let mut crypto = keys(&fleet);
    for f in [a, b] {
        let d = decode(m, &f, ts, &mut crypto).expect("decodes");
        assert_reading(&d, "1-0:1.8.0", totals(m).0, Unit::WattHour);
    }
}

#[test]
fn unknown_and_unreachable_meters_are_errors() {
    let mut fleet = Fleet::new(2);
    assert_eq!(
        fleet.command("nope", Command::ReadNow),
        Err(SimError::UnknownMeter("nope".into()))
    );
    let id = fleet.meters[0].id.clone();
    assert_eq!(
        fleet.command(&id, Command::SetClock(T0)),
        Err(SimError::NotStarted("set-clock"))
    );
    let cfg = ami_sim::FleetConfig {
        meters: 1,
        outages_per_day: 1e9,
        ..ami_sim::FleetConfig::default()
    };
    let mut fleet = Fleet::with_config(&cfg).expect("config");
    let events = fleet.step(T0, STEP);
    assert_eq!(
        events.first().map(|e| &e.kind),
        Some(&SimEventKind::LastGasp)
    );
    let id = fleet.meters[0].id.clone();
    assert!(matches!(
        fleet.command(&id, Command::Disconnect),
        Err(SimError::Unreachable { .. })
    ));
}

#[test]
fn tamper_is_latched_until_cleared() {
    let cfg = ami_sim::FleetConfig {
        meters: 4,
        mix: ami_sim::ProtocolMix::only(Protocol::Dlms),
        tampers_per_day: 1e9,
        outages_per_day: 0.0,
        gap_probability: 0.0,
        ..ami_sim::FleetConfig::default()
    };
    let mut fleet = Fleet::with_config(&cfg).expect("config");
    let ts = run(&mut fleet, 1);
    let id = fleet.meters[0].id.clone();
    assert!(fleet.meters[0].tamper.is_some());
    let d = decoded(&fleet, &fleet.meters[0], ts);
    assert_ne!(reading(&d, "0-0:97.97.0").value, Quantity::new(0, 0));
    fleet.command(&id, Command::ClearAlarms).expect("clear");
    let d = decoded(&fleet, &fleet.meters[0], ts);
    assert_eq!(reading(&d, "0-0:97.97.0").value, Quantity::new(0, 0));
}
