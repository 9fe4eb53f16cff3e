//! `ami plugin new`: a vendor crate from the SDK's template (`components/sdk/template`).

use ami_plugin_host::PluginKind;
use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};

const CARGO: &str = include_str!("../../../components/sdk/template/Cargo.toml.tmpl");
const MANIFEST: &str = include_str!("../../../components/sdk/template/plugin.toml.tmpl");
const README: &str = include_str!("../../../components/sdk/template/README.md.tmpl");
const DECODER: &str = include_str!("../../../components/sdk/template/decoder.rs.tmpl");
const VEE: &str = include_str!("../../../components/sdk/template/vee-rule.rs.tmpl");
const TARIFF: &str = include_str!("../../../components/sdk/template/tariff.rs.tmpl");
const VECTORS: &str = include_str!("../../../components/sdk/template/vectors.jsonl.tmpl");

/// The SDK this binary was built with.
fn default_sdk() -> PathBuf {
    let built = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../components/sdk");
    built.canonicalize().unwrap_or(built)
}

/// Writes a new plugin crate `<parent>/<name>`; returns its path.
pub fn new_plugin(
    name: &str,
    kind: PluginKind,
    parent: &Path,
    sdk: Option<&Path>,
    vendor: &str,
) -> Result<PathBuf> {
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        bail!("plugin name {name:?} must be [a-z0-9-]");
    }
    let dir = parent.join(name);
    if dir.exists() {
        bail!("{} already exists", dir.display());
    }
    let sdk = sdk.map(Path::to_path_buf).unwrap_or_else(default_sdk);
    if !sdk.join("Cargo.toml").is_file() {
        bail!("no ami-plugin-sdk at {} (pass --sdk)", sdk.display());
    }
    let ids = match kind {
        PluginKind::Decoder => format!("protocols = [\"{name}\"]"),
        PluginKind::VeeRule | PluginKind::Tariff => format!("rules = [\"{name}\"]"),
    };
    let fill = |t: &str| {
        t.replace("{{name}}", name)
            .replace("{{crate}}", &format!("{name}-plugin"))
            .replace("{{kind}}", kind.world())
            .replace("{{vendor}}", vendor)
            .replace("{{ids}}", &ids)
            .replace("{{sdk}}", &sdk.display().to_string())
    };
    let code = match kind {
        PluginKind::Decoder => DECODER,
        PluginKind::VeeRule => VEE,
        PluginKind::Tariff => TARIFF,
    };
    std::fs::create_dir_all(dir.join("src"))
        .with_context(|| format!("cannot create {}", dir.display()))?;
    std::fs::write(dir.join("Cargo.toml"), fill(CARGO))?;
    std::fs::write(dir.join("plugin.toml"), fill(MANIFEST))?;
    std::fs::write(dir.join("README.md"), fill(README))?;
    std::fs::write(dir.join("src/lib.rs"), fill(code))?;
    std::fs::write(dir.join(".gitignore"), "/target\n/dist\n*.key\n")?;
    if kind == PluginKind::Decoder {
        std::fs::write(dir.join("vectors.jsonl"), fill(VECTORS))?;
    }
    Ok(dir)
}
