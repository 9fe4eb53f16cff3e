//! The plugin manifest: what a package says it is, and the bytes its vendor signs.

use serde::{Deserialize, Serialize};

/// The WIT package every plugin targets.
pub const WIT_PACKAGE: &str = "ami:plugin";
/// The version of that package this host implements, and plugins built now target.
pub const WIT_VERSION: &str = "0.1.1";
/// Every version of that package this host loads. 0.1.1 only added to 0.1.0 (the `crypto-ext`
/// interface), so a plugin built against 0.1.0 is served by the same host functions.
pub const WIT_VERSIONS_LOADED: &[&str] = &["0.1.0", "0.1.1"];

/// `ami:plugin@0.1.0 and @0.1.1`: what this host loads, for messages.
pub fn loaded_versions() -> String {
    let v: Vec<String> = WIT_VERSIONS_LOADED
        .iter()
        .map(|v| format!("@{v}"))
        .collect();
    format!("{WIT_PACKAGE}{}", v.join(" and "))
}

/// The kind of plugin, one per WIT world.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PluginKind {
    /// Frames in, readings and events out (`decoder` world).
    Decoder,
    /// Validation, estimation and editing rules (`vee-rule` world).
    VeeRule,
    /// Billing determinants and charges (`tariff` world).
    Tariff,
}

impl PluginKind {
    /// The WIT world's name.
    pub const fn world(self) -> &'static str {
        match self {
            PluginKind::Decoder => "decoder",
            PluginKind::VeeRule => "vee-rule",
            PluginKind::Tariff => "tariff",
        }
    }

    /// The interface the world exports, without package and version (`decode`, ...).
    pub const fn export_interface(self) -> &'static str {
        match self {
            PluginKind::Decoder => "decode",
            PluginKind::VeeRule => "validate",
            PluginKind::Tariff => "rate",
        }
    }

    /// Every kind.
    pub const ALL: [PluginKind; 3] = [PluginKind::Decoder, PluginKind::VeeRule, PluginKind::Tariff];
}

impl std::fmt::Display for PluginKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.world())
    }
}

impl std::str::FromStr for PluginKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        PluginKind::ALL
            .into_iter()
            .find(|k| k.world() == s)
            .ok_or_else(|| format!("unknown plugin kind {s:?} (decoder, vee-rule or tariff)"))
    }
}

/// Limits a plugin asks for; the operator's configuration bounds them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestedLimits {
    /// Linear memory cap per instance, in MiB.
    pub memory_mb: u32,
    /// Time bound per call (one batch), in milliseconds.
    pub time_ms: u32,
}

impl Default for RequestedLimits {
    fn default() -> Self {
        Self {
            memory_mb: 64,
            time_ms: 1000,
        }
    }
}

/// The vendor's ed25519 signature over [`Manifest::signed_bytes`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Signature {
    /// The signer's public key, hex.
    pub public_key: String,
    /// The signature, hex.
    pub value: String,
}

/// A plugin package's manifest (`manifest.toml`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Plugin name, lower-case, `[a-z0-9-]`.
    pub name: String,
    /// Plugin version (semver).
    pub version: String,
    /// Which world it implements.
    pub kind: PluginKind,
    /// The vendor shipping it.
    #[serde(default)]
    pub vendor: String,
    /// Protocols a decoder serves (`dsmr`, `dlms`, ...).
    #[serde(default)]
    pub protocols: Vec<String>,
    /// Rule ids of a VEE rule pack or tariff ids of a tariff plugin.
    #[serde(default)]
    pub rules: Vec<String>,
    /// The WIT package and version it targets, `ami:plugin@0.1.1` (or `@0.1.0`).
    pub wit: String,
    /// The component's file name inside the package.
    pub component: String,
    /// SHA-256 of the component file, hex.
    pub sha256: String,
    /// Limits it asks for.
    #[serde(default)]
    pub limits: RequestedLimits,
    /// The vendor's signature; absent on an unsigned package.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<Signature>,
}

impl Manifest {
    /// The bytes the vendor signs: every field but the signature, in a fixed JSON form.
    pub fn signed_bytes(&self) -> Vec<u8> {
        let unsigned = Manifest {
            signature: None,
            ..self.clone()
        };
        let mut out = b"ami-plugin-manifest-v1\n".to_vec();
        // Serialising a plain struct of strings and numbers cannot fail.
        out.extend(serde_json::to_vec(&unsigned).unwrap_or_default());
        out
    }

    /// A manifest from a plugin crate's `plugin.toml` (name, version, kind, protocols or rules,
    /// wit, limits) for a component file; the sha256 is left to [`crate::package::Package::write`].
    pub fn from_source(plugin_toml: &str, component: &str) -> Result<Self, String> {
        let mut table: toml::Table = toml::from_str(plugin_toml).map_err(|e| e.to_string())?;
        table.insert("component".into(), component.into());
        table.insert("sha256".into(), "0".repeat(64).into());
        let manifest: Manifest = toml::Value::Table(table)
            .try_into()
            .map_err(|e: toml::de::Error| e.to_string())?;
        manifest.validate()?;
        Ok(manifest)
    }

    /// Checks the fields a host relies on; says which one is wrong.
    pub fn validate(&self) -> Result<(), String> {
        let name_ok = !self.name.is_empty()
            && self.name.len() <= 64
            && self
                .name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !name_ok {
            return Err(format!(
                "name {:?} must be 1-64 chars of [a-z0-9-]",
                self.name
            ));
        }
        if self.version.is_empty() || self.version.len() > 32 {
            return Err(format!("version {:?} is empty or too long", self.version));
        }
        let loaded = WIT_VERSIONS_LOADED
            .iter()
            .any(|v| self.wit == format!("{WIT_PACKAGE}@{v}"));
        if !loaded {
            return Err(format!(
                "targets {} but this host loads {}",
                self.wit,
                loaded_versions()
            ));
        }
        if self.kind == PluginKind::Decoder && self.protocols.is_empty() {
            return Err("a decoder must list the protocols it serves".into());
        }
        if self.component.contains(['/', '\\']) || self.component.starts_with('.') {
            return Err(format!(
                "component {:?} must be a plain file name inside the package",
                self.component
            ));
        }
        if self.sha256.len() != 64 || hex::decode(&self.sha256).is_err() {
            return Err(format!("sha256 {:?} is not 64 hex digits", self.sha256));
        }
        if self.limits.memory_mb == 0 || self.limits.time_ms == 0 {
            return Err("limits must be above zero".into());
        }
        Ok(())
    }
}
