//! Decoding behaviour: framing, checksums, errors, canonical values.

use ami_domain::{Obis, Quality, Quantity, Unit};
use ami_iec62056_21::checksum::{bcc, crc16_arc};
use ami_iec62056_21::{Checksum, DecodeError, decode, parse};

const T: i64 = 1_700_000_000_000;

/// A framed readout: identification, STX, `data`, ETX and its BCC.
fn framed(ident: &str, data: &str) -> Vec<u8> {
    let mut out = format!("/{ident}\r\n\x02{data}\x03").into_bytes();
    let start = out.iter().position(|&b| b == 0x02).unwrap_or_default() + 1;
    let check = bcc(out.get(start..).unwrap_or_default());
    out.push(check);
    out
}

/// A mode D readout with its CRC after `!`.
fn mode_d_crc(text: &str) -> Vec<u8> {
    let crc = crc16_arc(text.as_bytes());
    format!("{text}{crc:04X}\r\n").into_bytes()
}

const DATA: &str = "F.F(00)\r\n0.0.0(12345678)\r\n1.8.0(0001234.5*kWh)2.8.0(0000000.000*kWh)\r\n\
                    1.6.0(02.468*kW)(1703100930)\r\nC.7.0(0012)\r\n!\r\n";

#[test]
fn framed_readout_decodes() -> Result<(), DecodeError> {
    let readout = framed("ISk5MT174-0001", DATA);
    let d = decode(&readout, T)?;
    assert_eq!(d.meter.as_deref(), Some("12345678"));
    let energy = d
        .readings
        .iter()
        .find(|r| r.register == Obis::new(1, 0, 1, 8, 0, 255))
        .ok_or(DecodeError::Malformed("no 1.8.0".into()))?;
    assert_eq!(energy.value, Quantity::new(1_234_500, 0));
    assert_eq!(energy.unit, Unit::WattHour);
    assert_eq!(energy.ts_ms, T);
    assert_eq!(energy.quality, Quality::TIME_FROM_RECEIVER);
    assert_eq!(d.readings.len(), 3);
    let attributes: Vec<(Obis, &str)> =
        d.attributes.iter().map(|(o, v)| (*o, v.as_str())).collect();
    assert_eq!(
        attributes,
        [
            (Obis::new(1, 0, 97, 97, 255, 255), "00"),
            (Obis::new(1, 0, 0, 0, 0, 255), "12345678"),
            (Obis::new(1, 0, 1, 6, 0, 255), "1703100930"),
            (Obis::new(1, 0, 96, 7, 0, 255), "0012"),
        ]
    );
    let r = parse(&readout)?;
    assert_eq!(r.checksum, Checksum::Bcc(*readout.last().unwrap_or(&0)));
    assert!(r.framed);
    let ident = r
        .identification
        .ok_or(DecodeError::Malformed("no ident".into()))?;
    assert_eq!(
        (ident.manufacturer.as_str(), ident.baud_rate()),
        ("ISk", Some(9600))
    );
    Ok(())
}

#[test]
fn bad_bcc_is_a_checksum_error() {
    let mut readout = framed("ABC5X", DATA);
    if let Some(last) = readout.last_mut() {
        *last ^= 0x01;
    }
    assert!(matches!(decode(&readout, T), Err(DecodeError::Checksum(_))));
    // A flipped data bit is caught the same way.
    let mut readout = framed("ABC5X", DATA);
    if let Some(b) = readout.get_mut(20) {
        *b ^= 0x20;
    }
    assert!(matches!(
        decode(&readout, T),
        Err(DecodeError::Checksum(_) | DecodeError::Malformed(_))
    ));
}

#[test]
fn truncated_readouts() {
    let full = framed("ABC5X", DATA);
    // Cut inside the data: no '!' and no ETX.
    let cut = full.get(..40).unwrap_or_default();
    assert!(matches!(decode(cut, T), Err(DecodeError::Truncated(_))));
    // ETX without BCC.
    let cut = full.get(..full.len() - 1).unwrap_or_default();
    assert!(matches!(decode(cut, T), Err(DecodeError::Truncated(_))));
    // Mode D without '!'.
    assert!(matches!(
        decode(b"/ABC5X\r\n\r\n1.8.0(1*kWh)\r\n", T),
        Err(DecodeError::Truncated(_))
    ));
    // Identification only.
    assert!(matches!(
        decode(b"/ABC5X\r\n", T),
        Err(DecodeError::Truncated(_))
    ));
    assert!(matches!(decode(b"", T), Err(DecodeError::Truncated(_))));
    // Half a CRC.
    let crc = mode_d_crc("/ABC5X\r\n\r\n1.8.0(1*kWh)\r\n!");
    let cut = crc.get(..crc.len() - 4).unwrap_or_default();
    assert!(matches!(decode(cut, T), Err(DecodeError::Truncated(_))));
}

#[test]
fn framed_data_without_etx_is_accepted_unverified() -> Result<(), DecodeError> {
    let r = parse(b"/ELS5\\@V9.30 \r\n\x021.8.0(000285.4*kWh)\r\n!\r\n")?;
    assert_eq!(r.checksum, Checksum::Absent);
    assert_eq!(r.data_sets.len(), 1);
    Ok(())
}

#[test]
fn garbage_address_is_malformed() {
    for data in [
        "XYZ(1)\r\n!\r\n",
        "1.8.0(1)\r\n1.8.999(2)\r\n!\r\n",
        "1-0:1.8.0*1*2(3)\r\n!\r\n",
        "1.8.0\r\n(1)!\r\n",
    ] {
        assert!(
            matches!(
                decode(&framed("ABC5X", data), T),
                Err(DecodeError::Malformed(_))
            ),
            "{data:?}"
        );
    }
    assert!(matches!(
        decode(b"\xff\xfe(1)!\r\n", T),
        Err(DecodeError::Malformed(_))
    ));
}

#[test]
fn other_errors() {
    // Bytes after the BCC.
    let mut readout = framed("ABC5X", DATA);
    readout.extend_from_slice(b"junk");
    assert!(matches!(
        decode(&readout, T),
        Err(DecodeError::Malformed(_))
    ));
    // A partial block belongs to the Reassembler.
    assert!(matches!(
        decode(b"/ABC5X\r\n\x021.8.0(1*kWh)\r\n\x04\x00", T),
        Err(DecodeError::Unsupported(_))
    ));
    // A bad identification.
    assert!(matches!(
        decode(b"/A\r\n1.8.0(1)!\r\n", T),
        Err(DecodeError::Malformed(_))
    ));
    // Something other than CR LF ETX after '!'.
    assert!(matches!(
        decode(b"\x021.8.0(1)!X\x03\x00", T),
        Err(DecodeError::Malformed(_))
    ));
}

#[test]
fn mode_d_crc_is_checked() -> Result<(), DecodeError> {
    let text = "/KAM5\r\n\r\n0-0:1.0.0(220408135021W)\r\n1-0:1.8.0(00060995.424*kWh)\r\n!";
    let good = mode_d_crc(text);
    let r = parse(&good)?;
    assert_eq!(r.checksum, Checksum::Crc16(crc16_arc(text.as_bytes())));
    assert!(!r.framed);
    let d = decode(&good, T)?;
    // No serial number data set: the identification names the meter.
    assert_eq!(d.meter.as_deref(), Some("KAM5"));
    assert_eq!(
        d.readings.first().map(|r| r.value),
        Some(Quantity::new(60_995_424, 0))
    );
    let mut bad = good.clone();
    if let Some(b) = bad.get_mut(30) {
        *b = b'9';
    }
    assert!(matches!(decode(&bad, T), Err(DecodeError::Checksum(_))));
    assert!(matches!(
        decode(&[text.as_bytes(), b"12\r\n"].concat(), T),
        Err(DecodeError::Malformed(_))
    ));
    Ok(())
}

#[test]
fn echoes_and_option_select_are_skipped() -> Result<(), DecodeError> {
    let mut readout = b"/?12345678!\r\n".to_vec();
    let body = framed("ABC5X", DATA);
    let (ident, data) = body.split_at(8);
    readout.extend_from_slice(ident);
    readout.extend_from_slice(b"\x06050\r\n");
    readout.extend_from_slice(data);
    assert_eq!(decode(&readout, T)?, decode(&body, T)?);
    Ok(())
}

#[test]
fn meter_prefers_the_serial_number() -> Result<(), DecodeError> {
    let d = decode(
        b"/ITR5EM214\r\n0.0.0(1240007670003202)\r\nC.1(53965555)\r\n0-1:96.1.0(GAS)\r\n!\r\n",
        T,
    )?;
    assert_eq!(d.meter.as_deref(), Some("53965555"));
    let d = decode(b"0-1:96.1.0(GAS)\r\n!\r\n", T)?;
    assert_eq!(d.meter, None);
    Ok(())
}

#[test]
fn values_without_known_units_stay_text() -> Result<(), DecodeError> {
    let d = decode(b"9.4(088*C&082*C)6.33(001.476*m3ph)9.1(0&1&0&-&CV&3&2.14)6.8.1()9.36(2017-01-18&01:36:47)!\r\n", T)?;
    let texts: Vec<&str> = d.attributes.iter().map(|(_, v)| v.as_str()).collect();
    assert_eq!(
        texts,
        [
            "088*C&082*C",
            "0&1&0&-&CV&3&2.14",
            "",
            "2017-01-18&01:36:47"
        ]
    );
    assert_eq!(d.readings.len(), 1);
    assert_eq!(
        d.readings.first().map(|r| r.unit),
        Some(Unit::CubicMetrePerHour)
    );
    Ok(())
}

#[test]
fn latin1_bytes_are_kept() -> Result<(), DecodeError> {
    let d = decode(b"0.0.1(Z\xe4hler)81.7.0(12*\xb0)!\r\n", T)?;
    assert_eq!(
        d.attributes.first().map(|(_, v)| v.as_str()),
        Some("Z\u{e4}hler")
    );
    assert_eq!(d.readings.first().map(|r| r.unit), Some(Unit::Degree));
    Ok(())
}
