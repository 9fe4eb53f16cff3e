//! The host: one engine, its epoch clock, the operator's bounds, the trust and key stores, and
//! the registry of installed plugins.
//!
//! Installing a plugin whose name is already installed replaces it atomically: calls already
//! running keep the old version (they hold it), every call after the swap gets the new one.

use arc_swap::ArcSwap;
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, RwLock};
use wasmtime::component::Linker;
use wasmtime::{Config, Engine};

use crate::error::LoadError;
use crate::limits::{EpochTicker, Limits};
use crate::manifest::PluginKind;
use crate::package::Package;
use crate::plugin::Plugin;
use crate::sandbox::{State, linker};
use crate::trust::TrustStore;
use ami_crypto::KeyStore;

/// The operator's bounds on every plugin.
#[derive(Clone, Debug)]
pub struct HostConfig {
    /// The most memory any plugin instance may have, MiB.
    pub max_memory_mb: u32,
    /// The longest any call may run, ms.
    pub max_time_ms: u32,
    /// Instances per plugin (concurrent calls into one plugin).
    pub max_instances: usize,
}

impl Default for HostConfig {
    fn default() -> Self {
        Self {
            max_memory_mb: 256,
            max_time_ms: 10_000,
            max_instances: 8,
        }
    }
}

/// A plugin slot in the registry: the current version, swappable.
type Slot = Arc<ArcSwap<Plugin>>;

/// The plugin host.
pub struct Host {
    engine: Engine,
    linker: Linker<State>,
    config: HostConfig,
    trust: TrustStore,
    keys: Arc<dyn KeyStore>,
    plugins: RwLock<HashMap<String, Slot>>,
    _ticker: EpochTicker,
}

impl Host {
    /// A host with its own engine and epoch clock.
    pub fn new(
        config: HostConfig,
        trust: TrustStore,
        keys: Arc<dyn KeyStore>,
    ) -> Result<Self, LoadError> {
        let mut cfg = Config::new();
        cfg.wasm_component_model(true)
            .epoch_interruption(true)
            .cranelift_opt_level(wasmtime::OptLevel::Speed);
        // `AMI_WASM_PROFILER=perfmap` names plugin code in `perf` profiles (/tmp/perf-<pid>.map).
        if std::env::var("AMI_WASM_PROFILER").is_ok_and(|v| v == "perfmap") {
            cfg.profiler(wasmtime::ProfilingStrategy::PerfMap);
        }
        let engine = Engine::new(&cfg).map_err(|e| LoadError::Engine(format!("{e:#}")))?;
        let linker = linker(&engine).map_err(|e| LoadError::Engine(format!("{e:#}")))?;
        let ticker = EpochTicker::start(&engine).map_err(|e| LoadError::Engine(e.to_string()))?;
        Ok(Self {
            engine,
            linker,
            config,
            trust,
            keys,
            plugins: RwLock::new(HashMap::new()),
            _ticker: ticker,
        })
    }

    /// The wasm engine (for tools that inspect components).
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Verifies and compiles a package directory, without installing it.
    pub fn load(&self, dir: &Path) -> Result<Arc<Plugin>, LoadError> {
        let package = Package::open(dir, &self.trust)?;
        let limits = Limits::bounded(
            package.manifest.limits,
            self.config.max_memory_mb,
            self.config.max_time_ms,
        );
        if limits.memory_bytes < u64::from(package.manifest.limits.memory_mb) << 20
            || limits.time.as_millis() < u128::from(package.manifest.limits.time_ms)
        {
            tracing::warn!(
                plugin = %package.manifest.name,
                "plugin asks for more than the operator allows; bounded to {} MiB, {} ms",
                limits.memory_bytes >> 20,
                limits.time.as_millis()
            );
        }
        Plugin::load(
            &self.engine,
            &self.linker,
            package,
            limits,
            self.keys.clone(),
            self.config.max_instances,
        )
        .map(Arc::new)
    }

    /// Installs a loaded plugin, replacing any version of the same name; returns the old one.
    pub fn install(&self, plugin: Arc<Plugin>) -> Option<Arc<Plugin>> {
        let name = plugin.manifest().name.clone();
        let mut plugins = self.plugins.write().unwrap_or_else(|p| p.into_inner());
        match plugins.get(&name) {
            Some(slot) => Some(slot.swap(plugin)),
            None => {
                plugins.insert(name, Arc::new(ArcSwap::new(plugin)));
                None
            }
        }
    }

    /// Loads and installs a package directory.
    pub fn install_dir(&self, dir: &Path) -> Result<Arc<Plugin>, LoadError> {
        let plugin = self.load(dir)?;
        self.install(plugin.clone());
        Ok(plugin)
    }

    /// Installs every package under `dir` (each subdirectory with a manifest); returns what
    /// failed with why, so one bad package never stops the others.
    pub fn install_all(&self, dir: &Path) -> Result<Vec<(String, LoadError)>, LoadError> {
        let entries = std::fs::read_dir(dir).map_err(|e| LoadError::Io {
            path: dir.display().to_string(),
            reason: e.to_string(),
        })?;
        let mut failures = Vec::new();
        let mut paths: Vec<_> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.join(crate::package::MANIFEST_FILE).is_file())
            .collect();
        paths.sort();
        for path in paths {
            if let Err(e) = self.install_dir(&path) {
                failures.push((path.display().to_string(), e));
            }
        }
        Ok(failures)
    }

    /// Removes a plugin; calls in flight finish on it.
    pub fn uninstall(&self, name: &str) -> Option<Arc<Plugin>> {
        let mut plugins = self.plugins.write().unwrap_or_else(|p| p.into_inner());
        plugins.remove(name).map(|slot| slot.load_full())
    }

    /// The current version of a plugin by name.
    pub fn plugin(&self, name: &str) -> Option<Arc<Plugin>> {
        let plugins = self.plugins.read().unwrap_or_else(|p| p.into_inner());
        plugins.get(name).map(|slot| slot.load_full())
    }

    /// Every installed plugin, by name.
    pub fn plugins(&self) -> Vec<Arc<Plugin>> {
        let plugins = self.plugins.read().unwrap_or_else(|p| p.into_inner());
        let mut all: Vec<_> = plugins.values().map(|s| s.load_full()).collect();
        all.sort_by(|a, b| a.manifest().name.cmp(&b.manifest().name));
        all
    }

    /// Every installed plugin's counters in the OpenMetrics text format.
    pub fn metrics_text(&self) -> String {
        let plugins = self.plugins();
        crate::metrics::render_openmetrics(plugins.iter().map(|p| {
            (
                p.manifest().name.as_str(),
                p.manifest().version.as_str(),
                p.stats(),
            )
        }))
    }

    /// The decoder serving a protocol (the first by name if several claim it).
    pub fn decoder_for(&self, protocol: &str) -> Option<Arc<Plugin>> {
        self.plugins().into_iter().find(|p| {
            p.manifest().kind == PluginKind::Decoder
                && p.manifest().protocols.iter().any(|x| x == protocol)
        })
    }

    /// The plugin of `kind` that serves rule or tariff id `id`.
    pub fn plugin_for_rule(&self, kind: PluginKind, id: &str) -> Option<Arc<Plugin>> {
        self.plugins()
            .into_iter()
            .find(|p| p.manifest().kind == kind && p.manifest().rules.iter().any(|x| x == id))
    }
}
