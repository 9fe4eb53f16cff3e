//! `ami-serial-reader`: the edge process for a serial meter link.
//!
//! ```text
//! ami-serial-reader iec --port /dev/ttyUSB0 --interval-s 900 --name probe-1 --spool /var/lib/ami/probe-1
//! ami-serial-reader p1  --port /dev/ttyUSB0 --dsmr v5 --name p1-7 --spool /var/lib/ami/p1-7
//! ```
//!
//! Frames go to `<root>.raw.iec62056-21.<name>` or `<root>.raw.dsmr.<name>` through the spool.

use std::time::Duration;

use ami_serial_readers::port::LineSettings;
use ami_serial_readers::role::{Edge, EdgeArgs, init_tracing, run_reopening, stop_on_signal};
use ami_serial_readers::{iec, p1};
use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};

#[derive(Parser, Debug)]
#[command(
    name = "ami-serial-reader",
    about = "Reads meters on a serial line into the ami bus"
)]
struct Cli {
    #[command(subcommand)]
    link: LinkCmd,
}

#[derive(Subcommand, Debug)]
enum LinkCmd {
    /// Poll an IEC 62056-21 meter in mode C (optical probe or RS-485).
    Iec {
        /// The serial device.
        #[arg(long, env = "AMI_SERIAL_PORT")]
        port: String,
        /// The device address sent in the request (empty: any meter).
        #[arg(long, default_value = "")]
        address: String,
        /// Seconds between polls.
        #[arg(long, default_value_t = 900)]
        interval_s: u64,
        /// The highest baud rate to accept from the meter.
        #[arg(long, default_value_t = 19_200)]
        max_baud: u32,
        /// Sessions tried again after a failure.
        #[arg(long, default_value_t = 2)]
        retries: u32,
        /// Meter hint put on each frame.
        #[arg(long)]
        meter: Option<String>,
        #[command(flatten)]
        edge: EdgeArgs,
    },
    /// Read the DSMR P1 port of a smart meter.
    P1 {
        /// The serial device.
        #[arg(long, env = "AMI_SERIAL_PORT")]
        port: String,
        /// Line settings: v5 (and v4) 115200 8N1, v2 (2.2 and 3) 9600 7E1.
        #[arg(long, value_enum, default_value_t = Dsmr::V5)]
        dsmr: Dsmr,
        /// The longest telegram accepted, in bytes.
        #[arg(long, default_value_t = p1::DEFAULT_MAX_TELEGRAM)]
        max_telegram: usize,
        /// Meter hint put on each frame.
        #[arg(long)]
        meter: Option<String>,
        #[command(flatten)]
        edge: EdgeArgs,
    },
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Dsmr {
    V5,
    V2,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    init_tracing();
    let cli = Cli::parse();
    let edge_args = match &cli.link {
        LinkCmd::Iec { edge, .. } | LinkCmd::P1 { edge, .. } => edge.clone(),
    };
    let edge = Edge::start(&edge_args)
        .await
        .context("starting the adapter")?;
    stop_on_signal(edge.stop.clone());
    let adapter = edge.adapter.clone();
    let stop = edge.stop.clone();
    let link = tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
        match cli.link {
            LinkCmd::Iec {
                port: path,
                address,
                interval_s,
                max_baud,
                retries,
                meter,
                ..
            } => {
                let cfg = iec::ModeCConfig {
                    address,
                    max_baud,
                    retries,
                    ..iec::ModeCConfig::default()
                };
                let stats = iec::IecStats::default();
                run_reopening(
                    &path,
                    LineSettings::IEC_SIGN_ON,
                    Duration::from_secs(1),
                    &stop,
                    |link| {
                        iec::run(
                            link,
                            &adapter,
                            &cfg,
                            Duration::from_secs(interval_s),
                            meter.as_deref(),
                            &stats,
                            &stop,
                        )
                    },
                );
            }
            LinkCmd::P1 {
                port: path,
                dsmr,
                max_telegram,
                meter,
                ..
            } => {
                let settings = match dsmr {
                    Dsmr::V5 => LineSettings::P1_V4,
                    Dsmr::V2 => LineSettings::P1_V2,
                };
                let cfg = p1::P1Config {
                    max_telegram,
                    meter_hint: meter,
                    ..p1::P1Config::default()
                };
                let stats = p1::P1Stats::default();
                run_reopening(&path, settings, Duration::from_millis(200), &stop, |link| {
                    p1::run(link, &adapter, &cfg, &stats, &stop)
                });
            }
        }
        Ok(())
    });
    let result = link.await.context("link task")?;
    edge.shutdown().await;
    result
}
