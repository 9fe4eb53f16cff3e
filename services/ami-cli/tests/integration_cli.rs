//! The `ami` binary as its users run it: a vendor from `ami plugin new` to a signed plugin that
//! passes `ami plugin test`; the shipped decoders on the peers' vectors; `ami decode`.

#![allow(clippy::expect_used, clippy::panic, clippy::unwrap_used, missing_docs)]

use ami_e2e::{root, shipped_package, target_dir, vendor};
use std::path::Path;
use std::process::{Command, Output};

/// Runs `ami` with its own (empty) home, so the user's installed plugins never interfere.
fn ami(home: &Path, args: &[&str]) -> Output {
    ami_with(home, args, &[])
}

/// Runs `ami` with extra environment variables.
fn ami_with(home: &Path, args: &[&str], env: &[(&str, &Path)]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_ami"))
        .args(args)
        .envs(env.iter().copied())
        .env("AMI_HOME", home)
        .env_remove("AMI_PLUGIN_DIR")
        .env_remove("AMI_TRUST_DIR")
        .env_remove("NATS_URL")
        .output()
        .expect("run ami");
    eprintln!(
        "$ ami {}\n{}{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A home with the shipped decoders installed and signed by a trusted key.
fn home_with_shipped() -> tempfile::TempDir {
    let home = tempfile::tempdir().unwrap();
    let key = vendor();
    let plugins = home.path().join("plugins");
    std::fs::create_dir_all(home.path().join("trusted-keys")).unwrap();
    std::fs::write(
        home.path().join("trusted-keys/ci.pub"),
        hex::encode(key.verifying_key().to_bytes()),
    )
    .unwrap();
    shipped_package(&plugins, "decoders/dlms", "ami-decoder-dlms", &key);
    shipped_package(&plugins, "decoders/dsmr", "ami-decoder-dsmr", &key);
    shipped_package(
        &plugins,
        "decoders/iec62056-21",
        "ami-decoder-iec62056-21",
        &key,
    );
    shipped_package(&plugins, "decoders/mbus", "ami-decoder-mbus", &key);
    shipped_package(&plugins, "decoders/ansi-c12", "ami-decoder-ansi-c12", &key);
    home
}

#[test]
fn integration_cli_scaffolded_plugins_build_sign_load_and_pass() {
    let work = tempfile::tempdir().unwrap();
    let home = work.path().join("home");
    let sdk = root().join("components/sdk");
    let sdk = sdk.to_str().unwrap();
    let parent = work.path().to_str().unwrap();
    // Scaffolded crates share one build cache of their own (the test's cargo holds the main one).
    let cache = target_dir().join("scaffolded-plugins");
    let env = [("CARGO_TARGET_DIR", cache.as_path())];

    for kind in ["decoder", "vee-rule", "tariff"] {
        let name = format!("acme-{kind}");
        assert!(
            ami(
                &home,
                &[
                    "plugin", "new", &name, "--kind", kind, "--dir", parent, "--sdk", sdk
                ]
            )
            .status
            .success()
        );
        let crate_dir = work.path().join(&name);
        let built = ami_with(
            &home,
            &["plugin", "build", crate_dir.to_str().unwrap()],
            &env,
        );
        assert!(built.status.success(), "{kind} template must build as is");
        let pkg = crate_dir.join("dist").join(&name);
        assert_eq!(stdout(&built).trim(), pkg.to_str().unwrap());
        let inspected = stdout(&ami(&home, &["plugin", "inspect", pkg.to_str().unwrap()]));
        assert!(
            inspected.contains(&format!("world:     {kind}")),
            "{inspected}"
        );
        assert!(
            inspected.contains("NOT loadable") && inspected.contains("unsigned"),
            "{inspected}"
        );
    }

    let pkg = work.path().join("acme-decoder/dist/acme-decoder");
    let key = work.path().join("vendor.key");
    assert!(
        ami(&home, &["plugin", "keygen", "--out", key.to_str().unwrap()])
            .status
            .success()
    );
    let public = work.path().join("vendor.key.pub");
    assert_eq!(std::fs::read_to_string(&public).unwrap().len(), 64);
    assert!(
        ami(
            &home,
            &[
                "plugin",
                "sign",
                pkg.to_str().unwrap(),
                "--key",
                key.to_str().unwrap()
            ]
        )
        .status
        .success()
    );

    // Not trusted yet: refused with the reason.
    let vectors = work.path().join("acme-decoder/vectors.jsonl");
    let untrusted = ami(
        &home,
        &[
            "plugin",
            "test",
            pkg.to_str().unwrap(),
            "--vectors",
            vectors.to_str().unwrap(),
        ],
    );
    assert!(!untrusted.status.success());
    assert!(String::from_utf8_lossy(&untrusted.stderr).contains("not in the trust store"));

    let tested = ami(
        &home,
        &[
            "plugin",
            "test",
            pkg.to_str().unwrap(),
            "--vectors",
            vectors.to_str().unwrap(),
            "--trust",
            public.to_str().unwrap(),
        ],
    );
    assert!(tested.status.success());
    let text = stdout(&tested);
    assert!(text.contains("PASS acme-decoder-energy"), "{text}");
    assert!(text.contains("PASS acme-decoder-garbage"), "{text}");
    assert!(
        text.contains("2 passed, 0 failed, 0 skipped of 2"),
        "{text}"
    );
}

#[test]
fn integration_cli_plugin_test_fails_a_wrong_expectation() {
    let home = home_with_shipped();
    let work = tempfile::tempdir().unwrap();
    let vectors = work.path().join("wrong.jsonl");
    std::fs::write(
        &vectors,
        "{\"id\":\"wrong-value\",\"frame_text\":\"/ISk5\\\\2MT382-1000\\r\\n\\r\\n1-0:1.8.1(00001.001*kWh)\\r\\n!\\r\\n\",\
         \"expected\":{\"readings\":[{\"register\":\"1-0:1.8.1\",\"value\":\"2.002\",\"unit\":\"kWh\"}]}}\n",
    )
    .unwrap();
    let out = ami(
        home.path(),
        &[
            "plugin",
            "test",
            "dsmr",
            "--vectors",
            vectors.to_str().unwrap(),
            "--protocol",
            "ami",
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(text.contains("FAIL wrong-value"), "{text}");
    assert!(text.contains("expected 2002 Wh, got 1001 Wh"), "{text}");
}

#[test]
fn integration_cli_shipped_decoders_pass_peer_vectors() {
    let home = home_with_shipped();
    for (plugin, file) in [
        ("dsmr", "dsmr/dsmr.jsonl"),
        ("iec62056-21", "iec62056-21/iec62056-21.jsonl"),
        ("mbus", "mbus/mbus-wired.jsonl"),
        ("ansi-c12", "ansi-c12/ansi-c12.jsonl"),
    ] {
        let vectors = root().join("tests/vectors").join(file);
        let out = ami(
            home.path(),
            &[
                "plugin",
                "test",
                plugin,
                "--vectors",
                vectors.to_str().unwrap(),
            ],
        );
        assert!(out.status.success(), "{plugin}: every vector must pass");
        assert!(stdout(&out).contains(" 0 failed"), "{}", stdout(&out));
    }
}

#[test]
fn integration_cli_decode_prints_canonical_json_lines() {
    let home = home_with_shipped();
    let work = tempfile::tempdir().unwrap();
    let telegram = "/ISk5\\2MT382-1000\r\n\r\n1-3:0.2.8(50)\r\n0-0:1.0.0(170102192002W)\r\n\
                    0-0:96.1.1(4B384547303034303436333935353037)\r\n1-0:1.8.1(001581.123*kWh)\r\n\
                    1-0:1.7.0(00.193*kW)\r\n!";
    let crc = ami_domain::checksum::crc16_arc(telegram.as_bytes());
    let file = work.path().join("t.txt");
    std::fs::write(&file, format!("{telegram}{crc:04X}\r\n")).unwrap();
    let out = ami(
        home.path(),
        &[
            "decode",
            "--protocol",
            "dsmr",
            "--file",
            file.to_str().unwrap(),
        ],
    );
    assert!(out.status.success());
    let lines: Vec<serde_json::Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let energy = lines
        .iter()
        .find(|l| l["register"] == "1-0:1.8.1*255")
        .expect("energy line");
    assert_eq!(energy["value"], "1581123");
    assert_eq!(energy["unit"], "Wh");
    assert_eq!(energy["ts"], "2017-01-02T18:20:02Z");
    assert_eq!(energy["meter"], "4B384547303034303436333935353037");
    let power = lines
        .iter()
        .find(|l| l["register"] == "1-0:1.7.0*255")
        .expect("power line");
    assert_eq!(power["value"], "193");
    assert_eq!(power["unit"], "W");

    // A corrupted frame is rejected with the reason and exit code 1.
    std::fs::write(
        &file,
        format!("{}{crc:04X}\r\n", telegram.replace("1581.123", "1581.124")),
    )
    .unwrap();
    let bad = ami(
        home.path(),
        &[
            "decode",
            "--protocol",
            "dsmr",
            "--file",
            file.to_str().unwrap(),
        ],
    );
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("checksum"));

    // An unknown protocol names what is installed.
    let none = ami(
        home.path(),
        &["decode", "--protocol", "meters-and-more", "--hex", "00"],
    );
    assert_eq!(none.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&none.stderr).contains("installed: ansi-c12, osgp, dlms, dsmr")
    );
}

#[test]
fn integration_cli_wireless_mbus_vectors_meet_their_floor() {
    // wmbusmeters' drivers also read manufacturer-specific data and compute derived values;
    // ami decodes the standard records. The floor is what the decoder reaches today.
    let home = home_with_shipped();
    let vectors = root().join("tests/vectors/wmbus/wmbus.jsonl");
    let out = ami(
        home.path(),
        &[
            "plugin",
            "test",
            "mbus",
            "--protocol",
            "wmbus",
            "--vectors",
            vectors.to_str().unwrap(),
        ],
    );
    let text = stdout(&out);
    let summary = text.lines().last().unwrap_or_default();
    let passed: usize = summary
        .split(": ")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    // One line of the file (qwaterv2-3) has an odd number of hex digits: it fails as unusable.
    assert!(passed >= 244, "{summary}");
    assert!(text.contains("PASS "), "{text}");
}

#[test]
fn integration_cli_up_runs_the_fleet_through_the_decoder() {
    let home = home_with_shipped();
    let metrics = home.path().join("metrics.prom");
    let out = ami(
        home.path(),
        &[
            "up",
            "--meters",
            "40",
            "--ticks",
            "3",
            "--rate",
            "50",
            "--metrics-file",
            metrics.to_str().unwrap(),
            "--mdms-listen",
            "127.0.0.1:0",
        ],
    );
    let text = stdout(&out);
    assert!(out.status.success(), "{text}");
    // Every frame the mixed fleet sent (DSMR, ciphered DLMS, encrypted wM-Bus, IEC) is decoded.
    let stopped = text
        .lines()
        .find(|l| l.starts_with("stopped: "))
        .unwrap_or_else(|| panic!("{text}"));
    let numbers: Vec<u64> = stopped
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|w| w.parse().ok())
        .collect();
    assert!(numbers[0] >= 100, "{stopped}");
    assert_eq!(
        numbers[0], numbers[1],
        "every frame sent is decoded: {stopped}"
    );
    assert!(stopped.ends_with(" 0 dead letters"), "{stopped}");
    // The MDMS role stored every reading the pipeline published, in its embedded store.
    let mdms = text
        .lines()
        .find(|l| l.starts_with("mdms: "))
        .unwrap_or_else(|| panic!("{text}"));
    let stored: Vec<u64> = mdms
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|w| w.parse().ok())
        .collect();
    assert!(numbers[2] > 0, "{stopped}");
    assert_eq!(stored[0], numbers[2], "{mdms} / {stopped}");
    assert_eq!(stored[1], numbers[2], "every reading is new: {mdms}");
    assert!(mdms.ends_with(" 0 dead letters"), "{mdms}");
    assert!(home.path().join("mdms.db").exists(), "{mdms}");
    let m = std::fs::read_to_string(&metrics).unwrap();
    for plugin in ["dsmr", "dlms", "mbus", "iec62056-21"] {
        assert!(
            m.contains(&format!(
                "ami_plugin_errors_total{{plugin=\"{plugin}\",version=\"0.1.0\"}} 0\n"
            )),
            "{m}"
        );
    }
    assert!(m.contains("ami_ingest_dead_letters_total 0\n"), "{m}");
}

#[test]
fn integration_cli_up_traces_each_frame_from_adapter_to_mdms() {
    use std::collections::HashMap;
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut collector = rt
        .block_on(ami_telemetry::collector::TestCollector::start())
        .unwrap();
    let endpoint = collector.endpoint();
    let home = home_with_shipped();
    let out = ami_with(
        home.path(),
        &[
            "up",
            "--meters",
            "8",
            "--ticks",
            "2",
            "--rate",
            "20",
            "--mdms-listen",
            "127.0.0.1:0",
        ],
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", Path::new(&endpoint)),
            ("OTEL_BSP_SCHEDULE_DELAY", Path::new("100")),
        ],
    );
    assert!(out.status.success(), "{}", stdout(&out));
    // The process flushed its spans on exit; give the collector's task a moment to hand them on.
    let mut spans = Vec::new();
    for _ in 0..50 {
        spans.extend(collector.drain());
        if spans.iter().any(|s| s.name == "ami.mdms.store") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    spans.extend(collector.drain());
    assert!(
        spans
            .iter()
            .all(|s| s.service_name.as_deref() == Some("ami-up")),
        "{spans:?}"
    );
    let by_id: HashMap<&[u8], &ami_telemetry::collector::ReceivedSpan> =
        spans.iter().map(|s| (s.span_id.as_slice(), s)).collect();
    let named = |n: &'static str| spans.iter().filter(move |s| s.name == n);
    let decodes: Vec<_> = named("ami.ingest.decode").collect();
    assert!(
        decodes.len() >= 16,
        "a decode span per frame: {}",
        decodes.len()
    );
    // Each frame's decode continues the trace its adapter span started.
    for d in &decodes {
        let parent = by_id
            .get(d.parent_span_id.as_slice())
            .unwrap_or_else(|| panic!("decode span without its adapter span: {d:?}"));
        assert_eq!(parent.name, "ami.adapter.receive");
        assert!(
            parent.parent_span_id.is_empty(),
            "the adapter span is the root"
        );
        assert_eq!(parent.trace_id, d.trace_id);
    }
    // The MDMS stores each readings message under the decode span of its frame.
    let stores: Vec<_> = named("ami.mdms.store").collect();
    assert!(!stores.is_empty());
    for s in &stores {
        let parent = by_id
            .get(s.parent_span_id.as_slice())
            .unwrap_or_else(|| panic!("store span without its decode span: {s:?}"));
        assert_eq!(parent.name, "ami.ingest.decode");
        assert_eq!(parent.trace_id, s.trace_id);
    }
}

#[test]
fn integration_cli_decode_encrypted_dlms_keys_stay_in_the_host() {
    let home = home_with_shipped();
    let vectors = ami_vectors_line("dlms_cosem-wrapper-glo-cipher-6");
    let frame = vectors["frame_hex"].as_str().unwrap();
    let key = hex::encode(b"MYDUMMYGLOBALKEY");
    let ok = ami(
        home.path(),
        &[
            "decode",
            "--protocol",
            "dlms",
            "--hex",
            frame,
            "--key",
            &key,
            "--auth-key",
            &key,
        ],
    );
    assert!(ok.status.success());
    let text = stdout(&ok);
    let first: serde_json::Value =
        serde_json::from_str(text.lines().next().expect("a line")).unwrap();
    assert_eq!(
        first["meter"].as_str().map(str::len),
        Some(16),
        "meter is the system title: {first}"
    );
    // A wrong key is an authentication failure, not garbage; no key says which is missing.
    let wrong = hex::encode(b"WRONGGLOBALKEY!!");
    let bad = ami(
        home.path(),
        &[
            "decode",
            "--protocol",
            "dlms",
            "--hex",
            frame,
            "--key",
            &wrong,
            "--auth-key",
            &wrong,
        ],
    );
    assert_eq!(bad.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("authentication"),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
    let none = ami(
        home.path(),
        &["decode", "--protocol", "dlms", "--hex", frame],
    );
    assert_eq!(none.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&none.stderr).contains("missing key"));
}

/// One vector of the DLMS file, by id.
fn ami_vectors_line(id: &str) -> serde_json::Value {
    let text = std::fs::read_to_string(root().join("tests/vectors/dlms/dlms.jsonl")).unwrap();
    text.lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|v| v["id"] == id)
        .unwrap()
}
