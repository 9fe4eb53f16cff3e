//! The DLMS vectors (`tests/vectors/dlms/dlms.jsonl`): every frame decodes as the peers say
//! (dlms-cosem, amshan, gurux-dlms, the Green Book), with the vectors' keys where they carry
//! them; skipped vectors are association/control frames, unpaired responses, block
//! fragments and the bare A-XDR buffer, each checked here against `published` instead.

mod support;

use std::path::Path;

use ami_dlms::apdu::{Apdu, Association, Descriptor};
use ami_dlms::hdlc::{self, Address, Control};
use ami_dlms::layer::{self, Layer};
use ami_dlms::{Options, axdr::Data};
use ami_domain::crypto::NoKeys;
use ami_domain::{DecodeError, Decoded, Obis, Quality, Quantity, Unit};
use ami_vectors::{Expectations, Outcome, Vector, check, for_protocol};
use serde_json::Value;

const RECEIVED_AT: i64 = 1_700_000_000_000;

fn vectors() -> Result<Vec<Vector>, String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../tests/vectors/dlms/dlms.jsonl");
    ami_vectors::load(&path).map_err(|e| e.to_string())
}

fn vector(id: &str) -> Result<Vector, String> {
    vectors()?
        .into_iter()
        .find(|v| v.id == id)
        .ok_or_else(|| format!("no vector {id}"))
}

fn expectations(v: &Vector) -> Result<Expectations, String> {
    for_protocol("dlms")
        .ok_or("no dlms format in ami-vectors")?
        .expectations(v)
        .map_err(|e| e.to_string())
}

/// The system title a vector names (its own field, or dlms-cosem's parse).
fn system_title(v: &Vector) -> String {
    v.raw
        .get("system_title_hex")
        .and_then(Value::as_str)
        .or_else(|| {
            v.raw
                .pointer("/expected/dlms_cosem/apdu/system_title/octets")
                .and_then(Value::as_str)
        })
        .unwrap_or_default()
        .to_lowercase()
}

/// Decodes with the vector's keys and system title (the meter hint).
fn decode(v: &Vector) -> Result<Decoded, DecodeError> {
    let st = system_title(v);
    let mut keys = support::Keys::new(
        &st,
        v.key.as_deref().unwrap_or_default(),
        v.auth_key.as_deref().unwrap_or_default(),
    );
    ami_dlms::decode_with(
        &v.frame,
        RECEIVED_AT,
        &mut keys,
        &Options::from_meter_hint(Some(&st)),
    )
}

fn published<'a>(v: &'a Vector, pointer: &str) -> Option<&'a Value> {
    v.raw.pointer(&format!("/expected/published{pointer}"))
}

#[test]
fn peer_vectors() -> Result<(), String> {
    let vectors = vectors()?;
    assert_eq!(vectors.len(), 50);
    let (mut passed, mut skipped, mut failed) = (0, 0, 0);
    for v in &vectors {
        let expect = expectations(v)?;
        let got = decode(v);
        match check(&expect, &got) {
            Outcome::Pass => {
                passed += 1;
                println!("pass  {} ({} facts)", v.id, expect.facts.len());
            }
            Outcome::Skip(why) => {
                skipped += 1;
                println!("skip  {}: {why}", v.id);
                // Skipped frames still decode (to nothing) or say why not.
                match &got {
                    Ok(_) if why == ami_vectors::formats::dlms::FRAMING_SKIP => {}
                    Ok(d) => assert!(d.readings.is_empty() && d.events.is_empty(), "{}", v.id),
                    Err(DecodeError::Unsupported(m)) => {
                        assert!(m.contains("reassembles"), "{}: {m}", v.id);
                    }
                    Err(e) => return Err(format!("{}: {e}", v.id)),
                }
            }
            Outcome::Fail(errors) => {
                failed += 1;
                println!("FAIL  {}:", v.id);
                for e in errors {
                    println!("        {e}");
                }
            }
        }
    }
    println!("dlms vectors: {passed} pass, {skipped} skip, {failed} fail");
    assert_eq!(failed, 0);
    assert_eq!((passed, skipped), (23, 27));
    Ok(())
}

#[test]
fn hdlc_addresses_and_control() -> Result<(), String> {
    let frame = |id: &str| -> Result<hdlc::Frame<'static>, String> {
        let v = vector(id)?;
        let bytes: &'static [u8] = Box::leak(v.frame.into_boxed_slice());
        hdlc::parse(bytes)
            .map(|(f, _)| f)
            .map_err(|e| e.to_string())
    };
    let server = Address {
        logical: 1,
        physical: Some(17),
        size: 2,
    };
    let client = Address {
        logical: 16,
        physical: None,
        size: 1,
    };
    let snrm = frame("dlms_cosem-hdlc-snrm")?;
    assert_eq!(
        (snrm.control, snrm.destination, snrm.source),
        (Control::Snrm, server, client)
    );
    let ua = frame("dlms_cosem-hdlc-ua")?;
    assert_eq!(
        (ua.control, ua.destination, ua.source),
        (Control::Ua, client, server)
    );
    assert_eq!(ua.information.len(), 21);
    let aarq = frame("dlms_cosem-hdlc-i-aarq")?;
    assert_eq!(
        aarq.control,
        Control::I {
            send: 0,
            receive: 0
        }
    );
    let aare = frame("dlms_cosem-hdlc-i-aare")?;
    assert_eq!(
        aare.control,
        Control::I {
            send: 0,
            receive: 1
        }
    );
    assert!(aare.poll_final());
    for id in ["dlms_cosem-hdlc-i-aarq", "dlms_cosem-hdlc-i-aare"] {
        let v = vector(id)?;
        let payload = published(&v, "/payload_hex").and_then(Value::as_str);
        assert_eq!(
            Some(hex::encode(frame(id)?.information)).as_deref(),
            payload
        );
    }
    let push = frame("dlms_cosem-hdlc-ui-data-notification")?;
    assert_eq!(push.control, Control::Ui);
    assert_eq!(push.length, 0x243);
    assert_eq!(
        (
            push.destination.logical,
            push.source.logical,
            push.source.physical
        ),
        (32, 4, Some(65))
    );
    // Control frames decode to nothing.
    for id in ["dlms_cosem-hdlc-snrm", "dlms_cosem-hdlc-ua"] {
        assert_eq!(decode(&vector(id)?), Ok(Decoded::default()), "{id}");
    }
    Ok(())
}

#[test]
fn hdlc_flag_and_escape_bytes_inside_the_information_field() -> Result<(), String> {
    for id in [
        "amshan-hdlc-frame_with_escape_character_in_info",
        "amshan-hdlc-frame_with_flag_sequence_character_in_info",
    ] {
        let v = vector(id)?;
        let u = layer::unwrap(&v.frame).map_err(|e| e.to_string())?;
        let Layer::Hdlc(f) = u.layer else {
            return Err(format!("{id}: not HDLC"));
        };
        assert_eq!(
            Some(hex::encode(f.information)).as_deref(),
            published(&v, "/payload_hex").and_then(Value::as_str)
        );
    }
    // The 0x7E-inside frame is a Kaifa list 1 (bare value): 0x157E W.
    let d = decode(&vector(
        "amshan-hdlc-frame_with_flag_sequence_character_in_info",
    )?)
    .map_err(|e| e.to_string())?;
    let r = d.readings.first().ok_or("no reading")?;
    assert_eq!(
        (r.register, r.value, r.unit),
        (
            Obis::new(1, 0, 1, 7, 0, 255),
            Quantity::new(5502, 0),
            Unit::Watt
        )
    );
    Ok(())
}

fn apdu_of(v: &Vector) -> Result<Apdu<'_>, String> {
    let u = layer::unwrap(&v.frame).map_err(|e| e.to_string())?;
    Apdu::parse(u.apdu.ok_or("no APDU")?).map_err(|e| e.to_string())
}

#[test]
fn requests_and_responses() -> Result<(), String> {
    let v = vector("dlms_cosem-apdu-get-21")?;
    assert_eq!(
        apdu_of(&v)?,
        Apdu::GetRequest {
            invoke_id: 0xC1,
            attribute: Descriptor {
                class_id: 1,
                instance: Obis::new(0, 0, 43, 1, 0, 255),
                index: 2
            },
            access: None,
        }
    );
    let v = vector("dlms_cosem-apdu-get-54")?;
    assert_eq!(
        apdu_of(&v)?,
        Apdu::GetRequestNext {
            invoke_id: 0xC1,
            block_number: 1
        }
    );
    let v = vector("dlms_cosem-apdu-get-114")?;
    assert_eq!(
        apdu_of(&v)?,
        Apdu::GetResponse {
            invoke_id: 0xC1,
            result: Ok(Data::DoubleLongUnsigned(5009))
        }
    );
    let v = vector("dlms_cosem-apdu-get-134")?;
    assert_eq!(
        apdu_of(&v)?,
        Apdu::GetResponse {
            invoke_id: 0xC1,
            result: Err(1)
        }
    );
    for (id, last, block) in [
        ("dlms_cosem-apdu-get-169", false, 1),
        ("dlms_cosem-apdu-get-231", true, 19),
    ] {
        let v = vector(id)?;
        assert_eq!(
            published(&v, "/block_number").and_then(Value::as_u64),
            Some(block)
        );
        match apdu_of(&v)? {
            Apdu::GetResponseWithDatablock {
                last_block,
                block_number,
                raw: Ok(_),
                ..
            } => assert_eq!((last_block, u64::from(block_number)), (last, block)),
            other => return Err(format!("{id}: {other:?}")),
        }
        assert!(matches!(decode(&v), Err(DecodeError::Unsupported(_))));
    }
    let v = vector("dlms_cosem-apdu-set-request-clock")?;
    let Apdu::SetRequest {
        attribute, value, ..
    } = apdu_of(&v)?
    else {
        return Err("not a set-request".into());
    };
    assert_eq!(attribute.instance, Obis::new(0, 0, 1, 0, 0, 255));
    let Data::OctetString(dt) = value else {
        return Err("clock value is not an octet string".into());
    };
    let dt = ami_dlms::datetime::DateTime::from_slice(dt).ok_or("date-time")?;
    assert_eq!(
        dt.to_text().as_deref(),
        Some("2021-01-24T14:48:57.80+01:00")
    );
    assert_eq!(
        apdu_of(&vector("dlms_cosem-apdu-set-response")?)?,
        Apdu::SetResponse {
            invoke_id: 0xC1,
            result: 0
        }
    );
    let v = vector("dlms_cosem-apdu-action-request-hls")?;
    let Apdu::ActionRequest {
        method, parameters, ..
    } = apdu_of(&v)?
    else {
        return Err("not an action-request".into());
    };
    assert_eq!((method.class_id, method.index), (15, 1));
    assert!(matches!(parameters, Some(Data::OctetString(b)) if b.len() == 17));
    let v = vector("dlms_cosem-apdu-action-response-error")?;
    assert_eq!(
        apdu_of(&v)?,
        Apdu::ActionResponse {
            invoke_id: 0xC0,
            result: 0,
            data: Some(Err(0xFA))
        }
    );
    Ok(())
}

#[test]
fn association_apdus() -> Result<(), String> {
    let fields = |id: &str| -> Result<(u8, Association<'static>), String> {
        let v = vector(id)?;
        let bytes: &'static [u8] = Box::leak(v.frame.into_boxed_slice());
        match Apdu::parse(bytes).map_err(|e| e.to_string())? {
            Apdu::Association { tag, fields } => Ok((tag, fields)),
            other => Err(format!("{id}: {other:?}")),
        }
    };
    let (tag, a) = fields("dlms_cosem-apdu-aarq-no-security")?;
    assert_eq!((tag, a.context, a.mechanism), (0x60, Some(1), None));
    let (_, a) = fields("dlms_cosem-apdu-aarq-lls")?;
    assert_eq!(
        (a.mechanism, a.authentication_value),
        (Some(1), Some(&b"12345678"[..]))
    );
    let (_, a) = fields("dlms_cosem-apdu-aarq-hls-gmac")?;
    assert_eq!(
        (a.mechanism, a.authentication_value),
        (Some(5), Some(&b"K56iVagY"[..]))
    );
    let (_, a) = fields("dlms_cosem-apdu-aarq-ciphered-lls")?;
    assert_eq!(a.context, Some(3));
    assert_eq!(
        a.system_title.map(hex::encode).as_deref(),
        Some("4d4d4d0000bc614e")
    );
    let (tag, a) = fields("dlms_cosem-apdu-aare-accepted")?;
    assert_eq!((tag, a.result, a.diagnostic), (0x61, Some(0), Some(0)));
    let (_, a) = fields("dlms_cosem-apdu-aare-hls")?;
    assert_eq!((a.result, a.diagnostic), (Some(0), Some(14)));
    assert_eq!(a.authentication_value, Some(&b"P6wRJ21F"[..]));
    let (_, a) = fields("dlms_cosem-apdu-aare-rejected-context")?;
    assert_eq!((a.result, a.diagnostic), (Some(1), Some(2)));
    Ok(())
}

#[test]
fn profile_buffer_with_its_capture_objects() -> Result<(), String> {
    use ami_dlms::cosem::{CaptureObject, profile_readings};
    let v = vector("dlms_cosem-axdr-profile-buffer")?;
    let buffer = Data::parse_all(&v.frame).map_err(|e| e.to_string())?;
    let cap = |class_id, o: &str| -> Result<CaptureObject, String> {
        Ok(CaptureObject {
            class_id,
            logical_name: o.parse().map_err(|e| format!("{e}"))?,
            attribute: 2,
        })
    };
    let captures = [
        cap(8, "0-0:1.0.0*255")?,
        cap(1, "0-0:96.10.1*255")?,
        cap(3, "1-0:1.8.0*255")?,
        cap(3, "1-0:2.8.0*255")?,
    ];
    let readings = profile_readings(&buffer, &captures, 3600, &[]).map_err(|e| e.to_string())?;
    assert_eq!(readings.len(), 8);
    // Row 1: 2019-12-31 23:00 local, deviation -60: 22:00 UTC; rows 3600 s apart.
    let first = ami_domain::time::unix_ms(2019, 12, 31, 22, 0, 0);
    for (i, pair) in readings.chunks(2).enumerate() {
        let ts = first + i64::try_from(i).map_err(|e| e.to_string())? * 3_600_000;
        assert_eq!(pair[0].ts_ms, ts);
        assert_eq!(
            (pair[0].value, pair[0].unit),
            (Quantity::new(1517, 0), Unit::WattHour)
        );
        assert_eq!(pair[1].value, Quantity::new(1620, 0));
        // Status 6 = clock invalid | data not valid.
        assert_eq!(
            pair[0].quality,
            Quality::SUSPECT.with(Quality::CLOCK_INVALID)
        );
    }
    assert_eq!(
        published(&v, "/row_interval_s").and_then(Value::as_u64),
        Some(3600)
    );
    Ok(())
}

#[test]
fn notification_times() -> Result<(), String> {
    // No clock and no date-time: the receiver's time, flagged.
    let d = decode(&vector("amshan-aidon-no_list_1")?).map_err(|e| e.to_string())?;
    assert!(
        d.readings
            .iter()
            .all(|r| r.ts_ms == RECEIVED_AT && r.quality == Quality::TIME_FROM_RECEIVER)
    );
    // Kamstrup's header date-time with clock status 0x01 (invalid value).
    let d = decode(&vector("amshan-kamstrup-no_list_1_three_phase")?).map_err(|e| e.to_string())?;
    assert!(
        d.readings
            .iter()
            .all(|r| r.quality == Quality::CLOCK_INVALID)
    );
    Ok(())
}

#[test]
fn plaintext_frames_need_no_keys() -> Result<(), String> {
    for v in vectors()? {
        if v.key.is_some() {
            continue;
        }
        let with_keys = decode(&v);
        let without = ami_dlms::decode(&v.frame, RECEIVED_AT, &mut NoKeys);
        assert_eq!(with_keys, without, "{}", v.id);
    }
    Ok(())
}
