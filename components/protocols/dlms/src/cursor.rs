//! A bounds-checked reader over a byte slice: every read either succeeds or says what was
//! cut short, so no parser indexes input directly.

use ami_domain::DecodeError;

/// Reads big-endian fields from the front of a slice.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Cursor<'a> {
    rest: &'a [u8],
}

impl<'a> Cursor<'a> {
    pub(crate) const fn new(bytes: &'a [u8]) -> Self {
        Self { rest: bytes }
    }

    /// The bytes not read yet.
    pub(crate) const fn rest(&self) -> &'a [u8] {
        self.rest
    }

    pub(crate) const fn remaining(&self) -> usize {
        self.rest.len()
    }

    pub(crate) const fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    pub(crate) fn peek(&self) -> Option<u8> {
        self.rest.first().copied()
    }

    /// `n` bytes, or `Truncated` naming `what`.
    pub(crate) fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], DecodeError> {
        if n > self.rest.len() {
            return Err(DecodeError::Truncated(format!(
                "{what}: {n} bytes needed, {} left",
                self.rest.len()
            )));
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    pub(crate) fn array<const N: usize>(&mut self, what: &str) -> Result<[u8; N], DecodeError> {
        let b = self.take(N, what)?;
        let mut out = [0u8; N];
        out.copy_from_slice(b);
        Ok(out)
    }

    pub(crate) fn u8(&mut self, what: &str) -> Result<u8, DecodeError> {
        Ok(self.array::<1>(what)?[0])
    }

    pub(crate) fn u16(&mut self, what: &str) -> Result<u16, DecodeError> {
        Ok(u16::from_be_bytes(self.array(what)?))
    }

    pub(crate) fn u32(&mut self, what: &str) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(self.array(what)?))
    }

    pub(crate) fn u64(&mut self, what: &str) -> Result<u64, DecodeError> {
        Ok(u64::from_be_bytes(self.array(what)?))
    }

    /// An A-XDR length: one byte below 0x80, else `0x80 | n` followed by `n` (1 to 4) bytes.
    /// The length is checked against the bytes left, so callers may allocate by it.
    pub(crate) fn length(&mut self, what: &str) -> Result<usize, DecodeError> {
        let len = self.raw_length(what)?;
        if len > self.rest.len() {
            return Err(DecodeError::Truncated(format!(
                "{what}: length {len} but {} bytes left",
                self.rest.len()
            )));
        }
        Ok(len)
    }

    /// An A-XDR length not checked against the bytes left (a bit count).
    pub(crate) fn raw_length(&mut self, what: &str) -> Result<usize, DecodeError> {
        let first = self.u8(what)?;
        let len = if first < 0x80 {
            usize::from(first)
        } else {
            let n = usize::from(first & 0x7F);
            if n == 0 || n > 4 {
                return Err(DecodeError::Malformed(format!(
                    "{what}: length form 0x{first:02x} not supported"
                )));
            }
            self.take(n, what)?
                .iter()
                .fold(0usize, |acc, b| (acc << 8) | usize::from(*b))
        };
        Ok(len)
    }

    /// A length-prefixed octet string.
    pub(crate) fn octets(&mut self, what: &str) -> Result<&'a [u8], DecodeError> {
        let n = self.length(what)?;
        self.take(n, what)
    }
}
