//! The tower layer that times every request of a server into [`Metrics`].

use crate::metrics::Metrics;

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

/// Times every request of a server into its metrics: the route is the matched
/// route pattern (gRPC: `/package.Service/Method`), the status the HTTP status or, for gRPC, the
/// `grpc-status` a failing call answers with (success reports it in trailers: `0`).
#[derive(Clone)]
pub struct MetricsLayer {
    metrics: std::sync::Arc<Metrics>,
    surface: &'static str,
}

impl MetricsLayer {
    /// Times requests of `surface` (`http` or `grpc`).
    pub fn new(metrics: std::sync::Arc<Metrics>, surface: &'static str) -> Self {
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
