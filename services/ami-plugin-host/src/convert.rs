//! Conversions between the WIT types a component returns and ami's domain types.
//!
//! Converting also validates: a result that breaks the contract (an oversized identity, ...)
//! is reported as malformed, never passed on.

use ami_domain as d;

use crate::bindings::decoder::exports::ami::plugin::decode as w;
use crate::bindings::types as t;

/// The longest meter identity or attribute value a decoder may return.
pub const MAX_TEXT: usize = 4096;

/// WIT OBIS code into the domain's.
pub fn obis(o: t::Obis) -> d::Obis {
    d::Obis::new(o.a, o.b, o.c, o.d, o.e, o.f)
}

/// Domain OBIS code into WIT's.
pub fn obis_to_wit(o: d::Obis) -> t::Obis {
    t::Obis {
        a: o.a,
        b: o.b,
        c: o.c,
        d: o.d,
        e: o.e,
        f: o.f,
    }
}

macro_rules! unit_map {
    ($($v:ident),* $(,)?) => {
        /// WIT unit into the domain's.
        pub fn unit(u: t::Unit) -> d::Unit {
            match u { $(t::Unit::$v => d::Unit::$v,)* }
        }
        /// Domain unit into WIT's.
        pub fn unit_to_wit(u: d::Unit) -> t::Unit {
            match u { $(d::Unit::$v => t::Unit::$v,)* }
        }
    };
}

ami_domain::with_unit_variants!(unit_map);

/// WIT quality flags into the domain's bit set (the bit order is the same by construction).
pub fn quality(q: t::Quality) -> d::Quality {
    let pairs = [
        (t::Quality::SUSPECT, d::Quality::SUSPECT),
        (t::Quality::ESTIMATED, d::Quality::ESTIMATED),
        (t::Quality::EDITED, d::Quality::EDITED),
        (t::Quality::CLOCK_INVALID, d::Quality::CLOCK_INVALID),
        (t::Quality::OVERFLOW, d::Quality::OVERFLOW),
        (
            t::Quality::TIME_FROM_RECEIVER,
            d::Quality::TIME_FROM_RECEIVER,
        ),
        (t::Quality::POWER_OUTAGE, d::Quality::POWER_OUTAGE),
        (t::Quality::CLOCK_ADJUSTED, d::Quality::CLOCK_ADJUSTED),
    ];
    pairs
        .into_iter()
        .filter(|(w, _)| q.contains(*w))
        .fold(d::Quality::VALID, |acc, (_, dq)| acc.with(dq))
}

/// Domain quality bits into WIT's flags (unknown bits are dropped).
pub fn quality_to_wit(q: d::Quality) -> t::Quality {
    let pairs = [
        (d::Quality::SUSPECT, t::Quality::SUSPECT),
        (d::Quality::ESTIMATED, t::Quality::ESTIMATED),
        (d::Quality::EDITED, t::Quality::EDITED),
        (d::Quality::CLOCK_INVALID, t::Quality::CLOCK_INVALID),
        (d::Quality::OVERFLOW, t::Quality::OVERFLOW),
        (
            d::Quality::TIME_FROM_RECEIVER,
            t::Quality::TIME_FROM_RECEIVER,
        ),
        (d::Quality::POWER_OUTAGE, t::Quality::POWER_OUTAGE),
        (d::Quality::CLOCK_ADJUSTED, t::Quality::CLOCK_ADJUSTED),
    ];
    pairs
        .into_iter()
        .filter(|(dq, _)| q.contains(*dq))
        .fold(t::Quality::empty(), |acc, (_, w)| acc | w)
}

macro_rules! event_kind_map {
    ($($v:ident),* $(,)?) => {
        /// WIT event kind into the domain's.
        pub fn event_kind(k: t::EventKind) -> d::EventKind {
            match k { $(t::EventKind::$v => d::EventKind::$v,)* }
        }
    };
}

ami_domain::with_event_kind_variants!(event_kind_map);

fn text(s: String, what: &str) -> Result<String, String> {
    if s.len() > MAX_TEXT {
        Err(format!("{what} of {} bytes exceeds {MAX_TEXT}", s.len()))
    } else {
        Ok(s)
    }
}

/// A decoded frame from WIT into the domain, validating sizes.
pub fn decoded(x: w::Decoded) -> Result<d::Decoded, String> {
    Ok(d::Decoded {
        meter: x.meter.map(|m| text(m, "meter identity")).transpose()?,
        readings: x
            .readings
            .into_iter()
            .map(|r| d::Reading {
                register: obis(r.register),
                value: d::Quantity::new(r.value.mantissa, r.value.scale),
                unit: unit(r.unit),
                ts_ms: r.ts,
                quality: quality(r.quality),
            })
            .collect(),
        events: x
            .events
            .into_iter()
            .map(|e| d::Event {
                kind: event_kind(e.kind),
                ts_ms: e.ts,
                code: e.code,
                source: e.source.map(obis),
                duration_s: e.duration_s,
            })
            .collect(),
        attributes: x
            .attributes
            .into_iter()
            .map(|a| Ok((obis(a.register), text(a.value, "attribute")?)))
            .collect::<Result<_, String>>()?,
    })
}

/// A decode error from WIT into the domain's.
pub fn decode_error(e: w::DecodeError) -> d::DecodeError {
    let cut = |s: String| {
        if s.len() > MAX_TEXT {
            s.chars().take(MAX_TEXT / 4).collect()
        } else {
            s
        }
    };
    match e {
        w::DecodeError::Truncated(s) => d::DecodeError::Truncated(cut(s)),
        w::DecodeError::Checksum(s) => d::DecodeError::Checksum(cut(s)),
        w::DecodeError::Malformed(s) => d::DecodeError::Malformed(cut(s)),
        w::DecodeError::Unsupported(s) => d::DecodeError::Unsupported(cut(s)),
        w::DecodeError::Authentication(s) => d::DecodeError::Authentication(cut(s)),
        w::DecodeError::MissingKey(s) => d::DecodeError::MissingKey(cut(s)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_unit_maps_both_ways() {
        for u in d::Unit::ALL {
            assert_eq!(unit(unit_to_wit(*u)), *u);
        }
    }

    #[test]
    fn quality_bits_keep_their_meaning() {
        let q = quality(t::Quality::ESTIMATED | t::Quality::TIME_FROM_RECEIVER);
        assert!(q.contains(d::Quality::ESTIMATED));
        assert!(q.contains(d::Quality::TIME_FROM_RECEIVER));
        assert!(!q.contains(d::Quality::SUSPECT));
    }
}
