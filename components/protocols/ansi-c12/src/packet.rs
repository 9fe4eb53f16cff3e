//! ANSI C12.18 (and C12.21) packets: the optical-port / modem link layer.
//!
//! ```text
//! <stp 0xEE> <identity> <ctrl> <seq-nbr> <length: u16 BE> <data: length bytes> <crc: u16, low byte first>
//! ```
//!
//! `ctrl` bit 7 says the message spans several packets, bit 6 marks its first packet, bit 5
//! is the toggle bit (duplicate detection); `seq-nbr` counts down to 0 on the last packet.
//! The CRC is CRC-16/X-25 (CCITT polynomial reflected, initial value `FFFF`, final XOR
//! `FFFF`) over every byte from `stp` to the end of `data`, sent low byte first.
//!
//! C12.21 (modem) uses the same packet; its additions (the authenticate service `0x53`,
//! timing setup `0x71`) are PSEM services ([`crate::psem`]), so nothing else happens at
//! this layer.
//!
//! A capture of a session (`split`) is packets back to back, with the one-byte
//! acknowledgements `0x06` (ACK) and `0x15` (NAK) of the other side between them.

use crate::Error;
use crate::read::Reader;

/// The start-of-packet byte.
pub const STP: u8 = 0xEE;
/// Positive acknowledgement of a packet.
pub const ACK: u8 = 0x06;
/// Negative acknowledgement of a packet.
pub const NAK: u8 = 0x15;
/// The largest data length a packet may declare (C12.18: the length field is 16 bits, and
/// negotiation caps it far below; 8 KiB bounds what one packet may make us hold).
pub const MAX_DATA: usize = 8192;

/// CRC-16/X-25 lookup table (reflected polynomial 0x8408).
const CRC_TABLE: [u16; 256] = {
    let mut t = [0u16; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u16;
        let mut bit = 0;
        while bit < 8 {
            c = if c & 1 != 0 {
                (c >> 1) ^ 0x8408
            } else {
                c >> 1
            };
            bit += 1;
        }
        t[i] = c;
        i += 1;
    }
    t
};

/// CRC-16/X-25 of `data` (reflected CCITT, init `FFFF`, xorout `FFFF`), as a number; it is
/// sent low byte first.
pub fn crc16(data: &[u8]) -> u16 {
    !data.iter().fold(0xFFFFu16, |crc, &b| {
        (crc >> 8) ^ CRC_TABLE[usize::from((crc as u8) ^ b)]
    })
}

/// One C12.18 packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Packet<'a> {
    /// The identity byte (which device on a multi-drop line).
    pub identity: u8,
    /// The control byte.
    pub control: u8,
    /// The sequence number (packets still to come after this one).
    pub sequence: u8,
    /// The data (a PSEM request or response, or a part of one).
    pub data: &'a [u8],
    /// The CRC as it was on the wire (wire bytes read big-endian: `crc_hex` of the vectors).
    pub crc_wire: u16,
}

impl Packet<'_> {
    /// The message spans several packets.
    pub fn multi_packet(&self) -> bool {
        self.control & 0x80 != 0
    }
    /// The first packet of a multi-packet message.
    pub fn first_packet(&self) -> bool {
        self.control & 0x40 != 0
    }
    /// The toggle bit.
    pub fn toggle(&self) -> bool {
        self.control & 0x20 != 0
    }
    /// The length field.
    pub fn length(&self) -> usize {
        self.data.len()
    }
}

/// Reads the packet at the start of `frame`; returns it and how many bytes it took.
pub fn parse(frame: &[u8]) -> Result<(Packet<'_>, usize), Error> {
    let mut r = Reader::new(frame);
    let stp = r.u8("C12.18 packet start")?;
    if stp != STP {
        return Err(Error::Start(stp));
    }
    let identity = r.u8("C12.18 identity")?;
    let control = r.u8("C12.18 control")?;
    let sequence = r.u8("C12.18 sequence number")?;
    let length = usize::from(r.u16_be("C12.18 length")?);
    if length > MAX_DATA {
        return Err(Error::malformed(
            "C12.18 packet",
            format!("length {length} above {MAX_DATA}"),
        ));
    }
    if control & 0x1C != 0 {
        return Err(Error::malformed(
            "C12.18 packet",
            format!("reserved control bits set (0x{control:02X})"),
        ));
    }
    let data = r.take(length, "C12.18 packet data")?;
    let end = r.pos();
    let crc_wire = r.u16_be("C12.18 CRC")?;
    let computed = crc16(frame.get(..end).unwrap_or_default()).swap_bytes();
    if computed != crc_wire {
        return Err(Error::Crc {
            got: crc_wire,
            computed,
        });
    }
    Ok((
        Packet {
            identity,
            control,
            sequence,
            data,
            crc_wire,
        },
        r.pos(),
    ))
}

/// The packets of a capture: packets back to back, ACK/NAK bytes between them skipped.
pub fn split(mut frame: &[u8]) -> Result<Vec<Packet<'_>>, Error> {
    let mut out = Vec::new();
    loop {
        while let Some((&b, rest)) = frame.split_first()
            && (b == ACK || b == NAK)
        {
            frame = rest;
        }
        if frame.is_empty() {
            break;
        }
        let (p, used) = parse(frame)?;
        out.push(p);
        frame = frame.get(used..).unwrap_or_default();
    }
    if out.is_empty() {
        return Err(Error::Truncated {
            what: "C12.18 packet",
            at: 0,
            need: 8,
            have: 0,
        });
    }
    Ok(out)
}

/// A message put together from its packets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    /// The identity byte of its packets.
    pub identity: u8,
    /// How many packets it took.
    pub packets: usize,
    /// The PSEM bytes.
    pub data: Vec<u8>,
    /// The message's last packet never came (a capture cut inside a multi-packet message).
    pub incomplete: bool,
}

/// Puts messages together: a single packet is a message; a multi-packet message runs from
/// its first packet to the packet with sequence number 0. A packet repeated with the same
/// toggle bit (a retransmission after a lost ACK) counts once.
pub fn reassemble(packets: &[Packet<'_>]) -> Vec<Message> {
    let mut out: Vec<Message> = Vec::new();
    let mut open: Option<Message> = None;
    let mut last: Option<(u8, u8, u8)> = None;
    for p in packets {
        let key = (p.control, p.sequence, p.data.first().copied().unwrap_or(0));
        if last == Some(key) && p.multi_packet() {
            continue;
        }
        last = Some(key);
        if !p.multi_packet() {
            if let Some(mut m) = open.take() {
                m.incomplete = true;
                out.push(m);
            }
            out.push(Message {
                identity: p.identity,
                packets: 1,
                data: p.data.to_vec(),
                incomplete: false,
            });
            continue;
        }
        if p.first_packet() {
            if let Some(mut m) = open.take() {
                m.incomplete = true;
                out.push(m);
            }
            open = Some(Message {
                identity: p.identity,
                packets: 0,
                data: Vec::new(),
                incomplete: true,
            });
        }
        let m = open.get_or_insert_with(|| Message {
            identity: p.identity,
            packets: 0,
            data: Vec::new(),
            incomplete: true,
        });
        m.packets += 1;
        m.data.extend_from_slice(p.data);
        if p.sequence == 0 {
            m.incomplete = false;
            if let Some(m) = open.take() {
                out.push(m);
            }
        }
    }
    if let Some(m) = open {
        out.push(m);
    }
    out
}

/// Builds a packet around `data` (tests, examples and simulators).
pub fn build(identity: u8, control: u8, sequence: u8, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + 8);
    out.extend_from_slice(&[STP, identity, control, sequence]);
    out.extend_from_slice(&(data.len().min(usize::from(u16::MAX)) as u16).to_be_bytes());
    out.extend_from_slice(data);
    out.extend_from_slice(&crc16(&out).to_le_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ident_packet_crc_is_the_published_one() {
        let frame = [0xEE, 0, 0, 0, 0, 1, 0x20, 0x13, 0x10];
        let (p, used) = parse(&frame).unwrap();
        assert_eq!(used, 9);
        assert_eq!(p.crc_wire, 0x1310);
        assert_eq!(build(0, 0, 0, &[0x20]), frame);
    }

    #[test]
    fn crc_check_value() {
        // CRC-16/X-25 check value over "123456789".
        assert_eq!(crc16(b"123456789"), 0x906E);
    }
}
