//! `ami decode`: one frame through the installed decoder component for its protocol.

use ami_plugin_host::{InputFrame, MemoryKeyStore};
use anyhow::{Context, Result, bail};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use crate::output;
use crate::paths::PathArgs;

/// Arguments of `ami decode`.
#[derive(clap::Args)]
#[command(group(clap::ArgGroup::new("input").required(true).args(["hex", "file"])))]
pub struct DecodeArgs {
    /// Protocol of the frame (`dsmr`, `iec62056-21`, ...): picks the installed decoder.
    #[arg(long)]
    protocol: String,
    /// AES-128 key (hex) for encrypted frames: DLMS encryption key, M-Bus/OMS key.
    #[arg(long)]
    key: Option<String>,
    /// DLMS authentication key (hex).
    #[arg(long)]
    auth_key: Option<String>,
    /// The frame as hex.
    #[arg(long)]
    hex: Option<String>,
    /// A file holding the frame's bytes as received.
    #[arg(long)]
    file: Option<PathBuf>,
    /// Receive time to stamp readings without a time of their own (RFC 3339) [default: now].
    #[arg(long)]
    received_at: Option<String>,
}

fn key16(hex_text: &str, what: &str) -> Result<[u8; 16]> {
    hex::decode(hex_text.trim())
        .ok()
        .and_then(|b| b.try_into().ok())
        .with_context(|| format!("{what} must be 32 hex digits (AES-128)"))
}

/// Now, in Unix milliseconds.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Runs `ami decode`.
pub fn run(args: DecodeArgs, paths: &PathArgs) -> Result<ExitCode> {
    let frame = match (&args.hex, &args.file) {
        (Some(h), _) => {
            let clean: String = h.chars().filter(|c| !c.is_whitespace()).collect();
            hex::decode(clean).context("--hex is not hex")?
        }
        (None, Some(p)) => {
            std::fs::read(p).with_context(|| format!("cannot read {}", p.display()))?
        }
        (None, None) => bail!("give --hex or --file"),
    };
    let received_at = match &args.received_at {
        Some(t) => ami_domain::time::parse_rfc3339(t)
            .with_context(|| format!("--received-at {t:?} is not RFC 3339"))?,
        None => now_ms(),
    };
    // Keys given on the command line answer for any meter, for this one run.
    let keys = Arc::new(MemoryKeyStore::new());
    let encryption = args.key.as_deref().map(|k| key16(k, "--key")).transpose()?;
    let authentication = args
        .auth_key
        .as_deref()
        .map(|k| key16(k, "--auth-key"))
        .transpose()?;
    keys.set_any_meter(encryption, authentication);
    let host = paths.host(keys)?;
    let Some(decoder) = host.decoder_for(&args.protocol) else {
        let installed: Vec<String> = host
            .plugins()
            .iter()
            .filter(|p| p.manifest().kind == ami_plugin_host::PluginKind::Decoder)
            .flat_map(|p| p.manifest().protocols.clone())
            .collect();
        bail!(
            "no installed decoder for protocol {:?} (installed: {}) in {}",
            args.protocol,
            if installed.is_empty() {
                "none".into()
            } else {
                installed.join(", ")
            },
            paths.plugin_dir().display()
        );
    };
    let input = InputFrame {
        data: &frame,
        received_at_ms: received_at,
        meter_hint: None,
    };
    let mut results = match decoder.decode(&[input]) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("ami: {e}");
            return Ok(ExitCode::from(1));
        }
    };
    match results.pop() {
        Some(Ok(decoded)) => {
            for line in output::lines(&decoded) {
                println!("{line}");
            }
            Ok(ExitCode::SUCCESS)
        }
        Some(Err(e)) => {
            eprintln!(
                "ami: {}@{} rejected the frame: {e}",
                decoder.manifest().name,
                decoder.manifest().version
            );
            Ok(ExitCode::from(1))
        }
        None => bail!("the decoder returned no result"),
    }
}
