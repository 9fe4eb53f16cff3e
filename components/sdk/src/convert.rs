//! Domain types into the WIT types a component returns (and back, for quantities and codes).

use ami_domain as d;

use crate::decoder::exports::ami::plugin::decode as w;
use crate::types as t;

/// Domain OBIS code into WIT's.
pub fn obis(o: d::Obis) -> t::Obis {
    t::Obis {
        a: o.a,
        b: o.b,
        c: o.c,
        d: o.d,
        e: o.e,
        f: o.f,
    }
}

/// WIT OBIS code into the domain's.
pub fn obis_from(o: t::Obis) -> d::Obis {
    d::Obis::new(o.a, o.b, o.c, o.d, o.e, o.f)
}

/// Domain quantity into WIT's.
pub fn quantity(q: d::Quantity) -> t::Quantity {
    t::Quantity {
        mantissa: q.mantissa,
        scale: q.scale,
    }
}

/// WIT quantity into the domain's.
pub fn quantity_from(q: t::Quantity) -> d::Quantity {
    d::Quantity::new(q.mantissa, q.scale)
}

macro_rules! unit_map {
    ($($v:ident),* $(,)?) => {
        /// Domain unit into WIT's.
        pub fn unit(u: d::Unit) -> t::Unit {
            match u { $(d::Unit::$v => t::Unit::$v,)* }
        }
    };
}

ami_domain::with_unit_variants!(unit_map);

/// Domain quality bits into WIT flags.
pub fn quality(q: d::Quality) -> t::Quality {
    t::Quality::from_bits_truncate(u8::try_from(q.0 & 0xFF).unwrap_or(0))
}

macro_rules! event_kind_map {
    ($($v:ident),* $(,)?) => {
        /// Domain event kind into WIT's.
        pub fn event_kind(k: d::EventKind) -> t::EventKind {
            match k { $(d::EventKind::$v => t::EventKind::$v,)* }
        }
    };
}

ami_domain::with_event_kind_variants!(event_kind_map);

/// A decoded frame into the WIT record.
pub fn decoded(x: d::Decoded) -> w::Decoded {
    w::Decoded {
        meter: x.meter,
        readings: x
            .readings
            .into_iter()
            .map(|r| t::Reading {
                register: obis(r.register),
                value: quantity(r.value),
                unit: unit(r.unit),
                ts: r.ts_ms,
                quality: quality(r.quality),
            })
            .collect(),
        events: x
            .events
            .into_iter()
            .map(|e| t::Event {
                kind: event_kind(e.kind),
                ts: e.ts_ms,
                code: e.code,
                source: e.source.map(obis),
                duration_s: e.duration_s,
            })
            .collect(),
        attributes: x
            .attributes
            .into_iter()
            .map(|(register, value)| w::Attribute {
                register: obis(register),
                value,
            })
            .collect(),
    }
}

/// A decode error into the WIT variant.
pub fn decode_error(e: d::DecodeError) -> w::DecodeError {
    match e {
        d::DecodeError::Truncated(s) => w::DecodeError::Truncated(s),
        d::DecodeError::Checksum(s) => w::DecodeError::Checksum(s),
        d::DecodeError::Malformed(s) => w::DecodeError::Malformed(s),
        d::DecodeError::Unsupported(s) => w::DecodeError::Unsupported(s),
        d::DecodeError::Authentication(s) => w::DecodeError::Authentication(s),
        d::DecodeError::MissingKey(s) => w::DecodeError::MissingKey(s),
    }
}
