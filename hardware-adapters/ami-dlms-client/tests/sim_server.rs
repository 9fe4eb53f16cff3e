//! The client against the fleet simulator's DLMS meters (`ami_sim::serve`, what `ami sim
//! --dlms-listen` runs): one TCP address, the wrapper's wPort naming the meter. What the
//! client reads must be what the simulated meters measured: registers, the clock, the load
//! profile (also for the intervals whose push was lost), and the relay obeys ACTION.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::{Arc, Mutex};

use ami_dlms::axdr::Data;
use ami_dlms_client::link::Framing;
use ami_dlms_client::objects::unix_ms;
use ami_dlms_client::{Authentication, Client, ClientConfig, ClientError};
use ami_domain::Obis;
use ami_sim::dlms_server::ServerConfig;
use ami_sim::{Fleet, FleetConfig, Protocol, ProtocolMix};
use tokio::net::{TcpListener, TcpStream};

const ENERGY: Obis = Obis::new(1, 0, 1, 8, 0, 255);
const POWER: Obis = Obis::new(1, 0, 1, 7, 0, 255);
const PROFILE: Obis = Obis::new(1, 0, 99, 1, 0, 255);
/// 2026-01-01T00:00:00Z.
const DAY: i64 = 1_767_225_600_000;
const STEP: i64 = 900_000;

/// What a meter measured at the end of one step, as the test saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Truth {
    clock_ms: i64,
    import_wh: u64,
    export_wh: u64,
    pushed: bool,
}

struct Sim {
    fleet: Arc<Mutex<Fleet>>,
    port: u16,
    /// Per DLMS meter (by wPort - 1): the captures of every step it had supply.
    truth: Vec<Vec<Truth>>,
    now: i64,
}

impl Sim {
    /// Three DLMS meters with lost pushes and outages, run for a day, then served.
    async fn start() -> Sim {
        let cfg = FleetConfig {
            meters: 3,
            seed: 7,
            mix: ProtocolMix {
                dsmr: 0,
                dlms: 1,
                wmbus: 0,
                iec62056_21: 0,
            },
            gap_probability: 0.15,
            outages_per_day: 1.0,
            ..FleetConfig::default()
        };
        let mut fleet = Fleet::with_config(&cfg).unwrap();
        let mut truth = vec![Vec::new(); 3];
        let mut now = DAY;
        for _ in 0..96 {
            now += STEP;
            let tick = fleet.tick(now, STEP);
            for (i, m) in fleet.meters.iter().enumerate() {
                assert_eq!(m.protocol, Protocol::Dlms);
                if !m.powered() {
                    continue;
                }
                let pushed = tick
                    .uplinks
                    .iter()
                    .any(|u| u.meter_id == m.id && u.ts_ms == now);
                truth[i].push(Truth {
                    clock_ms: m.clock_ms(now),
                    import_wh: m.import_wh.iter().sum(),
                    export_wh: m.export_wh.iter().sum(),
                    pushed,
                });
            }
        }
        let fleet = Arc::new(Mutex::new(fleet));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(ami_sim::serve::serve(
            listener,
            fleet.clone(),
            ServerConfig::default(),
        ));
        Sim {
            fleet,
            port,
            truth,
            now,
        }
    }

    async fn connect(&self, wport: u16, password: &[u8]) -> Result<Client<TcpStream>, ClientError> {
        let mut c = ClientConfig::new(Framing::Wrapper {
            client: 16,
            server: wport,
        });
        c.authentication = Authentication::Low(password.to_vec());
        let io = TcpStream::connect(("127.0.0.1", self.port)).await?;
        Client::connect(io, c).await
    }
}

#[tokio::test]
async fn the_load_profile_read_by_range_is_what_each_meter_measured() {
    let sim = Sim::start().await;
    let mut lost = 0;
    for wport in 1..=3u16 {
        let truth = &sim.truth[usize::from(wport - 1)];
        lost += truth.iter().filter(|t| !t.pushed).count();
        let mut c = sim.connect(wport, b"00000000").await.unwrap();
        let a = c.associated().unwrap().clone();
        assert_eq!(a.mechanism, 1);
        assert_eq!(a.server_max_pdu, 1024);
        // A whole day in one range: more than one PDU, so it comes in data blocks.
        let answer = c
            .read_profile_range(PROFILE, DAY, sim.now + 60_000)
            .await
            .unwrap();
        assert!(answer.frames.len() > 1, "{} frames", answer.frames.len());
        let value = answer.value().unwrap();
        let rows = value.elements().unwrap();
        let got: Vec<(i64, u64, u64)> = rows
            .iter()
            .map(|r| {
                let f = r.elements().unwrap();
                (
                    unix_ms(&f[0]).unwrap(),
                    u64::try_from(f[2].as_i128().unwrap()).unwrap(),
                    u64::try_from(f[3].as_i128().unwrap()).unwrap(),
                )
            })
            .collect();
        let want: Vec<(i64, u64, u64)> = truth
            .iter()
            .map(|t| {
                (
                    t.clock_ms - t.clock_ms.rem_euclid(10),
                    t.import_wh,
                    t.export_wh,
                )
            })
            .collect();
        assert_eq!(got, want, "meter at wPort {wport}");
        // A narrower range: the rows of the last six hours only.
        let from = sim.now - 6 * 3_600_000;
        let part = c
            .read_profile_range(PROFILE, from, sim.now + 60_000)
            .await
            .unwrap();
        let n = part.value().unwrap().elements().unwrap().len();
        assert_eq!(
            n,
            truth.iter().filter(|t| t.clock_ms >= from).count(),
            "rows from {from}"
        );
        // The energy register reads what the meter holds now.
        let e = c.read_register(ENERGY).await.unwrap();
        assert_eq!(e.raw, Some(i128::from(truth.last().unwrap().import_wh)));
        let su = e.scaler_unit.unwrap();
        assert_eq!((su.scaler, su.unit), (0, 30), "Wh");
        c.release().await.unwrap();
    }
    assert!(
        lost > 0,
        "the fleet lost no pushes: the test shows nothing about gaps"
    );
}

#[tokio::test]
async fn the_relay_and_the_clock_obey_and_bad_requests_are_refused() {
    let sim = Sim::start().await;
    let mut c = sim.connect(2, b"00000000").await.unwrap();
    let id = sim.fleet.lock().unwrap().meters[1].id.clone();
    assert!(c.relay_closed().await.unwrap());
    assert!(
        !c.switch_relay(false).await.unwrap(),
        "relay open after remote_disconnect"
    );
    // The meter measures nothing once a step has passed with the relay open.
    {
        let mut f = sim.fleet.lock().unwrap();
        f.tick(sim.now + STEP, STEP);
        assert!(!f.meter(&id).unwrap().relay_closed);
    }
    assert_eq!(c.read_register(POWER).await.unwrap().raw, Some(0));
    assert!(c.switch_relay(true).await.unwrap());
    // The clock: set it and read it back.
    let to = sim.now + STEP + 3_600_000;
    c.set_clock(to).await.unwrap();
    let (read, _) = c.read_clock().await.unwrap();
    assert!((read - to).abs() < 1000, "clock reads {read}, set to {to}");
    // An object the meter does not have, and a register written.
    match c.read_register(Obis::new(1, 0, 99, 8, 0, 255)).await {
        Err(ClientError::DataAccess { code, .. }) => assert_eq!(code, 4, "object-undefined"),
        other => panic!("{other:?}"),
    }
    let target = ami_dlms_client::Target::new(3, ENERGY, 2);
    match c.set(target, &Data::DoubleLongUnsigned(0)).await {
        Err(ClientError::DataAccess { code, .. }) => assert_eq!(code, 3, "read-write-denied"),
        other => panic!("{other:?}"),
    }
    c.release().await.unwrap();
    // A wrong password: refused with authentication-failure.
    match sim.connect(1, b"guessing").await {
        Err(ClientError::Refused { diagnostic, .. }) => assert_eq!(diagnostic, 13),
        other => panic!("{:?}", other.map(|_| ())),
    }
    // No meter behind wPort 9: the association fails, and the server still serves.
    assert!(sim.connect(9, b"00000000").await.is_err());
    let mut c = sim.connect(3, b"00000000").await.unwrap();
    assert!(c.read_register(ENERGY).await.unwrap().raw.is_some());
    c.release().await.unwrap();
    let f = sim.fleet.lock().unwrap();
    assert!(
        f.meters
            .iter()
            .all(|m| m.profile().len() <= ami_sim::PROFILE_LEN)
    );
}
