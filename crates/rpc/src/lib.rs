#![doc = include_str!("../README.md")]
pub mod params;

/// `forklift.v1`: the Files, Jobs and Admin services and their messages.
pub mod v1 {
    #![allow(missing_docs, clippy::all, clippy::pedantic)]
    tonic::include_proto!("forklift.v1");
}

/// The encoded file-descriptor set of every Forklift proto, for gRPC reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/forklift_descriptor.bin"));
