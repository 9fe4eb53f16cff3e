//! Where `ami` finds installed plugins and trusted vendor keys.

use ami_plugin_host::{Host, HostConfig, KeyStore, TrustStore};
use anyhow::{Context, Result};
use std::path::PathBuf;
use std::sync::Arc;

/// Locations, from flags or the environment.
#[derive(clap::Args, Clone, Debug)]
pub struct PathArgs {
    /// Directory of installed plugin packages [default: $AMI_HOME/plugins].
    #[arg(long, global = true, env = "AMI_PLUGIN_DIR")]
    pub plugin_dir: Option<PathBuf>,
    /// Directory of trusted vendor public keys (*.pub) [default: $AMI_HOME/trusted-keys].
    #[arg(long, global = true, env = "AMI_TRUST_DIR")]
    pub trust_dir: Option<PathBuf>,
}

/// `$AMI_HOME`, else `$XDG_DATA_HOME/ami`, else `~/.local/share/ami`.
pub fn ami_home() -> PathBuf {
    if let Some(h) = std::env::var_os("AMI_HOME") {
        return PathBuf::from(h);
    }
    std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
        .unwrap_or_else(|| PathBuf::from("."))
        .join("ami")
}

impl PathArgs {
    /// The plugins directory.
    pub fn plugin_dir(&self) -> PathBuf {
        self.plugin_dir
            .clone()
            .unwrap_or_else(|| ami_home().join("plugins"))
    }

    /// The trusted keys directory.
    pub fn trust_dir(&self) -> PathBuf {
        self.trust_dir
            .clone()
            .unwrap_or_else(|| ami_home().join("trusted-keys"))
    }

    /// The trust store (empty, with a warning, when the directory is missing).
    pub fn trust(&self) -> Result<TrustStore> {
        let dir = self.trust_dir();
        if !dir.is_dir() {
            eprintln!(
                "ami: no trusted keys directory {} (run `cargo xtask components`, or pass --trust-dir)",
                dir.display()
            );
            return Ok(TrustStore::new());
        }
        TrustStore::load_dir(&dir).with_context(|| format!("trusted keys in {}", dir.display()))
    }

    /// A host with every installed plugin loaded; prints the packages it refused.
    pub fn host(&self, keys: Arc<dyn KeyStore>) -> Result<Host> {
        let host = Host::new(HostConfig::default(), self.trust()?, keys)?;
        let dir = self.plugin_dir();
        if dir.is_dir() {
            for (path, err) in host.install_all(&dir)? {
                eprintln!("ami: refused plugin {path}: {err}");
            }
        } else {
            eprintln!(
                "ami: no plugins directory {} (run `cargo xtask components`, or pass --plugin-dir)",
                dir.display()
            );
        }
        Ok(host)
    }
}
