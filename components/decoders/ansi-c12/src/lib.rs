//! The ANSI C12 / OSGP decoder component: `ami-ansi-c12` on the `decoder` world, with the
//! host's key store for OSGP-AES-128-PSK frames.

struct AnsiC12;

impl ami_plugin_sdk::FrameDecoder for AnsiC12 {
    fn decode_frame(
        data: &[u8],
        received_at_ms: i64,
        _meter_hint: Option<&str>,
    ) -> Result<ami_plugin_sdk::domain::Decoded, ami_plugin_sdk::domain::DecodeError> {
        ami_ansi_c12::decode(data, received_at_ms, &mut ami_plugin_sdk::HostCrypto)
    }
}

ami_plugin_sdk::export_decoder!(AnsiC12);
