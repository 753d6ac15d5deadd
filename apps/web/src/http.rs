//! The HTTP face: health and readiness (pages and the JSON API build on this router).

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use forklift_engine::Engine;
use std::time::Duration;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

/// The HTTP routes.
pub fn router(engine: Engine) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .layer(TraceLayer::new_for_http())
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            Duration::from_secs(30),
        ))
        .with_state(engine)
}

/// Liveness: the process answers.
async fn healthz() -> &'static str {
    "ok\n"
}

/// Readiness: the database and file storage answer.
async fn readyz(State(engine): State<Engine>) -> (StatusCode, String) {
    if let Err(e) = engine.store().ping().await {
        tracing::warn!(error = %e, "not ready: database: {e}");
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "database unavailable\n".into(),
        );
    }
    if let Err(e) = engine.blobs().ping().await {
        tracing::warn!(error = %e, "not ready: storage: {e}");
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "file storage unavailable\n".into(),
        );
    }
    (StatusCode::OK, "ready\n".into())
}
