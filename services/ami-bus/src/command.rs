//! Downlink commands and their acknowledgements: the JSON envelopes on
//! `<root>.cmd.<adapter>.<meter>` and `<root>.cmdack.<adapter>.<meter>`.
//!
//! A [`CommandRequest`] is made and signed by the head-end (Ed25519, over
//! [`CommandRequest::signing_bytes`], a canonical length-prefixed encoding of every field but the
//! signature: never over re-serialised JSON, whose field order and number formatting are not
//! fixed) and verified by the adapter before a meter sees it. The adapter answers with
//! [`CommandAck`]s: `received` once the command verified, then `confirmed` (with the meter's
//! answer as an [`AckResult`]) or `failed` with a [`FailReason`]. Decoding is strict: unknown
//! fields, unknown kinds and malformed bytes are typed [`CommandError`]s.
//!
//! De-duplication: the request's `Nats-Msg-Id` is `<id>:<attempt>`, so a retry by the head-end
//! is a new message while a re-sent attempt is stored once; an ack's is
//! `<request msg id>:<status>`.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use bytes::Bytes;
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};

use crate::message::{Headers, Message, header};
use crate::subjects::Topology;

/// The domain separation tag that starts every signed command encoding (version 1).
pub const SIGNING_DOMAIN: &[u8] = b"ami.command.v1\0";

/// Header naming the attempt of a command request (1 the first time).
pub const ATTEMPT_HEADER: &str = "Ami-Attempt";

/// What is wrong with a command envelope.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    /// The JSON body does not parse, or has unknown or missing fields.
    #[error("bad command envelope: {0}")]
    Body(String),
    /// A field is out of its domain.
    #[error("bad field {field}: {reason}")]
    Field {
        /// The field.
        field: &'static str,
        /// Why.
        reason: String,
    },
    /// The command carries no signature.
    #[error("command {0} is not signed")]
    MissingSignature(String),
    /// The signature does not verify with any trusted key.
    #[error("command {0}: signature does not verify")]
    BadSignature(String),
}

/// Strict base64 of bytes in JSON.
mod b64 {
    use super::B64;
    use base64::Engine as _;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&B64.encode(v))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        B64.decode(text.as_bytes())
            .map_err(|e| serde::de::Error::custom(format!("bad base64: {e}")))
    }
}

/// What a command asks the meter to do.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case", deny_unknown_fields)]
pub enum CommandKind {
    /// Read the meter now; the answer carries a frame in the meter's protocol.
    ReadNow,
    /// Open the relay.
    Disconnect,
    /// Close the relay.
    Reconnect,
    /// Set the meter's clock to this UTC time.
    SetClock {
        /// ms since the Unix epoch.
        to_ms: i64,
    },
    /// Install a time-of-use table.
    SetTou {
        /// `(minute of the local day, tariff register)` switch points.
        switches: Vec<(u16, u8)>,
        /// The tariff of the whole weekend, if any.
        weekend: Option<u8>,
    },
    /// Show a price on the meter's display (prepayment, dynamic tariffs).
    PricePush {
        /// The tariff register the price applies to.
        tariff: u8,
        /// Price per kWh as a scaled integer: `mantissa * 10^scale` `currency`.
        mantissa: i64,
        /// Power of ten of the price.
        scale: i8,
        /// ISO 4217 currency code.
        currency: String,
        /// From when the price holds, ms since the Unix epoch.
        valid_from_ms: i64,
    },
    /// Limit import power to this many watts (0 removes the limit).
    LoadLimit {
        /// Watts.
        watts: u64,
    },
    /// Clear latched alarms.
    ClearAlarms,
    /// One block of a firmware image.
    FirmwareBlock {
        /// The version the image carries.
        version: String,
        /// This block's number, from 0.
        number: u32,
        /// Blocks in the image.
        total: u32,
        /// The block's bytes (base64 in JSON).
        #[serde(with = "b64")]
        data: Vec<u8>,
    },
    /// Verify the transferred image against its CRC-32.
    FirmwareVerify {
        /// CRC-32 (IEEE) of the whole image.
        crc32: u32,
    },
    /// Run the verified image.
    FirmwareActivate,
}

impl CommandKind {
    /// Its name (`disconnect`, `firmware-block`, ...).
    pub const fn name(&self) -> &'static str {
        match self {
            CommandKind::ReadNow => "read-now",
            CommandKind::Disconnect => "disconnect",
            CommandKind::Reconnect => "reconnect",
            CommandKind::SetClock { .. } => "set-clock",
            CommandKind::SetTou { .. } => "set-tou",
            CommandKind::PricePush { .. } => "price-push",
            CommandKind::LoadLimit { .. } => "load-limit",
            CommandKind::ClearAlarms => "clear-alarms",
            CommandKind::FirmwareBlock { .. } => "firmware-block",
            CommandKind::FirmwareVerify { .. } => "firmware-verify",
            CommandKind::FirmwareActivate => "firmware-activate",
        }
    }

    /// Canonical bytes of the kind and its arguments.
    fn encode(&self, out: &mut Vec<u8>) {
        put_str(out, self.name());
        match self {
            CommandKind::ReadNow
            | CommandKind::Disconnect
            | CommandKind::Reconnect
            | CommandKind::ClearAlarms
            | CommandKind::FirmwareActivate => {}
            CommandKind::SetClock { to_ms } => out.extend_from_slice(&to_ms.to_be_bytes()),
            CommandKind::SetTou { switches, weekend } => {
                put_u32(out, switches.len());
                for (minute, tariff) in switches {
                    out.extend_from_slice(&minute.to_be_bytes());
                    out.push(*tariff);
                }
                match weekend {
                    Some(t) => out.extend_from_slice(&[1, *t]),
                    None => out.push(0),
                }
            }
            CommandKind::PricePush {
                tariff,
                mantissa,
                scale,
                currency,
                valid_from_ms,
            } => {
                out.push(*tariff);
                out.extend_from_slice(&mantissa.to_be_bytes());
                out.extend_from_slice(&scale.to_be_bytes());
                put_str(out, currency);
                out.extend_from_slice(&valid_from_ms.to_be_bytes());
            }
            CommandKind::LoadLimit { watts } => out.extend_from_slice(&watts.to_be_bytes()),
            CommandKind::FirmwareBlock {
                version,
                number,
                total,
                data,
            } => {
                put_str(out, version);
                out.extend_from_slice(&number.to_be_bytes());
                out.extend_from_slice(&total.to_be_bytes());
                put_bytes(out, data);
            }
            CommandKind::FirmwareVerify { crc32 } => out.extend_from_slice(&crc32.to_be_bytes()),
        }
    }
}

fn put_u32(out: &mut Vec<u8>, n: usize) {
    out.extend_from_slice(&u32::try_from(n).unwrap_or(u32::MAX).to_be_bytes());
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    put_u32(out, b.len());
    out.extend_from_slice(b);
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    put_bytes(out, s.as_bytes());
}

/// A command for one meter through one adapter, as the head-end signs it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommandRequest {
    /// Unique id, chosen by the head-end; the same for every retry.
    pub id: String,
    /// The meter.
    pub meter: String,
    /// The adapter that reaches it.
    pub adapter: String,
    /// What to do.
    pub kind: CommandKind,
    /// When the head-end issued it, ms since the Unix epoch.
    pub issued_at_ms: i64,
    /// After this instant (ms since the Unix epoch) it must not be carried out.
    pub deadline_ms: i64,
    /// Who asked for it.
    pub requested_by: String,
    /// Ed25519 signature over [`CommandRequest::signing_bytes`], base64.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
}

impl CommandRequest {
    /// The canonical bytes the signature covers: [`SIGNING_DOMAIN`], then every field but the
    /// signature in declaration order (strings and bytes as a 32-bit big-endian length and
    /// the bytes, integers big-endian).
    pub fn signing_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(128);
        out.extend_from_slice(SIGNING_DOMAIN);
        put_str(&mut out, &self.id);
        put_str(&mut out, &self.meter);
        put_str(&mut out, &self.adapter);
        self.kind.encode(&mut out);
        out.extend_from_slice(&self.issued_at_ms.to_be_bytes());
        out.extend_from_slice(&self.deadline_ms.to_be_bytes());
        put_str(&mut out, &self.requested_by);
        out
    }

    /// Signs it with the head-end's key.
    pub fn sign(&mut self, key: &SigningKey) {
        let sig = key.sign(&self.signing_bytes());
        self.signature = Some(B64.encode(sig.to_bytes()));
    }

    /// Checks the signature against the trusted keys.
    pub fn verify(&self, trusted: &[VerifyingKey]) -> Result<(), CommandError> {
        let text = self
            .signature
            .as_deref()
            .ok_or_else(|| CommandError::MissingSignature(self.id.clone()))?;
        let bad = || CommandError::BadSignature(self.id.clone());
        let raw = B64.decode(text.as_bytes()).map_err(|_| bad())?;
        let raw: [u8; 64] = raw.try_into().map_err(|_| bad())?;
        let sig = Signature::from_bytes(&raw);
        let msg = self.signing_bytes();
        if trusted.iter().any(|k| k.verify(&msg, &sig).is_ok()) {
            Ok(())
        } else {
            Err(bad())
        }
    }

    /// The message for `attempt` (1 the first time) on `<root>.cmd.<adapter>.<meter>`.
    pub fn to_message(&self, topology: &Topology, attempt: u32) -> Message {
        Message {
            subject: topology.command(&self.adapter, &self.meter),
            headers: Headers::new()
                .with(header::MSG_ID, format!("{}:{attempt}", self.id))
                .with(header::METER, self.meter.clone())
                .with(header::ADAPTER, self.adapter.clone())
                .with(ATTEMPT_HEADER, attempt.to_string()),
            payload: Bytes::from(serde_json::to_vec(self).unwrap_or_default()),
        }
    }

    /// Parses and checks a request body (not its signature: see [`CommandRequest::verify`]).
    pub fn from_slice(body: &[u8]) -> Result<CommandRequest, CommandError> {
        let r: CommandRequest =
            serde_json::from_slice(body).map_err(|e| CommandError::Body(e.to_string()))?;
        r.check()?;
        Ok(r)
    }

    fn check(&self) -> Result<(), CommandError> {
        for (field, v) in [
            ("id", &self.id),
            ("meter", &self.meter),
            ("adapter", &self.adapter),
            ("requested_by", &self.requested_by),
        ] {
            if v.is_empty() {
                return Err(CommandError::Field {
                    field,
                    reason: "empty".into(),
                });
            }
        }
        if self.deadline_ms < self.issued_at_ms {
            return Err(CommandError::Field {
                field: "deadline_ms",
                reason: format!(
                    "{} before issued_at_ms {}",
                    self.deadline_ms, self.issued_at_ms
                ),
            });
        }
        if let CommandKind::FirmwareBlock { number, total, .. } = &self.kind
            && number >= total
        {
            return Err(CommandError::Field {
                field: "kind.number",
                reason: format!("block {number} of {total}"),
            });
        }
        Ok(())
    }
}

/// Why a command failed, as the adapter reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FailReason {
    /// The envelope could not be read.
    Malformed,
    /// No signature.
    MissingSignature,
    /// The signature does not verify.
    BadSignature,
    /// Its deadline passed before it could be carried out.
    Expired,
    /// Its id was used before for another command.
    Replayed,
    /// It was addressed to another adapter.
    WrongAdapter,
    /// The meter or the link cannot do this kind of command.
    Unsupported,
    /// The meter did not answer (outage, link down, response lost); worth a retry.
    Unreachable,
    /// The meter refused it (out-of-order firmware block, invalid table, ...).
    Refused,
}

impl FailReason {
    /// Whether trying the same command again may succeed.
    pub const fn retryable(self) -> bool {
        matches!(self, FailReason::Unreachable)
    }
}

/// Where a command stands, as the adapter reports it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "code", rename_all = "kebab-case", deny_unknown_fields)]
pub enum AckStatus {
    /// The adapter verified it and queued it for the meter.
    Received,
    /// It reached the meter; its answer is still to come.
    Delivered,
    /// The meter carried it out.
    Confirmed {
        /// What the meter said.
        detail: String,
    },
    /// It was not carried out.
    Failed {
        /// Why, as a class.
        reason: FailReason,
        /// Why, in words.
        detail: String,
    },
}

impl AckStatus {
    /// Its name (`received`, `confirmed`, ...).
    pub const fn name(&self) -> &'static str {
        match self {
            AckStatus::Received => "received",
            AckStatus::Delivered => "delivered",
            AckStatus::Confirmed { .. } => "confirmed",
            AckStatus::Failed { .. } => "failed",
        }
    }

    /// Whether no later ack will follow it for the same attempt.
    pub const fn is_final(&self) -> bool {
        matches!(self, AckStatus::Confirmed { .. } | AckStatus::Failed { .. })
    }
}

/// What the meter answered.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case", deny_unknown_fields)]
pub enum AckResult {
    /// Done, nothing to report.
    Done,
    /// An on-demand read: the frame, and the relay state where the link can tell it.
    Read {
        /// The frame in the meter's protocol (base64 in JSON).
        #[serde(with = "b64")]
        frame: Vec<u8>,
        /// Whether the relay reads closed, if known.
        relay_closed: Option<bool>,
    },
    /// The relay state after a connect or disconnect.
    Relay {
        /// Whether it reads closed.
        closed: bool,
    },
    /// A firmware block was taken, or refused: the block the meter expects next.
    Firmware {
        /// The next block number.
        next_block: u32,
    },
    /// The image verified.
    Verified,
    /// The new firmware runs.
    Activated {
        /// The version the meter reports.
        version: String,
    },
}

/// An adapter's answer to a command.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommandAck {
    /// The command's id.
    pub id: String,
    /// The meter.
    pub meter: String,
    /// The adapter answering.
    pub adapter: String,
    /// The attempt this answers (from the request's message).
    pub attempt: u32,
    /// Where it stands.
    pub status: AckStatus,
    /// When, ms since the Unix epoch.
    pub at_ms: i64,
    /// What the meter answered, if anything.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<AckResult>,
}

impl CommandAck {
    /// The message on `<root>.cmdack.<adapter>.<meter>`.
    pub fn to_message(&self, topology: &Topology) -> Message {
        Message {
            subject: topology.command_ack(&self.adapter, &self.meter),
            headers: Headers::new()
                .with(
                    header::MSG_ID,
                    format!("{}:{}:ack:{}", self.id, self.attempt, self.status.name()),
                )
                .with(header::METER, self.meter.clone())
                .with(header::ADAPTER, self.adapter.clone()),
            payload: Bytes::from(serde_json::to_vec(self).unwrap_or_default()),
        }
    }

    /// Parses an ack body.
    pub fn from_slice(body: &[u8]) -> Result<CommandAck, CommandError> {
        let a: CommandAck =
            serde_json::from_slice(body).map_err(|e| CommandError::Body(e.to_string()))?;
        if a.id.is_empty() {
            return Err(CommandError::Field {
                field: "id",
                reason: "empty".into(),
            });
        }
        Ok(a)
    }
}

/// The filter for every command ack under `topology`'s root (`<root>.cmdack.>`).
pub fn ack_filter(topology: &Topology) -> String {
    format!("{}.cmdack.>", topology.root())
}

/// The attempt a request message carries (1 when the header is absent or unreadable).
pub fn attempt_of(msg: &Message) -> u32 {
    msg.headers
        .get(ATTEMPT_HEADER)
        .and_then(|v| v.parse().ok())
        .unwrap_or(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(seed: u8) -> SigningKey {
        SigningKey::from_bytes(&[seed; 32])
    }

    fn request(kind: CommandKind) -> CommandRequest {
        CommandRequest {
            id: "c-1".into(),
            meter: "m1".into(),
            adapter: "dcu-1".into(),
            kind,
            issued_at_ms: 1_000,
            deadline_ms: 61_000,
            requested_by: "alice".into(),
            signature: None,
        }
    }

    fn all_kinds() -> Vec<CommandKind> {
        vec![
            CommandKind::ReadNow,
            CommandKind::Disconnect,
            CommandKind::Reconnect,
            CommandKind::SetClock { to_ms: 5 },
            CommandKind::SetTou {
                switches: vec![(420, 2), (1380, 1)],
                weekend: Some(1),
            },
            CommandKind::PricePush {
                tariff: 1,
                mantissa: 2345,
                scale: -4,
                currency: "EUR".into(),
                valid_from_ms: 9,
            },
            CommandKind::LoadLimit { watts: 4000 },
            CommandKind::ClearAlarms,
            CommandKind::FirmwareBlock {
                version: "2.0".into(),
                number: 1,
                total: 3,
                data: vec![0, 1, 255],
            },
            CommandKind::FirmwareVerify { crc32: 0xdead_beef },
            CommandKind::FirmwareActivate,
        ]
    }

    #[test]
    fn every_kind_round_trips_signed_and_verifies() {
        let k = key(7);
        let topo = Topology::new("t");
        for kind in all_kinds() {
            let mut r = request(kind);
            r.sign(&k);
            let msg = r.to_message(&topo, 2);
            assert_eq!(msg.subject, "t.cmd.dcu-1.m1");
            assert_eq!(msg.msg_id(), Some("c-1:2"));
            assert_eq!(attempt_of(&msg), 2);
            let back = CommandRequest::from_slice(&msg.payload).unwrap();
            assert_eq!(back, r);
            back.verify(&[key(1).verifying_key(), k.verifying_key()])
                .unwrap();
        }
    }

    #[test]
    fn tampering_with_any_field_breaks_the_signature() {
        let k = key(7);
        let mut r = request(CommandKind::LoadLimit { watts: 4000 });
        r.sign(&k);
        let trusted = [k.verifying_key()];
        let mut t = r.clone();
        t.kind = CommandKind::LoadLimit { watts: 0 };
        assert_eq!(
            t.verify(&trusted),
            Err(CommandError::BadSignature("c-1".into()))
        );
        let mut t = r.clone();
        t.deadline_ms += 1;
        assert!(t.verify(&trusted).is_err());
        let mut t = r.clone();
        t.meter = "m2".into();
        assert!(t.verify(&trusted).is_err());
        let mut t = r.clone();
        t.signature = Some("not base64!".into());
        assert!(t.verify(&trusted).is_err());
        let mut t = r.clone();
        t.signature = None;
        assert_eq!(
            t.verify(&trusted),
            Err(CommandError::MissingSignature("c-1".into()))
        );
        assert!(r.verify(&[key(8).verifying_key()]).is_err());
        r.verify(&trusted).unwrap();
    }

    #[test]
    fn canonical_bytes_do_not_depend_on_json_layout() {
        let r = request(CommandKind::SetClock { to_ms: 5 });
        let json = serde_json::to_string(&r).unwrap();
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        let pretty = serde_json::to_vec_pretty(&v).unwrap();
        let back = CommandRequest::from_slice(&pretty).unwrap();
        assert_eq!(back.signing_bytes(), r.signing_bytes());
        // Field boundaries are length-prefixed: moving a character between fields changes the bytes.
        let mut shifted = r.clone();
        shifted.meter = "m".into();
        shifted.id = "c-11".into();
        assert_ne!(shifted.signing_bytes(), r.signing_bytes());
    }

    #[test]
    fn strict_decoding() {
        let r = request(CommandKind::Disconnect);
        let mut v = serde_json::to_value(&r).unwrap();
        v["extra"] = serde_json::json!(1);
        assert!(matches!(
            CommandRequest::from_slice(&serde_json::to_vec(&v).unwrap()),
            Err(CommandError::Body(_))
        ));
        let mut v = serde_json::to_value(&r).unwrap();
        v["kind"] = serde_json::json!({"type": "self-destruct"});
        assert!(CommandRequest::from_slice(&serde_json::to_vec(&v).unwrap()).is_err());
        let mut v = serde_json::to_value(&r).unwrap();
        v["kind"] = serde_json::json!({"type": "load-limit", "watts": 1, "x": 2});
        assert!(CommandRequest::from_slice(&serde_json::to_vec(&v).unwrap()).is_err());
        let mut v = serde_json::to_value(&r).unwrap();
        v["kind"] = serde_json::json!({"type": "firmware-block", "version": "v", "number": 0, "total": 1, "data": "%%"});
        assert!(CommandRequest::from_slice(&serde_json::to_vec(&v).unwrap()).is_err());
        let mut bad = r.clone();
        bad.deadline_ms = 0;
        assert!(matches!(
            CommandRequest::from_slice(&serde_json::to_vec(&bad).unwrap()),
            Err(CommandError::Field {
                field: "deadline_ms",
                ..
            })
        ));
        assert!(CommandRequest::from_slice(b"{").is_err());
        assert!(CommandRequest::from_slice(b"").is_err());
    }

    #[test]
    fn acks_round_trip() {
        let topo = Topology::new("t");
        for (status, result) in [
            (AckStatus::Received, None),
            (
                AckStatus::Confirmed {
                    detail: "ok".into(),
                },
                Some(AckResult::Read {
                    frame: b"/ISK5".to_vec(),
                    relay_closed: Some(false),
                }),
            ),
            (
                AckStatus::Failed {
                    reason: FailReason::Refused,
                    detail: "block 3 refused".into(),
                },
                Some(AckResult::Firmware { next_block: 2 }),
            ),
        ] {
            let a = CommandAck {
                id: "c-1".into(),
                meter: "m1".into(),
                adapter: "dcu-1".into(),
                attempt: 1,
                status,
                at_ms: 5,
                result,
            };
            let msg = a.to_message(&topo);
            assert_eq!(msg.subject, "t.cmdack.dcu-1.m1");
            assert!(crate::subject_matches(&ack_filter(&topo), &msg.subject));
            assert_eq!(CommandAck::from_slice(&msg.payload).unwrap(), a);
        }
        assert!(CommandAck::from_slice(br#"{"id":"x"}"#).is_err());
    }
}
