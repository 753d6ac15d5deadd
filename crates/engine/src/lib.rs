#![doc = include_str!("../README.md")]
mod admin;
pub mod auth;
mod convert;
mod ctx;
mod engine;
mod error;
mod grpc;
mod kind;
mod watch;
mod worker;

pub use admin::{AdminOverview, QueueStats, WorkerStats};
pub use convert::{file_to_proto, job_to_proto, overview_to_proto};
pub use ctx::{JobCtx, Progress};
pub use engine::{Engine, EngineConfig, SubmitRequest, guess_content_type};
pub use error::ApiError;
pub use grpc::GrpcApi;
pub use kind::{JobError, Kind, Registry, Violation, parse_params};
pub use worker::Workers;
