//! Health, readiness and metrics of the extracted web app: readiness follows the
//! database (accounts, sessions) and the jobs service's gRPC health. (Unified, the
//! jobs host serves these for the whole process.)

use crate::state::Web;
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use std::time::Duration;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus};

/// `/healthz`, `/readyz` and `/metrics` for the extracted web app.
pub fn extracted_router(web: &Web) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .layer(forklift_serve::MetricsLayer::new(
            web.metrics().clone(),
            "http",
        ))
        .with_state(web.clone())
}

/// Request counts and latencies in Prometheus text format.
async fn metrics_text(State(web): State<Web>) -> impl IntoResponse {
    let mut out = String::new();
    match web.metrics().write_prometheus(&mut out) {
        Ok(()) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
            out,
        ),
        Err(_) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            [(header::CONTENT_TYPE, "text/plain")],
            String::new(),
        ),
    }
}

/// Ready when the database answers and the jobs service reports itself serving.
async fn readyz(State(web): State<Web>) -> (StatusCode, &'static str) {
    if let Err(e) = web.accounts().ping().await {
        tracing::warn!(error = %e, "not ready: database: {e}");
        return (StatusCode::SERVICE_UNAVAILABLE, "database unavailable\n");
    }
    let mut client = HealthClient::new(web.jobs_api().transport().clone());
    let check = client.check(HealthCheckRequest {
        service: "forklift.v1.Jobs".into(),
    });
    match tokio::time::timeout(Duration::from_secs(2), check).await {
        Ok(Ok(r)) if r.get_ref().status() == ServingStatus::Serving => (StatusCode::OK, "ready\n"),
        Ok(Ok(_)) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "jobs service not serving\n",
        ),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "not ready: jobs service: {e}");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "jobs service unavailable\n",
            )
        }
        Err(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "jobs service did not answer\n",
        ),
    }
}
