//! `ami plugin`: the vendor's tools, from a new crate to a signed package that passes its vectors.

use ami_plugin_host::package::{self, Package};
use ami_plugin_host::{Host, HostConfig, InputFrame, Manifest, MemoryKeyStore, Plugin, PluginKind};
use ami_vectors::{Outcome, for_protocol_or_canonical};
use anyhow::{Context, Result, bail};
use ed25519_dalek::SigningKey;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::sync::Arc;

use crate::paths::PathArgs;
use crate::scaffold;

/// Subcommands of `ami plugin`.
#[derive(clap::Subcommand)]
pub enum PluginCommand {
    /// Scaffold a plugin crate from the SDK template; it builds to a component as is.
    New {
        /// Plugin name, [a-z0-9-].
        name: String,
        /// What it is.
        #[arg(long, value_parser = ["decoder", "vee-rule", "tariff"])]
        kind: String,
        /// Parent directory of the new crate [default: .].
        #[arg(long, default_value = ".")]
        dir: PathBuf,
        /// Path of the ami-plugin-sdk crate [default: the SDK this ami was built with].
        #[arg(long, env = "AMI_SDK_PATH")]
        sdk: Option<PathBuf>,
        /// Vendor name for the manifest.
        #[arg(long, default_value = "my-company")]
        vendor: String,
    },
    /// Compile a plugin crate to a component and package it (unsigned) in <crate>/dist/<name>.
    Build {
        /// The plugin crate [default: .].
        #[arg(default_value = ".")]
        dir: PathBuf,
    },
    /// Make an ed25519 signing key: <out> (secret, hex) and <out>.pub (public, hex).
    Keygen {
        /// Where to write the secret key.
        #[arg(long)]
        out: PathBuf,
    },
    /// Sign a package with a vendor key.
    Sign {
        /// The package directory.
        package: PathBuf,
        /// The secret key file.
        #[arg(long)]
        key: PathBuf,
    },
    /// Show a package's manifest, signature status, world, imports and exports (or a bare .wasm's).
    Inspect {
        /// Package directory or component file.
        path: PathBuf,
    },
    /// Run a plugin against a vectors file and print pass/fail per vector.
    Test {
        /// An installed plugin's name, or a package directory.
        plugin: String,
        /// The vectors file (JSON lines, see tests/vectors/README.md).
        #[arg(long)]
        vectors: PathBuf,
        /// Read the vectors as this protocol's peer format [default: the plugin's first protocol].
        #[arg(long)]
        protocol: Option<String>,
        /// Also trust these public key files (for a package signed by a new vendor key).
        #[arg(long)]
        trust: Vec<PathBuf>,
    },
    /// List the installed plugins.
    List,
}

/// Runs `ami plugin ...`.
pub fn run(cmd: PluginCommand, paths: &PathArgs) -> Result<ExitCode> {
    match cmd {
        PluginCommand::New {
            name,
            kind,
            dir,
            sdk,
            vendor,
        } => {
            let kind: PluginKind = kind.parse().map_err(anyhow::Error::msg)?;
            let path = scaffold::new_plugin(&name, kind, &dir, sdk.as_deref(), &vendor)?;
            println!(
                "created {} ({kind}); next: cd {} && ami plugin build",
                path.display(),
                path.display()
            );
        }
        PluginCommand::Build { dir } => {
            let out = build(&dir)?;
            println!("{}", out.display());
        }
        PluginCommand::Keygen { out } => {
            let key = SigningKey::generate(&mut rand_core::OsRng);
            package::write_secret(&out, &hex::encode(key.to_bytes()))?;
            let public = hex::encode(key.verifying_key().to_bytes());
            let pub_path = PathBuf::from(format!("{}.pub", out.display()));
            std::fs::write(&pub_path, &public)?;
            println!(
                "secret key {} (keep it secret); public key {} = {public}",
                out.display(),
                pub_path.display()
            );
        }
        PluginCommand::Sign { package: dir, key } => {
            let key = package::read_signing_key(&key)?;
            let m = package::sign(&dir, &key)?;
            println!(
                "signed {}@{} with {}",
                m.name,
                m.version,
                hex::encode(key.verifying_key().to_bytes())
            );
        }
        PluginCommand::Inspect { path } => inspect(&path, paths)?,
        PluginCommand::Test {
            plugin,
            vectors,
            protocol,
            trust,
        } => return test(&plugin, &vectors, protocol.as_deref(), &trust, paths),
        PluginCommand::List => {
            let host = paths.host(Arc::new(MemoryKeyStore::new()))?;
            eprintln!("this host loads {}", ami_plugin_host::loaded_versions());
            for p in host.plugins() {
                let m = p.manifest();
                let serves = if m.protocols.is_empty() {
                    &m.rules
                } else {
                    &m.protocols
                };
                println!(
                    "{:<20} {:<10} {:<9} {:<24} {:<17} {} MiB, {} ms",
                    m.name,
                    m.version,
                    m.kind.to_string(),
                    serves.join(","),
                    m.wit,
                    p.limits().memory_bytes >> 20,
                    p.limits().time.as_millis()
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The `name` of a Cargo.toml's `[package]`.
fn crate_name(dir: &Path) -> Result<String> {
    let text = std::fs::read_to_string(dir.join("Cargo.toml"))
        .with_context(|| format!("no Cargo.toml in {}", dir.display()))?;
    let table: toml::Table = toml::from_str(&text)?;
    table
        .get("package")
        .and_then(|p| p.get("name"))
        .and_then(|n| n.as_str())
        .map(str::to_owned)
        .context("Cargo.toml has no package name")
}

/// Builds a plugin crate and packages it; returns the package directory.
pub fn build(dir: &Path) -> Result<PathBuf> {
    let source = std::fs::read_to_string(dir.join("plugin.toml"))
        .with_context(|| format!("no plugin.toml in {}", dir.display()))?;
    let krate = crate_name(dir)?.replace('-', "_");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(&cargo)
        .current_dir(dir)
        .args(["build", "--release", "--target", "wasm32-wasip2"])
        .status()
        .with_context(|| format!("cannot run {cargo}"))?;
    if !status.success() {
        bail!("cargo build failed ({status})");
    }
    let meta = Command::new(&cargo)
        .current_dir(dir)
        .args(["metadata", "--no-deps", "--format-version", "1"])
        .output()?;
    let meta: serde_json::Value = serde_json::from_slice(&meta.stdout).context("cargo metadata")?;
    let target = meta
        .get("target_directory")
        .and_then(|t| t.as_str())
        .context("cargo metadata gives no target directory")?;
    let wasm_path = Path::new(target)
        .join("wasm32-wasip2/release")
        .join(format!("{krate}.wasm"));
    let wasm = std::fs::read(&wasm_path)
        .with_context(|| format!("no component at {}", wasm_path.display()))?;
    let manifest = Manifest::from_source(&source, &format!("{krate}.wasm"))
        .map_err(|e| anyhow::anyhow!("plugin.toml: {e}"))?;
    let out = dir.join("dist").join(&manifest.name);
    if out.exists() {
        std::fs::remove_dir_all(&out)?;
    }
    Package::write(&out, &manifest, &wasm)?;
    Ok(out)
}

fn inspect(path: &Path, paths: &PathArgs) -> Result<()> {
    let host = Host::new(
        HostConfig::default(),
        paths.trust()?,
        Arc::new(MemoryKeyStore::new()),
    )?;
    let bytes = if path.is_dir() {
        let m = package::read_manifest(path)?;
        println!("name:      {}", m.name);
        println!("version:   {}", m.version);
        println!(
            "kind:      {} (world ami:plugin/{})",
            m.kind,
            m.kind.world()
        );
        println!("vendor:    {}", m.vendor);
        if !m.protocols.is_empty() {
            println!("protocols: {}", m.protocols.join(", "));
        }
        if !m.rules.is_empty() {
            println!("rules:     {}", m.rules.join(", "));
        }
        println!("wit:       {}", m.wit);
        println!(
            "limits:    {} MiB, {} ms per call",
            m.limits.memory_mb, m.limits.time_ms
        );
        println!("component: {} sha256 {}", m.component, m.sha256);
        let status = match Package::open(path, &paths.trust()?) {
            Ok(_) => format!(
                "verified (signed by {})",
                m.signature
                    .as_ref()
                    .map(|s| s.public_key.as_str())
                    .unwrap_or("?")
            ),
            Err(e) => format!("NOT loadable: {e}"),
        };
        println!("signature: {status}");
        std::fs::read(path.join(&m.component))?
    } else {
        std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?
    };
    let info = ami_plugin_host::describe(host.engine(), &bytes)?;
    match info.world {
        Some(k) => println!(
            "world:     {} (exports ami:plugin/{})",
            k.world(),
            k.export_interface()
        ),
        None => println!("world:     none of {}", ami_plugin_host::loaded_versions()),
    }
    for i in &info.imports {
        println!("import:    {i}");
    }
    for e in &info.exports {
        println!("export:    {e}");
    }
    Ok(())
}

fn load_plugin(
    spec: &str,
    trust_files: &[PathBuf],
    paths: &PathArgs,
    keys: Arc<MemoryKeyStore>,
) -> Result<(Host, Arc<Plugin>)> {
    let mut trust = paths.trust()?;
    for f in trust_files {
        trust.add_hex(
            &std::fs::read_to_string(f).with_context(|| format!("cannot read {}", f.display()))?,
        )?;
    }
    let host = Host::new(HostConfig::default(), trust, keys)?;
    let plugin = if Path::new(spec).is_dir() {
        host.install_dir(Path::new(spec))?
    } else {
        let dir = paths.plugin_dir().join(spec);
        host.install_dir(&dir).with_context(|| {
            format!("no installed plugin {spec:?} (looked in {})", dir.display())
        })?
    };
    Ok((host, plugin))
}

fn test(
    spec: &str,
    vectors: &Path,
    protocol: Option<&str>,
    trust: &[PathBuf],
    paths: &PathArgs,
) -> Result<ExitCode> {
    let keys = Arc::new(MemoryKeyStore::new());
    let (_host, plugin) = load_plugin(spec, trust, paths, keys.clone())?;
    if plugin.manifest().kind != PluginKind::Decoder {
        bail!(
            "{} is a {} plugin; vectors test decoders",
            plugin.manifest().name,
            plugin.manifest().kind
        );
    }
    let protocol = protocol
        .map(str::to_owned)
        .or_else(|| plugin.manifest().protocols.first().cloned())
        .unwrap_or_default();
    let format = for_protocol_or_canonical(&protocol);
    let vectors = ami_vectors::load(vectors)?;
    let (mut pass, mut fail, mut skip) = (0, 0, 0);
    for v in &vectors {
        if let Some(problem) = &v.problem {
            println!("FAIL {}: unusable vector: {problem}", v.id);
            fail += 1;
            continue;
        }
        keys.clear();
        let key16 = |k: Option<&[u8]>| -> Result<Option<[u8; 16]>, String> {
            k.map(|k| {
                <[u8; 16]>::try_from(k)
                    .map_err(|_| format!("a key of {} bytes is not AES-128", k.len()))
            })
            .transpose()
        };
        match (key16(v.key.as_deref()), key16(v.auth_key.as_deref())) {
            (Ok(ek), Ok(ak)) => keys.set_any_meter(ek, ak),
            (Err(e), _) | (_, Err(e)) => {
                println!("FAIL {}: unusable vector: {e}", v.id);
                fail += 1;
                continue;
            }
        }
        let expect = match format.expectations(v) {
            Ok(e) => e,
            Err(e) => {
                println!("FAIL {}: cannot read the expected values: {e}", v.id);
                fail += 1;
                continue;
            }
        };
        let frames: Vec<InputFrame<'_>> = v
            .preceding
            .iter()
            .chain(std::iter::once(&v.frame))
            .map(|f| InputFrame {
                data: f,
                received_at_ms: 0,
                meter_hint: None,
            })
            .collect();
        let got = match plugin.decode(&frames) {
            Ok(mut r) => r
                .pop()
                .unwrap_or_else(|| Err(ami_domain::DecodeError::Malformed("no result".into()))),
            Err(e) => {
                println!("FAIL {}: {e}", v.id);
                fail += 1;
                continue;
            }
        };
        match format.check(&expect, &got) {
            Outcome::Pass => {
                pass += 1;
                println!("PASS {}", v.id);
            }
            Outcome::Skip(why) => {
                skip += 1;
                println!("SKIP {}: {why}", v.id);
            }
            Outcome::Fail(reasons) => {
                fail += 1;
                println!("FAIL {}", v.id);
                for r in reasons {
                    println!("    {r}");
                }
            }
        }
    }
    println!(
        "{}@{}: {pass} passed, {fail} failed, {skip} skipped of {}",
        plugin.manifest().name,
        plugin.manifest().version,
        vectors.len()
    );
    // Nothing checked is not a pass.
    Ok(if fail == 0 && pass > 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
