//! Spans reach a real OTLP/gRPC collector: an in-test `TraceService` server on loopback
//! receives what the exporter sends, and the test checks the trace id, the parent taken from a
//! bus `TraceContext`, the span name and the resource's `service.name`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::time::Duration;

use ami_bus::trace::TraceContext;
use ami_telemetry::collector::TestCollector;
use ami_telemetry::{TelemetryConfig, current_context, set_parent_from};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn a_span_with_a_bus_parent_reaches_the_collector() {
    let rt = runtime();
    let mut collector = rt.block_on(TestCollector::start()).unwrap();
    let parent =
        TraceContext::parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01").unwrap();

    let config = TelemetryConfig::new("ami-telemetry-test")
        .with_fmt(false)
        .with_otlp_endpoint(collector.endpoint());
    let (subscriber, guard) = config.build().unwrap();
    assert!(guard.is_exporting());

    // Emitted on this thread, with no runtime of its own: the exporter carries its own.
    let sent = tracing::subscriber::with_default(subscriber, || {
        let span = tracing::info_span!("decode_frame", protocol = "dlms");
        set_parent_from(&span, &parent).unwrap();
        span.in_scope(current_context).unwrap()
    });
    assert_eq!(sent.trace_id, parent.trace_id);
    assert_ne!(sent.span_id, parent.span_id);

    guard.shutdown().unwrap();

    let spans = collector.drain();
    assert_eq!(spans.len(), 1, "{spans:?}");
    let span = &spans[0];
    assert_eq!(span.name, "decode_frame");
    assert_eq!(span.trace_id, parent.trace_id);
    assert_eq!(span.parent_span_id, parent.span_id);
    assert_eq!(span.span_id, sent.span_id);
    assert_eq!(span.service_name.as_deref(), Some("ami-telemetry-test"));
}

#[test]
fn without_an_endpoint_nothing_is_exported() {
    let rt = runtime();
    let mut collector = rt.block_on(TestCollector::start()).unwrap();

    let (subscriber, guard) = TelemetryConfig::new("ami-telemetry-test")
        .with_fmt(false)
        .build()
        .unwrap();
    assert!(!guard.is_exporting());
    tracing::subscriber::with_default(subscriber, || {
        let span = tracing::info_span!("decode_frame");
        set_parent_from(&span, &TraceContext::new_root()).unwrap();
        assert_eq!(span.in_scope(current_context), None);
    });
    guard.shutdown().unwrap();

    std::thread::sleep(Duration::from_millis(200));
    assert!(collector.drain().is_empty());
}
