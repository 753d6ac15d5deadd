//! Operators' account commands (`forklift-jobs admin …`): users with a password, and
//! API tokens, created straight in the accounts tables — so the first admin of a
//! deployment comes from a command (`kubectl exec`, a Kubernetes Job) instead of a file
//! on some pod's disk.

use anyhow::Context;
use forklift_accounts::Accounts;
use forklift_domain::{Role, User};

/// Longest email accepted (RFC 5321's path limit).
const MAX_EMAIL: usize = 254;

/// Shortest password an operator may set.
pub const MIN_PASSWORD: usize = 8;

/// An account just created.
#[derive(Debug)]
pub struct Created {
    /// The account.
    pub user: User,
    /// The password, when it was generated here (shown once, never stored).
    pub password: Option<String>,
}

/// Checks an email the way sign-up does: one `@` with text on both sides, no spaces
/// or control characters, at most 254 characters. Returns it lower-cased.
pub fn normalize_email(email: &str) -> anyhow::Result<String> {
    let email = email.trim().to_lowercase();
    let ok = email.len() <= MAX_EMAIL
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
        && matches!(email.split_once('@'), Some((local, domain))
            if !local.is_empty() && !domain.is_empty() && !domain.contains('@'));
    anyhow::ensure!(ok, "{email:?} is not an email address");
    Ok(email)
}

/// Creates an account that signs in to the web app with `password`, or with a
/// generated one (returned in [`Created::password`]) when `None`. `Ok(None)` when the
/// email is taken — also when another process created it a moment ago.
pub async fn create_user(
    accounts: &Accounts,
    email: &str,
    admin: bool,
    password: Option<&str>,
) -> anyhow::Result<Option<Created>> {
    let email = normalize_email(email)?;
    let generated = password
        .is_none()
        .then(|| forklift_accounts::random_secret()[..24].to_owned());
    let password = password.or(generated.as_deref()).expect("one of them");
    anyhow::ensure!(
        password.chars().count() >= MIN_PASSWORD,
        "the password must have at least {MIN_PASSWORD} characters"
    );
    let hash = forklift_accounts::hash_password(password)
        .map_err(|e| anyhow::anyhow!("hashing the password: {e}"))?;
    let role = if admin { Role::Admin } else { Role::User };
    let user = accounts
        .create_account(&email, &hash, role)
        .await
        .context("creating the account")?;
    Ok(user.map(|user| Created {
        user,
        password: generated,
    }))
}

/// Creates an API token named `name` for the account `email` and returns the token
/// (shown once; only its hash is stored).
pub async fn create_token(accounts: &Accounts, email: &str, name: &str) -> anyhow::Result<String> {
    let email = normalize_email(email)?;
    let (user, _) = accounts
        .credentials(&email)
        .await
        .context("looking up the account")?
        .with_context(|| format!("no account {email:?}: create it first"))?;
    let (token, hash) = forklift_accounts::new_token();
    accounts
        .create_api_token(user.id, name, &hash)
        .await
        .context("storing the token")?;
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_checked_and_lower_cased() {
        assert_eq!(
            normalize_email(" Ann@Example.COM ").unwrap(),
            "ann@example.com"
        );
        for bad in [
            "",
            "ann",
            "@example.com",
            "ann@",
            "a b@c",
            "a@b@c",
            "a\u{7}@b",
        ] {
            assert!(normalize_email(bad).is_err(), "{bad:?}");
        }
        assert!(normalize_email(&format!("{}@b", "a".repeat(300))).is_err());
    }
}
