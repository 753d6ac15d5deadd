//! The stylesheet and script, compiled into the binary and served under
//! content-hashed URLs, so browsers may cache them forever.

use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use std::sync::OnceLock;

const CSS: &str = include_str!("../static/app.css");
const JS: &str = include_str!("../static/app.js");

fn hashed(name: &str, body: &str) -> String {
    let h = hex::encode(Sha256::digest(body.as_bytes()));
    let (stem, ext) = name.rsplit_once('.').unwrap_or((name, ""));
    format!("/static/{stem}.{}.{ext}", &h[..12])
}

/// URL of the stylesheet.
pub fn css_url() -> &'static str {
    static U: OnceLock<String> = OnceLock::new();
    U.get_or_init(|| hashed("app.css", CSS))
}

/// URL of the script.
pub fn js_url() -> &'static str {
    static U: OnceLock<String> = OnceLock::new();
    U.get_or_init(|| hashed("app.js", JS))
}

/// `GET /static/{name}`: the current asset under its hashed (or plain) name.
pub async fn serve(Path(name): Path<String>) -> Response {
    let path = format!("/static/{name}");
    let (body, ct, immutable) = if path == css_url() {
        (CSS, "text/css; charset=utf-8", true)
    } else if path == js_url() {
        (JS, "text/javascript; charset=utf-8", true)
    } else if name == "app.css" {
        (CSS, "text/css; charset=utf-8", false)
    } else if name == "app.js" {
        (JS, "text/javascript; charset=utf-8", false)
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
