//! A decoder that tries to open a TCP connection, so its component imports `wasi:sockets`.
//! The host must refuse to load it: plugins are granted no network.

use ami_plugin_sdk::domain::{DecodeError, Decoded};

struct Net;

impl ami_plugin_sdk::FrameDecoder for Net {
    fn decode_frame(_data: &[u8], _at: i64, _hint: Option<&str>) -> Result<Decoded, DecodeError> {
        match std::net::TcpStream::connect("127.0.0.1:4222") {
            Ok(_) => Err(DecodeError::Unsupported(
                "connected: the sandbox leaked".into(),
            )),
            Err(e) => Err(DecodeError::Unsupported(format!("no network: {e}"))),
        }
    }
}

ami_plugin_sdk::export_decoder!(Net);
