//! Which layer a frame starts at, and the APDU inside it: HDLC (`7E`), IEC 62056-47 wrapper
//! (version `00 01`), LLC (`E6 E7 00` / `E6 E6 00`) or a bare APDU.

use ami_domain::DecodeError;

use crate::{hdlc, llc, wrapper};

/// The outer layer of a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layer<'a> {
    /// An HDLC frame.
    Hdlc(hdlc::Frame<'a>),
    /// A wrapper header.
    Wrapper(wrapper::Header),
    /// An LLC header before the APDU.
    Llc,
    /// A bare APDU.
    Apdu,
}

/// A frame taken apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Unwrapped<'a> {
    /// The outer layer.
    pub layer: Layer<'a>,
    /// The APDU, `None` for HDLC frames without one (control frames, UA parameters).
    pub apdu: Option<&'a [u8]>,
}

/// Detects the layer and finds the APDU.
pub fn unwrap(frame: &[u8]) -> Result<Unwrapped<'_>, DecodeError> {
    match frame {
        [] => Err(DecodeError::Truncated("empty frame".into())),
        [hdlc::FLAG, ..] => {
            let (f, _) = hdlc::parse(frame)?;
            if f.segmented {
                return Err(DecodeError::Unsupported(
                    "segmented HDLC frame: the adapter reassembles segments".into(),
                ));
            }
            let apdu = if f.control.carries_apdu() && !f.information.is_empty() {
                Some(llc::strip(f.information).unwrap_or(f.information))
            } else {
                None
            };
            Ok(Unwrapped {
                layer: Layer::Hdlc(f),
                apdu,
            })
        }
        [0x00, 0x01, ..] => {
            let (h, apdu) = wrapper::parse(frame)?;
            Ok(Unwrapped {
                layer: Layer::Wrapper(h),
                apdu: Some(apdu),
            })
        }
        _ => Ok(match llc::strip(frame) {
            Some(apdu) => Unwrapped {
                layer: Layer::Llc,
                apdu: Some(apdu),
            },
            None => Unwrapped {
                layer: Layer::Apdu,
                apdu: Some(frame),
            },
        }),
    }
}
