//! The IEC 62056-21 readout decoder component: `ami-iec62056-21` on the `decoder` world.

struct Iec62056_21;

impl ami_plugin_sdk::FrameDecoder for Iec62056_21 {
    fn decode_frame(
        data: &[u8],
        received_at_ms: i64,
        _meter_hint: Option<&str>,
    ) -> Result<ami_plugin_sdk::domain::Decoded, ami_plugin_sdk::domain::DecodeError> {
        ami_iec62056_21::decode(data, received_at_ms)
    }
}

ami_plugin_sdk::export_decoder!(Iec62056_21);
