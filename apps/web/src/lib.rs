//! The Forklift web app.
//!
//! - **Unified** (no `FORKLIFT_JOBS_URL`): hosts the jobs service in-process — the
//!   engine, its workers and the gRPC API — on an embedded SQLite database, an
//!   in-process queue and local-disk storage.
//! - **Extracted** (`FORKLIFT_JOBS_URL` set): runs no jobs and touches no job or file
//!   tables; the jobs service answers for them over gRPC.
//!
//! [`build`] assembles the app from configuration; [`serve`] runs it on listeners the
//! caller has bound, until the shutdown future resolves — so tests bind port 0 and
//! call the very same code as `main`.

mod http;

use anyhow::Context;
use forklift_config::WebConfig;
use forklift_host::{JobsHost, Listeners, Roles};
use forklift_store::Store;
use std::future::Future;
use std::path::PathBuf;
use tokio::net::TcpListener;

/// The assembled application, ready to serve.
pub enum App {
    /// Hosting the jobs service in this process.
    Unified(Box<JobsHost>),
    /// Calling a separate jobs service at this gRPC address.
    Extracted {
        /// The jobs service, e.g. `http://127.0.0.1:50051`.
        jobs_url: String,
    },
}

impl App {
    /// The record, when this process hosts it (for tests and administration).
    pub fn store(&self) -> Option<&Store> {
        match self {
            App::Unified(host) => Some(host.store()),
            App::Extracted { .. } => None,
        }
    }

    /// Where the first admin's API token was written, if this start created it.
    pub fn admin_token_file(&self) -> Option<&PathBuf> {
        match self {
            App::Unified(host) => host.admin_token_file(),
            App::Extracted { .. } => None,
        }
    }
}

/// Builds the application from configuration.
pub async fn build(cfg: &WebConfig) -> anyhow::Result<App> {
    match &cfg.jobs_url {
        Some(url) => {
            tonic::transport::Endpoint::from_shared(url.clone())
                .with_context(|| format!("FORKLIFT_JOBS_URL: {url:?} is not a URL"))?;
            Ok(App::Extracted {
                jobs_url: url.clone(),
            })
        }
        None => Ok(App::Unified(Box::new(
            JobsHost::build(&cfg.common, true).await?,
        ))),
    }
}

/// Serves the app until `shutdown` resolves, then shuts down gracefully. `grpc` is the
/// gRPC API's listener in unified mode (unused when extracted).
pub async fn serve(
    app: App,
    http: TcpListener,
    grpc: Option<TcpListener>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    match app {
        App::Unified(host) => {
            let roles = Roles {
                api: true,
                workers: true,
            };
            host.run(Listeners { grpc, http }, roles, shutdown).await
        }
        App::Extracted { jobs_url } => {
            let router = http::extracted_router(&jobs_url)?;
            axum::serve(http, router)
                .with_graceful_shutdown(shutdown)
                .await
                .context("HTTP server")
        }
    }
}
