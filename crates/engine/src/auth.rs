//! Who is calling: API tokens (bearer), or the web app's service credentials plus the
//! acting user's id. The services never trust a user id from a caller without service
//! credentials.

use crate::error::ApiError;
use forklift_domain::{Role, UserId};
use forklift_store::Store;
use rand::RngCore;
use sha2::{Digest, Sha256};
use tonic::metadata::MetadataMap;

/// Metadata key carrying the shared service secret (web app → jobs service).
pub const SERVICE_TOKEN_HEADER: &str = "x-forklift-service-token";
/// Metadata key carrying the acting user's id, honoured only with the service secret.
pub const ACTING_USER_HEADER: &str = "x-forklift-user";
/// Metadata key carrying the acting user's role (`user` or `admin`), honoured only with
/// the service secret. Without it the account is looked up.
pub const ACTING_ROLE_HEADER: &str = "x-forklift-role";

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

/// Checks credentials against the accounts tables.
#[derive(Clone)]
pub struct Authenticator {
    store: Store,
    service_token: Option<String>,
}

/// Never shows the service token.
impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field("store", &self.store)
            .field(
                "service_token",
                &self.service_token.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

impl Authenticator {
    /// An authenticator; `service_token` enables service credentials.
    pub fn new(store: Store, service_token: Option<String>) -> Self {
        Self {
            store,
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
                .store
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
            .store
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

/// Compares two secrets without leaking where they differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The stored form of a token: hex SHA-256 (tokens carry 256 random bits, so a slow
/// password hash would add nothing).
pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// A new API token and its stored hash.
pub fn new_token() -> (String, String) {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let token = format!("fk_{}", hex::encode(bytes));
    let hash = hash_token(&token);
    (token, hash)
}

/// Argon2id with 12 MiB and 3 passes: one of the settings OWASP's password storage
/// guidance rates as equally strong (its list runs from 46 MiB × 1 pass to 7 MiB × 5),
/// about the same CPU time as 19 MiB × 2, and 7 MiB less memory per hash — what sets
/// a small server's peak memory when sign-ins arrive together.
fn argon2() -> argon2::Argon2<'static> {
    let params = argon2::Params::new(12 * 1024, 3, 1, None).expect("valid argon2 parameters");
    argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
}

/// An argon2id hash of a password (PHC string: algorithm, parameters and salt
/// included), with the parameters of [`argon2`]. Hashes made with other parameters
/// (earlier versions used 19 MiB × 2) still verify: the PHC string carries them.
pub fn hash_password(password: &str) -> Result<String, String> {
    use argon2::password_hash::{PasswordHasher, SaltString};
    let mut salt = [0u8; 16];
    rand::rng().fill_bytes(&mut salt);
    let salt = SaltString::encode_b64(&salt).map_err(|e| e.to_string())?;
    argon2()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
}

/// Whether `password` matches a hash made by [`hash_password`] (constant time).
pub fn verify_password(password: &str, hash: &str) -> bool {
    use argon2::password_hash::{PasswordHash, PasswordVerifier};
    PasswordHash::new(hash).is_ok_and(|h| argon2().verify_password(password.as_bytes(), &h).is_ok())
}

/// A random secret of 32 bytes, hex-encoded (session ids, CSRF tokens, passwords).
pub fn random_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// Creates a user with an API token and returns the token (shown once).
pub async fn create_user_with_token(
    store: &Store,
    email: &str,
    role: Role,
    token_name: &str,
) -> Result<(UserId, String), forklift_store::StoreError> {
    let user = store.create_user(email, role).await?;
    let (token, hash) = new_token();
    store.create_api_token(user.id, token_name, &hash).await?;
    Ok((user.id, token))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn debug_output_never_shows_the_service_token() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("a.db").display());
        let store = Store::open(&url).await.unwrap();
        let auth = Authenticator::new(store.clone(), Some("s3cret-service-token".into()));
        let shown = format!("{auth:?}");
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(shown.contains("<redacted>"), "{shown}");
        store.close().await;
    }

    #[test]
    fn tokens_are_random_and_hash_stably() {
        let (a, ha) = new_token();
        let (b, _) = new_token();
        assert_ne!(a, b);
        assert!(a.starts_with("fk_") && a.len() == 67);
        assert_eq!(hash_token(&a), ha);
        assert!(constant_time_eq(b"abc", b"abc") && !constant_time_eq(b"abc", b"abd"));
    }

    #[test]
    fn passwords_hash_with_argon2id_and_verify() {
        let h = hash_password("correct horse battery").unwrap();
        assert!(h.starts_with("$argon2id$"), "{h}");
        assert!(verify_password("correct horse battery", &h));
        assert!(!verify_password("correct horse batterY", &h));
        assert!(!verify_password("x", "not a hash"));
        assert_ne!(h, hash_password("correct horse battery").unwrap(), "salted");
        assert!(h.contains("$m=12288,t=3,p=1$"), "{h}");

        // A hash made with other parameters (19 MiB × 2, as before) still verifies.
        use argon2::password_hash::{PasswordHasher, SaltString};
        let salt = SaltString::encode_b64(b"sixteen byte slt").unwrap();
        let old = argon2::Argon2::default()
            .hash_password(b"correct horse battery", &salt)
            .unwrap()
            .to_string();
        assert!(old.contains("$m=19456,t=2,p=1$"), "{old}");
        assert!(verify_password("correct horse battery", &old));
        assert!(!verify_password("correct horse batterY", &old));
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
        assert_eq!(err.http_status(), 403);
        assert!(
            err.to_string().contains("listing every user's jobs"),
            "{err}"
        );
    }
}
