//! Expected facts in canonical terms, and the comparison of a decoder's output with them.

use ami_domain::{DecodeError, Decoded, EventKind, Obis, Quantity, Unit};

/// One fact a peer asserts about a frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expect {
    /// A numeric reading of `register` equal to `value` in `unit`.
    Number {
        /// Register.
        register: Obis,
        /// Value, numerically compared.
        value: Quantity,
        /// Base unit.
        unit: Unit,
        /// The reading's time, where the peer gives one (ms since the epoch, UTC).
        ts_ms: Option<i64>,
    },
    /// A text attribute of `register` equal to `value`.
    Text {
        /// Register.
        register: Obis,
        /// Value.
        value: String,
    },
    /// The frame names this meter.
    Meter(String),
    /// An event of this kind is reported.
    Event(EventKind),
}

/// What a vector expects of a decoder.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Expectations {
    /// Facts that must all hold on a successful decode.
    pub facts: Vec<Expect>,
    /// The peer rejects the frame: decoding must fail (a negative case).
    pub expect_error: bool,
    /// The vector cannot be checked by this decoder, and why (kept visible, never a pass).
    pub skip: Option<String>,
}

/// The verdict on one vector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Every fact holds.
    Pass,
    /// At least one fact does not; each line says which.
    Fail(Vec<String>),
    /// Not checked, and why.
    Skip(String),
}

fn holds(fact: &Expect, got: &Decoded) -> Result<(), String> {
    match fact {
        Expect::Number {
            register,
            value,
            unit,
            ts_ms,
        } => {
            let candidates: Vec<_> = got
                .readings
                .iter()
                .filter(|r| r.register == *register)
                .collect();
            if candidates.is_empty() {
                return Err(format!(
                    "no reading for {register} (expected {value} {unit})"
                ));
            }
            let found = candidates.iter().any(|r| {
                r.value == *value && r.unit == *unit && ts_ms.is_none_or(|t| r.ts_ms == t)
            });
            if found {
                Ok(())
            } else {
                let seen: Vec<String> = candidates
                    .iter()
                    .map(|r| format!("{} {} @{}", r.value.normalized(), r.unit, r.ts_ms))
                    .collect();
                Err(format!(
                    "{register}: expected {} {unit}{}, got {}",
                    value.normalized(),
                    ts_ms.map(|t| format!(" @{t}")).unwrap_or_default(),
                    seen.join(", ")
                ))
            }
        }
        Expect::Text { register, value } => {
            if got
                .attributes
                .iter()
                .any(|(r, v)| r == register && v == value)
            {
                Ok(())
            } else {
                let seen: Vec<&str> = got
                    .attributes
                    .iter()
                    .filter(|(r, _)| r == register)
                    .map(|(_, v)| v.as_str())
                    .collect();
                Err(format!("{register}: expected text {value:?}, got {seen:?}"))
            }
        }
        Expect::Meter(m) => match &got.meter {
            Some(g) if g == m => Ok(()),
            other => Err(format!("meter: expected {m:?}, got {other:?}")),
        },
        Expect::Event(kind) => {
            if got.events.iter().any(|e| e.kind == *kind) {
                Ok(())
            } else {
                Err(format!("no {} event", kind.name()))
            }
        }
    }
}

/// Compares a decoder's result with what the vector expects.
pub fn check(expect: &Expectations, got: &Result<Decoded, DecodeError>) -> Outcome {
    if let Some(why) = &expect.skip {
        return Outcome::Skip(why.clone());
    }
    match (got, expect.expect_error) {
        (Err(_), true) => Outcome::Pass,
        (Ok(_), true) => Outcome::Fail(vec!["decoded, but the peer rejects this frame".into()]),
        (Err(e), false) => Outcome::Fail(vec![format!("decode failed: {e}")]),
        (Ok(d), false) => {
            if expect.facts.is_empty() {
                return Outcome::Fail(vec![
                    "the vector asserts nothing this decoder can check".into(),
                ]);
            }
            let errors: Vec<String> = expect
                .facts
                .iter()
                .filter_map(|f| holds(f, d).err())
                .collect();
            if errors.is_empty() {
                Outcome::Pass
            } else {
                Outcome::Fail(errors)
            }
        }
    }
}
