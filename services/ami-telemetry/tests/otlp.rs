//! Spans reach a real OTLP/gRPC collector: an in-test `TraceService` server on loopback
//! receives what the exporter sends, and the test checks the trace id, the parent taken from a
//! bus `TraceContext`, the span name and the resource's `service.name`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::net::SocketAddr;
use std::time::Duration;

use ami_bus::trace::TraceContext;
use ami_telemetry::{TelemetryConfig, current_context, set_parent_from};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use tokio::sync::mpsc;

struct Collector(mpsc::UnboundedSender<ExportTraceServiceRequest>);

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let _ = self.0.send(request.into_inner());
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

/// A collector on 127.0.0.1 (any free port), run by `rt`; what it receives comes out of the
/// receiver.
fn start_collector(
    rt: &tokio::runtime::Runtime,
) -> (
    SocketAddr,
    mpsc::UnboundedReceiver<ExportTraceServiceRequest>,
) {
    let (tx, rx) = mpsc::unbounded_channel();
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    rt.spawn(
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(Collector(tx)))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    (addr, rx)
}

/// A flat view of one received span.
#[derive(Debug)]
struct Received {
    service_name: Option<String>,
    name: String,
    trace_id: Vec<u8>,
    span_id: Vec<u8>,
    parent_span_id: Vec<u8>,
}

fn received(rx: &mut mpsc::UnboundedReceiver<ExportTraceServiceRequest>) -> Vec<Received> {
    let mut out = Vec::new();
    while let Ok(req) = rx.try_recv() {
        for rs in req.resource_spans {
            let service_name = rs.resource.as_ref().and_then(|r| {
                r.attributes.iter().find_map(|kv| {
                    match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
                        Some(Value::StringValue(s)) if kv.key == "service.name" => Some(s.clone()),
                        _ => None,
                    }
                })
            });
            for ss in rs.scope_spans {
                for s in ss.spans {
                    out.push(Received {
                        service_name: service_name.clone(),
                        name: s.name,
                        trace_id: s.trace_id,
                        span_id: s.span_id,
                        parent_span_id: s.parent_span_id,
                    });
                }
            }
        }
    }
    out
}

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
    let (addr, mut rx) = start_collector(&rt);
    let parent =
        TraceContext::parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01").unwrap();

    let config = TelemetryConfig::new("ami-telemetry-test")
        .with_fmt(false)
        .with_otlp_endpoint(format!("http://{addr}"));
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

    let spans = received(&mut rx);
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
    let (_addr, mut rx) = start_collector(&rt);

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
    assert!(received(&mut rx).is_empty());
}
