//! Typed errors: why a package would not load, and why a call failed.

/// Why a plugin package was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoadError {
    /// A file could not be read or written.
    #[error("{path}: {reason}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        reason: String,
    },
    /// The manifest does not parse or is incomplete.
    #[error("manifest {path}: {reason}")]
    Manifest {
        /// The manifest file.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// The manifest carries no signature.
    #[error("plugin {0} is unsigned: the host loads only packages signed by a trusted vendor key")]
    Unsigned(String),
    /// Signed by a key the operator does not trust.
    #[error("plugin {plugin} is signed by {key}, which is not in the trust store")]
    UntrustedSigner {
        /// The plugin.
        plugin: String,
        /// The signer's public key, hex.
        key: String,
    },
    /// The signature does not verify.
    #[error("plugin {plugin}: bad signature: {reason}")]
    BadSignature {
        /// The plugin.
        plugin: String,
        /// What failed.
        reason: String,
    },
    /// A key text is not a valid key.
    #[error("bad key: {0}")]
    BadKey(String),
    /// The component is not the one the manifest signed.
    #[error("plugin {plugin}: component sha256 {actual} does not match the manifest's {expected}")]
    DigestMismatch {
        /// The plugin.
        plugin: String,
        /// The signed digest.
        expected: String,
        /// The file's digest.
        actual: String,
    },
    /// The bytes are not a component the engine can compile.
    #[error("plugin {plugin}: not a valid component: {reason}")]
    Compile {
        /// The plugin.
        plugin: String,
        /// The engine's message.
        reason: String,
    },
    /// The component implements another world than its manifest's kind, or another WIT version.
    #[error("plugin {plugin}: {reason}")]
    WrongWorld {
        /// The plugin.
        plugin: String,
        /// What it exports instead.
        reason: String,
    },
    /// The component imports something plugins are not granted.
    #[error("plugin {plugin} imports {import}, which plugins are not granted")]
    ForbiddenImport {
        /// The plugin.
        plugin: String,
        /// The import's name.
        import: String,
    },
    /// Pre-instantiation failed.
    #[error("plugin {plugin}: cannot be instantiated: {reason}")]
    Instantiate {
        /// The plugin.
        plugin: String,
        /// The engine's message.
        reason: String,
    },
    /// The engine could not be set up.
    #[error("wasm engine: {0}")]
    Engine(String),
}

/// Why one call into a plugin failed. The host and the other plugins carry on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallFailure {
    /// The call ran past its time bound and was interrupted.
    #[error("exceeded its time bound of {limit_ms} ms")]
    Timeout {
        /// The bound.
        limit_ms: u64,
    },
    /// The plugin tried to grow its memory past the cap.
    #[error("exceeded its memory cap of {limit_bytes} bytes")]
    MemoryLimit {
        /// The cap.
        limit_bytes: u64,
    },
    /// The plugin panicked.
    #[error("panicked: {message}")]
    Panic {
        /// The panic message the plugin printed, if any.
        message: String,
    },
    /// Any other trap.
    #[error("trapped: {message}")]
    Trap {
        /// The engine's description.
        message: String,
    },
    /// The plugin returned a result that breaks the contract.
    #[error("returned a malformed result: {reason}")]
    MalformedResult {
        /// What is wrong with it.
        reason: String,
    },
    /// A fresh instance could not be made.
    #[error("could not be instantiated: {reason}")]
    Instantiate {
        /// The engine's message.
        reason: String,
    },
    /// The plugin is not of the kind the call needs.
    #[error("is a {actual} plugin, not a {expected}")]
    WrongKind {
        /// What the call needs.
        expected: String,
        /// What the plugin is.
        actual: String,
    },
}

/// A failed call: which plugin and version, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("plugin {plugin}@{version} {failure}")]
pub struct CallError {
    /// The plugin's name.
    pub plugin: String,
    /// Its version.
    pub version: String,
    /// What went wrong.
    pub failure: CallFailure,
}
