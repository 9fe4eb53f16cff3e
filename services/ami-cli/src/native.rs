//! The native builds of the decoders ami ships, for benchmarks against their components
//! (plaintext frames: the native builds get no keys).

use ami_domain::{DecodeError, Decoded};

/// A native decoder function.
pub type NativeDecoder = fn(&[u8], i64) -> Result<Decoded, DecodeError>;

/// The native decoder of a protocol, if ami ships one.
pub fn decoder(protocol: &str) -> Option<NativeDecoder> {
    match protocol {
        "ansi-c12" | "osgp" => {
            Some(|frame, at| ami_ansi_c12::decode(frame, at, &mut ami_domain::crypto::NoKeys))
        }
        "dlms" => Some(|frame, at| ami_dlms::decode(frame, at, &mut ami_domain::crypto::NoKeys)),
        "dsmr" => Some(ami_dsmr::decode),
        "iec62056-21" => Some(ami_iec62056_21::decode),
        "mbus" | "wmbus" => {
            Some(|frame, at| ami_mbus::decode(frame, at, &mut ami_domain::crypto::NoKeys))
        }
        _ => None,
    }
}
