//! Reassembly of readouts from partial blocks, byte streams and echoes.

use ami_iec62056_21::checksum::{bcc, crc16_arc};
use ami_iec62056_21::{DecodeError, Reassembler, decode};

const T: i64 = 1_700_000_000_000;

/// `STX data end BCC`.
fn block(data: &str, end: u8) -> Vec<u8> {
    let mut out = vec![0x02];
    out.extend_from_slice(data.as_bytes());
    out.push(end);
    out.push(bcc(out.get(1..).unwrap_or_default()));
    out
}

const IDENT: &[u8] = b"/LGZ5\\2ZMD4104407.B31\r\n";
const PARTS: [&str; 3] = [
    "F.F(00000000)\r\n0.0.0(1240007670003202)\r\n1.8.1(022",
    "108.7*kWh)\r\n1.8.2(000000.0*kWh)\r\n2.8.1(010452.0*kWh)\r\n",
    "C.1(53965555)\r\n!\r\n",
];

/// The readout as one block.
fn whole() -> Vec<u8> {
    [IDENT, &block(&PARTS.concat(), 0x03)].concat()
}

/// The readout as three blocks, the reader's ACKs echoed between them.
fn blocks() -> Vec<Vec<u8>> {
    vec![
        [IDENT, &block(PARTS[0], 0x04)].concat(),
        [b"\x06".as_slice(), &block(PARTS[1], 0x04)].concat(),
        [b"\x06".as_slice(), &block(PARTS[2], 0x03)].concat(),
    ]
}

fn all(r: &mut Reassembler, frames: &[Vec<u8>]) -> Vec<Result<Vec<u8>, DecodeError>> {
    let mut out: Vec<_> = frames.iter().flat_map(|f| r.push(f)).collect();
    out.extend(r.finish());
    out
}

#[test]
fn partial_blocks_join_into_one_readout() -> Result<(), DecodeError> {
    let mut r = Reassembler::new();
    let frames = blocks();
    let first = frames.first().map(|f| r.push(f)).unwrap_or_default();
    assert!(first.is_empty());
    let second = frames.get(1).map(|f| r.push(f)).unwrap_or_default();
    assert!(second.is_empty());
    let mut last = frames.get(2).map(|f| r.push(f)).unwrap_or_default();
    assert_eq!(last.len(), 1);
    let readout = last
        .pop()
        .unwrap_or(Err(DecodeError::Truncated("none".into())))?;
    assert_eq!(readout, whole());
    let d = decode(&readout, T)?;
    assert_eq!(d.meter.as_deref(), Some("53965555"));
    assert_eq!(d.readings.len(), 3);
    assert_eq!(r.buffered(), 0);
    Ok(())
}

#[test]
fn any_chunking_gives_the_same_readout() {
    let stream: Vec<u8> = blocks().concat();
    for size in [1, 2, 3, 7, 64, stream.len()] {
        let mut r = Reassembler::new();
        let chunks: Vec<Vec<u8>> = stream.chunks(size).map(<[u8]>::to_vec).collect();
        assert_eq!(all(&mut r, &chunks), vec![Ok(whole())], "chunk size {size}");
    }
}

#[test]
fn a_bad_block_is_dropped_and_its_repetition_accepted() {
    let frames = blocks();
    let mut damaged = frames.get(1).cloned().unwrap_or_default();
    if let Some(b) = damaged.get_mut(5) {
        *b ^= 0x01;
    }
    let mut r = Reassembler::new();
    let mut out = Vec::new();
    for f in [frames.first(), Some(&damaged), frames.get(1), frames.get(2)]
        .into_iter()
        .flatten()
    {
        out.extend(r.push(f));
    }
    assert_eq!(out.len(), 2);
    assert!(matches!(out.first(), Some(Err(DecodeError::Checksum(_)))));
    assert_eq!(out.get(1), Some(&Ok(whole())));
}

#[test]
fn echoes_noise_and_several_readouts_in_one_push() {
    let mode_d = "/KAM5\r\n\r\n1-0:1.8.0(00060995.424*kWh)\r\n!";
    let crc = crc16_arc(mode_d.as_bytes());
    let mode_d = format!("{mode_d}{crc:04X}\r\n").into_bytes();
    let stream = [
        b"\x00noise/?!\r\n".as_slice(),
        IDENT,
        b"\x06050\r\n",
        &block(&PARTS.concat(), 0x03),
        b"\r\n\x15",
        &mode_d,
    ]
    .concat();
    let mut r = Reassembler::new();
    let out = r.push(&stream);
    assert_eq!(out, vec![Ok(whole()), Ok(mode_d)]);
    assert_eq!(r.finish(), None);
}

#[test]
fn mode_d_without_line_end_needs_finish() -> Result<(), DecodeError> {
    let text = "/LGF5E360\r\n\r\n1-0:1.8.0(00000896.020*kWh)\r\n!";
    let readout = format!("{text}{:04X}", crc16_arc(text.as_bytes())).into_bytes();
    let mut r = Reassembler::new();
    assert!(r.push(&readout).is_empty());
    let out = r
        .finish()
        .unwrap_or(Err(DecodeError::Truncated("none".into())))?;
    assert_eq!(out, readout);
    decode(&out, T)?;
    // The next readout's '/' also ends it.
    let mut r = Reassembler::new();
    let out = r.push(&[readout.as_slice(), b"/"].concat());
    assert_eq!(out, vec![Ok(readout)]);
    Ok(())
}

#[test]
fn cut_streams_and_oversized_readouts() {
    let mut r = Reassembler::new();
    let frames = blocks();
    let _ = frames.first().map(|f| r.push(f));
    assert!(matches!(r.finish(), Some(Err(DecodeError::Truncated(_)))));
    // A new identification abandons the readout in progress.
    let _ = frames.first().map(|f| r.push(f));
    let out = r.push(IDENT);
    assert!(matches!(out.first(), Some(Err(DecodeError::Truncated(_)))));

    let mut small = Reassembler::with_limit(32);
    let out = small.push(&whole());
    assert!(matches!(out.first(), Some(Err(DecodeError::Malformed(_)))));
    assert!(small.buffered() <= 32);
}
