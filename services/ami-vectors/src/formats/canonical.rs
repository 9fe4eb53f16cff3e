//! ami's own vectors format, for protocols no peer publishes (a vendor's own protocol, test
//! frames built from a standard's worked examples). `expected` reads:
//!
//! ```json
//! {"meter": "A0001",
//!  "readings": [{"register": "1-0:1.8.0", "value": "1234.567", "unit": "kWh", "ts": "2023-11-14T22:13:20Z"}],
//!  "attributes": [{"register": "0-0:96.1.1", "value": "A0001"}],
//!  "events": ["power-down"],
//!  "error": false}
//! ```
//!
//! Every key is optional; `"error": true` marks a frame the decoder must reject.

use ami_domain::{EventKind, Obis, Quantity, Unit};
use serde_json::Value;

use crate::{Expect, Expectations, PeerFormat, Vector, VectorError};

/// The canonical format.
pub struct Canonical;

impl PeerFormat for Canonical {
    fn expectations(&self, v: &Vector) -> Result<Expectations, VectorError> {
        let bad = |reason: String| VectorError::Expected {
            id: v.id.clone(),
            reason,
        };
        let exp = v
            .raw
            .get("expected")
            .ok_or_else(|| bad("no expected".into()))?;
        let mut out = Expectations {
            expect_error: exp.get("error").and_then(Value::as_bool).unwrap_or(false),
            ..Expectations::default()
        };
        if let Some(m) = exp.get("meter").and_then(Value::as_str) {
            out.facts.push(Expect::Meter(m.to_owned()));
        }
        let text = |item: &Value, key: &str| -> Result<String, VectorError> {
            match item.get(key) {
                Some(Value::String(s)) => Ok(s.clone()),
                Some(Value::Number(n)) => Ok(n.to_string()),
                _ => Err(bad(format!("{key} missing in {item}"))),
            }
        };
        for r in exp
            .get("readings")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let register: Obis = text(r, "register")?
                .parse()
                .map_err(|e| bad(format!("{e}")))?;
            let (unit, prefix) = Unit::parse_symbol(&text(r, "unit").unwrap_or_default())
                .map_err(|e| bad(format!("{e}")))?;
            let value = text(r, "value")?
                .parse::<Quantity>()
                .map_err(|e| bad(format!("{e}")))?
                .shifted(prefix)
                .ok_or_else(|| bad("value out of range".into()))?;
            let ts_ms = match r.get("ts").and_then(Value::as_str) {
                Some(t) => Some(
                    ami_domain::time::parse_rfc3339(t)
                        .ok_or_else(|| bad(format!("bad ts {t:?}")))?,
                ),
                None => None,
            };
            out.facts.push(Expect::Number {
                register,
                value,
                unit,
                ts_ms,
            });
        }
        for a in exp
            .get("attributes")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let register: Obis = text(a, "register")?
                .parse()
                .map_err(|e| bad(format!("{e}")))?;
            out.facts.push(Expect::Text {
                register,
                value: text(a, "value")?,
            });
        }
        for e in exp
            .get("events")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let name = e.as_str().unwrap_or_default();
            let kind = EventKind::ALL
                .into_iter()
                .find(|k| k.name() == name)
                .ok_or_else(|| bad(format!("unknown event kind {name:?}")))?;
            out.facts.push(Expect::Event(kind));
        }
        Ok(out)
    }
}
