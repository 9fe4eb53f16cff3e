//! Host-side bindings of the three `ami:plugin` worlds, generated from `wit/`.
//!
//! The `types` interface is generated once (in [`decoder`]) and shared by the other worlds.

#![allow(missing_docs)]

/// The `decoder` world: `decode` exported, `crypto` imported.
pub mod decoder {
    wasmtime::component::bindgen!({
        world: "decoder",
        path: "../../wit",
        additional_derives: [PartialEq, Eq],
    });
}

/// The `vee-rule` world: `validate` exported, nothing imported.
pub mod vee {
    wasmtime::component::bindgen!({
        world: "vee-rule",
        path: "../../wit",
        additional_derives: [PartialEq, Eq],
        with: {
            "ami:plugin/types": crate::bindings::decoder::ami::plugin::types,
        },
    });
}

/// The `tariff` world: `rate` exported, nothing imported.
pub mod tariff {
    wasmtime::component::bindgen!({
        world: "tariff",
        path: "../../wit",
        additional_derives: [PartialEq, Eq],
        with: {
            "ami:plugin/types": crate::bindings::decoder::ami::plugin::types,
        },
    });
}

pub use decoder::ami::plugin::types;
