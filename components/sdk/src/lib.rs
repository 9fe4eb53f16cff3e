//! The ami vendor SDK: write a protocol decoder, a VEE rule pack or a tariff as a Wasm
//! component on the `ami:plugin` WIT worlds, in a few dozen lines.
//!
//! A decoder implements [`FrameDecoder`] over ami's domain types (the same ones the native
//! protocol crates use) and exports itself with [`export_decoder!`]; the SDK turns the batch
//! call of the `decoder` world into per-frame calls and converts the results. Cryptography goes
//! through [`crypto`], the host's interface: a decoder names a key (meter + role) and never holds
//! its bytes. VEE rules and tariffs implement the generated `Guest` traits of [`vee`] and
//! [`tariff`] directly and export with [`export_vee_rule!`] and [`export_tariff!`].
//!
//! On `wasm32` the SDK installs [`arena`], a call-scoped bump allocator, as the global
//! allocator; a crate that brings its own turns the default feature `arena-alloc` off.
//!
//! Build with `cargo build --target wasm32-wasip2` (or `ami plugin build`); the output `.wasm`
//! is the component.

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

/// The `decoder` world's bindings (types, `crypto` import, `decode` export).
#[allow(missing_docs)]
pub mod decoder {
    wit_bindgen::generate!({
        world: "decoder",
        path: "../../wit",
        additional_derives: [PartialEq, Eq],
        pub_export_macro: true,
        export_macro_name: "export_decoder_world",
        default_bindings_module: "ami_plugin_sdk::decoder",
    });
}

/// The `vee-rule` world's bindings.
#[allow(missing_docs)]
pub mod vee {
    wit_bindgen::generate!({
        world: "vee-rule",
        path: "../../wit",
        pub_export_macro: true,
        export_macro_name: "export_vee_rule_world",
        default_bindings_module: "ami_plugin_sdk::vee",
        with: { "ami:plugin/types@0.1.1": crate::decoder::ami::plugin::types },
    });
}

/// The `tariff` world's bindings.
#[allow(missing_docs)]
pub mod tariff {
    wit_bindgen::generate!({
        world: "tariff",
        path: "../../wit",
        pub_export_macro: true,
        export_macro_name: "export_tariff_world",
        default_bindings_module: "ami_plugin_sdk::tariff",
        with: { "ami:plugin/types@0.1.1": crate::decoder::ami::plugin::types },
    });
}

pub mod arena;
pub mod convert;
pub mod host_crypto;

/// The component's global allocator: the call-scoped arena (feature `arena-alloc`, on by
/// default; only on single-threaded `wasm32`).
#[cfg(all(
    feature = "arena-alloc",
    target_arch = "wasm32",
    not(target_feature = "atomics")
))]
#[global_allocator]
static GLOBAL: arena::ArenaAlloc = arena::ArenaAlloc::new();

pub use host_crypto::HostCrypto;

pub use ami_domain as domain;
/// The host's cryptography, by key reference.
pub use decoder::ami::plugin::crypto;
/// The `crypto-ext` import (WIT 0.1.1): dedicated DLMS keys and EAX'.
pub use decoder::ami::plugin::crypto_ext;
/// The shared WIT types (OBIS, quantity, unit, reading, event).
pub use decoder::ami::plugin::types;

/// A decoder of one frame at a time, in ami's domain types.
pub trait FrameDecoder {
    /// Decodes one frame. `received_at_ms` stamps readings the frame does not time itself
    /// (flag them `Quality::TIME_FROM_RECEIVER`).
    fn decode_frame(
        data: &[u8],
        received_at_ms: i64,
        meter_hint: Option<&str>,
    ) -> Result<domain::Decoded, domain::DecodeError>;
}

/// Exports a [`FrameDecoder`] as the component's `decode` interface.
///
/// ```ignore
/// struct MyDecoder;
/// impl ami_plugin_sdk::FrameDecoder for MyDecoder { /* ... */ }
/// ami_plugin_sdk::export_decoder!(MyDecoder);
/// ```
#[macro_export]
macro_rules! export_decoder {
    ($t:ty) => {
        #[doc(hidden)]
        pub struct __AmiDecoderExport;

        impl $crate::decoder::exports::ami::plugin::decode::Guest for __AmiDecoderExport {
            fn decode(
                frames: ::std::vec::Vec<$crate::decoder::exports::ami::plugin::decode::Frame>,
            ) -> ::std::vec::Vec<
                ::std::result::Result<
                    $crate::decoder::exports::ami::plugin::decode::Decoded,
                    $crate::decoder::exports::ami::plugin::decode::DecodeError,
                >,
            > {
                frames
                    .iter()
                    .map(|f| {
                        <$t as $crate::FrameDecoder>::decode_frame(
                            &f.data,
                            f.received_at,
                            f.meter_hint.as_deref(),
                        )
                        .map($crate::convert::decoded)
                        .map_err($crate::convert::decode_error)
                    })
                    .collect()
            }
        }

        $crate::decoder::export_decoder_world!(__AmiDecoderExport);
    };
}

/// Exports a type implementing [`vee::exports::ami::plugin::validate::Guest`].
#[macro_export]
macro_rules! export_vee_rule {
    ($t:ident) => {
        $crate::vee::export_vee_rule_world!($t);
    };
}

/// Exports a type implementing [`tariff::exports::ami::plugin::rate::Guest`].
#[macro_export]
macro_rules! export_tariff {
    ($t:ident) => {
        $crate::tariff::export_tariff_world!($t);
    };
}
