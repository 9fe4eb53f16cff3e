//! The `ami.mdms.v1` messages and services, generated from `proto/ami/mdms/v1/mdms.proto`.

#![allow(missing_docs, clippy::all, clippy::unwrap_used, clippy::expect_used)]

tonic::include_proto!("ami.mdms.v1");

/// The encoded file descriptor set of the proto, for server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/mdms_descriptor.bin"));
