//! ANSI C12.22 application layer: the ACSE APDU (BER) that carries EPSEM, which carries PSEM
//! services.
//!
//! ```text
//! 60 L                         ACSE APDU ([APPLICATION 0])
//!   A1 L 06 L oid              application context (optional)
//!   A2 L (06|80) L title       called AP title (absolute OID, or relative [0])
//!   A4 L 02 L int              called AP invocation id
//!   A6 L (06|80) L title       calling AP title
//!   A7 L 02 L int              calling AE qualifier
//!   A8 L 02 L int              calling AP invocation id
//!   AC L ...                   calling authentication value (security mechanism, key id, IV)
//!   BE L 28 L [02 L int] 81 L  user information: EXTERNAL, octet-aligned EPSEM
//!        EPSEM := <epsem-control> [<ed-class: 4 bytes>] { <BER length> <service> }* [00]
//! ```
//!
//! `epsem-control`: bit 7 always set, bit 5 recovery session, bit 4 ED class present, bits
//! 2-3 security mode (0 clear text, 1 clear text with authentication, 2 ciphered with
//! authentication), bits 0-1 response control. Modes 1 and 2 use AES-128 EAX', which the
//! host's crypto interface does not offer: such messages fail with
//! [`Error::Unsupported`], never silently.

use crate::Error;
use crate::read::Reader;

/// The largest element this reader accepts (a C12.22 message is far smaller).
const MAX_LEN: usize = 1 << 20;

/// One BER element: its tag and contents.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tlv<'a> {
    /// The tag byte (single-byte tags only).
    pub tag: u8,
    /// The contents.
    pub value: &'a [u8],
}

/// Reads one BER TLV from `r`.
pub fn tlv<'a>(r: &mut Reader<'a>) -> Result<Tlv<'a>, Error> {
    let tag = r.u8("BER tag")?;
    if tag & 0x1F == 0x1F {
        return Err(Error::Unsupported(format!(
            "BER multi-byte tag 0x{tag:02X} in a C12.22 APDU"
        )));
    }
    let len = ber_len(r)?;
    Ok(Tlv {
        tag,
        value: r.take(len, "BER value")?,
    })
}

/// A BER length (short or long form, up to 3 length bytes).
pub fn ber_len(r: &mut Reader<'_>) -> Result<usize, Error> {
    let first = r.u8("BER length")?;
    if first < 0x80 {
        return Ok(usize::from(first));
    }
    let n = usize::from(first & 0x7F);
    if n == 0 || n > 3 {
        return Err(Error::malformed(
            "BER length",
            format!("length form 0x{first:02X}"),
        ));
    }
    let len = r.uint_be(n, "BER length")? as usize;
    if len > MAX_LEN {
        return Err(Error::malformed("BER length", format!("{len} bytes")));
    }
    Ok(len)
}

/// An AP title: a universal OID (`06`) or a relative OID (`80`, relative to the C12.22
/// root).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApTitle {
    /// A relative OID.
    pub relative: bool,
    /// The arcs.
    pub arcs: Vec<u64>,
}

impl std::fmt::Display for ApTitle {
    /// Dotted arcs; a relative title starts with a dot (`.1.2.3`).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, a) in self.arcs.iter().enumerate() {
            if i > 0 || self.relative {
                f.write_str(".")?;
            }
            write!(f, "{a}")?;
        }
        Ok(())
    }
}

fn arcs(bytes: &[u8]) -> Result<Vec<u64>, Error> {
    let mut out = Vec::new();
    let mut v: u64 = 0;
    let mut open = false;
    for &b in bytes {
        if v > (u64::MAX >> 7) {
            return Err(Error::malformed("OID", "arc above 64 bits"));
        }
        v = (v << 7) | u64::from(b & 0x7F);
        open = b & 0x80 != 0;
        if !open {
            out.push(v);
            v = 0;
        }
    }
    if open || out.is_empty() {
        return Err(Error::malformed("OID", "empty or cut inside an arc"));
    }
    Ok(out)
}

/// Reads the title inside an `A2`/`A6` element.
pub fn ap_title(value: &[u8]) -> Result<ApTitle, Error> {
    let mut r = Reader::new(value);
    let t = tlv(&mut r)?;
    match t.tag {
        0x06 => {
            let mut a = arcs(t.value)?;
            let first = a.first().copied().unwrap_or(0);
            let (x, y) = if first < 80 {
                (first / 40, first % 40)
            } else {
                (2, first - 80)
            };
            a.splice(0..1, [x, y]);
            Ok(ApTitle {
                relative: false,
                arcs: a,
            })
        }
        0x80 | 0x0D => Ok(ApTitle {
            relative: true,
            arcs: arcs(t.value)?,
        }),
        other => Err(Error::malformed(
            "C12.22 AP title",
            format!("tag 0x{other:02X} (06 or 80 expected)"),
        )),
    }
}

fn integer(value: &[u8]) -> Result<u32, Error> {
    let mut r = Reader::new(value);
    let t = tlv(&mut r)?;
    if t.tag != 0x02 || t.value.is_empty() || t.value.len() > 4 {
        return Err(Error::malformed(
            "C12.22 integer",
            format!("tag 0x{:02X}, {} bytes", t.tag, t.value.len()),
        ));
    }
    Ok(t.value.iter().fold(0u32, |v, &b| (v << 8) | u32::from(b)))
}

/// The EPSEM envelope.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Epsem<'a> {
    /// The control byte.
    pub control: u8,
    /// The ED class, if present.
    pub ed_class: Option<[u8; 4]>,
    /// The services, each the bytes of one PSEM request or response.
    pub services: Vec<&'a [u8]>,
}

impl Epsem<'_> {
    /// The security mode (0 clear, 1 clear with authentication, 2 ciphered).
    pub fn security_mode(&self) -> u8 {
        (self.control >> 2) & 0x03
    }
}

/// Reads an EPSEM.
pub fn epsem(bytes: &[u8]) -> Result<Epsem<'_>, Error> {
    let mut r = Reader::new(bytes);
    let control = r.u8("EPSEM control")?;
    if control & 0x80 == 0 {
        return Err(Error::malformed(
            "EPSEM",
            format!("control 0x{control:02X} without bit 7"),
        ));
    }
    let ed_class = if control & 0x10 != 0 {
        Some(r.array::<4>("EPSEM ED class")?)
    } else {
        None
    };
    let mut services = Vec::new();
    if (control >> 2) & 0x03 != 0 {
        return Ok(Epsem {
            control,
            ed_class,
            services,
        });
    }
    while r.remaining() > 0 {
        let len = ber_len(&mut r)?;
        if len == 0 {
            break;
        }
        services.push(r.take(len, "EPSEM service")?);
    }
    Ok(Epsem {
        control,
        ed_class,
        services,
    })
}

/// A C12.22 ACSE APDU.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Apdu<'a> {
    /// Application context.
    pub context: Option<ApTitle>,
    /// Called AP title.
    pub called: Option<ApTitle>,
    /// Called AP invocation id.
    pub called_invocation: Option<u32>,
    /// Calling AP title.
    pub calling: Option<ApTitle>,
    /// Calling AE qualifier.
    pub calling_qualifier: Option<u32>,
    /// Calling AP invocation id.
    pub calling_invocation: Option<u32>,
    /// Calling authentication value (raw).
    pub authentication: Option<&'a [u8]>,
    /// The EPSEM bytes of the user information.
    pub epsem: &'a [u8],
}

/// Reads an ACSE APDU (`60 L ...`); the whole input must be the APDU.
pub fn apdu(frame: &[u8]) -> Result<Apdu<'_>, Error> {
    let mut r = Reader::new(frame);
    let outer = tlv(&mut r)?;
    if outer.tag != 0x60 {
        return Err(Error::malformed(
            "C12.22 APDU",
            format!("tag 0x{:02X} (0x60 expected)", outer.tag),
        ));
    }
    if r.remaining() != 0 {
        return Err(Error::malformed(
            "C12.22 APDU",
            format!("{} bytes after the APDU", r.remaining()),
        ));
    }
    let mut a = Apdu::default();
    let mut user = None;
    let mut e = Reader::new(outer.value);
    while e.remaining() > 0 {
        let t = tlv(&mut e)?;
        match t.tag {
            0xA1 => a.context = Some(ap_title(t.value)?),
            0xA2 => a.called = Some(ap_title(t.value)?),
            0xA4 => a.called_invocation = Some(integer(t.value)?),
            0xA6 => a.calling = Some(ap_title(t.value)?),
            0xA7 => a.calling_qualifier = Some(integer(t.value)?),
            0xA8 => a.calling_invocation = Some(integer(t.value)?),
            0xAC => a.authentication = Some(t.value),
            0xBE => user = Some(t.value),
            // Other ACSE elements (A3, A5, A9, AA, AB, 8A, 8B ...) are not needed here.
            _ => {}
        }
    }
    let user = user.ok_or_else(|| Error::malformed("C12.22 APDU", "no user information (BE)"))?;
    let mut u = Reader::new(user);
    let ext = tlv(&mut u)?;
    if ext.tag != 0x28 {
        return Err(Error::malformed(
            "C12.22 user information",
            format!("tag 0x{:02X} (0x28 EXTERNAL expected)", ext.tag),
        ));
    }
    let mut x = Reader::new(ext.value);
    while x.remaining() > 0 {
        let t = tlv(&mut x)?;
        if t.tag == 0x81 {
            a.epsem = t.value;
            return Ok(a);
        }
    }
    Err(Error::malformed(
        "C12.22 user information",
        "no octet-aligned EPSEM (81)",
    ))
}

/// BER length bytes of `n`.
pub fn build_len(n: usize, out: &mut Vec<u8>) {
    if n < 0x80 {
        out.push(n as u8);
    } else if n < 0x100 {
        out.extend_from_slice(&[0x81, n as u8]);
    } else {
        let n = n.min(0xFF_FFFF);
        out.extend_from_slice(&[0x83, (n >> 16) as u8, (n >> 8) as u8, n as u8]);
    }
}

/// Builds a TLV.
pub fn build_tlv(tag: u8, value: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    build_len(value.len(), &mut out);
    out.extend_from_slice(value);
    out
}

/// Builds a clear-text C12.22 APDU from a calling AP title (relative OID arcs, each below
/// 128), an invocation id and PSEM services (tests, examples and simulators).
pub fn build(calling_relative: &[u8], invocation: u8, services: &[&[u8]]) -> Vec<u8> {
    let mut ep = vec![0x80];
    for s in services {
        build_len(s.len(), &mut ep);
        ep.extend_from_slice(s);
    }
    ep.push(0x00);
    let mut body = Vec::new();
    body.extend(build_tlv(0xA6, &build_tlv(0x80, calling_relative)));
    body.extend(build_tlv(0xA8, &build_tlv(0x02, &[invocation])));
    body.extend(build_tlv(0xBE, &build_tlv(0x28, &build_tlv(0x81, &ep))));
    build_tlv(0x60, &body)
}
