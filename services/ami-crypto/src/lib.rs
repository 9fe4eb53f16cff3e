//! The keys ami holds on behalf of decoders, and the cryptography it runs with them.
//!
//! A decoder (native or a Wasm component) names a key by meter and role and asks for an
//! operation through [`ami_domain::crypto::Crypto`]; [`CryptoCtx`] resolves the name in a
//! [`KeyStore`], checks that the role may serve that operation, and runs AES-GCM/GMAC, DLMS
//! suite 0, AES-CBC, AES-CTR, AES-CMAC, ANSI C12.22's EAX' ([`eax_prime`]) or a key derivation
//! natively (RustCrypto, constant-time comparisons). No key byte is ever returned, and failed
//! verifications of short tags are rationed ([`budget`]) so the host is no tag oracle. The plugin
//! host exposes it to components; the HES backs [`KeyStore`] with its encrypted store; tests and the CLI use [`MemoryKeyStore`].

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod budget;
pub mod ctx;
pub mod eax_prime;
pub mod keystore;

pub use ami_domain::crypto::KeyRole;
pub use ctx::CryptoCtx;
pub use keystore::{Key, KeyStore, MemoryKeyStore};
