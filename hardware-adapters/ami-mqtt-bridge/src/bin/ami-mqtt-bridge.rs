//! `ami-mqtt-bridge`: the edge process for a data concentrator's MQTT broker.
//!
//! ```text
//! ami-mqtt-bridge --config bridge.toml --name dcu-17 --spool /var/lib/ami/dcu-17
//! ```
//!
//! See the crate's `config` module for the TOML (broker, routes, payload forms).

use std::path::PathBuf;

use ami_adapter::{Adapter, AdapterConfig};
use ami_bus::{Bus, NatsBus, StreamSettings, Topology};
use ami_mqtt_bridge::{BridgeConfig, BridgeStats};
use anyhow::Context;
use clap::Parser;
use tokio::sync::watch;

#[derive(Parser, Debug)]
#[command(
    name = "ami-mqtt-bridge",
    about = "Bridges a concentrator's MQTT topics into the ami bus"
)]
struct Cli {
    /// The bridge's TOML settings (broker and routes).
    #[arg(long, env = "AMI_MQTT_BRIDGE_CONFIG")]
    config: PathBuf,
    /// The adapter's name: the last token of its subjects and part of every frame id.
    #[arg(long, env = "AMI_ADAPTER_NAME")]
    name: String,
    /// The spool directory.
    #[arg(long, env = "AMI_SPOOL_DIR")]
    spool: PathBuf,
    /// NATS server URL.
    #[arg(long, env = "AMI_NATS_URL", default_value = "nats://127.0.0.1:4222")]
    nats: String,
    /// Subject root.
    #[arg(long, env = "AMI_ROOT", default_value = "ami")]
    root: String,
    /// Most frames per message to the bus: 1 sends each frame alone; more bundles a
    /// concentrator's burst of one protocol's frames (see `ami_bus::bundle`).
    #[arg(long, env = "AMI_BUNDLE", default_value_t = 1)]
    bundle: usize,
    /// Create (or update) the JetStream streams at start.
    #[arg(long, env = "AMI_ENSURE_STREAMS")]
    ensure_streams: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
    let cli = Cli::parse();
    let text = std::fs::read_to_string(&cli.config)
        .with_context(|| format!("reading {}", cli.config.display()))?;
    let cfg = BridgeConfig::from_toml(&text)?;
    let adapter_config = AdapterConfig {
        bundle: cli.bundle.max(1),
        ..AdapterConfig::new(&cli.name)
    };
    let adapter = Adapter::open(adapter_config, &cli.spool)
        .with_context(|| format!("opening the spool in {}", cli.spool.display()))?;
    let nats = NatsBus::connect(&cli.nats, Topology::new(&cli.root), 1000).await?;
    if cli.ensure_streams {
        nats.ensure_streams(&StreamSettings::default()).await?;
    }
    let (stop_tx, stop_rx) = watch::channel(false);
    let forwarder = {
        let (a, rx) = (adapter.clone(), stop_rx.clone());
        tokio::spawn(async move { a.forward(Bus::Nats(nats), rx).await })
    };
    let stats = BridgeStats::default();
    let bridge = ami_mqtt_bridge::run(&cfg, &adapter, &stats, stop_rx);
    let signal = async {
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
    };
    tokio::pin!(bridge);
    let result = tokio::select! {
        r = &mut bridge => r,
        () = signal => {
            let _ = stop_tx.send(true);
            bridge.await
        }
    };
    let _ = stop_tx.send(true);
    forwarder.await.context("forwarder task")?;
    tracing::info!(
        pending = adapter.pending(),
        "stopped; frames not yet stored stay in the spool"
    );
    result.map_err(Into::into)
}
