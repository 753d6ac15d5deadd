//! Accounts made in one call: a user with an API token, and a database's first admin.

use crate::{Accounts, AccountsError, Result, hash_password, new_token, random_secret};
use forklift_domain::{Role, UserId};

/// The account unified mode creates on its first start.
pub const BOOTSTRAP_ADMIN: &str = "admin@localhost";

/// Creates a user with an API token and returns the token (shown once).
pub async fn create_user_with_token(
    accounts: &Accounts,
    email: &str,
    role: Role,
    token_name: &str,
) -> Result<(UserId, String)> {
    let user = accounts.create_user(email, role).await?;
    let (token, hash) = new_token();
    accounts
        .create_api_token(user.id, token_name, &hash)
        .await?;
    Ok((user.id, token))
}

/// The first admin's secrets, shown once and stored only as hashes.
#[derive(Debug)]
pub struct FirstAdmin {
    /// Its web password (generated).
    pub password: String,
    /// Its API token, named "first start".
    pub token: String,
}

/// On a database without accounts, creates [`BOOTSTRAP_ADMIN`] with a generated
/// password and an API token; `None` when there are accounts already. Processes that
/// start together on an empty database may all get here: the email is unique, so
/// exactly one of them creates the admin and the others answer `None`.
pub async fn bootstrap_admin(accounts: &Accounts) -> Result<Option<FirstAdmin>> {
    if accounts.count_users().await? > 0 {
        return Ok(None);
    }
    let password = random_secret()[..24].to_owned();
    let hash = hash_password(&password).map_err(AccountsError::PasswordHash)?;
    let Some(user) = accounts
        .create_account(BOOTSTRAP_ADMIN, &hash, Role::Admin)
        .await?
    else {
        return Ok(None);
    };
    let (token, hash) = new_token();
    accounts
        .create_api_token(user.id, "first start", &hash)
        .await?;
    Ok(Some(FirstAdmin { password, token }))
}
