//! Framing, CRC, leniency and robustness of `ami_dsmr::decode`, on the real telegrams of the
//! vectors file and on random input.

use std::path::Path;
use std::sync::OnceLock;

use ami_domain::{DecodeError, Decoded, Obis, Quality, Quantity, Unit};
use proptest::prelude::*;

const RECEIVED_AT: i64 = 1_700_000_000_000;

/// The plaintext telegrams of the vectors file, by id.
fn telegrams() -> &'static [(String, Vec<u8>)] {
    static TELEGRAMS: OnceLock<Vec<(String, Vec<u8>)>> = OnceLock::new();
    TELEGRAMS.get_or_init(|| {
        let path =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../tests/vectors/dsmr/dsmr.jsonl");
        ami_vectors::load(&path)
            .unwrap_or_default()
            .into_iter()
            .filter(|v| v.frame.first() == Some(&b'/'))
            .map(|v| (v.id, v.frame))
            .collect()
    })
}

fn telegram(id: &str) -> Result<Vec<u8>, String> {
    telegrams()
        .iter()
        .find(|(i, _)| i.ends_with(id))
        .map(|(_, t)| t.clone())
        .ok_or_else(|| format!("no telegram {id}"))
}

fn decode(t: &[u8]) -> Result<Decoded, String> {
    ami_dsmr::decode(t, RECEIVED_AT).map_err(|e| e.to_string())
}

fn obis(text: &str) -> Result<Obis, String> {
    text.parse().map_err(|e| format!("{e}"))
}

/// Rewrites the CRC after the `!` line to match the (edited) telegram; no-op without one.
fn restamp(t: &mut Vec<u8>) {
    let Some(start) = t.iter().position(|&b| b == b'/') else {
        return;
    };
    let Some(bang) = t
        .windows(2)
        .enumerate()
        .skip(start)
        .find(|(_, w)| w == b"\n!")
        .map(|(i, _)| i + 1)
    else {
        return;
    };
    let digits = t
        .iter()
        .skip(bang + 1)
        .take_while(|b| b.is_ascii_hexdigit())
        .count();
    if digits == 0 {
        return;
    }
    let crc = ami_dsmr::crc16(t.get(start..=bang).unwrap_or_default());
    let hex = format!("{crc:04X}");
    t.splice(bang + 1..bang + 1 + digits, hex.bytes());
}

fn replace(t: &[u8], from: &str, to: &str) -> Vec<u8> {
    String::from_utf8_lossy(t).replace(from, to).into_bytes()
}

#[test]
fn crc_mismatch_is_a_checksum_error() -> Result<(), String> {
    let t = replace(&telegram("telegram_v5")?, "!6EEE", "!6EEF");
    let got = ami_dsmr::decode(&t, RECEIVED_AT);
    assert!(
        matches!(&got, Err(DecodeError::Checksum(m)) if m.contains("6EEF") && m.contains("6EEE")),
        "{got:?}"
    );
    Ok(())
}

#[test]
fn a_tampered_value_fails_the_crc() -> Result<(), String> {
    let t = replace(
        &telegram("telegram_v5")?,
        "1-0:1.8.1(000004.426*kWh)",
        "1-0:1.8.1(000004.427*kWh)",
    );
    assert!(matches!(
        ami_dsmr::decode(&t, RECEIVED_AT),
        Err(DecodeError::Checksum(_))
    ));
    // With the CRC recomputed it decodes, to the new value.
    let mut t = t;
    restamp(&mut t);
    let d = decode(&t)?;
    let r = d
        .readings
        .iter()
        .find(|r| r.register == Obis::new(1, 0, 1, 8, 1, 255))
        .ok_or("no 1.8.1")?;
    assert_eq!((r.value, r.unit), (Quantity::new(4427, 0), Unit::WattHour));
    Ok(())
}

#[test]
fn a_telegram_cut_before_its_end_is_truncated() -> Result<(), String> {
    let t = telegram("telegram_v5")?;
    let bang = t.iter().rposition(|&b| b == b'!').ok_or("no !")?;
    for cut in [bang, bang / 2, 1] {
        let got = ami_dsmr::decode(t.get(..cut).unwrap_or_default(), RECEIVED_AT);
        assert!(
            matches!(got, Err(DecodeError::Truncated(_))),
            "cut at {cut}: {got:?}"
        );
    }
    assert!(matches!(
        ami_dsmr::decode(b"", RECEIVED_AT),
        Err(DecodeError::Truncated(_))
    ));
    Ok(())
}

#[test]
fn lf_only_lines_decode_like_crlf() -> Result<(), String> {
    for id in [
        "telegram_v5",
        "telegram_v2_2",
        "telegram_fluvius_v171",
        "telegram_v5_eon_hu",
    ] {
        let crlf = telegram(id)?;
        let mut lf = replace(&crlf, "\r\n", "\n");
        restamp(&mut lf);
        assert_eq!(decode(&lf)?, decode(&crlf)?, "{id}");
    }
    Ok(())
}

#[test]
fn a_three_digit_crc_is_accepted() -> Result<(), String> {
    let d = decode(&telegram("telegram_unpadded_crc")?)?;
    let heat = d
        .readings
        .iter()
        .find(|r| r.register == Obis::new(0, 1, 24, 2, 1, 255))
        .ok_or("no heat reading")?;
    assert_eq!(
        (heat.value, heat.unit),
        (Quantity::new(240_860_000_000, 0), Unit::Joule)
    );
    Ok(())
}

#[test]
fn trailing_bytes_after_the_end_line_are_ignored() -> Result<(), String> {
    // EasyMeter Q3D sends a counter and 0xFF filler after "!\r\n".
    let d = decode(&telegram("esy5q3db1024_v304")?)?;
    assert_eq!(d.readings.len(), 6);
    Ok(())
}

#[test]
fn malformed_lines_are_named() -> Result<(), String> {
    let t = telegram("telegram_v2_2")?;
    for (from, to, line) in [
        (
            "1-0:1.8.2(00001.001*kWh)",
            "1-0:1.8.2 00001.001*kWh",
            "line 5 ",
        ),
        (
            "1-0:2.8.1(00001.001*kWh)",
            "1-0:2.8.x(00001.001*kWh)",
            "line 6 ",
        ),
        ("0-0:96.14.0(0001)", "0-0:96.14.0(0001", "line 8 "),
    ] {
        let got = ami_dsmr::decode(&replace(&t, from, to), RECEIVED_AT);
        assert!(
            matches!(&got, Err(DecodeError::Malformed(m)) if m.starts_with(line)),
            "{to}: {got:?}"
        );
    }
    Ok(())
}

#[test]
fn unknown_objects_are_kept() -> Result<(), String> {
    let t = replace(
        &telegram("telegram_v2_2")?,
        "0-0:96.14.0(0001)\r\n",
        "0-0:96.14.0(0001)\r\n1-0:9.7.0(00.500*kVA)\r\n0-0:96.99.0(hello)\r\n1-0:9.9.9(1)(2)(3)\r\n",
    );
    let d = decode(&t)?;
    assert!(
        d.readings
            .iter()
            .any(|r| r.register == Obis::new(1, 0, 9, 7, 0, 255)
                && r.value == Quantity::new(500, 0)
                && r.unit == Unit::VoltAmpere)
    );
    assert!(
        d.attributes
            .contains(&(obis("0-0:96.99.0")?, "hello".into()))
    );
    assert!(
        d.attributes
            .contains(&(obis("1-0:9.9.9")?, "(1)(2)(3)".into()))
    );
    Ok(())
}

#[test]
fn codes_are_text_and_counts() -> Result<(), String> {
    let d = decode(&telegram("telegram_v4_2")?)?;
    let device_type = obis("0-1:24.1.0")?;
    assert!(d.attributes.contains(&(device_type, "003".into())));
    assert!(
        d.readings
            .iter()
            .any(|r| r.register == device_type && r.value == Quantity::new(3, 0))
    );
    // Identifiers stay text, exactly as sent.
    assert!(d.attributes.contains(&(
        obis("0-1:96.1.0")?,
        "4819243993373755377509728609491464".into()
    )));
    assert!(
        !d.readings
            .iter()
            .any(|r| r.register == obis("0-0:96.14.0").unwrap_or(device_type))
    );
    Ok(())
}

#[test]
fn an_invalid_telegram_time_is_flagged() -> Result<(), String> {
    let mut t = replace(
        &telegram("telegram_v5")?,
        "0-0:1.0.0(170102192002W)",
        "0-0:1.0.0(171302192002W)",
    );
    restamp(&mut t);
    let d = decode(&t)?;
    let r = d
        .readings
        .iter()
        .find(|r| r.register == Obis::new(1, 0, 1, 8, 1, 255))
        .ok_or("no 1.8.1")?;
    assert_eq!(r.ts_ms, RECEIVED_AT);
    assert_eq!(
        r.quality,
        Quality::TIME_FROM_RECEIVER.with(Quality::CLOCK_INVALID)
    );
    Ok(())
}

#[test]
fn encrypted_frames_are_for_the_dlms_decoder() {
    let got = ami_dsmr::decode(&[0xDB, 0x08, b'S', b'Y', b'S'], RECEIVED_AT);
    assert!(matches!(&got, Err(DecodeError::Unsupported(m)) if m.contains("dlms decoder")));
}

/// Errors must be the DSMR kinds, with a message.
fn typed(got: &Result<Decoded, DecodeError>, input: &[u8]) -> Result<(), TestCaseError> {
    match got {
        Ok(d) => {
            prop_assert!(d.readings.len() + d.attributes.len() + d.events.len() <= input.len());
        }
        Err(
            DecodeError::Truncated(m)
            | DecodeError::Checksum(m)
            | DecodeError::Malformed(m)
            | DecodeError::Unsupported(m),
        ) => prop_assert!(!m.is_empty()),
        Err(other) => prop_assert!(false, "unexpected error kind {other:?}"),
    }
    Ok(())
}

#[derive(Clone, Debug)]
enum Edit {
    Set(usize, u8),
    Insert(usize, u8),
    Remove(usize),
    Cut(usize),
    Duplicate(usize, usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    let byte = prop_oneof![
        any::<u8>(),
        prop::sample::select(b"/!()*:.-0123456789SW\r\n".to_vec()),
    ];
    prop_oneof![
        (any::<usize>(), byte.clone()).prop_map(|(i, b)| Edit::Set(i, b)),
        (any::<usize>(), byte).prop_map(|(i, b)| Edit::Insert(i, b)),
        any::<usize>().prop_map(Edit::Remove),
        any::<usize>().prop_map(Edit::Cut),
        (any::<usize>(), 0usize..64).prop_map(|(i, n)| Edit::Duplicate(i, n)),
    ]
}

fn apply(t: &mut Vec<u8>, e: &Edit) {
    let at = |i: usize, len: usize| if len == 0 { 0 } else { i % len };
    match *e {
        Edit::Set(i, b) => {
            let i = at(i, t.len());
            if let Some(x) = t.get_mut(i) {
                *x = b;
            }
        }
        Edit::Insert(i, b) => t.insert(at(i, t.len() + 1), b),
        Edit::Remove(i) => {
            if !t.is_empty() {
                t.remove(at(i, t.len()));
            }
        }
        Edit::Cut(i) => t.truncate(at(i, t.len() + 1)),
        Edit::Duplicate(i, n) => {
            let i = at(i, t.len());
            let chunk: Vec<u8> = t.iter().skip(i).take(n).copied().collect();
            t.splice(i..i, chunk);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..1024)) {
        typed(&ami_dsmr::decode(&bytes, RECEIVED_AT), &bytes)?;
        let mut framed = b"/".to_vec();
        framed.extend_from_slice(&bytes);
        typed(&ami_dsmr::decode(&framed, RECEIVED_AT), &framed)?;
    }

    #[test]
    fn telegram_like_text_never_panics(text in "/[A-Z]{3}5[ -~]{0,12}\r\n(\r?\n|[0-9]-[0-9]:[0-9.*]{3,9}(\\([ -~]{0,16}\\)){0,4}\r?\n){0,12}!([0-9A-F]{0,4})?\r?\n?") {
        let mut bytes = text.into_bytes();
        typed(&ami_dsmr::decode(&bytes, RECEIVED_AT), &bytes)?;
        restamp(&mut bytes);
        typed(&ami_dsmr::decode(&bytes, RECEIVED_AT), &bytes)?;
    }

    #[test]
    fn mutated_telegrams_never_panic(
        which in any::<prop::sample::Index>(),
        edits in prop::collection::vec(edit(), 1..8),
        fix_crc in any::<bool>(),
    ) {
        let all = telegrams();
        prop_assume!(!all.is_empty());
        let mut t = all.get(which.index(all.len())).map(|(_, t)| t.clone()).unwrap_or_default();
        for e in &edits {
            apply(&mut t, e);
        }
        if fix_crc {
            restamp(&mut t);
        }
        typed(&ami_dsmr::decode(&t, RECEIVED_AT), &t)?;
    }
}
