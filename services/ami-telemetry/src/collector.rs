//! An OTLP/gRPC trace collector for tests (feature `test-collector`): a `TraceService` server on
//! 127.0.0.1 that keeps what exporters send, so a test can check which spans arrived, in which
//! trace, under which parent, from which service.

use std::net::SocketAddr;

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use tokio::sync::mpsc;

/// One received span, flattened.
#[derive(Clone, Debug)]
pub struct ReceivedSpan {
    /// The resource's `service.name`.
    pub service_name: Option<String>,
    /// The span's name.
    pub name: String,
    /// Its trace (16 bytes).
    pub trace_id: Vec<u8>,
    /// Its id (8 bytes).
    pub span_id: Vec<u8>,
    /// Its parent's id (empty for a root).
    pub parent_span_id: Vec<u8>,
}

struct Service(mpsc::UnboundedSender<ExportTraceServiceRequest>);

#[tonic::async_trait]
impl TraceService for Service {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let _ = self.0.send(request.into_inner());
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

/// A running collector.
pub struct TestCollector {
    addr: SocketAddr,
    rx: mpsc::UnboundedReceiver<ExportTraceServiceRequest>,
}

impl TestCollector {
    /// Starts one on a free port of 127.0.0.1, served by the current tokio runtime.
    pub async fn start() -> std::io::Result<Self> {
        let (tx, rx) = mpsc::unbounded_channel();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(TraceServiceServer::new(Service(tx)))
                .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
        );
        Ok(TestCollector { addr, rx })
    }

    /// Its OTLP endpoint, `http://127.0.0.1:<port>`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The spans received since the last call.
    pub fn drain(&mut self) -> Vec<ReceivedSpan> {
        let mut out = Vec::new();
        while let Ok(req) = self.rx.try_recv() {
            for rs in req.resource_spans {
                let service_name = rs.resource.as_ref().and_then(|r| {
                    r.attributes.iter().find_map(|kv| {
                        match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
                            Some(Value::StringValue(s)) if kv.key == "service.name" => {
                                Some(s.clone())
                            }
                            _ => None,
                        }
                    })
                });
                for ss in rs.scope_spans {
                    for s in ss.spans {
                        out.push(ReceivedSpan {
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
}
