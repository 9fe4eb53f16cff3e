//! A parsed readout and its canonical form: readings, text attributes and the meter's name.

use ami_domain::{Decoded, Quality, Reading};

use crate::dataset::DataSet;
use crate::ident::Identification;

/// The checksum a readout carried, verified.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Checksum {
    /// A framed data message's block check character, verified.
    Bcc(u8),
    /// A mode D data readout's CRC-16/ARC, verified.
    Crc16(u16),
    /// None was sent: a mode D readout without CRC, or a framed data message that ends with
    /// `!` but lacks ETX and BCC. Nothing vouches for the data.
    Absent,
}

/// One readout as sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Readout {
    /// The identification message, if the readout has one.
    pub identification: Option<Identification>,
    /// The data sets, in the order sent.
    pub data_sets: Vec<DataSet>,
    /// Whether the data message was framed by STX (protocol modes A to E) or bare (mode D).
    pub framed: bool,
    /// The checksum carried and verified.
    pub checksum: Checksum,
}

/// The registers that name the meter, most specific first (C.D.E with B = 0, F = 255):
/// serial number 96.1.0 (`C.1.0`), `C.1` (96.1.255), DSMR's equipment identifier 96.1.1,
/// then the device address 0.0.0 and `0.0`.
pub(crate) const METER_REGISTERS: [(u8, u8, u8); 5] =
    [(96, 1, 0), (96, 1, 255), (96, 1, 1), (0, 0, 0), (0, 0, 255)];

impl Readout {
    /// The meter's name: the first non-empty value of a serial number or device address data
    /// set, by register C.D.E in this order: 96.1.0, 96.1.255 (`C.1`), 96.1.1, 0.0.0,
    /// 0.0.255 (`0.0`), with B = 0 (so an M-Bus sub-meter's `0-1:96.1.0` never names the
    /// readout's meter) and F = 255; else the identification message without `/`
    /// (`LGF5E360`), which names the type rather than the unit. Spaces around are trimmed.
    pub fn meter(&self) -> Option<String> {
        METER_REGISTERS
            .iter()
            .find_map(|&(c, d, e)| {
                self.data_sets
                    .iter()
                    .filter(|s| {
                        let r = s.register;
                        r.b == 0 && r.f == 255 && (r.c, r.d, r.e) == (c, d, e)
                    })
                    .filter_map(|s| s.values.first())
                    .map(|v| v.text.trim())
                    .find(|t| !t.is_empty())
            })
            .or_else(|| {
                self.identification
                    .as_ref()
                    .map(|i| i.text.trim())
                    .filter(|t| !t.is_empty())
            })
            .map(str::to_owned)
    }

    /// The canonical form: every value with a known unit becomes a [`Reading`] stamped with
    /// `received_at_ms` and [`Quality::TIME_FROM_RECEIVER`] (readout values carry no time of
    /// their own); every other value an attribute of its register, as sent.
    pub fn into_decoded(self, received_at_ms: i64) -> Decoded {
        let meter = self.meter();
        let mut readings = Vec::new();
        let mut attributes = Vec::new();
        for set in self.data_sets {
            for value in set.values {
                match value.quantity() {
                    Some((value, unit)) => readings.push(Reading {
                        register: set.register,
                        value,
                        unit,
                        ts_ms: received_at_ms,
                        quality: Quality::TIME_FROM_RECEIVER,
                    }),
                    None => attributes.push((set.register, value.text)),
                }
            }
        }
        Decoded {
            meter,
            readings,
            events: Vec::new(),
            attributes,
        }
    }
}
