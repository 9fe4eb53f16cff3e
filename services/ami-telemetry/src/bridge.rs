//! Trace context between `tracing` spans and the bus: a span takes its parent from the
//! `traceparent` of a consumed message, and a published message carries the current span's.
//!
//! Ids map one to one: the W3C `traceparent` and OpenTelemetry's `SpanContext` hold the same
//! trace id, span id and sampled flag.

use ami_bus::trace::TraceContext;
use opentelemetry::trace::{
    SpanContext, SpanId, TraceContextExt as _, TraceFlags, TraceId, TraceState,
};
use tracing_opentelemetry::{OpenTelemetrySpanExt as _, SetParentError};

use crate::TelemetryError;

/// The OpenTelemetry span context of a bus trace context (remote: it came over the wire).
pub fn to_span_context(tc: &TraceContext) -> SpanContext {
    let flags = if tc.sampled {
        TraceFlags::SAMPLED
    } else {
        TraceFlags::default()
    };
    SpanContext::new(
        TraceId::from_bytes(tc.trace_id),
        SpanId::from_bytes(tc.span_id),
        flags,
        true,
        TraceState::default(),
    )
}

/// The bus trace context of an OpenTelemetry span context, `None` when it is not valid.
pub fn from_span_context(sc: &SpanContext) -> Option<TraceContext> {
    sc.is_valid().then(|| TraceContext {
        trace_id: sc.trace_id().to_bytes(),
        span_id: sc.span_id().to_bytes(),
        sampled: sc.is_sampled(),
    })
}

/// Makes `parent` (from a consumed message's headers) the parent of `span`, so the span joins
/// the sender's trace. Call it right after creating the span, before entering it or asking
/// for its context (either starts it).
///
/// Without an OpenTelemetry layer (no OTLP endpoint), or for a span the filter disabled, there
/// is nothing to join and this does nothing. It fails only when the span has already started.
pub fn set_parent_from(span: &tracing::Span, parent: &TraceContext) -> Result<(), TelemetryError> {
    let cx = opentelemetry::Context::new().with_remote_span_context(to_span_context(parent));
    match span.set_parent(cx) {
        Ok(()) | Err(SetParentError::LayerNotFound | SetParentError::SpanDisabled) => Ok(()),
        Err(e @ SetParentError::AlreadyStarted) => Err(TelemetryError::SetParent(e.to_string())),
    }
}

/// The trace context of `span`, to put in a published message's headers: its trace id, its
/// own span id (the receiver's parent) and sampled flag. `None` when no OpenTelemetry layer is
/// active or the span is disabled; callers then make a child or root `TraceContext` as before.
pub fn context_of(span: &tracing::Span) -> Option<TraceContext> {
    from_span_context(span.context().span().span_context())
}

/// [`context_of`] the current span.
pub fn current_context() -> Option<TraceContext> {
    context_of(&tracing::Span::current())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::TelemetryConfig;
    use opentelemetry::trace::TracerProvider as _;
    use tracing_subscriber::layer::SubscriberExt as _;

    fn otel_subscriber() -> impl tracing::Subscriber + Send + Sync {
        // A provider with no exporter: spans get real ids, nothing leaves the process.
        let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
        tracing_subscriber::registry()
            .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")))
    }

    #[test]
    fn ids_map_both_ways() {
        let tc = TraceContext::new_root();
        assert_eq!(from_span_context(&to_span_context(&tc)), Some(tc));
        let unsampled = TraceContext {
            sampled: false,
            ..tc
        };
        assert_eq!(
            from_span_context(&to_span_context(&unsampled)),
            Some(unsampled)
        );
        assert_eq!(from_span_context(&SpanContext::empty_context()), None);
    }

    #[test]
    fn a_span_joins_the_trace_of_its_message_and_hands_on_a_new_span_id() {
        let parent =
            TraceContext::parse("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01").unwrap();
        tracing::subscriber::with_default(otel_subscriber(), || {
            let span = tracing::info_span!("decode");
            set_parent_from(&span, &parent).unwrap();
            let here = span.in_scope(current_context).unwrap();
            assert_eq!(here.trace_id, parent.trace_id);
            assert_ne!(here.span_id, parent.span_id);
            assert!(here.sampled);
            assert_eq!(context_of(&span), Some(here));

            // A child span stays in the trace with a span id of its own.
            let child = span.in_scope(|| tracing::info_span!("publish").in_scope(current_context));
            let child = child.unwrap();
            assert_eq!(child.trace_id, parent.trace_id);
            assert_ne!(child.span_id, here.span_id);

            // Too late once started.
            assert!(set_parent_from(&span, &parent).is_err());
        });
    }

    #[test]
    fn without_an_otel_layer_there_is_no_context_and_no_error() {
        let (subscriber, guard) = TelemetryConfig::new("test")
            .with_fmt(false)
            .build()
            .unwrap();
        assert!(!guard.is_exporting());
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!("decode");
            set_parent_from(&span, &TraceContext::new_root()).unwrap();
            assert_eq!(span.in_scope(current_context), None);
        });
        assert_eq!(current_context(), None);
    }
}
