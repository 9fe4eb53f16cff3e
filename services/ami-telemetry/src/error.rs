//! What can go wrong while setting up telemetry or bridging trace context.

/// An error from setting up telemetry or from bridging trace context.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// `RUST_LOG` (or the filter given in the config) does not parse.
    #[error("invalid log filter {filter:?}: {reason}")]
    Filter {
        /// The filter text as given.
        filter: String,
        /// Why it was refused.
        reason: String,
    },
    /// The private runtime that carries OTLP exports could not be started.
    #[error("cannot start the OTLP export runtime: {0}")]
    Runtime(#[source] std::io::Error),
    /// The OTLP span exporter could not be built (a bad endpoint, for one).
    #[error("cannot build the OTLP span exporter for endpoint {endpoint:?}: {reason}")]
    Exporter {
        /// The endpoint it was built for.
        endpoint: String,
        /// Why it failed.
        reason: String,
    },
    /// A global `tracing` subscriber is already installed in this process.
    #[error("a global tracing subscriber is already installed")]
    AlreadyInstalled,
    /// Flushing or shutting down the tracer provider failed.
    #[error("cannot flush or shut down the tracer provider: {0}")]
    Shutdown(String),
    /// The span was already started, so its parent can no longer be set.
    #[error("cannot set the parent of span: {0}")]
    SetParent(String),
}
