//! `ami hes` as an operator starts it (embedded registry, master key and tokens from the
//! environment), called by a gRPC client that no one here wrote: the Python grpcio client
//! discovers the services by reflection, imports meters from CSV, lists them, stores a key and
//! lists its metadata, and the key's bytes never come back.

#![allow(clippy::expect_used, clippy::panic, clippy::unwrap_used, missing_docs)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

const KEY_HEX: &str = "000102030405060708090a0b0c0d0e0f";
const KEY_B64: &str = "AAECAwQFBgcICQoLDA0ODw==";

#[test]
fn integration_cli_hes_serves_a_foreign_client_by_reflection() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite:{}", dir.path().join("hes.db").display());
    let mut hes = KillOnDrop(
        Command::new(env!("CARGO_BIN_EXE_ami"))
            .args(["hes", "--listen", "127.0.0.1:0", "--database-url", &db])
            .env("AMI_HES_MASTER_KEY", "11".repeat(32))
            .env(
                "AMI_HES_TOKENS",
                "olga operator tok-olga-0123456789;kim key-admin,operator tok-kim-0123456789",
            )
            .env_remove("NATS_URL")
            .env_remove("AMI_HES_SIGNING_KEY")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("run ami hes"),
    );
    let mut lines = BufReader::new(hes.0.stdout.take().unwrap()).lines();
    let banner = lines
        .next()
        .expect("ami hes printed nothing")
        .expect("a line");
    eprintln!("{banner}");
    let addr = banner
        .split(" on ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .unwrap_or_else(|| panic!("no address in {banner}"))
        .to_owned();
    assert!(banner.contains("no bus: commands off"), "{banner}");

    let csv = "serial,protocol,dlms_system_title,feeder,transformer,status\\n\
               HES-1,dlms,4d4d4d0000000001,F1,T1,commissioned\\n\
               HES-2,dlms,4d4d4d0000000002,F1,T1,installed\\n\
               HES-2,dlms,4d4d4d0000000003,F1,T1,installed\\n";
    let client = |token: &str, calls: &[(&str, String)]| {
        let mut cmd = Command::new(ami_e2e::test_python());
        cmd.arg(ami_e2e::root().join("tests/harness/grpc_reflect_call.py"))
            .args([addr.as_str(), token]);
        for (method, body) in calls {
            cmd.args([*method, body.as_str()]);
        }
        let out = cmd.output().expect("python");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "{text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        text
    };
    let text = client(
        "tok-olga-0123456789",
        &[
            (
                "ami.hes.v1.RegistryService/ImportMeters",
                format!(r#"{{"csv":"{csv}"}}"#),
            ),
            ("ami.hes.v1.RegistryService/ListMeters", "{}".into()),
        ],
    );
    let lines: Vec<&str> = text.lines().collect();
    for service in [
        "ami.hes.v1.CommandService",
        "ami.hes.v1.EventService",
        "ami.hes.v1.KeyService",
        "ami.hes.v1.OutageService",
        "ami.hes.v1.RegistryService",
        "grpc.health.v1.Health",
    ] {
        assert!(lines[0].contains(&format!("\"{service}\"")), "{}", lines[0]);
    }
    // Two rows imported, the repeated serial refused on its line.
    assert!(lines[1].contains("\"imported\": 2"), "{}", lines[1]);
    assert!(lines[1].contains("\"line\": 4"), "{}", lines[1]);
    assert!(
        lines[2].contains("\"HES-1\"") && lines[2].contains("\"HES-2\""),
        "{}",
        lines[2]
    );
    assert_eq!(lines[3], "{\"without_token\": \"UNAUTHENTICATED\"}");

    // An operator may not store keys; a key admin may, and gets metadata only (listing keys
    // takes the operator role too).
    let put = format!(r#"{{"serial":"HES-1","role":"KEY_ROLE_DLMS_UNICAST","key":"{KEY_B64}"}}"#);
    let refused = client(
        "tok-olga-0123456789",
        &[("ami.hes.v1.KeyService/PutKey", put.clone())],
    );
    assert!(refused.contains("PERMISSION_DENIED"), "{refused}");
    let text = client(
        "tok-kim-0123456789",
        &[
            ("ami.hes.v1.KeyService/PutKey", put),
            (
                "ami.hes.v1.KeyService/ListKeys",
                r#"{"serial":"HES-1"}"#.into(),
            ),
        ],
    );
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[1].contains("\"version\": 1"), "{text}");
    assert!(lines[2].contains("KEY_STATE_ACTIVE"), "{text}");
    for leaked in [KEY_B64, KEY_HEX, "AAECAwQFBgcICQoLDA0ODw"] {
        assert!(!text.contains(leaked), "the key came back: {text}");
    }
}

/// The server process, stopped however the test ends.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
