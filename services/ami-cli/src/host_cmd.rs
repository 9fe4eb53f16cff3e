//! `ami host`: the host runtime's ingest role on NATS JetStream. Every replica binds the same
//! durable consumer, so running more of them shares the frames.
//!
//! Keys: with `--keys-database-url` (the HES registry database) and the HES master key
//! (`AMI_HES_MASTER_KEY` or `AMI_HES_MASTER_KEY_FILE`), the decoders' crypto uses the keys the
//! HES holds, re-read every `--keys-refresh-s` so rotations reach every replica; the keys stay
//! sealed in the database and are opened in the host for one operation at a time. Without it
//! the host serves plaintext frames and reports ciphered ones as missing their key.

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use ami_hes::{AnyStore, KeyVault, LocalMasterKey, MasterKeySource, RegistryStore};
use ami_ingest::{Ingest, IngestConfig};
use ami_plugin_host::{KeyStore, MemoryKeyStore};
use anyhow::{Context, Result, bail};
use tokio::sync::watch;

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
    /// The HES registry database holding the meters' sealed keys (postgres://... or
    /// sqlite:<path>); needs the HES master key in AMI_HES_MASTER_KEY(_FILE).
    #[arg(long, env = "AMI_HES_DATABASE_URL")]
    keys_database_url: Option<String>,
    /// Seconds between re-reads of the HES keys (rotations, new meters).
    #[arg(long, default_value_t = 30)]
    keys_refresh_s: u64,
}

/// The host's key store: the HES's keys when a database is named, else none.
async fn key_store(
    args: &HostArgs,
    stop: &watch::Receiver<bool>,
) -> Result<(Arc<dyn KeyStore>, String)> {
    let Some(url) = &args.keys_database_url else {
        return Ok((
            Arc::new(MemoryKeyStore::new()),
            "no key store (ciphered frames fail as missing their key)".into(),
        ));
    };
    let master = MasterKeySource::from_env()?;
    let wrapper = Arc::new(LocalMasterKey::from_source(&master)?);
    let store = Arc::new(
        AnyStore::open(url, 2)
            .await
            .context("opening the HES key store")?,
    );
    store
        .migrate()
        .await
        .context("the HES key store's schema")?;
    let vault = Arc::new(KeyVault::new(store, wrapper));
    let n = vault
        .load()
        .await
        .context("loading the HES keys (is the master key the HES's?)")?;
    let provider = vault.provider();
    let every = Duration::from_secs(args.keys_refresh_s.max(1));
    let mut stop = stop.clone();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                () = tokio::time::sleep(every) => {}
                _ = stop.changed() => return,
            }
            if let Err(e) = vault.load().await {
                eprintln!("ami host: re-reading the HES keys failed, keeping the last ones: {e}");
            }
        }
    });
    Ok((
        Arc::new(provider),
        format!(
            "{n} keys from the HES key store, re-read every {}s",
            every.as_secs()
        ),
    ))
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
        let (_stop_tx, stop) = stop_on_signal();
        let (keys, keys_note) = key_store(&args, &stop).await?;
        let host = Arc::new(paths.host(keys)?);
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
        println!(
            "ami host: consuming {} as {} with decoders {}; {keys_note}; Ctrl-C stops",
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
