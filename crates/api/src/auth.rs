//! Who is calling: API tokens (bearer), or the web app's service credentials plus the
//! acting user's id. The services never trust a user id from a caller without service
//! credentials. Accounts themselves (users, tokens, passwords) are `forklift-accounts`';
//! the jobs side only asks it who a token or user id is.

use crate::error::ApiError;
use forklift_accounts::{Accounts, constant_time_eq, hash_token};
use forklift_domain::{Role, UserId};
use forklift_rpc::{ACTING_ROLE_HEADER, ACTING_USER_HEADER, SERVICE_TOKEN_HEADER};
use tonic::metadata::MetadataMap;

/// An authenticated caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caller {
    /// The acting user.
    pub user_id: UserId,
    /// Their role.
    pub role: Role,
}

impl Caller {
    /// True for admin accounts.
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }

    /// Nothing for admins; PERMISSION_DENIED naming `what` for anyone else.
    pub fn require_admin(&self, what: &str) -> Result<(), ApiError> {
        if self.is_admin() {
            Ok(())
        } else {
            Err(ApiError::PermissionDenied(format!(
                "{what} is for admins only, and the calling account is not an admin"
            )))
        }
    }
}

/// Checks credentials against the accounts.
#[derive(Clone)]
pub struct Authenticator {
    accounts: Accounts,
    service_token: Option<String>,
}

/// Never shows the service token.
impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field("accounts", &self.accounts)
            .field(
                "service_token",
                &self.service_token.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

impl Authenticator {
    /// An authenticator; `service_token` enables service credentials.
    pub fn new(accounts: Accounts, service_token: Option<String>) -> Self {
        Self {
            accounts,
            service_token: service_token.filter(|t| !t.is_empty()),
        }
    }

    /// The caller of a request, or UNAUTHENTICATED.
    pub async fn caller(&self, md: &MetadataMap) -> Result<Caller, ApiError> {
        if let (Some(expected), Some(given)) = (
            &self.service_token,
            md.get(SERVICE_TOKEN_HEADER).and_then(|v| v.to_str().ok()),
        ) {
            if !constant_time_eq(expected.as_bytes(), given.as_bytes()) {
                return Err(unauthenticated());
            }
            let user: UserId = md
                .get(ACTING_USER_HEADER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| {
                    ApiError::Unauthenticated(format!(
                        "{ACTING_USER_HEADER} is missing or not a user id"
                    ))
                })?;
            // The holder of the service secret has checked the user (the web app, on
            // the session or API token of this very request) and may say the role.
            let role = match md.get(ACTING_ROLE_HEADER).map(|v| v.to_str()) {
                Some(Ok("admin")) => Some(Role::Admin),
                Some(Ok("user")) => Some(Role::User),
                None => None,
                Some(_) => {
                    return Err(ApiError::Unauthenticated(format!(
                        "{ACTING_ROLE_HEADER} must be 'user' or 'admin'"
                    )));
                }
            };
            if let Some(role) = role {
                return Ok(Caller {
                    user_id: user,
                    role,
                });
            }
            let user = self
                .accounts
                .get_user(user)
                .await?
                .ok_or_else(unauthenticated)?;
            return Ok(Caller {
                user_id: user.id,
                role: user.role,
            });
        }
        let token = md
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .ok_or_else(unauthenticated)?;
        let user = self
            .accounts
            .user_by_token_hash(&hash_token(token.trim()))
            .await?
            .ok_or_else(unauthenticated)?;
        Ok(Caller {
            user_id: user.id,
            role: user.role,
        })
    }
}

fn unauthenticated() -> ApiError {
    ApiError::Unauthenticated(
        "a valid API token is required: send the metadata 'authorization: Bearer <token>'".into(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn debug_output_never_shows_the_service_token() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("a.db").display());
        let accounts = Accounts::open(&url).await.unwrap();
        let auth = Authenticator::new(accounts.clone(), Some("s3cret-service-token".into()));
        let shown = format!("{auth:?}");
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(shown.contains("<redacted>"), "{shown}");
        accounts.close().await;
    }

    #[test]
    fn only_admins_pass_require_admin() {
        let admin = Caller {
            user_id: UserId::new(),
            role: Role::Admin,
        };
        let user = Caller {
            role: Role::User,
            ..admin
        };
        assert!(admin.require_admin("x").is_ok());
        let err = user.require_admin("listing every user's jobs").unwrap_err();
        assert_eq!(err.code(), tonic::Code::PermissionDenied);
        assert_eq!(err.error_code().http_status(), 403);
        assert!(
            err.to_string().contains("listing every user's jobs"),
            "{err}"
        );
    }
}
