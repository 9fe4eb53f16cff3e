//! `ami host`: the host runtime's ingest role on NATS JetStream. Every replica binds the same
//! durable consumer, so running more of them shares the frames.

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use ami_ingest::{Ingest, IngestConfig};
use ami_plugin_host::MemoryKeyStore;
use anyhow::{Result, bail};

use crate::paths::PathArgs;
use crate::platform::{BusArgs, runtime, stop_on_signal};

/// Arguments of `ami host`.
#[derive(clap::Args)]
pub struct HostArgs {
    #[command(flatten)]
    bus: BusArgs,
    /// Durable consumer name shared by the replicas.
    #[arg(long, env = "AMI_HOST_DURABLE", default_value = "ami-host")]
    durable: String,
    /// Frames fetched per batch.
    #[arg(long, default_value_t = 1000)]
    batch: usize,
    /// Frames per call into a decoder component.
    #[arg(long, default_value_t = 256)]
    decode_chunk: usize,
    /// Seconds between status lines (0: none).
    #[arg(long, default_value_t = 10)]
    status_every: u64,
    /// Write counters (OpenMetrics text) to this file with every status line.
    #[arg(long)]
    metrics_file: Option<std::path::PathBuf>,
}

/// Runs `ami host`.
pub fn run(args: HostArgs, paths: &PathArgs) -> Result<ExitCode> {
    if args.bus.nats_url.is_none() {
        bail!(
            "ami host runs on NATS: set NATS_URL (or --nats-url); on one machine without NATS, `ami up` runs every role in one process"
        );
    }
    if args.batch == 0 || args.decode_chunk == 0 {
        bail!("--batch and --decode-chunk must be above zero");
    }
    runtime()?.block_on(async move {
        // Keys come from the HES key store when it runs; on its own the host serves plaintext
        // frames and reports ciphered ones as missing their key.
        let host = Arc::new(paths.host(Arc::new(MemoryKeyStore::new()))?);
        let bus = args.bus.connect(0).await?;
        let ingest = Ingest::new(
            bus.clone(),
            Arc::clone(&host),
            IngestConfig {
                durable: args.durable.clone(),
                batch: args.batch,
                decode_chunk: args.decode_chunk,
                ..IngestConfig::default()
            },
        );
        let stats = ingest.stats();
        let (_stop_tx, stop) = stop_on_signal();
        println!(
            "ami host: consuming {} as {} with decoders {}; Ctrl-C stops",
            bus.topology().raw_all(),
            args.durable,
            host.plugins()
                .iter()
                .map(|p| format!("{}@{}", p.manifest().name, p.manifest().version))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let status = {
            let stats = Arc::clone(&stats);
            let mut stop = stop.clone();
            let every = args.status_every;
            let metrics = args.metrics_file.clone();
            let host = Arc::clone(&host);
            tokio::spawn(async move {
                if every == 0 {
                    return;
                }
                loop {
                    tokio::select! {
                        () = tokio::time::sleep(Duration::from_secs(every)) => {}
                        _ = stop.changed() => return,
                    }
                    println!(
                        "frames {} decoded {} readings {} events {} dead {} redelivered {} errors {}",
                        stats.frames.load(Ordering::Relaxed),
                        stats.decoded.load(Ordering::Relaxed),
                        stats.readings.load(Ordering::Relaxed),
                        stats.events.load(Ordering::Relaxed),
                        stats.dead.load(Ordering::Relaxed),
                        stats.redelivered.load(Ordering::Relaxed),
                        stats.errors.load(Ordering::Relaxed),
                    );
                    if let Some(path) = &metrics {
                        let text = format!("{}{}", host.metrics_text(), stats.openmetrics());
                        if let Err(e) = std::fs::write(path, text) {
                            eprintln!("ami host: cannot write {}: {e}", path.display());
                        }
                    }
                }
            })
        };
        ingest.run(stop).await?;
        status.abort();
        println!(
            "stopped: {} frames, {} readings, {} dead letters",
            stats.frames.load(Ordering::Relaxed),
            stats.readings.load(Ordering::Relaxed),
            stats.dead.load(Ordering::Relaxed)
        );
        Ok(ExitCode::SUCCESS)
    })
}
