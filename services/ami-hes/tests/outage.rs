//! Outage detection from meter events, on both backends: 50 last gasps under one transformer
//! become one transformer outage, restored as the power-ups arrive; a lone gasp stays a meter
//! outage; a blink (power-up within the window) is none; transformers of a feeder out together
//! make a feeder outage; a transformer candidate whose silent meters answer the ping is
//! refuted; an outage open when the detector goes (a HES restart) is taken back from the store
//! and restored by the power-ups that come after.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;

use ami_bus::EventMessage;
use ami_hes::outage::{OutageScope, OutageState};
use ami_hes::{EventHub, OutageConfig, OutageDetector, RegistryStore, StaticPinger};
use common::{meter, register};

const T0: i64 = 1_700_000_000_000;
const WINDOW: i64 = 60_000;

fn ev(meter: &str, kind: &str, ts_ms: i64) -> EventMessage {
    EventMessage {
        frame: format!("{meter}:{kind}:{ts_ms}"),
        meter: meter.into(),
        kind: kind.into(),
        ts_ms,
        code: 0,
        source: None,
        duration_s: 0,
    }
}

/// The system title a DLMS meter `serial` `T1-07` is registered with (how its decoder names it).
fn title(i: usize) -> String {
    format!("{:016x}", 0x4d4d_4d00_0000_0000u64 + i as u64)
}

struct Grid<S> {
    hub: EventHub<S>,
    det: Arc<OutageDetector<S>>,
    pinger: StaticPinger,
}

/// F1: T1 (50 meters, by system title), T2 (10); F2: T3 (5). F3: T4, T5, T6 (4 each).
async fn grid<S: RegistryStore>(s: &Arc<S>) -> Grid<S> {
    let mut meters = Vec::new();
    for i in 0..50 {
        let mut m = meter(&format!("T1-{i:02}"), "F1", "T1");
        m.dlms_system_title = Some(title(i));
        meters.push(m);
    }
    for (t, f, n) in [
        ("T2", "F1", 10),
        ("T3", "F2", 5),
        ("T4", "F3", 4),
        ("T5", "F3", 4),
        ("T6", "F3", 4),
    ] {
        for i in 0..n {
            meters.push(meter(&format!("{t}-{i:02}"), f, t));
        }
    }
    register(s.as_ref(), meters).await;
    let pinger = StaticPinger::new();
    let det = Arc::new(OutageDetector::new(
        s.clone(),
        Arc::new(pinger.clone()),
        OutageConfig::default(),
    ));
    Grid {
        hub: EventHub::new(s.clone(), det.clone()),
        det,
        pinger,
    }
}

fn serials(t: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{t}-{i:02}")).collect()
}

async fn fifty_gasps_make_one_transformer_outage<S: RegistryStore>(s: Arc<S>) {
    let g = grid(&s).await;
    let mut updates = g.det.subscribe();
    g.pinger.set_down(serials("T1", 50), true);
    // 50 last gasps over 5 s, named as the DLMS decoder names the meters.
    let gasps: Vec<EventMessage> = (0..50)
        .map(|i| ev(&title(i), "last-gasp", T0 + 100 * i as i64))
        .collect();
    assert_eq!(g.hub.ingest(&gasps).await.unwrap().len(), 50);
    assert!(
        g.det.tick(T0 + WINDOW / 2).await.unwrap().is_empty(),
        "window still open"
    );
    let made = g.det.tick(T0 + WINDOW + 1).await.unwrap();
    let active = g.det.outages(true).await.unwrap();
    assert_eq!(active.len(), 1, "{active:#?}");
    let o = &active[0];
    assert_eq!(
        (o.scope, o.node.as_str(), o.state),
        (OutageScope::Transformer, "T1", OutageState::Confirmed)
    );
    assert_eq!(o.meters.len(), 50);
    assert_eq!(o.started_at_ms, T0);
    assert_eq!(
        made.iter().map(|u| u.state).collect::<Vec<_>>(),
        [OutageState::Detected, OutageState::Confirmed]
    );

    // Power comes back: 20 meters first, then the other 30.
    let ups = |r: std::ops::Range<usize>, ts| {
        r.map(move |i| ev(&title(i), "power-up", ts))
            .collect::<Vec<_>>()
    };
    g.pinger.set_down(serials("T1", 50), false);
    g.hub.ingest(&ups(0..20, T0 + 600_000)).await.unwrap();
    let o = &g.det.outages(true).await.unwrap()[0];
    assert_eq!(
        (o.state, o.restored.len()),
        (OutageState::PartiallyRestored, 20)
    );
    g.hub.ingest(&ups(20..50, T0 + 660_000)).await.unwrap();
    assert!(g.det.outages(true).await.unwrap().is_empty());
    let all = g.det.outages(false).await.unwrap();
    assert_eq!(all.len(), 1);
    assert_eq!(
        (all[0].state, all[0].restored_at_ms),
        (OutageState::Restored, T0 + 660_000)
    );

    // The stream saw the whole life of that one outage.
    let mut seen = Vec::new();
    while let Ok(u) = updates.try_recv() {
        assert_eq!(u.node, "T1");
        seen.push(u.state);
    }
    assert_eq!(seen.first(), Some(&OutageState::Detected));
    assert_eq!(seen.get(1), Some(&OutageState::Confirmed));
    assert_eq!(seen.last(), Some(&OutageState::Restored));
    assert_eq!(seen.len(), 2 + 50);
}

async fn lone_gasp_is_a_meter_outage_and_a_blink_is_none<S: RegistryStore>(s: Arc<S>) {
    let g = grid(&s).await;
    g.pinger.set_down(["T2-03".to_owned()], true);
    g.hub
        .ingest(&[
            ev("T2-03", "last-gasp", T0),
            // T3-01 blinks: down and up within the window.
            ev("T3-01", "power-down", T0 + 1_000),
            ev("T3-01", "power-up", T0 + 3_000),
        ])
        .await
        .unwrap();
    g.det.tick(T0 + WINDOW + 1).await.unwrap();
    let active = g.det.outages(true).await.unwrap();
    assert_eq!(active.len(), 1, "{active:#?}");
    assert_eq!(
        (active[0].scope, active[0].node.as_str()),
        (OutageScope::Meter, "T2-03")
    );
    assert_eq!(active[0].meters.len(), 1);
    // A gasp from a meter that answers the ping is no outage.
    g.hub
        .ingest(&[ev("T3-02", "last-gasp", T0 + 70_000)])
        .await
        .unwrap();
    g.det.tick(T0 + 70_000 + WINDOW).await.unwrap();
    assert_eq!(g.det.outages(true).await.unwrap().len(), 1);
    g.hub
        .ingest(&[ev("T2-03", "power-up", T0 + 90_000)])
        .await
        .unwrap();
    assert!(g.det.outages(true).await.unwrap().is_empty());
}

async fn transformers_of_a_feeder_make_a_feeder_outage<S: RegistryStore>(s: Arc<S>) {
    let g = grid(&s).await;
    let mut down = Vec::new();
    for t in ["T4", "T5", "T6"] {
        down.extend(serials(t, 4));
    }
    g.pinger.set_down(down.clone(), true);
    let gasps: Vec<EventMessage> = down.iter().map(|m| ev(m, "last-gasp", T0)).collect();
    g.hub.ingest(&gasps).await.unwrap();
    g.det.tick(T0 + WINDOW).await.unwrap();
    let active = g.det.outages(true).await.unwrap();
    assert_eq!(active.len(), 1, "{active:#?}");
    assert_eq!(
        (active[0].scope, active[0].node.as_str()),
        (OutageScope::Feeder, "F3")
    );
    assert_eq!(active[0].meters.len(), 12);
}

async fn a_transformer_whose_silent_meters_answer_is_refuted<S: RegistryStore>(s: Arc<S>) {
    let g = grid(&s).await;
    // 6 of T2's 10 meters gasp (over the 50 % share), but the 4 others answer the ping: the
    // transformer has supply, and the 6 are judged one by one (all six really are out).
    let six = serials("T2", 6);
    g.pinger.set_down(six.clone(), true);
    let gasps: Vec<EventMessage> = six.iter().map(|m| ev(m, "last-gasp", T0)).collect();
    g.hub.ingest(&gasps).await.unwrap();
    g.det.tick(T0 + WINDOW).await.unwrap();
    let active = g.det.outages(true).await.unwrap();
    assert_eq!(active.len(), 6, "{active:#?}");
    assert!(active.iter().all(|o| o.scope == OutageScope::Meter));
}

async fn an_open_outage_survives_a_restart_of_the_detector<S: RegistryStore>(s: Arc<S>) {
    let g = grid(&s).await;
    g.pinger.set_down(serials("T1", 50), true);
    let gasps: Vec<EventMessage> = (0..50)
        .map(|i| ev(&title(i), "last-gasp", T0 + 10 * i as i64))
        .collect();
    g.hub.ingest(&gasps).await.unwrap();
    g.det.tick(T0 + WINDOW + 1).await.unwrap();
    let before = g.det.outages(true).await.unwrap();
    assert_eq!(before.len(), 1, "{before:#?}");
    let id = before[0].id.clone();
    // 20 meters come back before the HES goes.
    let ups = |r: std::ops::Range<usize>, ts| {
        r.map(move |i| ev(&title(i), "power-up", ts))
            .collect::<Vec<_>>()
    };
    g.hub.ingest(&ups(0..20, T0 + 600_000)).await.unwrap();
    drop(g);

    // The HES starts again over the same store: the outage is still open, as it was.
    let pinger = StaticPinger::new();
    pinger.set_down(serials("T1", 50), true);
    let det = Arc::new(
        OutageDetector::open(s.clone(), Arc::new(pinger.clone()), OutageConfig::default())
            .await
            .unwrap(),
    );
    let hub = EventHub::new(s.clone(), det.clone());
    let mut updates = det.subscribe();
    let active = det.outages(true).await.unwrap();
    assert_eq!(active.len(), 1, "{active:#?}");
    let o = &active[0];
    assert_eq!(o.id, id);
    assert_eq!(
        (o.scope, o.node.as_str(), o.state),
        (
            OutageScope::Transformer,
            "T1",
            OutageState::PartiallyRestored
        )
    );
    assert_eq!((o.meters.len(), o.restored.len()), (50, 20));
    assert_eq!(o.started_at_ms, T0);
    assert_eq!(o.confirmed_at_ms, T0 + WINDOW + 1);
    assert_eq!(o.restored, serials("T1", 20).into_iter().collect());

    // The remaining 30 power-ups (sent after the restart) restore it; no new outage is made.
    pinger.set_down(serials("T1", 50), false);
    hub.ingest(&ups(20..50, T0 + 660_000)).await.unwrap();
    assert!(det.outages(true).await.unwrap().is_empty());
    let all = det.outages(false).await.unwrap();
    assert_eq!(all.len(), 1, "{all:#?}");
    assert_eq!(
        (all[0].id.as_str(), all[0].state, all[0].restored_at_ms),
        (id.as_str(), OutageState::Restored, T0 + 660_000)
    );
    assert_eq!(all[0].restored.len(), 50);
    let mut last = None;
    while let Ok(u) = updates.try_recv() {
        assert_eq!(u.id, id);
        last = Some(u.state);
    }
    assert_eq!(last, Some(OutageState::Restored));

    // A third start finds nothing open.
    let det = OutageDetector::open(s.clone(), Arc::new(pinger), OutageConfig::default())
        .await
        .unwrap();
    assert_eq!(det.load().await.unwrap(), 0);
    assert!(det.outages(true).await.unwrap().is_empty());
}

on_both!(
    an_open_outage_survives_a_restart_of_the_detector,
    fifty_gasps_make_one_transformer_outage,
    lone_gasp_is_a_meter_outage_and_a_blink_is_none,
    transformers_of_a_feeder_make_a_feeder_outage,
    a_transformer_whose_silent_meters_answer_is_refuted,
);
