#![doc = include_str!("../README.md")]
pub mod error_code;
pub mod params;
pub mod state;
pub mod time;

/// `forklift.v1`: the Files, Jobs and Admin services and their messages.
pub mod v1 {
    #![allow(missing_docs, clippy::all, clippy::pedantic)]
    tonic::include_proto!("forklift.v1");
}

/// The encoded file-descriptor set of every Forklift proto, for gRPC reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/forklift_descriptor.bin"));

/// Metadata key carrying the shared service secret (web app → jobs service).
pub const SERVICE_TOKEN_HEADER: &str = "x-forklift-service-token";
/// Metadata key carrying the acting user's id, honoured only with the service secret.
pub const ACTING_USER_HEADER: &str = "x-forklift-user";
/// Metadata key carrying the acting user's role (`user` or `admin`), honoured only with
/// the service secret. Without it the account is looked up.
pub const ACTING_ROLE_HEADER: &str = "x-forklift-role";
