//! Compiles `proto/ami/hes/v1/hes.proto` with protox (pure Rust, no `protoc`) into a file
//! descriptor set (kept in `OUT_DIR` for server reflection) and generates the prost messages and
//! tonic services from it; rebuilds when a proto or a migration changes.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?);
    let proto_root = manifest.join("../../proto");
    let proto = proto_root.join("ami/hes/v1/hes.proto");
    println!("cargo:rerun-if-changed={}", proto.display());
    println!("cargo:rerun-if-changed=migrations");

    let fds = protox::compile([&proto], [&proto_root])?;
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(
        out.join("ami_hes_v1_descriptor.bin"),
        prost::Message::encode_to_vec(&fds),
    )?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(fds)?;
    Ok(())
}
