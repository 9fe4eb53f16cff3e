//! A fleet of virtual meters advancing in simulated time: their physics (load, PV, EV,
//! spikes), their faults (outages, gaps, tamper, clock drift) and their obedience to
//! downlink commands.

use std::collections::VecDeque;

use ami_domain::EventKind;
use ami_domain::crypto::KeyRole;

use crate::clock;
use crate::command::{Command, CommandOutcome, SimError, TouTable, crc32};
use crate::rng::Rng;
use crate::shape;

/// The wire protocol a meter speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// DSMR P1 v5.0 telegrams.
    Dsmr,
    /// DLMS/COSEM data-notification pushes (and event notifications).
    Dlms,
    /// Wireless M-Bus (EN 13757-4 format A, EN 13757-3 records).
    WirelessMbus,
    /// IEC 62056-21 mode C readouts.
    Iec62056_21,
}

impl Protocol {
    /// Every protocol.
    pub const ALL: [Protocol; 4] = [
        Protocol::Dsmr,
        Protocol::Dlms,
        Protocol::WirelessMbus,
        Protocol::Iec62056_21,
    ];

    /// The protocol's name in subjects (`ami.raw.<protocol>.<adapter>`) and plugin manifests.
    pub const fn name(self) -> &'static str {
        match self {
            Protocol::Dsmr => "dsmr",
            Protocol::Dlms => "dlms",
            Protocol::WirelessMbus => "wmbus",
            Protocol::Iec62056_21 => "iec62056-21",
        }
    }
}

/// How many meters of each protocol a fleet has, as weights: meter `i` takes the protocol of
/// position `i mod total` in the repeated pattern (so the shares are exact, and meter ids do
/// not depend on the seed).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProtocolMix {
    /// Weight of DSMR meters.
    pub dsmr: u32,
    /// Weight of DLMS meters.
    pub dlms: u32,
    /// Weight of wireless M-Bus meters.
    pub wmbus: u32,
    /// Weight of IEC 62056-21 meters.
    pub iec62056_21: u32,
}

impl ProtocolMix {
    /// DSMR meters only.
    pub const DSMR_ONLY: Self = Self {
        dsmr: 1,
        dlms: 0,
        wmbus: 0,
        iec62056_21: 0,
    };
    /// One of each in turn.
    pub const EVEN: Self = Self {
        dsmr: 1,
        dlms: 1,
        wmbus: 1,
        iec62056_21: 1,
    };

    /// Meters of one protocol only.
    pub const fn only(p: Protocol) -> Self {
        let mut m = Self {
            dsmr: 0,
            dlms: 0,
            wmbus: 0,
            iec62056_21: 0,
        };
        match p {
            Protocol::Dsmr => m.dsmr = 1,
            Protocol::Dlms => m.dlms = 1,
            Protocol::WirelessMbus => m.wmbus = 1,
            Protocol::Iec62056_21 => m.iec62056_21 = 1,
        }
        m
    }

    fn total(&self) -> u64 {
        u64::from(self.dsmr)
            + u64::from(self.dlms)
            + u64::from(self.wmbus)
            + u64::from(self.iec62056_21)
    }

    /// The protocol of meter `i`.
    pub fn pick(&self, i: usize) -> Protocol {
        let total = self.total().max(1);
        let mut pos = i as u64 % total;
        for (w, p) in [
            (self.dsmr, Protocol::Dsmr),
            (self.dlms, Protocol::Dlms),
            (self.wmbus, Protocol::WirelessMbus),
            (self.iec62056_21, Protocol::Iec62056_21),
        ] {
            if pos < u64::from(w) {
                return p;
            }
            pos -= u64::from(w);
        }
        Protocol::Dsmr
    }
}

/// The outer framing of DLMS pushes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DlmsFraming {
    /// HDLC (IEC 62056-46) UI frames with LLC, as on a HAN port or PLC.
    Hdlc,
    /// The IEC 62056-47 wrapper, as over TCP/UDP (cellular meters).
    Wrapper,
}

/// Everything a fleet is built from. [`FleetConfig::default`] is a mixed, faulty fleet;
/// [`FleetConfig::dsmr`] the calm DSMR fleet of [`Fleet::new`].
#[derive(Clone, Debug, PartialEq)]
pub struct FleetConfig {
    /// How many meters.
    pub meters: usize,
    /// The seed: the same seed gives the same fleet, events and frames.
    pub seed: u64,
    /// The protocols of the meters.
    pub mix: ProtocolMix,
    /// The framing of DLMS pushes.
    pub dlms_framing: DlmsFraming,
    /// Whether DLMS meters cipher their pushes (general-glo-ciphering, suite 0, per-meter
    /// keys).
    pub dlms_ciphered: bool,
    /// Whether wireless M-Bus meters encrypt (security mode 5, per-meter keys).
    pub wmbus_encrypted: bool,
    /// Share of households with rooftop PV (0..1).
    pub pv_share: f64,
    /// Share of households with an EV charger (0..1).
    pub ev_share: f64,
    /// Clock drift of each meter, uniform in `±max_drift_ppm` parts per million.
    pub max_drift_ppm: f64,
    /// Chance that a meter skips one periodic report (0..1).
    pub gap_probability: f64,
    /// Chance per step that a meter sees a short load spike (0..1).
    pub spike_probability: f64,
    /// Supply outages per meter and day, on average.
    pub outages_per_day: f64,
    /// Tamper events per meter and day, on average.
    pub tampers_per_day: f64,
}

impl Default for FleetConfig {
    fn default() -> Self {
        Self {
            meters: 100,
            seed: 1,
            mix: ProtocolMix::EVEN,
            dlms_framing: DlmsFraming::Hdlc,
            dlms_ciphered: true,
            wmbus_encrypted: true,
            pv_share: 0.25,
            ev_share: 0.15,
            max_drift_ppm: 40.0,
            gap_probability: 0.01,
            spike_probability: 0.002,
            outages_per_day: 0.05,
            tampers_per_day: 0.002,
        }
    }
}

impl FleetConfig {
    /// `meters` DSMR meters without faults, drift or EVs: what `ami up` shows.
    pub fn dsmr(meters: usize) -> Self {
        Self {
            meters,
            seed: 0,
            mix: ProtocolMix::DSMR_ONLY,
            ev_share: 0.0,
            max_drift_ppm: 0.0,
            gap_probability: 0.0,
            spike_probability: 0.0,
            outages_per_day: 0.0,
            tampers_per_day: 0.0,
            ..Self::default()
        }
    }

    fn validate(&self) -> Result<(), SimError> {
        let shares = [
            ("pv_share", self.pv_share),
            ("ev_share", self.ev_share),
            ("gap_probability", self.gap_probability),
            ("spike_probability", self.spike_probability),
        ];
        for (name, v) in shares {
            if !(0.0..=1.0).contains(&v) {
                return Err(SimError::InvalidConfig(format!("{name} {v} outside 0..1")));
            }
        }
        for (name, v) in [
            ("max_drift_ppm", self.max_drift_ppm),
            ("outages_per_day", self.outages_per_day),
            ("tampers_per_day", self.tampers_per_day),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                return Err(SimError::InvalidConfig(format!(
                    "{name} {v} is not a rate >= 0"
                )));
            }
        }
        if self.mix.total() == 0 {
            return Err(SimError::InvalidConfig("protocol mix has no weight".into()));
        }
        Ok(())
    }
}

/// The keys a meter holds (none for DSMR and IEC 62056-21, which are not encrypted here).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MeterKeys {
    /// The encryption key: DLMS global unicast key (EK) or the M-Bus mode 5 key.
    pub encryption: Option<[u8; 16]>,
    /// The DLMS authentication key (AK).
    pub authentication: Option<[u8; 16]>,
}

/// How a meter is addressed on its wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProtocolId {
    /// DSMR and IEC 62056-21 meters: their equipment identifier / serial (in [`Meter::id`]).
    Serial,
    /// A DLMS meter's system title (3 manufacturer letters, 5 bytes of serial).
    DlmsSystemTitle([u8; 8]),
    /// A wireless M-Bus meter's link address.
    Mbus {
        /// Manufacturer field (3 letters, 5 bits each).
        manufacturer: u16,
        /// Identification number as sent (BCD: the hex digits are the printed number).
        id: u32,
        /// Version.
        version: u8,
        /// Device type (0x02: electricity).
        device_type: u8,
    },
}

/// Why a relay opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RelayCause {
    /// A remote [`Command::Disconnect`].
    Remote,
    /// The load limiter tripped.
    LoadLimit,
}

/// What tampering a meter detected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TamperKind {
    /// Terminal cover opened.
    CoverOpen,
    /// Strong magnetic field.
    MagneticField,
}

/// What happened to a meter, as the simulator knows it (the ground truth for tests and the
/// ingest pipeline; the meter's frames carry what its protocol can).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SimEventKind {
    /// The supply failed; the meter sent its last gasp (a DLMS meter an event notification,
    /// a wireless M-Bus meter an alarm telegram) and goes silent.
    LastGasp,
    /// The supply is back after an outage of `outage_s` seconds (DLMS: event notification;
    /// DSMR: the power failure counters and log of the next telegrams).
    PowerRestored {
        /// Length of the outage, seconds.
        outage_s: u32,
    },
    /// Tampering detected.
    Tamper(TamperKind),
    /// The relay opened.
    RelayOpened(RelayCause),
    /// The relay closed.
    RelayClosed,
    /// The clock was set.
    ClockSet {
        /// The meter's time before, UTC ms.
        from_ms: i64,
        /// The meter's time after, UTC ms.
        to_ms: i64,
    },
    /// A firmware image was activated.
    FirmwareActivated {
        /// The version now running.
        version: String,
    },
    /// A short load spike of this many watts on top of the normal load.
    LoadSpike {
        /// Extra watts.
        w: u64,
    },
    /// The meter skipped its periodic report of this step.
    ReportSkipped,
}

impl SimEventKind {
    /// The canonical event kind a decoder would report, if the event is a meter event.
    pub fn event_kind(&self) -> Option<EventKind> {
        Some(match self {
            SimEventKind::LastGasp => EventKind::LastGasp,
            SimEventKind::PowerRestored { .. } => EventKind::PowerUp,
            SimEventKind::Tamper(TamperKind::CoverOpen) => EventKind::CoverOpen,
            SimEventKind::Tamper(TamperKind::MagneticField) => EventKind::MagneticField,
            SimEventKind::RelayOpened(_) => EventKind::RelayOpen,
            SimEventKind::RelayClosed => EventKind::RelayClosed,
            SimEventKind::ClockSet { .. } => EventKind::ClockAdjusted,
            SimEventKind::FirmwareActivated { .. } => EventKind::FirmwareActivated,
            SimEventKind::LoadSpike { .. } | SimEventKind::ReportSkipped => return None,
        })
    }
}

/// One event of one meter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimEvent {
    /// The meter ([`Meter::id`]).
    pub meter_id: String,
    /// When it happened, true UTC ms (not the meter's drifting clock).
    pub ts_ms: i64,
    /// What happened.
    pub kind: SimEventKind,
}

/// One entry of a meter's power failure log (long failures, over 180 s).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FailureLogEntry {
    /// The end of the failure on the meter's clock, UTC ms.
    pub end_ms: i64,
    /// Its duration, seconds.
    pub duration_s: u32,
}

/// A firmware image transfer in progress.
#[derive(Clone, Debug, PartialEq, Eq)]
struct ImageTransfer {
    version: String,
    total: u32,
    next: u32,
    image: Vec<u8>,
    verified: bool,
}

/// The fault rates a meter draws from (per day, per step, per report).
#[derive(Clone, Copy, Debug, PartialEq)]
struct Faults {
    gap_probability: f64,
    spike_probability: f64,
    outages_per_day: f64,
    tampers_per_day: f64,
}

/// The longest a failure may be to count as short (DSMR's 96.7.21 only), seconds.
pub const LONG_FAILURE_S: u32 = 180;
/// How many entries the power failure log keeps.
pub const FAILURE_LOG_LEN: usize = 10;
/// The firmware version every simulated meter ships with.
pub const FACTORY_FIRMWARE: &str = "AMI-SIM 1.0.0";

/// One virtual electricity meter (with an optional gas meter on M-Bus channel 1, reported by
/// DSMR meters).
#[derive(Clone, Debug)]
pub struct Meter {
    /// The meter's name as its decoder reports it: DSMR equipment identifier, DLMS system
    /// title in lower-case hex, M-Bus `MMM-IIIIIIII`, IEC 62056-21 serial number.
    pub id: String,
    /// The protocol it speaks.
    pub protocol: Protocol,
    /// Imported energy, Wh, tariff 1 (night/low) and 2 (day/normal).
    pub import_wh: [u64; 2],
    /// Exported energy, Wh, per tariff.
    pub export_wh: [u64; 2],
    /// Present import and export power, W.
    pub power_w: (u64, u64),
    /// Gas volume, litres (0.001 m3).
    pub gas_l: u64,
    /// Size of the household relative to the average.
    pub scale: f64,
    /// PV peak power, W (0 = none).
    pub pv_peak_w: f64,
    /// EV charger power, W (0 = no EV).
    pub ev_charger_w: f64,
    /// Relay state: false = disconnected (the meter then measures nothing).
    pub relay_closed: bool,
    /// The keys it ciphers with.
    pub keys: MeterKeys,
    /// How it is addressed on its wire.
    pub protocol_id: ProtocolId,
    /// DLMS pushes: the framing.
    pub dlms_framing: DlmsFraming,
    /// Clock drift, parts per million (positive: the clock runs fast).
    pub drift_ppm: f64,
    /// The time-of-use table.
    pub tou: TouTable,
    /// The load limit, W, if one is set.
    pub load_limit_w: Option<u64>,
    /// The firmware version it runs.
    pub firmware: String,
    /// Power failures in any phase (DSMR 0-0:96.7.21).
    pub power_failures: u32,
    /// Long power failures (DSMR 0-0:96.7.9).
    pub long_power_failures: u32,
    /// The power failure log, oldest first, at most [`FAILURE_LOG_LEN`] entries.
    pub failure_log: Vec<FailureLogEntry>,
    /// Tamper detected and not cleared (reported in status words).
    pub tamper: Option<TamperKind>,
    /// Frames sent so far: the DLMS invocation counter and the M-Bus access number.
    pub frame_counter: u32,
    /// The end of the outage the meter is in (true UTC ms), if it is in one.
    pub outage_until_ms: Option<i64>,
    outage_start_ms: i64,
    clock_offset_ms: i64,
    clock_ref_ms: Option<i64>,
    skip_report: bool,
    faults: Faults,
    rng: Rng,
    household: u64,
    clear_sky: bool,
    transfer: Option<ImageTransfer>,
    pending: Vec<SimEvent>,
    /// Remainders of energy below 1 Wh, carried between steps.
    carry: (f64, f64),
    /// The load profile: one capture per step while powered, oldest first (DLMS meters only,
    /// at most [`PROFILE_LEN`]).
    profile: VecDeque<ProfileEntry>,
}

/// How many captures a DLMS meter's load profile keeps (two days of 15-minute steps).
pub const PROFILE_LEN: usize = 192;

/// Profile status bit: the supply failed during the interval (IDIS AMR profile status).
pub const STATUS_POWER_DOWN: u8 = 0x80;
/// Profile status bit: the clock was set during the interval.
pub const STATUS_CLOCK_ADJUSTED: u8 = 0x20;

/// One capture of a DLMS meter's load profile (`1-0:99.1.0`): what its registers held at
/// the end of a step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProfileEntry {
    /// The meter's own clock at the capture (UTC ms): the profile's clock column.
    pub clock_ms: i64,
    /// Status bits ([`STATUS_POWER_DOWN`], [`STATUS_CLOCK_ADJUSTED`]).
    pub status: u8,
    /// Import energy, all tariffs, Wh.
    pub import_wh: u64,
    /// Export energy, all tariffs, Wh.
    pub export_wh: u64,
}

/// Manufacturer letters of the simulated meters.
pub const MANUFACTURER: &[u8; 3] = b"AMI";

/// The M-Bus manufacturer field of three letters (5 bits each, `A` = 1).
pub fn mbus_manufacturer(letters: &[u8; 3]) -> u16 {
    letters.iter().fold(0u16, |m, &c| {
        (m << 5) | u16::from(c.saturating_sub(64) & 0x1F)
    })
}

fn bcd_u32(n: u32) -> u32 {
    let mut out = 0u32;
    let mut n = n % 100_000_000;
    for shift in 0..8 {
        out |= (n % 10) << (4 * shift);
        n /= 10;
    }
    out
}

fn hex_lower(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

impl Meter {
    fn build(i: usize, cfg: &FleetConfig, legacy: bool) -> Self {
        let protocol = cfg.mix.pick(i);
        let mut rng = Rng::derive(cfg.seed, i as u64);
        // Register starting values as the original DSMR fleet had them.
        let r = (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40;
        let serial = 1_000_000 + i as u64;
        let (id, protocol_id, keys) = match protocol {
            Protocol::Dsmr => (
                format!("E{serial:016}"),
                ProtocolId::Serial,
                MeterKeys::default(),
            ),
            Protocol::Dlms => {
                let mut st = [0u8; 8];
                st[..3].copy_from_slice(MANUFACTURER);
                st[3..].copy_from_slice(&serial.to_be_bytes()[3..]);
                let keys = if cfg.dlms_ciphered {
                    MeterKeys {
                        encryption: Some(rng.key()),
                        authentication: Some(rng.key()),
                    }
                } else {
                    MeterKeys::default()
                };
                (hex_lower(&st), ProtocolId::DlmsSystemTitle(st), keys)
            }
            Protocol::WirelessMbus => {
                let manufacturer = mbus_manufacturer(MANUFACTURER);
                let id = bcd_u32(10_000_000 + i as u32 % 90_000_000);
                let keys = MeterKeys {
                    encryption: cfg.wmbus_encrypted.then(|| rng.key()),
                    authentication: None,
                };
                let pid = ProtocolId::Mbus {
                    manufacturer,
                    id,
                    version: 0x01,
                    device_type: 0x02,
                };
                let letters: String = MANUFACTURER.iter().map(|&c| char::from(c)).collect();
                (format!("{letters}-{id:08X}"), pid, keys)
            }
            Protocol::Iec62056_21 => (
                format!("{:08}", 20_000_000 + i as u64 % 80_000_000),
                ProtocolId::Serial,
                MeterKeys::default(),
            ),
        };
        let pv = rng.chance(cfg.pv_share);
        let ev = rng.chance(cfg.ev_share);
        let pv_peak_w = if legacy {
            // The original fleet: one in four with PV.
            if i.is_multiple_of(4) {
                3000.0 + (r % 2000) as f64
            } else {
                0.0
            }
        } else if pv {
            3000.0 + rng.range(0.0, 5000.0)
        } else {
            0.0
        };
        let ev_charger_w = if ev {
            if rng.chance(0.5) { 7400.0 } else { 11_000.0 }
        } else {
            0.0
        };
        let drift_ppm = rng.range(-cfg.max_drift_ppm, cfg.max_drift_ppm);
        let household = rng.next_u64();
        Meter {
            id,
            protocol,
            import_wh: [1_000_000 + r % 900_000, 1_200_000 + r % 700_000],
            export_wh: [0, 0],
            power_w: (0, 0),
            gas_l: 500_000 + r % 400_000,
            scale: 0.5 + (r % 1300) as f64 / 1000.0,
            pv_peak_w,
            ev_charger_w,
            relay_closed: true,
            keys,
            protocol_id,
            dlms_framing: cfg.dlms_framing,
            drift_ppm,
            tou: TouTable::dutch(),
            load_limit_w: None,
            firmware: FACTORY_FIRMWARE.to_owned(),
            power_failures: 0,
            long_power_failures: 0,
            failure_log: Vec::new(),
            tamper: None,
            frame_counter: 0,
            outage_until_ms: None,
            outage_start_ms: 0,
            clock_offset_ms: 0,
            clock_ref_ms: None,
            skip_report: false,
            faults: Faults {
                gap_probability: cfg.gap_probability,
                spike_probability: cfg.spike_probability,
                outages_per_day: cfg.outages_per_day,
                tampers_per_day: cfg.tampers_per_day,
            },
            rng,
            household,
            clear_sky: legacy,
            transfer: None,
            pending: Vec::new(),
            carry: (0.0, 0.0),
            profile: VecDeque::new(),
        }
    }

    /// The meter's own clock at true UTC time `ts_ms`: its offset plus its drift since it
    /// was last set (or since the simulation started).
    pub fn clock_ms(&self, ts_ms: i64) -> i64 {
        let since = self.clock_ref_ms.map_or(0, |r| ts_ms - r);
        ts_ms + self.clock_offset_ms + (since as f64 * self.drift_ppm / 1e6).round() as i64
    }

    /// The active tariff (1 or 2) at true UTC time `ts_ms`, by the meter's TOU table on the
    /// meter's own (local, drifting) clock.
    pub fn active_tariff(&self, ts_ms: i64) -> u8 {
        let (_, _, _, h, mi, _, _, wd) = clock::fields(clock::local_ms(self.clock_ms(ts_ms)));
        self.tou.tariff_at((h * 60 + mi) as u16, wd)
    }

    /// Whether the meter has supply (not in an outage).
    pub fn powered(&self) -> bool {
        self.outage_until_ms.is_none()
    }

    /// Whether the meter sends its periodic report in the present step (powered, and not
    /// skipping this one).
    pub fn reports(&self) -> bool {
        self.powered() && !self.skip_report
    }

    /// The DLMS system title, for DLMS meters.
    pub fn system_title(&self) -> Option<[u8; 8]> {
        match self.protocol_id {
            ProtocolId::DlmsSystemTitle(st) => Some(st),
            _ => None,
        }
    }

    /// The keys as a key store holds them: `(meter name, role, key)`, the meter named as the
    /// decoders name it ([`Meter::id`]: the system title in lower-case hex for DLMS, the
    /// M-Bus identity for M-Bus).
    pub fn key_entries(&self) -> Vec<(String, KeyRole, [u8; 16])> {
        let mut out = Vec::new();
        match self.protocol {
            Protocol::Dlms => {
                if let Some(k) = self.keys.encryption {
                    out.push((self.id.clone(), KeyRole::DlmsUnicast, k));
                }
                if let Some(k) = self.keys.authentication {
                    out.push((self.id.clone(), KeyRole::DlmsAuthentication, k));
                }
            }
            Protocol::WirelessMbus => {
                if let Some(k) = self.keys.encryption {
                    out.push((self.id.clone(), KeyRole::Mbus, k));
                }
            }
            Protocol::Dsmr | Protocol::Iec62056_21 => {}
        }
        out
    }

    fn event(&self, ts_ms: i64, kind: SimEventKind) -> SimEvent {
        SimEvent {
            meter_id: self.id.clone(),
            ts_ms,
            kind,
        }
    }

    /// The load profile's captures, oldest first (empty for meters that are not DLMS).
    pub fn profile(&self) -> &VecDeque<ProfileEntry> {
        &self.profile
    }

    /// Advances this meter by `step_ms` ending at `ts_ms`; returns what happened (events of
    /// commands given since the last step come first). A powered DLMS meter captures its
    /// load profile at the end of the step, whether or not its push goes out.
    pub fn step(&mut self, ts_ms: i64, step_ms: i64) -> Vec<SimEvent> {
        let events = self.advance(ts_ms, step_ms);
        if self.protocol == Protocol::Dlms && self.powered() {
            let status = events.iter().fold(0u8, |s, e| match e.kind {
                SimEventKind::PowerRestored { .. } => s | STATUS_POWER_DOWN,
                SimEventKind::ClockSet { .. } => s | STATUS_CLOCK_ADJUSTED,
                _ => s,
            });
            if self.profile.len() == PROFILE_LEN {
                self.profile.pop_front();
            }
            self.profile.push_back(ProfileEntry {
                clock_ms: self.clock_ms(ts_ms),
                status,
                import_wh: self.import_wh.iter().sum(),
                export_wh: self.export_wh.iter().sum(),
            });
        }
        events
    }

    fn advance(&mut self, ts_ms: i64, step_ms: i64) -> Vec<SimEvent> {
        let mut events = std::mem::take(&mut self.pending);
        if self.clock_ref_ms.is_none() {
            self.clock_ref_ms = Some(ts_ms);
        }
        let day_share = step_ms as f64 / 86_400_000.0;
        self.skip_report = false;
        // The part of the step the meter had supply for.
        let mut live_ms = step_ms;
        // Outages: the meter dies (last gasp), stays dark, comes back.
        if let Some(until) = self.outage_until_ms {
            if ts_ms < until {
                self.power_w = (0, 0);
                return events;
            }
            self.outage_until_ms = None;
            let outage_s = u32::try_from((until - self.outage_start_ms) / 1000).unwrap_or(u32::MAX);
            self.power_failures += 1;
            if outage_s > LONG_FAILURE_S {
                self.long_power_failures += 1;
                self.failure_log.push(FailureLogEntry {
                    end_ms: self.clock_ms(until),
                    duration_s: outage_s,
                });
                if self.failure_log.len() > FAILURE_LOG_LEN {
                    self.failure_log.remove(0);
                }
            }
            events.push(self.event(until, SimEventKind::PowerRestored { outage_s }));
            live_ms = (ts_ms - until).clamp(0, step_ms);
        } else if self.rng.chance(self.faults.outages_per_day * day_share) {
            // 70 % short interruptions (5 s - 3 min), 30 % long ones (3 min - 3 h).
            let secs = if self.rng.chance(0.7) {
                self.rng.range(5.0, 170.0)
            } else {
                self.rng.range(190.0, 10_800.0)
            };
            self.outage_start_ms = ts_ms;
            self.outage_until_ms = Some(ts_ms + (secs * 1000.0) as i64);
            self.power_w = (0, 0);
            events.push(self.event(ts_ms, SimEventKind::LastGasp));
            return events;
        }
        if self.rng.chance(self.faults.tampers_per_day * day_share) {
            let kind = if self.rng.chance(0.5) {
                TamperKind::CoverOpen
            } else {
                TamperKind::MagneticField
            };
            self.tamper = Some(kind);
            events.push(self.event(ts_ms, SimEventKind::Tamper(kind)));
        }
        self.skip_report = self.rng.chance(self.faults.gap_probability);
        if self.skip_report {
            events.push(self.event(ts_ms, SimEventKind::ReportSkipped));
        }
        let spike = if self.rng.chance(self.faults.spike_probability) {
            let w = self.rng.range(2000.0, 6000.0);
            events.push(self.event(ts_ms, SimEventKind::LoadSpike { w: w as u64 }));
            w
        } else {
            0.0
        };
        let (mut load, mut pv) = if self.relay_closed {
            (
                shape::household_w(ts_ms, self.scale)
                    + shape::ev_w(ts_ms, self.ev_charger_w, self.household)
                    + spike,
                if self.clear_sky {
                    shape::pv_w(ts_ms, self.pv_peak_w)
                } else {
                    shape::pv_w_weather(ts_ms, self.pv_peak_w, self.household)
                },
            )
        } else {
            (0.0, 0.0)
        };
        if let Some(limit) = self.load_limit_w
            && self.relay_closed
            && load - pv > limit as f64
        {
            self.relay_closed = false;
            events.push(self.event(ts_ms, SimEventKind::RelayOpened(RelayCause::LoadLimit)));
            (load, pv) = (0.0, 0.0);
        }
        let net = load - pv;
        let hours = live_ms as f64 / 3_600_000.0;
        let tariff = usize::from(self.active_tariff(ts_ms).saturating_sub(1));
        if net >= 0.0 {
            self.power_w = (net.round() as u64, 0);
            self.carry.0 += net * hours;
        } else {
            self.power_w = (0, (-net).round() as u64);
            self.carry.1 += -net * hours;
        }
        let (imp, exp) = (self.carry.0.floor(), self.carry.1.floor());
        self.carry.0 -= imp;
        self.carry.1 -= exp;
        if let Some(v) = self.import_wh.get_mut(tariff) {
            *v += imp as u64;
        }
        if let Some(v) = self.export_wh.get_mut(tariff) {
            *v += exp as u64;
        }
        // Gas for heating and hot water, about a litre a minute at the evening peak.
        self.gas_l += (load.min(3000.0) / 900.0 * live_ms as f64 / 60_000.0).round() as u64;
        events
    }

    /// Carries out a command at true UTC time `now_ms`.
    pub fn command(&mut self, now_ms: i64, command: Command) -> Result<CommandOutcome, SimError> {
        if !self.powered() {
            return Err(SimError::Unreachable {
                meter: self.id.clone(),
                command: command.name(),
            });
        }
        match command {
            Command::Disconnect => {
                if self.relay_closed {
                    self.relay_closed = false;
                    self.power_w = (0, 0);
                    let e = self.event(now_ms, SimEventKind::RelayOpened(RelayCause::Remote));
                    self.pending.push(e);
                }
                Ok(CommandOutcome::Done)
            }
            Command::Reconnect => {
                if !self.relay_closed {
                    self.relay_closed = true;
                    let e = self.event(now_ms, SimEventKind::RelayClosed);
                    self.pending.push(e);
                }
                Ok(CommandOutcome::Done)
            }
            Command::ReadNow => {
                self.frame_counter = self.frame_counter.wrapping_add(1);
                Ok(CommandOutcome::Frame(crate::try_frame(self, now_ms)?))
            }
            Command::SetTou(table) => {
                table.validate()?;
                self.tou = table;
                Ok(CommandOutcome::Done)
            }
            Command::SetClock(to_ms) => {
                let from_ms = self.clock_ms(now_ms);
                self.clock_ref_ms = Some(now_ms);
                self.clock_offset_ms = to_ms - now_ms;
                let e = self.event(now_ms, SimEventKind::ClockSet { from_ms, to_ms });
                self.pending.push(e);
                Ok(CommandOutcome::Done)
            }
            Command::ClearAlarms => {
                self.tamper = None;
                Ok(CommandOutcome::Done)
            }
            Command::LoadLimit(w) => {
                self.load_limit_w = (w > 0).then_some(w);
                Ok(CommandOutcome::Done)
            }
            Command::FirmwareBlock {
                version,
                number,
                total,
                data,
            } => self.firmware_block(version, number, total, data),
            Command::FirmwareVerify { crc32: want } => {
                let meter = self.id.clone();
                let t = self
                    .transfer
                    .as_mut()
                    .ok_or_else(|| SimError::FirmwareVerify {
                        meter: meter.clone(),
                        reason: "no image transferred".into(),
                    })?;
                if t.next != t.total {
                    return Err(SimError::FirmwareVerify {
                        meter,
                        reason: format!("{} of {} blocks received", t.next, t.total),
                    });
                }
                let got = crc32(&t.image);
                if got != want {
                    return Err(SimError::FirmwareVerify {
                        meter,
                        reason: format!("crc32 {got:08x}, expected {want:08x}"),
                    });
                }
                t.verified = true;
                Ok(CommandOutcome::Verified)
            }
            Command::FirmwareActivate => match self.transfer.take() {
                Some(t) if t.verified => {
                    self.firmware = t.version.clone();
                    let e = self.event(
                        now_ms,
                        SimEventKind::FirmwareActivated {
                            version: t.version.clone(),
                        },
                    );
                    self.pending.push(e);
                    Ok(CommandOutcome::Activated { version: t.version })
                }
                other => {
                    self.transfer = other;
                    Err(SimError::FirmwareNotVerified(self.id.clone()))
                }
            },
        }
    }

    fn firmware_block(
        &mut self,
        version: String,
        number: u32,
        total: u32,
        data: Vec<u8>,
    ) -> Result<CommandOutcome, SimError> {
        let refused = |expected: u32| SimError::FirmwareBlockRefused {
            meter: self.id.clone(),
            expected,
            got: number,
        };
        if number == 0 {
            if total == 0 || version.is_empty() || version.len() > 32 {
                return Err(refused(0));
            }
            self.transfer = Some(ImageTransfer {
                version,
                total,
                next: 1,
                image: data,
                verified: false,
            });
            return Ok(CommandOutcome::BlockAccepted { next: 1 });
        }
        let expected = self.transfer.as_ref().map_or(0, |t| t.next);
        match self.transfer.as_mut() {
            Some(t)
                if t.next == number
                    && t.total == total
                    && t.version == version
                    && number < total =>
            {
                t.image.extend_from_slice(&data);
                t.next += 1;
                t.verified = false;
                Ok(CommandOutcome::BlockAccepted { next: t.next })
            }
            _ => Err(refused(expected)),
        }
    }
}

/// A frame on its way up: which meter, what protocol, which kind, the bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Uplink {
    /// The meter ([`Meter::id`]).
    pub meter_id: String,
    /// The protocol of the frame (the decoder to run).
    pub protocol: Protocol,
    /// True UTC time it was sent.
    pub ts_ms: i64,
    /// Periodic report or event.
    pub kind: UplinkKind,
    /// The frame as it goes on the wire.
    pub bytes: Vec<u8>,
}

/// Why a frame was sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UplinkKind {
    /// The periodic report (telegram, push, readout).
    Periodic,
    /// An event frame (DLMS event notification, M-Bus alarm).
    Event,
}

/// What one [`Fleet::tick`] produced.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tick {
    /// Every event of the step, in meter order.
    pub events: Vec<SimEvent>,
    /// Every frame sent, event frames of a meter before its periodic report.
    pub uplinks: Vec<Uplink>,
}

/// A fleet of meters.
#[derive(Clone, Debug)]
pub struct Fleet {
    /// The meters.
    pub meters: Vec<Meter>,
    now_ms: Option<i64>,
}

impl Fleet {
    /// `n` DSMR meters with deterministic variety (sizes from 0.5 to 1.8, one in four with
    /// PV), without faults: [`FleetConfig::dsmr`].
    pub fn new(n: usize) -> Self {
        let cfg = FleetConfig::dsmr(n);
        Self {
            meters: (0..n).map(|i| Meter::build(i, &cfg, true)).collect(),
            now_ms: None,
        }
    }

    /// A fleet as configured.
    pub fn with_config(cfg: &FleetConfig) -> Result<Self, SimError> {
        cfg.validate()?;
        Ok(Self {
            meters: (0..cfg.meters)
                .map(|i| Meter::build(i, cfg, false))
                .collect(),
            now_ms: None,
        })
    }

    /// The time of the last step (true UTC ms), if the fleet has stepped.
    pub fn now_ms(&self) -> Option<i64> {
        self.now_ms
    }

    /// The meter of an id.
    pub fn meter(&self, id: &str) -> Option<&Meter> {
        self.meters.iter().find(|m| m.id == id)
    }

    /// Every key of every meter, as a key store holds them (see [`Meter::key_entries`]).
    pub fn key_entries(&self) -> Vec<(String, KeyRole, [u8; 16])> {
        self.meters.iter().flat_map(Meter::key_entries).collect()
    }

    /// Advances every meter to `ts_ms` by `step_ms`; returns the events of the step.
    pub fn step(&mut self, ts_ms: i64, step_ms: i64) -> Vec<SimEvent> {
        self.now_ms = Some(ts_ms);
        self.meters
            .iter_mut()
            .flat_map(|m| m.step(ts_ms, step_ms))
            .collect()
    }

    /// Advances the fleet ([`Fleet::step`]) and renders what the meters send: each event a
    /// protocol can carry as its own frame, then each due periodic report. Every frame sent
    /// advances its meter's frame counter (DLMS invocation counter, M-Bus access number).
    pub fn tick(&mut self, ts_ms: i64, step_ms: i64) -> Tick {
        let events = self.step(ts_ms, step_ms);
        let mut uplinks = Vec::with_capacity(self.meters.len());
        let mut ev = events.iter().peekable();
        for m in &mut self.meters {
            while let Some(e) = ev.next_if(|e| e.meter_id == m.id) {
                m.frame_counter = m.frame_counter.wrapping_add(1);
                let Some(bytes) = crate::event_frame(m, e) else {
                    // Not a frame in this protocol: the counter stays.
                    m.frame_counter = m.frame_counter.wrapping_sub(1);
                    continue;
                };
                {
                    uplinks.push(Uplink {
                        meter_id: m.id.clone(),
                        protocol: m.protocol,
                        ts_ms: e.ts_ms,
                        kind: UplinkKind::Event,
                        bytes,
                    });
                }
            }
            if m.reports() {
                m.frame_counter = m.frame_counter.wrapping_add(1);
                uplinks.push(Uplink {
                    meter_id: m.id.clone(),
                    protocol: m.protocol,
                    ts_ms,
                    kind: UplinkKind::Periodic,
                    bytes: crate::frame(m, ts_ms),
                });
            }
        }
        Tick { events, uplinks }
    }

    /// Sends a downlink command to a meter, carried out at the time of the last step (a
    /// fleet that has not stepped yet answers [`SimError::NotStarted`]; [`Meter::command`]
    /// takes the time explicitly).
    pub fn command(
        &mut self,
        meter_id: &str,
        command: Command,
    ) -> Result<CommandOutcome, SimError> {
        let m = self
            .meters
            .iter_mut()
            .find(|m| m.id == meter_id)
            .ok_or_else(|| SimError::UnknownMeter(meter_id.to_owned()))?;
        let now = self
            .now_ms
            .ok_or_else(|| SimError::NotStarted(command.name()))?;
        m.command(now, command)
    }
}
