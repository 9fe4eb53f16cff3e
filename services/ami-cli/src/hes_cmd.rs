//! `ami hes`: the head-end system role. Serves `ami.hes.v1` over gRPC (registry, keys, events,
//! outages, commands) until Ctrl-C; with NATS, consumes the events stream and runs the command
//! engine. Flags and environment mirror `ami_hes::server::ServerConfig::from_env`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use ami_hes::MasterKeySource;
use ami_hes::auth::TokenSource;
use ami_hes::commands::SigningKeySource;
use ami_hes::server::{DEFAULT_LISTEN, ServerConfig, bind};
use anyhow::{Context, Result, bail};
use zeroize::Zeroizing;

use crate::platform::{BusArgs, runtime, stop_on_signal};

/// Arguments of `ami hes`.
#[derive(clap::Args)]
pub struct HesArgs {
    /// NATS (events consumed, commands sent); without `--nats-url` the HES runs without a bus:
    /// no event consumer, commands off.
    #[command(flatten)]
    bus: BusArgs,
    /// Where the gRPC API listens.
    #[arg(long, env = "AMI_HES_LISTEN", default_value = DEFAULT_LISTEN)]
    listen: SocketAddr,
    /// The registry database: postgres://..., sqlite:<path>, sqlite::memory:. Commands are kept
    /// in PostgreSQL with it, in memory (lost on restart) with SQLite.
    #[arg(
        long,
        env = "AMI_HES_DATABASE_URL",
        default_value = "sqlite:ami-hes.db"
    )]
    database_url: String,
    /// Database pool size (PostgreSQL).
    #[arg(long, default_value_t = 8)]
    max_connections: u32,
    /// The master key of the key store: 32 bytes, 64 hex digits or base64.
    #[arg(long, env = "AMI_HES_MASTER_KEY", hide_env_values = true)]
    master_key: Option<String>,
    /// A file holding the master key (a mounted secret).
    #[arg(long, env = "AMI_HES_MASTER_KEY_FILE")]
    master_key_file: Option<PathBuf>,
    /// API tokens: `<principal> <role>[,<role>...] <token>` entries separated by `;` or newlines.
    #[arg(long, env = "AMI_HES_TOKENS", hide_env_values = true)]
    tokens: Option<String>,
    /// A file of token entries.
    #[arg(long, env = "AMI_HES_TOKENS_FILE")]
    tokens_file: Option<PathBuf>,
    /// The Ed25519 seed (64 hex digits) commands are signed with; required with NATS.
    #[arg(long, env = "AMI_HES_SIGNING_KEY", hide_env_values = true)]
    signing_key: Option<String>,
    /// A file holding the signing seed.
    #[arg(long, env = "AMI_HES_SIGNING_KEY_FILE")]
    signing_key_file: Option<PathBuf>,
    /// The durable consumer of the events stream (replicas share it).
    #[arg(long, env = "AMI_HES_CONSUMER", default_value = "ami-hes")]
    consumer: String,
}

fn master_key(args: &HesArgs) -> Result<MasterKeySource> {
    match (&args.master_key, &args.master_key_file) {
        (Some(k), _) => Ok(MasterKeySource::Inline(Zeroizing::new(k.clone()))),
        (None, Some(f)) => Ok(MasterKeySource::File(f.clone())),
        (None, None) => {
            bail!("ami hes needs a master key: AMI_HES_MASTER_KEY or AMI_HES_MASTER_KEY_FILE")
        }
    }
}

fn tokens(args: &HesArgs) -> Result<TokenSource> {
    match (&args.tokens, &args.tokens_file) {
        (Some(t), _) => Ok(TokenSource::Inline(Zeroizing::new(t.clone()))),
        (None, Some(f)) => Ok(TokenSource::File(f.clone())),
        (None, None) => bail!("ami hes needs API tokens: AMI_HES_TOKENS or AMI_HES_TOKENS_FILE"),
    }
}

fn signing_key(args: &HesArgs) -> Option<SigningKeySource> {
    match (&args.signing_key, &args.signing_key_file) {
        (Some(k), _) => Some(SigningKeySource::Inline(Zeroizing::new(k.clone()))),
        (None, Some(f)) => Some(SigningKeySource::File(f.clone())),
        (None, None) => None,
    }
}

/// Runs `ami hes`.
pub fn run(args: HesArgs) -> Result<ExitCode> {
    let mut config = ServerConfig::new(
        args.listen,
        &args.database_url,
        master_key(&args)?,
        tokens(&args)?,
    );
    config.max_connections = args.max_connections;
    config.signing_key = signing_key(&args);
    config.consumer = args.consumer.clone();
    runtime()?.block_on(async move {
        if args.bus.nats_url.is_some() {
            config.bus = Some(args.bus.connect(10_000).await?);
        }
        let bound = bind(config.clone()).await.context("starting the HES")?;
        let addr = bound.local_addr()?;
        let commands = match &bound.hes().commands {
            Some(c) => format!(
                "commands on {}.cmd.>, adapters must trust verifying key {}",
                args.bus.subject_root,
                hex::encode(c.verifying_key().to_bytes())
            ),
            None => "no bus: commands off".to_owned(),
        };
        println!(
            "ami hes: gRPC ami.hes.v1 on {addr} (reflection and health on), registry {}; {commands}; Ctrl-C stops",
            config
                .database_url
                .split('@')
                .next_back()
                .unwrap_or(&config.database_url),
        );
        let (_stop_tx, mut stop) = stop_on_signal();
        bound
            .serve(async move {
                let _ = stop.wait_for(|s| *s).await;
            })
            .await?;
        println!("ami hes: stopped");
        Ok(ExitCode::SUCCESS)
    })
}
