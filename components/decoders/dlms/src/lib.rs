//! The DLMS/COSEM decoder component: `ami-dlms` on the `decoder` world. The meter hint, when
//! it is a 16-digit hex system title, names the meter of ciphered APDUs that carry none.

struct Dlms;

impl ami_plugin_sdk::FrameDecoder for Dlms {
    fn decode_frame(
        data: &[u8],
        received_at_ms: i64,
        meter_hint: Option<&str>,
    ) -> Result<ami_plugin_sdk::domain::Decoded, ami_plugin_sdk::domain::DecodeError> {
        ami_dlms::decode_with(
            data,
            received_at_ms,
            &mut ami_plugin_sdk::HostCrypto,
            &ami_dlms::Options::from_meter_hint(meter_hint),
        )
    }
}

ami_plugin_sdk::export_decoder!(Dlms);
