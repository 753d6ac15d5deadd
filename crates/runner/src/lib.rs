#![doc = include_str!("../README.md")]
mod attempt;
mod backend;
mod ctx;
mod kind;
pub mod maintenance;
mod runtime;
mod workers;

pub use attempt::{Outcome, Record, RecordLayer, RunKind};
pub use backend::{Claim, ClaimBackend};
pub use ctx::{JobCtx, Progress};
pub use kind::{JobError, Kind, Registry, Violation, parse_params};
pub use runtime::{RunnerConfig, Runtime};
pub use workers::Workers;
