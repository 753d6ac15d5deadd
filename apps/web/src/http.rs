//! The web app's own HTTP routes when extracted: health, readiness that follows the
//! jobs service's gRPC health, and request metrics (pages and the JSON API build on
//! this).

use anyhow::Context;
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use forklift_engine::Metrics;
use std::sync::Arc;
use std::time::Duration;
use tonic::transport::Channel;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus};

/// `/healthz`, `/readyz` and `/metrics` for the extracted web app.
pub fn extracted_router(jobs_url: &str) -> anyhow::Result<Router> {
    let channel = Channel::from_shared(jobs_url.to_owned())
        .with_context(|| format!("FORKLIFT_JOBS_URL: {jobs_url:?} is not a URL"))?
        .connect_timeout(Duration::from_secs(2))
        .connect_lazy();
    let metrics = Arc::new(Metrics::default());
    Ok(Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .layer(forklift_host::MetricsLayer::new(metrics.clone(), "http"))
        .with_state(Web { channel, metrics }))
}

#[derive(Clone)]
struct Web {
    channel: Channel,
    metrics: Arc<Metrics>,
}

/// Request counts and latencies in Prometheus text format.
async fn metrics_text(State(web): State<Web>) -> impl IntoResponse {
    let mut out = String::new();
    match web.metrics.write_prometheus(&mut out) {
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

/// Ready when the jobs service reports itself serving.
async fn readyz(State(web): State<Web>) -> (StatusCode, &'static str) {
    let mut client = HealthClient::new(web.channel);
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
