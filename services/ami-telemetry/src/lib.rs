//! Telemetry for every ami process, set up in one place: log lines, OpenTelemetry traces
//! exported over OTLP/gRPC when the environment asks for them, and the bridge between
//! `tracing` spans and the W3C `traceparent` that the bus carries in message headers, so one
//! frame's trace runs from the adapter, through NATS, to the host and the MDMS.
//!
//! ```no_run
//! # fn main() -> Result<(), ami_telemetry::TelemetryError> {
//! let _telemetry = ami_telemetry::init("ami-host")?; // keep it until the process ends
//! # Ok(())
//! # }
//! ```
//!
//! # Environment
//!
//! | variable | effect |
//! | --- | --- |
//! | `RUST_LOG` | which spans and events are kept, `EnvFilter` syntax; default `info` |
//! | `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` | OTLP/gRPC collector for spans (`http://otel-collector:4317`); wins over the next |
//! | `OTEL_EXPORTER_OTLP_ENDPOINT` | OTLP/gRPC collector for all signals |
//! | `OTEL_SERVICE_NAME` | the resource's `service.name`, instead of the name the process gives |
//! | `OTEL_RESOURCE_ATTRIBUTES` | more resource attributes, `key=value,key=value` |
//! | `OTEL_EXPORTER_OTLP_HEADERS`, `_TIMEOUT`, `_COMPRESSION` (and their `_TRACES_` forms) | read by the OTLP exporter as the specification says |
//! | `OTEL_BSP_SCHEDULE_DELAY`, `OTEL_BSP_MAX_QUEUE_SIZE`, `OTEL_BSP_MAX_EXPORT_BATCH_SIZE` | the batch span processor's settings |
//!
//! With neither endpoint variable set nothing is exported, no thread or task is started and
//! nothing can fail for want of a collector: `tracing` spans stay local, and
//! [`current_context`] returns `None`, so publishers make their own `TraceContext` as before.
//! Only `http://` endpoints are supported (no TLS client is built in); an `https://` one is
//! refused at start with a clear error.
//!
//! # Bus trace context
//!
//! A consumer makes the message's `traceparent` the parent of the span that handles it with
//! [`set_parent_from`]; a publisher puts [`current_context`] (or, when that is `None`, a child
//! or root `TraceContext`) in the headers of what it sends.
//!
//! # Tests
//!
//! A `tracing` global subscriber can be set once per process: tests use
//! [`TelemetryConfig::build`] and [`tracing::subscriber::with_default`] instead of [`init`].

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

mod bridge;
#[cfg(feature = "test-collector")]
pub mod collector;
mod config;
mod error;
mod guard;

pub use bridge::{
    context_of, current_context, from_span_context, set_parent_from, to_span_context,
};
pub use config::{
    BoxSubscriber, DEFAULT_LOG_FILTER, OTEL_EXPORTER_OTLP_ENDPOINT,
    OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, OTEL_SERVICE_NAME, RUST_LOG, TelemetryConfig,
};
pub use error::TelemetryError;
pub use guard::TelemetryGuard;

/// Sets this process's telemetry up from the environment (see the crate docs) and installs it
/// as the global `tracing` subscriber, with the W3C trace context propagator as OpenTelemetry's
/// global propagator. Keep the guard alive until the process ends: dropping it sends the last
/// spans.
pub fn init(service_name: &str) -> Result<TelemetryGuard, TelemetryError> {
    init_with(&TelemetryConfig::from_env(service_name))
}

/// [`init`] with a config given in code.
pub fn init_with(config: &TelemetryConfig) -> Result<TelemetryGuard, TelemetryError> {
    let (subscriber, guard) = config.build()?;
    tracing::subscriber::set_global_default(subscriber)
        .map_err(|_| TelemetryError::AlreadyInstalled)?;
    opentelemetry::global::set_text_map_propagator(
        opentelemetry_sdk::propagation::TraceContextPropagator::new(),
    );
    Ok(guard)
}
