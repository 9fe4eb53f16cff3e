//! `ami up`: the platform on one machine with no outside services.
//!
//! Today it runs the meter fleet simulator and the decoder host in one process: every tick the
//! virtual meters write their DSMR P1 telegrams, the installed `dsmr` decoder component decodes
//! them in batches under its sandbox limits, and the latest readings are kept per meter. The
//! NATS transport, the adapters and the MDMS/HES roles join this loop as they are built.

use ami_domain::Obis;
use ami_plugin_host::{FrameFailure, InputFrame, MemoryKeyStore};
use ami_sim::{Fleet, dsmr};
use anyhow::{Context, Result, bail};
use std::collections::HashMap;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::decode_cmd::now_ms;
use crate::paths::PathArgs;

/// Arguments of `ami up`.
#[derive(clap::Args)]
pub struct UpArgs {
    /// Virtual meters in the fleet.
    #[arg(long, default_value_t = 1000)]
    meters: usize,
    /// Simulated seconds per tick (each meter sends one telegram per tick).
    #[arg(long, default_value_t = 10)]
    step_s: u32,
    /// Ticks per wall-clock second.
    #[arg(long, default_value_t = 1.0)]
    rate: f64,
    /// Stop after this many ticks (0: run until interrupted).
    #[arg(long, default_value_t = 0)]
    ticks: u64,
    /// Frames per call into the decoder component.
    #[arg(long, default_value_t = 256)]
    batch: usize,
    /// Write the plugins' counters (OpenMetrics text) to this file after every tick, for a
    /// textfile collector.
    #[arg(long)]
    metrics_file: Option<std::path::PathBuf>,
}

/// Runs `ami up`.
pub fn run(args: UpArgs, paths: &PathArgs) -> Result<ExitCode> {
    if let Ok(url) = std::env::var("NATS_URL") {
        bail!(
            "NATS_URL={url}: the NATS-backed roles are not built yet; unset NATS_URL for the embedded default"
        );
    }
    if args.batch == 0 || args.meters == 0 || args.step_s == 0 {
        bail!("--meters, --batch and --step-s must be above zero");
    }
    if !(args.rate.is_finite() && (0.001..=1000.0).contains(&args.rate)) {
        bail!("--rate must be between 0.001 and 1000 ticks per second");
    }
    let host = paths.host(Arc::new(MemoryKeyStore::new()))?;
    let decoder = host
        .decoder_for("dsmr")
        .context("no installed dsmr decoder (run `cargo xtask components`)")?;
    println!(
        "ami up: {} simulated DSMR meters -> {}@{} (Wasm, {} MiB / {} ms per call) -> embedded store",
        args.meters,
        decoder.manifest().name,
        decoder.manifest().version,
        decoder.limits().memory_bytes >> 20,
        decoder.limits().time.as_millis()
    );
    println!(
        "  decoders installed: {}",
        host.plugins()
            .iter()
            .map(|p| p.manifest().name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!("  one status line per tick; Ctrl-C stops (or --ticks N)");
    let mut fleet = Fleet::new(args.meters);
    let step_ms = i64::from(args.step_s) * 1000;
    let mut sim_ms = now_ms() / step_ms * step_ms;
    let mut latest: HashMap<String, HashMap<Obis, String>> = HashMap::new();
    let (mut frames, mut readings, mut rejected) = (0u64, 0u64, 0u64);
    let period = Duration::from_secs_f64(1.0 / args.rate);
    let started = Instant::now();
    let power = Obis::new(1, 0, 1, 7, 0, 255);
    let mut tick = 0u64;
    while args.ticks == 0 || tick < args.ticks {
        let due = started + period.mul_f64(tick as f64);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        sim_ms += step_ms;
        fleet.step(sim_ms, step_ms);
        let telegrams: Vec<String> = fleet
            .meters
            .iter()
            .map(|m| dsmr::telegram(m, sim_ms))
            .collect();
        let decode_start = Instant::now();
        for chunk in telegrams.chunks(args.batch) {
            let input: Vec<InputFrame<'_>> = chunk
                .iter()
                .map(|t| InputFrame {
                    data: t.as_bytes(),
                    received_at_ms: sim_ms,
                    meter_hint: None,
                })
                .collect();
            for result in decoder.decode_isolating(&input) {
                frames += 1;
                match result {
                    Ok(d) => {
                        readings += d.readings.len() as u64;
                        let entry = latest.entry(d.meter.unwrap_or_default()).or_default();
                        for r in d.readings {
                            entry.insert(r.register, format!("{} {}", r.value, r.unit));
                        }
                    }
                    Err(FrameFailure::Decode(e)) => {
                        rejected += 1;
                        eprintln!("  dead letter: {e}");
                    }
                    Err(FrameFailure::Call(e)) => {
                        rejected += 1;
                        eprintln!("  dead letter: {e}");
                    }
                }
            }
        }
        let sample = fleet
            .meters
            .first()
            .map(|m| m.id.bytes().map(|b| format!("{b:02X}")).collect::<String>())
            .and_then(|id| {
                latest
                    .get(&id)
                    .and_then(|r| r.get(&power))
                    .map(|v| (id, v.clone()))
            });
        println!(
            "tick {tick:>5} sim {} | frames {frames} readings {readings} dead letters {rejected} | decode {:.1} ms | meters stored {}{}",
            ami_domain::time::rfc3339(sim_ms),
            decode_start.elapsed().as_secs_f64() * 1000.0,
            latest.len(),
            sample
                .map(|(id, v)| format!(" | {}..: 1-0:1.7.0 = {v}", &id[..8.min(id.len())]))
                .unwrap_or_default()
        );
        if let Some(path) = &args.metrics_file {
            let tmp = path.with_extension("tmp");
            std::fs::write(&tmp, host.metrics_text())
                .and_then(|()| std::fs::rename(&tmp, path))
                .with_context(|| format!("cannot write metrics to {}", path.display()))?;
        }
        tick += 1;
    }
    let stats = decoder.stats();
    println!(
        "stopped: {frames} frames, {readings} readings, {rejected} dead letters; decoder calls {} errors {} busy {:.1} ms",
        stats.calls,
        stats.errors,
        stats.busy_ns as f64 / 1e6
    );
    Ok(ExitCode::SUCCESS)
}
