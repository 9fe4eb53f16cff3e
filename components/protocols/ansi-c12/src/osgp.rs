//! OSGP (Open Smart Grid Protocol, ETSI GS OSG 001): PSEM services on the C12.19 table model,
//! carried over EN 14908 (LonTalk) power-line networks, with OSGP security.
//!
//! OSGP is a module of this crate, not a crate of its own: its APDUs are PSEM services on the
//! C12.19 table model, so it shares [`crate::psem`], [`crate::tables`] and the
//! interpretation of tables with C12.18/C12.22, and one decoder component serves both
//! protocols (`ansi-c12`, `osgp`), as the `mbus` component serves `mbus` and `wmbus`.
//!
//! # What the public material fixes, and what is ami's profile
//!
//! The text of ETSI GS OSG 001 V1.1.1 (2012-01), of its successor ETSI TS 104 001 and of
//! CLC/TS 50586 could not be read: the public copies found hold their front matter only.
//! Their scope places the messages in clause 9, the tables in Annexes A (basic) and B
//! (extended), the procedures in Annexes C and D, and the security (authentication,
//! encryption, key management) in Annex F; none of those was reachable.
//!
//! The public analyses of OSGP (Kursawe and Peters, "Structural Weaknesses in the Open
//! Smart Grid Protocol", 2015; Jovanovic and Neves, "Dumb Crypto in Smart Grids: Practical
//! Cryptanalysis of the Open Smart Grid Protocol", FSE 2015) fix this much: the application
//! data are C12.18-style requests and responses (`0x30` read, `0x3F` partial read,
//! `0x40`/`0x4F` writes, ...) on C12.19 basic and extended tables; every message carries a
//! sequence number and an 8-byte "OMA digest" computed with the device's Open Media Access
//! Key (OMAK); table data may be encrypted with RC4 under a key derived from the OMAK. That
//! legacy security is broken (key recovery from a handful of digest queries), and the OSGP
//! Alliance replaced it with OSGP-AES-128-PSK (AES-128 with pre-shared keys).
//!
//! The OSGP Alliance's released documentation of its meters' local ports (repository
//! `OSGP-Alliance-MEP-and-Optical/Documentation`: the *MEP Client Developer's Guide*
//! 078-0372-01BD and the *Optical Port Programmer's Guide* v1.1) fixes more, and this crate
//! follows it:
//!
//! * the services (\[MEP\] chapter 2, Tables 2.6-2.7 and RC4 Examples 1-2): `0x30` full
//!   read `<table> [<length>]`, `0x3F` partial read, `0x40`/`0x4F` writes, `0x00` ok
//!   `<count> <data>`, **without the PSEM checksum**; read here as
//!   [`crate::psem::Dialect::Osgp`];
//! * the security fields of the legacy form (\[MEP\] Tables 2.4-2.5): a request ends in a
//!   4-byte big-endian sequence number and the 8-byte digest (computed over the message
//!   and the sequence number), a response in the digest (computed over the request and the
//!   response); RC4 encrypts from the request code through the sequence number. That is the
//!   MEP link's framing (with a 2-byte length in front), not the power-line APDU's;
//! * the tables of OSGP meters: [`crate::osgp_tables`].
//!
//! The APDU layout below is still **ami's profile** of that structure (the standard's own
//! power-line layout could not be checked against a public source, and no public OSGP
//! capture exists):
//!
//! ```text
//! 0       security   0x00 legacy: OMA digest + RC4     -> refused (Error::Rc4Refused)
//!                    0x01 legacy: OMA digest, clear     -> refused (Error::Rc4Refused)
//!                    0x02 OSGP-AES-128-PSK              -> decrypted through the host
//! 1..7    device id  the 48-bit EN 14908 Neuron ID; the meter's name is its 12 hex digits
//! 7..11   sequence   UINT32, big-endian
//! 11..    payload    { <BER length> <OSGP service> }*, AES-128-GCM ciphertext in form 0x02
//! tail    8-byte OMA digest (legacy forms) or the 12-byte GCM tag (form 0x02)
//! ```
//!
//! OSGP-AES-128-PSK, as ami runs it: AES-128-GCM under the device's pre-shared key
//! (`KeyRef::Stored { meter: <device id>, role: KeyRole::OsgpOmak }`), nonce = device id ‖
//! `00 00` ‖ sequence, additional data = the 11 header bytes, 12-byte tag. The decoder never
//! holds the key: [`Crypto::aes_gcm_decrypt`] runs in the host.
//!
//! The payload's services are read like a C12.22 EPSEM's, in OSGP's encoding (a checksum is
//! accepted, and checked, where one is present): write requests carry tables (OSGP meters
//! report by writing their tables to the data concentrator), a read request followed by its
//! response carries the table read; the tables are read as an OSGP meter's
//! ([`crate::Profile::Osgp`]).

use ami_domain::crypto::{Crypto, KeyRef, KeyRole};

use crate::Error;
use crate::read::Reader;

/// The legacy form: OMA digest and RC4 encryption.
pub const SECURITY_RC4: u8 = 0x00;
/// The legacy form: OMA digest, no encryption.
pub const SECURITY_DIGEST: u8 = 0x01;
/// OSGP-AES-128-PSK.
pub const SECURITY_AES: u8 = 0x02;
/// Header length.
pub const HEADER: usize = 11;
/// GCM tag length.
pub const TAG: usize = 12;
/// OMA digest length.
pub const DIGEST: usize = 8;

/// An OSGP APDU with its payload in clear text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Apdu {
    /// The device id (Neuron ID).
    pub device: [u8; 6],
    /// The sequence number.
    pub sequence: u32,
    /// The decrypted payload: `{ <BER length> <service> }*`.
    pub payload: Vec<u8>,
}

impl Apdu {
    /// The meter's name: the device id as 12 lower-case hex digits.
    pub fn meter(&self) -> String {
        self.device.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// The services of the payload.
    pub fn services(&self) -> Result<Vec<&[u8]>, Error> {
        let mut r = Reader::new(&self.payload);
        let mut out = Vec::new();
        while r.remaining() > 0 {
            let len = crate::c1222::ber_len(&mut r)?;
            if len == 0 {
                break;
            }
            out.push(r.take(len, "OSGP service")?);
        }
        Ok(out)
    }
}

/// Whether `frame` starts like an OSGP APDU of this profile.
pub fn looks_osgp(frame: &[u8]) -> bool {
    matches!(
        frame.first(),
        Some(&(SECURITY_RC4 | SECURITY_DIGEST | SECURITY_AES))
    ) && frame.len() >= HEADER + DIGEST
}

/// Reads an OSGP APDU and decrypts its payload through `crypto`.
pub fn open(frame: &[u8], crypto: &mut dyn Crypto) -> Result<Apdu, Error> {
    let mut r = Reader::new(frame);
    let security = r.u8("OSGP security byte")?;
    let device = r.array::<6>("OSGP device id")?;
    let sequence = u32::from_be_bytes(r.array::<4>("OSGP sequence number")?);
    match security {
        SECURITY_RC4 | SECURITY_DIGEST => {
            // Checked for shape so that a garbled frame is not reported as legacy security.
            if r.remaining() < DIGEST {
                return Err(Error::Truncated {
                    what: "OSGP OMA digest",
                    at: r.pos(),
                    need: DIGEST,
                    have: r.remaining(),
                });
            }
            Err(Error::Rc4Refused)
        }
        SECURITY_AES => {
            let rest = r.rest();
            let split = rest.len().checked_sub(TAG).ok_or(Error::Truncated {
                what: "OSGP AES-GCM tag",
                at: r.pos(),
                need: TAG,
                have: rest.len(),
            })?;
            let (ciphertext, tag) = rest.split_at(split);
            let meter: String = device.iter().map(|b| format!("{b:02x}")).collect();
            let mut nonce = [0u8; 12];
            nonce[..6].copy_from_slice(&device);
            nonce[8..].copy_from_slice(&sequence.to_be_bytes());
            let aad = frame.get(..HEADER).unwrap_or_default();
            let key = KeyRef::Stored {
                meter: &meter,
                role: KeyRole::OsgpOmak,
            };
            let payload = crypto
                .aes_gcm_decrypt(key, &nonce, aad, ciphertext, tag)
                .map_err(|e| Error::crypto("OSGP-AES-128-PSK", e))?;
            Ok(Apdu {
                device,
                sequence,
                payload,
            })
        }
        other => Err(Error::Unsupported(format!(
            "OSGP security byte 0x{other:02X}"
        ))),
    }
}

/// The nonce and additional data of an OSGP-AES-128-PSK APDU's header (for builders).
pub fn nonce_and_aad(device: [u8; 6], sequence: u32) -> ([u8; 12], [u8; HEADER]) {
    let mut nonce = [0u8; 12];
    nonce[..6].copy_from_slice(&device);
    nonce[8..].copy_from_slice(&sequence.to_be_bytes());
    let mut aad = [0u8; HEADER];
    aad[0] = SECURITY_AES;
    aad[1..7].copy_from_slice(&device);
    aad[7..].copy_from_slice(&sequence.to_be_bytes());
    (nonce, aad)
}

/// The payload of services: `{ <BER length> <service> }*`.
pub fn build_payload(services: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    for s in services {
        crate::c1222::build_len(s.len(), &mut out);
        out.extend_from_slice(s);
    }
    out
}
