#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

//! The C12.18 packet vectors (`tests/vectors/ansi-c12/ansi-c12.jsonl`: packets of
//! esp-idf-ansic1218's tests, decoded by termineter), checked twice: every field of
//! `expected` against the crate's own structures ([`packet`], [`psem`]), and the decoder's
//! output through the `ansi-c12` peer format of ami-vectors (what `ami plugin test` runs).

use std::path::Path;

use ami_ansi_c12::packet::{self, Packet};
use ami_ansi_c12::psem::{Request, Response, ResponseBody, Service};
use ami_domain::crypto::NoKeys;
use ami_vectors::{Outcome, Vector, for_protocol};
use serde_json::Value;

fn vectors() -> Vec<Vector> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../tests/vectors/ansi-c12/ansi-c12.jsonl");
    ami_vectors::load(&path).unwrap()
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn s<'a>(v: &'a Value, k: &str) -> &'a str {
    v.get(k)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("{k} missing in {v}"))
}

fn n(v: &Value, k: &str) -> u64 {
    v.get(k)
        .and_then(Value::as_u64)
        .unwrap_or_else(|| panic!("{k} missing in {v}"))
}

fn b(v: &Value, k: &str) -> bool {
    v.get(k)
        .and_then(Value::as_bool)
        .unwrap_or_else(|| panic!("{k} missing in {v}"))
}

fn assert_packet(id: &str, p: &Packet<'_>, e: &Value) {
    assert_eq!(s(e, "stp"), "ee", "{id}");
    assert_eq!(u64::from(p.identity), n(e, "identity"), "{id} identity");
    assert_eq!(
        format!("{:02x}", p.control),
        s(e, "control"),
        "{id} control"
    );
    assert_eq!(p.multi_packet(), b(e, "multi_packet"), "{id} multi_packet");
    assert_eq!(p.first_packet(), b(e, "first_packet"), "{id} first_packet");
    assert_eq!(p.toggle(), b(e, "toggle"), "{id} toggle");
    assert_eq!(u64::from(p.sequence), n(e, "sequence"), "{id} sequence");
    assert_eq!(p.length() as u64, n(e, "length"), "{id} length");
    assert_eq!(hex(p.data), s(e, "data_hex"), "{id} data");
    assert_eq!(format!("{:04x}", p.crc_wire), s(e, "crc_hex"), "{id} crc");
    // The packet parsed, so its CRC verified.
    assert!(b(e, "crc_ok"), "{id}");
}

fn assert_psem(id: &str, data: &[u8], e: &Value) {
    let service = Service::parse(data).unwrap_or_else(|err| panic!("{id}: {err}"));
    match service {
        Service::Request(req) => {
            assert_eq!(req.name(), s(e, "service"), "{id} service");
            if let Some(t) = e.get("table_id") {
                assert_eq!(req.table().map(u64::from), t.as_u64(), "{id} table");
            }
            match &req {
                Request::ReadOffset { offset, count, .. } => {
                    assert_eq!(u64::from(*offset), n(e, "offset"), "{id}");
                    assert_eq!(u64::from(*count), n(e, "count"), "{id}");
                }
                Request::WriteFull { data, .. } | Request::WriteOffset { data, .. } => {
                    if let Request::WriteOffset { offset, .. } = &req {
                        assert_eq!(u64::from(*offset), n(e, "offset"), "{id}");
                    }
                    assert_eq!(data.data.len() as u64, n(e, "count"), "{id}");
                    assert_eq!(hex(data.data), s(e, "data_hex"), "{id}");
                    assert_eq!(u64::from(data.cksum), n(e, "cksum"), "{id}");
                    assert!(b(e, "cksum_ok"), "{id}");
                }
                Request::Security { password, .. } => {
                    assert_eq!(hex(password), s(e, "password_hex"), "{id}");
                }
                _ => {}
            }
        }
        Service::Response(Response { code, body }) => {
            assert_eq!(code.name(), s(e, "response"), "{id}");
            let ResponseBody::Table(d) = body else {
                panic!("{id}: no table data in {body:?}")
            };
            assert_eq!(d.data.len() as u64, n(e, "count"), "{id}");
            assert_eq!(hex(d.data), s(e, "table_data_hex"), "{id}");
            assert_eq!(u64::from(d.cksum), n(e, "cksum"), "{id}");
            assert!(b(e, "cksum_ok"), "{id}");
        }
    }
}

#[test]
fn every_field_of_every_vector() {
    let vs = vectors();
    assert_eq!(vs.len(), 11);
    for v in &vs {
        let exp = &v.raw["expected"];
        if let Some(e) = exp.get("packet") {
            let (p, used) = packet::parse(&v.frame).unwrap_or_else(|err| panic!("{}: {err}", v.id));
            assert_eq!(used, v.frame.len(), "{}", v.id);
            assert_packet(&v.id, &p, e);
            if let Some(ps) = exp.get("psem") {
                assert_psem(&v.id, p.data, ps);
                if let Some(h) = v.raw.get("psem_hex").and_then(Value::as_str) {
                    assert_eq!(hex(p.data), h, "{}", v.id);
                }
            }
        } else {
            // A multi-packet message: the preceding packets, then this one, as one capture.
            let mut capture: Vec<u8> = Vec::new();
            for f in &v.preceding {
                capture.extend_from_slice(f);
                capture.push(packet::ACK);
            }
            capture.extend_from_slice(&v.frame);
            let packets = packet::split(&capture).unwrap();
            let expected = exp["packets"].as_array().unwrap();
            assert_eq!(packets.len(), expected.len(), "{}", v.id);
            for (p, e) in packets.iter().zip(expected) {
                assert_packet(&v.id, p, e);
            }
            let messages = packet::reassemble(&packets);
            assert_eq!(messages.len(), 1, "{}", v.id);
            assert!(!messages[0].incomplete, "{}", v.id);
            assert_eq!(
                hex(&messages[0].data),
                s(exp, "reassembled_data_hex"),
                "{}",
                v.id
            );
        }
    }
}

#[test]
fn peer_format_through_the_decoder() {
    let format = for_protocol("ansi-c12").unwrap();
    let (mut pass, mut facts) = (0, 0);
    for v in &vectors() {
        let expect = format.expectations(v).unwrap();
        facts += expect.facts.len();
        let got = ami_ansi_c12::decode(&v.frame, 1_700_000_000_000, &mut NoKeys);
        match format.check(&expect, &got) {
            Outcome::Pass => pass += 1,
            other => panic!("{}: {other:?}\n{got:#?}", v.id),
        }
    }
    println!("{pass} vectors pass, {facts} facts");
    assert_eq!(pass, 11);
}

#[test]
fn a_corrupted_crc_or_checksum_is_rejected() {
    for v in &vectors() {
        let mut f = v.frame.clone();
        let last = f.len() - 1;
        f[last] ^= 0x01;
        assert!(
            matches!(
                ami_ansi_c12::decode(&f, 0, &mut NoKeys),
                Err(ami_domain::DecodeError::Checksum(_))
            ),
            "{}",
            v.id
        );
    }
    // The write-full vector with its table-data checksum changed and its CRC recomputed.
    let v = vectors()
        .into_iter()
        .find(|v| v.id == "c1218-psem-3")
        .unwrap();
    let (p, _) = packet::parse(&v.frame).unwrap();
    let mut data = p.data.to_vec();
    let last = data.len() - 1;
    data[last] ^= 0x10;
    let f = packet::build(p.identity, p.control, p.sequence, &data);
    let got = ami_ansi_c12::decode(&f, 0, &mut NoKeys);
    assert!(matches!(got, Err(ami_domain::DecodeError::Checksum(m)) if m.contains("checksum")));
}
