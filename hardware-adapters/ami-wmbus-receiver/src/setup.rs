//! Configuring the dongle over its line, each time the line opens: ping, read the device
//! information (logged), then `SET_CONFIG` into the link mode with RSSI and time stamp
//! attached ([`crate::config`] has the bytes). Each request waits for its answer up to a
//! timeout and is sent again a bounded number of times; a refusal or silence ends in a
//! [`ConfigError`] that says what the dongle answered.
//!
//! The radio may already be on (a dongle configured earlier, or saved to flash), so
//! telegrams can arrive between the answers: everything the line brings that is not the
//! awaited answer goes to the caller's sink, the normal telegram path, and the splitter the
//! caller passes in keeps any partial frame for the loop that follows.

use std::time::{Duration, Instant};

use ami_serial_readers::port::{Link, LinkError, is_timeout};

use crate::config::{
    self, DeviceInfo, DongleSettings, GET_DEVICEINFO_RSP, LinkMode, PING_RSP, ResponseError,
    SET_CONFIG_RSP,
};
use crate::hci::{DEVMGMT, HciFrame, Piece, Splitter};

/// How the configuration waits and retries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SetupConfig {
    /// What to put into the dongle.
    pub settings: DongleSettings,
    /// How long each request waits for its answer.
    pub response_timeout: Duration,
    /// How many times a request is sent before the dongle counts as silent (at least 1).
    pub attempts: u32,
}

impl Default for SetupConfig {
    fn default() -> Self {
        SetupConfig {
            settings: DongleSettings::default(),
            response_timeout: Duration::from_millis(1000),
            attempts: 3,
        }
    }
}

/// The request a step sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// `PING_REQ`.
    Ping,
    /// `GET_DEVICEINFO_REQ`.
    DeviceInfo,
    /// `SET_CONFIG_REQ`.
    SetConfig,
}

impl std::fmt::Display for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Step::Ping => "PING_REQ",
            Step::DeviceInfo => "GET_DEVICEINFO_REQ",
            Step::SetConfig => "SET_CONFIG_REQ",
        })
    }
}

/// Why the dongle could not be configured.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// No answer came to a request, however often it was sent.
    #[error("the dongle did not answer {step}: {attempts} attempts, {timeout:?} each")]
    Silent {
        /// The request.
        step: Step,
        /// How many times it was sent.
        attempts: u32,
        /// How long each waited.
        timeout: Duration,
    },
    /// The dongle answered with an error status.
    #[error("the dongle refused {step}: status {status:#04x} ({meaning})")]
    Refused {
        /// The request.
        step: Step,
        /// The status byte it answered.
        status: u8,
        /// What that status means.
        meaning: &'static str,
    },
    /// Every answer to a request was malformed.
    #[error("the dongle's answer to {step} is malformed after {attempts} attempts: {error}")]
    Malformed {
        /// The request.
        step: Step,
        /// How many times it was sent.
        attempts: u32,
        /// What is wrong with the last answer.
        error: ResponseError,
    },
    /// The dongle cannot listen in the link mode asked for.
    #[error(
        "{info} cannot listen in link mode {link_mode} (C1 and T1 at once needs iM871A firmware 1.4 or later)"
    )]
    Unsupported {
        /// The dongle.
        info: DeviceInfo,
        /// The mode asked for.
        link_mode: LinkMode,
    },
    /// The line failed.
    #[error("line: {0}")]
    Link(#[from] LinkError),
    /// The receiver was stopped before the dongle was configured.
    #[error("stopped while configuring the dongle")]
    Stopped,
}

impl ConfigError {
    /// Whether opening the line again cannot help: the dongle said no (a refusal, a link
    /// mode it cannot do). Silence, malformed answers and a failed line may pass.
    pub fn is_fatal(&self) -> bool {
        matches!(
            self,
            ConfigError::Refused { .. } | ConfigError::Unsupported { .. }
        )
    }
}

/// What the configuration found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Configured {
    /// The dongle's own information.
    pub info: DeviceInfo,
    /// Whether every answer came with a CRC (so the dongle attaches one to its frames).
    pub answers_had_crc: bool,
}

/// Configures the dongle on `link`: every frame and rejected byte that is not an awaited
/// answer goes to `sink`, through `splitter` (whose partial frame, if any, is left for the
/// caller). `stop` is polled between reads.
pub fn configure<L: Link + ?Sized>(
    link: &mut L,
    cfg: &SetupConfig,
    splitter: &mut Splitter,
    idle: Duration,
    sink: &mut dyn FnMut(Vec<Piece>),
    stop: &dyn Fn() -> bool,
) -> Result<Configured, ConfigError> {
    let mut io = Exchange {
        link,
        splitter,
        idle,
        sink,
        stop,
        all_crc: true,
        last_byte: Instant::now(),
    };
    let tick = idle.clamp(Duration::from_millis(1), Duration::from_millis(50));
    io.link.set_timeout(tick)?;

    io.ask(cfg, Step::Ping, &config::ping(), PING_RSP, |_| Ok(()))?;
    let info = io.ask(
        cfg,
        Step::DeviceInfo,
        &config::get_device_info(),
        GET_DEVICEINFO_RSP,
        DeviceInfo::parse,
    )?;
    tracing::info!(dongle = %info, "dongle found");
    if !info.supports(cfg.settings.link_mode) {
        return Err(ConfigError::Unsupported {
            info,
            link_mode: cfg.settings.link_mode,
        });
    }
    io.ask(
        cfg,
        Step::SetConfig,
        &config::set_config(&cfg.settings),
        SET_CONFIG_RSP,
        |_| Ok(()),
    )?;
    tracing::info!(
        link_mode = %cfg.settings.link_mode,
        saved = cfg.settings.save,
        "dongle configured: device mode other, RSSI and time stamp attached"
    );
    Ok(Configured {
        info,
        answers_had_crc: io.all_crc,
    })
}

struct Exchange<'a, L: Link + ?Sized> {
    link: &'a mut L,
    splitter: &'a mut Splitter,
    idle: Duration,
    sink: &'a mut dyn FnMut(Vec<Piece>),
    stop: &'a dyn Fn() -> bool,
    all_crc: bool,
    last_byte: Instant,
}

impl<L: Link + ?Sized> Exchange<'_, L> {
    /// Sends `request` until an answer `response` comes that `parse` reads, at most
    /// `cfg.attempts` times.
    fn ask<T>(
        &mut self,
        cfg: &SetupConfig,
        step: Step,
        request: &HciFrame,
        response: u8,
        parse: impl Fn(&[u8]) -> Result<T, ResponseError>,
    ) -> Result<T, ConfigError> {
        let attempts = cfg.attempts.max(1);
        let mut malformed = None;
        for attempt in 1..=attempts {
            tracing::debug!(%step, attempt, "asking the dongle");
            self.link
                .write_all(&request.encode())
                .and_then(|()| self.link.flush())
                .map_err(LinkError::Io)?;
            let Some(answer) = self.await_answer(response, cfg.response_timeout)? else {
                tracing::warn!(%step, attempt, timeout = ?cfg.response_timeout, "no answer from the dongle");
                continue;
            };
            self.all_crc &= answer.crc;
            let status = config::status(&answer.payload);
            // Only bare acknowledgements carry a status byte; the device information is data.
            if response != GET_DEVICEINFO_RSP && status != 0 {
                return Err(ConfigError::Refused {
                    step,
                    status,
                    meaning: config::status_meaning(status),
                });
            }
            match parse(&answer.payload) {
                Ok(v) => return Ok(v),
                Err(e) => {
                    tracing::warn!(%step, attempt, error = %e, "malformed answer from the dongle");
                    malformed = Some(e);
                }
            }
        }
        Err(match malformed {
            Some(error) => ConfigError::Malformed {
                step,
                attempts,
                error,
            },
            None => ConfigError::Silent {
                step,
                attempts,
                timeout: cfg.response_timeout,
            },
        })
    }

    /// Reads until the answer `msg_id` comes (returned; what came with it goes to the sink)
    /// or `timeout` passes (`None`).
    fn await_answer(
        &mut self,
        msg_id: u8,
        timeout: Duration,
    ) -> Result<Option<HciFrame>, ConfigError> {
        let deadline = Instant::now() + timeout;
        let mut buf = [0u8; 512];
        loop {
            if (self.stop)() {
                return Err(ConfigError::Stopped);
            }
            let pieces = match self.link.read(&mut buf) {
                Ok(0) => Vec::new(),
                Ok(n) => {
                    self.last_byte = Instant::now();
                    self.splitter.push(buf.get(..n).unwrap_or_default())
                }
                Err(e) if is_timeout(&e) => Vec::new(),
                Err(e) => return Err(LinkError::Io(e).into()),
            };
            let mut pieces = pieces;
            if self.splitter.buffered() > 0 && self.last_byte.elapsed() >= self.idle {
                pieces.extend(self.splitter.idle());
            }
            let mut answer = None;
            let mut rest = Vec::with_capacity(pieces.len());
            for p in pieces {
                match p {
                    Piece::Frame(f)
                        if answer.is_none() && f.endpoint == DEVMGMT && f.msg_id == msg_id =>
                    {
                        answer = Some(f);
                    }
                    other => rest.push(other),
                }
            }
            if !rest.is_empty() {
                (self.sink)(rest);
            }
            if answer.is_some() {
                return Ok(answer);
            }
            if Instant::now() >= deadline {
                return Ok(None);
            }
        }
    }
}
