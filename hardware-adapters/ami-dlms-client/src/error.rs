//! What can go wrong between the client and a meter, typed so that callers (the meter link,
//! the binary, tests) can tell a refused password from a dead line or a malformed answer.

use ami_domain::DecodeError;

/// Why a client operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The byte stream failed (connect, read, write).
    #[error("link: {0}")]
    Io(#[from] std::io::Error),
    /// The meter did not answer in time.
    #[error("timeout: no answer to {0}")]
    Timeout(String),
    /// The meter closed the stream.
    #[error("the meter closed the connection while {0}")]
    Closed(String),
    /// An answer that does not parse (framing, checksums, A-XDR, APDU).
    #[error("malformed answer: {0}")]
    Malformed(#[from] DecodeError),
    /// An answer that parses but is not what the exchange allows (wrong frame type, sequence
    /// numbers, invoke id, block number).
    #[error("protocol: {0}")]
    Protocol(String),
    /// The meter refused the association (AARE result and diagnostic).
    #[error("association refused: {reason} (result {result}, diagnostic {diagnostic})")]
    Refused {
        /// AARE result (1 permanent, 2 transient).
        result: u8,
        /// The result-source diagnostic.
        diagnostic: u8,
        /// What the diagnostic means.
        reason: String,
    },
    /// HLS failed: the meter did not accept our reply to its challenge, or its own reply does
    /// not verify (wrong keys).
    #[error("authentication failed: {0}")]
    Authentication(String),
    /// A ciphered APDU does not decrypt or verify, or its invocation counter goes back.
    #[error("ciphering: {0}")]
    Cipher(String),
    /// The meter answered a GET or SET with a data-access-result other than success.
    #[error("{what}: data-access-result {code} ({})", data_access_result(*code))]
    DataAccess {
        /// The attribute.
        what: String,
        /// The code.
        code: u8,
    },
    /// The meter answered an ACTION with an action-result other than success.
    #[error("{what}: action-result {code} ({})", data_access_result(*code))]
    Action {
        /// The method.
        what: String,
        /// The code.
        code: u8,
    },
    /// The meter answered with an exception-response or confirmed-service-error.
    #[error("service error: {0}")]
    Service(String),
    /// A request does not fit what was negotiated (PDU size) or the frame format.
    #[error("too large: {0}")]
    TooLarge(String),
    /// A configuration the client cannot work with (key lengths, addresses).
    #[error("configuration: {0}")]
    Config(String),
}

/// The name of a data-access-result / action-result code (IEC 62056-5-3).
pub fn data_access_result(code: u8) -> &'static str {
    match code {
        0 => "success",
        1 => "hardware-fault",
        2 => "temporary-failure",
        3 => "read-write-denied",
        4 => "object-undefined",
        9 => "object-class-inconsistent",
        11 => "object-unavailable",
        12 => "type-unmatched",
        13 => "scope-of-access-violated",
        14 => "data-block-unavailable",
        15 => "long-get-aborted",
        16 => "no-long-get-in-progress",
        17 => "long-set-aborted",
        18 => "no-long-set-in-progress",
        19 => "data-block-number-invalid",
        250 => "other-reason",
        _ => "unknown",
    }
}

/// The name of an AARE result-source diagnostic (acse-service-user).
pub fn association_diagnostic(code: u8) -> &'static str {
    match code {
        0 => "null",
        1 => "no reason given",
        2 => "application context name not supported",
        11 => "authentication mechanism name not recognised",
        12 => "authentication mechanism name required",
        13 => "authentication failure (wrong password or key)",
        14 => "authentication required",
        _ => "other",
    }
}
