//! The worker pool: per queue, a loop that takes a delivery when a slot is free and
//! runs it; plus the reconciler (which also reports the worker in the `workers`
//! table), the cancel listener and graceful shutdown.

use crate::ctx::JobCtx;
use crate::engine::Engine;
use crate::kind::JobError;
use forklift_domain::{Event, Job, JobId, JobState, Millis, now_ms};
use forklift_queue::Delivery;
use forklift_store::WorkerRecord;
use rand::Rng;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Why a running attempt was stopped from outside.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AbortReason {
    /// Its owner cancelled the job.
    Cancel,
    /// This worker is shutting down: put the job back without spending the attempt.
    Release,
    /// The claim is no longer ours (lease lost): change nothing.
    Lost,
}

/// The handle to stop one running attempt; the first reason given wins.
#[derive(Clone)]
pub(crate) struct Abort {
    token: CancellationToken,
    reason: Arc<Mutex<Option<AbortReason>>>,
}

impl Abort {
    fn new() -> Self {
        Self {
            token: CancellationToken::new(),
            reason: Arc::default(),
        }
    }

    pub(crate) fn abort(&self, reason: AbortReason) {
        let mut r = self.reason.lock().expect("abort lock");
        if r.is_none() {
            *r = Some(reason);
        }
        drop(r);
        self.token.cancel();
    }

    fn reason(&self) -> Option<AbortReason> {
        *self.reason.lock().expect("abort lock")
    }
}

/// Running workers; [`Workers::drain`] stops them gracefully.
pub struct Workers {
    engine: Engine,
    stop_claiming: CancellationToken,
    loops: TaskTracker,
    jobs: TaskTracker,
}

impl Engine {
    /// Puts back jobs a dead process left running and dispatches every queued job.
    /// Call once at start, before [`Engine::start_workers`].
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
    /// worker died), announces the changes and returns the requeued ones.
    async fn reclaim(
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

    /// This worker's row in the `workers` table, as of `now`.
    fn worker_record(&self, queues: &Queues, started_at: Millis, now: Millis) -> WorkerRecord {
        WorkerRecord {
            name: self.config().worker_name.clone(),
            queues: queues.keys().cloned().collect(),
            slots: queues.values().map(|&n| n.max(1) as i64).sum(),
            started_at,
            last_seen_at: now,
        }
    }

    /// Records or refreshes this worker's row. A failure is only logged: the next
    /// reconcile period reports again.
    async fn report_worker(&self, queues: &Queues, started_at: Millis) {
        let row = self.worker_record(queues, started_at, now_ms());
        if let Err(e) = self.store().upsert_worker(&row).await {
            tracing::warn!(worker = %row.name, error = %e, "reporting worker {} failed: {e}", row.name);
        }
    }

    /// The configured queues that some kind able to run here uses. Asking a kind
    /// whether it can run may wait for a check it makes of its tools (ffmpeg), so
    /// this runs off the async runtime.
    async fn runnable_queues(&self) -> Queues {
        let engine = self.clone();
        let runnable = tokio::task::spawn_blocking(move || engine.registry().queues())
            .await
            .unwrap_or_default();
        let mut queues = self.config().queues.clone();
        queues.retain(|queue, _| {
            let ok = runnable.contains(&queue.as_str());
            if !ok {
                // The kinds say why themselves (no ffmpeg), or are off on purpose (debug).
                tracing::debug!(queue = %queue, "not consuming queue {queue}: none of its job kinds can run on this server");
            }
            ok
        });
        queues
    }

    /// Reports this worker in the `workers` table, then starts the consumers of the
    /// configured queues whose kinds can run here, the reconciler (which keeps
    /// reporting it) and the cancel listener.
    pub async fn start_workers(&self) -> Workers {
        let started_at = now_ms();
        let queues = Arc::new(self.runnable_queues().await);
        // Before consuming: once a job ran here, the admin overview lists this worker.
        self.report_worker(&queues, started_at).await;
        let w = Workers {
            engine: self.clone(),
            stop_claiming: CancellationToken::new(),
            loops: TaskTracker::new(),
            jobs: TaskTracker::new(),
        };
        for (queue, &slots) in queues.iter() {
            tracing::info!(queue = %queue, slots, worker = %self.config().worker_name, "consuming queue {queue} with {slots} slots");
            w.loops.spawn(consume(
                self.clone(),
                queue.clone(),
                slots,
                w.stop_claiming.clone(),
                w.jobs.clone(),
            ));
        }
        w.loops.spawn(reconcile(
            self.clone(),
            w.stop_claiming.clone(),
            queues,
            started_at,
        ));
        w.loops
            .spawn(listen_for_cancels(self.clone(), w.stop_claiming.clone()));
        w
    }
}

/// Queue name to slots.
type Queues = std::collections::BTreeMap<String, usize>;

impl Workers {
    /// Stops claiming, lets running jobs finish within the grace period, then releases
    /// (requeues) the rest and waits for that to be recorded.
    pub async fn drain(self) {
        self.stop_claiming.cancel();
        self.loops.close();
        self.loops.wait().await;
        self.jobs.close();
        let grace = self.engine.config().grace;
        let running = self.engine.running().lock().expect("running lock").len();
        tracing::info!(
            running,
            "shutting down: waiting up to {grace:?} for {running} running jobs"
        );
        if tokio::time::timeout(grace, self.jobs.wait()).await.is_err() {
            let aborts: Vec<Abort> = self
                .engine
                .running()
                .lock()
                .expect("running lock")
                .values()
                .cloned()
                .collect();
            tracing::warn!(
                count = aborts.len(),
                "grace period over: releasing {} jobs",
                aborts.len()
            );
            for a in aborts {
                a.abort(AbortReason::Release);
            }
            self.jobs.wait().await;
        }
        self.unregister().await;
    }

    /// Deletes this worker's row (the reconciler, which reports it, has stopped).
    async fn unregister(&self) {
        let name = &self.engine.config().worker_name;
        if let Err(e) = self.engine.store().delete_worker(name).await {
            tracing::warn!(worker = %name, error = %e,
                "removing worker {name} from the workers table failed: {e}; the admin overview drops it once it is not seen for a while");
        }
    }
}

/// One queue's consumer: takes a delivery whenever a slot is free.
async fn consume(
    engine: Engine,
    queue: String,
    slots: usize,
    stop: CancellationToken,
    jobs: TaskTracker,
) {
    let slots = Arc::new(Semaphore::new(slots.max(1)));
    loop {
        let permit = tokio::select! {
            _ = stop.cancelled() => return,
            p = slots.clone().acquire_owned() => p.expect("semaphore never closed"),
        };
        let delivery = tokio::select! {
            _ = stop.cancelled() => return,
            d = engine.transport().next(&queue) => d,
        };
        match delivery {
            Ok(d) => {
                let engine = engine.clone();
                jobs.spawn(async move {
                    process(&engine, d).await;
                    drop(permit);
                });
            }
            Err(e) => {
                tracing::error!(queue = %queue, error = %e, "taking from queue {queue} failed: {e}");
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
            }
        }
    }
}

/// Claims and runs one delivery.
async fn process(engine: &Engine, d: Delivery) {
    let store = engine.store();
    let cfg = engine.config();
    let token = uuid::Uuid::new_v4().simple().to_string();
    let now = now_ms();
    let lease_ms = cfg.lease.as_millis() as i64;
    let claim = match store
        .claim(d.job_id, &cfg.worker_name, &token, now + lease_ms, now)
        .await
    {
        Ok(c) => c,
        Err(e) => {
            // Leave it: the job is still queued and the reconciler or a restart retries.
            tracing::error!(job_id = %d.job_id, error = %e, "claiming job {} failed: {e}", d.job_id);
            republish_later(engine, d).await;
            return;
        }
    };
    let Some(claim) = claim else {
        // Duplicate or stale delivery; or an early one, which goes back until due.
        if let Ok(Some(job)) = store.get_job(d.job_id).await
            && job.state == JobState::Queued
            && job.run_at > now
        {
            engine.dispatch(&job).await;
        }
        return;
    };
    let job = claim.job;
    tracing::info!(job_id = %job.id, kind = %job.kind, attempt = job.attempt, "job {} ({}) started, attempt {}", job.id, job.kind, job.attempt);
    engine.changed(job.clone());

    let abort = Abort::new();
    engine
        .running()
        .lock()
        .expect("running lock")
        .insert(job.id, abort.clone());
    let renewer = tokio::spawn(renew_lease(
        engine.clone(),
        job.id,
        token.clone(),
        abort.clone(),
    ));
    let started = std::time::Instant::now();
    let outcome = run_attempt(engine, &job, &token, &abort).await;
    let took = started.elapsed();
    renewer.abort();
    engine
        .running()
        .lock()
        .expect("running lock")
        .remove(&job.id);
    let label = finish(engine, &job, &token, outcome, abort.reason()).await;
    engine.metrics().observe_job(&job.kind, label, took);
}

enum Outcome {
    Succeeded(Vec<forklift_store::NewOutput>),
    Failed(JobError),
    TimedOut(Duration),
    Aborted,
}

async fn run_attempt(engine: &Engine, job: &Job, token: &str, abort: &Abort) -> Outcome {
    let Some(kind) = engine.registry().get(&job.kind).cloned() else {
        return Outcome::Failed(JobError::permanent(format!(
            "this worker cannot run {} jobs",
            job.kind
        )));
    };
    let mut inputs = Vec::with_capacity(job.input_file_ids.len());
    for id in &job.input_file_ids {
        match engine.store().get_file(*id).await {
            Ok(Some(f)) if f.owner_id == job.owner_id => inputs.push(f),
            Ok(_) => {
                return Outcome::Failed(JobError::permanent(format!(
                    "input file {id} was deleted before the job ran"
                )));
            }
            Err(e) => {
                return Outcome::Failed(JobError::retryable(format!(
                    "reading the input's record failed: {e}"
                )));
            }
        }
    }
    let mut ctx = JobCtx::new(
        engine.clone(),
        job.clone(),
        inputs,
        token.to_owned(),
        abort.token.clone(),
    );
    let timeout = kind.timeout();
    let result = tokio::select! {
        r = tokio::time::timeout(timeout, kind.run(&mut ctx)) => r,
        _ = abort.token.cancelled() => return Outcome::Aborted,
    };
    match result {
        _ if abort.token.is_cancelled() => Outcome::Aborted,
        Ok(Ok(())) => Outcome::Succeeded(std::mem::take(&mut ctx.outputs)),
        Ok(Err(JobError::Cancelled)) => Outcome::Aborted,
        Ok(Err(e)) => Outcome::Failed(e),
        Err(_) => {
            abort.token.cancel();
            Outcome::TimedOut(timeout)
        }
    }
}

/// Records the attempt's end, conditional on the claim still being ours.
async fn finish(
    engine: &Engine,
    job: &Job,
    token: &str,
    outcome: Outcome,
    reason: Option<AbortReason>,
) -> &'static str {
    let store = engine.store();
    let now = now_ms();
    let result = match outcome {
        Outcome::Aborted => match reason {
            Some(AbortReason::Cancel) | None => store.finish_cancelled(job.id, token, now).await,
            Some(AbortReason::Release) => store.release(job.id, token, now).await,
            Some(AbortReason::Lost) => Ok(None),
        },
        Outcome::Succeeded(outputs) => store.succeed(job.id, token, &outputs, now).await,
        Outcome::Failed(JobError::Permanent(msg)) => store.fail(job.id, token, &msg, now).await,
        Outcome::Failed(JobError::Retryable(msg)) => retry_or_fail(engine, job, token, &msg).await,
        Outcome::Failed(JobError::Cancelled) => store.finish_cancelled(job.id, token, now).await,
        Outcome::TimedOut(t) => {
            let msg = format!(
                "the attempt took longer than this kind's limit of {}s",
                t.as_secs()
            );
            retry_or_fail(engine, job, token, &msg).await
        }
    };
    match result {
        Ok(Some(after)) => {
            tracing::info!(job_id = %after.id, state = %after.state, error = after.error.as_deref().unwrap_or(""),
                "job {} is now {}", after.id, after.state);
            let label = match after.state {
                JobState::Queued if reason == Some(AbortReason::Release) => "released",
                JobState::Queued => "retried",
                JobState::Running => "running",
                JobState::Succeeded => "succeeded",
                JobState::Failed => "failed",
                JobState::Cancelled => "cancelled",
            };
            if after.state == JobState::Queued {
                engine.changed(after.clone());
                engine.dispatch(&after).await;
            } else {
                engine.changed(after);
            }
            label
        }
        Ok(None) => {
            tracing::info!(job_id = %job.id, "job {}: the claim was lost; the result is dropped", job.id);
            "lost"
        }
        Err(e) => {
            tracing::error!(job_id = %job.id, error = %e, "recording the end of job {} failed: {e}", job.id);
            "error"
        }
    }
}

async fn retry_or_fail(
    engine: &Engine,
    job: &Job,
    token: &str,
    msg: &str,
) -> Result<Option<Job>, forklift_store::StoreError> {
    let now = now_ms();
    if job.attempt >= job.max_attempts {
        let msg = format!("{msg} (gave up after {} attempts)", job.attempt);
        return engine.store().fail(job.id, token, &msg, now).await;
    }
    let delay = backoff(
        engine.config().retry_base,
        engine.config().retry_max,
        job.attempt,
    );
    engine
        .store()
        .retry_later(job.id, token, msg, now + delay.as_millis() as i64, now)
        .await
}

/// Exponential backoff with jitter: base·2^(attempt-1), capped, then scaled by a
/// random factor in [0.5, 1) so that retries of many jobs spread out.
pub(crate) fn backoff(base: Duration, max: Duration, attempt: u32) -> Duration {
    let exp = base.saturating_mul(1u32 << attempt.saturating_sub(1).min(20));
    let capped = exp.min(max);
    capped.mul_f64(rand::rng().random_range(0.5..1.0))
}

/// Renews the claim's lease every third of the lease; trips the abort if the claim
/// is lost or its owner asked to cancel.
async fn renew_lease(engine: Engine, id: JobId, token: String, abort: Abort) {
    let lease = engine.config().lease;
    let mut tick = tokio::time::interval(lease / 3);
    tick.tick().await;
    loop {
        tick.tick().await;
        let until = now_ms() + lease.as_millis() as i64;
        match engine.store().renew_lease(id, &token, until).await {
            Ok(Some(false)) => {}
            Ok(Some(true)) => abort.abort(AbortReason::Cancel),
            Ok(None) => {
                tracing::warn!(job_id = %id, "job {id}: lease lost, stopping the attempt");
                abort.abort(AbortReason::Lost);
                return;
            }
            Err(e) => {
                tracing::warn!(job_id = %id, error = %e, "renewing the lease of job {id} failed: {e}")
            }
        }
    }
}

async fn republish_later(engine: &Engine, mut d: Delivery) {
    d.run_at = now_ms() + 1000;
    if let Err(e) = engine.transport().publish(d).await {
        tracing::warn!(error = %e, "republishing failed: {e}");
    }
}

/// Periodically reports this worker and puts back jobs whose worker died (expired
/// leases) or that the transport may have lost.
async fn reconcile(
    engine: Engine,
    stop: CancellationToken,
    queues: Arc<Queues>,
    started_at: Millis,
) {
    let mut tick = tokio::time::interval(engine.config().reconcile_every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Where the search for lost jobs goes on from (see `republish_lost`).
    let mut scan = None;
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        engine.report_worker(&queues, started_at).await;
        let now = now_ms();
        match engine.reclaim(now, now).await {
            Ok(requeued) => {
                for job in &requeued {
                    engine.dispatch(job).await;
                }
            }
            Err(e) => tracing::error!(error = %e, "reconciling failed: {e}"),
        }
        // Jobs the record says are queued but nobody took for a while may be missing
        // from the transport (Redis restarted empty): publish them again.
        let stale = engine.config().reconcile_every * 2;
        if let Err(e) = republish_lost(&engine, now - stale.as_millis() as i64, &mut scan).await {
            tracing::error!(error = %e, "reconciling queued jobs failed: {e}");
            scan = None;
        }
    }
}

/// Queued jobs read per page when looking for ones the transport lost.
const RECONCILE_PAGE: u32 = 1_000;
/// Pages per reconcile pass: a pass compares up to 10,000 queued jobs with the transport.
const RECONCILE_PAGES: usize = 10;

/// Publishes again the queued jobs untouched since `before` that the transport does not
/// hold. The record is read in `(run_at, id)` order from `scan` (the place the previous
/// pass stopped, `None` for the start), at most [`RECONCILE_PAGES`] pages per pass:
/// every lost job is found within a few passes however many others wait, and after the
/// end the next pass starts again with the due ones. (Always reading the first page
/// would let a thousand jobs that are not due yet hide every due one behind them.)
async fn republish_lost(
    engine: &Engine,
    before: Millis,
    scan: &mut Option<(Millis, JobId)>,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    for _ in 0..RECONCILE_PAGES {
        let page = engine
            .store()
            .queued_jobs_page(before, *scan, RECONCILE_PAGE)
            .await?;
        let full = page.len() == RECONCILE_PAGE as usize;
        *scan = page.last().filter(|_| full).map(|j| (j.run_at, j.id));
        let deliveries = page
            .into_iter()
            .map(|j| Delivery {
                job_id: j.id,
                queue: j.queue,
                priority: j.priority,
                run_at: j.run_at,
            })
            .collect();
        let lost = engine.transport().missing(deliveries).await?;
        if !lost.is_empty() {
            tracing::warn!(
                count = lost.len(),
                "publishing {} queued jobs again: the transport lost them",
                lost.len()
            );
        }
        for d in lost {
            engine.transport().publish(d).await?;
        }
        if !full {
            break;
        }
    }
    Ok(())
}

/// Stops local attempts whose owner asked to cancel.
async fn listen_for_cancels(engine: Engine, stop: CancellationToken) {
    let mut rx = engine.bus().subscribe();
    loop {
        let ev = tokio::select! {
            _ = stop.cancelled() => return,
            ev = rx.recv() => ev,
        };
        match ev {
            Ok(Event::CancelRequested(id)) => {
                let abort = engine
                    .running()
                    .lock()
                    .expect("running lock")
                    .get(&id)
                    .cloned();
                if let Some(a) = abort {
                    a.abort(AbortReason::Cancel);
                }
            }
            Ok(_) => {}
            // Missed some: the lease renewal sees cancel_requested within a third of a lease.
            Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
            Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_with_jitter_and_caps() {
        let base = Duration::from_millis(100);
        let max = Duration::from_secs(1);
        for attempt in 1..=10 {
            let d = backoff(base, max, attempt);
            let full = (base * 2u32.pow(attempt - 1)).min(max);
            assert!(
                d >= full / 2 && d < full,
                "attempt {attempt}: {d:?} vs {full:?}"
            );
        }
    }
}
