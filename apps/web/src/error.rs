//! Failures as users see them: an HTML page with a reason for the pages, one JSON
//! error shape for the API. gRPC statuses from the jobs service map onto both.

use askama::Template;
use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use forklift_rpc::error_code::ErrorCode;
use serde::Serialize;
use tonic::{Code, Status};
use tonic_types::StatusExt;
use utoipa::ToSchema;

/// The HTTP status for a gRPC status code (the one table: `forklift_rpc::error_code`).
pub fn http_status(code: Code) -> StatusCode {
    StatusCode::from_u16(ErrorCode::from_grpc(code).http_status())
        .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

/// One problem with one field.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FieldError {
    /// The field, e.g. `params.sizes[0].width`.
    pub field: String,
    /// What is wrong and what is allowed.
    pub description: String,
}

/// The field violations a status carries (google.rpc.BadRequest).
pub fn field_errors(s: &Status) -> Vec<FieldError> {
    s.get_details_bad_request()
        .map(|b| {
            b.field_violations
                .into_iter()
                .map(|v| FieldError {
                    field: v.field,
                    description: v.description,
                })
                .collect()
        })
        .unwrap_or_default()
}

/// What went wrong, for a page.
#[derive(Debug)]
pub enum PageError {
    /// Not signed in: go to the sign-in page, then back to this path.
    SignIn(String),
    /// Signed in, but not allowed.
    Forbidden(String),
    /// No such thing (or not yours).
    NotFound,
    /// The request is wrong in a way the message explains.
    Bad(StatusCode, String),
    /// A call to the jobs service failed.
    Rpc(Status),
    /// Our fault; logged, not shown.
    Internal(String),
}

impl PageError {
    /// An internal error (logged; the user sees a generic message).
    pub fn internal(msg: impl Into<String>) -> Self {
        Self::Internal(msg.into())
    }
}

impl From<Status> for PageError {
    fn from(s: Status) -> Self {
        Self::Rpc(s)
    }
}

impl From<forklift_accounts::AccountsError> for PageError {
    fn from(e: forklift_accounts::AccountsError) -> Self {
        Self::Internal(e.to_string())
    }
}

impl From<askama::Error> for PageError {
    fn from(e: askama::Error) -> Self {
        Self::Internal(format!("rendering: {e}"))
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    title: &'a str,
    message: &'a str,
    status: u16,
    page: crate::pages::Chrome,
}

/// Renders the error page (no user-specific navigation: errors never need a session).
pub fn error_page(status: StatusCode, title: &str, message: &str) -> Response {
    let page = ErrorPage {
        title,
        message,
        status: status.as_u16(),
        page: crate::pages::Chrome::anonymous(title),
    };
    let body = page
        .render()
        .unwrap_or_else(|_| format!("<!doctype html><title>{status}</title><p>{status}</p>"));
    let mut res = (status, Html(body)).into_response();
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        match self {
            PageError::SignIn(next) => {
                let to = format!("/signin?next={}", urlencode(&next));
                Redirect::to(&to).into_response()
            }
            PageError::Forbidden(m) => error_page(StatusCode::FORBIDDEN, "Not allowed", &m),
            PageError::NotFound => error_page(
                StatusCode::NOT_FOUND,
                "Not found",
                "There is nothing here — or it is not yours to see.",
            ),
            PageError::Bad(status, m) => error_page(status, "That did not work", &m),
            PageError::Rpc(s) => rpc_page(&s),
            PageError::Internal(m) => {
                let mut res = error_page(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Something went wrong",
                    "Something went wrong on our side. Please try again in a moment.",
                );
                res.extensions_mut().insert(InternalDetail(m));
                res
            }
        }
    }
}

fn rpc_page(s: &Status) -> Response {
    let status = http_status(s.code());
    match status {
        StatusCode::NOT_FOUND => PageError::NotFound.into_response(),
        StatusCode::INTERNAL_SERVER_ERROR => {
            PageError::Internal(format!("jobs service: {s}")).into_response()
        }
        StatusCode::SERVICE_UNAVAILABLE => error_page(
            status,
            "Temporarily unavailable",
            "The jobs service is not answering right now. Please try again in a moment.",
        ),
        _ => {
            let mut msg = s.message().to_owned();
            for f in field_errors(s) {
                msg.push_str(&format!(" — {}: {}", f.field, f.description));
            }
            error_page(status, "That did not work", &msg)
        }
    }
}

/// Percent-encodes a query value.
pub fn urlencode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// The JSON API's one error shape: `{"error": {"code", "message", "fields"}}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// What went wrong.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// A stable machine-readable code, e.g. `not_found`, `invalid_argument`.
    pub code: String,
    /// What went wrong, for a person.
    pub message: String,
    /// Per-field problems (for `invalid_argument`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<FieldError>,
}

/// A JSON API failure.
#[derive(Debug)]
pub struct ApiFailure {
    status: StatusCode,
    body: ErrorBody,
    retry_after: Option<u64>,
    /// What went wrong inside, for the log only.
    detail: Option<String>,
}

impl ApiFailure {
    /// A failure with this status, code and message.
    pub fn new(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        Self {
            status,
            body: ErrorBody {
                error: ErrorDetail {
                    code: code.into(),
                    message: message.into(),
                    fields: Vec::new(),
                },
            },
            retry_after: None,
            detail: None,
        }
    }

    /// 401: no valid token.
    pub fn unauthenticated() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            "a valid API token is required: send 'Authorization: Bearer <token>' (create one on the API tokens page)",
        )
    }

    /// 400 naming fields.
    pub fn invalid(fields: Vec<FieldError>) -> Self {
        let mut f = Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_argument",
            "the request has invalid fields",
        );
        f.body.error.fields = fields;
        f
    }

    /// 429 with Retry-After.
    pub fn rate_limited(message: impl Into<String>, retry_after_secs: u64) -> Self {
        let mut f = Self::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", message);
        f.retry_after = Some(retry_after_secs);
        f
    }

    /// 500; `detail` is logged by [`log_failures`], never sent.
    pub fn internal(detail: impl Into<String>) -> Self {
        let mut f = Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::Internal.name(),
            "something went wrong on our side",
        );
        f.detail = Some(detail.into());
        f
    }
}

impl From<Status> for ApiFailure {
    fn from(s: Status) -> Self {
        let status = http_status(s.code());
        if status == StatusCode::INTERNAL_SERVER_ERROR {
            return Self::internal(format!("jobs service: {s}"));
        }
        let code = ErrorCode::from_grpc(s.code()).name();
        let mut f = Self::new(status, code, s.message());
        f.body.error.fields = field_errors(&s);
        f
    }
}

impl From<forklift_accounts::AccountsError> for ApiFailure {
    fn from(e: forklift_accounts::AccountsError) -> Self {
        Self::internal(e.to_string())
    }
}

impl IntoResponse for ApiFailure {
    fn into_response(self) -> Response {
        let mut res = (self.status, Json(self.body)).into_response();
        if let Some(d) = self.detail {
            res.extensions_mut().insert(InternalDetail(d));
        }
        if let Some(s) = self.retry_after {
            res.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            res.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"forklift\""),
            );
        }
        res
    }
}

/// What went wrong inside a request that answered 500: carried in the response's
/// extensions from where the failure was made to [`log_failures`], so that errors are
/// converted without logging and logged once, in the request's span.
#[derive(Debug, Clone)]
pub struct InternalDetail(pub String);

/// Logs the hidden detail of every failure our side caused (see [`InternalDetail`]).
pub async fn log_failures(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let res = next.run(req).await;
    if let Some(InternalDetail(d)) = res.extensions().get::<InternalDetail>() {
        tracing::error!(detail = %d, "request failed: {d}");
    }
    res
}

/// Gives every failure under `/api/` the JSON API's one error shape, whoever made it:
/// axum's extractors (a body that is not JSON, a bad query), the body limit (413),
/// the timeout (408), an unknown method (405). Their plain-text reason becomes the
/// message; answers already in JSON pass through untouched.
pub async fn api_error_shape(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let api = req.uri().path().starts_with("/api/");
    let res = next.run(req).await;
    let status = res.status();
    let json = res
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if !api || json || !(status.is_client_error() || status.is_server_error()) {
        return res;
    }
    let (parts, body) = res.into_parts();
    let text = axum::body::to_bytes(body, 4096)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_owned())
        .unwrap_or_default();
    let code = match status {
        StatusCode::BAD_REQUEST | StatusCode::UNPROCESSABLE_ENTITY => {
            ErrorCode::InvalidArgument.name()
        }
        StatusCode::UNAUTHORIZED => ErrorCode::Unauthenticated.name(),
        StatusCode::FORBIDDEN => ErrorCode::PermissionDenied.name(),
        StatusCode::NOT_FOUND => ErrorCode::NotFound.name(),
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::REQUEST_TIMEOUT => "timeout",
        StatusCode::PAYLOAD_TOO_LARGE => "too_large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        StatusCode::TOO_MANY_REQUESTS => "rate_limited",
        s if s.is_server_error() => ErrorCode::Internal.name(),
        _ => "failed",
    };
    let message = if status.is_server_error() || text.is_empty() {
        // A server error's own text is not for clients.
        status
            .canonical_reason()
            .unwrap_or("the request failed")
            .to_lowercase()
    } else {
        text
    };
    let mut shaped = ApiFailure::new(status, code, message).into_response();
    for name in [header::ALLOW, header::RETRY_AFTER] {
        if let Some(v) = parts.headers.get(&name) {
            shaped.headers_mut().insert(name, v.clone());
        }
    }
    shaped
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The detail of a failure on our side goes to the log (through the response's
    /// extensions), never to the client.
    #[tokio::test]
    async fn internal_details_reach_the_log_layer_not_the_client() {
        for res in [
            ApiFailure::internal("database: connection refused").into_response(),
            PageError::internal("database: connection refused").into_response(),
            ApiFailure::from(Status::internal("database: connection refused")).into_response(),
        ] {
            assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
            let detail = res.extensions().get::<InternalDetail>().cloned();
            assert!(detail.is_some_and(|d| d.0.contains("connection refused")));
            let body = axum::body::to_bytes(res.into_body(), 1 << 20)
                .await
                .unwrap();
            assert!(!String::from_utf8_lossy(&body).contains("connection refused"));
        }
        let refused = ApiFailure::from(Status::not_found("no such job")).into_response();
        assert!(refused.extensions().get::<InternalDetail>().is_none());
        assert_eq!(refused.status(), StatusCode::NOT_FOUND);
    }
}
