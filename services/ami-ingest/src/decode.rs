//! One batch of raw-frame messages into what goes back on the bus: a readings message per
//! decoded frame, an event message per event, a dead letter per frame that could not be
//! decoded. A message is one frame or a [bundle](ami_bus::bundle) of them; outputs and dead
//! letters are per frame either way (a bundle that does not parse is one dead letter). Pure
//! apart from the decoder calls, so it runs the same on either bus.

use std::collections::HashMap;
use std::sync::Arc;

use ami_bus::bundle;
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
    /// Messages to publish: dead letters of messages that did not read, then the readings,
    /// events and dead letters of each frame, in frame order.
    pub messages: Vec<Message>,
    /// Frames the batch's messages carried (a bundle counts its frames, a message that does
    /// not read counts one).
    pub frames: u64,
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

/// Decodes `batch` (raw-frame messages, plain or bundles) with the installed decoders,
/// `chunk` frames per call.
pub fn decode_batch(
    host: &Host,
    topology: &Topology,
    batch: &[Message],
    chunk: usize,
) -> BatchOutput {
    let mut out = BatchOutput::default();
    // Every frame of the batch, in order; a message that does not read is a dead letter here.
    let mut frames: Vec<RawFrame> = Vec::with_capacity(batch.len());
    // The message of each frame sent alone (its dead letter keeps that message as it came).
    let mut alone: Vec<Option<&Message>> = Vec::with_capacity(batch.len());
    for msg in batch {
        match bundle::frames_of(msg) {
            Ok(fs) => {
                let plain = !bundle::is_bundle(msg);
                alone.extend(std::iter::repeat_n(plain.then_some(msg), fs.len()));
                frames.extend(fs);
            }
            Err(e) => {
                out.dead += 1;
                out.messages.push(dead_letter(
                    topology,
                    msg,
                    DeadKind::Envelope,
                    &e.to_string(),
                    None,
                ));
            }
        }
    }
    let mut outcomes: Vec<Option<Outcome>> = (0..frames.len()).map(|_| None).collect();
    // Group the frames by protocol, keeping their positions.
    let mut groups: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, f) in frames.iter().enumerate() {
        groups.entry(f.protocol.as_str()).or_default().push(i);
    }
    for (protocol, idx) in groups {
        let Some(plugin) = host.decoder_for(protocol) else {
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
    // Each message that did not read counts as one frame (it is one dead letter).
    out.frames = frames.len() as u64 + out.dead;
    for ((f, outcome), original) in frames.iter().zip(outcomes).zip(alone) {
        let outcome = outcome.unwrap_or(Outcome::Dead {
            kind: DeadKind::Decode,
            reason: "no result for the frame".into(),
            plugin: None,
        });
        // A dead letter holds the frame alone, under its own id, even when it came bundled.
        let dead = |kind, reason: &str, plugin: Option<&str>| match original {
            Some(msg) => dead_letter(topology, msg, kind, reason, plugin),
            None => dead_letter(topology, &f.to_message(topology), kind, reason, plugin),
        };
        match outcome {
            Outcome::Decoded { plugin, decoded } => {
                let meter = decoded.meter.clone().or_else(|| f.meter_hint.clone());
                let Some(meter) = meter.filter(|m| !m.is_empty()) else {
                    out.dead += 1;
                    out.messages.push(dead(
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
            Outcome::Dead {
                kind,
                reason,
                plugin,
            } => {
                out.dead += 1;
                out.messages.push(dead(kind, &reason, plugin.as_deref()));
            }
        }
    }
    out
}

fn decode_group(
    plugin: &Arc<Plugin>,
    frames: &[RawFrame],
    idx: &[usize],
    chunk: usize,
    outcomes: &mut [Option<Outcome>],
) {
    let label = plugin_label(plugin);
    for part in idx.chunks(chunk.max(1)) {
        let input: Vec<InputFrame<'_>> = part
            .iter()
            .filter_map(|&i| frames.get(i))
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
