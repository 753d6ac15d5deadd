//! The web app's routes and the middleware around them.

use crate::state::Web;
use crate::{api, assets, events, pages, session};
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::routing::{get, post};
use std::time::Duration;
use tower::ServiceBuilder;
use tower_http::compression::CompressionLayer;
use tower_http::map_request_body::MapRequestBodyLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::timeout::{RequestBodyTimeoutLayer, TimeoutLayer};
use tower_http::trace::TraceLayer;

/// Largest form body (sign-in, job forms); uploads have their own limit.
const FORM_LIMIT: usize = 64 * 1024;

/// Longest pause inside an upload's body before it is given up.
const UPLOAD_IDLE: Duration = Duration::from_secs(60);

/// The policy for every page: our own script and style only, no inline script, no
/// framing, forms post only to us.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'";

/// Pages, the JSON API, live events, uploads and downloads, with request ids,
/// tracing, compression, timeouts, body limits, security headers and CSRF.
pub fn router(web: Web) -> Router {
    // Requests that finish quickly: a timeout and a small body limit.
    let quick = Router::new()
        .merge(pages::home::router())
        .merge(pages::accounts::router())
        .merge(pages::files::router())
        .merge(pages::jobs::router())
        .merge(pages::tokens::router())
        .merge(pages::admin::router())
        .route("/static/{name}", get(assets::serve))
        .route("/api/v1/openapi.json", get(api::openapi))
        .route("/api/v1/files", get(api::list_files))
        .route(
            "/api/v1/files/{id}",
            get(api::get_file).delete(api::delete_file),
        )
        .route("/api/v1/jobs", get(api::list_jobs).post(api::submit_job))
        .route("/api/v1/jobs/{id}", get(api::get_job))
        .route("/api/v1/jobs/{id}/cancel", post(api::cancel_job))
        .route("/api/v1/jobs/{id}/retry", post(api::retry_job))
        .layer(DefaultBodyLimit::max(FORM_LIMIT))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            Duration::from_secs(30),
        ));
    // Streams: uploads and downloads of any size, live events.
    let streaming = Router::new()
        .merge(pages::files::streams())
        .route("/jobs/{id}/events", get(events::job_events))
        .route("/events", get(events::user_events))
        .route("/api/v1/files", post(api::upload_file))
        .route("/api/v1/files/{id}/content", get(api::download_file))
        .route("/api/v1/jobs/{id}/events", get(events::api_job_events))
        .layer(DefaultBodyLimit::disable())
        // No overall timeout for streams, but an upload that stops sending for a
        // minute is given up (a stalled or malicious client holds nothing for ever).
        .layer(
            ServiceBuilder::new()
                .layer(RequestBodyTimeoutLayer::new(UPLOAD_IDLE))
                .layer(MapRequestBodyLayer::new(axum::body::Body::new)),
        )
        .layer(axum::middleware::from_fn(close_after_refused_upload));
    let request_id = HeaderName::from_static("x-request-id");
    let headers = ServiceBuilder::new()
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CSP),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_FRAME_OPTIONS,
            HeaderValue::from_static("DENY"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::REFERRER_POLICY,
            HeaderValue::from_static("same-origin"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            HeaderName::from_static("cross-origin-opener-policy"),
            HeaderValue::from_static("same-origin"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            HeaderName::from_static("permissions-policy"),
            HeaderValue::from_static("camera=(), microphone=(), geolocation=()"),
        ));
    quick
        .merge(streaming)
        .route("/api/v1/{*rest}", axum::routing::any(api::not_found))
        .fallback(pages::not_found)
        .layer(axum::middleware::from_fn(crate::error::log_failures))
        .layer(axum::middleware::from_fn(crate::error::api_error_shape))
        .layer(axum::middleware::from_fn_with_state(
            web.clone(),
            session::csrf_layer,
        ))
        .layer(forklift_serve::MetricsLayer::new(web.metrics().clone(), "http"))
        .layer(headers)
        .layer(CompressionLayer::new())
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(TraceLayer::new_for_http().make_span_with(
            |req: &axum::http::Request<axum::body::Body>| {
                let id = req
                    .headers()
                    .get("x-request-id")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("");
                tracing::info_span!("request", method = %req.method(), path = %req.uri().path(), request_id = %id)
            },
        ))
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
        .with_state(web)
}

/// A refused upload (too large, bad CSRF token, no file) leaves the rest of its body
/// unread, so its connection cannot carry another request: the answer says so, or a
/// client that reused the connection would get a broken response.
async fn close_after_refused_upload(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let upload = req.method() == axum::http::Method::POST;
    let mut res = next.run(req).await;
    if upload && (res.status().is_client_error() || res.status().is_server_error()) {
        res.headers_mut().insert(
            header::CONNECTION,
            axum::http::HeaderValue::from_static("close"),
        );
    }
    res
}
