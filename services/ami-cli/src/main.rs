//! `ami`: one binary, a subcommand per role of the platform.
//!
//! Plugin tooling for vendors (`ami plugin new|build|sign|keygen|inspect|test|list`), frame
//! decoding through the installed decoder components (`ami decode`), benchmarks
//! (`ami bench plugins`, `ami bench ingest`), the host runtime's ingest role (`ami host`) and
//! the single-machine platform (`ami up`), the fleet simulator (`ami sim`), the MDMS (`ami mdms`) and the head-end (`ami hes`).

use anyhow::Result;
use clap::{Parser, Subcommand};

mod bench;
mod decode_cmd;
mod hes_cmd;
mod host_cmd;
mod mdms_cmd;
mod native;
mod output;
mod paths;
mod platform;
mod plugin_cmd;
mod scaffold;
mod sim_cmd;
mod up;

/// ami: a WebAssembly-based, cloud-native Advanced Metering Infrastructure platform.
#[derive(Parser)]
#[command(name = "ami", version, about)]
struct Cli {
    #[command(flatten)]
    paths: paths::PathArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Write, build, sign, inspect and test plugins.
    #[command(subcommand)]
    Plugin(plugin_cmd::PluginCommand),
    /// Decode one frame with the installed decoder for its protocol; prints JSON lines.
    Decode(decode_cmd::DecodeArgs),
    /// Benchmarks that print figures.
    #[command(subcommand)]
    Bench(bench::BenchCommand),
    /// Run the platform on one machine: simulated meters, adapter, bus, decoders, readings.
    Up(up::UpArgs),
    /// The host runtime's ingest role on NATS: raw frames to readings, events, dead letters.
    Host(host_cmd::HostArgs),
    /// The Meter Data Management System: readings into the store, VEE, bills, gRPC ami.mdms.v1.
    Mdms(mdms_cmd::MdmsArgs),
    /// The meter fleet simulator as an edge adapter on NATS, obeying signed commands.
    Sim(sim_cmd::SimArgs),
    /// The head-end system: registry, keys, events, outages and commands, gRPC ami.hes.v1.
    Hes(hes_cmd::HesArgs),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    // Log lines by `AMI_LOG` (default `warn`); spans exported over OTLP when
    // `OTEL_EXPORTER_OTLP_ENDPOINT` is set, as the process's role (`ami-host`, `ami-mdms` ...).
    let role = match &cli.command {
        Command::Plugin(_) => "ami-plugin",
        Command::Decode(_) => "ami-decode",
        Command::Bench(_) => "ami-bench",
        Command::Up(_) => "ami-up",
        Command::Host(_) => "ami-host",
        Command::Mdms(_) => "ami-mdms",
        Command::Hes(_) => "ami-hes",
        Command::Sim(_) => "ami-sim",
    };
    let telemetry = ami_telemetry::TelemetryConfig::from_env(role)
        .with_log_filter(std::env::var("AMI_LOG").unwrap_or_else(|_| "warn".to_owned()));
    let _telemetry = match ami_telemetry::init_with(&telemetry) {
        Ok(guard) => guard,
        Err(e) => {
            eprintln!("ami: telemetry: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("ami: {e:#}");
            std::process::ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> Result<std::process::ExitCode> {
    match cli.command {
        Command::Plugin(c) => plugin_cmd::run(c, &cli.paths),
        Command::Decode(a) => decode_cmd::run(a, &cli.paths),
        Command::Bench(c) => bench::run(c, &cli.paths),
        Command::Up(a) => up::run(a, &cli.paths),
        Command::Host(a) => host_cmd::run(a, &cli.paths),
        Command::Mdms(a) => mdms_cmd::run(a, &cli.paths),
        Command::Hes(a) => hes_cmd::run(a),
        Command::Sim(a) => sim_cmd::run(a),
    }
}
