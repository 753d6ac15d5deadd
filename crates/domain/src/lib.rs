#![doc = include_str!("../README.md")]
mod ids;
mod job;

pub use ids::{FileId, JobId, ParseIdError, UserId};
pub use job::{Event, FileRecord, Job, JobOutput, JobState, ParseStateError, Role, User};

use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch: the one time representation in records,
/// portable across SQLite and PostgreSQL.
pub type Millis = i64;

/// The current time in [`Millis`].
pub fn now_ms() -> Millis {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as Millis)
        .unwrap_or_default()
}
