//! Users, their passwords, sessions and API tokens.

use crate::{Accounts, Result};
use forklift_db::{Cols, Conn, Row, q};
use forklift_domain::{Role, User, UserId, now_ms};

impl Accounts {
    /// Creates an account.
    pub async fn create_user(&self, email: &str, role: Role) -> Result<User> {
        let id = UserId::new();
        let q = q!(
            "INSERT INTO users (id, email, role, created_at) VALUES ($1, $2, $3, $4)",
            id.to_string(),
            email,
            role.as_str(),
            now_ms(),
        );
        self.db.write().execute(q).await?;
        Ok(User {
            id,
            email: email.to_owned(),
            role,
        })
    }

    /// How many accounts exist (to bootstrap the first one).
    pub async fn count_users(&self) -> Result<i64> {
        let q = q!("SELECT COUNT(*) FROM users");
        Ok(self.db.read().one(q, |r| r.int(0)).await?)
    }

    /// Stores a new API token by its hash (the token itself is never stored); returns
    /// the token's id.
    pub async fn create_api_token(
        &self,
        user: UserId,
        name: &str,
        token_hash: &str,
    ) -> Result<String> {
        let id = UserId::new().to_string();
        let q = q!(
            "INSERT INTO api_tokens (id, user_id, name, token_hash, created_at)
             VALUES ($1, $2, $3, $4, $5)",
            &id,
            user.to_string(),
            name,
            token_hash,
            now_ms(),
        );
        self.db.write().execute(q).await?;
        Ok(id)
    }

    /// The owner of an unrevoked API token, by the token's hash.
    pub async fn user_by_token_hash(&self, token_hash: &str) -> Result<Option<User>> {
        let q = q!(
            "SELECT u.id, u.email, u.role FROM api_tokens t JOIN users u ON u.id = t.user_id
             WHERE t.token_hash = $1 AND t.revoked_at IS NULL",
            token_hash,
        );
        Ok(self.db.read().optional(q, user_from_row).await?)
    }

    /// An account by id.
    pub async fn get_user(&self, id: UserId) -> Result<Option<User>> {
        let q = q!(
            "SELECT id, email, role FROM users WHERE id = $1",
            id.to_string()
        );
        Ok(self.db.read().optional(q, user_from_row).await?)
    }
}

/// Reads `id, email, role`.
fn user_from_row(r: &dyn Row) -> forklift_db::Result<User> {
    let mut c = Cols::new(r);
    Ok(User {
        id: c.parse()?,
        email: c.text()?,
        role: Role::parse(c.str()?),
    })
}

/// An API token as its owner sees it (never the token itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiToken {
    /// The token's id (for revoking it).
    pub id: String,
    /// The owner's label for it.
    pub name: String,
    /// When it was created.
    pub created_at: i64,
    /// When it was revoked; revoked tokens authenticate nothing.
    pub revoked_at: Option<i64>,
}

impl Accounts {
    /// Creates an account that signs in with a password. Emails are compared
    /// case-insensitively (stored lower-case); `None` when the email is taken.
    pub async fn create_account(
        &self,
        email: &str,
        password_hash: &str,
        role: Role,
    ) -> Result<Option<User>> {
        let id = UserId::new();
        let email = email.trim().to_lowercase();
        let q = q!(
            "INSERT INTO users (id, email, password_hash, role, created_at)
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (email) DO NOTHING",
            id.to_string(),
            &email,
            password_hash,
            role.as_str(),
            now_ms(),
        );
        let inserted = self.db.write().execute(q).await?;
        Ok((inserted == 1).then_some(User { id, email, role }))
    }

    /// Sets (or replaces) an account's password hash.
    pub async fn set_password_hash(&self, user: UserId, password_hash: &str) -> Result<()> {
        let q = q!(
            "UPDATE users SET password_hash = $1 WHERE id = $2",
            password_hash,
            user.to_string(),
        );
        self.db.write().execute(q).await?;
        Ok(())
    }

    /// An account and its password hash (if it has a password), by email.
    pub async fn credentials(&self, email: &str) -> Result<Option<(User, Option<String>)>> {
        let q = q!(
            "SELECT id, email, role, password_hash FROM users WHERE email = $1",
            email.trim().to_lowercase(),
        );
        Ok(self
            .db
            .read()
            .optional(q, |r| {
                Ok((user_from_row(r)?, r.opt_str(3)?.map(str::to_owned)))
            })
            .await?)
    }

    /// Records a session by the hash of its id.
    pub async fn create_session(&self, id_hash: &str, user: UserId, expires_at: i64) -> Result<()> {
        let q = q!(
            "INSERT INTO sessions (id_hash, user_id, created_at, expires_at) VALUES ($1, $2, $3, $4)",
            id_hash,
            user.to_string(),
            now_ms(),
            expires_at,
        );
        self.db.write().execute(q).await?;
        Ok(())
    }

    /// The account of an unexpired session.
    pub async fn session_user(&self, id_hash: &str) -> Result<Option<User>> {
        let q = q!(
            "SELECT u.id, u.email, u.role FROM sessions s JOIN users u ON u.id = s.user_id
             WHERE s.id_hash = $1 AND s.expires_at > $2",
            id_hash,
            now_ms(),
        );
        Ok(self.db.read().optional(q, user_from_row).await?)
    }

    /// Ends a session (sign-out): its cookie authenticates nothing from now on.
    pub async fn delete_session(&self, id_hash: &str) -> Result<()> {
        let q = q!("DELETE FROM sessions WHERE id_hash = $1", id_hash);
        self.db.write().execute(q).await?;
        Ok(())
    }

    /// Removes expired sessions; returns how many.
    pub async fn delete_expired_sessions(&self) -> Result<u64> {
        let q = q!("DELETE FROM sessions WHERE expires_at <= $1", now_ms());
        Ok(self.db.write().execute(q).await?)
    }

    /// A user's API tokens, newest first.
    pub async fn list_api_tokens(&self, user: UserId) -> Result<Vec<ApiToken>> {
        let q = q!(
            "SELECT id, name, created_at, revoked_at FROM api_tokens
             WHERE user_id = $1 ORDER BY created_at DESC, id DESC",
            user.to_string(),
        );
        Ok(self
            .db
            .read()
            .all(q, |r| {
                let mut c = Cols::new(r);
                Ok(ApiToken {
                    id: c.text()?,
                    name: c.text()?,
                    created_at: c.int()?,
                    revoked_at: c.opt_int()?,
                })
            })
            .await?)
    }

    /// Revokes one of a user's tokens; false if they have no such unrevoked token.
    pub async fn revoke_api_token(&self, user: UserId, id: &str) -> Result<bool> {
        let q = q!(
            "UPDATE api_tokens SET revoked_at = $1
             WHERE id = $2 AND user_id = $3 AND revoked_at IS NULL",
            now_ms(),
            id,
            user.to_string(),
        );
        Ok(self.db.write().execute(q).await? == 1)
    }
}
