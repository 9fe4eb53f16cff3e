//! The crate's typed errors, and their mapping onto ami's [`DecodeError`].

use ami_domain::DecodeError;
use ami_domain::crypto::CryptoError;

/// Why a C12.18/C12.22/OSGP frame or a C12.19 table could not be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The input ends before the structure does.
    #[error("truncated {what}: needs {need} bytes at offset {at}, has {have}")]
    Truncated {
        /// What was being read.
        what: &'static str,
        /// Where it starts.
        at: usize,
        /// How many bytes it needs from there.
        need: usize,
        /// How many there are.
        have: usize,
    },
    /// A C12.18 packet does not start with STP `0xEE`.
    #[error("not a C12.18 packet: start byte 0x{0:02X}, expected 0xEE")]
    Start(u8),
    /// A C12.18 packet's CRC does not match its bytes.
    #[error("C12.18 packet CRC {got:04x} (wire order), computed {computed:04x}")]
    Crc {
        /// The CRC on the wire, low byte first as printed.
        got: u16,
        /// The CRC of the packet's bytes, in the same order.
        computed: u16,
    },
    /// A table-data checksum (PSEM `<cksum>`) matches neither form.
    #[error("{what} checksum 0x{got:02X}, computed 0x{computed:02X}")]
    Cksum {
        /// Which data.
        what: &'static str,
        /// The checksum on the wire.
        got: u8,
        /// The standard's (two's complement) checksum of the data.
        computed: u8,
    },
    /// The bytes break the grammar.
    #[error("malformed {what}: {why}")]
    Malformed {
        /// What was being read.
        what: &'static str,
        /// What is wrong.
        why: String,
    },
    /// Valid, but not handled here.
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// OSGP's deprecated RC4 encryption with the OMA digest: recognised, never decoded.
    #[error(
        "OSGP frame secured with RC4 and the OMA digest (deprecated, broken: ETSI GS OSG 001 \
         legacy security); refused, the meter must be moved to OSGP-AES-128-PSK"
    )]
    Rc4Refused,
    /// A key needed for the frame is not in the key store.
    #[error("missing key: {0}")]
    MissingKey(String),
    /// The authentication tag does not verify: wrong key or tampered frame.
    #[error("authentication failed: {0}")]
    Authentication(String),
}

impl Error {
    /// A [`Error::Malformed`].
    pub fn malformed(what: &'static str, why: impl Into<String>) -> Self {
        Error::Malformed {
            what,
            why: why.into(),
        }
    }

    /// The error of a failed crypto call on `what`.
    pub fn crypto(what: &str, e: CryptoError) -> Self {
        match e {
            CryptoError::NoKey { meter, role } => Error::MissingKey(format!(
                "no {} key of meter {meter} for {what}",
                role.name()
            )),
            CryptoError::AuthenticationFailed => {
                Error::Authentication(format!("{what}: wrong key or tampered frame"))
            }
            other => Error::Authentication(format!("{what}: {other}")),
        }
    }
}

impl From<Error> for DecodeError {
    fn from(e: Error) -> Self {
        let text = e.to_string();
        match e {
            Error::Truncated { .. } => DecodeError::Truncated(text),
            Error::Crc { .. } | Error::Cksum { .. } => DecodeError::Checksum(text),
            Error::Start(_) | Error::Malformed { .. } => DecodeError::Malformed(text),
            Error::Unsupported(_) | Error::Rc4Refused => DecodeError::Unsupported(text),
            Error::MissingKey(_) => DecodeError::MissingKey(text),
            Error::Authentication(_) => DecodeError::Authentication(text),
        }
    }
}
