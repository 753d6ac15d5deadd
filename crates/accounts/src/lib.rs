#![doc = include_str!("../README.md")]
mod bootstrap;
mod secrets;
mod users;

pub use bootstrap::{BOOTSTRAP_ADMIN, FirstAdmin, bootstrap_admin, create_user_with_token};
pub use secrets::{
    constant_time_eq, hash_password, hash_token, new_token, random_secret, verify_password,
};
pub use users::ApiToken;

use forklift_db::{Db, DbError};

/// What can go wrong with accounts.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AccountsError {
    /// The database refused or failed a query, or a row did not parse.
    #[error(transparent)]
    Db(#[from] DbError),
    /// A password could not be hashed.
    #[error("hashing a password failed: {0}")]
    PasswordHash(String),
}

/// Shorthand for accounts results.
pub type Result<T, E = AccountsError> = std::result::Result<T, E>;

/// Users, sessions and API tokens; cheap to clone.
#[derive(Clone, Debug)]
pub struct Accounts {
    db: Db,
}

impl Accounts {
    /// Opens (creating an SQLite file if needed) the database at `url` and applies
    /// migrations.
    pub async fn open(url: &str) -> Result<Self> {
        Ok(Self::new(Db::open(url).await?))
    }

    /// Accounts on a database already open (shared with the job record in one process).
    pub fn new(db: Db) -> Self {
        Self { db }
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
