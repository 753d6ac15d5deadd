//! The Forklift web app. With no jobs-service address configured it hosts the jobs
//! service in-process (unified mode): the engine, its workers, and the gRPC API, on an
//! embedded SQLite database, an in-process queue and local-disk storage.
//!
//! [`build`] assembles the parts from configuration; [`serve`] runs them on listeners
//! the caller has bound, until the shutdown future resolves — so tests bind port 0 and
//! call the very same code as `main`.

mod http;

use anyhow::Context;
use forklift_blob::Blobs;
use forklift_config::WebConfig;
use forklift_domain::Role;
use forklift_engine::auth::{Authenticator, create_user_with_token};
use forklift_engine::{Engine, EngineConfig, GrpcApi};
use forklift_kinds::KindsConfig;
use forklift_queue::{InProcessBus, InProcessTransport};
use forklift_store::Store;
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// The assembled application, ready to serve.
pub struct App {
    engine: Engine,
    api: GrpcApi,
    admin_token_file: Option<PathBuf>,
}

impl App {
    /// The record (for tests and administration: accounts, tokens).
    pub fn store(&self) -> &Store {
        self.engine.store()
    }

    /// Where the first admin's API token was written, if this start created it.
    pub fn admin_token_file(&self) -> Option<&PathBuf> {
        self.admin_token_file.as_ref()
    }
}

/// Builds the application from configuration: opens (and migrates) the database,
/// prepares storage, registers the job kinds, and creates the first admin account
/// with an API token when there is none.
pub async fn build(cfg: &WebConfig) -> anyhow::Result<App> {
    let c = &cfg.common;
    std::fs::create_dir_all(&c.data_dir)
        .with_context(|| format!("FORKLIFT_DATA_DIR: cannot create {}", c.data_dir.display()))?;
    let store = Store::open(&c.database_url())
        .await
        .context("FORKLIFT_DATABASE_URL: cannot open the database")?;
    let blobs = Blobs::local(&c.data_dir.join("files"))
        .context("FORKLIFT_DATA_DIR: cannot use file storage")?;
    let registry = forklift_kinds::registry(&KindsConfig {
        debug_kinds: c.debug_kinds,
        image: forklift_kinds::image::ImageLimits {
            max_input_bytes: c.image_max_input_mb * 1024 * 1024,
            max_pixels: c.image_max_megapixels * 1_000_000,
            ..Default::default()
        },
    });
    let engine_cfg = EngineConfig {
        worker_name: c.worker_name(),
        queues: c.queue_slots(&registry.queues()),
        cpu_threads: c
            .cpu_threads
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get())),
        lease: c.lease,
        grace: c.shutdown_grace,
        retry_base: c.retry_base,
        retry_max: c.retry_max,
        reconcile_every: c.reconcile_every,
        max_upload_bytes: c.max_upload_mb * 1024 * 1024,
        exclusive_store: true,
    };
    let auth = Authenticator::new(store.clone(), c.service_token.clone());
    let admin_token_file = bootstrap_admin(&store, &c.data_dir).await?;
    let engine = Engine::new(
        store,
        blobs,
        Arc::new(InProcessTransport::new()),
        Arc::new(InProcessBus::default()),
        registry,
        engine_cfg,
    );
    let api = GrpcApi::new(engine.clone(), auth);
    Ok(App {
        engine,
        api,
        admin_token_file,
    })
}

/// On the very first start, creates `admin@localhost` and writes its API token to
/// `<data dir>/admin-token` (readable by the owner only). The token is never logged.
async fn bootstrap_admin(
    store: &Store,
    data_dir: &std::path::Path,
) -> anyhow::Result<Option<PathBuf>> {
    if store.count_users().await? > 0 {
        return Ok(None);
    }
    let (_, token) =
        create_user_with_token(store, "admin@localhost", Role::Admin, "first start").await?;
    let path = data_dir.join("admin-token");
    write_private(&path, &format!("{token}\n"))
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(Some(path))
}

fn write_private(path: &std::path::Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    opts.open(path)?.write_all(contents.as_bytes())
}

/// Serves HTTP and gRPC on the given listeners and runs the workers, until
/// `shutdown` resolves; then stops claiming jobs, lets running ones finish within the
/// grace period (requeueing the rest), and stops the servers.
pub async fn serve(
    app: App,
    http: TcpListener,
    grpc: TcpListener,
    shutdown: impl Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    let engine = app.engine;
    engine.recover().await.context("recovering jobs at start")?;
    let workers = engine.start_workers();
    let stop = CancellationToken::new();

    let (health_reporter, health_service) = tonic_health::server::health_reporter();
    health_reporter
        .set_serving::<forklift_rpc::v1::jobs_server::JobsServer<GrpcApi>>()
        .await;
    health_reporter
        .set_serving::<forklift_rpc::v1::files_server::FilesServer<GrpcApi>>()
        .await;
    // Both reflection versions: grpcurl before 1.9 and many tools only speak v1alpha.
    let reflection = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(forklift_rpc::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
    };
    let reflection_v1 = reflection()
        .build_v1()
        .context("building gRPC reflection")?;
    let reflection_v1alpha = reflection()
        .build_v1alpha()
        .context("building gRPC reflection")?;
    let grpc_server = tonic::transport::Server::builder()
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(app.api.files_server())
        .add_service(app.api.jobs_server())
        .serve_with_incoming_shutdown(
            tokio_stream::wrappers::TcpListenerStream::new(grpc),
            stop.clone().cancelled_owned(),
        );
    let grpc_task = tokio::spawn(grpc_server);

    let router = http::router(engine.clone());
    let http_server =
        axum::serve(http, router).with_graceful_shutdown(stop.clone().cancelled_owned());
    let http_task = tokio::spawn(async move { http_server.await });

    shutdown.await;
    tracing::info!("shutdown requested");
    workers.drain().await;
    engine.close_streams();
    stop.cancel();
    let servers = async {
        grpc_task
            .await
            .context("gRPC server task")?
            .context("gRPC server")?;
        http_task
            .await
            .context("HTTP server task")?
            .context("HTTP server")?;
        anyhow::Ok(())
    };
    match tokio::time::timeout(Duration::from_secs(10), servers).await {
        Ok(r) => r?,
        Err(_) => tracing::warn!("servers did not stop within 10s; exiting anyway"),
    }
    engine.store().close().await;
    tracing::info!("stopped");
    Ok(())
}
