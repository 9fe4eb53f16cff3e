//! W3C trace context (`traceparent`) carried in message headers, so that one frame's trace
//! runs from the adapter that received it, through NATS, to the host that decoded it.

use std::fmt::Write as _;

/// A W3C trace context: which trace, which span in it is the parent, sampled or not.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TraceContext {
    /// The trace (16 bytes, not all zero).
    pub trace_id: [u8; 16],
    /// The parent span (8 bytes, not all zero).
    pub span_id: [u8; 8],
    /// Whether the trace is sampled.
    pub sampled: bool,
}

/// `N` random bytes from the OS, never all zero: for trace and span ids, and any id that must
/// be unique (not secret) across processes and restarts.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    use rand_core::RngCore;
    let mut b = [0u8; N];
    // On failure of the OS source (none on the platforms ami runs on), the clock: these ids
    // need to be unique, not secret.
    if rand_core::OsRng.try_fill_bytes(&mut b).is_err() || b.iter().all(|x| *x == 0) {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() ^ u128::from(std::process::id()))
            .unwrap_or(1)
            .to_le_bytes();
        for (i, x) in b.iter_mut().enumerate() {
            *x = t[i % t.len()] ^ (i as u8).wrapping_mul(151);
        }
        if let Some(first) = b.first_mut() {
            *first |= 1;
        }
    }
    b
}

fn hex_into(out: &mut String, bytes: &[u8]) {
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
}

fn unhex<const N: usize>(s: &str) -> Option<[u8; N]> {
    if s.len() != 2 * N {
        return None;
    }
    let mut out = [0u8; N];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

impl TraceContext {
    /// A new trace.
    pub fn new_root() -> Self {
        TraceContext {
            trace_id: random_bytes(),
            span_id: random_bytes(),
            sampled: true,
        }
    }

    /// A new span in the same trace.
    #[must_use]
    pub fn child(&self) -> Self {
        TraceContext {
            span_id: random_bytes(),
            ..*self
        }
    }

    /// Parses a `traceparent` header (version 00).
    pub fn parse(header: &str) -> Option<Self> {
        let mut parts = header.trim().split('-');
        let version = parts.next()?;
        let trace = parts.next()?;
        let span = parts.next()?;
        let flags = parts.next()?;
        if version != "00" || parts.next().is_some() {
            return None;
        }
        let trace_id: [u8; 16] = unhex(trace)?;
        let span_id: [u8; 8] = unhex(span)?;
        let [flags]: [u8; 1] = unhex(flags)?;
        if trace_id == [0; 16] || span_id == [0; 8] {
            return None;
        }
        Some(TraceContext {
            trace_id,
            span_id,
            sampled: flags & 1 == 1,
        })
    }

    /// The `traceparent` header value.
    pub fn header(&self) -> String {
        let mut s = String::with_capacity(55);
        s.push_str("00-");
        hex_into(&mut s, &self.trace_id);
        s.push('-');
        hex_into(&mut s, &self.span_id);
        s.push_str(if self.sampled { "-01" } else { "-00" });
        s
    }

    /// The trace id in hex (for logs and span fields).
    pub fn trace_id_hex(&self) -> String {
        let mut s = String::with_capacity(32);
        hex_into(&mut s, &self.trace_id);
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn w3c_example_round_trips() {
        let h = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
        let t = TraceContext::parse(h).unwrap();
        assert!(t.sampled);
        assert_eq!(t.header(), h);
        let c = t.child();
        assert_eq!(c.trace_id, t.trace_id);
        assert_ne!(c.span_id, t.span_id);
    }

    #[test]
    fn bad_headers_are_refused() {
        for h in [
            "",
            "01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            "00-00000000000000000000000000000000-b7ad6b7169203331-01",
            "00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01",
            "00-0af7651916cd43dd8448eb211c8031-b7ad6b7169203331-01",
            "00-zzf7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-x",
        ] {
            assert_eq!(TraceContext::parse(h), None, "{h}");
        }
        assert_ne!(TraceContext::new_root().trace_id, [0; 16]);
    }
}
