//! Accounts: sign-up, sign-in (limited per account) and sign-out.

use super::{Chrome, CsrfOnly, check_csrf, render, safe_next, see_other};
use crate::error::PageError;
use crate::session::{Csrf, SESSION_COOKIE, SESSION_DAYS, Viewer, new_session_id, set_cookie};
use crate::state::Web;
use askama::Template;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Form, Router};
use forklift_accounts::{hash_password, hash_token, verify_password};
use forklift_domain::{Role, User, now_ms};
use serde::Deserialize;

/// `/signin`, `/signup`, `/signout`.
pub fn router() -> Router<Web> {
    Router::new()
        .route("/signin", get(signin_form).post(signin))
        .route("/signup", get(signup_form).post(signup))
        .route("/signout", post(signout))
}

#[derive(Template)]
#[template(path = "auth.html")]
struct AuthPage {
    page: Chrome,
    signup: bool,
    email: String,
    next: String,
    error: String,
}

/// `?next=` of the sign-in and sign-up pages.
#[derive(Deserialize)]
pub struct NextQuery {
    next: Option<String>,
}

fn auth_page(
    signup: bool,
    csrf: &Csrf,
    email: &str,
    next: &str,
    error: &str,
    status: StatusCode,
) -> Result<Response, PageError> {
    let title = if signup {
        "Create your account"
    } else {
        "Sign in"
    };
    let page = AuthPage {
        page: Chrome::new(title, if signup { "signup" } else { "signin" }, None, csrf),
        signup,
        email: email.to_owned(),
        next: next.to_owned(),
        error: error.to_owned(),
    };
    let mut res = render(&page)?;
    *res.status_mut() = status;
    Ok(res)
}

/// `GET /signin`.
pub async fn signin_form(
    Viewer(user): Viewer,
    csrf: Csrf,
    Query(q): Query<NextQuery>,
) -> Result<Response, PageError> {
    let next = safe_next(q.next.as_deref());
    if user.is_some() {
        return Ok(see_other(next));
    }
    auth_page(false, &csrf, "", next, "", StatusCode::OK)
}

/// `GET /signup`.
pub async fn signup_form(
    Viewer(user): Viewer,
    csrf: Csrf,
    Query(q): Query<NextQuery>,
) -> Result<Response, PageError> {
    let next = safe_next(q.next.as_deref());
    if user.is_some() {
        return Ok(see_other(next));
    }
    auth_page(true, &csrf, "", next, "", StatusCode::OK)
}

/// The sign-in and sign-up form.
#[derive(Deserialize)]
pub struct Credentials {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    next: Option<String>,
}

/// Starts a session for `user` and redirects to `next`.
async fn start_session(web: &Web, user: &User, next: &str) -> Result<Response, PageError> {
    let (id, hash) = new_session_id();
    let ttl = SESSION_DAYS * 86_400;
    web.accounts()
        .create_session(&hash, user.id, now_ms() + ttl * 1000)
        .await?;
    let mut res = see_other(next);
    res.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(SESSION_COOKIE, &id, ttl, web.secure_cookies()),
    );
    Ok(res)
}

/// `POST /signup`.
pub async fn signup(
    State(web): State<Web>,
    csrf: Csrf,
    Form(f): Form<Credentials>,
) -> Result<Response, PageError> {
    check_csrf(&csrf, &f.csrf)?;
    let next = safe_next(f.next.as_deref());
    let email = f.email.trim().to_lowercase();
    let problem = if !valid_email(&email) {
        Some("Enter an email address like name@example.com.")
    } else if f.password.chars().count() < 10 {
        Some("Choose a password of at least 10 characters.")
    } else if f.password.len() > 1024 {
        Some("That password is too long (at most 1024 bytes).")
    } else {
        None
    };
    if let Some(p) = problem {
        return auth_page(
            true,
            &csrf,
            &email,
            next,
            p,
            StatusCode::UNPROCESSABLE_ENTITY,
        );
    }
    let password = f.password.clone();
    let hash = web
        .password_work(move || hash_password(&password))
        .await?
        .map_err(PageError::internal)?;
    match web
        .accounts()
        .create_account(&email, &hash, Role::User)
        .await?
    {
        Some(user) => {
            tracing::info!(user_id = %user.id, "account created");
            start_session(&web, &user, next).await
        }
        None => auth_page(
            true,
            &csrf,
            &email,
            next,
            "An account with this email already exists. Sign in instead.",
            StatusCode::CONFLICT,
        ),
    }
}

fn valid_email(e: &str) -> bool {
    e.len() <= 254
        && e.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty() && !domain.is_empty() && !e.contains(char::is_whitespace)
        })
}

/// `POST /signin`. Failed attempts are limited per account.
pub async fn signin(
    State(web): State<Web>,
    csrf: Csrf,
    Form(f): Form<Credentials>,
) -> Result<Response, PageError> {
    check_csrf(&csrf, &f.csrf)?;
    let next = safe_next(f.next.as_deref());
    let email = f.email.trim().to_lowercase();
    let key = format!("signin:{email}");
    // A token is taken before the password is checked and given back when it is
    // right: concurrent guesses cannot all pass a check made before any failed.
    if let Err(wait) = web.signin_limit().hit(&key) {
        let mins = wait.as_secs().div_ceil(60).max(1);
        let msg = format!(
            "Too many failed sign-ins for this account. Try again in {mins} minute{}.",
            if mins == 1 { "" } else { "s" }
        );
        let mut res = auth_page(
            false,
            &csrf,
            &email,
            next,
            &msg,
            StatusCode::TOO_MANY_REQUESTS,
        )?;
        res.headers_mut().insert(
            header::RETRY_AFTER,
            HeaderValue::from(wait.as_secs().max(1)),
        );
        return Ok(res);
    }
    let found = web.accounts().credentials(&email).await?;
    // Verify against a fixed hash when the account does not exist, so that timing does
    // not tell which emails have accounts.
    let hash = match &found {
        Some((_, Some(hash))) => Some(hash.clone()),
        _ => None,
    };
    let password = f.password.clone();
    let ok = web
        .password_work(move || match hash {
            Some(hash) => verify_password(&password, &hash),
            None => {
                verify_password(&password, dummy_hash());
                false
            }
        })
        .await?;
    match found {
        Some((user, _)) if ok => {
            web.signin_limit().reset(&key);
            start_session(&web, &user, next).await
        }
        _ => auth_page(
            false,
            &csrf,
            &email,
            next,
            "That email and password do not match an account.",
            StatusCode::UNAUTHORIZED,
        ),
    }
}

fn dummy_hash() -> &'static str {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| hash_password("not a real password").unwrap_or_default())
}

/// `POST /signout`: the session ends server-side, so a copied cookie stops working.
pub async fn signout(
    State(web): State<Web>,
    csrf: Csrf,
    headers: HeaderMap,
    Form(f): Form<CsrfOnly>,
) -> Result<Response, PageError> {
    check_csrf(&csrf, &f.csrf)?;
    if let Some(id) = crate::session::cookie(&headers, SESSION_COOKIE) {
        web.accounts().delete_session(&hash_token(id)).await?;
    }
    let mut res = see_other("/");
    res.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(SESSION_COOKIE, "", 0, web.secure_cookies()),
    );
    Ok(res)
}
