//! The LLC header (IEC 62056-46 8.2) in front of APDUs on HDLC and on HAN/M-Bus ports:
//! `E6 E6 00` (command, client to server) and `E6 E7 00` (response, server to client).

/// LLC of a command (client to server).
pub const COMMAND: [u8; 3] = [0xE6, 0xE6, 0x00];
/// LLC of a response or push (server to client).
pub const RESPONSE: [u8; 3] = [0xE6, 0xE7, 0x00];

/// The APDU after an LLC header, or `None` if `bytes` does not start with one.
pub fn strip(bytes: &[u8]) -> Option<&[u8]> {
    bytes
        .strip_prefix(&RESPONSE[..])
        .or_else(|| bytes.strip_prefix(&COMMAND[..]))
}
