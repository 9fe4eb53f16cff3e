//! `ami sim` as an operator runs it against a real nats-server with JetStream: every frame the
//! fleet says it sent is in the raw stream (bundled per protocol), a disconnect signed by the head-end's key opens the
//! meter's relay (the ack says so), and a command signed by another key is refused.

#![allow(clippy::expect_used, clippy::panic, clippy::unwrap_used, missing_docs)]

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ami_bus::command::{AckResult, AckStatus, CommandAck, CommandKind, CommandRequest, FailReason};
use ami_bus::{ConsumerSettings, NatsBus, StreamKind, StreamSettings, Topology};
use ami_sim::{Fleet, FleetConfig, Protocol};
use ed25519_dalek::SigningKey;

const NATS: &str = "nats://127.0.0.1:4222";

fn now_ms() -> i64 {
    ami_domain::time::now_ms()
}

fn request(id: &str, meter: &str, key: &SigningKey) -> CommandRequest {
    let mut r = CommandRequest {
        id: id.into(),
        meter: meter.into(),
        adapter: "sim-1".into(),
        kind: CommandKind::Disconnect,
        issued_at_ms: now_ms(),
        deadline_ms: now_ms() + 60_000,
        requested_by: "integration-test".into(),
        signature: None,
    };
    r.sign(key);
    r
}

#[test]
fn integration_cli_sim_publishes_every_frame_and_obeys_signed_commands() {
    let root = format!("simcli{}", std::process::id());
    let hes = SigningKey::generate(&mut rand_core::OsRng);
    let forger = SigningKey::generate(&mut rand_core::OsRng);
    let home = tempfile::tempdir().unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_ami"))
        .args([
            "sim",
            "--meters",
            "8",
            "--seed",
            "3",
            "--ticks",
            "16",
            "--rate",
            "4",
            "--trusted-key",
            &hex::encode(hes.verifying_key().to_bytes()),
        ])
        .env("AMI_HOME", home.path())
        .env("NATS_URL", NATS)
        .env("AMI_SUBJECT_ROOT", &root)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run ami sim");
    // The same seed and size give the same meters: pick a DLMS one.
    let fleet = Fleet::with_config(&FleetConfig {
        meters: 8,
        seed: 3,
        ..FleetConfig::default()
    })
    .unwrap();
    let meter = fleet
        .meters
        .iter()
        .find(|m| m.protocol == Protocol::Dlms)
        .expect("a DLMS meter")
        .id
        .clone();

    let rt = tokio::runtime::Runtime::new().unwrap();
    let bus = rt.block_on(async {
        let bus = NatsBus::connect(NATS, Topology::new(&root), 64)
            .await
            .unwrap();
        bus.ensure_streams(&StreamSettings::default())
            .await
            .unwrap();
        // Wait for the first frames: the fleet has started, so the meters take commands.
        let until = Instant::now() + Duration::from_secs(30);
        while bus.stream_messages(StreamKind::Raw).await.unwrap_or(0) == 0 {
            assert!(Instant::now() < until, "no frame reached the raw stream");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let mut settings = ConsumerSettings::new("test-acks");
        settings.filter = Some(ami_bus::command::ack_filter(bus.topology()));
        let acks = bus.consumer(StreamKind::Commands, &settings).await.unwrap();
        let genuine = request("cmd-genuine", &meter, &hes);
        let forged = request("cmd-forged", &meter, &forger);
        bus.publish_batch(vec![
            forged.to_message(bus.topology(), 1),
            genuine.to_message(bus.topology(), 1),
        ])
        .await
        .unwrap();
        let (mut genuine_done, mut forged_done) = (false, false);
        let until = Instant::now() + Duration::from_secs(30);
        while !(genuine_done && forged_done) {
            assert!(Instant::now() < until, "no final acks");
            for d in acks.fetch(50, Duration::from_millis(500)).await.unwrap() {
                let ack = CommandAck::from_slice(&d.message.payload).unwrap();
                match (ack.id.as_str(), &ack.status) {
                    ("cmd-genuine", AckStatus::Confirmed { .. }) => {
                        assert_eq!(ack.result, Some(AckResult::Relay { closed: false }));
                        genuine_done = true;
                    }
                    ("cmd-forged", AckStatus::Failed { reason, .. }) => {
                        assert_eq!(*reason, FailReason::BadSignature);
                        forged_done = true;
                    }
                    ("cmd-genuine" | "cmd-forged", AckStatus::Received) => {}
                    other => panic!("unexpected ack {other:?}"),
                }
                d.ack().await.unwrap();
            }
        }
        bus
    });

    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    eprintln!("{text}{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{text}");
    assert!(text.contains("commands on "), "{text}");
    let stopped = text
        .lines()
        .find(|l| l.starts_with("stopped: "))
        .unwrap_or_else(|| panic!("{text}"));
    let sent: u64 = stopped
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{stopped}"));
    assert!(sent > 8 * 8, "{stopped}");
    assert!(stopped.contains(" 0 still spooled"), "{stopped}");
    rt.block_on(async {
        // `ami sim` bundles each tick's frames per protocol: count the frames, each id once.
        let messages = bus.stream_messages(StreamKind::Raw).await.unwrap();
        let raw = bus
            .consumer(StreamKind::Raw, &ConsumerSettings::new("test-raw"))
            .await
            .unwrap();
        let mut ids = std::collections::HashSet::new();
        let mut read = 0;
        while read < messages {
            let got = raw.fetch(500, Duration::from_secs(2)).await.unwrap();
            assert!(!got.is_empty(), "raw stream read stalled at {read}");
            for d in got {
                read += 1;
                for f in ami_bus::bundle::frames_of(&d.message).unwrap() {
                    assert!(ids.insert(f.id.clone()), "frame {} twice", f.id);
                }
                d.ack().await.unwrap();
            }
        }
        assert_eq!(
            ids.len() as u64,
            sent,
            "every frame sent is in the raw stream, once"
        );
        assert!(messages < sent, "{sent} frames came in {messages} bundles");
        bus.delete_streams().await.unwrap();
    });
}

/// `ami sim --dlms-listen`: a DLMS client associates with the simulated meters through one
/// address (the wPort names the meter), reads registers and the load profile the meter
/// captured at every tick, and a wrong password is refused.
#[test]
fn integration_cli_sim_serves_dlms_clients() {
    use std::io::{BufRead, BufReader};

    use ami_dlms_client::{Authentication, Client, ClientConfig, ClientError, Framing};
    use ami_domain::Obis;

    let root = format!("simdlms{}", std::process::id());
    let home = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_ami"))
        .args(["sim", "--meters", "8", "--seed", "3", "--rate", "20"])
        .args(["--dlms-listen", "127.0.0.1:0", "--dlms-password", "s3cret"])
        .env("AMI_HOME", home.path())
        .env("NATS_URL", NATS)
        .env("AMI_SUBJECT_ROOT", &root)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("run ami sim");
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    // "dlms: meter <id> at <addr> wPort <n>" per meter, then "dlms: serving ...".
    let mut meters: Vec<(String, String, u16)> = Vec::new();
    let mut ticks = 0;
    while ticks < 12 {
        let line = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("ami sim printed nothing");
        let f: Vec<&str> = line.split_whitespace().collect();
        match f.as_slice() {
            ["dlms:", "meter", id, "at", addr, "wPort", w] => {
                meters.push((id.to_string(), addr.to_string(), w.parse().unwrap()));
            }
            ["tick", ..] => ticks += 1,
            _ => {}
        }
    }
    let expected: Vec<String> = Fleet::with_config(&FleetConfig {
        meters: 8,
        seed: 3,
        ..FleetConfig::default()
    })
    .unwrap()
    .meters
    .iter()
    .filter(|m| m.protocol == Protocol::Dlms)
    .map(|m| m.id.clone())
    .collect();
    assert_eq!(
        meters.iter().map(|m| m.0.clone()).collect::<Vec<_>>(),
        expected
    );
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let config = |wport: u16, password: &[u8]| {
            let mut c = ClientConfig::new(Framing::Wrapper {
                client: 16,
                server: wport,
            });
            c.authentication = Authentication::Low(password.to_vec());
            c
        };
        for (id, addr, wport) in &meters {
            // A meter in an outage answers nothing: try again once its supply is back.
            let mut attempt = 0;
            let mut c = loop {
                let io = tokio::net::TcpStream::connect(addr.as_str()).await.unwrap();
                match Client::connect(io, config(*wport, b"s3cret")).await {
                    Ok(c) => break c,
                    Err(e) if attempt < 3 => {
                        eprintln!("meter {id}: {e}; again");
                        attempt += 1;
                    }
                    Err(e) => panic!("meter {id}: {e}"),
                }
            };
            let energy = c
                .read_register(Obis::new(1, 0, 1, 8, 0, 255))
                .await
                .unwrap()
                .raw
                .unwrap();
            let id_read = c
                .get(
                    ami_dlms_client::Target::new(1, Obis::new(0, 0, 96, 1, 1, 255), 2),
                    None,
                )
                .await
                .unwrap();
            assert_eq!(id_read.value().unwrap().as_bytes(), Some(id.as_bytes()));
            // The whole profile: one capture per tick so far, 15 minutes apart on the
            // meter's clock, energy never falling and never above the register read after.
            let profile = c
                .read_profile_range(Obis::new(1, 0, 99, 1, 0, 255), 0, 4_102_444_800_000)
                .await
                .unwrap();
            let value = profile.value().unwrap();
            let rows = value.elements().unwrap();
            assert!(rows.len() >= 12, "{} rows after 12 ticks", rows.len());
            let mut last: Option<(i64, i128)> = None;
            for r in rows {
                let f = r.elements().unwrap();
                let t = ami_dlms_client::objects::unix_ms(&f[0]).unwrap();
                let wh = f[2].as_i128().unwrap();
                if let Some((t0, wh0)) = last {
                    assert!(
                        (t - t0 - 900_000).abs() < 1000 || f[1].as_i128() != Some(0),
                        "{t0} -> {t}"
                    );
                    assert!(wh >= wh0, "energy fell from {wh0} to {wh}");
                }
                last = Some((t, wh));
            }
            let after = c
                .read_register(Obis::new(1, 0, 1, 8, 0, 255))
                .await
                .unwrap()
                .raw
                .unwrap();
            assert!(energy <= after);
            assert!(last.unwrap().1 <= after);
            c.release().await.unwrap();
        }
        let (_, addr, wport) = &meters[0];
        let io = tokio::net::TcpStream::connect(addr.as_str()).await.unwrap();
        match Client::connect(io, config(*wport, b"00000000")).await {
            Err(ClientError::Refused { diagnostic, .. }) => assert_eq!(diagnostic, 13),
            other => panic!("{:?}", other.map(|_| ())),
        }
    });
    let _ = child.kill();
    let _ = child.wait();
    rt.block_on(async {
        let bus = NatsBus::connect(NATS, Topology::new(&root), 64)
            .await
            .unwrap();
        bus.delete_streams().await.unwrap();
    });
}
