//! The identification message `/XXXZ\WIdent CR LF` a meter answers a sign-on with, or sends
//! ahead of a mode D push.

use ami_domain::DecodeError;

/// The longest identification message accepted between `/` and CR LF. The standard's is 22
/// characters (`XXX`, `Z`, `\W`, 16 identification characters); a little slack is left for
/// meters that exceed it, but a "line" longer than this is no identification message.
const MAX_LEN: usize = 64;

/// A parsed identification message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identification {
    /// The three-letter manufacturer (FLAG) id, as sent (`LGZ`, `ISk`: a lower-case third
    /// letter announces a 20 ms minimum reaction time).
    pub manufacturer: String,
    /// The baud rate identification character Z.
    pub baud_char: char,
    /// The enhanced capability character W of an `\W` sequence, if the meter sent one.
    pub enhanced: Option<char>,
    /// The manufacturer-specific identification (type, firmware) after Z and `\W`; may be empty.
    pub ident: String,
    /// The whole message between `/` and the line end, exactly as sent.
    pub text: String,
}

impl Identification {
    /// The baud rate Z proposes: `0`..`6` in protocol modes C and E (300 to 19 200 Bd),
    /// `A`..`F` in mode B (600 to 19 200 Bd); `None` for any other character (mode A, reserved).
    pub fn baud_rate(&self) -> Option<u32> {
        Some(match self.baud_char {
            '0' => 300,
            '1' | 'A' => 600,
            '2' | 'B' => 1200,
            '3' | 'C' => 2400,
            '4' | 'D' => 4800,
            '5' | 'E' => 9600,
            '6' | 'F' => 19200,
            _ => return None,
        })
    }
}

/// Parses the identification message starting with `/` at `start`; returns it and the index
/// after its line end.
pub(crate) fn parse(input: &[u8], start: usize) -> Result<(Identification, usize), DecodeError> {
    let body_start = start + 1;
    let mut end = body_start;
    loop {
        match input.get(end) {
            None => {
                return Err(DecodeError::Truncated(format!(
                    "identification message at byte {start} ends without CR LF"
                )));
            }
            Some(b'\r' | b'\n') => break,
            Some(&b) if is_ident_char(b) => {
                if end - body_start >= MAX_LEN {
                    return Err(DecodeError::Malformed(format!(
                        "identification message at byte {start} is longer than {MAX_LEN} characters"
                    )));
                }
                end += 1;
            }
            Some(&b) => {
                return Err(DecodeError::Malformed(format!(
                    "byte 0x{b:02x} at {end} in the identification message"
                )));
            }
        }
    }
    let next = match (input.get(end), input.get(end + 1)) {
        (Some(b'\r'), Some(b'\n')) => end + 2,
        (Some(b'\n'), _) => end + 1,
        (Some(b'\r'), None) => {
            return Err(DecodeError::Truncated(format!(
                "identification message ends at byte {end} with CR but no LF"
            )));
        }
        _ => {
            return Err(DecodeError::Malformed(format!(
                "identification message: CR at byte {end} is not followed by LF"
            )));
        }
    };
    let body = input.get(body_start..end).unwrap_or_default();
    let text: String = body.iter().map(|&b| char::from(b)).collect();
    let shape = || {
        DecodeError::Malformed(format!(
            "identification message {text:?} at byte {start} is not /XXXZIdent"
        ))
    };
    let (manufacturer, rest) = body.split_first_chunk::<3>().ok_or_else(shape)?;
    if !manufacturer.iter().all(u8::is_ascii_alphabetic) {
        return Err(shape());
    }
    let (&baud, mut rest) = rest.split_first().ok_or_else(shape)?;
    if baud == b'\\' {
        return Err(shape());
    }
    let mut enhanced = None;
    if let [b'\\', w, tail @ ..] = rest {
        enhanced = Some(char::from(*w));
        rest = tail;
    }
    let ident = Identification {
        manufacturer: manufacturer.iter().map(|&b| char::from(b)).collect(),
        baud_char: char::from(baud),
        enhanced,
        ident: rest.iter().map(|&b| char::from(b)).collect(),
        text,
    };
    Ok((ident, next))
}

/// Printable ASCII except the start and end characters `/` and `!`.
fn is_ident_char(b: u8) -> bool {
    (0x20..=0x7E).contains(&b) && b != b'/' && b != b'!'
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ident(text: &[u8]) -> Result<Identification, DecodeError> {
        parse(text, 0).map(|(i, _)| i)
    }

    #[test]
    fn parses_plain_and_enhanced() -> Result<(), DecodeError> {
        let i = ident(b"/LGZ5\\2ZMD4104407.B31\r\n")?;
        assert_eq!(i.manufacturer, "LGZ");
        assert_eq!(i.baud_char, '5');
        assert_eq!(i.baud_rate(), Some(9600));
        assert_eq!(i.enhanced, Some('2'));
        assert_eq!(i.ident, "ZMD4104407.B31");
        assert_eq!(i.text, "LGZ5\\2ZMD4104407.B31");
        let k = ident(b"/KAM5\r\n")?;
        assert_eq!((k.manufacturer.as_str(), k.ident.as_str()), ("KAM", ""));
        Ok(())
    }

    #[test]
    fn rejects_bad_shapes() {
        assert!(matches!(ident(b"/LG\r\n"), Err(DecodeError::Malformed(_))));
        assert!(matches!(
            ident(b"/L1Z5X\r\n"),
            Err(DecodeError::Malformed(_))
        ));
        assert!(matches!(ident(b"/LGZ5X"), Err(DecodeError::Truncated(_))));
        assert!(matches!(ident(b"/LGZ5X\r"), Err(DecodeError::Truncated(_))));
        assert!(matches!(
            ident(b"/LGZ5X\rY"),
            Err(DecodeError::Malformed(_))
        ));
        assert!(matches!(
            ident(b"/LGZ5\x02\r\n"),
            Err(DecodeError::Malformed(_))
        ));
    }
}
