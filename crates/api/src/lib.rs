#![doc = include_str!("../README.md")]
mod admin;
mod api;
pub mod auth;
mod convert;
mod error;
mod grpc;
mod watch;

pub use admin::{AdminOverview, QueueStats, WorkerStats};
pub use api::{Api, SubmitRequest, guess_content_type};
pub use convert::{file_to_proto, job_to_proto, overview_to_proto};
pub use error::ApiError;
pub use grpc::GrpcApi;
