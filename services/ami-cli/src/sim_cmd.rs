//! `ami sim`: the meter fleet simulator as an edge adapter on NATS.
//!
//! Thousands of virtual meters (DSMR P1 telegrams, DLMS/COSEM data-notification pushes ciphered
//! with per-meter keys, wireless M-Bus telegrams in security mode 5, IEC 62056-21 readouts)
//! report once per simulated interval; their frames go through the adapter library's on-disk
//! spool to `<root>.raw.<protocol>.<adapter>`, so a link cut loses nothing. With the head-end's
//! verifying key (`--trusted-key`, what `ami hes` prints) the simulator also takes the signed
//! commands on `<root>.cmd.<adapter>.>` and the meters obey them: an opened relay reads zero, a
//! new TOU table moves the active tariff register, firmware blocks are checked in order.
//!
//! `--keys-out` writes the meters' keys as CSV (`meter,role,key_hex`) for loading into the
//! HES key store; keep that file secret.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use ami_adapter::downlink::{Downlink, DownlinkConfig};
use ami_adapter::fleet_link::FleetLink;
use ami_adapter::{Adapter, AdapterConfig, SpoolFrame};
use ami_sim::{Fleet, FleetConfig};
use anyhow::{Context, Result, bail};
use ed25519_dalek::VerifyingKey;

use crate::decode_cmd::now_ms;
use crate::paths::ami_home;
use crate::platform::{BusArgs, runtime, stop_on_signal};

/// Arguments of `ami sim`.
#[derive(clap::Args)]
pub struct SimArgs {
    /// Virtual meters (an even mix of DSMR, DLMS, wM-Bus and IEC 62056-21).
    #[arg(long, default_value_t = 1000)]
    meters: usize,
    /// Seed of the fleet (the same seed gives the same meters and keys).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// The adapter's name: its subjects, its spool directory and its command consumer.
    #[arg(long, default_value = "sim-1")]
    adapter: String,
    /// Most frames per message to the bus (1: a message per frame; more: bundles of one
    /// protocol's frames, as a concentrator's adapter sends them).
    #[arg(long, default_value_t = 64)]
    bundle: usize,
    /// Simulated seconds per tick (each meter reports once per tick).
    #[arg(long, default_value_t = 900)]
    step_s: u32,
    /// Ticks per wall-clock second.
    #[arg(long, default_value_t = 1.0)]
    rate: f64,
    /// Stop after this many ticks (0: run until Ctrl-C).
    #[arg(long, default_value_t = 0)]
    ticks: u64,
    /// The head-end's command verifying key (hex Ed25519); repeat for several. Without one the
    /// simulator takes no commands.
    #[arg(long = "trusted-key", env = "AMI_SIM_TRUSTED_KEY")]
    trusted: Vec<String>,
    /// Write the meters' keys (`meter,role,key_hex`) to this file, for the HES key store.
    #[arg(long)]
    keys_out: Option<PathBuf>,
    /// Serve the DLMS meters to DLMS clients on this address (IEC 62056-47 wrapper; the
    /// destination wPort names the meter: 1 the first DLMS meter, 2 the second, ...).
    #[arg(long)]
    dlms_listen: Option<std::net::SocketAddr>,
    /// The DLMS meters' lowest-level-security password.
    #[arg(long, env = "AMI_SIM_DLMS_PASSWORD", default_value = "00000000")]
    dlms_password: String,
    #[command(flatten)]
    bus: BusArgs,
}

fn trusted_keys(hex_keys: &[String]) -> Result<Vec<VerifyingKey>> {
    hex_keys
        .iter()
        .map(|k| {
            let bytes: [u8; 32] = hex::decode(k.trim())
                .context("--trusted-key is not hex")?
                .try_into()
                .map_err(|_| anyhow::anyhow!("--trusted-key must be 32 bytes"))?;
            VerifyingKey::from_bytes(&bytes).context("--trusted-key is not an Ed25519 key")
        })
        .collect()
}

fn write_keys(fleet: &Fleet, path: &std::path::Path) -> Result<()> {
    let mut text = String::from("meter,role,key_hex\n");
    for (meter, role, key) in fleet.key_entries() {
        let role = role.name();
        text.push_str(&format!("{meter},{role},{}\n", hex::encode(key)));
    }
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

/// Runs `ami sim`.
pub fn run(args: SimArgs) -> Result<ExitCode> {
    if args.meters == 0 || args.step_s == 0 {
        bail!("--meters and --step-s must be above zero");
    }
    if !(args.rate.is_finite() && (0.001..=1000.0).contains(&args.rate)) {
        bail!("--rate must be between 0.001 and 1000 ticks per second");
    }
    if args.bus.nats_url.is_none() {
        bail!(
            "ami sim publishes to NATS: set NATS_URL (or run `ami up`, which runs the simulator with every other role in one process)"
        );
    }
    let trusted = trusted_keys(&args.trusted)?;
    runtime()?.block_on(sim(args, trusted))
}

async fn sim(args: SimArgs, trusted: Vec<VerifyingKey>) -> Result<ExitCode> {
    let config = FleetConfig {
        meters: args.meters,
        seed: args.seed,
        ..FleetConfig::default()
    };
    let fleet = Fleet::with_config(&config).context("fleet configuration")?;
    if let Some(path) = &args.keys_out {
        write_keys(&fleet, path)?;
    }
    let fleet = Arc::new(Mutex::new(fleet));
    let bus = args.bus.connect(1).await?;
    let spool_dir = ami_home().join("spool").join(&args.adapter);
    let adapter_config = AdapterConfig {
        bundle: args.bundle.max(1),
        ..AdapterConfig::new(&args.adapter)
    };
    let adapter = Adapter::open(adapter_config, &spool_dir)
        .with_context(|| format!("spool {}", spool_dir.display()))?;
    let (stop_tx, stop) = stop_on_signal();
    let mut tasks = Vec::new();
    {
        let (a, b, s) = (adapter.clone(), bus.clone(), stop.clone());
        tasks.push(tokio::spawn(async move { a.forward(b, s).await }));
    }
    let downlink = if trusted.is_empty() {
        None
    } else {
        let link = Arc::new(FleetLink::new(Arc::clone(&fleet)));
        // The replay memory of commands survives restarts.
        let state = ami_home().join("downlink").join(&args.adapter);
        let downlink = Arc::new(
            Downlink::open(DownlinkConfig::new(&args.adapter, trusted), link, &state)
                .with_context(|| format!("downlink state {}", state.display()))?,
        );
        let (d, b, s) = (Arc::clone(&downlink), bus.clone(), stop.clone());
        tasks.push(tokio::spawn(async move { d.run(b, s).await }));
        Some(downlink)
    };
    if let Some(addr) = args.dlms_listen {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("--dlms-listen {addr}"))?;
        let local = listener.local_addr()?;
        let wports = ami_sim::serve::wports(&fleet.lock().unwrap_or_else(PoisonError::into_inner));
        for (wport, meter) in &wports {
            println!("dlms: meter {meter} at {local} wPort {wport}");
        }
        println!(
            "dlms: serving {} meters on {local} (wrapper, LLS or no authentication)",
            wports.len()
        );
        let cfg = ami_sim::dlms_server::ServerConfig {
            password: args.dlms_password.as_bytes().to_vec(),
            capture_period_s: args.step_s,
            ..ami_sim::dlms_server::ServerConfig::default()
        };
        let serving = tokio::spawn(ami_sim::serve::serve(listener, Arc::clone(&fleet), cfg));
        let mut s = stop.clone();
        tasks.push(tokio::spawn(async move {
            let _ = s.wait_for(|v| *v).await;
            serving.abort();
        }));
    }
    let root = bus.topology().root().to_owned();
    println!(
        "ami sim: {} meters -> adapter {} (spool {}) -> {root}.raw.<protocol>.{}; {}; Ctrl-C stops",
        args.meters,
        args.adapter,
        spool_dir.display(),
        args.adapter,
        if downlink.is_some() {
            format!("commands on {root}.cmd.{}.>", args.adapter)
        } else {
            "no commands (give --trusted-key)".to_owned()
        }
    );

    let step_ms = i64::from(args.step_s) * 1000;
    let mut sim_ms = now_ms() / step_ms * step_ms;
    let period = Duration::from_secs_f64(1.0 / args.rate);
    let started = Instant::now();
    let (mut tick, mut sent) = (0u64, 0u64);
    let mut stop_watch = stop.clone();
    while (args.ticks == 0 || tick < args.ticks) && !*stop.borrow() {
        let due = tokio::time::Instant::from_std(started + period.mul_f64(tick as f64));
        tokio::select! {
            () = tokio::time::sleep_until(due) => {}
            _ = stop_watch.changed() => break,
        }
        sim_ms += step_ms;
        let uplinks = fleet
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .tick(sim_ms, step_ms)
            .uplinks;
        let frames: Vec<SpoolFrame> = uplinks.into_iter().map(SpoolFrame::from).collect();
        sent += frames.len() as u64;
        if let Err(e) = adapter.accept(frames) {
            eprintln!("ami sim: the spool refused frames: {e}");
        }
        let commands = downlink.as_ref().map_or(String::new(), |d| {
            let s = d.stats();
            format!(
                " | commands {} executed {} refused {}",
                s.received.load(Ordering::Relaxed),
                s.executed.load(Ordering::Relaxed),
                s.refused.load(Ordering::Relaxed)
            )
        });
        println!(
            "tick {tick:>4} {} | sent {sent} spooled {}{commands}",
            ami_domain::time::rfc3339(sim_ms),
            adapter.pending()
        );
        tick += 1;
    }
    // Give the spool a bounded time to reach the bus, then stop.
    let drain_until = Instant::now() + Duration::from_secs(10);
    while !*stop.borrow() && adapter.pending() > 0 && Instant::now() < drain_until {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = stop_tx.send(true);
    for t in tasks {
        let _ = tokio::time::timeout(Duration::from_secs(10), t).await;
    }
    println!(
        "stopped: {sent} frames sent, {} still spooled (sent at the next start)",
        adapter.pending()
    );
    Ok(ExitCode::SUCCESS)
}
