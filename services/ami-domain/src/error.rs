//! Why a frame did not decode: the categories every decoder reports, native or in Wasm.

/// A decoding failure; each variant says what was wrong and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The frame ends before its structure does.
    #[error("truncated: {0}")]
    Truncated(String),
    /// A checksum (CRC, BCC, FCS, HCS) does not match.
    #[error("checksum mismatch: {0}")]
    Checksum(String),
    /// The bytes break the protocol's grammar.
    #[error("malformed: {0}")]
    Malformed(String),
    /// Valid for the protocol but not handled (service, version, mode).
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// Authentication failed: wrong key or tampered frame.
    #[error("authentication failed: {0}")]
    Authentication(String),
    /// A key needed for the frame is missing.
    #[error("missing key: {0}")]
    MissingKey(String),
}
