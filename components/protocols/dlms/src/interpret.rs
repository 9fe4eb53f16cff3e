//! From parsed APDUs to canonical values: notification lists (logical name, value and
//! scaler-unit structures, or name/value pairs, or Kaifa's bare lists), the clock, meter
//! identity, event notifications and the disconnect-control state.

use ami_domain::{DecodeError, Decoded, Obis, Quality, Reading};

use crate::apdu::Apdu;
use crate::axdr::Data;
use crate::cipher::system_title_hex;
use crate::cosem::{self, ScalerUnit};
use crate::datetime::{self, DateTime};

/// One COSEM object of a notification: name, value, scaler-unit if sent.
struct Entry<'d, 'a> {
    obis: Obis,
    value: &'d Data<'a>,
    scaler_unit: Option<ScalerUnit>,
}

/// `1-1:0.2.129.255`: the list version of Kamstrup's lists, which send it without a name.
const LIST_VERSION: Obis = Obis::new(1, 1, 0, 2, 129, 255);

fn is_list_version(o: Obis) -> bool {
    o.c == 0 && o.d == 2 && o.e == 129
}

fn printable(b: &[u8]) -> Option<&str> {
    std::str::from_utf8(b)
        .ok()
        .filter(|s| s.chars().all(|c| !c.is_control()))
}

fn hex(b: &[u8]) -> String {
    system_title_hex(b)
}

/// Text of a non-numeric value; `None` for values that are neither numbers nor text.
fn text(d: &Data<'_>) -> Option<String> {
    Some(match d {
        Data::OctetString(b) => match DateTime::from_slice(b).and_then(|dt| dt.to_text()) {
            Some(t) if b.len() == 12 && !b.iter().all(u8::is_ascii_graphic) => t,
            _ => printable(b).map_or_else(|| hex(b), str::to_owned),
        },
        Data::VisibleString(b) | Data::Utf8String(b) => String::from_utf8_lossy(b).into_owned(),
        Data::DateTime(b) => DateTime::from_bytes(b).to_text().unwrap_or_else(|| hex(b)),
        Data::Date(b) => datetime::date_text(b).unwrap_or_else(|| hex(b)),
        Data::Time(b) => datetime::time_text(b).unwrap_or_else(|| hex(b)),
        Data::Boolean(b) => b.to_string(),
        Data::BitString { bytes, .. } => hex(bytes),
        _ => return None,
    })
}

fn date_time_of(d: &Data<'_>) -> Option<DateTime> {
    match d {
        Data::OctetString(b) => DateTime::from_slice(b),
        Data::DateTime(b) => Some(DateTime::from_bytes(b)),
        _ => None,
    }
}

/// The objects of a notification body.
fn entries<'d, 'a>(body: &'d Data<'a>) -> Option<Vec<Entry<'d, 'a>>> {
    let items = body.elements()?;
    // {logical name, value[, scaler-unit]} structures (Aidon, most IDIS pushes).
    let structured = items.iter().all(|i| {
        i.elements()
            .and_then(|e| e.first())
            .and_then(cosem::logical_name)
            .is_some()
    });
    if structured && !items.is_empty() {
        return Some(
            items
                .iter()
                .filter_map(|i| {
                    let e = i.elements()?;
                    Some(Entry {
                        obis: cosem::logical_name(e.first()?)?,
                        value: e.get(1)?,
                        scaler_unit: e.get(2).and_then(ScalerUnit::from_data),
                    })
                })
                .collect(),
        );
    }
    // Name/value pairs (Kaifa's Swedish list, Kamstrup), maybe led by an unnamed list version.
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(item) = items.get(i) {
        match (cosem::logical_name(item), items.get(i + 1)) {
            (Some(obis), Some(value)) => {
                let scaler_unit = items.get(i + 2).and_then(ScalerUnit::from_data);
                out.push(Entry {
                    obis,
                    value,
                    scaler_unit,
                });
                i += if scaler_unit.is_some() { 3 } else { 2 };
            }
            _ => {
                if i == 0 && matches!(item, Data::VisibleString(_)) {
                    out.push(Entry {
                        obis: LIST_VERSION,
                        value: item,
                        scaler_unit: None,
                    });
                }
                i += 1;
            }
        }
    }
    if out.len() > 1 || (out.len() == 1 && out.iter().any(|e| e.obis != LIST_VERSION)) {
        return Some(out);
    }
    // Kaifa's bare lists: the names are known by the list's length.
    let names = cosem::kaifa_list(items.len())?;
    let leads = match items.first() {
        Some(first) if items.len() > 1 => first.as_bytes().is_some_and(|b| b.starts_with(b"KFM")),
        // List 1: the active power alone, as double-long-unsigned.
        Some(first) => matches!(first, Data::DoubleLongUnsigned(_)),
        None => false,
    };
    leads.then(|| {
        names
            .iter()
            .zip(items)
            .map(|(obis, value)| Entry {
                obis: *obis,
                value,
                scaler_unit: None,
            })
            .collect()
    })
}

/// Time stamp and quality for values without their own.
struct Stamp {
    ts_ms: i64,
    quality: Quality,
}

fn stamp(dt: Option<DateTime>, received_at_ms: i64) -> Stamp {
    match dt {
        Some(dt) => match dt.unix_ms() {
            Some(ts_ms) => Stamp {
                ts_ms,
                quality: dt.quality(),
            },
            None => Stamp {
                ts_ms: received_at_ms,
                quality: dt
                    .quality()
                    .with(Quality::CLOCK_INVALID)
                    .with(Quality::TIME_FROM_RECEIVER),
            },
        },
        None => Stamp {
            ts_ms: received_at_ms,
            quality: Quality::TIME_FROM_RECEIVER,
        },
    }
}

fn notification(
    date_time: Option<&[u8]>,
    body: &Data<'_>,
    body_bytes: &[u8],
    received_at_ms: i64,
    out: &mut Decoded,
) {
    let Some(list) = entries(body) else {
        // Not a list of objects (a manufacturer payload): kept whole.
        out.attributes.push((cosem::PUSH_SETUP, hex(body_bytes)));
        return;
    };
    let clock = list
        .iter()
        .find(|e| cosem::is_clock(e.obis))
        .and_then(|e| date_time_of(e.value));
    let header = date_time.and_then(DateTime::from_slice);
    let st = stamp(clock.or(header), received_at_ms);
    let list_version = list
        .iter()
        .find(|e| is_list_version(e.obis))
        .and_then(|e| e.value.as_bytes())
        .and_then(printable);
    for e in &list {
        if cosem::is_clock(e.obis) {
            if let Some(t) = text(e.value) {
                out.attributes.push((e.obis, t));
            }
            continue;
        }
        if e.obis == cosem::DISCONNECT_CONTROL
            && let Some(kind) = cosem::relay_event(e.value)
        {
            out.events.push(cosem::event(kind, st.ts_ms, 0, e.obis));
        }
        if cosem::is_event_object(e.obis) {
            events(e.obis, e.value, st.ts_ms, out);
            continue;
        }
        if let Some(v) = cosem::number(e.value).filter(|_| !matches!(e.value, Data::Boolean(_))) {
            let (value, unit) = match e.scaler_unit {
                Some(su) => (v.shifted(su.scaler).unwrap_or(v), su.unit()),
                None => (
                    v.shifted(cosem::implied_scaler(list_version, e.obis))
                        .unwrap_or(v),
                    cosem::implied_unit(e.obis),
                ),
            };
            out.readings.push(Reading {
                register: e.obis,
                value,
                unit,
                ts_ms: st.ts_ms,
                quality: st.quality,
            });
        } else if let Some(t) = text(e.value) {
            out.attributes.push((e.obis, t));
        }
    }
    if out.meter.is_none() {
        out.meter = meter_of(&out.attributes);
    }
}

/// The events of an event object (a code) or an event log buffer (rows with a time stamp and
/// a code); rows without a valid time take `ts_ms`.
fn events(source: Obis, value: &Data<'_>, ts_ms: i64, out: &mut Decoded) {
    let code = |d: &Data<'_>| d.as_i128().and_then(|c| u32::try_from(c).ok());
    if let Some(c) = code(value) {
        out.events
            .push(cosem::event(cosem::event_kind(c), ts_ms, c, source));
        return;
    }
    let Data::Array(rows) = value else { return };
    for row in rows {
        let Some(cells) = row.elements() else {
            continue;
        };
        let at = cells
            .iter()
            .find_map(|c| date_time_of(c).and_then(|dt| dt.unix_ms()))
            .unwrap_or(ts_ms);
        if let Some(c) = cells.iter().find_map(code) {
            out.events
                .push(cosem::event(cosem::event_kind(c), at, c, source));
        }
    }
}

fn meter_of(attributes: &[(Obis, String)]) -> Option<String> {
    let find = |o: &Obis| {
        attributes
            .iter()
            .find(|(r, v)| r == o && !v.is_empty())
            .map(|(_, v)| v.clone())
    };
    cosem::METER_IDS.iter().find_map(find).or_else(|| {
        // Device ID 1 (`x-x:0.0.0..9`, Kamstrup's `1-1:0.0.5`).
        attributes
            .iter()
            .find(|(r, v)| r.c == 0 && r.d == 0 && r.e <= 9 && !v.is_empty())
            .map(|(_, v)| v.clone())
    })
}

fn event_notification(
    time: Option<&[u8]>,
    attribute: &crate::apdu::Descriptor,
    value: &Data<'_>,
    received_at_ms: i64,
    out: &mut Decoded,
) {
    let st = stamp(time.and_then(DateTime::from_slice), received_at_ms);
    let o = attribute.instance;
    if o == cosem::DISCONNECT_CONTROL || attribute.class_id == 70 {
        if let Some(kind) = cosem::relay_event(value) {
            out.events.push(cosem::event(kind, st.ts_ms, 0, o));
        }
        return;
    }
    if cosem::is_event_object(o) {
        if let Some(code) = value.as_i128().and_then(|c| u32::try_from(c).ok()) {
            out.events
                .push(cosem::event(cosem::event_kind(code), st.ts_ms, code, o));
        }
        return;
    }
    if let Some(v) = cosem::number(value) {
        out.readings.push(Reading {
            register: o,
            value: v,
            unit: cosem::implied_unit(o),
            ts_ms: st.ts_ms,
            quality: st.quality,
        });
    } else if let Some(t) = text(value) {
        out.attributes.push((o, t));
    }
}

/// The canonical values of a plaintext APDU.
pub(crate) fn interpret(
    apdu: &Apdu<'_>,
    received_at_ms: i64,
    meter: Option<String>,
) -> Result<Decoded, DecodeError> {
    let mut out = Decoded {
        meter,
        ..Decoded::default()
    };
    match apdu {
        Apdu::DataNotification {
            date_time,
            body,
            body_bytes,
            ..
        } => notification(*date_time, body, body_bytes, received_at_ms, &mut out),
        Apdu::EventNotification {
            time,
            attribute,
            value,
        } => event_notification(*time, attribute, value, received_at_ms, &mut out),
        Apdu::GetResponseWithDatablock {
            last_block,
            block_number,
            raw: Ok(raw),
            ..
        } => {
            if !*last_block || *block_number != 1 {
                return Err(DecodeError::Unsupported(format!(
                    "get-response-with-datablock block {block_number}{}: the adapter \
                     reassembles blocks",
                    if *last_block { " (last)" } else { "" }
                )));
            }
            // A complete transfer in one block: it must be whole A-XDR data.
            Data::parse_all(raw)?;
        }
        Apdu::Ciphered(c) => {
            return Err(DecodeError::Malformed(format!(
                "ciphered APDU 0x{:02X} inside a ciphered APDU",
                c.tag
            )));
        }
        // Requests, responses without their request, association and errors: no meter data.
        _ => {}
    }
    Ok(out)
}
