//! The client against an independent DLMS/COSEM server: the gurux-dlms Python library
//! playing a meter (`tests/harness/meter.py`), over TCP with the wrapper and with HDLC, with
//! lowest level security and with HLS-GMAC and glo-ciphering.
//!
//! The harness runs with `$HOME/.cache/ami-test-venv/bin/python` (gurux-dlms and gurux-net,
//! pinned, installed by `cargo xtask setup`); each test starts its own meter on a free port.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use ami_dlms::axdr::Data;
use ami_dlms_client::link::{Framing, HdlcSettings};
use ami_dlms_client::objects::unix_ms;
use ami_dlms_client::{Authentication, Client, ClientConfig, ClientError, Keys, Protection};
use ami_domain::Obis;
use tokio::net::TcpStream;

const PASSWORD: &str = "12345678";
const METER_TITLE: &str = "4752584D45544552";
const EK: [u8; 16] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15];
const AK: [u8; 16] = [
    0xD0, 0xD1, 0xD2, 0xD3, 0xD4, 0xD5, 0xD6, 0xD7, 0xD8, 0xD9, 0xDA, 0xDB, 0xDC, 0xDD, 0xDE, 0xDF,
];
const ENERGY: Obis = Obis::new(1, 0, 1, 8, 0, 255);
const EXPORT: Obis = Obis::new(1, 0, 2, 8, 0, 255);
const VOLTAGE: Obis = Obis::new(1, 0, 32, 7, 0, 255);
const PROFILE: Obis = Obis::new(1, 0, 99, 1, 0, 255);
/// 2026-01-01T00:00:00Z.
const DAY: i64 = 1_767_225_600_000;

/// A gurux meter process, killed on drop.
struct Meter {
    child: Child,
    port: u16,
}

impl Meter {
    fn start(framing: &str, auth: &str) -> Meter {
        let home = std::env::var("HOME").expect("HOME");
        let python = format!("{home}/.cache/ami-test-venv/bin/python");
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/harness/meter.py");
        let mut child = Command::new(&python)
            .args([script, "--framing", framing, "--auth", auth, "--port", "0"])
            .args(["--password", PASSWORD, "--system-title", METER_TITLE])
            .args([
                "--block-key",
                &hex::encode(EK),
                "--auth-key",
                &hex::encode(AK),
            ])
            .stdout(Stdio::piped())
            .stderr(if std::env::var_os("METER_LOG").is_some() {
                Stdio::inherit()
            } else {
                Stdio::null()
            })
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot run {python} (run `cargo xtask setup` for the test venv): {e}")
            });
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("harness output");
        let port = line
            .strip_prefix("READY ")
            .and_then(|p| p.trim().parse().ok())
            .unwrap_or_else(|| panic!("harness did not start (gurux-dlms installed?): {line:?}"));
        Meter { child, port }
    }

    async fn connect(&self, config: ClientConfig) -> Result<Client<TcpStream>, ClientError> {
        let io = TcpStream::connect(("127.0.0.1", self.port)).await?;
        Client::connect(io, config).await
    }
}

impl Drop for Meter {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn wrapper() -> Framing {
    Framing::Wrapper {
        client: 16,
        server: 1,
    }
}

fn hdlc(max_info: u16) -> Framing {
    Framing::Hdlc(HdlcSettings {
        max_info_tx: max_info,
        max_info_rx: max_info,
        ..HdlcSettings::default()
    })
}

fn lls(framing: Framing, password: &str) -> ClientConfig {
    let mut c = ClientConfig::new(framing);
    c.authentication = Authentication::Low(password.as_bytes().to_vec());
    c
}

fn gmac(framing: Framing, ek: [u8; 16], ak: [u8; 16]) -> ClientConfig {
    let mut c = ClientConfig::new(framing);
    c.authentication = Authentication::HlsGmac;
    c.protection = Protection::AuthenticatedEncrypted;
    c.keys = Some(Keys {
        system_title: *b"AMICLI01",
        encryption: ek,
        authentication: ak,
        invocation_counter: 1,
    });
    c
}

/// Registers, scalers and units as the harness sets them.
async fn check_registers(c: &mut Client<TcpStream>) {
    let e = c.read_register(ENERGY).await.unwrap();
    assert_eq!(e.raw, Some(123_456));
    let su = e.scaler_unit.expect("scaler_unit");
    assert_eq!((su.scaler, su.unit), (0, 30), "Wh");
    assert!(!e.frames.is_empty(), "the frames as received are kept");
    assert_eq!(c.read_register(EXPORT).await.unwrap().raw, Some(7890));
    let v = c.read_register(VOLTAGE).await.unwrap();
    assert_eq!(v.raw, Some(2301));
    let su = v.scaler_unit.expect("scaler_unit");
    assert_eq!((su.scaler, su.unit), (-1, 35), "0.1 V");
}

/// The profile between 01:00 and 03:00 of 2026-01-01: nine quarter hours, 1030 to 1110.
async fn check_profile_range(c: &mut Client<TcpStream>) {
    let from = DAY + 3_600_000;
    let to = DAY + 3 * 3_600_000;
    let a = c.read_profile_range(PROFILE, from, to).await.unwrap();
    let rows = a.value().unwrap();
    let rows = rows.elements().expect("array of entries");
    let got: Vec<(i64, i128)> = rows
        .iter()
        .map(|r| {
            let cols = r.elements().expect("entry structure");
            (
                unix_ms(&cols[0]).expect("time"),
                cols[1].as_i128().expect("value"),
            )
        })
        .collect();
    let want: Vec<(i64, i128)> = (3..=11)
        .map(|i| {
            (
                DAY + 15 * 60_000 * (i + 1),
                1000 + 10 * i128::from(i as i32),
            )
        })
        .collect();
    assert_eq!(got, want);
}

async fn check_clock(c: &mut Client<TcpStream>) {
    let to = 1_813_048_200_000; // 2027-06-15T08:30:00Z
    c.set_clock(to).await.unwrap();
    let (read, _) = c.read_clock().await.unwrap();
    assert!((read - to).abs() < 5_000, "clock reads {read}, set to {to}");
}

async fn check_relay(c: &mut Client<TcpStream>) {
    assert!(c.relay_closed().await.unwrap(), "relay starts closed");
    assert!(
        !c.switch_relay(false).await.unwrap(),
        "open after remote_disconnect"
    );
    assert!(!c.relay_closed().await.unwrap());
    assert!(
        c.switch_relay(true).await.unwrap(),
        "closed after remote_reconnect"
    );
}

async fn check_image(c: &mut Client<TcpStream>) {
    let image: Vec<u8> = (0..200u32).map(|i| (i * 7 % 251) as u8).collect();
    assert_eq!(c.image_block_size().await.unwrap(), 64);
    let blocks = c.transfer_image(b"fw-2.0", &image, false).await.unwrap();
    assert_eq!(blocks, 4);
    assert_eq!(
        c.image_transfer_status().await.unwrap(),
        3,
        "verification successful"
    );
    c.image_activate().await.unwrap();
    assert_eq!(
        c.image_transfer_status().await.unwrap(),
        6,
        "activation successful"
    );
}

async fn check_calendar(c: &mut Client<TcpStream>) {
    let days = vec![
        (1u8, vec![(0u16, 1u16), (7 * 60, 2), (22 * 60 + 30, 1)]),
        (2, vec![(0, 1)]),
    ];
    c.set_day_profiles_passive(&days).await.unwrap();
    c.activate_passive_calendar().await.unwrap();
    assert_eq!(c.day_profiles_active().await.unwrap(), days);
}

#[tokio::test]
async fn wrapper_lls_reads_registers_profile_clock_relay_image_and_releases() {
    let meter = Meter::start("wrapper", "lls");
    let mut c = meter.connect(lls(wrapper(), PASSWORD)).await.unwrap();
    let a = c.associated().unwrap().clone();
    assert_eq!(a.mechanism, 1);
    assert!(a.server_max_pdu >= 64);
    assert_ne!(a.conformance, [0, 0, 0]);
    check_registers(&mut c).await;
    check_profile_range(&mut c).await;
    check_clock(&mut c).await;
    check_relay(&mut c).await;
    check_image(&mut c).await;
    check_calendar(&mut c).await;
    c.release().await.unwrap();
}

#[tokio::test]
async fn wrapper_reads_a_whole_profile_in_data_blocks() {
    let meter = Meter::start("wrapper", "lls");
    let mut c = meter.connect(lls(wrapper(), PASSWORD)).await.unwrap();
    // 96 entries of ~21 bytes do not fit the harness's 512-byte PDUs.
    let a = c
        .get(ami_dlms_client::Target::new(7, PROFILE, 2), None)
        .await
        .unwrap();
    assert!(a.frames.len() > 1, "came in {} frames", a.frames.len());
    let rows = a.value().unwrap();
    let rows = rows.elements().unwrap();
    assert_eq!(rows.len(), 96);
    assert_eq!(rows[95].elements().unwrap()[1].as_i128(), Some(1950));
    c.release().await.unwrap();
}

#[tokio::test]
async fn hdlc_lls_segments_both_ways() {
    let meter = Meter::start("hdlc", "lls");
    // 32-byte information fields: the AARQ and the SETs go out in segments, the answers come
    // back in segments.
    let mut c = meter.connect(lls(hdlc(32), PASSWORD)).await.unwrap();
    let n = c.link().negotiated().unwrap();
    assert!(n.max_info_tx <= 32, "{n:?}");
    check_registers(&mut c).await;
    check_profile_range(&mut c).await;
    let all = c
        .get(ami_dlms_client::Target::new(7, PROFILE, 2), None)
        .await
        .unwrap();
    assert_eq!(all.value().unwrap().elements().unwrap().len(), 96);
    assert!(all.frames.len() > 10, "{} frames", all.frames.len());
    check_clock(&mut c).await;
    check_relay(&mut c).await;
    check_calendar(&mut c).await;
    check_image(&mut c).await;
    c.release().await.unwrap();
}

#[tokio::test]
async fn a_wrong_password_is_refused_with_the_diagnostic() {
    for framing in [wrapper(), hdlc(128)] {
        let meter = Meter::start(
            if matches!(framing, Framing::Hdlc(_)) {
                "hdlc"
            } else {
                "wrapper"
            },
            "lls",
        );
        let err = meter.connect(lls(framing, "wrong")).await.unwrap_err();
        match err {
            ClientError::Refused { diagnostic, .. } => assert_eq!(diagnostic, 13, "{err}"),
            other => panic!("expected a refusal, got {other}"),
        }
        // The meter still serves a client with the right password afterwards.
        let c = meter.connect(lls(framing, PASSWORD)).await.unwrap();
        c.release().await.unwrap();
    }
}

#[tokio::test]
async fn hls_gmac_ciphered_wrapper_session() {
    let meter = Meter::start("wrapper", "gmac");
    let mut c = meter.connect(gmac(wrapper(), EK, AK)).await.unwrap();
    let a = c.associated().unwrap().clone();
    assert_eq!(a.mechanism, 5);
    assert_eq!(
        a.server_system_title.map(hex::encode),
        Some(METER_TITLE.to_lowercase())
    );
    let ic_before = c.invocation_counter().unwrap();
    check_registers(&mut c).await;
    assert!(
        c.invocation_counter().unwrap() > ic_before + 5,
        "one counter per APDU"
    );
    check_profile_range(&mut c).await;
    check_clock(&mut c).await;
    check_relay(&mut c).await;
    check_image(&mut c).await;
    check_calendar(&mut c).await;
    c.release().await.unwrap();
}

#[tokio::test]
async fn hls_gmac_ciphered_hdlc_session() {
    let meter = Meter::start("hdlc", "gmac");
    // 128-byte information fields: gurux-dlms 1.0.203 answers a ciphered request that
    // comes in segments with FRMR (its answers still come in segments).
    let mut c = meter.connect(gmac(hdlc(128), EK, AK)).await.unwrap();
    check_registers(&mut c).await;
    check_profile_range(&mut c).await;
    check_relay(&mut c).await;
    c.release().await.unwrap();
}

#[tokio::test]
async fn hls_gmac_with_wrong_keys_is_refused() {
    let meter = Meter::start("wrapper", "gmac");
    let mut bad_ak = AK;
    bad_ak[0] ^= 1;
    let err = meter
        .connect(gmac(wrapper(), EK, bad_ak))
        .await
        .unwrap_err();
    assert!(
        // Whichever side checks first: the meter refusing, or its answer failing our GCM
        // check.
        matches!(
            err,
            ClientError::Authentication(_) | ClientError::Refused { .. } | ClientError::Cipher(_)
        ),
        "wrong AK: {err}"
    );
    let mut bad_ek = EK;
    bad_ek[0] ^= 1;
    let err = meter
        .connect(gmac(wrapper(), bad_ek, AK))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            ClientError::Authentication(_) | ClientError::Refused { .. } | ClientError::Cipher(_)
        ),
        "wrong EK: {err}"
    );
    // The right keys still work.
    meter
        .connect(gmac(wrapper(), EK, AK))
        .await
        .unwrap()
        .release()
        .await
        .unwrap();
}

#[tokio::test]
async fn malformed_answers_are_errors_not_panics() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    // A "meter" that answers the AARQ with garbage of every kind.
    for answer in [
        vec![
            0x00, 0x01, 0x00, 0x01, 0x00, 0x10, 0x00, 0x03, 0x61, 0x05, 0xA1,
        ],
        vec![0x00, 0x01, 0x00, 0x01, 0x00, 0x10, 0x00, 0x02, 0xFF, 0xFF],
        vec![0x00, 0x02, 0x00, 0x01, 0x00, 0x10, 0x00, 0x00],
        vec![
            0x00, 0x01, 0x00, 0x01, 0x00, 0x10, 0x00, 0x04, 0x61, 0x02, 0xA2, 0x00,
        ],
    ] {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 512];
            let _ = s.read(&mut buf).await;
            s.write_all(&answer).await.unwrap();
            let _ = s.read(&mut buf).await;
        });
        let io = TcpStream::connect(addr).await.unwrap();
        let mut cfg = lls(wrapper(), PASSWORD);
        cfg.timeout = Duration::from_millis(500);
        let err = Client::connect(io, cfg).await.unwrap_err();
        assert!(
            matches!(
                err,
                ClientError::Malformed(_)
                    | ClientError::Protocol(_)
                    | ClientError::Timeout(_)
                    | ClientError::Refused { .. }
            ),
            "{err}"
        );
        server.abort();
    }
    let _ = Data::Null;
}

/// The meter link: signed head-end commands carried out on the gurux meter, and the read
/// report handed to the adapter decoded by the ingest's `dlms` decoder.
#[tokio::test]
async fn meter_link_carries_out_head_end_commands() {
    use ami_adapter::{Adapter, AdapterConfig, LinkError, MeterLink};
    use ami_bus::command::{AckResult, CommandKind};
    use ami_dlms_client::{DlmsMeterLink, MeterTarget};
    use std::collections::HashMap;

    let meter = Meter::start("wrapper", "gmac");
    let spool = tempfile::tempdir().unwrap();
    let adapter = Adapter::open(AdapterConfig::new("dlms-test"), spool.path()).unwrap();
    let mut meters = HashMap::new();
    meters.insert(
        "m1".to_owned(),
        MeterTarget {
            address: format!("127.0.0.1:{}", meter.port),
            config: gmac(wrapper(), EK, AK),
            registers: vec![ENERGY, VOLTAGE],
            has_relay: true,
        },
    );
    let link = DlmsMeterLink::new(meters, Some(adapter.clone()));

    let frame = match link.execute("m1", &CommandKind::ReadNow).await.unwrap() {
        AckResult::Read {
            frame,
            relay_closed,
        } => {
            assert_eq!(relay_closed, Some(true));
            frame
        }
        other => panic!("{other:?}"),
    };
    assert_eq!(adapter.pending(), 1, "the read report is in the spool");
    let d = ami_dlms::decode(&frame, 0, &mut ami_domain::crypto::NoKeys).unwrap();
    let energy = d
        .readings
        .iter()
        .find(|r| r.register == ENERGY)
        .expect("energy reading");
    assert_eq!(energy.value.to_string(), "123456");
    let volts = d
        .readings
        .iter()
        .find(|r| r.register == VOLTAGE)
        .expect("voltage reading");
    assert_eq!(volts.value.to_string(), "230.1");
    // Stamped with the meter's clock (2026-01-02 12:00 UTC and running), not the receiver's.
    assert!(
        (energy.ts_ms - 1_767_355_200_000).abs() < 60_000,
        "{}",
        energy.ts_ms
    );

    assert_eq!(
        link.execute("m1", &CommandKind::Disconnect).await.unwrap(),
        AckResult::Relay { closed: false }
    );
    assert_eq!(
        link.execute("m1", &CommandKind::Reconnect).await.unwrap(),
        AckResult::Relay { closed: true }
    );
    assert_eq!(
        link.execute(
            "m1",
            &CommandKind::SetClock {
                to_ms: 1_800_000_000_000
            }
        )
        .await
        .unwrap(),
        AckResult::Done
    );
    assert_eq!(
        link.execute(
            "m1",
            &CommandKind::SetTou {
                switches: vec![(0, 1), (420, 2)],
                weekend: Some(1)
            }
        )
        .await
        .unwrap(),
        AckResult::Done
    );

    // Firmware: 3 blocks of 50 bytes from the head-end; the meter takes 64-byte blocks.
    let image: Vec<u8> = (0..150u32).map(|i| (i * 13 % 256) as u8).collect();
    let block = |n: u32| CommandKind::FirmwareBlock {
        version: "2.1".into(),
        number: n,
        total: 3,
        data: image[n as usize * 50..(n as usize + 1) * 50].to_vec(),
    };
    assert_eq!(
        link.execute("m1", &block(0)).await.unwrap(),
        AckResult::Firmware { next_block: 1 }
    );
    // Out of order: refused with the block expected.
    match link.execute("m1", &block(2)).await {
        Err(LinkError::Refused { result, .. }) => {
            assert_eq!(result, Some(AckResult::Firmware { next_block: 1 }))
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        link.execute("m1", &block(1)).await.unwrap(),
        AckResult::Firmware { next_block: 2 }
    );
    assert_eq!(
        link.execute("m1", &block(2)).await.unwrap(),
        AckResult::Firmware { next_block: 3 }
    );
    assert!(matches!(
        link.execute("m1", &CommandKind::FirmwareVerify { crc32: 1 })
            .await,
        Err(LinkError::Refused { .. })
    ));
    assert_eq!(
        link.execute(
            "m1",
            &CommandKind::FirmwareVerify {
                crc32: crc32fast::hash(&image)
            }
        )
        .await
        .unwrap(),
        AckResult::Verified
    );
    assert_eq!(
        link.execute("m1", &CommandKind::FirmwareActivate)
            .await
            .unwrap(),
        AckResult::Activated {
            version: "2.1".into()
        }
    );
    assert!(matches!(
        link.execute("m1", &CommandKind::ClearAlarms).await,
        Err(LinkError::Unsupported(_))
    ));
    assert!(matches!(
        link.execute("nobody", &CommandKind::ReadNow).await,
        Err(LinkError::Unsupported(_))
    ));
}
