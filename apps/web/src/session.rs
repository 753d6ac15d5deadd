//! Who is asking: browser sessions (a random id in an HttpOnly cookie, stored hashed
//! server-side), CSRF tokens for every form (double-submit: a random cookie the form
//! must echo), and bearer API tokens for the JSON API.

use crate::error::{ApiFailure, PageError};
use crate::state::Web;
use axum::extract::{FromRef, FromRequestParts, Request, State};
use axum::http::header::{COOKIE, SET_COOKIE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use forklift_accounts::{constant_time_eq, hash_token, random_secret};
use forklift_domain::{Role, User};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// The session cookie.
pub const SESSION_COOKIE: &str = "forklift_session";
/// The CSRF cookie; every form carries the same value in a hidden `csrf` field.
pub const CSRF_COOKIE: &str = "forklift_csrf";
/// How long a session lasts.
pub const SESSION_DAYS: i64 = 14;

/// The value of one cookie of a request.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// A `Set-Cookie` value with the attributes every cookie of ours has.
pub fn set_cookie(name: &str, value: &str, max_age_secs: i64, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{name}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age_secs}{secure}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// The request's CSRF token; if the browser had none, a fresh one that is set as a
/// cookie on the response when a page used it.
#[derive(Clone)]
pub struct Csrf {
    token: Arc<str>,
    fresh: bool,
    used: Arc<AtomicBool>,
}

impl Csrf {
    /// The token to put in a form's hidden field.
    pub fn token(&self) -> &str {
        self.used.store(true, Ordering::Relaxed);
        &self.token
    }

    /// Whether a submitted form's token matches the cookie.
    pub fn verify(&self, submitted: &str) -> bool {
        !self.fresh && constant_time_eq(self.token.as_bytes(), submitted.as_bytes())
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Csrf {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Csrf>()
            .cloned()
            .ok_or_else(|| PageError::internal("CSRF middleware missing"))
    }
}

/// Middleware: provides [`Csrf`] and sets its cookie when a page handed out a new one.
pub async fn csrf_layer(State(web): State<Web>, mut req: Request, next: Next) -> Response {
    let existing = cookie(req.headers(), CSRF_COOKIE)
        .filter(|t| t.len() == 64 && t.bytes().all(|b| b.is_ascii_hexdigit()))
        .map(str::to_owned);
    let csrf = Csrf {
        fresh: existing.is_none(),
        token: existing.unwrap_or_else(random_secret).into(),
        used: Arc::new(AtomicBool::new(false)),
    };
    req.extensions_mut().insert(csrf.clone());
    let mut res = next.run(req).await;
    if csrf.fresh && csrf.used.load(Ordering::Relaxed) {
        res.headers_mut().append(
            SET_COOKIE,
            set_cookie(CSRF_COOKIE, &csrf.token, 365 * 86_400, web.secure_cookies()),
        );
    }
    res
}

/// The signed-in user of a page, if any.
#[derive(Clone)]
pub struct Viewer(pub Option<User>);

impl<S> FromRequestParts<S> for Viewer
where
    Web: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        if let Some(v) = parts.extensions.get::<Viewer>() {
            return Ok(v.clone());
        }
        let web = Web::from_ref(state);
        let user = match cookie(&parts.headers, SESSION_COOKIE) {
            Some(id) if !id.is_empty() => web
                .accounts()
                .session_user(&hash_token(id))
                .await
                .map_err(|e| PageError::internal(e.to_string()))?,
            _ => None,
        };
        let v = Viewer(user);
        parts.extensions.insert(v.clone());
        Ok(v)
    }
}

/// A signed-in user; anyone else is sent to the sign-in page (and back afterwards).
pub struct SignedIn(pub User);

impl<S> FromRequestParts<S> for SignedIn
where
    Web: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match Viewer::from_request_parts(parts, state).await?.0 {
            Some(u) => Ok(SignedIn(u)),
            None => {
                let next = parts
                    .uri
                    .path_and_query()
                    .map(|p| p.as_str())
                    .unwrap_or("/dashboard");
                Err(PageError::SignIn(next.to_owned()))
            }
        }
    }
}

/// A signed-in admin; other users get 403.
pub struct AdminUser(pub User);

impl<S> FromRequestParts<S> for AdminUser
where
    Web: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let SignedIn(u) = SignedIn::from_request_parts(parts, state).await?;
        if u.role == Role::Admin {
            Ok(AdminUser(u))
        } else {
            Err(PageError::Forbidden(
                "The admin console is for administrators only.".into(),
            ))
        }
    }
}

/// The caller of the JSON API, by `Authorization: Bearer <token>`.
pub struct ApiCaller(pub User);

impl<S> FromRequestParts<S> for ApiCaller
where
    Web: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiFailure;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let web = Web::from_ref(state);
        let token = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(str::trim)
            .ok_or_else(ApiFailure::unauthenticated)?;
        web.accounts()
            .user_by_token_hash(&hash_token(token))
            .await
            .map_err(|e| ApiFailure::internal(e.to_string()))?
            .map(ApiCaller)
            .ok_or_else(ApiFailure::unauthenticated)
    }
}

/// A new session id (for the cookie) and its stored hash.
pub fn new_session_id() -> (String, String) {
    let id = random_secret();
    let hash = hash_token(&id);
    (id, hash)
}
