//! The fleet simulator as a meter link (feature `sim`): signed head-end commands carried out
//! by simulated meters, for `ami sim` and the tests of the command engine and the HES. A
//! command kind becomes the simulator's [`Command`], the meter's outcome becomes the ack's
//! [`AckResult`]; a meter in an outage (or a fleet not started) is unreachable, a firmware
//! block out of order is refused with the block the meter expects.

use std::sync::{Arc, Mutex, PoisonError};

use ami_bus::command::{AckResult, CommandKind};
use ami_sim::{Command, CommandOutcome, Fleet, SimError, TouTable};

use crate::downlink::{LinkError, MeterLink};

/// The simulator's command for a command kind; the kinds a simulated meter cannot carry out
/// (price display) are [`LinkError::Unsupported`].
pub fn sim_command(kind: &CommandKind) -> Result<Command, LinkError> {
    Ok(match kind {
        CommandKind::ReadNow => Command::ReadNow,
        CommandKind::Disconnect => Command::Disconnect,
        CommandKind::Reconnect => Command::Reconnect,
        CommandKind::SetClock { to_ms } => Command::SetClock(*to_ms),
        CommandKind::SetTou { switches, weekend } => Command::SetTou(TouTable {
            switches: switches.clone(),
            weekend: *weekend,
        }),
        CommandKind::LoadLimit { watts } => Command::LoadLimit(*watts),
        CommandKind::ClearAlarms => Command::ClearAlarms,
        CommandKind::FirmwareBlock {
            version,
            number,
            total,
            data,
        } => Command::FirmwareBlock {
            version: version.clone(),
            number: *number,
            total: *total,
            data: data.clone(),
        },
        CommandKind::FirmwareVerify { crc32 } => Command::FirmwareVerify { crc32: *crc32 },
        CommandKind::FirmwareActivate => Command::FirmwareActivate,
        CommandKind::PricePush { .. } => {
            return Err(LinkError::Unsupported(
                "the simulated meters have no price display".into(),
            ));
        }
    })
}

/// Simulated meters behind a meter link.
#[derive(Clone, Debug)]
pub struct FleetLink {
    fleet: Arc<Mutex<Fleet>>,
    report_relay: bool,
}

impl FleetLink {
    /// The meters of `fleet`; relay commands report the relay state.
    pub fn new(fleet: Arc<Mutex<Fleet>>) -> Self {
        FleetLink {
            fleet,
            report_relay: true,
        }
    }

    /// Relay commands answer `Done`, as a meter link that cannot read the relay back does.
    pub fn without_relay_state(mut self) -> Self {
        self.report_relay = false;
        self
    }

    /// The fleet.
    pub fn fleet(&self) -> &Arc<Mutex<Fleet>> {
        &self.fleet
    }

    /// Carries `command` out on `meter` now (the fleet's last step).
    pub fn carry_out(&self, meter: &str, command: &CommandKind) -> Result<AckResult, LinkError> {
        let sim = sim_command(command)?;
        let mut fleet = self.fleet.lock().unwrap_or_else(PoisonError::into_inner);
        let outcome = fleet.command(meter, sim).map_err(|e| match e {
            SimError::FirmwareBlockRefused { expected, .. } => LinkError::Refused {
                detail: e.to_string(),
                result: Some(AckResult::Firmware {
                    next_block: expected,
                }),
            },
            SimError::Unreachable { .. } | SimError::NotStarted(_) => {
                LinkError::Unreachable(e.to_string())
            }
            other => LinkError::Refused {
                detail: other.to_string(),
                result: None,
            },
        })?;
        let closed = fleet.meter(meter).map(|m| m.relay_closed);
        Ok(match outcome {
            CommandOutcome::Done => match (command, closed) {
                (CommandKind::Disconnect | CommandKind::Reconnect, Some(closed))
                    if self.report_relay =>
                {
                    AckResult::Relay { closed }
                }
                _ => AckResult::Done,
            },
            CommandOutcome::Frame(frame) => AckResult::Read {
                frame,
                relay_closed: closed,
            },
            CommandOutcome::BlockAccepted { next } => AckResult::Firmware { next_block: next },
            CommandOutcome::Verified => AckResult::Verified,
            CommandOutcome::Activated { version } => AckResult::Activated { version },
        })
    }
}

impl MeterLink for FleetLink {
    async fn execute(&self, meter: &str, command: &CommandKind) -> Result<AckResult, LinkError> {
        self.carry_out(meter, command)
    }
}

/// A simulated meter's frame as the adapter spools it: received when it was sent, no meter
/// hint (the decoder names the meter), no radio signal, no trace yet.
impl From<ami_sim::Uplink> for crate::SpoolFrame {
    fn from(u: ami_sim::Uplink) -> Self {
        crate::SpoolFrame {
            protocol: u.protocol.name().to_owned(),
            meter_hint: None,
            received_at_ms: u.ts_ms,
            traceparent: None,
            rssi_dbm: None,
            data: bytes::Bytes::from(u.bytes),
        }
    }
}
