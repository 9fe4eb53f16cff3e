//! `ami-wmbus-receiver`: the edge process for a wireless M-Bus USB dongle (IMST iM871A).
//!
//! ```text
//! ami-wmbus-receiver --port /dev/ttyUSB0 --name wmbus-1 --spool /var/lib/ami/wmbus-1 \
//!   [--link-mode c1-t1] [--save-config] [--require-crc[=true|false]] [--no-configure]
//! ```
//!
//! Each time the port opens, the dongle is pinged, its device information is logged, and it
//! is put into `--link-mode` (`s1`, `s1-m`, `t1`, `c1`, `c1b`, `c1-t1`; default `c1-t1`, what
//! OMS meters use) as a receiver with RSSI and time stamp attached, in RAM only unless
//! `--save-config`. A dongle that refuses (or cannot do the link mode) stops the process with
//! the error; one that stays silent is tried again after reopening the port.
//!
//! Telegrams go to `<root>.raw.wmbus.<name>` through the spool, with the RSSI in dBm in the
//! `Ami-Rssi-Dbm` header; the signal strength per meter is logged every
//! `--signal-log-interval-s`.

use std::sync::atomic::Ordering;
use std::time::Duration;

use ami_serial_readers::port::{LineSettings, LinkError};
use ami_serial_readers::role::{Edge, EdgeArgs, init_tracing, run_reopening, stop_on_signal};
use ami_wmbus_receiver::config::{DongleSettings, LinkMode};
use ami_wmbus_receiver::receiver::{self, CrcPolicy, ReceiverConfig, ReceiverError, WmbusStats};
use ami_wmbus_receiver::setup::SetupConfig;
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
    /// The wireless M-Bus link mode to listen in: s1, s1-m, t1, c1, c1b, or c1-t1 (C1 and T1
    /// at once; iM871A firmware 1.4 or later).
    #[arg(long, env = "AMI_WMBUS_LINK_MODE", default_value = "c1-t1")]
    link_mode: LinkMode,
    /// Save the configuration in the dongle's flash (default: RAM only, until it restarts).
    #[arg(long)]
    save_config: bool,
    /// Do not configure the dongle: listen with what its flash holds (set with the vendor's
    /// tool).
    #[arg(long)]
    no_configure: bool,
    /// Drop HCI frames without a CRC (`--require-crc=false`: accept them). Default: required
    /// once the receiver has configured a dongle whose answers carry one, else accepted.
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    require_crc: Option<bool>,
    /// How long each configuration request waits for the dongle's answer, in ms.
    #[arg(long, default_value_t = 1000)]
    response_timeout_ms: u64,
    /// How many times each configuration request is sent before the dongle counts as silent.
    #[arg(long, default_value_t = 3)]
    config_attempts: u32,
    /// How often the signal strength per meter is logged, in seconds.
    #[arg(long, default_value_t = 300)]
    signal_log_interval_s: u64,
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
            setup: (!cli.no_configure).then(|| SetupConfig {
                settings: DongleSettings {
                    link_mode: cli.link_mode,
                    save: cli.save_config,
                },
                response_timeout: Duration::from_millis(cli.response_timeout_ms),
                attempts: cli.config_attempts,
            }),
            crc: match cli.require_crc {
                None => CrcPolicy::Auto,
                Some(true) => CrcPolicy::Require,
                Some(false) => CrcPolicy::Accept,
            },
            signal_log_interval: Duration::from_secs(cli.signal_log_interval_s.max(1)),
            ..ReceiverConfig::default()
        };
        let stats = WmbusStats::default();
        let mut fatal = None;
        run_reopening(
            &cli.port,
            settings,
            Duration::from_millis(100),
            &stop,
            |link| match receiver::run(link, &adapter, &cfg, &stats, &stop) {
                Ok(()) => Ok(()),
                Err(ReceiverError::Link(e)) => Err(e),
                Err(ReceiverError::Config(e)) if e.is_fatal() => {
                    fatal = Some(e);
                    stop.store(true, Ordering::Relaxed);
                    Ok(())
                }
                Err(ReceiverError::Config(e)) => Err(LinkError::Io(std::io::Error::other(e))),
            },
        );
        match fatal {
            Some(e) => Err(e).context("configuring the dongle"),
            None => Ok(()),
        }
    });
    let result = link.await.context("link task")?;
    edge.shutdown().await;
    result
}
