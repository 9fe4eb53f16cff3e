//! `ami-wmbus-receiver`: the edge process for a wireless M-Bus USB dongle (IMST iM871A).
//!
//! ```text
//! ami-wmbus-receiver --port /dev/ttyUSB0 --name wmbus-1 --spool /var/lib/ami/wmbus-1
//! ```
//!
//! Telegrams go to `<root>.raw.wmbus.<name>` through the spool.

use std::time::Duration;

use ami_serial_readers::port::LineSettings;
use ami_serial_readers::role::{Edge, EdgeArgs, init_tracing, run_reopening, stop_on_signal};
use ami_wmbus_receiver::receiver::{self, ReceiverConfig, WmbusStats};
use anyhow::Context;
use clap::Parser;

#[derive(Parser, Debug)]
#[command(
    name = "ami-wmbus-receiver",
    about = "Receives wireless M-Bus telegrams from an iM871A dongle into the ami bus"
)]
struct Cli {
    /// The dongle's serial device.
    #[arg(long, env = "AMI_SERIAL_PORT")]
    port: String,
    /// The line's baud rate.
    #[arg(long, default_value_t = LineSettings::DONGLE.baud)]
    baud: u32,
    /// Drop HCI frames without a CRC.
    #[arg(long)]
    require_crc: bool,
    #[command(flatten)]
    edge: EdgeArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    init_tracing();
    let cli = Cli::parse();
    let edge = Edge::start(&cli.edge)
        .await
        .context("starting the adapter")?;
    stop_on_signal(edge.stop.clone());
    let adapter = edge.adapter.clone();
    let stop = edge.stop.clone();
    let link = tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
        let settings = LineSettings {
            baud: cli.baud,
            ..LineSettings::DONGLE
        };
        let cfg = ReceiverConfig {
            require_crc: cli.require_crc,
            ..ReceiverConfig::default()
        };
        let stats = WmbusStats::default();
        run_reopening(
            &cli.port,
            settings,
            Duration::from_millis(100),
            &stop,
            |link| receiver::run(link, &adapter, &cfg, &stats, &stop),
        );
        Ok(())
    });
    let result = link.await.context("link task")?;
    edge.shutdown().await;
    result
}
