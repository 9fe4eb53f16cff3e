//! One batch of raw-frame messages into what goes back on the bus: a readings message per
//! decoded frame, an event message per event, a dead letter per frame that could not be
//! decoded. Pure apart from the decoder calls, so it runs the same on either bus.

use std::collections::HashMap;
use std::sync::Arc;

use ami_bus::envelope::{DeadKind, dead_letter};
use ami_bus::trace::TraceContext;
use ami_bus::{EventMessage, Message, RawFrame, ReadingsMessage, Topology, WireReading};
use ami_plugin_host::{FrameFailure, Host, InputFrame, Plugin};

/// The trace context of a decoded frame's outputs: a span `ami.ingest.decode` whose parent
/// is the frame's `traceparent` (set by the adapter), exported when OpenTelemetry is on; else
/// a child of the frame's context, so the trace still runs on through the outputs' headers.
fn frame_trace(f: &RawFrame, meter: &str, plugin: &str) -> Option<String> {
    let parent = f.traceparent.as_deref().and_then(TraceContext::parse)?;
    let span = tracing::info_span!(
        "ami.ingest.decode",
        frame = %f.id,
        protocol = %f.protocol,
        meter = %meter,
        plugin = %plugin,
    );
    if ami_telemetry::set_parent_from(&span, &parent).is_err() {
        return Some(parent.child().header());
    }
    let tc = ami_telemetry::context_of(&span).unwrap_or_else(|| parent.child());
    Some(tc.header())
}

/// What one batch made.
#[derive(Debug, Default)]
pub struct BatchOutput {
    /// Messages to publish (readings, events, dead letters), in frame order.
    pub messages: Vec<Message>,
    /// Frames decoded.
    pub decoded: u64,
    /// Readings made.
    pub readings: u64,
    /// Events made.
    pub events: u64,
    /// Frames sent to dead letters.
    pub dead: u64,
}

/// The outcome of one frame, before it becomes messages.
enum Outcome {
    Decoded {
        plugin: String,
        decoded: ami_domain::Decoded,
    },
    Dead {
        kind: DeadKind,
        reason: String,
        plugin: Option<String>,
    },
}

fn plugin_label(p: &Plugin) -> String {
    format!("{}@{}", p.manifest().name, p.manifest().version)
}

/// Decodes `batch` (raw-frame messages) with the installed decoders, `chunk` frames per call.
pub fn decode_batch(
    host: &Host,
    topology: &Topology,
    batch: &[Message],
    chunk: usize,
) -> BatchOutput {
    let mut outcomes: Vec<Option<Outcome>> = (0..batch.len()).map(|_| None).collect();
    let mut frames: Vec<Option<RawFrame>> = Vec::with_capacity(batch.len());
    // Group the frames by protocol, keeping their positions.
    let mut groups: HashMap<String, Vec<usize>> = HashMap::new();
    for (i, msg) in batch.iter().enumerate() {
        match RawFrame::from_message(msg) {
            Ok(f) => {
                groups.entry(f.protocol.clone()).or_default().push(i);
                frames.push(Some(f));
            }
            Err(e) => {
                outcomes[i] = Some(Outcome::Dead {
                    kind: DeadKind::Envelope,
                    reason: e.to_string(),
                    plugin: None,
                });
                frames.push(None);
            }
        }
    }
    for (protocol, idx) in groups {
        let Some(plugin) = host.decoder_for(&protocol) else {
            for i in idx {
                outcomes[i] = Some(Outcome::Dead {
                    kind: DeadKind::NoDecoder,
                    reason: format!("no installed decoder serves protocol {protocol:?}"),
                    plugin: None,
                });
            }
            continue;
        };
        decode_group(&plugin, &frames, &idx, chunk, &mut outcomes);
    }
    let mut out = BatchOutput::default();
    for (i, msg) in batch.iter().enumerate() {
        let outcome = outcomes[i].take().unwrap_or(Outcome::Dead {
            kind: DeadKind::Decode,
            reason: "no result for the frame".into(),
            plugin: None,
        });
        let frame = frames[i].as_ref();
        match (outcome, frame) {
            (Outcome::Decoded { plugin, decoded }, Some(f)) => {
                let meter = decoded.meter.clone().or_else(|| f.meter_hint.clone());
                let Some(meter) = meter.filter(|m| !m.is_empty()) else {
                    out.dead += 1;
                    out.messages.push(dead_letter(
                        topology,
                        msg,
                        DeadKind::NoMeter,
                        "the frame names no meter and the adapter gave none",
                        Some(&plugin),
                    ));
                    continue;
                };
                let trace = frame_trace(f, &meter, &plugin);
                out.decoded += 1;
                out.readings += decoded.readings.len() as u64;
                out.events += decoded.events.len() as u64;
                if !decoded.readings.is_empty() || !decoded.attributes.is_empty() {
                    let rm = ReadingsMessage {
                        frame: f.id.clone(),
                        meter: meter.clone(),
                        protocol: f.protocol.clone(),
                        decoder: plugin.clone(),
                        received_at_ms: f.received_at_ms,
                        readings: decoded.readings.iter().map(WireReading::from).collect(),
                        attributes: decoded
                            .attributes
                            .iter()
                            .map(|(o, v)| (o.to_string(), v.clone()))
                            .collect(),
                    };
                    out.messages.push(rm.to_message(topology, trace.as_deref()));
                }
                for (n, e) in decoded.events.iter().enumerate() {
                    out.messages
                        .push(EventMessage::new(&f.id, &meter, e).to_message(
                            topology,
                            n,
                            trace.as_deref(),
                        ));
                }
            }
            (
                Outcome::Dead {
                    kind,
                    reason,
                    plugin,
                },
                _,
            ) => {
                out.dead += 1;
                out.messages
                    .push(dead_letter(topology, msg, kind, &reason, plugin.as_deref()));
            }
            (Outcome::Decoded { plugin, .. }, None) => {
                out.dead += 1;
                out.messages.push(dead_letter(
                    topology,
                    msg,
                    DeadKind::Envelope,
                    "decoded without an envelope",
                    Some(&plugin),
                ));
            }
        }
    }
    out
}

fn decode_group(
    plugin: &Arc<Plugin>,
    frames: &[Option<RawFrame>],
    idx: &[usize],
    chunk: usize,
    outcomes: &mut [Option<Outcome>],
) {
    let label = plugin_label(plugin);
    for part in idx.chunks(chunk.max(1)) {
        let input: Vec<InputFrame<'_>> = part
            .iter()
            .filter_map(|&i| frames.get(i).and_then(Option::as_ref))
            .map(|f| InputFrame {
                data: &f.data,
                received_at_ms: f.received_at_ms,
                meter_hint: f.meter_hint.as_deref(),
            })
            .collect();
        let results = plugin.decode_isolating(&input);
        for (&i, result) in part.iter().zip(results) {
            outcomes[i] = Some(match result {
                Ok(decoded) => Outcome::Decoded {
                    plugin: label.clone(),
                    decoded,
                },
                Err(FrameFailure::Decode(e)) => Outcome::Dead {
                    kind: DeadKind::Decode,
                    reason: e.to_string(),
                    plugin: Some(label.clone()),
                },
                Err(FrameFailure::Call(e)) => Outcome::Dead {
                    kind: DeadKind::Sandbox,
                    reason: e.to_string(),
                    plugin: Some(label.clone()),
                },
            });
        }
    }
}
