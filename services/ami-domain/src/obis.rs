//! OBIS codes (IEC 62056-61): the six-group register identifiers `A-B:C.D.E*F`.

use std::fmt;
use std::str::FromStr;

/// An OBIS code, value groups A to F.
///
/// Written `1-0:1.8.0*255`; parsing also accepts the short forms meters print
/// (`1-0:1.8.0`, `1.8.0`, `1-0:1.8.0.255`), filling missing groups the way
/// IEC 62056-61 does (A = 1 for the bare `C.D.E` form of electricity readouts, B = 0, F = 255).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Obis {
    /// Medium (0 abstract, 1 electricity, 4 heat cost, 5/6 heat/cooling, 7 gas, 8/9 water).
    pub a: u8,
    /// Channel.
    pub b: u8,
    /// Quantity measured.
    pub c: u8,
    /// Processing (cumulative, current, maximum, ...).
    pub d: u8,
    /// Tariff or classification.
    pub e: u8,
    /// Billing period or historical value; 255 when unused.
    pub f: u8,
}

/// Why a text is not an OBIS code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ObisError {
    /// The text does not have the `A-B:C.D.E*F` shape.
    #[error("not an OBIS code: {0:?}")]
    Shape(String),
    /// A group is not a number from 0 to 255.
    #[error("OBIS group {group:?} out of range in {text:?}")]
    Group {
        /// The offending group text.
        group: String,
        /// The whole code as given.
        text: String,
    },
}

impl Obis {
    /// Builds a code from its six groups.
    pub const fn new(a: u8, b: u8, c: u8, d: u8, e: u8, f: u8) -> Self {
        Self { a, b, c, d, e, f }
    }

    /// The six groups as bytes, the way DLMS carries a logical name.
    pub const fn to_bytes(self) -> [u8; 6] {
        [self.a, self.b, self.c, self.d, self.e, self.f]
    }

    /// A code from a six-byte DLMS logical name.
    pub const fn from_bytes(b: [u8; 6]) -> Self {
        Self::new(b[0], b[1], b[2], b[3], b[4], b[5])
    }

    /// This code with another channel (group B).
    pub const fn with_channel(self, b: u8) -> Self {
        Self { b, ..self }
    }
}

impl fmt::Display for Obis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}-{}:{}.{}.{}*{}",
            self.a, self.b, self.c, self.d, self.e, self.f
        )
    }
}

impl FromStr for Obis {
    type Err = ObisError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let shape = || ObisError::Shape(text.to_owned());
        let num = |g: &str| -> Result<u8, ObisError> {
            if g.is_empty() || g.len() > 3 || !g.bytes().all(|b| b.is_ascii_digit()) {
                return Err(ObisError::Group {
                    group: g.to_owned(),
                    text: text.to_owned(),
                });
            }
            g.parse::<u8>().map_err(|_| ObisError::Group {
                group: g.to_owned(),
                text: text.to_owned(),
            })
        };
        let (ab, rest) = match text.split_once(':') {
            Some((ab, rest)) => (Some(ab), rest),
            None => (None, text),
        };
        let (a, b) = match ab {
            Some(ab) => {
                let (a, b) = ab.split_once('-').ok_or_else(shape)?;
                (num(a)?, num(b)?)
            }
            None => (1, 0),
        };
        let (cde, f) = match rest.split_once(['*', '&']) {
            Some((cde, f)) => (cde, Some(num(f)?)),
            None => (rest, None),
        };
        let mut groups = cde.split('.');
        let c = num(groups.next().ok_or_else(shape)?)?;
        let d = num(groups.next().ok_or_else(shape)?)?;
        let e = match groups.next() {
            Some(e) => num(e)?,
            None => 255,
        };
        let f = match (f, groups.next()) {
            (Some(_), Some(_)) => return Err(shape()),
            (Some(f), None) => f,
            (None, Some(f)) => num(f)?,
            (None, None) => 255,
        };
        if groups.next().is_some() {
            return Err(shape());
        }
        Ok(Self { a, b, c, d, e, f })
    }
}

#[cfg(feature = "serde")]
impl serde::Serialize for Obis {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_full_and_short_forms() {
        assert_eq!(
            "1-0:1.8.0*255".parse::<Obis>(),
            Ok(Obis::new(1, 0, 1, 8, 0, 255))
        );
        assert_eq!(
            "0-1:24.2.1".parse::<Obis>(),
            Ok(Obis::new(0, 1, 24, 2, 1, 255))
        );
        assert_eq!("1.8.1".parse::<Obis>(), Ok(Obis::new(1, 0, 1, 8, 1, 255)));
        assert_eq!(
            "1-0:1.8.0.101".parse::<Obis>(),
            Ok(Obis::new(1, 0, 1, 8, 0, 101))
        );
        assert!("C.1.0".parse::<Obis>().is_err());
    }

    #[test]
    fn rejects_bad_groups() {
        assert!(matches!(
            "1-0:1.8.256".parse::<Obis>(),
            Err(ObisError::Group { .. })
        ));
        assert!("1-0:1.8.0*1*2".parse::<Obis>().is_err());
        assert!("".parse::<Obis>().is_err());
        assert!("1-0:1".parse::<Obis>().is_err());
        assert!("1-0:1.2.3.4.5".parse::<Obis>().is_err());
    }

    proptest! {
        #[test]
        fn display_round_trips(a: u8, b: u8, c: u8, d: u8, e: u8, f: u8) {
            let o = Obis::new(a, b, c, d, e, f);
            prop_assert_eq!(o.to_string().parse::<Obis>(), Ok(o));
        }

        #[test]
        fn never_panics(s in ".{0,40}") {
            let _ = s.parse::<Obis>();
        }
    }
}
