//! Downlink commands a simulated meter obeys, what they answer, and the simulator's errors.

/// A time-of-use table: which tariff register (1 or 2) counts energy at which local time.
///
/// `switches` are `(minute of the local day, tariff)` pairs; the tariff of the last switch at
/// or before the present minute is active (the day wraps: before the first switch, the last
/// switch of the day holds). On Saturdays and Sundays `weekend` overrides when set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TouTable {
    /// Tariff switch points, `(minute of day 0..1440, tariff 1 or 2)`, in any order.
    pub switches: Vec<(u16, u8)>,
    /// The tariff of the whole weekend, if it has one.
    pub weekend: Option<u8>,
}

impl TouTable {
    /// The Dutch double tariff: tariff 1 (low) from 23:00 to 07:00 and at weekends,
    /// tariff 2 (normal) on weekdays from 07:00 to 23:00.
    pub fn dutch() -> Self {
        Self {
            switches: vec![(7 * 60, 2), (23 * 60, 1)],
            weekend: Some(1),
        }
    }

    /// One tariff all the time.
    pub fn flat(tariff: u8) -> Self {
        Self {
            switches: vec![(0, tariff)],
            weekend: None,
        }
    }

    /// Checks the table: at least one switch, minutes below 1440, tariffs 1 or 2.
    pub fn validate(&self) -> Result<(), SimError> {
        if self.switches.is_empty() {
            return Err(SimError::InvalidTou("no switch point".into()));
        }
        for &(minute, tariff) in &self.switches {
            if minute >= 1440 {
                return Err(SimError::InvalidTou(format!(
                    "switch at minute {minute} (0..1440 allowed)"
                )));
            }
            if !(1..=2).contains(&tariff) {
                return Err(SimError::InvalidTou(format!(
                    "tariff {tariff} at minute {minute} (the meter has registers 1 and 2)"
                )));
            }
        }
        match self.weekend {
            Some(t) if !(1..=2).contains(&t) => Err(SimError::InvalidTou(format!(
                "weekend tariff {t} (the meter has registers 1 and 2)"
            ))),
            _ => Ok(()),
        }
    }

    /// The active tariff (1 or 2) at a minute of the local day and a weekday (1 = Monday).
    pub fn tariff_at(&self, minute_of_day: u16, weekday: u32) -> u8 {
        if weekday >= 6
            && let Some(t) = self.weekend
        {
            return t;
        }
        let before = self
            .switches
            .iter()
            .filter(|(m, _)| *m <= minute_of_day)
            .max_by_key(|(m, _)| *m);
        let last = self.switches.iter().max_by_key(|(m, _)| *m);
        before.or(last).map_or(1, |(_, t)| *t)
    }
}

impl Default for TouTable {
    fn default() -> Self {
        Self::dutch()
    }
}

/// A downlink command, as the head-end sends it to one meter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// Open the relay: the meter then reads zero power and its energy registers stop.
    Disconnect,
    /// Close the relay (also after a load-limit trip).
    Reconnect,
    /// Read the meter now: the answer is a frame in the meter's protocol.
    ReadNow,
    /// Install a new time-of-use table (the active tariff register follows it at once).
    SetTou(TouTable),
    /// Set the meter's clock to this UTC time (ms): the drift starts again from zero error.
    SetClock(i64),
    /// Limit the import power to this many watts (0 removes the limit); above it the relay
    /// opens until a [`Command::Reconnect`].
    LoadLimit(u64),
    /// Clear the latched alarms (tamper) from the status words and error registers.
    ClearAlarms,
    /// One block of a firmware image transfer (DLMS image transfer, IEC 62056-6-2 class 18):
    /// block 0 starts a transfer, the others must follow in order.
    FirmwareBlock {
        /// The version the image carries (what the meter reports once it runs it).
        version: String,
        /// This block's number, from 0.
        number: u32,
        /// How many blocks the image has.
        total: u32,
        /// The block's bytes.
        data: Vec<u8>,
    },
    /// Verify the transferred image against its CRC-32 (IEEE, see [`crate::crc32`]).
    FirmwareVerify {
        /// The CRC-32 of the whole image.
        crc32: u32,
    },
    /// Activate the verified image: the meter runs it and reports its version.
    FirmwareActivate,
}

impl Command {
    /// A short name for logs and errors (`disconnect`, `firmware-block`, ...).
    pub const fn name(&self) -> &'static str {
        match self {
            Command::Disconnect => "disconnect",
            Command::Reconnect => "reconnect",
            Command::ReadNow => "read-now",
            Command::SetTou(_) => "set-tou",
            Command::SetClock(_) => "set-clock",
            Command::LoadLimit(_) => "load-limit",
            Command::ClearAlarms => "clear-alarms",
            Command::FirmwareBlock { .. } => "firmware-block",
            Command::FirmwareVerify { .. } => "firmware-verify",
            Command::FirmwareActivate => "firmware-activate",
        }
    }
}

/// What a meter answers to a command it carried out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CommandOutcome {
    /// Done; any events it caused come with the next [`crate::Fleet::step`].
    Done,
    /// The answer to [`Command::ReadNow`]: a frame in the meter's protocol.
    Frame(Vec<u8>),
    /// A firmware block was taken; `next` is the number of the block expected next.
    BlockAccepted {
        /// The next block number.
        next: u32,
    },
    /// The image is complete and its CRC matches.
    Verified,
    /// The new firmware runs.
    Activated {
        /// The version the meter now reports.
        version: String,
    },
}

/// What can go wrong in the simulator.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SimError {
    /// No meter of that id in the fleet.
    #[error("no meter {0} in the fleet")]
    UnknownMeter(String),
    /// The meter has no supply (an outage): it cannot answer.
    #[error("meter {meter} is unreachable (power outage) for command {command}")]
    Unreachable {
        /// The meter.
        meter: String,
        /// The command.
        command: &'static str,
    },
    /// A command before the fleet's first step: the fleet has no present time yet.
    #[error("the fleet has not stepped yet: no time to carry out {0} at")]
    NotStarted(&'static str),
    /// A time-of-use table the meter cannot hold.
    #[error("invalid time-of-use table: {0}")]
    InvalidTou(String),
    /// A firmware block out of order, or for another image.
    #[error("meter {meter}: firmware block {got} refused, expected block {expected}")]
    FirmwareBlockRefused {
        /// The meter.
        meter: String,
        /// The block the meter waits for.
        expected: u32,
        /// The block sent.
        got: u32,
    },
    /// The image is incomplete or its CRC does not match.
    #[error("meter {meter}: firmware image verification failed: {reason}")]
    FirmwareVerify {
        /// The meter.
        meter: String,
        /// Why.
        reason: String,
    },
    /// Activation without a verified image.
    #[error("meter {0}: no verified firmware image to activate")]
    FirmwareNotVerified(String),
    /// A fleet configuration the simulator cannot build.
    #[error("invalid fleet configuration: {0}")]
    InvalidConfig(String),
    /// A frame could not be encoded (too long for its framing, cipher failure).
    #[error("meter {meter}: cannot encode frame: {reason}")]
    Encode {
        /// The meter.
        meter: String,
        /// Why.
        reason: String,
    },
}

/// CRC-32 (IEEE 802.3, reflected polynomial 0xEDB88320), the checksum
/// [`Command::FirmwareVerify`] carries.
pub fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_check_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }

    #[test]
    fn tou_tables() {
        let t = TouTable::dutch();
        assert_eq!(t.tariff_at(6 * 60, 1), 1);
        assert_eq!(t.tariff_at(12 * 60, 3), 2);
        assert_eq!(t.tariff_at(23 * 60 + 30, 3), 1);
        assert_eq!(t.tariff_at(12 * 60, 6), 1);
        assert_eq!(TouTable::flat(2).tariff_at(100, 7), 2);
        assert!(TouTable::flat(3).validate().is_err());
        assert!(
            TouTable {
                switches: vec![],
                weekend: None
            }
            .validate()
            .is_err()
        );
    }
}
