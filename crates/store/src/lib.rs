#![doc = include_str!("../README.md")]
mod files;
mod jobs;
mod workers;

pub use files::NewFile;
pub use jobs::{
    CancelOutcome, Claim, JobInsert, JobQuery, NewOutput, QueuedJob, Recovered, RunningCount,
};
pub use workers::WorkerRecord;

use forklift_db::{Backend, Db, DbError};

/// What can go wrong talking to the record.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The database refused or failed a query, or a row did not parse.
    #[error(transparent)]
    Db(#[from] DbError),
    /// An idempotency key was reused for a different request.
    #[error("the idempotency key was already used for a job with different parameters")]
    IdempotencyConflict,
}

/// Shorthand for store results.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// The job record — files, jobs and worker processes — over a [`Db`]; cheap to clone.
/// It reaches no account table: who owns a job is a user id the caller vouches for.
#[derive(Clone, Debug)]
pub struct Store {
    db: Db,
}

impl Store {
    /// Opens (creating an SQLite file if needed) the database at `url` and applies
    /// migrations.
    pub async fn open(url: &str) -> Result<Self> {
        Ok(Self::new(Db::open(url).await?))
    }

    /// The record on a database already open — in one process the accounts share it,
    /// so SQLite has one writer thread for both.
    pub fn new(db: Db) -> Self {
        Self { db }
    }

    /// Which database this is.
    pub fn backend(&self) -> Backend {
        self.db.backend()
    }

    /// Answers when the database answers a trivial query (readiness).
    pub async fn ping(&self) -> Result<()> {
        Ok(self.db.ping().await?)
    }

    /// Closes every connection of the database (on shutdown), for whatever shares it;
    /// queries after this fail.
    pub async fn close(&self) {
        self.db.close().await;
    }
}
