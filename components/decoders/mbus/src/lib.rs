//! The M-Bus / wireless M-Bus decoder component: `ami-mbus` on the `decoder` world, with the
//! host's key store for encrypted frames.

struct Mbus;

impl ami_plugin_sdk::FrameDecoder for Mbus {
    fn decode_frame(
        data: &[u8],
        received_at_ms: i64,
        _meter_hint: Option<&str>,
    ) -> Result<ami_plugin_sdk::domain::Decoded, ami_plugin_sdk::domain::DecodeError> {
        ami_mbus::decode(data, received_at_ms, &mut ami_plugin_sdk::HostCrypto)
    }
}

ami_plugin_sdk::export_decoder!(Mbus);
