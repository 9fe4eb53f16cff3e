//! Data lines: `OBIS(value)(value)...`, read without copying.
//!
//! A data object is an OBIS code followed by one or more parenthesised groups. The groups
//! may continue on following lines that start with `(` (the DSMR 2.2/3.0 gas line
//! `0-1:24.3.0(...)(m3)` + `(00001.001)`). Blank lines are skipped, trailing blanks after the
//! last `)` are allowed; anything else is [`DecodeError::Malformed`], naming the line.

use ami_domain::{DecodeError, Obis};

/// One data object, borrowed from the telegram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DataObject<'a> {
    /// 1-based line number in the telegram (the header is line 1).
    pub line: usize,
    /// The OBIS code.
    pub obis: Obis,
    /// The OBIS code as written (`1-0:1.8.1`, `1-0:1.8.0*255`).
    pub code: &'a [u8],
    /// Everything from the first `(` to the last `)`, line ends of continuation lines included.
    pub value: &'a [u8],
}

impl<'a> DataObject<'a> {
    /// The groups' contents, without the parentheses.
    pub fn groups(&self) -> Groups<'a> {
        Groups { rest: self.value }
    }

    /// The only group's content, if there is exactly one.
    pub fn single(&self) -> Option<&'a [u8]> {
        let mut groups = self.groups();
        let first = groups.next()?;
        groups.next().is_none().then_some(first)
    }
}

/// The groups of a [`DataObject`], in order.
#[derive(Clone, Debug)]
pub struct Groups<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for Groups<'a> {
    type Item = &'a [u8];

    #[inline]
    fn next(&mut self) -> Option<&'a [u8]> {
        let open = self.rest.iter().position(|&b| b == b'(')?;
        let after = self.rest.get(open + 1..)?;
        let close = after.iter().position(|&b| b == b')')?;
        self.rest = after.get(close + 1..)?;
        after.get(..close)
    }
}

/// The data objects of a telegram body, in order; stops after the first error.
#[derive(Clone, Debug)]
pub struct Objects<'a> {
    body: &'a [u8],
    pos: usize,
    line: usize,
    failed: bool,
}

impl<'a> Objects<'a> {
    /// Reads `body`, whose first line is line `first_line` of the telegram.
    pub fn new(body: &'a [u8], first_line: usize) -> Self {
        Self {
            body,
            pos: 0,
            line: first_line,
            failed: false,
        }
    }

    fn at(&self, i: usize) -> Option<u8> {
        self.body.get(i).copied()
    }

    /// The first position from `from` on whose byte satisfies `stop`.
    fn seek_byte(&self, from: usize, stop: impl Fn(u8) -> bool) -> Option<usize> {
        let rest = self.body.get(from..)?;
        rest.iter().position(|&b| stop(b)).map(|p| from + p)
    }

    fn malformed(
        &mut self,
        start: usize,
        what: &str,
    ) -> Option<Result<DataObject<'a>, DecodeError>> {
        self.failed = true;
        let line = self.body.get(start..).unwrap_or_default();
        let end = line
            .iter()
            .position(|&b| b == b'\r' || b == b'\n')
            .unwrap_or(line.len())
            .min(48);
        let excerpt = String::from_utf8_lossy(line.get(..end).unwrap_or_default());
        Some(Err(DecodeError::Malformed(format!(
            "line {} `{excerpt}`: {what}",
            self.line
        ))))
    }
}

impl<'a> Iterator for Objects<'a> {
    type Item = Result<DataObject<'a>, DecodeError>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        // Skip blank lines and leading blanks.
        loop {
            match self.at(self.pos)? {
                b'\n' => self.line += 1,
                b' ' | b'\t' | b'\r' => {}
                _ => break,
            }
            self.pos += 1;
        }
        let start = self.pos;
        let line = self.line;

        // The OBIS code, up to '(': read as it is found in the usual case, else found first.
        let rest = self.body.get(start..).unwrap_or_default();
        let (mut i, code, obis) = match obis_prefix(rest) {
            Some((obis, len)) if rest.get(len) == Some(&b'(') => {
                (start + len, rest.get(..len).unwrap_or_default(), obis)
            }
            _ => {
                let i = match self.seek_byte(start, |b| matches!(b, b'(' | b'\r' | b'\n')) {
                    Some(i) if self.at(i) == Some(b'(') => i,
                    _ => return self.malformed(start, "no value in parentheses"),
                };
                let code = self.body.get(start..i).unwrap_or_default();
                let code = code.trim_ascii_end();
                let Some(obis) = parse_obis(code) else {
                    return self.malformed(start, "not an OBIS code before '('");
                };
                (i, code, obis)
            }
        };

        // The groups: '(' ... ')' repeated, possibly continued on lines starting with '('.
        let value_start = i;
        let value_end;
        loop {
            // self.at(i) == Some(b'(')
            let close = match self.seek_byte(i + 1, |b| matches!(b, b')' | b'\r' | b'\n')) {
                Some(j) if self.at(j) == Some(b')') => j + 1,
                _ => return self.malformed(start, "'(' without ')'"),
            };
            if self.at(close) == Some(b'(') {
                i = close;
                continue;
            }
            // Trailing blanks, then the line end (or the end of the body).
            let mut k = close;
            while matches!(self.at(k), Some(b' ' | b'\t' | b'\r')) {
                k += 1;
            }
            match self.at(k) {
                None => {
                    value_end = close;
                    self.pos = k;
                    break;
                }
                Some(b'\n') => {
                    if self.at(k + 1) == Some(b'(') {
                        // A continuation line.
                        self.line += 1;
                        i = k + 1;
                        continue;
                    }
                    value_end = close;
                    self.pos = k;
                    break;
                }
                Some(_) => return self.malformed(start, "unexpected text after ')'"),
            }
        }
        let value = self.body.get(value_start..value_end).unwrap_or_default();
        Some(Ok(DataObject {
            line,
            obis,
            code,
            value,
        }))
    }
}

/// An OBIS code: `A-B:C.D.E` with an optional `*F` (`&F`, `.F`) read directly from the
/// bytes, any other form [`Obis`]'s `FromStr` accepts through it.
pub fn parse_obis(code: &[u8]) -> Option<Obis> {
    match obis_prefix(code) {
        Some((obis, len)) if len == code.len() => Some(obis),
        _ => std::str::from_utf8(code).ok()?.parse().ok(),
    }
}

/// `A-B:C.D.E[*F]` at the start of `text`, ending at its end or at a `(`: the code and its
/// length. `None` for anything else (which [`parse_obis`] hands to the general parser).
fn obis_prefix(text: &[u8]) -> Option<(Obis, usize)> {
    let mut groups = [0u8; 6];
    groups[5] = 255;
    let mut i = 0;
    for (g, slot) in groups.iter_mut().enumerate() {
        let start = i;
        let mut v = 0u16;
        // At most 4 digits are read (9999 fits); more than 3 is not a group.
        while let Some(&d @ b'0'..=b'9') = text.get(i)
            && i - start < 4
        {
            v = v * 10 + u16::from(d - b'0');
            i += 1;
        }
        if i == start || i - start > 3 || v > 255 {
            return None;
        }
        *slot = v as u8;
        match (g, text.get(i)) {
            (0, Some(b'-'))
            | (1, Some(b':'))
            | (2 | 3, Some(b'.'))
            | (4, Some(b'*' | b'&' | b'.')) => {
                i += 1;
            }
            (4 | 5, None | Some(b'(')) => return Some((Obis::from_bytes(groups), i)),
            _ => return None,
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn objects(body: &[u8]) -> Vec<Result<DataObject<'_>, DecodeError>> {
        Objects::new(body, 2).collect()
    }

    #[test]
    fn obis_codes_match_the_domain_parser() {
        for text in [
            "1-0:1.8.1",
            "0-1:24.2.1",
            "1-0:1.8.0*255",
            "0-0:96.1.255*255",
            "1-0:1.8.0.101",
            "1-0:1.8.0&12",
            "1.8.1",
            "1-0:1.8",
            "1-0:1.8.256",
            "1-0:1.8.0001",
            "1-0:1.8.1*",
            "1-0:1.8.1*2*3",
            "1-0:1.8.1.2.3",
            "",
            "1-0:",
            "x",
            "01-000:001.008.001",
            "1-0:1..1",
        ] {
            assert_eq!(
                parse_obis(text.as_bytes()),
                text.parse::<Obis>().ok(),
                "{text:?}"
            );
        }
    }

    #[test]
    fn reads_lines_and_groups() {
        let body = b"\r\n1-0:1.8.1(000001.001*kWh)\r\n0-1:24.2.1(161129200000W)(00981.443*m3)\n";
        let got = objects(body);
        assert_eq!(got.len(), 2);
        if let [Ok(a), Ok(b)] = got.as_slice() {
            assert_eq!(a.line, 3);
            assert_eq!(a.obis, Obis::new(1, 0, 1, 8, 1, 255));
            assert_eq!(a.single(), Some(&b"000001.001*kWh"[..]));
            assert_eq!(b.line, 4);
            let groups: Vec<&[u8]> = b.groups().collect();
            assert_eq!(groups, [&b"161129200000W"[..], &b"00981.443*m3"[..]]);
        }
    }

    #[test]
    fn continuation_lines() {
        let body = b"0-1:24.3.0(161107190000)(00)(60)(1)(0-1:24.2.1)(m3)\r\n(00001.001)\r\n0-1:24.4.0(1)\r\n";
        let got = objects(body);
        assert_eq!(got.len(), 2);
        if let [Ok(a), Ok(b)] = got.as_slice() {
            assert_eq!(a.groups().count(), 7);
            assert_eq!(a.groups().last(), Some(&b"00001.001"[..]));
            assert_eq!(b.line, 4);
        }
    }

    #[test]
    fn malformed_lines_are_named() {
        for (body, line) in [
            (&b"1-0:1.8.1 000001.001\r\n"[..], 2),
            (b"\r\n1-0:1.8.x(1)\r\n", 3),
            (b"1-0:1.8.1(1\r\n", 2),
            (b"1-0:1.8.1(1)x\r\n", 2),
            (b"(1)\r\n", 2),
        ] {
            let got = objects(body);
            assert_eq!(got.len(), 1);
            let msg = format!("line {line} ");
            assert!(
                matches!(got.first(), Some(Err(DecodeError::Malformed(m))) if m.starts_with(&msg)),
                "{got:?}"
            );
        }
    }
}
