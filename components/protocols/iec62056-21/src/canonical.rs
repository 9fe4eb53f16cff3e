//! The canonical form built straight from the bytes while the data block is read: what
//! [`Readout::into_decoded`](crate::Readout::into_decoded) gives, without first copying every
//! value into a [`DataSet`](crate::DataSet).

use ami_domain::{Decoded, Obis, Quality, Reading};

use crate::dataset::{self, Sink};
use crate::ident::Identification;
use crate::readout::METER_REGISTERS;

/// Readings and attributes as the data sets come, and the meter's name candidates.
pub(crate) struct Builder<'a> {
    out: Decoded,
    received_at_ms: i64,
    /// The current data set's register.
    register: Obis,
    /// Its rank in [`METER_REGISTERS`], if it names the meter.
    meter_rank: Option<usize>,
    /// Whether the next value is the first of its data set.
    first: bool,
    /// Per rank, the first non-empty first value of a data set of that register.
    meter: [Option<&'a [u8]>; METER_REGISTERS.len()],
}

impl<'a> Builder<'a> {
    /// A builder for a readout of `len` bytes received at `received_at_ms`.
    pub(crate) fn new(len: usize, received_at_ms: i64) -> Self {
        let mut out = Decoded::default();
        // A value takes at least `a(v)` and a line end on the wire: a generous bound that
        // spares most regrowth of the vectors.
        out.readings.reserve(len / 16);
        out.attributes.reserve(len / 64);
        Self {
            out,
            received_at_ms,
            register: Obis::new(0, 0, 0, 0, 0, 0),
            meter_rank: None,
            first: false,
            meter: [None; METER_REGISTERS.len()],
        }
    }

    /// The decoded readout; `identification` names the meter when no register does.
    pub(crate) fn finish(mut self, identification: Option<&Identification>) -> Decoded {
        self.out.meter = self
            .meter
            .iter()
            .flatten()
            .next()
            .map(|v| dataset::latin1(v).trim().to_owned())
            .or_else(|| {
                identification
                    .map(|i| i.text.trim())
                    .filter(|t| !t.is_empty())
                    .map(str::to_owned)
            });
        self.out
    }
}

impl<'a> Sink<'a> for Builder<'a> {
    fn data_set(&mut self, register: Obis) {
        self.register = register;
        self.first = true;
        let r = register;
        self.meter_rank = if r.b == 0 && r.f == 255 {
            METER_REGISTERS
                .iter()
                .position(|&cde| cde == (r.c, r.d, r.e))
        } else {
            None
        };
    }

    fn value(&mut self, text: &'a [u8]) {
        if std::mem::take(&mut self.first)
            && let Some(slot) = self.meter_rank.and_then(|k| self.meter.get_mut(k))
            && slot.is_none()
            && !dataset::latin1(text).trim().is_empty()
        {
            *slot = Some(text);
        }
        match dataset::quantity_of(text) {
            Some((value, unit)) => self.out.readings.push(Reading {
                register: self.register,
                value,
                unit,
                ts_ms: self.received_at_ms,
                quality: Quality::TIME_FROM_RECEIVER,
            }),
            None => self
                .out
                .attributes
                .push((self.register, dataset::latin1(text))),
        }
    }
}
