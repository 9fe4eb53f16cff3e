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

/// A counter family: name, help text, and how to read its value from the counters.
type Family = (&'static str, &'static str, fn(&PluginStats) -> String);

/// The counters of `plugins` in the Prometheus / OpenMetrics text format, one series per
/// plugin version (labels `plugin`, `version`), for a `/metrics` endpoint or a collector.
pub fn render_openmetrics<'a>(
    plugins: impl IntoIterator<Item = (&'a str, &'a str, PluginStats)>,
) -> String {
    let rows: Vec<(&str, &str, PluginStats)> = plugins.into_iter().collect();
    let families: [Family; 8] = [
        ("ami_plugin_calls", "calls into the plugin", |s| {
            s.calls.to_string()
        }),
        (
            "ami_plugin_items",
            "frames, series or periods passed in",
            |s| s.items.to_string(),
        ),
        (
            "ami_plugin_errors",
            "calls that failed in the sandbox",
            |s| s.errors.to_string(),
        ),
        (
            "ami_plugin_timeouts",
            "calls stopped at the time bound",
            |s| s.timeouts.to_string(),
        ),
        (
            "ami_plugin_memory_limits",
            "calls stopped at the memory cap",
            |s| s.memory_limits.to_string(),
        ),
        (
            "ami_plugin_panics",
            "calls in which the plugin panicked",
            |s| s.panics.to_string(),
        ),
        (
            "ami_plugin_busy_seconds",
            "time spent inside the plugin",
            |s| format!("{:.9}", s.busy_ns as f64 / 1e9),
        ),
        ("ami_plugin_instances_created", "instances made", |s| {
            s.instances_created.to_string()
        }),
    ];
    let escape = |v: &str| {
        v.replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace('\n', "\\n")
    };
    let mut out = String::new();
    for (name, help, value) in families {
        out.push_str(&format!("# TYPE {name} counter\n# HELP {name} {help}\n"));
        for (plugin, version, stats) in &rows {
            out.push_str(&format!(
                "{name}_total{{plugin=\"{}\",version=\"{}\"}} {}\n",
                escape(plugin),
                escape(version),
                value(stats)
            ));
        }
    }
    out.push_str("# EOF\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_one_series_per_plugin_version() {
        let c = Counters::default();
        c.record(3, Duration::from_millis(1500), None);
        c.record(
            1,
            Duration::from_millis(10),
            Some(&CallFailure::Timeout { limit_ms: 10 }),
        );
        let text = render_openmetrics([("dsmr", "0.1.0", c.snapshot())]);
        assert!(
            text.contains("ami_plugin_calls_total{plugin=\"dsmr\",version=\"0.1.0\"} 2\n"),
            "{text}"
        );
        assert!(text.contains("ami_plugin_timeouts_total{plugin=\"dsmr\",version=\"0.1.0\"} 1\n"));
        assert!(text.contains(
            "ami_plugin_busy_seconds_total{plugin=\"dsmr\",version=\"0.1.0\"} 1.510000000\n"
        ));
        assert!(text.ends_with("# EOF\n"));
    }
}
