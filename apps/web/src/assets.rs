//! The stylesheets, script and link-preview picture, compiled into the binary and served
//! under content-hashed URLs, so browsers may cache them forever.

use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use std::sync::OnceLock;

const CSS: &str = include_str!("../static/app.css");
const JS: &str = include_str!("../static/app.js");
/// The data-profile report's layout: the one the downloadable report inlines, served as a
/// file because the pages' Content-Security-Policy allows no inline style.
const REPORT_CSS: &str = forklift_profile::REPORT_CSS;
/// The picture link previews show (OpenGraph), 1200×630.
const OG_IMAGE: &[u8] = include_bytes!("../static/og.png");

fn hashed(name: &str, body: &[u8]) -> String {
    let h = hex::encode(Sha256::digest(body));
    let (stem, ext) = name.rsplit_once('.').unwrap_or((name, ""));
    format!("/static/{stem}.{}.{ext}", &h[..12])
}

/// URL of the stylesheet.
pub fn css_url() -> &'static str {
    static U: OnceLock<String> = OnceLock::new();
    U.get_or_init(|| hashed("app.css", CSS.as_bytes()))
}

/// URL of the data-profile report's stylesheet.
pub fn report_css_url() -> &'static str {
    static U: OnceLock<String> = OnceLock::new();
    U.get_or_init(|| hashed("report.css", REPORT_CSS.as_bytes()))
}

/// URL of the script.
pub fn js_url() -> &'static str {
    static U: OnceLock<String> = OnceLock::new();
    U.get_or_init(|| hashed("app.js", JS.as_bytes()))
}

/// URL of the link-preview picture.
pub fn og_image_url() -> &'static str {
    static U: OnceLock<String> = OnceLock::new();
    U.get_or_init(|| hashed("og.png", OG_IMAGE))
}

/// `GET /static/{name}`: the current asset under its hashed (or plain) name.
pub async fn serve(Path(name): Path<String>) -> Response {
    let path = format!("/static/{name}");
    let (body, ct, immutable): (&'static [u8], _, _) = if path == css_url() {
        (CSS.as_bytes(), "text/css; charset=utf-8", true)
    } else if path == report_css_url() {
        (REPORT_CSS.as_bytes(), "text/css; charset=utf-8", true)
    } else if path == js_url() {
        (JS.as_bytes(), "text/javascript; charset=utf-8", true)
    } else if path == og_image_url() {
        (OG_IMAGE, "image/png", true)
    } else if name == "app.css" {
        (CSS.as_bytes(), "text/css; charset=utf-8", false)
    } else if name == "report.css" {
        (REPORT_CSS.as_bytes(), "text/css; charset=utf-8", false)
    } else if name == "app.js" {
        (JS.as_bytes(), "text/javascript; charset=utf-8", false)
    } else if name == "og.png" {
        (OG_IMAGE, "image/png", false)
    } else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let cache = if immutable {
        "public, max-age=31536000, immutable"
    } else {
        "public, max-age=300"
    };
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(ct)),
            (header::CACHE_CONTROL, HeaderValue::from_static(cache)),
        ],
        body,
    )
        .into_response()
}
