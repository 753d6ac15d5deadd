//! The API tokens page: list, create (shown once), revoke.

use super::{Chrome, CsrfOnly, check_csrf, render, see_other};
use crate::error::PageError;
use crate::session::{Csrf, SignedIn};
use crate::state::Web;
use askama::Template;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Form, Router};
use forklift_accounts::new_token;
use forklift_domain::User;
use serde::Deserialize;

/// `/tokens` and revoking one.
pub fn router() -> Router<Web> {
    Router::new()
        .route("/tokens", get(tokens_page).post(tokens_create))
        .route("/tokens/{id}/revoke", post(tokens_revoke))
}

#[derive(Template)]
#[template(path = "tokens.html")]
struct TokensPage {
    page: Chrome,
    tokens: Vec<forklift_accounts::ApiToken>,
    created: String,
    created_name: String,
    error: String,
}

async fn tokens_page_with(
    web: &Web,
    user: &User,
    csrf: &Csrf,
    created: (String, String),
    error: &str,
    status: StatusCode,
) -> Result<Response, PageError> {
    let tokens = web.accounts().list_api_tokens(user.id).await?;
    let mut res = render(&TokensPage {
        page: Chrome::new("API tokens", "tokens", Some(user), csrf),
        tokens,
        created: created.0,
        created_name: created.1,
        error: error.to_owned(),
    })?;
    *res.status_mut() = status;
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(res)
}

/// When a token was created (RFC 3339).
pub fn created(t: &forklift_accounts::ApiToken) -> String {
    crate::model::rfc3339(t.created_at)
}

/// `GET /tokens`.
pub async fn tokens_page(
    State(web): State<Web>,
    SignedIn(user): SignedIn,
    csrf: Csrf,
) -> Result<Response, PageError> {
    tokens_page_with(&web, &user, &csrf, Default::default(), "", StatusCode::OK).await
}

/// The new-token form.
#[derive(Deserialize)]
pub struct NewToken {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
}

/// `POST /tokens`: creates a token and shows it once, on this response only (the
/// page is not cached and the token is never stored).
pub async fn tokens_create(
    State(web): State<Web>,
    SignedIn(user): SignedIn,
    csrf: Csrf,
    Form(f): Form<NewToken>,
) -> Result<Response, PageError> {
    check_csrf(&csrf, &f.csrf)?;
    let name = f.name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return tokens_page_with(
            &web,
            &user,
            &csrf,
            Default::default(),
            "Give the token a name of 1 to 100 characters, e.g. where it will be used.",
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    }
    let (token, hash) = new_token();
    web.accounts()
        .create_api_token(user.id, name, &hash)
        .await?;
    tokens_page_with(
        &web,
        &user,
        &csrf,
        (token, name.to_owned()),
        "",
        StatusCode::CREATED,
    )
    .await
}

/// `POST /tokens/{id}/revoke`.
pub async fn tokens_revoke(
    State(web): State<Web>,
    SignedIn(user): SignedIn,
    csrf: Csrf,
    Path(id): Path<String>,
    Form(f): Form<CsrfOnly>,
) -> Result<Response, PageError> {
    check_csrf(&csrf, &f.csrf)?;
    if !web.accounts().revoke_api_token(user.id, &id).await? {
        return Err(PageError::NotFound);
    }
    Ok(see_other("/tokens"))
}
