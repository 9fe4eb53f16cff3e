//! Per-plugin counters, cheap to update on every call and read by the metrics exporters.

use serde::Serialize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::error::CallFailure;

/// Live counters of one plugin version.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    calls: AtomicU64,
    items: AtomicU64,
    errors: AtomicU64,
    timeouts: AtomicU64,
    memory_limits: AtomicU64,
    panics: AtomicU64,
    busy_ns: AtomicU64,
    instances_created: AtomicU64,
}

/// A snapshot of a plugin's counters.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct PluginStats {
    /// Calls made.
    pub calls: u64,
    /// Frames, series or periods passed in those calls.
    pub items: u64,
    /// Calls that failed (any [`CallFailure`]).
    pub errors: u64,
    /// Of those, time bounds hit.
    pub timeouts: u64,
    /// Of those, memory caps hit.
    pub memory_limits: u64,
    /// Of those, panics.
    pub panics: u64,
    /// Time spent inside the plugin, nanoseconds.
    pub busy_ns: u64,
    /// Instances made (one per store; reused across calls, replaced after a failure).
    pub instances_created: u64,
}

impl Counters {
    pub(crate) fn record(&self, items: usize, elapsed: Duration, failure: Option<&CallFailure>) {
        self.calls.fetch_add(1, Ordering::Relaxed);
        self.items.fetch_add(items as u64, Ordering::Relaxed);
        self.busy_ns.fetch_add(
            u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
        if let Some(f) = failure {
            self.errors.fetch_add(1, Ordering::Relaxed);
            let specific = match f {
                CallFailure::Timeout { .. } => Some(&self.timeouts),
                CallFailure::MemoryLimit { .. } => Some(&self.memory_limits),
                CallFailure::Panic { .. } => Some(&self.panics),
                _ => None,
            };
            if let Some(c) = specific {
                c.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    pub(crate) fn instance_created(&self) {
        self.instances_created.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> PluginStats {
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        PluginStats {
            calls: g(&self.calls),
            items: g(&self.items),
            errors: g(&self.errors),
            timeouts: g(&self.timeouts),
            memory_limits: g(&self.memory_limits),
            panics: g(&self.panics),
            busy_ns: g(&self.busy_ns),
            instances_created: g(&self.instances_created),
        }
    }
}
