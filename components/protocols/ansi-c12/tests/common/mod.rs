//! Builders of C12.19 tables and frames for the tests, from the standard's element lists
//! (each builder names the table layout it follows; see `ami_ansi_c12::tables`).

#![allow(dead_code)]

use ami_ansi_c12::{c1222, packet, psem};

/// ST 0 (`GEN_CONFIG_TBL`, C12.19 Decade 0): little-endian, ISO 7-bit characters, the given
/// `TM_FORMAT`, two's complement integers, the given NI formats, an electricity meter
/// (`NAMEPLATE_TYPE` 2), C12.19 version 1.0, 10 bytes of standard tables used, one byte of
/// standard procedures used.
pub fn st0(tm_format: u8, ni1: u8, ni2: u8) -> Vec<u8> {
    let mut t = vec![
        0x02,                      // FORMAT_CONTROL_1: DATA_ORDER 0 (LE), CHAR_FORMAT 1
        tm_format & 0x07, // FORMAT_CONTROL_2: TM_FORMAT, DATA_ACCESS 0, ID_FORM 0, INT_FORMAT 0
        (ni2 << 4) | (ni1 & 0x0F), // FORMAT_CONTROL_3
    ];
    t.extend_from_slice(b"EE\0\0"); // DEVICE_CLASS
    t.extend_from_slice(&[2, 0, 0x40, 0x40, 1, 0]); // NAMEPLATE..STD_REVISION_NO
    t.extend_from_slice(&[10, 0, 1, 0, 0, 0]); // DIM_STD_TBLS_USED .. NBR_PENDING
    t.extend_from_slice(&[0xFF; 10]); // STD_TBLS_USED
    t.push(0x01); // STD_PROC_USED
    t.extend_from_slice(&[0x00; 10]); // STD_TBLS_WRITE
    t
}

/// ST 1 (`GENERAL_MFG_ID_TBL`): manufacturer, model, versions, 16-character serial.
pub fn st1(manufacturer: &str, model: &str, serial: &str) -> Vec<u8> {
    let pad = |s: &str, n: usize| {
        let mut v = s.as_bytes().to_vec();
        v.resize(n, b' ');
        v
    };
    let mut t = pad(manufacturer, 4);
    t.extend(pad(model, 8));
    t.extend_from_slice(&[1, 2, 3, 4]);
    t.extend(pad(serial, 16));
    t
}

/// A PSEM full write of `table`.
pub fn write_full(table: u16, data: &[u8]) -> Vec<u8> {
    let mut s = vec![0x40];
    s.extend_from_slice(&table.to_be_bytes());
    s.extend(psem::build_table_data(data));
    s
}

/// A PSEM full read request of `table`.
pub fn read_full(table: u16) -> Vec<u8> {
    let mut s = vec![0x30];
    s.extend_from_slice(&table.to_be_bytes());
    s
}

/// A PSEM `ok` read response with `data`.
pub fn read_response(data: &[u8]) -> Vec<u8> {
    let mut s = vec![0x00];
    s.extend(psem::build_table_data(data));
    s
}

/// A C12.22 APDU from a meter whose relative AP title is `.1.2.3`, writing `tables`.
pub fn c1222_push(tables: &[(u16, Vec<u8>)]) -> Vec<u8> {
    let services: Vec<Vec<u8>> = tables.iter().map(|(t, d)| write_full(*t, d)).collect();
    let refs: Vec<&[u8]> = services.iter().map(Vec::as_slice).collect();
    c1222::build(&[1, 2, 3], 7, &refs)
}

/// A C12.18 session capture reading `tables`: request packet, ACK, response packet(s), ACK;
/// responses longer than `max_packet` bytes go as multi-packet messages.
pub fn c1218_capture(tables: &[(u16, Vec<u8>)], max_packet: usize) -> Vec<u8> {
    let mut out = Vec::new();
    let mut toggle = 0u8;
    for (t, d) in tables {
        out.extend(packet::build(0, toggle, 0, &read_full(*t)));
        out.push(packet::ACK);
        toggle ^= 0x20;
        let resp = read_response(d);
        let chunks: Vec<&[u8]> = resp.chunks(max_packet.max(1)).collect();
        if chunks.len() == 1 {
            out.extend(packet::build(0, toggle, 0, &resp));
        } else {
            let n = chunks.len();
            for (i, c) in chunks.iter().enumerate() {
                let first = if i == 0 { 0x40 } else { 0 };
                out.extend(packet::build(
                    0,
                    0x80 | first | toggle,
                    (n - 1 - i) as u8,
                    c,
                ));
                out.push(packet::ACK);
            }
        }
        out.push(packet::ACK);
        toggle ^= 0x20;
    }
    out
}

/// A date and time as `TM_FORMAT` 2 (binary) `LTIME_DATE` bytes.
pub fn ltime_bin(y: u8, mo: u8, d: u8, h: u8, mi: u8, s: u8) -> [u8; 6] {
    [y, mo, d, h, mi, s]
}

/// Milliseconds of a UTC date (20yy).
pub fn ms(y: i64, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> i64 {
    ami_domain::time::unix_ms(2000 + y, mo, d, h, mi, s)
}
