//! Installs and starts what the test suite needs, where it is missing.

use anyhow::Result;
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

use crate::run as run_cmd;

fn have(cmd: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {cmd} >/dev/null 2>&1")])
        .status()
        .is_ok_and(|s| s.success())
}

fn listening(port: u16) -> bool {
    TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_millis(300)).is_ok()
}

fn sudo() -> Vec<&'static str> {
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0"));
    if root { vec![] } else { vec!["sudo"] }
}

fn sh(line: &str) -> Result<()> {
    let mut cmd = Command::new("sh");
    cmd.args(["-c", line]);
    run_cmd(&mut cmd)
}

/// Installs the wasm target, nats-server, PostgreSQL and Mosquitto (for the MQTT bridge's
/// tests) where missing; starts them.
pub fn run() -> Result<()> {
    let targets = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()?;
    if !String::from_utf8_lossy(&targets.stdout).contains("wasm32-wasip2") {
        run_cmd(Command::new("rustup").args(["target", "add", "wasm32-wasip2"]))?;
    }
    let sudo = sudo().join(" ");
    let mut missing = Vec::new();
    if !have("nats-server") {
        missing.push("nats-server");
    }
    if !have("pg_ctlcluster") {
        missing.push("postgresql");
    }
    if !have("mosquitto") {
        missing.push("mosquitto");
    }
    if !missing.is_empty() {
        sh(&format!(
            "{sudo} apt-get update -qq && {sudo} env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq {}",
            missing.join(" ")
        ))?;
    }
    if !listening(4222) {
        sh(&format!(
            "{sudo} mkdir -p /var/lib/nats-server && {sudo} start-stop-daemon --start --oknodo --background \
             --exec \"$(command -v nats-server)\" -- -a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server"
        ))?;
    }
    if !listening(5432) {
        sh(&format!(
            "for v in $(ls /etc/postgresql); do {sudo} pg_ctlcluster --skip-systemctl-redirect $v main start || true; done"
        ))?;
    }
    test_venv()?;
    if !listening(1883) {
        // Without a configuration file Mosquitto 2 listens on the loopback interface only.
        sh(&format!(
            "{sudo} start-stop-daemon --start --oknodo --background \
             --exec \"$(command -v mosquitto)\" -- -p 1883"
        ))?;
    }
    for _ in 0..50 {
        if listening(4222) && listening(5432) && listening(1883) {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    anyhow::bail!(
        "nats-server (4222), PostgreSQL (5432) or Mosquitto (1883) did not come up on 127.0.0.1"
    )
}

/// The Python tools of the tests, pinned, in `~/.cache/ami-test-venv`: grpcio and
/// grpcio-reflection, a gRPC client that discovers the APIs by reflection.
fn test_venv() -> Result<()> {
    let home = std::env::var_os("HOME")
        .map(std::path::PathBuf::from)
        .unwrap_or_default();
    let venv = home.join(".cache/ami-test-venv");
    let python = venv.join("bin/python");
    let ready = Command::new(&python)
        .args(["-c", "import grpc, grpc_reflection, gurux_dlms, gurux_net"])
        .output()
        .is_ok_and(|o| o.status.success());
    if ready {
        return Ok(());
    }
    if !python.is_file() {
        run_cmd(Command::new("python3").arg("-m").arg("venv").arg(&venv))?;
    }
    run_cmd(Command::new(venv.join("bin/pip")).args([
        "install",
        "-q",
        "grpcio==1.76.0",
        "grpcio-reflection==1.76.0",
        "gurux-common==1.0.13",
        "gurux-dlms==1.0.203",
        "gurux-net==1.0.23",
    ]))
}
