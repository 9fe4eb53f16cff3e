//! `cargo xtask`: the project's developer tasks.
//!
//! - `setup`: installs what the tests need where it is missing (the `wasm32-wasip2` target,
//!   nats-server, PostgreSQL, Mosquitto) and starts the services;
//! - `components`: builds every Wasm component for `wasm32-wasip2`, packages and signs the
//!   shipped ones with the local development key, and installs them where `ami` looks;
//! - `test`: `setup`, `components`, then the whole test suite;
//! - `lint`: rustfmt and clippy on host crates and on components;
//! - `up`: `components`, then `ami up` on the embedded defaults;
//! - `bench-deps`: a Python virtualenv with the independent decoders `ami bench plugins`
//!   compares against (dsmr-parser, amshan, pyMeterBus, pymbusparser).

use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::process::Command;

mod components;
mod setup;

fn main() -> std::process::ExitCode {
    match task() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn task() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (task, rest) = args
        .split_first()
        .map(|(t, r)| (t.as_str(), r))
        .unwrap_or(("help", &[]));
    // `cargo xtask up -- --meters 10`: what follows `--` goes to the final command.
    let rest = match rest.split_first() {
        Some((dashes, tail)) if dashes == "--" => tail,
        _ => rest,
    };
    match task {
        "setup" => setup::run(),
        "components" => components::run().map(|_| ()),
        "test" => {
            setup::run()?;
            components::run()?;
            cargo(&["test"], rest)
        }
        "lint" => lint(),
        "bench-deps" => bench_deps(),
        "up" => {
            components::run()?;
            cargo(&["run", "--release", "-p", "ami-cli", "--", "up"], rest)
        }
        "help" | "--help" | "-h" => {
            println!(
                "usage: cargo xtask <setup|components|test|lint|up|bench-deps> [args for the final cargo command]"
            );
            Ok(())
        }
        other => {
            eprintln!("xtask: unknown task {other:?}");
            eprintln!(
                "usage: cargo xtask <setup|components|test|lint|up|bench-deps> [args for the final cargo command]"
            );
            anyhow::bail!("no such task")
        }
    }
}

/// The workspace root (xtask lives one level below it).
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// Where cargo puts build output.
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target"))
}

/// Runs cargo in the workspace root with `args` then `extra`.
pub fn cargo(args: &[&str], extra: &[String]) -> Result<()> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(root()).args(args);
    cmd.args(extra);
    run(&mut cmd)
}

/// Runs a command, failing with its status.
pub fn run(cmd: &mut Command) -> Result<()> {
    let status = cmd
        .status()
        .with_context(|| format!("cannot start {cmd:?}"))?;
    if !status.success() {
        bail!("{cmd:?} failed: {status}");
    }
    Ok(())
}

/// The reference decoders of `ami bench plugins`, pinned, in `~/.cache/ami-bench-venv`.
fn bench_deps() -> Result<()> {
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_default();
    let venv = home.join(".cache/ami-bench-venv");
    if !venv.join("bin/python").is_file() {
        run(Command::new("python3").arg("-m").arg("venv").arg(&venv))?;
    }
    run(Command::new(venv.join("bin/pip")).args([
        "install",
        "-q",
        "dsmr-parser==1.11.2",
        "amshan==2.1.1",
        "pyMeterBus==0.8.5",
        "pymbusparser==0.5.3",
    ]))?;
    println!("reference decoders installed in {}", venv.display());
    Ok(())
}

fn lint() -> Result<()> {
    cargo(&["fmt", "--all", "--", "--check"], &[])?;
    cargo(&["clippy", "--all-targets", "--", "-D", "warnings"], &[])?;
    let mut args = vec!["clippy", "--target", "wasm32-wasip2"];
    for c in components::COMPONENT_CRATES {
        args.extend(["-p", c]);
    }
    args.extend(["-p", "ami-plugin-sdk", "--", "-D", "warnings"]);
    cargo(&args, &[])
}
