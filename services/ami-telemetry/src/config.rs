//! What telemetry a process sets up, read from the environment or given in code, and the
//! subscriber built from it.

use std::time::Duration;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig as _;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing::Subscriber;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::Layer as _;
use tracing_subscriber::layer::SubscriberExt as _;

use crate::{TelemetryError, TelemetryGuard};

/// The generic OTLP endpoint variable (all signals).
pub const OTEL_EXPORTER_OTLP_ENDPOINT: &str = "OTEL_EXPORTER_OTLP_ENDPOINT";
/// The OTLP endpoint variable for traces only; wins over the generic one.
pub const OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: &str = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT";
/// The service name variable; wins over the name the process gives.
pub const OTEL_SERVICE_NAME: &str = "OTEL_SERVICE_NAME";
/// The log filter variable (`tracing_subscriber::EnvFilter` syntax).
pub const RUST_LOG: &str = "RUST_LOG";
/// The log filter when `RUST_LOG` is not set.
pub const DEFAULT_LOG_FILTER: &str = "info";

/// How long the guard waits for the last spans to reach the collector on shutdown.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);

/// The subscriber [`TelemetryConfig::build`] returns: install it globally
/// ([`tracing::subscriber::set_global_default`]) or for a scope
/// ([`tracing::subscriber::with_default`]).
pub type BoxSubscriber = Box<dyn Subscriber + Send + Sync + 'static>;

/// What telemetry to set up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TelemetryConfig {
    /// The resource's `service.name`.
    pub service_name: String,
    /// The OTLP/gRPC collector to export spans to (`http://host:4317`); `None` exports nothing.
    pub otlp_endpoint: Option<String>,
    /// Which events and spans to keep (`EnvFilter` syntax, as in `RUST_LOG`).
    pub log_filter: String,
    /// Whether to write log lines to stderr.
    pub fmt: bool,
}

fn non_empty_var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

impl TelemetryConfig {
    /// Logs at `info` to stderr, no export.
    pub fn new(service_name: impl Into<String>) -> Self {
        TelemetryConfig {
            service_name: service_name.into(),
            otlp_endpoint: None,
            log_filter: DEFAULT_LOG_FILTER.to_owned(),
            fmt: true,
        }
    }

    /// From the environment: `RUST_LOG`, `OTEL_SERVICE_NAME` (else `service_name`),
    /// `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` or else `OTEL_EXPORTER_OTLP_ENDPOINT`.
    pub fn from_env(service_name: impl Into<String>) -> Self {
        TelemetryConfig {
            service_name: non_empty_var(OTEL_SERVICE_NAME).unwrap_or_else(|| service_name.into()),
            otlp_endpoint: non_empty_var(OTEL_EXPORTER_OTLP_TRACES_ENDPOINT)
                .or_else(|| non_empty_var(OTEL_EXPORTER_OTLP_ENDPOINT)),
            log_filter: non_empty_var(RUST_LOG).unwrap_or_else(|| DEFAULT_LOG_FILTER.to_owned()),
            fmt: true,
        }
    }

    /// The same, exporting spans to `endpoint`.
    #[must_use]
    pub fn with_otlp_endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.otlp_endpoint = Some(endpoint.into());
        self
    }

    /// The same, with another log filter.
    #[must_use]
    pub fn with_log_filter(mut self, filter: impl Into<String>) -> Self {
        self.log_filter = filter.into();
        self
    }

    /// The same, with or without log lines on stderr.
    #[must_use]
    pub fn with_fmt(mut self, fmt: bool) -> Self {
        self.fmt = fmt;
        self
    }

    /// The subscriber (filter, log lines, and the OpenTelemetry layer when an endpoint is set)
    /// and the guard that flushes its exports, without installing anything globally.
    ///
    /// With an endpoint this starts the exporter's own small runtime and the SDK's batch
    /// thread; it needs no runtime of the caller's. Without one it starts nothing.
    pub fn build(&self) -> Result<(BoxSubscriber, TelemetryGuard), TelemetryError> {
        let filter = EnvFilter::try_new(&self.log_filter).map_err(|e| TelemetryError::Filter {
            filter: self.log_filter.clone(),
            reason: e.to_string(),
        })?;
        // The log filter is the log lines' own: spans at `info` and above go to the exporter
        // whatever the logs show, so a quiet process (`warn`) is still traced.
        let fmt = self.fmt.then(|| {
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_filter(filter)
        });
        let (otel, guard) = match &self.otlp_endpoint {
            None => (None, TelemetryGuard::empty()),
            Some(endpoint) => {
                let (provider, runtime) = self.exporting_provider(endpoint)?;
                let tracer = provider.tracer("ami-telemetry");
                let layer = tracing_opentelemetry::layer()
                    .with_tracer(tracer)
                    .with_filter(tracing_subscriber::filter::LevelFilter::INFO);
                (Some(layer), TelemetryGuard::new(provider, runtime))
            }
        };
        let subscriber = tracing_subscriber::registry().with(fmt).with(otel);
        Ok((Box::new(subscriber), guard))
    }

    fn exporting_provider(
        &self,
        endpoint: &str,
    ) -> Result<(SdkTracerProvider, tokio::runtime::Runtime), TelemetryError> {
        // The tonic channel lives on a runtime of its own, so exports go on whatever runtime
        // (or none) the process runs, and the guard can flush from any thread.
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("ami-otlp")
            .enable_all()
            .build()
            .map_err(TelemetryError::Runtime)?;
        let exporter = {
            let _entered = runtime.enter();
            opentelemetry_otlp::SpanExporter::builder()
                .with_tonic()
                .with_endpoint(endpoint)
                .build()
                .map_err(|e| TelemetryError::Exporter {
                    endpoint: endpoint.to_owned(),
                    reason: e.to_string(),
                })?
        };
        // `Resource::builder` reads `OTEL_RESOURCE_ATTRIBUTES` and `OTEL_SERVICE_NAME`; the
        // name in the config (already `OTEL_SERVICE_NAME` when read from the environment)
        // goes on top.
        let resource = Resource::builder()
            .with_service_name(self.service_name.clone())
            .build();
        let provider = SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(resource)
            .build();
        Ok((provider, runtime))
    }

    pub(crate) fn shutdown_timeout() -> Duration {
        SHUTDOWN_TIMEOUT
    }
}
