//! The server-rendered pages, one module per area, each with its own `router()`.
//! Every form posts to a handler here and redirects (POST/redirect/GET), so the site
//! works without JavaScript; `static/app.js` only adds live progress and drag-and-drop.

pub mod accounts;
pub mod admin;
pub mod files;
pub mod home;
pub mod jobs;
pub mod tokens;

use crate::assets;
use crate::error::PageError;
use crate::session::Csrf;
use askama::Template;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use forklift_domain::{Role, User};
use serde::Deserialize;

/// What every page's layout needs.
pub struct Chrome {
    /// The page title (before " · Forklift").
    pub title: String,
    /// The meta description.
    pub description: String,
    /// The signed-in user, if any.
    pub user: Option<ChromeUser>,
    /// The CSRF token for forms on this page (empty when it has none).
    pub csrf: String,
    /// Which navigation entry is current.
    pub nav: &'static str,
    /// Stylesheet URL (content-hashed).
    pub css: &'static str,
    /// Script URL (content-hashed).
    pub js: &'static str,
    /// Absolute addresses for link previews (OpenGraph), on pages worth sharing.
    pub og: Option<OpenGraph>,
}

/// A shareable page's absolute addresses.
pub struct OpenGraph {
    /// The page (`og:url`).
    pub url: String,
    /// Its preview picture (`og:image`).
    pub image: String,
}

/// The signed-in user as the layout shows them.
pub struct ChromeUser {
    /// Their email.
    pub email: String,
    /// Whether to show the admin link.
    pub admin: bool,
}

impl Chrome {
    /// The layout for a visitor who is not signed in and sees no form.
    pub fn anonymous(title: &str) -> Self {
        Self {
            title: title.to_owned(),
            description: DESCRIPTION.to_owned(),
            user: None,
            csrf: String::new(),
            nav: "",
            css: assets::css_url(),
            js: assets::js_url(),
            og: None,
        }
    }

    fn new(title: &str, nav: &'static str, user: Option<&User>, csrf: &Csrf) -> Self {
        Self {
            user: user.map(|u| ChromeUser {
                email: u.email.clone(),
                admin: u.role == Role::Admin,
            }),
            csrf: csrf.token().to_owned(),
            nav,
            ..Self::anonymous(title)
        }
    }
}

const DESCRIPTION: &str = "Forklift turns uploads into results: image thumbnails, data-profile \
reports from CSV and web-ready video, processed in the background with live progress.";

/// A page as HTML, revalidated on every visit: pages show the user's own data.
fn render(t: &impl Template) -> Result<Response, PageError> {
    let mut res = Html(t.render()?).into_response();
    res.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-cache"),
    );
    Ok(res)
}

/// POST/redirect/GET: where a form's handler sends the browser.
fn see_other(to: &str) -> Response {
    Redirect::to(to).into_response()
}

/// Refuses a form whose CSRF token does not match the cookie's.
fn check_csrf(csrf: &Csrf, submitted: &str) -> Result<(), PageError> {
    if csrf.verify(submitted) {
        Ok(())
    } else {
        Err(PageError::Bad(
            StatusCode::FORBIDDEN,
            "This form has expired or did not come from this site (CSRF check failed). \
             Go back, reload the page and try again."
                .into(),
        ))
    }
}

/// Only local paths are followed after sign-in: one leading `/`, then only characters
/// that may stand unescaped in a URL path and query (RFC 3986's unreserved, sub-delims,
/// `:@/?%#`). Anything a browser could read as another host — `//host`, `/\\host`, or a
/// tab or newline that browsers strip (`/\t/host` is `//host`) — gives the dashboard.
fn safe_next(next: Option<&str>) -> &str {
    let allowed = |c: char| c.is_ascii_alphanumeric() || "-._~!$&'()*+,;=:@/?%#".contains(c);
    match next {
        Some(n) if n.starts_with('/') && !n.starts_with("//") && n.chars().all(allowed) => n,
        _ => "/dashboard",
    }
}

/// A form with only the CSRF token.
#[derive(Deserialize)]
pub struct CsrfOnly {
    #[serde(default)]
    csrf: String,
}

/// `?cursor=` (and filters) of list pages.
#[derive(Deserialize, Default)]
pub struct ListQuery {
    cursor: Option<String>,
    state: Option<String>,
    kind: Option<String>,
}

/// Anything else: the 404 page.
pub async fn not_found() -> Response {
    PageError::NotFound.into_response()
}

#[cfg(test)]
mod tests {
    use super::safe_next;

    #[test]
    fn only_local_paths_are_followed() {
        for ok in [
            "/",
            "/jobs/01a2",
            "/files?page=2&x=%2F",
            "/admin#top",
            "/.//x",
        ] {
            assert_eq!(safe_next(Some(ok)), ok, "{ok:?}");
        }
        for bad in [
            "//evil.com",
            "/\t/evil.com",
            "/\n/evil.com",
            "/\\evil.com",
            "/\r/evil.com",
            "https://evil.com",
            "evil.com",
            "/ /evil.com",
            "/\u{3000}/evil.com",
            "",
        ] {
            assert_eq!(safe_next(Some(bad)), "/dashboard", "{bad:?}");
        }
        assert_eq!(safe_next(None), "/dashboard");
    }
}
