//! Random bytes and mutations of every vector: the decoder never panics, fails only with
//! typed errors, and yields no more values than the frame has bytes.

mod support;

use std::path::Path;

use ami_domain::DecodeError;
use ami_domain::crypto::NoKeys;
use proptest::prelude::*;

fn frames() -> Vec<Vec<u8>> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../tests/vectors/dlms/dlms.jsonl");
    ami_vectors::load(&path)
        .map(|vs| vs.into_iter().map(|v| v.frame).collect())
        .unwrap_or_default()
}

fn sane(frame: &[u8], got: &Result<ami_domain::Decoded, DecodeError>) -> Result<(), TestCaseError> {
    match got {
        Ok(d) => {
            prop_assert!(d.readings.len() + d.attributes.len() + d.events.len() <= frame.len())
        }
        Err(
            DecodeError::Truncated(m)
            | DecodeError::Checksum(m)
            | DecodeError::Malformed(m)
            | DecodeError::Unsupported(m)
            | DecodeError::Authentication(m)
            | DecodeError::MissingKey(m),
        ) => prop_assert!(!m.is_empty()),
    }
    Ok(())
}

fn decode_both(frame: &[u8]) -> Result<(), TestCaseError> {
    sane(frame, &ami_dlms::decode(frame, 0, &mut NoKeys))?;
    let mut keys = support::Keys::new("2f19229199164103", b"MYDUMMYGLOBALKEY", b"MYDUMMYGLOBALKEY");
    sane(frame, &ami_dlms::decode(frame, 0, &mut keys))?;
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn random_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        decode_both(&bytes)?;
    }

    #[test]
    fn random_after_each_layer_header(
        prefix in prop::sample::select(vec![
            vec![0xE6, 0xE7, 0x00],
            vec![0xE6, 0xE7, 0x00, 0x0F, 0, 0, 0, 0, 0],
            vec![0x00, 0x01, 0x00, 0x01, 0x00, 0x01, 0x00, 0x40],
            vec![0xDB, 0x08, 0x2F, 0x19, 0x22, 0x91, 0x99, 0x16, 0x41, 0x03],
            vec![0xC4, 0x01, 0xC1, 0x00],
            vec![0x0F, 0, 0, 0, 0, 0, 0x13],
        ]),
        tail in proptest::collection::vec(any::<u8>(), 0..300),
    ) {
        let mut frame = prefix;
        frame.extend(tail);
        decode_both(&frame)?;
    }

    #[test]
    fn mutated_vectors(
        which in any::<prop::sample::Index>(),
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..6),
    ) {
        let all = frames();
        prop_assume!(!all.is_empty());
        let mut frame = all[which.index(all.len())].clone();
        for (at, byte, op) in edits {
            if frame.is_empty() {
                break;
            }
            let i = at.index(frame.len());
            match op {
                0 => frame[i] = byte,
                1 => { frame.remove(i); }
                _ => frame.insert(i, byte),
            }
        }
        decode_both(&frame)?;
    }

    #[test]
    fn truncated_vectors(which in any::<prop::sample::Index>(), cut in any::<prop::sample::Index>()) {
        let all = frames();
        prop_assume!(!all.is_empty());
        let frame = &all[which.index(all.len())];
        let end = cut.index(frame.len().max(1));
        decode_both(&frame[..end])?;
    }
}

#[allow(clippy::unwrap_used)]
mod encoders {
    //! The framing and data encoders the DLMS client uses, read back by the decoder's
    //! parsers, and the parsers fed arbitrary bytes around encoded frames.
    use ami_dlms::axdr::Data;
    use ami_dlms::{hdlc, wrapper};
    use proptest::prelude::*;

    fn address() -> impl Strategy<Value = hdlc::Address> {
        prop_oneof![
            (0u16..0x80).prop_map(hdlc::Address::one),
            (0u16..0x80, 0u16..0x80).prop_map(|(l, p)| hdlc::Address::server(l, p, 2)),
            (0u16..0x4000, 0u16..0x4000).prop_map(|(l, p)| hdlc::Address::server(l, p, 4)),
        ]
    }

    proptest! {
        #[test]
        fn hdlc_frames_round_trip(
            dst in address(),
            src in address(),
            control in any::<u8>(),
            segmented in any::<bool>(),
            info in proptest::collection::vec(any::<u8>(), 0..600),
        ) {
            let bytes = hdlc::encode(&dst, &src, control, segmented, &info).unwrap();
            prop_assert_eq!(hdlc::frame_len(&bytes), Some(bytes.len()));
            let (f, rest) = hdlc::parse(&bytes).unwrap();
            prop_assert!(rest.is_empty());
            prop_assert_eq!(f.destination, dst);
            prop_assert_eq!(f.source, src);
            prop_assert_eq!(f.control_byte, control);
            prop_assert_eq!(f.segmented, segmented);
            prop_assert_eq!(f.information, &info[..]);
        }

        #[test]
        fn a_flipped_bit_in_an_hdlc_frame_is_an_error_never_a_panic(
            info in proptest::collection::vec(any::<u8>(), 1..200),
            at in any::<prop::sample::Index>(),
            bit in 0u8..8,
        ) {
            let mut bytes = hdlc::encode(
                &hdlc::Address::server(1, 17, 2), &hdlc::Address::one(16), 0x10, false, &info,
            ).unwrap();
            let i = at.index(bytes.len() - 2) + 1;
            bytes[i] ^= 1 << bit;
            if let Ok((f, _)) = hdlc::parse(&bytes) {
                // Only a change the checksums cannot see may pass: none in a single bit.
                prop_assert!(false, "corrupted frame accepted: {:?}", f);
            }
        }

        #[test]
        fn wrapper_frames_round_trip(
            s in any::<u16>(), d in any::<u16>(),
            apdu in proptest::collection::vec(any::<u8>(), 0..2000),
            tail in proptest::collection::vec(any::<u8>(), 0..20),
        ) {
            let mut bytes = wrapper::encode(s, d, &apdu).unwrap();
            prop_assert_eq!(wrapper::frame_len(&bytes), Some(bytes.len()));
            bytes.extend_from_slice(&tail);
            let (h, got) = wrapper::parse(&bytes).unwrap();
            prop_assert_eq!((h.source_wport, h.destination_wport), (s, d));
            prop_assert_eq!(got, &apdu[..]);
            // Cut short: an error, not a panic.
            prop_assert!(wrapper::parse(&bytes[..bytes.len() - tail.len() - 1]).is_err());
        }

        #[test]
        fn axdr_values_round_trip(
            n in any::<u32>(), i in any::<i16>(), s in proptest::collection::vec(any::<u8>(), 0..300),
            dt in any::<[u8; 12]>(), b in any::<bool>(), long in any::<i64>(),
        ) {
            let v = Data::Structure(vec![
                Data::DoubleLongUnsigned(n),
                Data::Long(i),
                Data::OctetString(&s),
                Data::Array(vec![Data::DateTime(dt), Data::Boolean(b), Data::Null]),
                Data::Long64(long),
                Data::Enum(3),
                Data::VisibleString(b"abc"),
            ]);
            let bytes = v.to_bytes();
            prop_assert_eq!(Data::parse_all(&bytes).unwrap(), v);
        }
    }

    #[test]
    fn encoders_refuse_what_the_length_fields_cannot_say() {
        let big = vec![0u8; 0x800];
        assert!(
            hdlc::encode(
                &hdlc::Address::one(1),
                &hdlc::Address::one(16),
                0x10,
                false,
                &big
            )
            .is_err()
        );
        assert!(
            hdlc::encode(
                &hdlc::Address::one(200),
                &hdlc::Address::one(16),
                0x10,
                false,
                &[]
            )
            .is_err()
        );
        assert!(wrapper::encode(1, 1, &vec![0u8; 70_000]).is_err());
    }
}
