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
//! authentication), bits 0-1 response control.
//!
//! # Security modes 1 and 2 (AES-128 EAX')
//!
//! The calling authentication value carries the key id and the IV:
//!
//! ```text
//! AC L A2 L A0 L A1 L 80 01 <key-id> 81 04 <iv>
//! ```
//!
//! and the EPSEM after its control byte ends with a 4-byte MAC. [`open`] verifies (mode 1)
//! or decrypts and verifies (mode 2, the ED class and the services are the ciphertext) the
//! EPSEM through [`Crypto::eax_prime_decrypt`], with the key of the meter named by the
//! calling AP title (role [`KeyRole::AnsiC1222`], key id 0 only); the EAX' cleartext is the
//! canonified header of [`cleartext`]: the application context, called AP title, called AP
//! invocation id, calling AE qualifier, calling AP invocation id, mechanism name and calling
//! authentication value elements (tag, length, value; AP titles in their absolute form), the
//! user-information element from its tag through the EPSEM control byte, the calling AP
//! title element, the key id and the IV, in that order; in mode 1 the rest of the EPSEM
//! follows. This is the construction of ANSI C12.22-2008 as Wireshark's C12.22 dissector
//! (`epan/dissectors/packet-c1222.c`, `canonify_unencrypted_header`) and Itron/Elster's
//! MeteringSDK (`MProtocolC1222.cpp`) implement it, and it reproduces the cleartexts of the
//! test vectors of the EAX' submission to NIST (Moise, Beroset, Phinney, Burns, 2011). A
//! relative AP title is made absolute under the application context, else under the C12.22
//! root `2.16.124.113620.1.22` (MeteringSDK does so; the published vectors use absolute
//! titles only).

use ami_domain::crypto::{Crypto, KeyRef, KeyRole};

use crate::Error;
use crate::read::Reader;

/// The C12.22 root OID `2.16.124.113620.1.22` (BER contents), the base of relative AP titles
/// when the APDU names no application context.
pub const C1222_ROOT: [u8; 7] = [0x60, 0x7C, 0x86, 0xF7, 0x54, 0x01, 0x16];
/// Length of the EAX' MAC at the end of a secured EPSEM.
pub const MAC_LEN: usize = 4;

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

/// Reads an EPSEM. A protected one (security mode 1 or 2) gives its control byte only: see
/// [`open`].
pub fn epsem(bytes: &[u8]) -> Result<Epsem<'_>, Error> {
    let mut r = Reader::new(bytes);
    let control = r.u8("EPSEM control")?;
    if control & 0x80 == 0 {
        return Err(Error::malformed(
            "EPSEM",
            format!("control 0x{control:02X} without bit 7"),
        ));
    }
    let mut services = Vec::new();
    if (control >> 2) & 0x03 != 0 {
        // Protected: the ED class and the services are read once [`open`] has verified them
        // (and, in mode 2, decrypted them).
        return Ok(Epsem {
            control,
            ed_class: None,
            services,
        });
    }
    let ed_class = if control & 0x10 != 0 {
        Some(r.array::<4>("EPSEM ED class")?)
    } else {
        None
    };
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
    /// The elements as they came (tag, length and value), for the EAX' cleartext.
    pub raw: RawElements<'a>,
}

/// The ACSE elements of an APDU as they came on the wire (tag, length and value): what the
/// EAX' cleartext of a secured EPSEM is built from ([`cleartext`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RawElements<'a> {
    /// `A1` application context.
    pub context: Option<&'a [u8]>,
    /// `A2` called AP title.
    pub called: Option<&'a [u8]>,
    /// `A4` called AP invocation id.
    pub called_invocation: Option<&'a [u8]>,
    /// `A6` calling AP title.
    pub calling: Option<&'a [u8]>,
    /// `A7` calling AE qualifier.
    pub calling_qualifier: Option<&'a [u8]>,
    /// `A8` calling AP invocation id.
    pub calling_invocation: Option<&'a [u8]>,
    /// `8B` mechanism name.
    pub mechanism: Option<&'a [u8]>,
    /// `AC` calling authentication value.
    pub authentication: Option<&'a [u8]>,
    /// The user-information element from its tag `BE` through the EPSEM control byte.
    pub user_header: Option<&'a [u8]>,
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
    // The user-information element: where it starts in the body, and its value.
    let mut user = None;
    let body = outer.value;
    let mut e = Reader::new(body);
    while e.remaining() > 0 {
        let start = e.pos();
        let t = tlv(&mut e)?;
        let raw = body.get(start..e.pos());
        match t.tag {
            0xA1 => {
                a.context = Some(ap_title(t.value)?);
                a.raw.context = raw;
            }
            0xA2 => {
                a.called = Some(ap_title(t.value)?);
                a.raw.called = raw;
            }
            0xA4 => {
                a.called_invocation = Some(integer(t.value)?);
                a.raw.called_invocation = raw;
            }
            0xA6 => {
                a.calling = Some(ap_title(t.value)?);
                a.raw.calling = raw;
            }
            0xA7 => {
                a.calling_qualifier = Some(integer(t.value)?);
                a.raw.calling_qualifier = raw;
            }
            0xA8 => {
                a.calling_invocation = Some(integer(t.value)?);
                a.raw.calling_invocation = raw;
            }
            0x8B => a.raw.mechanism = raw,
            0xAC => {
                a.authentication = Some(t.value);
                a.raw.authentication = raw;
            }
            0xBE => user = Some((start, e.pos() - t.value.len(), t.value)),
            // Other ACSE elements (A3, A5, A9, AA, 8A ...) are not needed here.
            _ => {}
        }
    }
    let (user_start, user_value_at, user) =
        user.ok_or_else(|| Error::malformed("C12.22 APDU", "no user information (BE)"))?;
    let mut u = Reader::new(user);
    let ext = tlv(&mut u)?;
    if ext.tag != 0x28 {
        return Err(Error::malformed(
            "C12.22 user information",
            format!("tag 0x{:02X} (0x28 EXTERNAL expected)", ext.tag),
        ));
    }
    let ext_value_at = u.pos() - ext.value.len();
    let mut x = Reader::new(ext.value);
    while x.remaining() > 0 {
        let t = tlv(&mut x)?;
        if t.tag == 0x81 {
            a.epsem = t.value;
            // Through the EPSEM control byte, when there is one.
            let control_end = user_value_at + ext_value_at + x.pos() - t.value.len() + 1;
            a.raw.user_header = (!t.value.is_empty())
                .then(|| body.get(user_start..control_end))
                .flatten();
            return Ok(a);
        }
    }
    Err(Error::malformed(
        "C12.22 user information",
        "no octet-aligned EPSEM (81)",
    ))
}

/// The key id and IV of a calling authentication value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Security<'a> {
    /// The key id (`80` element), when given.
    pub key_id: Option<u8>,
    /// The IV (`81` element, 4 bytes).
    pub iv: &'a [u8],
}

impl Security<'_> {
    /// The key id, 0 when the element is absent.
    pub fn key(&self) -> u8 {
        self.key_id.unwrap_or(0)
    }
}

/// Reads the value of a calling authentication value (`AC`) element: `A2 L` (EXTERNAL), an
/// optional `02` indirect reference, `A0 L` (single ASN.1 type), `A1 L` (the C12.22 form:
/// `80 01 <key-id>` and `81 04 <iv>`). The C12.21 form and octet-aligned values are not
/// security for EPSEM.
pub fn security(value: &[u8]) -> Result<Security<'_>, Error> {
    const WHAT: &str = "C12.22 calling authentication value";
    let mut r = Reader::new(value);
    let external = tlv(&mut r)?;
    if external.tag != 0xA2 {
        return Err(Error::malformed(
            WHAT,
            format!("tag 0x{:02X} (0xA2 expected)", external.tag),
        ));
    }
    let mut x = Reader::new(external.value);
    let mut encoding = tlv(&mut x)?;
    if encoding.tag == 0x02 {
        encoding = tlv(&mut x)?;
    }
    if encoding.tag != 0xA0 {
        return Err(Error::Unsupported(format!(
            "{WHAT} encoding 0x{:02X} (0xA0 single-ASN1-type expected)",
            encoding.tag
        )));
    }
    let c1222 = tlv(&mut Reader::new(encoding.value))?;
    if c1222.tag != 0xA1 {
        return Err(Error::Unsupported(format!(
            "{WHAT} 0x{:02X} (0xA1 C12.22 key id and IV expected; 0xA0 is C12.21 \
             authentication)",
            c1222.tag
        )));
    }
    let mut key_id = None;
    let mut iv = None;
    let mut f = Reader::new(c1222.value);
    while f.remaining() > 0 {
        let t = tlv(&mut f)?;
        match (t.tag, t.value) {
            (0x80, [k]) => key_id = Some(*k),
            (0x80, v) => {
                return Err(Error::malformed(
                    WHAT,
                    format!("key id of {} bytes (1 expected)", v.len()),
                ));
            }
            (0x81, v) if v.len() == 4 => iv = Some(v),
            (0x81, v) => {
                return Err(Error::malformed(
                    WHAT,
                    format!("IV of {} bytes (4 expected)", v.len()),
                ));
            }
            _ => {}
        }
    }
    let iv = iv.ok_or_else(|| {
        Error::Unsupported(format!(
            "{WHAT} without an IV: it was given earlier in the session, which one frame does \
             not show"
        ))
    })?;
    Ok(Security { key_id, iv })
}

/// An AP title element (`A2`/`A6` and its value) in its absolute form: as it came when it is
/// an OID (`06`), else the relative arcs appended to `base` (the application context's OID,
/// or [`C1222_ROOT`]).
fn absolute_title(raw: &[u8], base: &[u8], out: &mut Vec<u8>) -> Result<(), Error> {
    let mut r = Reader::new(raw);
    let element = tlv(&mut r)?;
    let title = tlv(&mut Reader::new(element.value))?;
    if title.tag == 0x06 {
        out.extend_from_slice(raw);
        return Ok(());
    }
    let mut oid = base.to_vec();
    oid.extend_from_slice(title.value);
    out.extend(build_tlv(element.tag, &build_tlv(0x06, &oid)));
    Ok(())
}

/// The EAX' cleartext of a secured EPSEM (ANSI C12.22 canonified header, see the module
/// documentation), without the mode 1 EPSEM that follows it.
pub fn cleartext(apdu: &Apdu<'_>, security: &Security<'_>) -> Result<Vec<u8>, Error> {
    let raw = &apdu.raw;
    let user = raw
        .user_header
        .ok_or_else(|| Error::malformed("C12.22 user information", "no EPSEM control byte"))?;
    let base: &[u8] = match raw.context {
        Some(context) => {
            let element = tlv(&mut Reader::new(context))?;
            let oid = tlv(&mut Reader::new(element.value))?;
            if oid.tag != 0x06 {
                return Err(Error::malformed(
                    "C12.22 application context",
                    format!("tag 0x{:02X} (0x06 expected)", oid.tag),
                ));
            }
            oid.value
        }
        None => &C1222_ROOT,
    };
    let mut out = Vec::with_capacity(128);
    if let Some(e) = raw.context {
        out.extend_from_slice(e);
    }
    if let Some(e) = raw.called {
        absolute_title(e, base, &mut out)?;
    }
    for e in [
        raw.called_invocation,
        raw.calling_qualifier,
        raw.calling_invocation,
        raw.mechanism,
        raw.authentication,
    ]
    .into_iter()
    .flatten()
    {
        out.extend_from_slice(e);
    }
    out.extend_from_slice(user);
    if let Some(e) = raw.calling {
        absolute_title(e, base, &mut out)?;
    }
    if let Some(k) = security.key_id {
        out.push(k);
    }
    out.extend_from_slice(security.iv);
    Ok(out)
}

/// Verifies, and in security mode 2 decrypts, the EPSEM of `apdu` with the C12.22 key (key id
/// 0) of the meter named by the calling AP title; returns the clear EPSEM (the control byte
/// with the security mode cleared, the ED class if any, the services). A clear-text EPSEM
/// comes back as it is.
pub fn open(apdu: &Apdu<'_>, crypto: &mut dyn Crypto) -> Result<Vec<u8>, Error> {
    let (&control, rest) = apdu.epsem.split_first().ok_or(Error::Truncated {
        what: "EPSEM control",
        at: 0,
        need: 1,
        have: 0,
    })?;
    let mode = (control >> 2) & 0x03;
    if mode == 0 {
        return Ok(apdu.epsem.to_vec());
    }
    if mode == 3 {
        return Err(Error::Unsupported(
            "C12.22 EPSEM security mode 3 (reserved)".into(),
        ));
    }
    let value = apdu.authentication.ok_or_else(|| {
        Error::Unsupported(format!(
            "C12.22 EPSEM security mode {mode} (AES-128 EAX') without a calling authentication \
             value: the key id and IV were given earlier in the session, which one frame does \
             not show"
        ))
    })?;
    let security = security(value)?;
    if security.key() != 0 {
        return Err(Error::Unsupported(format!(
            "C12.22 key id {}: the key store holds key id 0 of each meter (AnsiC1222)",
            security.key()
        )));
    }
    let meter = apdu
        .calling
        .as_ref()
        .map(ToString::to_string)
        .ok_or_else(|| {
            Error::Unsupported(format!(
                "C12.22 EPSEM security mode {mode} without a calling AP title: no meter to name \
             the key by"
            ))
        })?;
    let split = rest.len().checked_sub(MAC_LEN).ok_or(Error::Truncated {
        what: "EPSEM MAC",
        at: 1,
        need: MAC_LEN,
        have: rest.len(),
    })?;
    let (data, mac) = rest.split_at(split);
    let mut clear = cleartext(apdu, &security)?;
    let key = KeyRef::Stored {
        meter: &meter,
        role: KeyRole::AnsiC1222,
    };
    let plain = if mode == 1 {
        clear.extend_from_slice(data);
        crypto
            .eax_prime_decrypt(key, &clear, &[], mac)
            .map_err(|e| Error::crypto("C12.22 EPSEM (EAX' mode 1)", e))?;
        data.to_vec()
    } else {
        crypto
            .eax_prime_decrypt(key, &clear, data, mac)
            .map_err(|e| Error::crypto("C12.22 EPSEM (EAX' mode 2)", e))?
    };
    let mut epsem = Vec::with_capacity(plain.len() + 1);
    epsem.push(control & !0x0C);
    epsem.extend_from_slice(&plain);
    Ok(epsem)
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

/// How [`build_secured`] protects its EPSEM.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Seal<'a> {
    /// Security mode: 1 (clear text with authentication) or 2 (ciphered).
    pub mode: u8,
    /// The called AP title (relative OID arcs, each below 128).
    pub called_relative: &'a [u8],
    /// The key id.
    pub key_id: u8,
    /// The IV.
    pub iv: [u8; 4],
}

/// Builds a secured C12.22 APDU (tests, examples and simulators): called and calling AP
/// titles, the calling AP invocation id, the calling authentication value (key id, IV) and an
/// EPSEM of `services` in security mode `seal.mode`. `eax` is EAX' encryption under the
/// meter's key: given the cleartext ([`cleartext`], followed by the EPSEM in mode 1) and the
/// plaintext (empty in mode 1), it returns the ciphertext and the MAC (this crate holds no
/// key and no cipher).
pub fn build_secured(
    calling_relative: &[u8],
    invocation: u8,
    services: &[&[u8]],
    seal: &Seal<'_>,
    eax: impl FnOnce(&[u8], &[u8]) -> (Vec<u8>, [u8; MAC_LEN]),
) -> Result<Vec<u8>, Error> {
    let mut data = Vec::new();
    for s in services {
        build_len(s.len(), &mut data);
        data.extend_from_slice(s);
    }
    data.push(0x00);
    let control = 0x80 | ((seal.mode & 0x03) << 2);
    let frame = |protected: &[u8], mac: &[u8]| {
        let mut ep = vec![control];
        ep.extend_from_slice(protected);
        ep.extend_from_slice(mac);
        let mut auth = build_tlv(0x80, &[seal.key_id]);
        auth.extend(build_tlv(0x81, &seal.iv));
        let auth = build_tlv(0xA2, &build_tlv(0xA0, &build_tlv(0xA1, &auth)));
        let mut body = Vec::new();
        body.extend(build_tlv(0xA2, &build_tlv(0x80, seal.called_relative)));
        body.extend(build_tlv(0xA6, &build_tlv(0x80, calling_relative)));
        body.extend(build_tlv(0xA8, &build_tlv(0x02, &[invocation])));
        body.extend(build_tlv(0xAC, &auth));
        body.extend(build_tlv(0xBE, &build_tlv(0x28, &build_tlv(0x81, &ep))));
        build_tlv(0x60, &body)
    };
    // The header is the same whatever the protected bytes: build it once to canonify it.
    let draft = frame(&data, &[0; MAC_LEN]);
    let a = apdu(&draft)?;
    let s = security(a.authentication.unwrap_or_default())?;
    let mut clear = cleartext(&a, &s)?;
    let (protected, mac) = if seal.mode == 1 {
        clear.extend_from_slice(&data);
        let (_, mac) = eax(&clear, &[]);
        (data, mac)
    } else {
        eax(&clear, &data)
    };
    Ok(frame(&protected, &mac))
}
