//! What the runner works over: the record, object storage, the transport, the event
//! bus, the kinds and the settings; shared by the workers, the maintenance ticks and
//! the service that submits jobs.

use crate::kind::Registry;
use crate::workers::Abort;
use forklift_blob::Blobs;
use forklift_domain::{Event, Job, JobId, now_ms};
use forklift_queue::{Delivery, EventBus, Transport};
use forklift_store::Store;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Semaphore;

/// How the runner runs jobs.
#[derive(Debug, Clone)]
pub struct RunnerConfig {
    /// This process's worker name, unique among all processes.
    pub worker_name: String,
    /// Which queues this process consumes, and how many jobs of each run at once;
    /// when the workers start, a queue none of whose kinds can run here (no ffmpeg)
    /// is left out. Empty: this process runs no jobs (an API-only process).
    pub queues: BTreeMap<String, usize>,
    /// Threads for CPU-heavy work, shared by all queues.
    pub cpu_threads: usize,
    /// How long a claim holds without renewal; renewed every third of it.
    pub lease: Duration,
    /// How long running jobs may finish after shutdown begins before they are released.
    pub grace: Duration,
    /// First retry delay; doubles per attempt (with jitter) up to `retry_max`.
    pub retry_base: Duration,
    /// Longest retry delay.
    pub retry_max: Duration,
    /// How often the maintenance ticks come (whole seconds, at least one): the worker
    /// reports itself, and one process of the deployment reconciles.
    pub reconcile_every: Duration,
    /// This process owns the database alone (embedded SQLite): at start, every job
    /// left `running` belongs to a dead process and is requeued at once.
    pub exclusive_store: bool,
    /// Where attempts keep scratch files (removed when each attempt ends).
    pub scratch_dir: std::path::PathBuf,
}

impl Default for RunnerConfig {
    fn default() -> Self {
        Self {
            worker_name: format!("worker-{}", uuid::Uuid::new_v4().simple()),
            queues: BTreeMap::new(),
            cpu_threads: std::thread::available_parallelism().map_or(2, |n| n.get()),
            lease: Duration::from_secs(30),
            grace: Duration::from_secs(30),
            retry_base: Duration::from_secs(2),
            retry_max: Duration::from_secs(300),
            reconcile_every: Duration::from_secs(5),
            exclusive_store: true,
            scratch_dir: std::env::temp_dir(),
        }
    }
}

/// The runner's parts; cheap to clone.
#[derive(Clone)]
pub struct Runtime {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    blobs: Blobs,
    transport: Arc<dyn Transport>,
    bus: Arc<dyn EventBus>,
    registry: Registry,
    cfg: RunnerConfig,
    cpu: Arc<Semaphore>,
    running: Mutex<BTreeMap<JobId, Abort>>,
    metrics: Arc<forklift_serve::Metrics>,
}

impl Runtime {
    /// A runtime over the given parts.
    pub fn new(
        store: Store,
        blobs: Blobs,
        transport: Arc<dyn Transport>,
        bus: Arc<dyn EventBus>,
        registry: Registry,
        cfg: RunnerConfig,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                cpu: Arc::new(Semaphore::new(cfg.cpu_threads.max(1))),
                store,
                blobs,
                transport,
                bus,
                registry,
                cfg,
                running: Mutex::default(),
                metrics: Arc::default(),
            }),
        }
    }

    /// The record.
    pub fn store(&self) -> &Store {
        &self.inner.store
    }
    /// Object storage.
    pub fn blobs(&self) -> &Blobs {
        &self.inner.blobs
    }
    /// The transport.
    pub fn transport(&self) -> &Arc<dyn Transport> {
        &self.inner.transport
    }
    /// The event bus.
    pub fn bus(&self) -> &Arc<dyn EventBus> {
        &self.inner.bus
    }
    /// The kinds.
    pub fn registry(&self) -> &Registry {
        &self.inner.registry
    }
    /// The configuration.
    pub fn config(&self) -> &RunnerConfig {
        &self.inner.cfg
    }
    /// Counters and histograms of this process.
    pub fn metrics(&self) -> &Arc<forklift_serve::Metrics> {
        &self.inner.metrics
    }
    pub(crate) fn cpu(&self) -> &Arc<Semaphore> {
        &self.inner.cpu
    }
    pub(crate) fn running(&self) -> &Mutex<BTreeMap<JobId, Abort>> {
        &self.inner.running
    }

    /// Publishes a job change to watchers.
    pub fn changed(&self, job: Job) {
        self.inner.bus.publish(Event::JobChanged(Box::new(job)));
    }

    /// Hands a queued job to the transport. A failure is only logged: the job is
    /// committed, and the reconciler publishes it again.
    pub async fn dispatch(&self, job: &Job) {
        if let Err(e) = self.inner.transport.publish(delivery(job)).await {
            tracing::warn!(job_id = %job.id, error = %e, "publishing job {} failed: {e}", job.id);
        }
    }

    /// Puts back jobs a dead process left running and dispatches every queued job.
    /// Call once at start, before [`Runtime::start_workers`](crate::Workers).
    pub async fn recover(&self) -> Result<(), forklift_store::StoreError> {
        let now = now_ms();
        let expired_before = if self.config().exclusive_store {
            i64::MAX
        } else {
            now
        };
        // Every queued job, the reclaimed ones included, is dispatched just below.
        self.reclaim(expired_before, now).await?;
        let queued = self.store().queued_jobs().await?;
        tracing::info!(
            count = queued.len(),
            "dispatching {} queued jobs",
            queued.len()
        );
        for job in &queued {
            self.dispatch(job).await;
        }
        Ok(())
    }

    /// Puts back the running jobs whose lease ended before `expired_before` (their
    /// worker died), each one on its own, announces the changes and returns the
    /// requeued ones.
    pub(crate) async fn reclaim(
        &self,
        expired_before: i64,
        now: i64,
    ) -> Result<Vec<Job>, forklift_store::StoreError> {
        let r = self.store().recover_running(expired_before, now).await?;
        for job in r.failed {
            tracing::warn!(job_id = %job.id, "job {} failed: its worker stopped responding on the last attempt", job.id);
            self.changed(job);
        }
        for job in &r.requeued {
            tracing::warn!(job_id = %job.id, "job {} requeued: its worker stopped responding", job.id);
            self.changed(job.clone());
        }
        Ok(r.requeued)
    }
}

/// What the transport carries for a queued job.
pub(crate) fn delivery(job: &Job) -> Delivery {
    Delivery {
        job_id: job.id,
        queue: job.queue.clone(),
        priority: job.priority,
        run_at: job.run_at,
    }
}
