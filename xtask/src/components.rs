//! Builds the Wasm components, packages and signs the shipped ones, installs them for `ami`.

use ami_plugin_host::{Manifest, package};
use anyhow::{Context, Result};
use ed25519_dalek::SigningKey;
use std::path::{Path, PathBuf};

use crate::{cargo, root, target_dir};

/// Every component crate, built in one cargo invocation.
pub const COMPONENT_CRATES: &[&str] = &[
    "ami-decoder-ansi-c12",
    "ami-decoder-dlms",
    "ami-decoder-dsmr",
    "ami-decoder-iec62056-21",
    "ami-decoder-mbus",
    "ami-example-decoder",
    "ami-example-vee-rule",
    "ami-example-tariff",
    "ami-vee-standard",
    "ami-tariff-standard",
    "ami-test-hostile-decoder",
    "ami-test-net-decoder",
    "ami-test-legacy-decoder",
];

/// The components `ami` ships, by crate directory: packaged, signed and installed.
const SHIPPED: &[&str] = &[
    "components/decoders/ansi-c12",
    "components/decoders/dlms",
    "components/decoders/dsmr",
    "components/decoders/iec62056-21",
    "components/decoders/mbus",
    "components/examples/example-decoder",
    "components/examples/example-vee-rule",
    "components/examples/example-tariff",
    "components/vee/standard",
    "components/tariffs/standard",
];

/// Where `ami` keeps its plugins, trusted keys and the development signing key.
pub fn ami_home() -> PathBuf {
    if let Some(h) = std::env::var_os("AMI_HOME") {
        return PathBuf::from(h);
    }
    let data = std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
        .unwrap_or_else(|| PathBuf::from("."));
    data.join("ami")
}

/// Builds all components; returns the directory holding the `.wasm` files.
pub fn run() -> Result<PathBuf> {
    let mut args = vec![
        "build",
        "--profile",
        "component",
        "--target",
        "wasm32-wasip2",
    ];
    for c in COMPONENT_CRATES {
        args.extend(["-p", c]);
    }
    cargo(&args, &[])?;
    let out = target_dir().join("wasm32-wasip2").join("component");
    let home = ami_home();
    let key = dev_key(&home)?;
    let plugins = home.join("plugins");
    for dir in SHIPPED {
        let manifest = package_crate(&root().join(dir), &out, &plugins, &key)?;
        println!(
            "packaged {}@{} ({})",
            manifest.name, manifest.version, manifest.kind
        );
    }
    println!(
        "components in {}; signed packages installed in {}",
        out.display(),
        plugins.display()
    );
    Ok(out)
}

/// Packages and signs one component crate into `plugins/<name>/`.
fn package_crate(
    crate_dir: &Path,
    wasm_dir: &Path,
    plugins: &Path,
    key: &SigningKey,
) -> Result<Manifest> {
    let src = std::fs::read_to_string(crate_dir.join("plugin.toml"))
        .with_context(|| format!("{}/plugin.toml", crate_dir.display()))?;
    let cargo_toml = std::fs::read_to_string(crate_dir.join("Cargo.toml"))?;
    let crate_name = cargo_toml
        .lines()
        .find_map(|l| l.strip_prefix("name = \""))
        .and_then(|l| l.strip_suffix('"'))
        .context("crate name")?
        .replace('-', "_");
    let manifest = Manifest::from_source(&src, &format!("{crate_name}.wasm"))
        .map_err(|e| anyhow::anyhow!("{}/plugin.toml: {e}", crate_dir.display()))?;
    let wasm = std::fs::read(wasm_dir.join(format!("{crate_name}.wasm")))
        .with_context(|| format!("component of {crate_name}"))?;
    let dir = plugins.join(&manifest.name);
    if dir.exists() {
        std::fs::remove_dir_all(&dir)?;
    }
    package::Package::write(&dir, &manifest, &wasm)?;
    Ok(package::sign(&dir, key)?)
}

/// The local development signing key, made on first use; its public half is trusted.
fn dev_key(home: &Path) -> Result<SigningKey> {
    let path = home.join("dev-signing.key");
    let key = if path.exists() {
        package::read_signing_key(&path)?
    } else {
        std::fs::create_dir_all(home)?;
        let key = SigningKey::generate(&mut rand_core::OsRng);
        package::write_secret(&path, &hex::encode(key.to_bytes()))?;
        key
    };
    let trust = home.join("trusted-keys");
    std::fs::create_dir_all(&trust)?;
    std::fs::write(
        trust.join("dev.pub"),
        hex::encode(key.verifying_key().to_bytes()),
    )?;
    Ok(key)
}
