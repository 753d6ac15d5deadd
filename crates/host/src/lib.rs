#![doc = include_str!("../README.md")]

pub mod accounts;
mod http;
pub mod migrate;

pub use http::{health_router, metrics_text};

use anyhow::Context;
use forklift_accounts::Accounts;
use forklift_api::auth::Authenticator;
use forklift_api::{Api, GrpcApi};
use forklift_blob::Blobs;
use forklift_config::CommonConfig;
use forklift_db::{Backend, Db};
use forklift_kinds::KindsConfig;
use forklift_queue::{
    EventBus, InProcessBus, InProcessTransport, RedisBus, RedisTransport, Transport,
};
use forklift_runner::{RunnerConfig, Runtime};
use forklift_serve::{GrpcTransport, MetricsLayer, TransportError};
use forklift_store::Store;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// The jobs service's parts, assembled.
pub struct JobsHost {
    api: Api,
    accounts: Accounts,
    grpc: GrpcApi,
    admin_token_file: Option<PathBuf>,
    /// True once the workers run (see [`JobsHost::workers_started`]).
    workers_started: tokio::sync::watch::Sender<bool>,
}

/// What a process does with a host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Duties {
    /// Serve the Files, Jobs and Admin gRPC API.
    pub api: bool,
    /// Run jobs from the configured queues.
    pub workers: bool,
}

impl From<forklift_config::ProcessRole> for Duties {
    fn from(r: forklift_config::ProcessRole) -> Self {
        use forklift_config::ProcessRole::*;
        Duties {
            api: matches!(r, Api | Both),
            workers: matches!(r, Worker | Both),
        }
    }
}

/// Where a host listens.
pub struct Listeners {
    /// gRPC API (with the `api` role).
    pub grpc: Option<TcpListener>,
    /// `/healthz`, `/readyz`, `/metrics`.
    pub http: TcpListener,
}

impl JobsHost {
    /// Assembles the parts from configuration. With `bootstrap` (unified mode's zero
    /// setup), the first start on an empty database creates `admin@localhost` and writes
    /// its API token to `<data dir>/admin-token` and its web password to
    /// `<data dir>/admin-password` (owner-readable only; never logged). Processes that
    /// start together on an empty database create at most one such admin.
    pub async fn build(c: &CommonConfig, bootstrap: bool) -> anyhow::Result<Self> {
        // Owner-only: it holds the embedded database, files and the first admin's secrets.
        let mut dir = std::fs::DirBuilder::new();
        dir.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut dir, 0o700);
        dir.create(&c.data_dir).with_context(|| {
            format!("FORKLIFT_DATA_DIR: cannot create {}", c.data_dir.display())
        })?;
        let blobs = open_storage(c).await?;
        let db = Db::open(&c.database_url())
            .await
            .context("FORKLIFT_DATABASE_URL: cannot open the database")?;
        // One database, one SQLite writer thread: the record and the accounts share it,
        // each through its own handle.
        let store = Store::new(db.clone());
        let accounts = Accounts::new(db);
        let (transport, bus): (Arc<dyn Transport>, Arc<dyn EventBus>) = match &c.redis_url {
            Some(url) => (
                Arc::new(
                    RedisTransport::connect(url)
                        .await
                        .context("FORKLIFT_REDIS_URL: cannot connect")?,
                ),
                Arc::new(
                    RedisBus::connect(url)
                        .await
                        .context("FORKLIFT_REDIS_URL: cannot connect")?,
                ),
            ),
            None => (
                Arc::new(InProcessTransport::new()),
                Arc::new(InProcessBus::default()),
            ),
        };
        let registry = forklift_kinds::registry(&KindsConfig {
            debug_kinds: c.debug_kinds,
            image: forklift_kinds::image::ImageLimits {
                max_input_bytes: c.image_max_input_mb * 1024 * 1024,
                max_pixels: c.image_max_megapixels * 1_000_000,
                ..Default::default()
            },
            video: forklift_kinds::video::VideoConfig {
                ffmpeg: c.ffmpeg.clone(),
                ffprobe: c.ffprobe.clone(),
                max_input_bytes: c.video_max_input_mb * 1024 * 1024,
            },
        });
        let runner_cfg = RunnerConfig {
            worker_name: c.worker_name(),
            queues: c.queue_slots(&registry.all_queues()),
            cpu_threads: c
                .cpu_threads
                .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get())),
            lease: c.lease,
            grace: c.shutdown_grace,
            retry_base: c.retry_base,
            retry_max: c.retry_max,
            reconcile_every: c.reconcile_every,
            // Only an embedded database with an in-process queue is this process's alone.
            exclusive_store: store.backend() == Backend::Sqlite && c.redis_url.is_none(),
            scratch_dir: c.data_dir.join("tmp"),
        };
        let auth = Authenticator::new(accounts.clone(), c.service_token.clone());
        let admin_token_file = if bootstrap {
            bootstrap_admin(&accounts, &c.data_dir).await?
        } else {
            None
        };
        let rt = Runtime::new(store, blobs, transport, bus, registry, runner_cfg);
        let api = Api::new(rt, c.max_upload_mb * 1024 * 1024);
        let grpc = GrpcApi::new(api.clone(), auth);
        Ok(Self {
            api,
            accounts,
            grpc,
            admin_token_file,
            workers_started: tokio::sync::watch::Sender::new(false),
        })
    }

    /// Turns true once [`run`](Self::run) has started the workers (with the workers
    /// role): the servers answer before that, and `/readyz` says not ready until then.
    pub fn workers_started(&self) -> tokio::sync::watch::Receiver<bool> {
        self.workers_started.subscribe()
    }

    /// The runner's parts (record, storage, transport, kinds, metrics).
    pub fn runtime(&self) -> &Runtime {
        self.api.runtime()
    }

    /// The job record.
    pub fn store(&self) -> &Store {
        self.runtime().store()
    }

    /// The accounts, on the record's database (the unified web app's handle on them).
    pub fn accounts(&self) -> &Accounts {
        &self.accounts
    }

    /// Where the first admin's API token was written, if this start created it.
    pub fn admin_token_file(&self) -> Option<&PathBuf> {
        self.admin_token_file.as_ref()
    }

    /// Serves what `roles` asks on `listeners` until `shutdown` resolves; then stops
    /// claiming, lets running jobs finish within the grace period (requeueing the
    /// rest), ends open streams and stops the servers.
    pub async fn run(
        self,
        listeners: Listeners,
        roles: Duties,
        shutdown: impl Future<Output = ()> + Send,
    ) -> anyhow::Result<()> {
        self.run_with_routes(listeners, roles, axum::Router::new(), shutdown)
            .await
    }

    /// [`run`](Self::run), serving `routes` (the web app's pages and JSON API) on the
    /// HTTP listener beside health, readiness and metrics.
    pub async fn run_with_routes(
        self,
        listeners: Listeners,
        roles: Duties,
        routes: axum::Router,
        shutdown: impl Future<Output = ()> + Send,
    ) -> anyhow::Result<()> {
        let api = self.api;
        let rt = api.runtime().clone();
        // The servers answer first; the workers start beside them (deciding which
        // queues to consume may wait for a kind's check of its tools, such as ffmpeg),
        // and readiness waits for them.
        let workers = roles.workers.then(|| {
            let (rt, started) = (rt.clone(), self.workers_started.clone());
            tokio::spawn(async move {
                clear_scratch(&rt.config().scratch_dir);
                rt.recover().await.context("recovering jobs at start")?;
                let workers = rt.start_workers().await;
                started.send_replace(true);
                anyhow::Ok(workers)
            })
        });
        let workers_started = roles.workers.then(|| self.workers_started.subscribe());
        let stop = CancellationToken::new();
        let mut servers = tokio::task::JoinSet::new();
        if let (true, Some(grpc)) = (roles.api, listeners.grpc) {
            let server = grpc_server(&self.grpc, &rt)
                .await?
                .serve_with_incoming_shutdown(
                    tokio_stream::wrappers::TcpListenerStream::new(grpc),
                    stop.clone().cancelled_owned(),
                );
            servers.spawn(async move { server.await.context("gRPC server") });
        }
        {
            let http = listeners.http;
            let router = health_router(rt.clone(), workers_started).merge(routes);
            let server =
                axum::serve(http, router).with_graceful_shutdown(stop.clone().cancelled_owned());
            servers.spawn(async move { server.await.context("HTTP server") });
        }
        let mut shutdown = std::pin::pin!(shutdown);
        let mut requested = false;
        let workers = match workers {
            Some(mut starting) => Some(tokio::select! {
                started = &mut starting => started.context("starting the workers")??,
                () = &mut shutdown => {
                    // Let a start under way finish, so that what it claimed is drained.
                    requested = true;
                    starting.await.context("starting the workers")??
                }
            }),
            None => None,
        };
        if !requested {
            shutdown.await;
        }
        tracing::info!("shutdown requested");
        if let Some(w) = workers {
            w.drain().await;
        }
        api.close_streams();
        stop.cancel();
        let joined = tokio::time::timeout(Duration::from_secs(10), async {
            while let Some(r) = servers.join_next().await {
                r.context("server task")??;
            }
            anyhow::Ok(())
        })
        .await;
        match joined {
            Ok(r) => r?,
            Err(_) => tracing::warn!("servers did not stop within 10s; exiting anyway"),
        }
        // The accounts' database too: they share it.
        rt.store().close().await;
        tracing::info!("stopped");
        Ok(())
    }
}

impl JobsHost {
    /// This host's own gRPC services (Files, Jobs, Admin, health) as a transport the
    /// generated clients call directly: the web app goes through the very same
    /// interface — messages, metadata, the service token, every ownership check —
    /// whether the jobs service runs in this process or elsewhere; in one process the
    /// calls just skip the HTTP/2 connection. Timed in the metrics like network calls.
    pub async fn local_grpc(&self) -> GrpcTransport {
        use tower::{Layer, ServiceExt};
        let (health_reporter, health_service) = tonic_health::server::health_reporter();
        set_serving(&health_reporter).await;
        let routes = tonic::service::Routes::new(health_service)
            .add_service(self.grpc.files_server())
            .add_service(self.grpc.jobs_server())
            .add_service(self.grpc.admin_server())
            .prepare();
        let timed = MetricsLayer::new(self.runtime().metrics().clone(), "grpc").layer(routes);
        GrpcTransport::new(
            ServiceExt::<axum::http::Request<tonic::body::Body>>::map_err(
                timed,
                |never: std::convert::Infallible| -> TransportError { match never {} },
            ),
        )
    }
}

/// Reports Files, Jobs and Admin as serving.
async fn set_serving(health_reporter: &tonic_health::server::HealthReporter) {
    health_reporter
        .set_serving::<forklift_rpc::v1::jobs_server::JobsServer<GrpcApi>>()
        .await;
    health_reporter
        .set_serving::<forklift_rpc::v1::files_server::FilesServer<GrpcApi>>()
        .await;
    health_reporter
        .set_serving::<forklift_rpc::v1::admin_server::AdminServer<GrpcApi>>()
        .await;
}

/// The gRPC server: Files, Jobs, Admin, health and reflection (v1 and v1alpha: grpcurl
/// before 1.9 and many tools only speak v1alpha).
async fn grpc_server(
    api: &GrpcApi,
    rt: &Runtime,
) -> anyhow::Result<
    tonic::transport::server::Router<
        tower::layer::util::Stack<MetricsLayer, tower::layer::util::Identity>,
    >,
> {
    let (health_reporter, health_service) = tonic_health::server::health_reporter();
    set_serving(&health_reporter).await;
    let reflection = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(forklift_rpc::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
    };
    Ok(tonic::transport::Server::builder()
        .layer(MetricsLayer::new(rt.metrics().clone(), "grpc"))
        .add_service(health_service)
        .add_service(
            reflection()
                .build_v1()
                .context("building gRPC reflection")?,
        )
        .add_service(
            reflection()
                .build_v1alpha()
                .context("building gRPC reflection")?,
        )
        .add_service(api.files_server())
        .add_service(api.jobs_server())
        .add_service(api.admin_server()))
}

/// The file storage every process of a deployment shares: `FORKLIFT_STORAGE_URL`, or
/// `files/` in the data directory when unset — which only one process can use, so a
/// process that shares its queue through Redis refuses to start without the URL.
/// Checked before anything else is built: a wrong bucket, endpoint or key stops the
/// start with the variable named instead of failing every job later.
pub async fn open_storage(c: &CommonConfig) -> anyhow::Result<Blobs> {
    let blobs = match &c.storage_url {
        Some(url) => Blobs::from_url(url).context("FORKLIFT_STORAGE_URL: cannot use it")?,
        None if c.redis_url.is_some() => anyhow::bail!(
            "FORKLIFT_STORAGE_URL is required with FORKLIFT_REDIS_URL: processes that share \
             their jobs through Redis must share their files too (s3://BUCKET[/PREFIX], or \
             file:///PATH on a volume every process mounts), never a data directory"
        ),
        None => Blobs::local(&c.data_dir.join("files"))
            .context("FORKLIFT_DATA_DIR: cannot use file storage")?,
    };
    blobs.ping().await.with_context(|| {
        format!(
            "FORKLIFT_STORAGE_URL: the storage does not answer{}",
            c.storage_url
                .as_deref()
                .map(|u| format!(" at {u}"))
                .unwrap_or_default()
        )
    })?;
    Ok(blobs)
}

async fn bootstrap_admin(accounts: &Accounts, data_dir: &Path) -> anyhow::Result<Option<PathBuf>> {
    let Some(first) = forklift_accounts::bootstrap_admin(accounts)
        .await
        .context("creating the first admin")?
    else {
        return Ok(None);
    };
    let pw_path = data_dir.join("admin-password");
    write_private(&pw_path, &format!("{}\n", first.password))
        .with_context(|| format!("writing {}", pw_path.display()))?;
    let path = data_dir.join("admin-token");
    write_private(&path, &format!("{}\n", first.token))
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(Some(path))
}

/// Removes what attempts of an earlier run of this process left in its scratch
/// directory (`<data dir>/tmp`): a process killed mid-job (OOM, kill -9) leaves its
/// inputs there, and a restarted container keeps its volume. A data directory belongs
/// to one process, so nothing there is anyone else's.
fn clear_scratch(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        if !e.file_name().to_string_lossy().starts_with("forklift-job-") {
            continue;
        }
        if let Err(err) = std::fs::remove_dir_all(e.path()) {
            let path = e.path().display().to_string();
            tracing::warn!(%path, error = %err, "could not remove stale scratch {path}: {err}");
        }
    }
}

fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    opts.open(path)?.write_all(contents.as_bytes())
}
