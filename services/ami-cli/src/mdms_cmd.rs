//! `ami mdms`: the Meter Data Management System role. Consumes readings from the bus into the
//! store and serves `ami.mdms.v1` over gRPC until Ctrl-C.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use ami_mdms::auth::Auth;
use ami_mdms::server::{Api, serve};
use ami_mdms::vee::RuleSets;
use ami_mdms::{Mdms, ReadingsConsumer};
use ami_mdms_store::{AnyStore, MeterDataStore};
use ami_plugin_host::MemoryKeyStore;
use anyhow::{Context, Result, bail};

use crate::paths::{PathArgs, ami_home};
use crate::platform::{BusArgs, runtime, stop_on_signal};

/// Arguments of `ami mdms`.
#[derive(clap::Args)]
pub struct MdmsArgs {
    #[command(flatten)]
    bus: BusArgs,
    /// The store: postgres://user@host/db, sqlite:<path> [default: sqlite:$AMI_HOME/mdms.db].
    #[arg(long, env = "AMI_MDMS_STORE")]
    store: Option<String>,
    /// Where the gRPC API listens.
    #[arg(long, env = "AMI_MDMS_LISTEN", default_value = "127.0.0.1:50052")]
    listen: SocketAddr,
    /// VEE rule sets per meter class (TOML) [default: the built-in standard set].
    #[arg(long, env = "AMI_MDMS_RULES")]
    rules: Option<std::path::PathBuf>,
    /// Bearer tokens: `token=name:role[,role]` entries separated by `;`.
    #[arg(long, env = "AMI_MDMS_TOKENS", hide_env_values = true)]
    tokens: Option<String>,
    /// A file of bearer tokens, one entry per line (a mounted Kubernetes secret).
    #[arg(long, env = "AMI_MDMS_TOKENS_FILE")]
    tokens_file: Option<std::path::PathBuf>,
    /// Serve without authentication: every caller has every role (one machine only).
    #[arg(long)]
    insecure_open: bool,
    /// Durable consumer name shared by the replicas.
    #[arg(long, env = "AMI_MDMS_DURABLE", default_value = "ami-mdms")]
    durable: String,
    /// Messages per store transaction.
    #[arg(long, default_value_t = 1000)]
    batch: usize,
    /// Days of history given to history-based VEE rules.
    #[arg(long, default_value_t = 28)]
    history_days: u32,
}

fn auth(args: &MdmsArgs) -> Result<Auth> {
    let text = match (&args.tokens, &args.tokens_file) {
        (Some(t), _) => Some(t.clone()),
        (None, Some(f)) => {
            Some(std::fs::read_to_string(f).with_context(|| format!("reading {}", f.display()))?)
        }
        (None, None) => None,
    };
    match (text, args.insecure_open) {
        (Some(_), true) => bail!("--insecure-open and tokens exclude each other"),
        (Some(t), false) => Ok(Auth::parse_tokens(&t)?),
        (None, true) => Ok(Auth::Open),
        (None, false) => bail!(
            "ami mdms needs callers' tokens (AMI_MDMS_TOKENS or AMI_MDMS_TOKENS_FILE), or --insecure-open on a single machine"
        ),
    }
}

/// Runs `ami mdms`.
pub fn run(args: MdmsArgs, paths: &PathArgs) -> Result<ExitCode> {
    let auth = auth(&args)?;
    let rules = match &args.rules {
        Some(p) => RuleSets::parse(
            &std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?,
        )?,
        None => RuleSets::standard(),
    };
    let store_url = match &args.store {
        Some(s) => s.clone(),
        None => {
            let home = ami_home();
            std::fs::create_dir_all(&home)
                .with_context(|| format!("creating {}", home.display()))?;
            format!("sqlite:{}", home.join("mdms.db").display())
        }
    };
    runtime()?.block_on(async move {
        let store = Arc::new(AnyStore::open(&store_url, 8).await.with_context(|| format!("opening the store {store_url}"))?);
        store.migrate().await.context("migrating the store")?;
        let host = Arc::new(paths.host(Arc::new(MemoryKeyStore::new()))?);
        let mdms = Arc::new(Mdms::new(Arc::clone(&store), host, rules, args.history_days));
        let bus = args.bus.connect(100_000).await?;
        let consumer = Arc::new(ReadingsConsumer::new(bus.clone(), Arc::clone(&store), &args.durable, args.batch));
        let stats = consumer.stats();
        let (_stop_tx, stop) = stop_on_signal();
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("listening on {}", args.listen))?;
        println!(
            "ami mdms: consuming {}.readings.> as {} into {}; gRPC ami.mdms.v1 on {} (reflection and health on); Ctrl-C stops",
            bus.topology().root(),
            args.durable,
            store_url.split('@').next_back().unwrap_or(&store_url),
            listener.local_addr()?
        );
        let consuming = {
            let consumer = Arc::clone(&consumer);
            let stop = stop.clone();
            tokio::spawn(async move { consumer.run(stop).await })
        };
        let mut stop_srv = stop.clone();
        let shutdown = async move {
            let _ = stop_srv.wait_for(|s| *s).await;
        };
        serve(Api::new(mdms, auth), listener, shutdown).await?;
        consuming.await.context("consumer task")??;
        println!(
            "ami mdms: stopped; {} messages, {} readings ({} new, {} duplicates), {} dead letters",
            stats.messages.load(Ordering::Relaxed),
            stats.readings.load(Ordering::Relaxed),
            stats.inserted.load(Ordering::Relaxed),
            stats.duplicates.load(Ordering::Relaxed),
            stats.dead.load(Ordering::Relaxed),
        );
        Ok(ExitCode::SUCCESS)
    })
}
