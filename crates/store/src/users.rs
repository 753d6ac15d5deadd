//! Accounts and API tokens.

use crate::{Result, Store, corrupt};
use forklift_domain::{Role, User, UserId, now_ms};
use sqlx::Row;

impl Store {
    /// Creates an account.
    pub async fn create_user(&self, email: &str, role: Role) -> Result<User> {
        let id = UserId::new();
        sqlx::query("INSERT INTO users (id, email, role, created_at) VALUES ($1, $2, $3, $4)")
            .bind(id.to_string())
            .bind(email)
            .bind(role.as_str())
            .bind(now_ms())
            .execute(&self.writer)
            .await?;
        Ok(User {
            id,
            email: email.to_owned(),
            role,
        })
    }

    /// How many accounts exist (to bootstrap the first one).
    pub async fn count_users(&self) -> Result<i64> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM users")
            .fetch_one(&self.pool)
            .await?)
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
        sqlx::query(
            "INSERT INTO api_tokens (id, user_id, name, token_hash, created_at)
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&id)
        .bind(user.to_string())
        .bind(name)
        .bind(token_hash)
        .bind(now_ms())
        .execute(&self.writer)
        .await?;
        Ok(id)
    }

    /// The owner of an unrevoked API token, by the token's hash.
    pub async fn user_by_token_hash(&self, token_hash: &str) -> Result<Option<User>> {
        let row = sqlx::query(
            "SELECT u.id, u.email, u.role FROM api_tokens t JOIN users u ON u.id = t.user_id
             WHERE t.token_hash = $1 AND t.revoked_at IS NULL",
        )
        .bind(token_hash)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| user_from_row(&r)).transpose()
    }

    /// An account by id.
    pub async fn get_user(&self, id: UserId) -> Result<Option<User>> {
        let row = sqlx::query("SELECT id, email, role FROM users WHERE id = $1")
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| user_from_row(&r)).transpose()
    }
}

fn user_from_row(r: &sqlx::any::AnyRow) -> Result<User> {
    let id: String = r.try_get("id")?;
    Ok(User {
        id: id.parse().map_err(corrupt)?,
        email: r.try_get("email")?,
        role: Role::parse(r.try_get::<&str, _>("role")?),
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

impl Store {
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
        let inserted = sqlx::query(
            "INSERT INTO users (id, email, password_hash, role, created_at)
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (email) DO NOTHING",
        )
        .bind(id.to_string())
        .bind(&email)
        .bind(password_hash)
        .bind(role.as_str())
        .bind(now_ms())
        .execute(&self.writer)
        .await?
        .rows_affected();
        Ok((inserted == 1).then_some(User { id, email, role }))
    }

    /// Sets (or replaces) an account's password hash.
    pub async fn set_password_hash(&self, user: UserId, password_hash: &str) -> Result<()> {
        sqlx::query("UPDATE users SET password_hash = $1 WHERE id = $2")
            .bind(password_hash)
            .bind(user.to_string())
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    /// An account and its password hash (if it has a password), by email.
    pub async fn credentials(&self, email: &str) -> Result<Option<(User, Option<String>)>> {
        let row = sqlx::query("SELECT id, email, role, password_hash FROM users WHERE email = $1")
            .bind(email.trim().to_lowercase())
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| Ok((user_from_row(&r)?, r.try_get("password_hash")?)))
            .transpose()
    }

    /// Records a session by the hash of its id.
    pub async fn create_session(&self, id_hash: &str, user: UserId, expires_at: i64) -> Result<()> {
        sqlx::query(
            "INSERT INTO sessions (id_hash, user_id, created_at, expires_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(id_hash)
        .bind(user.to_string())
        .bind(now_ms())
        .bind(expires_at)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    /// The account of an unexpired session.
    pub async fn session_user(&self, id_hash: &str) -> Result<Option<User>> {
        let row = sqlx::query(
            "SELECT u.id, u.email, u.role FROM sessions s JOIN users u ON u.id = s.user_id
             WHERE s.id_hash = $1 AND s.expires_at > $2",
        )
        .bind(id_hash)
        .bind(now_ms())
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| user_from_row(&r)).transpose()
    }

    /// Ends a session (sign-out): its cookie authenticates nothing from now on.
    pub async fn delete_session(&self, id_hash: &str) -> Result<()> {
        sqlx::query("DELETE FROM sessions WHERE id_hash = $1")
            .bind(id_hash)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    /// Removes expired sessions; returns how many.
    pub async fn delete_expired_sessions(&self) -> Result<u64> {
        Ok(sqlx::query("DELETE FROM sessions WHERE expires_at <= $1")
            .bind(now_ms())
            .execute(&self.writer)
            .await?
            .rows_affected())
    }

    /// A user's API tokens, newest first.
    pub async fn list_api_tokens(&self, user: UserId) -> Result<Vec<ApiToken>> {
        let rows = sqlx::query(
            "SELECT id, name, created_at, revoked_at FROM api_tokens
             WHERE user_id = $1 ORDER BY created_at DESC, id DESC",
        )
        .bind(user.to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(ApiToken {
                    id: r.try_get("id")?,
                    name: r.try_get("name")?,
                    created_at: r.try_get("created_at")?,
                    revoked_at: r.try_get("revoked_at")?,
                })
            })
            .collect()
    }

    /// Revokes one of a user's tokens; false if they have no such unrevoked token.
    pub async fn revoke_api_token(&self, user: UserId, id: &str) -> Result<bool> {
        Ok(sqlx::query(
            "UPDATE api_tokens SET revoked_at = $1
             WHERE id = $2 AND user_id = $3 AND revoked_at IS NULL",
        )
        .bind(now_ms())
        .bind(id)
        .bind(user.to_string())
        .execute(&self.writer)
        .await?
        .rows_affected()
            == 1)
    }
}
