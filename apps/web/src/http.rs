//! The web app's own HTTP routes when extracted: health, and readiness that follows
//! the jobs service's gRPC health (pages and the JSON API build on this).

use anyhow::Context;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use std::time::Duration;
use tonic::transport::Channel;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus};

/// `/healthz` and `/readyz` for the extracted web app.
pub fn extracted_router(jobs_url: &str) -> anyhow::Result<Router> {
    let channel = Channel::from_shared(jobs_url.to_owned())
        .with_context(|| format!("FORKLIFT_JOBS_URL: {jobs_url:?} is not a URL"))?
        .connect_timeout(Duration::from_secs(2))
        .connect_lazy();
    Ok(Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .with_state(channel))
}

/// Ready when the jobs service reports itself serving.
async fn readyz(State(channel): State<Channel>) -> (StatusCode, &'static str) {
    let mut client = HealthClient::new(channel);
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
