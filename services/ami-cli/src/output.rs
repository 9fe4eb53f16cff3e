//! Canonical readings, events and attributes as JSON lines.

use ami_domain::Decoded;
use serde_json::json;

/// The JSON lines of one decoded frame: one per reading, event and text attribute.
pub fn lines(d: &Decoded) -> Vec<String> {
    let meter = d.meter.as_deref();
    let mut out = Vec::with_capacity(d.readings.len() + d.events.len() + d.attributes.len());
    for r in &d.readings {
        out.push(
            json!({
                "meter": meter,
                "register": r.register.to_string(),
                "value": r.value.normalized().to_string(),
                "unit": r.unit.symbol(),
                "ts": ami_domain::time::rfc3339(r.ts_ms),
                "quality": r.quality.names(),
            })
            .to_string(),
        );
    }
    for e in &d.events {
        out.push(
            json!({
                "meter": meter,
                "event": e.kind.name(),
                "ts": ami_domain::time::rfc3339(e.ts_ms),
                "code": e.code,
                "source": e.source.map(|o| o.to_string()),
                "duration_s": e.duration_s,
            })
            .to_string(),
        );
    }
    for (register, text) in &d.attributes {
        out.push(
            json!({"meter": meter, "register": register.to_string(), "text": text}).to_string(),
        );
    }
    out
}
