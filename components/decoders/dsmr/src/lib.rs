//! The DSMR P1 decoder component: `ami-dsmr` on the `decoder` world.

struct Dsmr;

impl ami_plugin_sdk::FrameDecoder for Dsmr {
    fn decode_frame(
        data: &[u8],
        received_at_ms: i64,
        _meter_hint: Option<&str>,
    ) -> Result<ami_plugin_sdk::domain::Decoded, ami_plugin_sdk::domain::DecodeError> {
        ami_dsmr::decode(data, received_at_ms)
    }
}

ami_plugin_sdk::export_decoder!(Dsmr);
