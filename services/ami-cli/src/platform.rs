//! Wiring shared by the roles: which bus (NATS when a URL is given, else in-process), the
//! tokio runtime, and Ctrl-C.

use std::sync::Arc;

use ami_bus::{Bus, LocalBus, NatsBus, StreamSettings, Topology};
use anyhow::{Context, Result};
use tokio::sync::watch;

/// Where the bus is.
#[derive(clap::Args, Clone, Debug)]
pub struct BusArgs {
    /// NATS server URL; without it the roles run over the in-process bus.
    #[arg(long, env = "NATS_URL")]
    pub nats_url: Option<String>,
    /// Root token of every subject and stream name (`ami.raw...`, `AMI_RAW`).
    #[arg(long, env = "AMI_SUBJECT_ROOT", default_value = "ami")]
    pub subject_root: String,
}

impl BusArgs {
    /// The bus: NATS (streams created or updated) or in-process holding `local_capacity`
    /// messages per stream.
    pub async fn connect(&self, local_capacity: usize) -> Result<Bus> {
        let topology = Topology::new(&self.subject_root);
        match &self.nats_url {
            Some(url) => {
                let bus = NatsBus::connect(url, topology, 4096)
                    .await
                    .with_context(|| format!("NATS at {url}"))?;
                bus.ensure_streams(&StreamSettings::default())
                    .await
                    .context("creating the JetStream streams")?;
                Ok(Bus::Nats(bus))
            }
            None => Ok(Bus::Local(Arc::new(LocalBus::new(
                topology,
                local_capacity,
            )))),
        }
    }
}

/// A multi-threaded runtime on two workers (the roles are I/O bound; decoding runs on the
/// blocking pool).
pub fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")
}

/// A stop signal that turns true on Ctrl-C (or SIGTERM).
pub fn stop_on_signal() -> (watch::Sender<bool>, watch::Receiver<bool>) {
    let (tx, rx) = watch::channel(false);
    let signal_tx = tx.clone();
    tokio::spawn(async move {
        let term = async {
            #[cfg(unix)]
            {
                if let Ok(mut s) =
                    tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                {
                    s.recv().await;
                    return;
                }
            }
            std::future::pending::<()>().await;
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            () = term => {}
        }
        let _ = signal_tx.send(true);
    });
    (tx, rx)
}
