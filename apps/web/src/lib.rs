//! The Forklift web app: server-rendered pages, the JSON API, live progress, uploads
//! and downloads. It owns accounts, sessions and API tokens; every file and job call
//! goes through the Files and Jobs gRPC API ([`jobs_api`]).
//!
//! - **Unified** (no `FORKLIFT_JOBS_URL`): hosts the jobs service in-process — the
//!   engine, its workers and the gRPC API — on an embedded SQLite database, an
//!   in-process queue and local-disk storage; the web app reaches the API over an
//!   in-memory channel.
//! - **Extracted** (`FORKLIFT_JOBS_URL` set): runs no jobs and touches no job or file
//!   tables; the jobs service answers for them over gRPC, and the web app acts for
//!   signed-in users with the shared service token.
//!
//! [`build`] assembles the app from configuration; [`serve`] runs it on listeners the
//! caller has bound, until the shutdown future resolves — so tests bind port 0 and
//! call the very same code as `main`.

mod api;
mod assets;
mod download;
mod error;
mod events;
mod health;
pub mod jobs_api;
pub mod kinds;
pub mod model;
mod pages;
mod ratelimit;
mod routes;
mod session;
mod state;
mod upload;

pub use api::ApiDoc;

use anyhow::Context;
use forklift_accounts::Accounts;
use forklift_config::WebConfig;
#[cfg(feature = "unified")]
use forklift_host::{Duties, JobsHost, Listeners};
use state::{Web, WebParts};
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::net::TcpListener;

/// The assembled application, ready to serve.
pub struct App {
    web: Web,
    mode: Mode,
}

enum Mode {
    /// Hosting the jobs service in this process.
    #[cfg(feature = "unified")]
    Unified(Box<JobsHost>),
    /// Calling a separate jobs service.
    Extracted,
}

impl App {
    /// Accounts, sessions and tokens.
    pub fn accounts(&self) -> &Accounts {
        self.web.accounts()
    }

    /// Turns true once the workers run (unified); always true extracted, where this
    /// process runs none.
    pub fn workers_started(&self) -> tokio::sync::watch::Receiver<bool> {
        match &self.mode {
            #[cfg(feature = "unified")]
            Mode::Unified(host) => host.workers_started(),
            Mode::Extracted => tokio::sync::watch::channel(true).1,
        }
    }

    /// Where the first admin's API token was written, if this start created it.
    pub fn admin_token_file(&self) -> Option<&PathBuf> {
        match &self.mode {
            #[cfg(feature = "unified")]
            Mode::Unified(host) => host.admin_token_file(),
            Mode::Extracted => None,
        }
    }
}

/// The web app's parts.
fn web_parts(
    cfg: &WebConfig,
    accounts: Accounts,
    jobs_api: jobs_api::JobsApi,
    metrics: Arc<forklift_serve::Metrics>,
) -> WebParts {
    WebParts {
        accounts,
        jobs_api,
        metrics,
        max_upload_bytes: cfg.common.max_upload_mb * 1024 * 1024,
        secure_cookies: cfg.secure_cookies,
        public_url: cfg.public_url.clone(),
        signin_attempts: cfg.signin_attempts,
        submit_per_minute: cfg.submit_per_minute,
    }
}

/// Builds the application from configuration.
pub async fn build(cfg: &WebConfig) -> anyhow::Result<App> {
    match &cfg.jobs_url {
        Some(url) => {
            let token = cfg
                .common
                .service_token
                .clone()
                .filter(|t| !t.is_empty())
                .context(
                    "FORKLIFT_SERVICE_TOKEN is required with FORKLIFT_JOBS_URL: the web app calls \
                 the jobs service on behalf of signed-in users with this shared secret",
                )?;
            let channel = tonic::transport::Endpoint::from_shared(url.clone())
                .with_context(|| format!("FORKLIFT_JOBS_URL: {url:?} is not a URL"))?
                .connect_timeout(std::time::Duration::from_secs(2))
                .connect_lazy();
            let accounts = Accounts::open(&cfg.common.database_url()).await.context(
                "FORKLIFT_DATABASE_URL: cannot open the database (accounts and sessions)",
            )?;
            let jobs_api =
                jobs_api::JobsApi::new(forklift_serve::channel_transport(channel), &token)?;
            let metrics = Arc::new(forklift_serve::Metrics::default());
            Ok(App {
                web: Web::new(web_parts(cfg, accounts, jobs_api, metrics)),
                mode: Mode::Extracted,
            })
        }
        None => unified(cfg).await,
    }
}

/// Hosts the jobs service in this process (no `FORKLIFT_JOBS_URL`): the web app calls
/// this process's own gRPC services directly.
#[cfg(feature = "unified")]
async fn unified(cfg: &WebConfig) -> anyhow::Result<App> {
    let mut common = cfg.common.clone();
    // In one process the web app and the API share a secret nobody else knows,
    // unless one was configured (e.g. for other trusted services).
    let token = common
        .service_token
        .clone()
        .filter(|t| !t.is_empty())
        .unwrap_or_else(forklift_accounts::random_secret);
    common.service_token = Some(token.clone());
    let host = JobsHost::build(&common, true).await?;
    let jobs_api = jobs_api::JobsApi::new(host.local_grpc().await, &token)?;
    let web = Web::new(web_parts(
        cfg,
        host.accounts().clone(),
        jobs_api,
        host.runtime().metrics().clone(),
    ));
    Ok(App {
        web,
        mode: Mode::Unified(Box::new(host)),
    })
}

/// Without the `unified` feature the web app links no job code, so it cannot host the
/// jobs service.
#[cfg(not(feature = "unified"))]
async fn unified(_cfg: &WebConfig) -> anyhow::Result<App> {
    anyhow::bail!(
        "FORKLIFT_JOBS_URL is required: this forklift-web was built without the `unified` \
         feature, so it cannot run the jobs service itself"
    )
}

/// Deletes expired sessions now and then, for as long as the app serves.
fn sweep_sessions(accounts: Accounts) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut every = tokio::time::interval(std::time::Duration::from_secs(3600));
        loop {
            every.tick().await;
            match accounts.delete_expired_sessions().await {
                Ok(0) => {}
                Ok(n) => tracing::info!("deleted {n} expired sessions"),
                Err(e) => tracing::warn!(error = %e, "deleting expired sessions failed: {e}"),
            }
        }
    })
}

/// Serves the app until `shutdown` resolves, then shuts down gracefully. `grpc` is the
/// gRPC API's listener in unified mode (unused when extracted).
pub async fn serve(
    app: App,
    http: TcpListener,
    grpc: Option<TcpListener>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    // Extracted, this process serves no gRPC.
    #[cfg(not(feature = "unified"))]
    drop(grpc);
    let routes = routes::router(app.web.clone());
    let sweeper = sweep_sessions(app.web.accounts().clone());
    let served = match app.mode {
        #[cfg(feature = "unified")]
        Mode::Unified(host) => {
            let roles = Duties {
                api: true,
                workers: true,
            };
            host.run_with_routes(Listeners { grpc, http }, roles, routes, shutdown)
                .await
        }
        Mode::Extracted => {
            let router = routes.merge(health::extracted_router(&app.web));
            axum::serve(http, router)
                .with_graceful_shutdown(shutdown)
                .await
                .context("HTTP server")
        }
    };
    sweeper.abort();
    served
}
