//! From data objects to readings, events and attributes (see the crate documentation for the
//! rules).

use ami_domain::{DecodeError, Decoded, Event, EventKind, Obis, Quality, Quantity, Reading, Unit};

use crate::cosem::{self, Kind};
use crate::object::{DataObject, Groups, Objects};
use crate::telegram::Telegram;
use crate::{time, value};

/// When a value was measured.
#[derive(Clone, Copy)]
enum Stamp {
    /// At the telegram's time (the receiver's when the telegram has none).
    Telegram,
    /// At its own time.
    At(i64),
    /// It has its own time, but that is not a valid date: the telegram's time, flagged.
    InvalidClock,
}

impl Stamp {
    fn of(text: &[u8]) -> Self {
        time::timestamp_ms(text).map_or(Stamp::InvalidClock, Stamp::At)
    }

    fn later_by(self, ms: i64) -> Self {
        match self {
            Stamp::At(t) => t.checked_add(ms).map_or(Stamp::InvalidClock, Stamp::At),
            other => other,
        }
    }
}

/// "Time from the telegram" while decoding; resolved in [`Builder::finish`].
const PENDING: Quality = Quality::TIME_FROM_RECEIVER;

struct Builder {
    out: Decoded,
    received_at_ms: i64,
    /// The telegram time: not seen yet, seen but invalid, or the instant.
    clock: Option<Option<i64>>,
    meter_rank: u8,
}

/// Reads the data objects of a framed telegram.
pub(crate) fn interpret(
    telegram: &Telegram<'_>,
    received_at_ms: i64,
) -> Result<Decoded, DecodeError> {
    let mut b = Builder {
        out: Decoded::default(),
        received_at_ms,
        clock: None,
        meter_rank: u8::MAX,
    };
    b.out.readings.reserve(telegram.lines);
    b.out.attributes.reserve(telegram.lines.min(16));
    for object in Objects::new(telegram.body, 2) {
        b.object(&object?);
    }
    Ok(b.finish())
}

/// Text as sent; bytes that are not UTF-8 become U+FFFD.
fn text(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(t) => t.to_owned(),
        Err(_) => String::from_utf8_lossy(bytes).into_owned(),
    }
}

fn is_obis(text: &[u8]) -> bool {
    text.contains(&b':') && std::str::from_utf8(text).is_ok_and(|t| t.parse::<Obis>().is_ok())
}

/// A quantity as whole units, saturating, fractions dropped.
fn whole(q: Quantity) -> i64 {
    if q.scale >= 0 {
        let factor = 10i64.checked_pow(u32::from(q.scale.unsigned_abs()));
        factor
            .and_then(|f| q.mantissa.checked_mul(f))
            .unwrap_or(if q.mantissa < 0 { i64::MIN } else { i64::MAX })
    } else {
        10i64
            .checked_pow(u32::from(q.scale.unsigned_abs()))
            .map_or(0, |f| q.mantissa / f)
    }
}

fn seconds(q: Quantity, unit: Unit) -> u32 {
    let factor = match unit {
        Unit::Minute => 60,
        Unit::Hour => 3600,
        Unit::Day => 86_400,
        _ => 1,
    };
    let s = whole(q).saturating_mul(factor);
    u32::try_from(s.max(0)).unwrap_or(u32::MAX)
}

impl Builder {
    fn object(&mut self, o: &DataObject<'_>) {
        match cosem::kind(o.obis) {
            Kind::Clock => {
                if self.clock.is_none() {
                    self.clock = Some(o.groups().next().and_then(time::timestamp_ms));
                }
                self.attribute(o);
            }
            Kind::Text => self.attribute(o),
            Kind::Code => {
                self.attribute(o);
                if let Some((v, unit)) = o.single().and_then(value::measured) {
                    self.reading(o.obis, v, unit, Stamp::Telegram);
                }
            }
            Kind::Profile => self.profile(o),
            Kind::LegacyMbus => self.legacy_mbus(o),
            Kind::Value => self.value(o),
        }
    }

    fn reading(&mut self, register: Obis, value: Quantity, unit: Unit, stamp: Stamp) {
        let (ts_ms, quality) = match stamp {
            Stamp::At(t) => (t, Quality::VALID),
            Stamp::Telegram => (self.received_at_ms, PENDING),
            Stamp::InvalidClock => (self.received_at_ms, PENDING.with(Quality::CLOCK_INVALID)),
        };
        self.out.readings.push(Reading {
            register,
            value,
            unit,
            ts_ms,
            quality,
        });
    }

    /// The value as text: the group's content exactly, or `(a)(b)...` for several groups.
    fn attribute(&mut self, o: &DataObject<'_>) {
        let value = match o.single() {
            Some(g) => text(g),
            None => {
                let mut joined = String::with_capacity(o.value.len());
                for g in o.groups() {
                    joined.push('(');
                    joined.push_str(&text(g));
                    joined.push(')');
                }
                joined
            }
        };
        if let Some(rank) = cosem::meter_id_rank(o.obis)
            && rank < self.meter_rank
            && !value.is_empty()
        {
            self.meter_rank = rank;
            self.out.meter = Some(value.clone());
        }
        self.out.attributes.push((o.obis, value));
    }

    /// `(number*unit)` or `(time)(number*unit)`; anything else is an attribute.
    fn value(&mut self, o: &DataObject<'_>) {
        let mut groups = o.groups();
        let reading = match (groups.next(), groups.next(), groups.next()) {
            (Some(v), None, _) => value::measured(v).map(|(v, u)| (v, u, Stamp::Telegram)),
            (Some(ts), Some(v), None) if time::is_timestamp_shaped(ts) => {
                value::measured(v).map(|(v, u)| (v, u, Stamp::of(ts)))
            }
            _ => None,
        };
        match reading {
            Some((v, unit, stamp)) => self.reading(o.obis, v, unit, stamp),
            None => self.attribute(o),
        }
    }

    /// `(count)(obis)...` then `count` entries of `(time)` + one group per captured object.
    fn profile(&mut self, o: &DataObject<'_>) {
        let mut groups = o.groups();
        let Some(count) = groups.next().and_then(value::integer) else {
            return self.value(o);
        };
        let mut captured = 0usize;
        let mut peek = groups.clone();
        while peek.next().is_some_and(is_obis) {
            captured += 1;
            groups = peek.clone();
        }
        if captured == 0 {
            return self.value(o);
        }
        let failure_log = (o.obis.c, o.obis.d) == (99, 97);
        for _ in 0..count {
            let Some(stamp) = groups.next() else { break };
            let entry = groups.clone();
            if groups.by_ref().take(captured).count() < captured {
                break;
            }
            if failure_log {
                self.failure(o.obis, stamp, entry.take(captured).last());
            } else {
                self.profile_entry(o.obis, Stamp::of(stamp), entry.take(captured));
            }
        }
    }

    /// A power failure log entry: `(end time)(duration*s)`.
    fn failure(&mut self, source: Obis, end: &[u8], duration: Option<&[u8]>) {
        let Some(ts_ms) = time::timestamp_ms(end) else {
            return;
        };
        let duration_s = duration
            .and_then(value::measured)
            .map_or(0, |(v, unit)| seconds(v, unit));
        self.out.events.push(Event {
            kind: EventKind::PowerDown,
            ts_ms,
            code: 0,
            source: Some(source),
            duration_s,
        });
    }

    /// A billing-period entry: each numeric group is a reading at the period's time stamp.
    fn profile_entry(&mut self, register: Obis, stamp: Stamp, values: std::iter::Take<Groups<'_>>) {
        for g in values {
            if time::is_timestamp_shaped(g) {
                continue;
            }
            if let Some((v, unit)) = value::measured(g) {
                self.reading(register, v, unit, stamp);
            }
        }
    }

    /// DSMR 2.2/3.0: `(time)(status)(period min)(n)(obis)(unit)` then `n` values, one period
    /// apart from the time stamp on.
    fn legacy_mbus(&mut self, o: &DataObject<'_>) {
        let mut g = o.groups();
        let (Some(ts), Some(_status), Some(period), Some(n), Some(_obis), Some(unit)) =
            (g.next(), g.next(), g.next(), g.next(), g.next(), g.next())
        else {
            return self.value(o);
        };
        let Some((unit, prefix)) = std::str::from_utf8(unit)
            .ok()
            .and_then(|u| Unit::parse_symbol(u).ok())
        else {
            return self.attribute(o);
        };
        let n = value::integer(n).map_or(1, |n| usize::try_from(n).unwrap_or(usize::MAX));
        let read = |v: &[u8]| match value::measured(v)? {
            (v, Unit::Count) => Some((v.shifted(prefix)?, unit)),
            own => Some(own),
        };
        if n == 0 || g.clone().take(n).count() == 0 || !g.clone().take(n).all(|v| read(v).is_some())
        {
            return self.attribute(o);
        }
        let period_ms = value::integer(period)
            .and_then(|p| i64::try_from(p).ok())
            .map_or(0, |p| p.saturating_mul(60_000));
        let stamp = Stamp::of(ts);
        let mut offset = 0i64;
        for v in g.take(n) {
            if let Some((v, unit)) = read(v) {
                self.reading(o.obis, v, unit, stamp.later_by(offset));
            }
            offset = offset.saturating_add(period_ms);
        }
    }

    /// Puts the telegram time on the readings that have none of their own.
    fn finish(mut self) -> Decoded {
        match self.clock {
            Some(Some(t)) => {
                for r in &mut self.out.readings {
                    if r.quality.contains(PENDING) {
                        r.ts_ms = t;
                        r.quality = Quality(r.quality.0 & !PENDING.0);
                    }
                }
            }
            Some(None) => {
                for r in &mut self.out.readings {
                    if r.quality.contains(PENDING) {
                        r.quality = r.quality.with(Quality::CLOCK_INVALID);
                    }
                }
            }
            None => {}
        }
        self.out
    }
}
