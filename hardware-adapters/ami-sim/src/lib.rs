//! The meter fleet simulator: virtual meters with realistic load shapes that emit frames in the
//! real wire formats, for `ami up`, the end-to-end tests and the benchmarks.
//!
//! A [`Fleet`] holds [`Meter`]s of several protocols ([`Protocol`]: DSMR P1, DLMS/COSEM
//! pushes, wireless M-Bus, IEC 62056-21 mode C), mixed as [`FleetConfig::mix`] says. Each
//! meter keeps its physical state (energy registers per tariff, power, relay, clock with
//! drift, firmware, power failure log) and a wire module renders it:
//!
//! * [`frame`] gives a meter's periodic frame as bytes ([`dsmr`], [`dlms`], [`wmbus`],
//!   [`iec62056_21`]); [`event_frame`] the frame an event goes out in, where the protocol
//!   has one (DLMS event notifications, M-Bus alarm telegrams).
//! * [`Fleet::step`] advances the physics (household, PV, EV charging, spikes) and the faults
//!   (outages with last gasp and restore, skipped reports, tamper) and returns the
//!   [`SimEvent`]s; [`Fleet::tick`] also renders every frame sent, as [`Uplink`]s.
//! * [`Fleet::command`] carries out downlink [`Command`]s (disconnect, reconnect, read,
//!   TOU table, clock, load limit, firmware image transfer).
//! * [`dlms_server`] answers a DLMS client's association, GETs (registers, clock, relay,
//!   the load profile by range), SET of the clock and ACTION on the relay, as the meter;
//!   with the `serve` feature, [`serve`](mod@serve) carries it over TCP (IEC 62056-47).
//! * Keys ([`Meter::keys`], [`Meter::key_entries`]) are per meter, for the key store that
//!   lets the decoders read the ciphered frames.
//!
//! Everything is deterministic given [`FleetConfig::seed`]: the same seed and the same calls
//! give the same frames, byte for byte.

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod clock;
pub mod command;
pub mod dlms;
pub mod dlms_server;
pub mod dsmr;
pub mod fleet;
pub mod iec62056_21;
pub mod rng;
#[cfg(feature = "serve")]
pub mod serve;
pub mod shape;
pub mod wmbus;

pub use command::{Command, CommandOutcome, SimError, TouTable, crc32};
pub use fleet::{
    DlmsFraming, FailureLogEntry, Fleet, FleetConfig, Meter, MeterKeys, PROFILE_LEN, ProfileEntry,
    Protocol, ProtocolId, ProtocolMix, RelayCause, SimEvent, SimEventKind, TamperKind, Tick,
    Uplink, UplinkKind,
};

/// The meter's periodic frame at true UTC time `ts_ms`, as bytes on the wire: a DSMR
/// telegram, a DLMS push, a wireless M-Bus telegram or an IEC 62056-21 readout.
///
/// The DLMS invocation counter and the M-Bus access number are [`Meter::frame_counter`]:
/// [`Fleet::tick`] and [`Command::ReadNow`] advance it for each frame sent.
pub fn try_frame(m: &Meter, ts_ms: i64) -> Result<Vec<u8>, SimError> {
    Ok(match m.protocol {
        Protocol::Dsmr => dsmr::telegram(m, ts_ms).into_bytes(),
        Protocol::Dlms => dlms::push(m, ts_ms)?,
        Protocol::WirelessMbus => wmbus::telegram(m, ts_ms)?,
        Protocol::Iec62056_21 => iec62056_21::readout(m, ts_ms),
    })
}

/// [`try_frame`], for the simulated meters whose frames always fit their framing (an
/// encoding failure, which they cannot have, gives an empty frame).
pub fn frame(m: &Meter, ts_ms: i64) -> Vec<u8> {
    try_frame(m, ts_ms).unwrap_or_default()
}

/// The frame an event goes out in, if the meter's protocol sends one: a DLMS event
/// notification, a wireless M-Bus alarm telegram. DSMR and IEC 62056-21 meters report
/// events in their periodic frames (power failure counters and log, error register).
pub fn event_frame(m: &Meter, e: &SimEvent) -> Option<Vec<u8>> {
    match m.protocol {
        Protocol::Dlms => dlms::event(m, e).ok().flatten(),
        Protocol::WirelessMbus => wmbus::alarm(m, e).ok().flatten(),
        Protocol::Dsmr | Protocol::Iec62056_21 => None,
    }
}
