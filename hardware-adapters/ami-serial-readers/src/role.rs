//! The part every edge adapter binary shares: open the adapter's spool, connect to NATS
//! JetStream, run the forwarder, and stop in order (the link first, then the forwarder,
//! which settles the batch in flight; whatever the bus has not stored stays in the spool for
//! the next start).

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use ami_adapter::{Adapter, AdapterConfig, SpoolError};
use ami_bus::{Bus, BusError, NatsBus, StreamSettings, Topology};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Settings of the adapter side of an edge process (`AMI_` environment variables or flags).
#[derive(clap::Args, Clone, Debug)]
pub struct EdgeArgs {
    /// The adapter's name: the last token of its subjects and part of every frame id.
    #[arg(long, env = "AMI_ADAPTER_NAME")]
    pub name: String,
    /// The spool directory (frames wait here until the bus has stored them).
    #[arg(long, env = "AMI_SPOOL_DIR")]
    pub spool: PathBuf,
    /// The bound of the spool on disk, in bytes.
    #[arg(long, env = "AMI_SPOOL_BYTES", default_value_t = 1 << 30)]
    pub spool_bytes: u64,
    /// NATS server URL.
    #[arg(long, env = "AMI_NATS_URL", default_value = "nats://127.0.0.1:4222")]
    pub nats: String,
    /// Subject root (`ami` in production).
    #[arg(long, env = "AMI_ROOT", default_value = "ami")]
    pub root: String,
    /// Create (or update) the JetStream streams at start, as a single-machine set-up needs.
    #[arg(long, env = "AMI_ENSURE_STREAMS")]
    pub ensure_streams: bool,
}

/// Why an edge process could not start.
#[derive(Debug, thiserror::Error)]
pub enum RoleError {
    /// The spool could not be opened.
    #[error("adapter spool: {0}")]
    Spool(#[from] SpoolError),
    /// The streams could not be made.
    #[error("bus: {0}")]
    Bus(#[from] BusError),
}

/// A running adapter: its spool, its forwarder and the stop flag of its link.
#[derive(Debug)]
pub struct Edge {
    /// The adapter the link hands frames to.
    pub adapter: Adapter,
    /// Set when the process is to stop; the link loop polls it.
    pub stop: Arc<AtomicBool>,
    stop_tx: watch::Sender<bool>,
    forwarder: JoinHandle<()>,
}

impl Edge {
    /// Opens the spool, connects to NATS (in the background if it is not up yet: frames
    /// spool meanwhile) and starts the forwarder.
    pub async fn start(args: &EdgeArgs) -> Result<Edge, RoleError> {
        let adapter = Adapter::open(
            AdapterConfig {
                spool_bytes: args.spool_bytes,
                ..AdapterConfig::new(&args.name)
            },
            &args.spool,
        )?;
        let nats = NatsBus::connect(&args.nats, Topology::new(&args.root), 1000).await?;
        if args.ensure_streams {
            nats.ensure_streams(&StreamSettings::default()).await?;
        }
        Ok(Self::with_bus(adapter, Bus::Nats(nats)))
    }

    /// Starts the forwarder of `adapter` to `bus`.
    pub fn with_bus(adapter: Adapter, bus: Bus) -> Edge {
        let (stop_tx, stop_rx) = watch::channel(false);
        let forwarding = adapter.clone();
        let forwarder = tokio::spawn(async move { forwarding.forward(bus, stop_rx).await });
        Edge {
            adapter,
            stop: Arc::new(AtomicBool::new(false)),
            stop_tx,
            forwarder,
        }
    }

    /// Stops the forwarder once the link loop has returned.
    pub async fn shutdown(self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.stop_tx.send(true);
        if let Err(e) = self.forwarder.await {
            tracing::error!(error = %e, "forwarder task failed");
        }
        tracing::info!(
            adapter = self.adapter.name(),
            pending = self.adapter.pending(),
            "stopped; frames not yet stored stay in the spool"
        );
    }
}

/// Logs to stderr, filtered by `RUST_LOG` (default `info`).
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// Sets `stop` on Ctrl-C or SIGTERM.
pub fn stop_on_signal(stop: Arc<AtomicBool>) {
    tokio::spawn(async move {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            match signal(SignalKind::terminate()) {
                Ok(mut term) => {
                    tokio::select! {
                        _ = tokio::signal::ctrl_c() => {}
                        _ = term.recv() => {}
                    }
                }
                Err(_) => {
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
        tracing::info!("stopping");
        stop.store(true, Ordering::Relaxed);
    });
}

/// Opens the serial port at `path` and runs `link_loop` on it until `stop` is set; when the
/// port cannot be opened or the line fails (a USB adapter unplugged, a cable pulled), waits
/// (1 s, doubling up to 30 s) and opens it again. Returns once `stop` is set.
pub fn run_reopening(
    path: &str,
    settings: crate::port::LineSettings,
    timeout: std::time::Duration,
    stop: &AtomicBool,
    mut link_loop: impl FnMut(&mut crate::port::SerialLink) -> Result<(), crate::port::LinkError>,
) {
    use std::time::{Duration, Instant};
    let mut pause = Duration::from_secs(1);
    while !stop.load(Ordering::Relaxed) {
        match crate::port::open(path, settings, timeout) {
            Ok(mut link) => {
                tracing::info!(port = path, %settings, "port open");
                match link_loop(&mut link) {
                    Ok(()) => return,
                    Err(e) => {
                        tracing::error!(port = path, error = %e, "line failed; opening the port again")
                    }
                }
            }
            Err(e) => tracing::error!(error = %e, "cannot open the port; trying again"),
        }
        let until = Instant::now() + pause;
        while !stop.load(Ordering::Relaxed) && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(100));
        }
        pause = (pause * 2).min(Duration::from_secs(30));
    }
}
