//! One loaded plugin version: its verified package, its pre-instantiated component, a pool of
//! ready instances and its counters. Every call runs under the plugin's limits; a failed call
//! discards the instance it ran in, so the next call starts clean.

use std::sync::{Arc, Condvar, Mutex};
use std::time::Instant;
use wasmtime::component::{Component, Linker};
use wasmtime::{Engine, Store, Trap};

use ami_domain::{DecodeError, Decoded};

use crate::bindings::decoder::exports::ami::plugin::decode as dw;
use crate::bindings::decoder::{Decoder, DecoderPre};
use crate::bindings::tariff::exports::ami::plugin::rate as tw;
use crate::bindings::tariff::{Tariff, TariffPre};
use crate::bindings::vee::exports::ami::plugin::validate as vw;
use crate::bindings::vee::{VeeRule, VeeRulePre};
use crate::convert;
use crate::error::{CallError, CallFailure, LoadError};
use crate::limits::{Limits, deadline_ticks};
use crate::manifest::{Manifest, PluginKind, WIT_PACKAGE, WIT_VERSIONS_LOADED, loaded_versions};
use crate::metrics::{Counters, PluginStats};
use crate::package::Package;
use crate::sandbox::{GRANTED_IMPORTS, State, new_store};
use ami_crypto::KeyStore;

/// How many frames of a failed batch may time out alone before the rest are not retried.
pub const RETRY_TIMEOUT_BUDGET: usize = 2;

/// A frame handed to a decoder.
#[derive(Clone, Copy, Debug)]
pub struct InputFrame<'a> {
    /// The frame's bytes.
    pub data: &'a [u8],
    /// When the adapter received it, ms since the epoch, UTC.
    pub received_at_ms: i64,
    /// The meter the adapter believes sent it.
    pub meter_hint: Option<&'a str>,
}

/// Why one frame of a batch has no decoded result.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameFailure {
    /// The decoder rejected the frame.
    #[error("{0}")]
    Decode(DecodeError),
    /// The call carrying this frame (alone) failed in the sandbox.
    #[error("{0}")]
    Call(CallError),
}

enum Pre {
    Decoder(DecoderPre<State>),
    Vee(VeeRulePre<State>),
    Tariff(TariffPre<State>),
}

enum Bound {
    Decoder(Decoder),
    Vee(VeeRule),
    Tariff(Tariff),
}

struct Slot {
    store: Store<State>,
    bound: Bound,
}

/// Instances of one plugin: idle ones ready for reuse and how many exist.
struct Pool {
    idle: Vec<Slot>,
    live: usize,
}

/// A loaded, verified plugin version.
pub struct Plugin {
    manifest: Manifest,
    limits: Limits,
    engine: Engine,
    keys: Arc<dyn KeyStore>,
    /// Failed short-tag verifications, rationed over all of this plugin's instances.
    tag_budget: ami_crypto::budget::SharedBudget,
    pre: Pre,
    pool: Mutex<Pool>,
    freed: Condvar,
    max_instances: usize,
    counters: Counters,
    imports: Vec<String>,
    exports: Vec<String>,
}

impl std::fmt::Debug for Plugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Plugin({}@{} {})",
            self.manifest.name, self.manifest.version, self.manifest.kind
        )
    }
}

/// What a component is, read from its own type information.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ComponentInfo {
    /// The plugin kind whose interface it exports, if any.
    pub world: Option<PluginKind>,
    /// Its imports.
    pub imports: Vec<String>,
    /// Its exports.
    pub exports: Vec<String>,
}

/// Compiles a component and reads its imports, exports and world, without running it.
pub fn describe(engine: &Engine, bytes: &[u8]) -> Result<ComponentInfo, LoadError> {
    let component = Component::new(engine, bytes).map_err(|e| LoadError::Compile {
        plugin: "(inspected)".into(),
        reason: format!("{e:#}"),
    })?;
    let (imports, exports) = component_names(engine, &component);
    let world = PluginKind::ALL
        .into_iter()
        .find(|k| exports_world(exports.as_slice(), *k));
    Ok(ComponentInfo {
        world,
        imports,
        exports,
    })
}

/// The import and export names of a component.
pub fn component_names(engine: &Engine, component: &Component) -> (Vec<String>, Vec<String>) {
    let ty = component.component_type();
    let imports = ty.imports(engine).map(|(n, _)| n.to_owned()).collect();
    let exports = ty.exports(engine).map(|(n, _)| n.to_owned()).collect();
    (imports, exports)
}

/// Whether `exports` holds the world's interface in a version this host loads.
fn exports_world(exports: &[String], kind: PluginKind) -> bool {
    WIT_VERSIONS_LOADED.iter().any(|v| {
        let want = format!("{WIT_PACKAGE}/{}@{v}", kind.export_interface());
        exports.contains(&want)
    })
}

fn check_world(
    manifest: &Manifest,
    imports: &[String],
    exports: &[String],
) -> Result<(), LoadError> {
    let wrong = |reason: String| LoadError::WrongWorld {
        plugin: manifest.name.clone(),
        reason,
    };
    if !exports_world(exports, manifest.kind) {
        let ours: Vec<&String> = exports
            .iter()
            .filter(|e| e.starts_with(WIT_PACKAGE))
            .collect();
        for kind in PluginKind::ALL {
            let prefix = format!("{WIT_PACKAGE}/{}@", kind.export_interface());
            if let Some(found) = ours.iter().find(|e| e.starts_with(&prefix)) {
                return Err(if kind == manifest.kind {
                    wrong(format!(
                        "exports {found}, built for another version of {WIT_PACKAGE}; this host loads {}",
                        loaded_versions()
                    ))
                } else {
                    wrong(format!(
                        "exports {found} (the {kind} world) but its manifest says {}",
                        manifest.kind
                    ))
                });
            }
        }
        return Err(wrong(format!(
            "does not export {WIT_PACKAGE}/{} (the {} world) of {}; it exports {exports:?}",
            manifest.kind.export_interface(),
            manifest.kind,
            loaded_versions()
        )));
    }
    // Every `ami:plugin` name the component uses must be of the version its manifest declares:
    // a manifest of 0.1.0 cannot ship a component that reaches 0.1.1's `crypto-ext`, and a
    // component of a version this host does not serve is named as such.
    let declared = manifest
        .wit
        .strip_prefix(WIT_PACKAGE)
        .and_then(|v| v.strip_prefix('@'))
        .unwrap_or_default();
    for name in imports.iter().chain(exports) {
        if let Some(rest) = name.strip_prefix(WIT_PACKAGE) {
            let version = rest.rsplit_once('@').map_or("", |(_, v)| v);
            if version != declared {
                return Err(wrong(format!(
                    "uses {name} but its manifest declares {}",
                    manifest.wit
                )));
            }
        }
    }
    for import in imports {
        let crypto = import.starts_with("ami:plugin/crypto@")
            || import.starts_with("ami:plugin/crypto-ext@");
        let granted = GRANTED_IMPORTS.iter().any(|p| import.starts_with(p))
            && !(manifest.kind != PluginKind::Decoder && crypto);
        if !granted {
            return Err(LoadError::ForbiddenImport {
                plugin: manifest.name.clone(),
                import: import.clone(),
            });
        }
    }
    Ok(())
}

impl Plugin {
    pub(crate) fn load(
        engine: &Engine,
        linker: &Linker<State>,
        package: Package,
        limits: Limits,
        keys: Arc<dyn KeyStore>,
        max_instances: usize,
    ) -> Result<Self, LoadError> {
        let manifest = package.manifest;
        let name = manifest.name.clone();
        let component =
            Component::new(engine, &package.component).map_err(|e| LoadError::Compile {
                plugin: name.clone(),
                reason: format!("{e:#}"),
            })?;
        let (imports, exports) = component_names(engine, &component);
        check_world(&manifest, &imports, &exports)?;
        let inst = |e: wasmtime::Error| LoadError::Instantiate {
            plugin: name.clone(),
            reason: format!("{e:#}"),
        };
        let instance_pre = linker.instantiate_pre(&component).map_err(inst)?;
        let pre = match manifest.kind {
            PluginKind::Decoder => Pre::Decoder(DecoderPre::new(instance_pre).map_err(inst)?),
            PluginKind::VeeRule => Pre::Vee(VeeRulePre::new(instance_pre).map_err(inst)?),
            PluginKind::Tariff => Pre::Tariff(TariffPre::new(instance_pre).map_err(inst)?),
        };
        let plugin = Self {
            manifest,
            limits,
            engine: engine.clone(),
            keys,
            tag_budget: ami_crypto::budget::FailureBudget::shared(
                ami_crypto::budget::SHORT_TAG_FAILURES_PER_MINUTE,
            ),
            pre,
            pool: Mutex::new(Pool {
                idle: Vec::new(),
                live: 0,
            }),
            freed: Condvar::new(),
            max_instances: max_instances.max(1),
            counters: Counters::default(),
            imports,
            exports,
        };
        // Instantiate once now: a component whose start fails is refused at load, not later.
        let slot = plugin.instantiate().map_err(|f| LoadError::Instantiate {
            plugin: name,
            reason: f.to_string(),
        })?;
        plugin.lock_pool().live += 1;
        plugin.give_back(slot);
        Ok(plugin)
    }

    /// The manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// The effective limits (the manifest's request bounded by the operator).
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// The component's imports.
    pub fn imports(&self) -> &[String] {
        &self.imports
    }

    /// The component's exports.
    pub fn exports(&self) -> &[String] {
        &self.exports
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> PluginStats {
        self.counters.snapshot()
    }

    fn err(&self, failure: CallFailure) -> CallError {
        CallError {
            plugin: self.manifest.name.clone(),
            version: self.manifest.version.clone(),
            failure,
        }
    }

    fn lock_pool(&self) -> std::sync::MutexGuard<'_, Pool> {
        // A poisoned pool only means a thread panicked while holding it; its data is still sound.
        self.pool.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn instantiate(&self) -> Result<Slot, CallFailure> {
        let mut store = new_store(
            &self.engine,
            self.keys.clone(),
            Arc::clone(&self.tag_budget),
            self.limits.memory_bytes,
        );
        store.set_epoch_deadline(deadline_ticks(self.limits.time));
        let fail =
            |e: wasmtime::Error, store: &Store<State>| classify(&e, store.data(), 0, self.limits);
        let bound = match &self.pre {
            Pre::Decoder(p) => p.instantiate(&mut store).map(Bound::Decoder),
            Pre::Vee(p) => p.instantiate(&mut store).map(Bound::Vee),
            Pre::Tariff(p) => p.instantiate(&mut store).map(Bound::Tariff),
        }
        .map_err(|e| fail(e, &store))?;
        self.counters.instance_created();
        Ok(Slot { store, bound })
    }

    fn take_slot(&self) -> Result<Slot, CallFailure> {
        let mut pool = self.lock_pool();
        loop {
            if let Some(slot) = pool.idle.pop() {
                return Ok(slot);
            }
            if pool.live < self.max_instances {
                pool.live += 1;
                drop(pool);
                return self.instantiate().inspect_err(|_| self.discard());
            }
            pool = self.freed.wait(pool).unwrap_or_else(|p| p.into_inner());
        }
    }

    fn give_back(&self, slot: Slot) {
        self.lock_pool().idle.push(slot);
        self.freed.notify_one();
    }

    fn discard(&self) {
        let mut pool = self.lock_pool();
        pool.live = pool.live.saturating_sub(1);
        drop(pool);
        self.freed.notify_one();
    }

    /// Runs `f` in a ready instance under the limits. `f` gives the engine's error, or a
    /// contract violation as `Ok(Err(reason))`.
    fn run<R>(
        &self,
        items: usize,
        f: impl FnOnce(&mut Slot) -> wasmtime::Result<Result<R, String>>,
    ) -> Result<R, CallError> {
        let start = Instant::now();
        let mut slot = match self.take_slot() {
            Ok(s) => s,
            Err(failure) => {
                self.counters.record(items, start.elapsed(), Some(&failure));
                return Err(self.err(failure));
            }
        };
        slot.store
            .set_epoch_deadline(deadline_ticks(self.limits.time));
        slot.store.data_mut().crypto.reset();
        let stderr_mark = slot.store.data().stderr_len();
        let out = f(&mut slot);
        slot.store.data_mut().crypto.reset();
        let elapsed = start.elapsed();
        let failure = match out {
            Ok(Ok(r)) => {
                self.counters.record(items, elapsed, None);
                if slot.store.data().stderr_worn() {
                    drop(slot);
                    self.discard();
                } else {
                    self.give_back(slot);
                }
                return Ok(r);
            }
            Ok(Err(reason)) => CallFailure::MalformedResult { reason },
            Err(e) => classify(&e, slot.store.data(), stderr_mark, self.limits),
        };
        self.counters.record(items, elapsed, Some(&failure));
        drop(slot);
        self.discard();
        Err(self.err(failure))
    }

    fn wrong_kind(&self, expected: PluginKind) -> CallError {
        self.err(CallFailure::WrongKind {
            expected: expected.to_string(),
            actual: self.manifest.kind.to_string(),
        })
    }

    /// Decodes a batch of frames in one call. The outer error is the call's (the whole batch
    /// failed in the sandbox); the inner ones are per frame.
    pub fn decode(
        &self,
        frames: &[InputFrame<'_>],
    ) -> Result<Vec<Result<Decoded, DecodeError>>, CallError> {
        if !matches!(self.pre, Pre::Decoder(_)) {
            return Err(self.wrong_kind(PluginKind::Decoder));
        }
        let input: Vec<dw::Frame> = frames
            .iter()
            .map(|f| dw::Frame {
                data: f.data.to_vec(),
                received_at: f.received_at_ms,
                meter_hint: f.meter_hint.map(str::to_owned),
            })
            .collect();
        self.run(frames.len(), |slot| {
            let Bound::Decoder(d) = &slot.bound else {
                return Ok(Err("instance of another world".into()));
            };
            let out = d.ami_plugin_decode().call_decode(&mut slot.store, &input)?;
            if out.len() != input.len() {
                return Ok(Err(format!(
                    "{} results for {} frames",
                    out.len(),
                    input.len()
                )));
            }
            let mut results = Vec::with_capacity(out.len());
            for r in out {
                results.push(match r {
                    Ok(x) => match convert::decoded(x) {
                        Ok(d) => Ok(d),
                        Err(reason) => return Ok(Err(reason)),
                    },
                    Err(e) => Err(convert::decode_error(e)),
                });
            }
            Ok(Ok(results))
        })
    }

    /// Decodes a batch and, if the batch call fails in the sandbox, retries each frame alone,
    /// so one poison frame fails only itself and every other frame still decodes.
    ///
    /// The retries have a budget: once [`RETRY_TIMEOUT_BUDGET`] frames have run out of time on
    /// their own, the rest of the batch takes the batch's error without a retry, so a plugin that
    /// hangs on everything holds a worker for a few time bounds, not one per frame. Every frame
    /// still gets a result: a decode or the error to dead-letter it with.
    pub fn decode_isolating(
        &self,
        frames: &[InputFrame<'_>],
    ) -> Vec<Result<Decoded, FrameFailure>> {
        let batch_error = match self.decode(frames) {
            Ok(results) => {
                return results
                    .into_iter()
                    .map(|r| r.map_err(FrameFailure::Decode))
                    .collect();
            }
            Err(e) if frames.len() <= 1 => return vec![Err(FrameFailure::Call(e))],
            Err(e) => e,
        };
        let mut timeouts = 0;
        frames
            .iter()
            .map(|f| {
                if timeouts >= RETRY_TIMEOUT_BUDGET {
                    return Err(FrameFailure::Call(batch_error.clone()));
                }
                match self.decode(std::slice::from_ref(f)) {
                    Ok(mut one) => one
                        .pop()
                        .unwrap_or_else(|| Err(DecodeError::Malformed("no result".into())))
                        .map_err(FrameFailure::Decode),
                    Err(e) => {
                        if matches!(e.failure, CallFailure::Timeout { .. }) {
                            timeouts += 1;
                        }
                        Err(FrameFailure::Call(e))
                    }
                }
            })
            .collect()
    }

    /// Runs a VEE rule over a series.
    pub fn check(
        &self,
        rule_id: &str,
        params: &[vw::Parameter],
        series: &vw::Series,
    ) -> Result<Result<Vec<vw::Finding>, vw::RuleError>, CallError> {
        if !matches!(self.pre, Pre::Vee(_)) {
            return Err(self.wrong_kind(PluginKind::VeeRule));
        }
        self.run(series.values.len(), |slot| {
            let Bound::Vee(v) = &slot.bound else {
                return Ok(Err("instance of another world".into()));
            };
            Ok(Ok(v.ami_plugin_validate().call_check(
                &mut slot.store,
                rule_id,
                params,
                series,
            )?))
        })
    }

    /// Computes a bill with a tariff.
    #[allow(clippy::too_many_arguments)]
    pub fn compute(
        &self,
        tariff_id: &str,
        params: &[tw::Parameter],
        calendar: &tw::Calendar,
        period_start: i64,
        period_end: i64,
        usage: &[tw::Usage],
    ) -> Result<Result<tw::Bill, tw::TariffError>, CallError> {
        if !matches!(self.pre, Pre::Tariff(_)) {
            return Err(self.wrong_kind(PluginKind::Tariff));
        }
        self.run(usage.len(), |slot| {
            let Bound::Tariff(t) = &slot.bound else {
                return Ok(Err("instance of another world".into()));
            };
            Ok(Ok(t.ami_plugin_rate().call_compute(
                &mut slot.store,
                tariff_id,
                params,
                calendar,
                period_start,
                period_end,
                usage,
            )?))
        })
    }
}

/// Names the failure of a call from the engine's error and the store's state.
fn classify(e: &wasmtime::Error, state: &State, stderr_mark: usize, limits: Limits) -> CallFailure {
    if state.cap.hit {
        return CallFailure::MemoryLimit {
            limit_bytes: state.cap.limit_bytes,
        };
    }
    if matches!(e.downcast_ref::<Trap>(), Some(Trap::Interrupt)) {
        return CallFailure::Timeout {
            limit_ms: u64::try_from(limits.time.as_millis()).unwrap_or(u64::MAX),
        };
    }
    let stderr = state.stderr_since(stderr_mark);
    if let Some(at) = stderr.find("panicked at") {
        let message: String = stderr[at..].trim().chars().take(1000).collect();
        return CallFailure::Panic { message };
    }
    let message: String = format!("{e:#}")
        .lines()
        .take(3)
        .collect::<Vec<_>>()
        .join("; ");
    CallFailure::Trap { message }
}
