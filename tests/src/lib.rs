//! The test kit of ami's end-to-end tests: where the built components are, signed packages
//! made from them with throw-away vendor keys, and hosts that trust those keys.
//!
//! Components are built for `wasm32-wasip2` by `cargo xtask components` (which `cargo xtask test`
//! and CI run first); a test that finds one missing says so.

#![allow(clippy::expect_used, clippy::panic, clippy::unwrap_used)]

pub mod nats;
pub mod pg;

use ami_plugin_host::package::{self, Package};
use ami_plugin_host::{Host, HostConfig, KeyStore, Manifest, TrustStore};
use ed25519_dalek::SigningKey;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The workspace root: the nearest directory above the working directory (cargo runs tests
/// in their package's directory) whose Cargo.toml holds `[workspace]`. Found at run time, so
/// a test binary built in one checkout never reads another checkout's files.
pub fn root() -> PathBuf {
    let cwd = std::env::current_dir().expect("working directory");
    cwd.ancestors()
        .find(|d| {
            std::fs::read_to_string(d.join("Cargo.toml")).is_ok_and(|t| t.contains("[workspace]"))
        })
        .expect("a workspace root above the working directory")
        .to_path_buf()
}

/// Cargo's target directory, found from the running test binary (`<target>/<profile>/deps/x`).
pub fn target_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(dir);
    }
    let exe = std::env::current_exe().expect("test binary path");
    exe.ancestors()
        .nth(3)
        .expect("target dir above the test binary")
        .to_path_buf()
}

/// The bytes of a built component, by crate name (`ami-test-hostile-decoder`).
pub fn component(crate_name: &str) -> Vec<u8> {
    let path = target_dir()
        .join("wasm32-wasip2/component")
        .join(format!("{}.wasm", crate_name.replace('-', "_")));
    std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "component {} missing ({e}): run `cargo xtask components` first",
            path.display()
        )
    })
}

/// A vendor: a fresh signing key.
pub fn vendor() -> SigningKey {
    SigningKey::generate(&mut rand_core::OsRng)
}

/// The manifest source (`plugin.toml`) of a component crate under `components/`.
pub fn manifest_of(crate_dir: &str, crate_name: &str) -> Manifest {
    let src = std::fs::read_to_string(
        root()
            .join("components")
            .join(crate_dir)
            .join("plugin.toml"),
    )
    .expect("plugin.toml");
    Manifest::from_source(&src, &format!("{}.wasm", crate_name.replace('-', "_")))
        .expect("manifest")
}

/// Writes a package of `wasm` with `manifest` into `dir`, signed by `key` if given.
pub fn write_package(
    dir: &Path,
    manifest: &Manifest,
    wasm: &[u8],
    key: Option<&SigningKey>,
) -> PathBuf {
    Package::write(dir, manifest, wasm).expect("write package");
    if let Some(k) = key {
        package::sign(dir, k).expect("sign package");
    }
    dir.to_path_buf()
}

/// A signed package of a component crate, as shipped (its own manifest), under `parent`.
pub fn shipped_package(
    parent: &Path,
    crate_dir: &str,
    crate_name: &str,
    key: &SigningKey,
) -> PathBuf {
    let manifest = manifest_of(crate_dir, crate_name);
    let dir = parent.join(&manifest.name);
    write_package(&dir, &manifest, &component(crate_name), Some(key))
}

/// A host trusting `keys` with the operator defaults.
pub fn host(trusted: &[&SigningKey], keys: Arc<dyn KeyStore>) -> Host {
    host_with(trusted, keys, HostConfig::default())
}

/// A host trusting `keys` with a given operator configuration.
pub fn host_with(trusted: &[&SigningKey], keys: Arc<dyn KeyStore>, config: HostConfig) -> Host {
    let mut trust = TrustStore::new();
    for k in trusted {
        trust.add(k.verifying_key());
    }
    Host::new(config, trust, keys).expect("host")
}

/// The Python of the test tools' virtualenv (`cargo xtask setup` makes it: grpcio and
/// grpcio-reflection, for clients of the gRPC APIs that no one here wrote).
pub fn test_python() -> PathBuf {
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_default();
    home.join(".cache/ami-test-venv/bin/python")
}
