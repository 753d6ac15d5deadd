//! Health, readiness and metrics over HTTP.

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use forklift_engine::Engine;
use std::fmt::Write;
use std::time::Duration;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

/// `/healthz` (the process answers), `/readyz` (its dependencies answer, and its
/// workers have started if `workers_started` is given) and `/metrics` (Prometheus
/// text format).
pub fn health_router(
    engine: Engine,
    workers_started: Option<tokio::sync::watch::Receiver<bool>>,
) -> Router {
    let metrics = MetricsLayer::new(engine.metrics().clone(), "http");
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
            engine,
            workers_started,
        })
}

#[derive(Clone)]
struct Health {
    engine: Engine,
    workers_started: Option<tokio::sync::watch::Receiver<bool>>,
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(
    State(Health {
        engine,
        workers_started,
    }): State<Health>,
) -> (StatusCode, String) {
    if workers_started.is_some_and(|w| !*w.borrow()) {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "starting the workers\n".into(),
        );
    }
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
    if let Err(e) = engine.transport().depth("_readiness").await {
        tracing::warn!(error = %e, "not ready: queue: {e}");
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "queue unavailable\n".into(),
        );
    }
    (StatusCode::OK, "ready\n".into())
}

async fn metrics_page(State(Health { engine, .. }): State<Health>) -> impl IntoResponse {
    match metrics_text(&engine).await {
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
/// depths (from the transport), and the engine's own counters and histograms.
pub async fn metrics_text(engine: &Engine) -> anyhow::Result<String> {
    let mut out = String::new();
    writeln!(out, "# HELP forklift_jobs Jobs in the record, by state.")?;
    writeln!(out, "# TYPE forklift_jobs gauge")?;
    let counts = engine.store().count_jobs_by_state().await?;
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
    for queue in engine.registry().all_queues() {
        let depth = engine.transport().depth(queue).await?;
        writeln!(out, "forklift_queue_depth{{queue=\"{queue}\"}} {depth}")?;
    }
    engine.metrics().write_prometheus(&mut out)?;
    Ok(out)
}

/// A gRPC request path as a metrics label: the method when this server has it
/// (`/forklift.v1.Jobs/SubmitJob`, health, reflection), else `unknown` — a client
/// making up method names must not make up time series.
fn grpc_method(path: &str) -> &str {
    static KNOWN: std::sync::OnceLock<std::collections::HashSet<String>> =
        std::sync::OnceLock::new();
    let known = KNOWN.get_or_init(|| {
        use prost::Message;
        let mut known = std::collections::HashSet::new();
        for set in [
            forklift_rpc::FILE_DESCRIPTOR_SET,
            tonic_health::pb::FILE_DESCRIPTOR_SET,
        ] {
            let Ok(set) = prost_types::FileDescriptorSet::decode(set) else {
                continue;
            };
            for file in &set.file {
                for service in &file.service {
                    for method in &service.method {
                        known.insert(format!(
                            "/{}.{}/{}",
                            file.package(),
                            service.name(),
                            method.name()
                        ));
                    }
                }
            }
        }
        for version in ["v1", "v1alpha"] {
            known.insert(format!(
                "/grpc.reflection.{version}.ServerReflection/ServerReflectionInfo"
            ));
        }
        known
    });
    if known.contains(path) {
        path
    } else {
        "unknown"
    }
}

/// Times every request of a server into the engine's metrics: the route is the matched
/// route pattern (gRPC: `/package.Service/Method`), the status the HTTP status or, for gRPC, the
/// `grpc-status` a failing call answers with (success reports it in trailers: `0`).
#[derive(Clone)]
pub struct MetricsLayer {
    metrics: std::sync::Arc<forklift_engine::Metrics>,
    surface: &'static str,
}

impl MetricsLayer {
    /// Times requests of `surface` (`http` or `grpc`).
    pub fn new(metrics: std::sync::Arc<forklift_engine::Metrics>, surface: &'static str) -> Self {
        Self { metrics, surface }
    }
}

impl<S> tower::Layer<S> for MetricsLayer {
    type Service = Timed<S>;
    fn layer(&self, inner: S) -> Self::Service {
        Timed {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service [`MetricsLayer`] wraps around another.
#[derive(Clone)]
pub struct Timed<S> {
    inner: S,
    layer: MetricsLayer,
}

impl<S, B, RB> tower::Service<axum::http::Request<B>> for Timed<S>
where
    S: tower::Service<axum::http::Request<B>, Response = axum::http::Response<RB>> + Send,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<Self::Response, Self::Error>> + Send>,
    >;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: axum::http::Request<B>) -> Self::Future {
        // Label by the matched route (`/jobs/{id}`), never the raw path: ids would make
        // one time series per job. gRPC paths are their method names already.
        let route = match req.extensions().get::<axum::extract::MatchedPath>() {
            Some(m) => m.as_str().to_owned(),
            None if self.layer.surface == "grpc" => grpc_method(req.uri().path()).to_owned(),
            None => "unmatched".to_owned(),
        };
        let start = std::time::Instant::now();
        let fut = self.inner.call(req);
        let layer = self.layer.clone();
        Box::pin(async move {
            let res = fut.await;
            if let Ok(resp) = &res {
                let status = if layer.surface == "grpc" {
                    resp.headers()
                        .get("grpc-status")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("0")
                        .to_owned()
                } else {
                    resp.status().as_u16().to_string()
                };
                layer
                    .metrics
                    .observe_request(layer.surface, &route, &status, start.elapsed());
            }
            res
        })
    }
}
