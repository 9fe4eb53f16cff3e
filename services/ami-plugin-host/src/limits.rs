//! Per-plugin limits: a memory cap enforced by a resource limiter, and a time bound enforced by
//! epoch interruption.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;
use wasmtime::{Engine, ResourceLimiter};

use crate::manifest::RequestedLimits;

/// The effective limits of a plugin: what it asked for, bounded by the operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Linear memory cap per instance, bytes.
    pub memory_bytes: u64,
    /// Time bound per call.
    pub time: Duration,
}

impl Limits {
    /// The plugin's request, each part capped by the operator's maximum.
    pub fn bounded(requested: RequestedLimits, max_memory_mb: u32, max_time_ms: u32) -> Self {
        Self {
            memory_bytes: u64::from(requested.memory_mb.min(max_memory_mb)) << 20,
            time: Duration::from_millis(u64::from(requested.time_ms.min(max_time_ms))),
        }
    }
}

/// Core instances, memories and tables one plugin store may create (a Rust component has a
/// handful of each).
const MAX_CORE_INSTANCES: usize = 64;
const MAX_MEMORIES: usize = 8;
const MAX_TABLES: usize = 64;

/// Caps the memories and tables of one store; records when the cap was hit.
pub(crate) struct MemoryCap {
    pub(crate) limit_bytes: u64,
    /// Bytes of linear memory the store holds now, over all its memories.
    pub(crate) used: u64,
    pub(crate) hit: bool,
}

impl ResourceLimiter for MemoryCap {
    /// The cap is on the store's total: every linear memory of every core instance counts.
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let total = self
            .used
            .saturating_sub(current as u64)
            .saturating_add(desired as u64);
        if total > self.limit_bytes {
            self.hit = true;
            return Err(wasmtime::Error::msg(format!(
                "memory cap of {} bytes reached (the store would hold {total})",
                self.limit_bytes
            )));
        }
        self.used = total;
        Ok(true)
    }

    fn instances(&self) -> usize {
        MAX_CORE_INSTANCES
    }

    fn memories(&self) -> usize {
        MAX_MEMORIES
    }

    fn tables(&self) -> usize {
        MAX_TABLES
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        // Tables hold function references; 100k entries is far beyond any decoder's need.
        if desired > 100_000 {
            self.hit = true;
            return Err(wasmtime::Error::msg(format!(
                "table cap reached (wanted {desired} entries)"
            )));
        }
        Ok(true)
    }
}

/// The epoch clock every store's deadline counts in.
pub const EPOCH_TICK: Duration = Duration::from_millis(1);

/// A thread that advances the engine's epoch every [`EPOCH_TICK`]; stopped on drop.
pub(crate) struct EpochTicker {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl EpochTicker {
    pub(crate) fn start(engine: &Engine) -> std::io::Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let engine = engine.clone();
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("ami-epoch".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    engine.increment_epoch();
                }
            })?;
        Ok(Self {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Epoch ticks for a time bound (at least one, plus one for the tick in progress).
pub(crate) fn deadline_ticks(time: Duration) -> u64 {
    let tick = EPOCH_TICK.as_micros().max(1);
    u64::try_from(time.as_micros().div_ceil(tick)).unwrap_or(u64::MAX / 2) + 1
}
