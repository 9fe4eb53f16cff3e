//! The registers of ami's attributes for C12 frames. OBIS reserves C = 128-199 for
//! manufacturer- (here: protocol-) specific use; ami uses `0-0:128.D.E` for the structure of
//! C12 frames, with D the layer (18 packet, 20 PSEM, 22 C12.22, 19 table model, 14 OSGP),
//! and standard OBIS codes where one exists (meter identity, clock, firmware).

use ami_domain::Obis;

const fn o(c: u8, d: u8, e: u8) -> Obis {
    Obis::new(0, 0, c, d, e, 255)
}

/// C12.18 packet: identity byte (decimal).
pub const IDENTITY: Obis = o(128, 18, 1);
/// C12.18 packet: control byte (2 hex digits).
pub const CONTROL: Obis = o(128, 18, 2);
/// C12.18 packet: sequence number (decimal).
pub const SEQUENCE: Obis = o(128, 18, 3);
/// C12.18 packet: length field (decimal).
pub const LENGTH: Obis = o(128, 18, 4);
/// C12.18 packet: data (hex).
pub const PACKET_DATA: Obis = o(128, 18, 5);
/// C12.18 packet: CRC as on the wire (4 hex digits, low byte first).
pub const CRC: Obis = o(128, 18, 6);
/// A multi-packet message, reassembled (hex).
pub const MESSAGE: Obis = o(128, 18, 7);
/// A multi-packet message whose last packet is not in the frame (how many packets are).
pub const INCOMPLETE: Obis = o(128, 18, 8);
/// PSEM service: request name (`read-full`, ...) or response code name (`ok`, `isc`, ...).
pub const SERVICE: Obis = o(128, 20, 1);
/// PSEM table id (decimal; 2048 + n for manufacturer table n).
pub const TABLE: Obis = o(128, 20, 2);
/// PSEM offset (decimal).
pub const OFFSET: Obis = o(128, 20, 3);
/// PSEM count (decimal): bytes requested, or bytes of table data carried.
pub const COUNT: Obis = o(128, 20, 4);
/// PSEM table data (hex).
pub const DATA: Obis = o(128, 20, 5);
/// PSEM table data checksum (decimal).
pub const CKSUM: Obis = o(128, 20, 6);
/// Which checksum form matched (`standard` or `ones-complement`).
pub const CKSUM_FORM: Obis = o(128, 20, 7);
/// What an error response code means.
pub const MEANING: Obis = o(128, 20, 8);
/// Logon user id.
pub const USER_ID: Obis = o(128, 20, 9);
/// C12.22 called AP title.
pub const CALLED: Obis = o(128, 22, 1);
/// C12.22 calling AP title.
pub const CALLING: Obis = o(128, 22, 2);
/// C12.22 calling AP invocation id.
pub const INVOCATION: Obis = o(128, 22, 3);
/// C12.22 EPSEM control byte (hex).
pub const EPSEM_CONTROL: Obis = o(128, 22, 4);
/// C12.22 ED class (hex).
pub const ED_CLASS: Obis = o(128, 22, 5);
/// Where the table formats came from (present when ST 0 was not in the frame).
pub const CONFIG: Obis = o(128, 19, 0);
/// A table the decoder carries but does not interpret (`ST n: k bytes`, `MT n: k bytes`).
pub const UNREAD_TABLE: Obis = o(128, 19, 1);
/// ST 0 standard version and revision.
pub const STD_VERSION: Obis = o(128, 19, 2);
/// ST 55 current summation tier.
pub const TIER: Obis = Obis::new(0, 0, 96, 14, 0, 255);
/// OSGP security form.
pub const OSGP_SECURITY: Obis = o(128, 14, 1);
/// OSGP sequence number.
pub const OSGP_SEQUENCE: Obis = o(128, 14, 2);
/// OSGP BT03 alarms (the source of their events).
pub const OSGP_ALARMS: Obis = o(128, 14, 3);
/// OSGP ET79, the alternate event log (the source of its events).
pub const OSGP_ALT_EVENT_LOG: Obis = o(128, 14, 4);
/// OSGP BT28 present values that have no OBIS code (how many).
pub const OSGP_UNREAD_PRESENT: Obis = o(128, 14, 5);
/// OSGP BT23 source 4, Power Outage Duration (s).
pub const OSGP_OUTAGE_DURATION: Obis = o(128, 14, 10);
/// OSGP BT23 source 5, Power Outage Qty.
pub const OSGP_OUTAGE_COUNT: Obis = o(128, 14, 11);
/// OSGP BT23 source 8, Pulse Input 1.
pub const OSGP_PULSE_1: Obis = o(128, 14, 14);
/// OSGP BT23 source 9, Pulse Input 2.
pub const OSGP_PULSE_2: Obis = o(128, 14, 15);
/// OSGP BT23 source 10, Error Counter.
pub const OSGP_ERROR_COUNTER: Obis = o(128, 14, 16);
/// ST 1 `MFG_SERIAL_NUMBER` (the meter id).
pub const SERIAL: Obis = Obis::new(0, 0, 96, 1, 0, 255);
/// ST 1 `MANUFACTURER`.
pub const MANUFACTURER: Obis = Obis::new(0, 0, 96, 1, 1, 255);
/// ST 1 `ED_MODEL`.
pub const MODEL: Obis = Obis::new(0, 0, 96, 1, 2, 255);
/// ST 1 firmware version.revision.
pub const FIRMWARE: Obis = Obis::new(0, 0, 0, 2, 0, 255);
/// ST 1 hardware version.revision.
pub const HARDWARE: Obis = Obis::new(0, 0, 0, 2, 1, 255);
/// ST 52 / ST 55 clock (RFC 3339; the meter's local time unless its GMT flag is set).
pub const CLOCK: Obis = Obis::new(0, 0, 1, 0, 0, 255);
/// ST 23 `NBR_DEMAND_RESETS`.
pub const DEMAND_RESETS: Obis = Obis::new(1, 0, 0, 1, 0, 255);
/// The source of ST 74 events.
pub const HISTORY_LOG: Obis = Obis::new(0, 0, 99, 98, 74, 255);
/// The source of ST 76 events.
pub const EVENT_LOG: Obis = Obis::new(0, 0, 99, 98, 76, 255);
