//! The iM871A's device management messages the receiver configures the dongle with (ping,
//! device information, `SET_CONFIG`): message ids, the parameter block's layout, the
//! request encoders and the parsers of the answers. Pure byte work; [`crate::setup`] does
//! the talking.
//!
//! # Sources
//!
//! IMST's "WMBus HCI Specification" (V1.6) was not at hand; the layout below is what several
//! independent hosts of real iM871A dongles agree on, checked against bytes real dongles sent:
//!
//! * message ids of the device management endpoint (`0x01`): wmbusmeters
//!   `src/wmbus_im871a.h` (which names the spec as its source), the OpenMUC jmbus
//!   `WMBusConnectionImst`, and two Python hosts; they agree;
//! * `SET_CONFIG_REQ` payload `NVM flag | IIFlag1 | fields | IIFlag2 | fields`, with the
//!   field order and bits of both flags below: wmbusmeters (`Config::decode` and its
//!   `deviceSetLinkModes`), jmbus (`initializeWirelessTransceiver`), pywirelessmbus (its
//!   `GET_CONFIG_RSP` decoder); device mode `0` is "other" (a receiver), `1` "meter"
//!   (wmbusmeters, pywirelessmbus, an F# host);
//! * link mode codes `S1 0, S1-m 1, S2 2, T1 3, T2 4, R2 5, C1 format A 6, C1 format B 7,
//!   C2 A 8, C2 B 9`, and `0x0A` (the iM170A's N1a slot) for "C1 and T1 at once" on iM871A
//!   firmware `0x14` and later: wmbusmeters (`LinkModeIM871A`, `canSetLinkModes`);
//! * `GET_DEVICEINFO_RSP` payload `module type | device mode | firmware | HCI version |
//!   device id (u32 LE)`, module `0x33` iM871A, `0x36` iM170A: wmbusmeters `DeviceInfo`, the
//!   F# host, and a real dongle's answer `33 00 13 01 F1 3A 00 00` quoted in wmbusmeters
//!   issue #951;
//! * a real dongle answers `PING_REQ` with an empty `PING_RSP` and `SET_CONFIG_REQ` with an
//!   empty `SET_CONFIG_RSP`, both closed by a CRC-16 although the requests had none
//!   (wmbusmeters issue #72: `A5 81 02 00 4C A3`, `A5 81 04 00 9C F7`). Other IMST WiMOD
//!   modules answer with a status byte (`0x00` ok, `0x01` error, `0x02` command not
//!   supported, `0x03` wrong parameter: IMST's WiMOD LR Base HCI, as WiMOD hosts define it);
//!   so an answer with a payload is read as a status byte, an empty one as success.
//!
//! Not confirmed by any source: a `SET_CONFIG` switch for the CRC-16 attachment. `IIFlag2`'s
//! eight bits are all taken (power level, data rate, RX window, auto power saving, RSSI, time
//! stamp, LED, RTC), and the dongles quoted above attach the CRC to every frame they send
//! unasked. So the receiver asks for RSSI and time stamp, and checks that the answers it got
//! carried a CRC before it requires one on every frame ([`crate::receiver::CrcPolicy`]).
//! Requests go without CRC, as wmbusmeters and jmbus send them to real dongles.

use std::fmt;

use crate::hci::{DEVMGMT, HciFrame};

/// Device management: ping.
pub const PING_REQ: u8 = 0x01;
/// Device management: answer to a ping.
pub const PING_RSP: u8 = 0x02;
/// Device management: set the configuration.
pub const SET_CONFIG_REQ: u8 = 0x03;
/// Device management: answer to `SET_CONFIG_REQ`.
pub const SET_CONFIG_RSP: u8 = 0x04;
/// Device management: read the configuration.
pub const GET_CONFIG_REQ: u8 = 0x05;
/// Device management: answer to `GET_CONFIG_REQ`.
pub const GET_CONFIG_RSP: u8 = 0x06;
/// Device management: read the device information.
pub const GET_DEVICEINFO_REQ: u8 = 0x0F;
/// Device management: answer to `GET_DEVICEINFO_REQ`.
pub const GET_DEVICEINFO_RSP: u8 = 0x10;

/// `SET_CONFIG` NVM flag: the configuration holds until the dongle restarts (RAM).
pub const NVM_RAM: u8 = 0x00;
/// `SET_CONFIG` NVM flag: the configuration is also saved to the dongle's flash.
pub const NVM_SAVE: u8 = 0x01;

/// `IIFlag1`: a device mode byte follows.
pub const IIF1_DEVICE_MODE: u8 = 0x01;
/// `IIFlag1`: a link mode byte follows.
pub const IIF1_LINK_MODE: u8 = 0x02;
/// `IIFlag1`: the wM-Bus C field (1 byte) follows.
pub const IIF1_C_FIELD: u8 = 0x04;
/// `IIFlag1`: the wM-Bus manufacturer id (2 bytes, LE) follows.
pub const IIF1_MAN_ID: u8 = 0x08;
/// `IIFlag1`: the wM-Bus device id (4 bytes, LE) follows.
pub const IIF1_DEVICE_ID: u8 = 0x10;
/// `IIFlag1`: the wM-Bus version (1 byte) follows.
pub const IIF1_VERSION: u8 = 0x20;
/// `IIFlag1`: the wM-Bus device type (1 byte) follows.
pub const IIF1_DEVICE_TYPE: u8 = 0x40;
/// `IIFlag1`: the radio channel (1 byte) follows.
pub const IIF1_RADIO_CHANNEL: u8 = 0x80;

/// `IIFlag2`: the radio power level (1 byte) follows.
pub const IIF2_POWER_LEVEL: u8 = 0x01;
/// `IIFlag2`: the radio data rate (1 byte) follows.
pub const IIF2_DATA_RATE: u8 = 0x02;
/// `IIFlag2`: the RX window (1 byte, ms) follows.
pub const IIF2_RX_WINDOW: u8 = 0x04;
/// `IIFlag2`: auto power saving (1 byte, on/off) follows.
pub const IIF2_AUTO_POWER_SAVING: u8 = 0x08;
/// `IIFlag2`: RSSI attachment to received messages (1 byte, on/off) follows.
pub const IIF2_AUTO_RSSI: u8 = 0x10;
/// `IIFlag2`: time stamp attachment to received messages (1 byte, on/off) follows.
pub const IIF2_AUTO_TIMESTAMP: u8 = 0x20;
/// `IIFlag2`: LED control (1 byte) follows.
pub const IIF2_LED_CONTROL: u8 = 0x40;
/// `IIFlag2`: RTC control (1 byte) follows.
pub const IIF2_RTC_CONTROL: u8 = 0x80;

/// Device mode "other": the dongle receives (a collector), as opposed to acting as a meter.
pub const DEVICE_MODE_OTHER: u8 = 0x00;
/// Device mode "meter".
pub const DEVICE_MODE_METER: u8 = 0x01;

/// Module type of an iM871A in `GET_DEVICEINFO_RSP`.
pub const MODULE_IM871A: u8 = 0x33;
/// Module type of an iM170A.
pub const MODULE_IM170A: u8 = 0x36;

/// The first iM871A firmware that listens to C1 and T1 at once.
pub const FIRMWARE_C1_T1: u8 = 0x14;

/// A wireless M-Bus link mode the dongle can listen in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LinkMode {
    /// S1 (stationary, 32.768 kchip/s, 868.3 MHz).
    S1,
    /// S1-m.
    S1m,
    /// T1 (frequent transmit, 868.95 MHz).
    T1,
    /// C1, telegram format A (compact).
    C1,
    /// C1 telegram format B.
    C1b,
    /// C1 and T1 at once (iM871A firmware `0x14` and later): what OMS meters use.
    C1T1,
}

impl LinkMode {
    /// Every link mode, in the order of their codes.
    pub const ALL: [LinkMode; 6] = [
        LinkMode::S1,
        LinkMode::S1m,
        LinkMode::T1,
        LinkMode::C1,
        LinkMode::C1b,
        LinkMode::C1T1,
    ];

    /// The dongle's code for it.
    pub const fn code(self) -> u8 {
        match self {
            LinkMode::S1 => 0x00,
            LinkMode::S1m => 0x01,
            LinkMode::T1 => 0x03,
            LinkMode::C1 => 0x06,
            LinkMode::C1b => 0x07,
            LinkMode::C1T1 => 0x0A,
        }
    }

    /// The link mode of a code, if it is one of these.
    pub fn from_code(code: u8) -> Option<LinkMode> {
        LinkMode::ALL.into_iter().find(|m| m.code() == code)
    }

    /// Its name (`c1-t1`, ...), as the command line takes it.
    pub const fn name(self) -> &'static str {
        match self {
            LinkMode::S1 => "s1",
            LinkMode::S1m => "s1-m",
            LinkMode::T1 => "t1",
            LinkMode::C1 => "c1",
            LinkMode::C1b => "c1b",
            LinkMode::C1T1 => "c1-t1",
        }
    }
}

impl fmt::Display for LinkMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for LinkMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let k = s.trim().to_ascii_lowercase().replace(['_', '/', ','], "-");
        match k.as_str() {
            "s1" => Ok(LinkMode::S1),
            "s1-m" | "s1m" => Ok(LinkMode::S1m),
            "t1" => Ok(LinkMode::T1),
            "c1" | "c1a" => Ok(LinkMode::C1),
            "c1b" => Ok(LinkMode::C1b),
            "c1-t1" | "t1-c1" | "c1t1" | "t1c1" => Ok(LinkMode::C1T1),
            _ => Err(format!(
                "unknown link mode {s:?} (s1, s1-m, t1, c1, c1b, c1-t1)"
            )),
        }
    }
}

/// The configuration the receiver puts into the dongle.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DongleSettings {
    /// The link mode to listen in.
    pub link_mode: LinkMode,
    /// Save to the dongle's flash too (else RAM only, lost when it restarts).
    pub save: bool,
}

impl Default for DongleSettings {
    fn default() -> Self {
        DongleSettings {
            link_mode: LinkMode::C1T1,
            save: false,
        }
    }
}

/// The parameter block of `SET_CONFIG_REQ` (after the NVM flag) and `GET_CONFIG_RSP`: the
/// fields the receiver sets or reads; a field is present when its `IIFlag` bit is set.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConfigBlock {
    /// Device mode ([`DEVICE_MODE_OTHER`] or [`DEVICE_MODE_METER`]).
    pub device_mode: Option<u8>,
    /// Link mode code ([`LinkMode::code`]).
    pub link_mode: Option<u8>,
    /// wM-Bus device id of the dongle (it is one when it sends).
    pub device_id: Option<u32>,
    /// RSSI attachment on (1) or off (0).
    pub auto_rssi: Option<u8>,
    /// Time stamp attachment on (1) or off (0).
    pub auto_timestamp: Option<u8>,
    /// `IIFlag1` bits of fields present that this block does not name (read back only).
    pub other_iif1: u8,
    /// `IIFlag2` bits of fields present that this block does not name (read back only).
    pub other_iif2: u8,
}

/// Why an answer from the dongle cannot be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ResponseError {
    /// The payload ends before a field its layout or its flags announce.
    #[error("{what}: {got} bytes, at least {expected} expected")]
    TooShort {
        /// What was being read.
        what: &'static str,
        /// Bytes needed.
        expected: usize,
        /// Bytes there.
        got: usize,
    },
}

/// Size of each `IIFlag1` field, by bit.
const IIF1_SIZES: [(u8, usize); 8] = [
    (IIF1_DEVICE_MODE, 1),
    (IIF1_LINK_MODE, 1),
    (IIF1_C_FIELD, 1),
    (IIF1_MAN_ID, 2),
    (IIF1_DEVICE_ID, 4),
    (IIF1_VERSION, 1),
    (IIF1_DEVICE_TYPE, 1),
    (IIF1_RADIO_CHANNEL, 1),
];

impl ConfigBlock {
    /// The block the receiver sends: device mode "other", the link mode, RSSI and time stamp
    /// attached to every received message.
    pub fn receiver(link_mode: LinkMode) -> ConfigBlock {
        ConfigBlock {
            device_mode: Some(DEVICE_MODE_OTHER),
            link_mode: Some(link_mode.code()),
            device_id: None,
            auto_rssi: Some(1),
            auto_timestamp: Some(1),
            other_iif1: 0,
            other_iif2: 0,
        }
    }

    /// The block on the wire (fields this block does not name are not written).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(12);
        let mut iif1 = 0u8;
        let mut f1 = Vec::new();
        if let Some(m) = self.device_mode {
            iif1 |= IIF1_DEVICE_MODE;
            f1.push(m);
        }
        if let Some(m) = self.link_mode {
            iif1 |= IIF1_LINK_MODE;
            f1.push(m);
        }
        if let Some(id) = self.device_id {
            iif1 |= IIF1_DEVICE_ID;
            f1.extend_from_slice(&id.to_le_bytes());
        }
        out.push(iif1);
        out.extend_from_slice(&f1);
        let mut iif2 = 0u8;
        let mut f2 = Vec::new();
        if let Some(r) = self.auto_rssi {
            iif2 |= IIF2_AUTO_RSSI;
            f2.push(r);
        }
        if let Some(t) = self.auto_timestamp {
            iif2 |= IIF2_AUTO_TIMESTAMP;
            f2.push(t);
        }
        out.push(iif2);
        out.extend_from_slice(&f2);
        out
    }

    /// Reads a block; bytes after it (later extensions) are ignored.
    pub fn decode(bytes: &[u8]) -> Result<ConfigBlock, ResponseError> {
        let mut r = Reader::new(bytes, "configuration block");
        let iif1 = r.byte()?;
        let mut block = ConfigBlock::default();
        for (bit, size) in IIF1_SIZES {
            if iif1 & bit == 0 {
                continue;
            }
            let field = r.take(size)?;
            match bit {
                IIF1_DEVICE_MODE => block.device_mode = field.first().copied(),
                IIF1_LINK_MODE => block.link_mode = field.first().copied(),
                IIF1_DEVICE_ID => {
                    block.device_id = <[u8; 4]>::try_from(field).ok().map(u32::from_le_bytes);
                }
                _ => block.other_iif1 |= bit,
            }
        }
        // Devices that leave out an empty IIFlag2 end here.
        let Some(iif2) = r.maybe_byte() else {
            return Ok(block);
        };
        for bit in (0..8).map(|i| 1u8 << i) {
            if iif2 & bit == 0 {
                continue;
            }
            let v = r.byte()?;
            match bit {
                IIF2_AUTO_RSSI => block.auto_rssi = Some(v),
                IIF2_AUTO_TIMESTAMP => block.auto_timestamp = Some(v),
                _ => block.other_iif2 |= bit,
            }
        }
        Ok(block)
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
    what: &'static str,
}

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8], what: &'static str) -> Self {
        Reader { bytes, at: 0, what }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], ResponseError> {
        let s = self
            .bytes
            .get(self.at..self.at + n)
            .ok_or(ResponseError::TooShort {
                what: self.what,
                expected: self.at + n,
                got: self.bytes.len(),
            })?;
        self.at += n;
        Ok(s)
    }

    fn byte(&mut self) -> Result<u8, ResponseError> {
        Ok(self.take(1)?.first().copied().unwrap_or_default())
    }

    fn maybe_byte(&mut self) -> Option<u8> {
        let b = self.bytes.get(self.at).copied()?;
        self.at += 1;
        Some(b)
    }
}

/// A request to the dongle's device management endpoint, as sent (no attachments).
pub fn request(msg_id: u8, payload: Vec<u8>) -> HciFrame {
    HciFrame {
        endpoint: DEVMGMT,
        msg_id,
        payload,
        timestamp: None,
        rssi: None,
        crc: false,
    }
}

/// `PING_REQ`.
pub fn ping() -> HciFrame {
    request(PING_REQ, Vec::new())
}

/// `GET_DEVICEINFO_REQ`.
pub fn get_device_info() -> HciFrame {
    request(GET_DEVICEINFO_REQ, Vec::new())
}

/// `SET_CONFIG_REQ` putting the dongle into `settings`.
pub fn set_config(settings: &DongleSettings) -> HciFrame {
    let mut payload = vec![if settings.save { NVM_SAVE } else { NVM_RAM }];
    payload.extend(ConfigBlock::receiver(settings.link_mode).encode());
    request(SET_CONFIG_REQ, payload)
}

/// What the dongle says about itself (`GET_DEVICEINFO_RSP`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeviceInfo {
    /// Module type ([`MODULE_IM871A`], [`MODULE_IM170A`]).
    pub module_type: u8,
    /// Device mode in force.
    pub device_mode: u8,
    /// Firmware version (`0x15` reads as 1.5).
    pub firmware: u8,
    /// Version of the HCI protocol.
    pub hci_version: u8,
    /// The module's unique id.
    pub device_id: u32,
}

impl DeviceInfo {
    /// Reads a `GET_DEVICEINFO_RSP` payload; bytes after the eight it needs are ignored.
    pub fn parse(payload: &[u8]) -> Result<DeviceInfo, ResponseError> {
        let mut r = Reader::new(payload, "device information");
        let head = r.take(4)?;
        let id = r.take(4)?;
        let b = |i: usize| head.get(i).copied().unwrap_or_default();
        Ok(DeviceInfo {
            module_type: b(0),
            device_mode: b(1),
            firmware: b(2),
            hci_version: b(3),
            device_id: <[u8; 4]>::try_from(id)
                .map(u32::from_le_bytes)
                .unwrap_or_default(),
        })
    }

    /// The module's name.
    pub fn module(&self) -> String {
        match self.module_type {
            MODULE_IM871A => "iM871A".into(),
            MODULE_IM170A => "iM170A".into(),
            t => format!("module {t:#04x}"),
        }
    }

    /// Whether this dongle can listen in `mode`: C1 and T1 at once needs an iM871A with
    /// firmware [`FIRMWARE_C1_T1`] or later (other modules are left to answer for
    /// themselves).
    pub fn supports(&self, mode: LinkMode) -> bool {
        !(mode == LinkMode::C1T1
            && self.module_type == MODULE_IM871A
            && self.firmware < FIRMWARE_C1_T1)
    }
}

impl fmt::Display for DeviceInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} firmware {}.{} (HCI {:#04x}), device id {:08x}, device mode {}",
            self.module(),
            self.firmware >> 4,
            self.firmware & 0x0F,
            self.hci_version,
            self.device_id,
            match self.device_mode {
                DEVICE_MODE_OTHER => "other",
                DEVICE_MODE_METER => "meter",
                _ => "unknown",
            }
        )
    }
}

/// The status an answer carries: an empty payload is success (what real iM871A dongles send
/// to `PING_REQ` and `SET_CONFIG_REQ`); otherwise its first byte is the status.
pub fn status(payload: &[u8]) -> u8 {
    payload.first().copied().unwrap_or(0)
}

/// What a status byte means (IMST WiMOD device management codes).
pub fn status_meaning(status: u8) -> &'static str {
    match status {
        0x00 => "ok",
        0x01 => "operation failed",
        0x02 => "command not supported",
        0x03 => "wrong parameter",
        0x04 => "wrong device mode",
        _ => "unknown status",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hci::{Piece, Splitter};
    use proptest::prelude::*;

    #[test]
    fn requests_on_the_wire() {
        assert_eq!(ping().encode(), [0xA5, 0x01, 0x01, 0x00]);
        assert_eq!(get_device_info().encode(), [0xA5, 0x01, 0x0F, 0x00]);
        // NVM RAM, IIFlag1 = device mode + link mode, other, C1/T1, IIFlag2 = RSSI + time
        // stamp, both on.
        assert_eq!(
            set_config(&DongleSettings::default()).encode(),
            [
                0xA5, 0x01, 0x03, 0x07, 0x00, 0x03, 0x00, 0x0A, 0x30, 0x01, 0x01
            ]
        );
        let s = DongleSettings {
            link_mode: LinkMode::T1,
            save: true,
        };
        assert_eq!(
            set_config(&s).encode(),
            [
                0xA5, 0x01, 0x03, 0x07, 0x01, 0x03, 0x00, 0x03, 0x30, 0x01, 0x01
            ]
        );
    }

    #[test]
    fn link_mode_names_and_codes() {
        for m in LinkMode::ALL {
            assert_eq!(LinkMode::from_code(m.code()), Some(m));
            assert_eq!(m.name().parse::<LinkMode>(), Ok(m));
        }
        assert_eq!("C1/T1".parse::<LinkMode>(), Ok(LinkMode::C1T1));
        assert_eq!("t1,c1".parse::<LinkMode>(), Ok(LinkMode::C1T1));
        assert!("n1a".parse::<LinkMode>().is_err());
        assert_eq!(LinkMode::from_code(0x02), None);
    }

    /// Bytes real dongles sent (wmbusmeters issues #72 and #951): the CRC, the splitter and
    /// the parsers agree with them.
    #[test]
    fn real_dongle_answers() {
        let stream = [
            "A58102004CA3",
            "A58104009CF7",
            "A581100833001301F13A000053D9",
            "A5810617FF000700B32512351000010001FF07023200010000000063C9",
        ]
        .iter()
        .flat_map(|h| {
            (0..h.len() / 2)
                .map(|i| u8::from_str_radix(&h[2 * i..2 * i + 2], 16).unwrap())
                .collect::<Vec<_>>()
        })
        .collect::<Vec<u8>>();
        let frames: Vec<_> = Splitter::new(true)
            .push(&stream)
            .into_iter()
            .map(|p| match p {
                Piece::Frame(f) => f,
                Piece::Rejected { reason, .. } => panic!("{reason}"),
            })
            .collect();
        assert_eq!(
            frames.iter().map(|f| f.msg_id).collect::<Vec<_>>(),
            [PING_RSP, SET_CONFIG_RSP, GET_DEVICEINFO_RSP, GET_CONFIG_RSP]
        );
        assert!(frames.iter().all(|f| f.crc && f.endpoint == DEVMGMT));
        assert_eq!(status(&frames[0].payload), 0);
        assert_eq!(status(&frames[1].payload), 0);
        let info = DeviceInfo::parse(&frames[2].payload).unwrap();
        assert_eq!(
            info,
            DeviceInfo {
                module_type: MODULE_IM871A,
                device_mode: DEVICE_MODE_OTHER,
                firmware: 0x13,
                hci_version: 0x01,
                device_id: 0x0000_3AF1,
            }
        );
        assert!(!info.supports(LinkMode::C1T1));
        assert!(info.supports(LinkMode::C1));
        assert_eq!(
            info.to_string(),
            "iM871A firmware 1.3 (HCI 0x01), device id 00003af1, device mode other"
        );
        let cfg = ConfigBlock::decode(&frames[3].payload).unwrap();
        assert_eq!(cfg.device_mode, Some(DEVICE_MODE_OTHER));
        assert_eq!(cfg.link_mode, Some(LinkMode::C1b.code()));
        assert_eq!(cfg.device_id, Some(0x0010_3512));
        assert_eq!(cfg.auto_rssi, Some(1));
        assert_eq!(cfg.auto_timestamp, Some(0));
    }

    #[test]
    fn short_answers_are_typed_errors() {
        assert_eq!(
            DeviceInfo::parse(&[0x33, 0, 0x15]),
            Err(ResponseError::TooShort {
                what: "device information",
                expected: 4,
                got: 3
            })
        );
        assert!(matches!(
            DeviceInfo::parse(&[0x33, 0, 0x15, 0x16, 1, 2]),
            Err(ResponseError::TooShort { expected: 8, .. })
        ));
        // IIFlag1 announces a device id that is not there.
        assert!(matches!(
            ConfigBlock::decode(&[IIF1_DEVICE_ID, 1, 2]),
            Err(ResponseError::TooShort { .. })
        ));
        // IIFlag2 announces RSSI and time stamp, one byte comes.
        assert!(matches!(
            ConfigBlock::decode(&[0, 0x30, 1]),
            Err(ResponseError::TooShort { .. })
        ));
        assert!(ConfigBlock::decode(&[]).is_err());
        assert_eq!(status(&[]), 0);
        assert_eq!(status(&[0x01, 0x00]), 1);
        assert_eq!(status_meaning(0x03), "wrong parameter");
    }

    proptest! {
        #[test]
        fn parsers_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = DeviceInfo::parse(&bytes);
            let _ = ConfigBlock::decode(&bytes);
            let _ = status(&bytes);
        }

        #[test]
        fn a_block_reads_back(
            device_mode in proptest::option::of(any::<u8>()),
            link_mode in proptest::option::of(any::<u8>()),
            device_id in proptest::option::of(any::<u32>()),
            auto_rssi in proptest::option::of(any::<u8>()),
            auto_timestamp in proptest::option::of(any::<u8>()),
        ) {
            let b = ConfigBlock { device_mode, link_mode, device_id, auto_rssi, auto_timestamp, other_iif1: 0, other_iif2: 0 };
            prop_assert_eq!(ConfigBlock::decode(&b.encode()), Ok(b.clone()));
            // Cut anywhere before its last field, it is a typed error, not a panic.
            let wire = b.encode();
            for cut in 0..wire.len().saturating_sub(1) {
                let _ = ConfigBlock::decode(&wire[..cut]);
            }
        }

        #[test]
        fn set_config_carries_the_mode(i in 0usize..6, save in any::<bool>()) {
            let s = DongleSettings { link_mode: LinkMode::ALL[i], save };
            let f = set_config(&s);
            let p = Splitter::new(false).push(&f.encode());
            let Some(Piece::Frame(back)) = p.first() else { panic!("{p:?}") };
            prop_assert_eq!(back.payload[0], u8::from(save));
            let block = ConfigBlock::decode(&back.payload[1..]).unwrap();
            prop_assert_eq!(block, ConfigBlock::receiver(LinkMode::ALL[i]));
        }
    }
}
