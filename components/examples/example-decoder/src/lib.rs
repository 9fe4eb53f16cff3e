//! Example vendor decoder for the (fictional) ACME-1 meter, which sends one text line per read:
//!
//! ```text
//! ACME1;<serial>;<unix seconds>;<obis>=<value>*<unit>;<obis>=<value>*<unit>...
//! ACME1;A0001;1700000000;1-0:1.8.0=1234.567*kWh;1-0:32.7.0=230.1*V
//! ```
//!
//! It shows the whole vendor surface: implement [`FrameDecoder`] in domain types, report typed
//! errors, export with one macro.

use ami_plugin_sdk::FrameDecoder;
use ami_plugin_sdk::domain::{DecodeError, Decoded, Obis, Quality, Quantity, Reading, Unit};

struct Acme;

impl FrameDecoder for Acme {
    fn decode_frame(
        data: &[u8],
        _received_at_ms: i64,
        _hint: Option<&str>,
    ) -> Result<Decoded, DecodeError> {
        let text = std::str::from_utf8(data)
            .map_err(|e| DecodeError::Malformed(format!("not UTF-8: {e}")))?;
        let mut fields = text.trim_end().split(';');
        if fields.next() != Some("ACME1") {
            return Err(DecodeError::Malformed("missing ACME1 header".into()));
        }
        let serial = fields
            .next()
            .ok_or_else(|| DecodeError::Truncated("no serial".into()))?;
        let ts: i64 = fields
            .next()
            .ok_or_else(|| DecodeError::Truncated("no timestamp".into()))?
            .parse()
            .map_err(|_| DecodeError::Malformed("timestamp is not a number".into()))?;
        let mut out = Decoded {
            meter: Some(serial.to_owned()),
            ..Decoded::default()
        };
        for field in fields {
            let (code, rest) = field
                .split_once('=')
                .ok_or_else(|| DecodeError::Malformed(format!("{field:?} has no '='")))?;
            let (value, unit) = rest.split_once('*').unwrap_or((rest, ""));
            let register: Obis = code
                .parse()
                .map_err(|e| DecodeError::Malformed(format!("{e}")))?;
            let (unit, prefix) =
                Unit::parse_symbol(unit).map_err(|e| DecodeError::Malformed(format!("{e}")))?;
            let value = value
                .parse::<Quantity>()
                .ok()
                .and_then(|q| q.shifted(prefix))
                .ok_or_else(|| DecodeError::Malformed(format!("bad value {value:?}")))?;
            out.readings.push(Reading {
                register,
                value,
                unit,
                ts_ms: ts.saturating_mul(1000),
                quality: Quality::VALID,
            });
        }
        Ok(out)
    }
}

ami_plugin_sdk::export_decoder!(Acme);
