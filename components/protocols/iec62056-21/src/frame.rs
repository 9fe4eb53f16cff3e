//! The message structure of one readout: echoes of the reader's own messages, the
//! identification message, then the data message, either framed `STX data ! CR LF ETX BCC`
//! (protocol modes A to E) or bare `data ! [CRC] CR LF` (mode D, DSMR-like P1/DLDE pushes),
//! and the check of its BCC or CRC.

use ami_domain::DecodeError;

use crate::checksum::{bcc, crc16_arc};
use crate::dataset::{self, Sink};
use crate::ident::{self, Identification};
use crate::readout::Checksum;

/// Start of text: opens a data message.
pub const STX: u8 = 0x02;
/// End of text: closes the last (or only) block of a data message.
pub const ETX: u8 = 0x03;
/// End of transmission: closes a partial block.
pub const EOT: u8 = 0x04;
/// Acknowledge: opens the reader's option select message.
pub const ACK: u8 = 0x06;

/// The longest reader message echoed back on a half-duplex line that is skipped
/// (`/?` + a 32-character device address + `!` CR LF).
const MAX_ECHO: usize = 40;

/// A readout's message structure; its data sets went to a [`Sink`].
pub(crate) struct Message {
    /// The identification message, if the readout has one.
    pub identification: Option<Identification>,
    /// Whether the data message was framed by STX.
    pub framed: bool,
    /// The checksum carried and verified.
    pub checksum: Checksum,
}

/// Parses one complete readout, its data sets into `sink`.
pub(crate) fn parse<'a, S: Sink<'a>>(
    input: &'a [u8],
    sink: &mut S,
) -> Result<Message, DecodeError> {
    let mut i = skip_preamble(input)?;
    let ident_start = i;
    let identification = if input.get(i) == Some(&b'/') {
        let (identification, next) = ident::parse(input, i)?;
        i = next;
        Some(identification)
    } else {
        None
    };
    i = skip_option_select(input, i)?;
    match input.get(i) {
        None => Err(DecodeError::Truncated(format!(
            "readout ends at byte {i} before its data message"
        ))),
        Some(&STX) => {
            let data_start = i + 1;
            let bang = dataset::parse_block(input, data_start, sink)?;
            let mut j = skip_line_end(input, bang + 1);
            let checksum = match input.get(j) {
                // The data ends with '!' but ETX and BCC are missing: accepted, unverified
                // (several published readouts are stored like this); `checksum` says so.
                None => Checksum::Absent,
                Some(&ETX) => {
                    let sent = *input.get(j + 1).ok_or_else(|| {
                        DecodeError::Truncated(format!(
                            "readout ends after ETX at byte {j}: no BCC"
                        ))
                    })?;
                    let computed = bcc(input.get(data_start..=j).unwrap_or_default());
                    if sent != computed {
                        return Err(DecodeError::Checksum(format!(
                            "BCC 0x{sent:02x} at byte {}, computed 0x{computed:02x} over bytes {data_start}..={j}",
                            j + 1
                        )));
                    }
                    j += 2;
                    Checksum::Bcc(sent)
                }
                Some(&EOT) => {
                    return Err(DecodeError::Unsupported(format!(
                        "partial block (EOT at byte {j}): feed the blocks through Reassembler"
                    )));
                }
                Some(&b) => {
                    return Err(DecodeError::Malformed(format!(
                        "byte 0x{b:02x} at {j} after the end character '!' where CR LF ETX BCC belong"
                    )));
                }
            };
            check_trailing(input, j)?;
            Ok(Message {
                identification,
                framed: true,
                checksum,
            })
        }
        Some(_) => {
            let bang = dataset::parse_block(input, i, sink)?;
            let after = bang + 1;
            let digits = input
                .get(after..)
                .unwrap_or_default()
                .iter()
                .take(4)
                .take_while(|b| b.is_ascii_hexdigit())
                .count();
            let checksum = match digits {
                0 => Checksum::Absent,
                4 => {
                    let sent = input
                        .get(after..after + 4)
                        .and_then(hex16)
                        .ok_or_else(|| DecodeError::Malformed(format!("CRC at byte {after}")))?;
                    // The CRC covers '/' up to and including '!' (the data alone without an
                    // identification message).
                    let from = if identification.is_some() {
                        ident_start
                    } else {
                        i
                    };
                    let computed = crc16_arc(input.get(from..=bang).unwrap_or_default());
                    if sent != computed {
                        return Err(DecodeError::Checksum(format!(
                            "CRC {sent:04X} at byte {after}, computed {computed:04X} over bytes {from}..={bang}"
                        )));
                    }
                    Checksum::Crc16(sent)
                }
                n if after + n == input.len() => {
                    return Err(DecodeError::Truncated(format!(
                        "readout ends at byte {} inside the CRC after '!'",
                        after + n
                    )));
                }
                n => {
                    return Err(DecodeError::Malformed(format!(
                        "{n} hex digits after '!' at byte {bang}: a CRC has 4"
                    )));
                }
            };
            check_trailing(input, skip_line_end(input, after + digits))?;
            Ok(Message {
                identification,
                framed: false,
                checksum,
            })
        }
    }
}

/// Skips line ends, NULs and echoed request messages (`/?address!` CR LF) before the
/// identification message; returns the index of its `/` (or of the data message).
fn skip_preamble(input: &[u8]) -> Result<usize, DecodeError> {
    let mut i = 0;
    loop {
        match (input.get(i), input.get(i + 1)) {
            (Some(b'\r' | b'\n' | 0), _) => i += 1,
            (Some(b'/'), Some(b'?')) => i = skip_line(input, i, "request message")?,
            (Some(b'/'), None) => {
                return Err(DecodeError::Truncated(format!(
                    "readout ends at byte {} after '/'",
                    i + 1
                )));
            }
            _ => return Ok(i),
        }
    }
}

/// Skips line ends and echoed option select messages (ACK V Z Y CR LF) between the
/// identification and the data message.
fn skip_option_select(input: &[u8], mut i: usize) -> Result<usize, DecodeError> {
    loop {
        match input.get(i) {
            Some(b'\r' | b'\n') => i += 1,
            Some(&ACK) => i = skip_line(input, i, "option select message")?,
            _ => return Ok(i),
        }
    }
}

/// The index after the LF ending the echoed reader message that starts at `start`.
fn skip_line(input: &[u8], start: usize, what: &str) -> Result<usize, DecodeError> {
    let rest = input.get(start..).unwrap_or_default();
    match rest.iter().take(MAX_ECHO).position(|&b| b == b'\n') {
        Some(lf) => Ok(start + lf + 1),
        None if rest.len() < MAX_ECHO => Err(DecodeError::Truncated(format!(
            "readout ends inside the echoed {what} at byte {start}"
        ))),
        None => Err(DecodeError::Malformed(format!(
            "echoed {what} at byte {start} has no line end within {MAX_ECHO} bytes"
        ))),
    }
}

/// Skips an optional CR LF (or a lone CR or LF) at `i`.
fn skip_line_end(input: &[u8], mut i: usize) -> usize {
    if input.get(i) == Some(&b'\r') {
        i += 1;
    }
    if input.get(i) == Some(&b'\n') {
        i += 1;
    }
    i
}

/// Only line ends and NULs may follow a readout.
fn check_trailing(input: &[u8], from: usize) -> Result<(), DecodeError> {
    let rest = input.get(from..).unwrap_or_default();
    match rest.iter().position(|b| !matches!(b, b'\r' | b'\n' | 0)) {
        None => Ok(()),
        Some(k) => Err(DecodeError::Malformed(format!(
            "{} trailing bytes from byte {} after the end of the readout",
            rest.len() - k,
            from + k
        ))),
    }
}

/// Four hex digits as a number.
fn hex16(digits: &[u8]) -> Option<u16> {
    std::str::from_utf8(digits)
        .ok()
        .and_then(|s| u16::from_str_radix(s, 16).ok())
}
