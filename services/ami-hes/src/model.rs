//! The HES's own types: meters and their lifecycle, key metadata and sealed key records, stored
//! events, and the filters of the queries.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use ami_domain::crypto::KeyRole;

use crate::error::{HesError, Result};

/// Now, Unix milliseconds.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Where a meter is in its life. Allowed changes: installed → commissioned; commissioned ⇄
/// disconnected; any but retired → retired. Retired is final.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MeterStatus {
    /// Mounted, not yet in service.
    Installed,
    /// In service.
    Commissioned,
    /// Supply disconnected.
    Disconnected,
    /// Out of service for good.
    Retired,
}

impl MeterStatus {
    /// Every status.
    pub const ALL: [MeterStatus; 4] = [
        MeterStatus::Installed,
        MeterStatus::Commissioned,
        MeterStatus::Disconnected,
        MeterStatus::Retired,
    ];

    /// The name used in CSV and logs.
    pub const fn name(self) -> &'static str {
        match self {
            MeterStatus::Installed => "installed",
            MeterStatus::Commissioned => "commissioned",
            MeterStatus::Disconnected => "disconnected",
            MeterStatus::Retired => "retired",
        }
    }

    /// The stored code.
    pub const fn code(self) -> i64 {
        match self {
            MeterStatus::Installed => 1,
            MeterStatus::Commissioned => 2,
            MeterStatus::Disconnected => 3,
            MeterStatus::Retired => 4,
        }
    }

    /// The status of a stored code.
    pub fn from_code(code: i64) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.code() == code)
    }

    /// The status of a name (case-insensitive).
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|s| s.name().eq_ignore_ascii_case(name.trim()))
    }

    /// Whether the lifecycle allows going from `self` to `to`.
    pub fn can_become(self, to: MeterStatus) -> bool {
        use MeterStatus::*;
        matches!(
            (self, to),
            (Installed, Commissioned)
                | (Commissioned, Disconnected)
                | (Disconnected, Commissioned)
                | (Installed | Commissioned | Disconnected, Retired)
        )
    }
}

impl fmt::Display for MeterStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One meter of the registry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Meter {
    /// The utility's serial number, the registry key.
    pub serial: String,
    /// Manufacturer.
    pub manufacturer: String,
    /// Model.
    pub model: String,
    /// Protocol as decoders name it (`dlms`, `mbus`, ...).
    pub protocol: String,
    /// DLMS system title, lower-case hex (how the DLMS decoder names the meter).
    pub dlms_system_title: Option<String>,
    /// M-Bus identity `MMM-IIIIIIII` (how the M-Bus decoder names the meter).
    pub mbus_address: Option<String>,
    /// OSGP device id, lower-case hex.
    pub osgp_device_id: Option<String>,
    /// The adapter that reaches it.
    pub adapter: String,
    /// The concentrator in between, if any (empty: none).
    pub concentrator: String,
    /// Service point.
    pub service_point: String,
    /// Customer.
    pub customer: String,
    /// Address or free-text location.
    pub location: String,
    /// Latitude in micro-degrees.
    pub latitude_e6: Option<i64>,
    /// Longitude in micro-degrees.
    pub longitude_e6: Option<i64>,
    /// Feeder.
    pub feeder: String,
    /// Distribution transformer.
    pub transformer: String,
    /// Phase (`A`, `B`, `C`, `ABC`, ...).
    pub phase: String,
    /// Lifecycle status.
    pub status: MeterStatus,
    /// When the status last changed, Unix ms.
    pub status_changed_at_ms: i64,
    /// When it was registered, Unix ms.
    pub created_at_ms: i64,
}

/// The longest identifier (serial, protocol id, topology node) accepted.
pub const MAX_ID_LEN: usize = 128;

impl Meter {
    /// A meter with only a serial and a protocol, installed now; the rest empty.
    pub fn new(serial: &str, protocol: &str) -> Self {
        let now = now_ms();
        Meter {
            serial: serial.to_owned(),
            manufacturer: String::new(),
            model: String::new(),
            protocol: protocol.to_owned(),
            dlms_system_title: None,
            mbus_address: None,
            osgp_device_id: None,
            adapter: String::new(),
            concentrator: String::new(),
            service_point: String::new(),
            customer: String::new(),
            location: String::new(),
            latitude_e6: None,
            longitude_e6: None,
            feeder: String::new(),
            transformer: String::new(),
            phase: String::new(),
            status: MeterStatus::Installed,
            status_changed_at_ms: now,
            created_at_ms: now,
        }
    }

    /// Checks the fields and puts protocol identities in their canonical form (hex lower-case,
    /// empty → none).
    pub fn normalise(&mut self) -> Result<()> {
        check_id("serial", &self.serial)?;
        if self.protocol.trim().is_empty() {
            return Err(HesError::InvalidArgument(format!(
                "meter {}: empty protocol",
                self.serial
            )));
        }
        self.protocol = self.protocol.trim().to_ascii_lowercase();
        let hex_id = |name: &str, v: &mut Option<String>, len: Option<usize>| -> Result<()> {
            if let Some(s) = v.take() {
                let s = s.trim().to_ascii_lowercase();
                if s.is_empty() {
                    return Ok(());
                }
                let ok = s.chars().all(|c| c.is_ascii_hexdigit())
                    && s.len() % 2 == 0
                    && len.is_none_or(|l| s.len() == l);
                if !ok {
                    return Err(HesError::InvalidArgument(format!(
                        "{name} {s:?} is not {} hex digits",
                        len.map_or("an even number of".to_owned(), |l| l.to_string())
                    )));
                }
                *v = Some(s);
            }
            Ok(())
        };
        hex_id("dlms_system_title", &mut self.dlms_system_title, Some(16))?;
        hex_id("osgp_device_id", &mut self.osgp_device_id, None)?;
        if let Some(a) = self.mbus_address.take() {
            let a = a.trim().to_ascii_uppercase();
            if !a.is_empty() {
                check_id("mbus_address", &a)?;
                self.mbus_address = Some(a);
            }
        }
        for (name, v) in [
            ("feeder", &self.feeder),
            ("transformer", &self.transformer),
            ("adapter", &self.adapter),
        ] {
            if !v.is_empty() {
                check_id(name, v)?;
            }
        }
        Ok(())
    }
}

/// Refuses an empty, over-long or control-character identifier.
pub fn check_id(field: &str, v: &str) -> Result<()> {
    if v.is_empty() || v.len() > MAX_ID_LEN || v.chars().any(char::is_control) {
        return Err(HesError::InvalidArgument(format!(
            "{field} {v:?}: 1 to {MAX_ID_LEN} bytes, no control characters"
        )));
    }
    Ok(())
}

/// Which meters a listing returns.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MeterFilter {
    /// Only under this feeder.
    pub feeder: Option<String>,
    /// Only under this transformer.
    pub transformer: Option<String>,
    /// Only in this status.
    pub status: Option<MeterStatus>,
    /// Serials after this one.
    pub after_serial: Option<String>,
    /// At most this many.
    pub limit: u32,
}

/// The default and largest page of a listing.
pub const MAX_PAGE: u32 = 10_000;

/// The name of a key role, as stored and logged.
pub const fn role_name(role: KeyRole) -> &'static str {
    role.name()
}

/// Every key role.
pub const ROLES: [KeyRole; 8] = KeyRole::ALL;

/// The role of a stored name.
pub fn role_from_name(name: &str) -> Option<KeyRole> {
    KeyRole::from_name(name)
}

/// The state of one version of a key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyState {
    /// The version decoders use.
    Active,
    /// Replaced by a rotation; kept (and usable by the host) until its grace period ends.
    Previous,
    /// Past its grace period: ciphertext erased, metadata kept.
    Retired,
}

impl KeyState {
    /// The stored code.
    pub const fn code(self) -> i64 {
        match self {
            KeyState::Active => 1,
            KeyState::Previous => 2,
            KeyState::Retired => 3,
        }
    }

    /// The state of a stored code.
    pub fn from_code(code: i64) -> Option<Self> {
        [KeyState::Active, KeyState::Previous, KeyState::Retired]
            .into_iter()
            .find(|s| s.code() == code)
    }
}

/// What may be said about a key version: never its bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyMetadata {
    /// The meter.
    pub serial: String,
    /// The role.
    pub role: KeyRole,
    /// The version (1, 2, ...).
    pub version: u32,
    /// Its state.
    pub state: KeyState,
    /// When it was stored, Unix ms.
    pub created_at_ms: i64,
    /// For a previous version, when it is retired (Unix ms); else 0.
    pub grace_until_ms: i64,
    /// Which master key wraps it.
    pub master_key_id: String,
    /// Who stored it.
    pub created_by: String,
}

/// A key version as stored: metadata plus the sealed material (ciphertext only).
#[derive(Clone, PartialEq, Eq)]
pub struct KeyRecord {
    /// What may be said about it.
    pub meta: KeyMetadata,
    /// The data key wrapped under the master key (empty once retired).
    pub wrapped_dek: Vec<u8>,
    /// The key encrypted under the data key (empty once retired).
    pub ciphertext: Vec<u8>,
}

impl fmt::Debug for KeyRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyRecord")
            .field("meta", &self.meta)
            .field("wrapped_dek", &"<sealed>")
            .field("ciphertext", &"<sealed>")
            .finish()
    }
}

/// An active key with every name its meter goes by (serial and protocol identities), for the
/// host's key provider.
#[derive(Clone, Debug)]
pub struct ActiveKey {
    /// The names: serial first, then the protocol identities the meter has.
    pub names: Vec<String>,
    /// The record.
    pub record: KeyRecord,
}

/// An event as the bus carries it, to be stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewEvent {
    /// The raw frame's id.
    pub frame: String,
    /// The meter as the decoder named it.
    pub meter: String,
    /// The registry serial it resolves to, if any.
    pub serial: Option<String>,
    /// The kind (`last-gasp`, `power-up`, ...).
    pub kind: String,
    /// When, Unix ms.
    pub ts_ms: i64,
    /// The protocol's code.
    pub code: u32,
    /// The register it came from.
    pub source: Option<String>,
    /// Duration in seconds.
    pub duration_s: u32,
}

/// A stored event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredEvent {
    /// Its id (increasing in storage order).
    pub id: i64,
    /// What was stored.
    pub event: NewEvent,
}

/// Which events a query returns.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EventFilter {
    /// Only of this meter (serial).
    pub serial: Option<String>,
    /// Only of these kinds (empty: any).
    pub kinds: Vec<String>,
    /// After this time (exclusive), Unix ms.
    pub after_ms: Option<i64>,
    /// Until this time (inclusive), Unix ms.
    pub until_ms: Option<i64>,
    /// At most this many (newest first).
    pub limit: u32,
}

impl EventFilter {
    /// Whether `e` passes the filter (the streaming side of a query).
    pub fn matches(&self, e: &NewEvent) -> bool {
        self.serial
            .as_ref()
            .is_none_or(|s| e.serial.as_deref() == Some(s.as_str()))
            && (self.kinds.is_empty() || self.kinds.contains(&e.kind))
            && self.after_ms.is_none_or(|a| e.ts_ms > a)
            && self.until_ms.is_none_or(|u| e.ts_ms <= u)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifecycle_transitions() {
        use MeterStatus::*;
        assert!(Installed.can_become(Commissioned));
        assert!(Commissioned.can_become(Disconnected));
        assert!(Disconnected.can_become(Commissioned));
        assert!(Commissioned.can_become(Retired));
        assert!(!Installed.can_become(Disconnected));
        assert!(!Retired.can_become(Commissioned));
        assert!(!Retired.can_become(Retired));
        assert!(!Commissioned.can_become(Installed));
        for s in MeterStatus::ALL {
            assert_eq!(MeterStatus::from_code(s.code()), Some(s));
            assert_eq!(MeterStatus::parse(s.name()), Some(s));
        }
    }

    #[test]
    fn identities_are_normalised() {
        let mut m = Meter::new("S1", " DLMS ");
        m.dlms_system_title = Some("4D4D4D0000BC614E".into());
        m.mbus_address = Some("kam-12345678".into());
        m.osgp_device_id = Some(String::new());
        m.normalise().unwrap();
        assert_eq!(m.protocol, "dlms");
        assert_eq!(m.dlms_system_title.as_deref(), Some("4d4d4d0000bc614e"));
        assert_eq!(m.mbus_address.as_deref(), Some("KAM-12345678"));
        assert_eq!(m.osgp_device_id, None);
        let mut bad = Meter::new("S2", "dlms");
        bad.dlms_system_title = Some("xyz".into());
        assert!(bad.normalise().is_err());
        assert!(Meter::new("", "dlms").normalise().is_err());
    }
}
