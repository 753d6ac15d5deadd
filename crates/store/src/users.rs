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
            .execute(&self.pool)
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

    /// Stores a new API token by its hash; the token itself is never stored.
    pub async fn create_api_token(&self, user: UserId, name: &str, token_hash: &str) -> Result<()> {
        sqlx::query(
            "INSERT INTO api_tokens (id, user_id, name, token_hash, created_at)
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(UserId::new().to_string())
        .bind(user.to_string())
        .bind(name)
        .bind(token_hash)
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        Ok(())
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
