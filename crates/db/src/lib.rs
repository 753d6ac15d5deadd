#![doc = include_str!("../README.md")]
mod postgres;
mod query;
mod sqlite;

pub use query::{Arg, Atomic, Cols, Conn, Map, On, Query, Row};

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
use sqlx::{ConnectOptions, Connection};
use std::str::FromStr;
use std::time::Duration;

/// What can go wrong talking to the database.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DbError {
    /// The database refused or failed a query (PostgreSQL, or the handle is closed).
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
    /// The database's schema is not this build's.
    #[error("{0}")]
    Schema(String),
    /// The database URL is not one this build understands.
    #[error("unsupported database URL {0:?}: expected sqlite://PATH or postgres://USER@HOST/DB")]
    UnsupportedUrl(String),
}

/// Shorthand for database results.
pub type Result<T, E = DbError> = std::result::Result<T, E>;

/// A [`DbError::Corrupt`] saying what did not parse.
pub fn corrupt(what: impl std::fmt::Display) -> DbError {
    DbError::Corrupt(what.to_string())
}

/// Which database a handle talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// An embedded SQLite file (unified mode).
    Sqlite,
    /// A PostgreSQL server (extracted mode).
    Postgres,
}

/// A handle on the database; cheap to clone, and every clone is the same connections.
/// The same SQL runs on both backends: `$n` placeholders, `RETURNING`, `ON CONFLICT`.
///
/// SQLite runs on rusqlite connections owned by threads of this layer's own (a few
/// readers, one writer that commits what is waiting together); PostgreSQL on a sqlx
/// pool. Reads and writes say which they are, which only SQLite tells apart.
#[derive(Clone, Debug)]
pub struct Db {
    inner: Inner,
}

#[derive(Clone, Debug)]
enum Inner {
    Sqlite(sqlite::Sqlite),
    Postgres(postgres::PgPool),
}

impl Db {
    /// Opens (creating an SQLite file if needed) the database at `url` and applies
    /// migrations.
    pub async fn open(url: &str) -> Result<Self> {
        let inner = if let Some(path) = url.strip_prefix("sqlite://") {
            let path = path.split('?').next().unwrap_or(path);
            let options = SqliteConnectOptions::from_str(&format!("sqlite://{path}?mode=rwc"))?
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(10));
            // sqlx's migrator, on a connection of its own that is closed before the
            // layer opens its own: databases it migrated before keep their history
            // (`_sqlx_migrations`), new ones get the very same.
            let mut conn = options.connect().await?;
            sqlx::migrate!("./migrations/sqlite").run(&mut conn).await?;
            conn.close().await?;
            Inner::Sqlite(
                sqlite::Sqlite::open(options.get_filename(), sqlite::Mode::ReadWrite).await?,
            )
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Inner::Postgres(postgres::open(url).await?)
        } else {
            return Err(DbError::UnsupportedUrl(url.to_owned()));
        };
        Ok(Self { inner })
    }

    /// Opens an existing database to read it as it is: nothing is migrated or written
    /// (an SQLite file is opened read-only and immutable, so its installation must be
    /// stopped). Fails unless its schema is exactly this build's.
    pub async fn open_snapshot(url: &str) -> Result<Self> {
        let inner = if let Some(path) = url.strip_prefix("sqlite://") {
            let path = std::path::Path::new(path.split('?').next().unwrap_or(path));
            if !path.is_file() {
                return Err(DbError::Schema(format!(
                    "there is no database file at {}",
                    path.display()
                )));
            }
            // Read as the file alone holds it: writes still in the WAL would be missed.
            let wal = std::path::PathBuf::from(format!("{}-wal", path.display()));
            if std::fs::metadata(&wal).is_ok_and(|m| m.len() > 0) {
                return Err(DbError::Schema(format!(
                    "{} holds writes that are not in the database file yet: Forklift is \
                     still running on it, or did not stop cleanly. Stop it (or start it once \
                     and stop it with Ctrl-C), then run this again",
                    wal.display()
                )));
            }
            Inner::Sqlite(sqlite::Sqlite::open(path, sqlite::Mode::Snapshot).await?)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Inner::Postgres(postgres::connect(url).await?)
        } else {
            return Err(DbError::UnsupportedUrl(url.to_owned()));
        };
        let db = Self { inner };
        let latest = match db.backend() {
            Backend::Sqlite => sqlx::migrate!("./migrations/sqlite")
                .iter()
                .map(|m| m.version)
                .max(),
            Backend::Postgres => sqlx::migrate!("./migrations/postgres")
                .iter()
                .map(|m| m.version)
                .max(),
        }
        .unwrap_or(0);
        let q = q!("SELECT version FROM _sqlx_migrations ORDER BY version DESC LIMIT 1");
        let version = match db.read().optional(q, |r| r.int(0)).await {
            Ok(v) => v.unwrap_or(0),
            Err(_) => 0,
        };
        if version != latest {
            db.close().await;
            return Err(DbError::Schema(if version < latest {
                format!(
                    "its schema is at version {version}, this build's is {latest}: start this \
                     version of Forklift on it once (it upgrades the schema), stop it, then run \
                     this again"
                )
            } else {
                format!(
                    "its schema is at version {version}, newer than this build's ({latest}): use \
                     the Forklift that wrote it"
                )
            }));
        }
        Ok(db)
    }

    /// Which database this is.
    pub fn backend(&self) -> Backend {
        match self.inner {
            Inner::Sqlite(_) => Backend::Sqlite,
            Inner::Postgres(_) => Backend::Postgres,
        }
    }

    /// Answers when the database answers a trivial query (readiness).
    pub async fn ping(&self) -> Result<()> {
        // The row is not read: its type differs between the backends.
        self.read().one(q!("SELECT 1"), |_| Ok(())).await
    }

    /// Where reads go: any reader connection (SQLite), the pool (PostgreSQL).
    pub fn read(&self) -> On<'_> {
        match &self.inner {
            Inner::Sqlite(s) => On::sqlite(s, sqlite::Side::Read),
            Inner::Postgres(p) => On::postgres(p),
        }
    }

    /// Where writes go: the writer thread (SQLite), the pool (PostgreSQL). On SQLite
    /// every write is atomic on its own (it runs inside its own savepoint).
    pub fn write(&self) -> On<'_> {
        match &self.inner {
            Inner::Sqlite(s) => On::sqlite(s, sqlite::Side::Write),
            Inner::Postgres(p) => On::postgres(p),
        }
    }

    /// Runs `body` as one transaction.
    pub async fn atomic<A: Atomic>(&self, body: A) -> Result<A::Output> {
        match &self.inner {
            Inner::Sqlite(s) => {
                s.run(sqlite::Side::Write, move |c| {
                    sqlite::ready(body.run(&mut sqlite::Local(c)))
                })
                .await
            }
            Inner::Postgres(p) => {
                let mut tx = p.begin().await?;
                let out = body.run(&mut *tx).await?;
                tx.commit().await?;
                Ok(out)
            }
        }
    }

    /// Closes every connection (on shutdown), for every clone; queries after this fail.
    pub async fn close(&self) {
        match &self.inner {
            Inner::Sqlite(s) => s.close().await,
            Inner::Postgres(p) => p.close().await,
        }
    }
}
