#![doc = include_str!("../README.md")]
mod files;
mod jobs;
mod users;
mod workers;

pub use files::NewFile;
pub use jobs::{CancelOutcome, Claim, JobFilter, NewJob, NewOutput, Recovered, RunningCount};
pub use users::ApiToken;
pub use workers::WorkerRecord;

use sqlx::AnyPool;
use sqlx::any::AnyPoolOptions;
use std::time::Duration;

/// What can go wrong talking to the store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The database refused or failed a query.
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
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

/// A handle on the database; cheap to clone. The same SQL runs on both backends
/// (through sqlx's `Any` driver): `$n` placeholders, `RETURNING`, `ON CONFLICT`.
///
/// Reads use `pool`; everything that writes uses `writer`. On PostgreSQL the two are
/// one pool. On SQLite, which takes one writer at a time, `writer` is a single
/// connection: writers queue for it in order instead of colliding on the database
/// lock, where SQLite's busy handler would put them to sleep for milliseconds at a
/// time (readers are never blocked: WAL).
#[derive(Clone, Debug)]
pub struct Store {
    pool: AnyPool,
    writer: AnyPool,
    backend: Backend,
}

impl Store {
    /// Opens (creating an SQLite file if needed) the database at `url` and applies
    /// migrations.
    pub async fn open(url: &str) -> Result<Self> {
        sqlx::any::install_default_drivers();
        let (backend, url) = if let Some(path) = url.strip_prefix("sqlite://") {
            let path = path.split('?').next().unwrap_or(path);
            (Backend::Sqlite, format!("sqlite://{path}?mode=rwc"))
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            (Backend::Postgres, url.to_owned())
        } else {
            return Err(StoreError::UnsupportedUrl(url.to_owned()));
        };
        let options = |connections: u32| {
            AnyPoolOptions::new()
                .max_connections(connections)
                .acquire_timeout(Duration::from_secs(30))
                .after_connect(move |conn, _meta| {
                    Box::pin(async move {
                        if backend == Backend::Sqlite {
                            // WAL lets readers run beside the writer; the busy timeout
                            // covers another process (a migration) holding the lock.
                            sqlx::raw_sql(
                                "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;
                                 PRAGMA busy_timeout = 10000; PRAGMA foreign_keys = ON;",
                            )
                            .execute(&mut *conn)
                            .await?;
                        }
                        Ok(())
                    })
                })
        };
        let (pool, writer) = match backend {
            Backend::Sqlite => {
                let writer = options(1).connect(&url).await?;
                sqlx::migrate!("./migrations/sqlite").run(&writer).await?;
                (options(8).connect(&url).await?, writer)
            }
            Backend::Postgres => {
                let pool = options(16).connect(&url).await?;
                sqlx::migrate!("./migrations/postgres").run(&pool).await?;
                (pool.clone(), pool)
            }
        };
        Ok(Self {
            pool,
            writer,
            backend,
        })
    }

    /// Which database this is.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Answers when the database answers a trivial query (readiness).
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// Closes every connection (on shutdown).
    pub async fn close(&self) {
        self.pool.close().await;
        self.writer.close().await;
    }
}

fn corrupt(what: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(what.to_string())
}

/// A query whose text is built with `format!` from constant column lists only; values
/// are always bound, never formatted in.
macro_rules! q {
    ($($fmt:tt)*) => {
        sqlx::query(sqlx::AssertSqlSafe(format!($($fmt)*)))
    };
}
pub(crate) use q;
