//! `ami-dlms-client`: the edge process for DLMS/COSEM meters reached over TCP (wrapper or
//! HDLC framing).
//!
//! ```text
//! ami-dlms-client --meter m-17=10.0.0.17:4059 --framing wrapper --auth gmac \
//!   --system-title 414D493030303031 --ek <hex> --ak <hex> \
//!   --register 1.0.1.8.0.255 --interval-s 900 --trusted-key <hex> \
//!   --name dlms-1 --spool /var/lib/ami/dlms-1
//! ```
//!
//! Every `--interval-s` it reads each meter's registers and hands the read report to the
//! adapter (`<root>.raw.dlms.<name>`); with `--trusted-key` it also carries out the signed
//! head-end commands for its meters (`<root>.cmd.<name>.<meter>`).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use ami_adapter::{Downlink, DownlinkConfig};
use ami_dlms_client::link::{Framing, HdlcSettings};
use ami_dlms_client::{Authentication, ClientConfig, DlmsMeterLink, Keys, MeterTarget, Protection};
use ami_domain::Obis;
use ami_serial_readers::role::{Edge, EdgeArgs, init_tracing, stop_on_signal};
use anyhow::{Context, bail};
use clap::{Parser, ValueEnum};

#[derive(Clone, Copy, Debug, ValueEnum)]
enum FramingArg {
    Wrapper,
    Hdlc,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum AuthArg {
    None,
    Lls,
    Gmac,
}

#[derive(Parser, Debug)]
#[command(
    name = "ami-dlms-client",
    about = "Reads and commands DLMS/COSEM meters over TCP"
)]
struct Cli {
    /// A meter: `<name>=<host:port>`, or `<name>=<host:port>/<server address>` for one of
    /// several logical devices behind one address (a gateway, `ami sim --dlms-listen`);
    /// repeat for more.
    #[arg(long = "meter", required = true)]
    meters: Vec<String>,
    /// Framing on the TCP connection.
    #[arg(long, value_enum, default_value_t = FramingArg::Wrapper)]
    framing: FramingArg,
    /// Client SAP / HDLC client address.
    #[arg(long, default_value_t = 16)]
    client_address: u16,
    /// Server logical device (wPort or upper HDLC address).
    #[arg(long, default_value_t = 1)]
    server_address: u16,
    /// Authentication.
    #[arg(long, value_enum, default_value_t = AuthArg::None)]
    auth: AuthArg,
    /// LLS password.
    #[arg(long, env = "AMI_DLMS_PASSWORD")]
    password: Option<String>,
    /// Our system title (16 hex digits), for HLS-GMAC and ciphering.
    #[arg(long)]
    system_title: Option<String>,
    /// Global unicast encryption key (32 hex digits).
    #[arg(long, env = "AMI_DLMS_EK")]
    ek: Option<String>,
    /// Authentication key (32 hex digits).
    #[arg(long, env = "AMI_DLMS_AK")]
    ak: Option<String>,
    /// Registers to read (OBIS, e.g. 1.0.1.8.0.255).
    #[arg(long = "register", default_values_t = ["1.0.1.8.0.255".to_string(), "1.0.2.8.0.255".to_string()])]
    registers: Vec<String>,
    /// Seconds between reads (0: no periodic reads).
    #[arg(long, default_value_t = 900)]
    interval_s: u64,
    /// Head-end public keys (hex Ed25519) whose signed commands are carried out.
    #[arg(long = "trusted-key")]
    trusted: Vec<String>,
    #[command(flatten)]
    edge: EdgeArgs,
}

fn key16(s: &Option<String>, what: &str) -> anyhow::Result<[u8; 16]> {
    let s = s
        .as_deref()
        .with_context(|| format!("--{what} is required"))?;
    let v = hex::decode(s).with_context(|| format!("--{what} is not hex"))?;
    v.try_into()
        .map_err(|_| anyhow::anyhow!("--{what} must be 16 bytes"))
}

fn config(cli: &Cli) -> anyhow::Result<ClientConfig> {
    let framing = match cli.framing {
        FramingArg::Wrapper => Framing::Wrapper {
            client: cli.client_address,
            server: cli.server_address,
        },
        FramingArg::Hdlc => Framing::Hdlc(HdlcSettings {
            client: cli.client_address,
            server_logical: cli.server_address,
            ..HdlcSettings::default()
        }),
    };
    let mut c = ClientConfig::new(framing);
    match cli.auth {
        AuthArg::None => {}
        AuthArg::Lls => {
            let p = cli
                .password
                .as_deref()
                .context("--password is required for LLS")?;
            c.authentication = Authentication::Low(p.as_bytes().to_vec());
        }
        AuthArg::Gmac => {
            let st = cli
                .system_title
                .as_deref()
                .context("--system-title is required for HLS-GMAC")?;
            let st: [u8; 8] = hex::decode(st)
                .context("--system-title is not hex")?
                .try_into()
                .map_err(|_| anyhow::anyhow!("--system-title must be 8 bytes"))?;
            c.authentication = Authentication::HlsGmac;
            c.protection = Protection::AuthenticatedEncrypted;
            c.keys = Some(Keys {
                system_title: st,
                encryption: key16(&cli.ek, "ek")?,
                authentication: key16(&cli.ak, "ak")?,
                invocation_counter: 1,
            });
        }
    }
    Ok(c)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    init_tracing();
    let cli = Cli::parse();
    let config = config(&cli)?;
    let registers: Vec<Obis> = cli
        .registers
        .iter()
        .map(|r| {
            r.parse()
                .map_err(|e| anyhow::anyhow!("--register {r}: {e:?}"))
        })
        .collect::<anyhow::Result<_>>()?;
    let mut meters = HashMap::new();
    for m in &cli.meters {
        let Some((name, address)) = m.split_once('=') else {
            bail!("--meter {m}: expected <name>=<host:port>[/<server address>]");
        };
        let (address, server) = match address.split_once('/') {
            None => (address, None),
            Some((a, s)) => (
                a,
                Some(s.parse::<u16>().with_context(|| {
                    format!("--meter {m}: the server address after / is not a number")
                })?),
            ),
        };
        let mut config = config.clone();
        if let Some(server) = server {
            config.framing = match config.framing {
                Framing::Wrapper { client, .. } => Framing::Wrapper { client, server },
                Framing::Hdlc(h) => Framing::Hdlc(HdlcSettings {
                    server_logical: server,
                    ..h
                }),
            };
        }
        meters.insert(
            name.to_owned(),
            MeterTarget {
                address: address.to_owned(),
                config,
                registers: registers.clone(),
                has_relay: false,
            },
        );
    }
    let names: Vec<String> = meters.keys().cloned().collect();
    let edge = Edge::start(&cli.edge).await?;
    stop_on_signal(Arc::clone(&edge.stop));
    let link = Arc::new(DlmsMeterLink::new(meters, Some(edge.adapter.clone())));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let downlink = if cli.trusted.is_empty() {
        None
    } else {
        let mut keys = Vec::new();
        for k in &cli.trusted {
            let b: [u8; 32] = hex::decode(k)
                .context("--trusted-key is not hex")?
                .try_into()
                .map_err(|_| anyhow::anyhow!("--trusted-key must be 32 bytes"))?;
            keys.push(ed25519_dalek::VerifyingKey::from_bytes(&b).context("--trusted-key")?);
        }
        let bus = ami_bus::Bus::Nats(
            ami_bus::NatsBus::connect(&cli.edge.nats, ami_bus::Topology::new(&cli.edge.root), 1000)
                .await?,
        );
        // The commands' replay memory survives restarts, beside the spool.
        let mut state = cli.edge.spool.clone().into_os_string();
        state.push(".downlink");
        let dl = Arc::new(Downlink::open(
            DownlinkConfig::new(&cli.edge.name, keys),
            Arc::clone(&link),
            std::path::Path::new(&state),
        )?);
        let rx = stop_rx.clone();
        Some(tokio::spawn(async move { dl.run(bus, rx).await }))
    };
    let stop = Arc::clone(&edge.stop);
    while !stop.load(Ordering::Relaxed) {
        if cli.interval_s > 0 {
            for m in &names {
                match link.read(m).await {
                    Ok(_) => tracing::info!(meter = %m, "read"),
                    Err(e) => tracing::error!(meter = %m, error = %e, "read failed"),
                }
            }
        }
        let wait = Duration::from_secs(cli.interval_s.max(1));
        let until = tokio::time::Instant::now() + wait;
        while !stop.load(Ordering::Relaxed) && tokio::time::Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    let _ = stop_tx.send(true);
    if let Some(d) = downlink {
        let _ = d.await;
    }
    edge.shutdown().await;
    Ok(())
}
