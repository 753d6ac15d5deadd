//! Downloads, streamed from the Files service to the browser chunk by chunk.

use crate::state::Web;
use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use forklift_domain::User;

/// Content types shown inline when asked (raster images only: never HTML or SVG,
/// which could run script on our origin).
const INLINE: [&str; 4] = ["image/jpeg", "image/png", "image/webp", "image/gif"];

/// The file as a response: an attachment, or inline for raster images when `inline`.
pub async fn respond(
    web: &Web,
    user: &User,
    id: &str,
    inline: bool,
) -> Result<Response, tonic::Status> {
    let (file, content) = web.jobs_api().download(user, id).await?;
    let inline = inline && INLINE.contains(&file.content_type.as_str());
    let disposition = format!(
        "{}; filename=\"{}\"; filename*=UTF-8''{}",
        if inline { "inline" } else { "attachment" },
        ascii_name(&file.name),
        crate::error::urlencode(&file.name).replace('/', "%2F"),
    );
    let mut res = Response::new(Body::from_stream(content));
    *res.status_mut() = StatusCode::OK;
    let h = res.headers_mut();
    let ct = if inline {
        file.content_type.as_str()
    } else {
        "application/octet-stream"
    };
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(ct).unwrap_or(HeaderValue::from_static("application/octet-stream")),
    );
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(file.size_bytes));
    if let Ok(v) = HeaderValue::from_str(&disposition) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, max-age=3600"),
    );
    if let Ok(v) = HeaderValue::from_str(&format!("\"{}\"", file.sha256)) {
        h.insert(header::ETAG, v);
    }
    // Even a file that claims to be an image may not be: never let it run anything.
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; sandbox"),
    );
    Ok(res)
}

/// A file name safe inside a quoted header parameter.
fn ascii_name(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect()
}
