//! Health, readiness and metrics over HTTP.

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use forklift_runner::Runtime;
use forklift_serve::MetricsLayer;
use std::fmt::Write;
use std::time::Duration;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

/// `/healthz` (the process answers), `/readyz` (its dependencies answer, and its
/// workers have started if `workers_started` is given) and `/metrics` (Prometheus
/// text format).
pub fn health_router(
    rt: Runtime,
    workers_started: Option<tokio::sync::watch::Receiver<bool>>,
) -> Router {
    let metrics = MetricsLayer::new(rt.metrics().clone(), "http");
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_page))
        .layer(TraceLayer::new_for_http())
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            Duration::from_secs(30),
        ))
        .layer(metrics)
        .with_state(Health {
            rt,
            workers_started,
        })
}

#[derive(Clone)]
struct Health {
    rt: Runtime,
    workers_started: Option<tokio::sync::watch::Receiver<bool>>,
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(
    State(Health {
        rt,
        workers_started,
    }): State<Health>,
) -> (StatusCode, String) {
    if workers_started.is_some_and(|w| !*w.borrow()) {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "starting the workers\n".into(),
        );
    }
    if let Err(e) = rt.store().ping().await {
        tracing::warn!(error = %e, "not ready: database: {e}");
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "database unavailable\n".into(),
        );
    }
    if let Err(e) = rt.blobs().ping().await {
        tracing::warn!(error = %e, "not ready: storage: {e}");
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "file storage unavailable\n".into(),
        );
    }
    if let Err(e) = rt.transport().depth("_readiness").await {
        tracing::warn!(error = %e, "not ready: queue: {e}");
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "queue unavailable\n".into(),
        );
    }
    (StatusCode::OK, "ready\n".into())
}

async fn metrics_page(State(Health { rt, .. }): State<Health>) -> impl IntoResponse {
    match metrics_text(&rt).await {
        Ok(body) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
            body,
        ),
        Err(e) => {
            tracing::warn!(error = %e, "metrics unavailable: {e}");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
                "# metrics unavailable\n".into(),
            )
        }
    }
}

/// The metrics in Prometheus text format: jobs by state (from the record), queue
/// depths (from the transport), and the runner's own counters and histograms.
pub async fn metrics_text(rt: &Runtime) -> anyhow::Result<String> {
    let mut out = String::new();
    writeln!(out, "# HELP forklift_jobs Jobs in the record, by state.")?;
    writeln!(out, "# TYPE forklift_jobs gauge")?;
    let counts = rt.store().count_jobs_by_state().await?;
    for state in forklift_domain::JobState::ALL {
        let n = counts
            .iter()
            .find(|(s, _)| *s == state)
            .map_or(0, |(_, n)| *n);
        writeln!(out, "forklift_jobs{{state=\"{state}\"}} {n}")?;
    }
    writeln!(
        out,
        "# HELP forklift_queue_depth Jobs waiting in the transport, by queue."
    )?;
    writeln!(out, "# TYPE forklift_queue_depth gauge")?;
    for queue in rt.registry().all_queues() {
        let depth = rt.transport().depth(queue).await?;
        writeln!(out, "forklift_queue_depth{{queue=\"{queue}\"}} {depth}")?;
    }
    rt.metrics().write_prometheus(&mut out)?;
    Ok(out)
}
