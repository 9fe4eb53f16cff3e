//! The guard `init` hands back: while it lives spans are exported; dropping it sends the last
//! ones and stops the exporter.

use opentelemetry_sdk::trace::SdkTracerProvider;

use crate::TelemetryError;
use crate::config::TelemetryConfig;

/// Flushes and shuts the tracer provider down when dropped (or on [`TelemetryGuard::shutdown`]).
/// Keep it alive for as long as the process should export, typically in `main`.
#[must_use = "dropping the guard stops span export"]
#[derive(Debug, Default)]
pub struct TelemetryGuard {
    provider: Option<SdkTracerProvider>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl TelemetryGuard {
    pub(crate) fn empty() -> Self {
        TelemetryGuard::default()
    }

    pub(crate) fn new(provider: SdkTracerProvider, runtime: tokio::runtime::Runtime) -> Self {
        TelemetryGuard {
            provider: Some(provider),
            runtime: Some(runtime),
        }
    }

    /// Whether spans are exported (an OTLP endpoint was configured).
    pub fn is_exporting(&self) -> bool {
        self.provider.is_some()
    }

    /// Sends the spans ended so far, without stopping export.
    pub fn flush(&self) -> Result<(), TelemetryError> {
        match &self.provider {
            Some(p) => p
                .force_flush()
                .map_err(|e| TelemetryError::Shutdown(e.to_string())),
            None => Ok(()),
        }
    }

    /// Sends the spans ended so far and stops export, saying whether that worked.
    /// Blocks the calling thread up to a few seconds while the last batch goes out.
    pub fn shutdown(mut self) -> Result<(), TelemetryError> {
        self.stop()
    }

    fn stop(&mut self) -> Result<(), TelemetryError> {
        let result = match self.provider.take() {
            Some(p) => p
                .shutdown_with_timeout(TelemetryConfig::shutdown_timeout())
                .map_err(|e| TelemetryError::Shutdown(e.to_string())),
            None => Ok(()),
        };
        // Dropping a runtime from async code panics; this form never blocks.
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
        result
    }
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Err(e) = self.stop() {
            eprintln!("ami-telemetry: {e}");
        }
    }
}
