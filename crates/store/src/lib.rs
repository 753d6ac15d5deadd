#![doc = include_str!("../README.md")]
mod db;
mod files;
mod jobs;
mod postgres;
mod sqlite;
mod users;
mod workers;

pub use files::NewFile;
pub use jobs::{
    CancelOutcome, Claim, JobFilter, NewJob, NewOutput, QueuedJob, Recovered, RunningCount,
};
pub use users::ApiToken;
pub use workers::WorkerRecord;

use db::{Conn, Db, q};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
use sqlx::{ConnectOptions, Connection};
use std::str::FromStr;
use std::time::Duration;

/// What can go wrong talking to the store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The database refused or failed a query (PostgreSQL, or the store is closed).
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    /// SQLite refused or failed a query.
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// Migrations could not be applied.
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A stored value did not parse; the row was written by something else.
    #[error("corrupt row: {0}")]
    Corrupt(String),
    /// An idempotency key was reused for a different request.
    #[error("the idempotency key was already used for a job with different parameters")]
    IdempotencyConflict,
    /// The database URL is not one this build understands.
    #[error("unsupported database URL {0:?}: expected sqlite://PATH or postgres://USER@HOST/DB")]
    UnsupportedUrl(String),
}

/// Shorthand for store results.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Which database a store talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// An embedded SQLite file (unified mode).
    Sqlite,
    /// A PostgreSQL server (extracted mode).
    Postgres,
}

/// A handle on the database; cheap to clone. The same SQL runs on both backends:
/// `$n` placeholders, `RETURNING`, `ON CONFLICT`.
///
/// SQLite runs on rusqlite connections owned by threads of the store's own (a few
/// readers, one writer that commits what is waiting together); PostgreSQL on a sqlx
/// pool. Reads and writes say which they are, which only SQLite tells apart.
#[derive(Clone, Debug)]
pub struct Store {
    db: Db,
}

impl Store {
    /// Opens (creating an SQLite file if needed) the database at `url` and applies
    /// migrations.
    pub async fn open(url: &str) -> Result<Self> {
        let db = if let Some(path) = url.strip_prefix("sqlite://") {
            let path = path.split('?').next().unwrap_or(path);
            let options = SqliteConnectOptions::from_str(&format!("sqlite://{path}?mode=rwc"))?
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(10));
            // sqlx's migrator, on a connection of its own that is closed before the
            // store opens its own: databases it migrated before keep their history
            // (`_sqlx_migrations`), new ones get the very same.
            let mut conn = options.connect().await?;
            sqlx::migrate!("./migrations/sqlite").run(&mut conn).await?;
            conn.close().await?;
            Db::Sqlite(sqlite::Sqlite::open(options.get_filename()).await?)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Db::Postgres(postgres::open(url).await?)
        } else {
            return Err(StoreError::UnsupportedUrl(url.to_owned()));
        };
        Ok(Self { db })
    }

    /// Which database this is.
    pub fn backend(&self) -> Backend {
        match self.db {
            Db::Sqlite(_) => Backend::Sqlite,
            Db::Postgres(_) => Backend::Postgres,
        }
    }

    /// Answers when the database answers a trivial query (readiness).
    pub async fn ping(&self) -> Result<()> {
        // The row is not read: its type differs between the backends.
        self.db.read().one(q!("SELECT 1"), |_| Ok(())).await
    }

    /// Closes every connection (on shutdown); queries after this fail.
    pub async fn close(&self) {
        self.db.close().await;
    }
}

fn corrupt(what: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(what.to_string())
}
