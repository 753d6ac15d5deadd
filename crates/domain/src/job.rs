//! The job and file records and the events published when a job changes.

use crate::{FileId, JobId, Millis, UserId};
use std::fmt;
use std::str::FromStr;

/// Where a job is in its lifecycle (ARCHITECTURE.md, "The job lifecycle in code").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    /// Waiting for a worker, also between retry attempts.
    Queued,
    /// Claimed by a worker that holds its lease.
    Running,
    /// Finished with outputs. Final.
    Succeeded,
    /// Gave up. Final (a user may retry it).
    Failed,
    /// Cancelled by its owner. Final (a user may retry it).
    Cancelled,
}

impl JobState {
    /// Every state, in lifecycle order.
    pub const ALL: [JobState; 5] = [
        JobState::Queued,
        JobState::Running,
        JobState::Succeeded,
        JobState::Failed,
        JobState::Cancelled,
    ];

    /// The name stored in the database and shown to users.
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Running => "running",
            JobState::Succeeded => "succeeded",
            JobState::Failed => "failed",
            JobState::Cancelled => "cancelled",
        }
    }

    /// True for states a job never leaves on its own.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            JobState::Succeeded | JobState::Failed | JobState::Cancelled
        )
    }
}

impl fmt::Display for JobState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A state name that is not one of [`JobState::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown job state {0:?}")]
pub struct ParseStateError(pub String);

impl FromStr for JobState {
    type Err = ParseStateError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        JobState::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| ParseStateError(s.to_owned()))
    }
}

/// One file a job produced.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct JobOutput {
    /// The output's name within the job, e.g. `thumb-1-256x171.jpg`.
    pub name: String,
    /// The file holding it.
    pub file_id: FileId,
}

/// The durable record of a job. The database holds the truth; transports only carry ids.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Job {
    /// The job's id.
    pub id: JobId,
    /// Who submitted it; only they (and admins) may see it.
    pub owner_id: UserId,
    /// The kind's name, e.g. `image.thumbnail`.
    pub kind: String,
    /// The queue its kind runs on, e.g. `media`.
    pub queue: String,
    /// The validated parameters, defaults filled in.
    pub params: serde_json::Value,
    /// The files it works on.
    pub input_file_ids: Vec<FileId>,
    /// Current state.
    pub state: JobState,
    /// Higher runs first among ready jobs of one queue.
    pub priority: i32,
    /// Attempts started so far.
    pub attempt: u32,
    /// Attempts allowed before the job fails for good.
    pub max_attempts: u32,
    /// The earliest time the job may (next) run.
    pub run_at: Millis,
    /// While running: until when the worker's lease holds.
    pub lease_until: Option<Millis>,
    /// While running: the name of the worker that holds it.
    pub worker: Option<String>,
    /// 0 to 100.
    pub progress: u32,
    /// A short note on the progress.
    pub progress_message: String,
    /// Why the job (or its last attempt) failed.
    pub error: Option<String>,
    /// The produced files, once succeeded.
    pub outputs: Vec<JobOutput>,
    /// Cancellation was asked while it ran.
    pub cancel_requested: bool,
    /// The client's retry-safety key, if any.
    pub idempotency_key: Option<String>,
    /// Increases with every change.
    pub version: i64,
    /// When it was submitted.
    pub created_at: Millis,
    /// When it last changed.
    pub updated_at: Millis,
    /// When its current or last attempt started.
    pub started_at: Option<Millis>,
    /// When it reached a final state.
    pub finished_at: Option<Millis>,
}

/// A stored file: an upload or a job output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileRecord {
    /// The file's id.
    pub id: FileId,
    /// Whose it is.
    pub owner_id: UserId,
    /// The uploader's name for it, or the job output's name.
    pub name: String,
    /// Media type.
    pub content_type: String,
    /// Content length in bytes.
    pub size_bytes: u64,
    /// Lower-case hex SHA-256 of the content.
    pub sha256: String,
    /// Where the content lives in object storage.
    pub blob_key: String,
    /// For outputs: the job that produced it.
    pub source_job_id: Option<JobId>,
    /// When it was stored.
    pub created_at: Millis,
}

/// What a user may do beyond their own files and jobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// An ordinary account.
    User,
    /// May see every job and the admin console.
    Admin,
}

impl Role {
    /// The name stored in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::User => "user",
            Role::Admin => "admin",
        }
    }

    /// Parses a stored role; anything unknown is an ordinary user.
    pub fn parse(s: &str) -> Self {
        if s == "admin" {
            Role::Admin
        } else {
            Role::User
        }
    }
}

/// A user account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// The account's id.
    pub id: UserId,
    /// Sign-in name.
    pub email: String,
    /// What they may do.
    pub role: Role,
}

/// What is published on the event bus.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub enum Event {
    /// A job changed (state, progress, ...): the whole new record.
    JobChanged(Box<Job>),
    /// Cancellation of a running job was asked: whichever worker runs it stops it.
    CancelRequested(JobId),
    /// Events may have been missed (the bus reconnected): re-read what you watch.
    Resync,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_round_trip() {
        for s in JobState::ALL {
            assert_eq!(s.as_str().parse::<JobState>().unwrap(), s);
        }
        assert!("done".parse::<JobState>().is_err());
        assert!(JobState::Cancelled.is_final() && !JobState::Running.is_final());
    }
}
