//! The workers: one apalis worker per consumed queue under an apalis `Monitor`, beside
//! the maintenance ticks ([`crate::maintenance`]) and a listener for cancel requests;
//! [`Workers::drain`] stops them gracefully.
//!
//! A queue's worker is [`ClaimBackend`] (the next claimed job, within the queue's
//! slots) under apalis's tracing span per task and [`Record`] (lease and outcome), then
//! apalis's panic guard and [`RunKind`]. What apalis has no equivalent for stays
//! Forklift's own: leases keyed by a per-claim token, so that two processes can never
//! both record one attempt; cancellation of running work; release of running jobs at
//! the end of the grace period without spending their attempt; and the slots, which
//! the backend takes before it claims (tower's concurrency limit is taken only when
//! apalis calls the service, after the claim, which allowed one claim at a time: a
//! round trip to the database per job, in series).

use crate::attempt::{RecordLayer, RunKind};
use crate::backend::{Claim, ClaimBackend};
use crate::runtime::Runtime;
use apalis::layers::WorkerBuilderExt;
use apalis_core::error::WorkerError;
use apalis_core::monitor::Monitor;
use apalis_core::worker::builder::WorkerBuilder;
use apalis_core::worker::context::WorkerContext;
use forklift_domain::{Event, Millis, now_ms};
use forklift_store::WorkerRecord;
use std::sync::{Arc, Mutex};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

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
    pub(crate) fn new() -> Self {
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

    pub(crate) fn reason(&self) -> Option<AbortReason> {
        *self.reason.lock().expect("abort lock")
    }

    /// Tripped when the attempt is to stop.
    pub(crate) fn token(&self) -> &CancellationToken {
        &self.token
    }
}

/// Running workers; [`Workers::drain`] stops them gracefully.
pub struct Workers {
    rt: Runtime,
    stop: CancellationToken,
    monitor: JoinHandle<()>,
    cancels: JoinHandle<()>,
}

/// Queue name to slots.
pub(crate) type Queues = std::collections::BTreeMap<String, usize>;

impl Runtime {
    /// Reports this worker in the `workers` table, then starts an apalis worker for
    /// each configured queue whose kinds can run here, the maintenance ticks (which
    /// keep reporting it, and reconcile) and the cancel listener.
    pub async fn start_workers(&self) -> Workers {
        let started_at = now_ms();
        let queues = Arc::new(self.runnable_queues().await);
        // Before consuming: once a job ran here, the admin overview lists this worker.
        report_worker(self, &queues, started_at).await;
        let mut monitor = Monitor::new().should_restart(|w: &WorkerContext, e: &WorkerError| {
            tracing::error!(worker = %w.name(), error = %e, "worker {} stopped: {e}; starting it again", w.name());
            !w.is_shutting_down()
        });
        for (queue, &slots) in queues.iter() {
            tracing::info!(queue = %queue, slots, worker = %self.config().worker_name, "consuming queue {queue} with {slots} slots");
            let (rt, queue) = (self.clone(), queue.clone());
            monitor = monitor.register(move |_| {
                WorkerBuilder::new(format!("{}/{queue}", rt.config().worker_name))
                    .backend(ClaimBackend::new(rt.clone(), queue.clone(), slots))
                    .enable_tracing()
                    .layer(RecordLayer::new(rt.clone()))
                    .catch_panic()
                    .build(RunKind::new(rt.clone()))
            });
        }
        let monitor = crate::maintenance::register(monitor, self, queues, started_at);
        let stop = CancellationToken::new();
        let signal = {
            let stop = stop.clone();
            async move {
                stop.cancelled().await;
                Ok(())
            }
        };
        let monitor = tokio::spawn(async move {
            if let Err(e) = monitor.run_with_signal(signal).await {
                tracing::error!(error = %e, "the workers stopped with an error: {e}");
            }
        });
        let cancels = tokio::spawn(listen_for_cancels(self.clone(), stop.clone()));
        Workers {
            rt: self.clone(),
            stop,
            monitor,
            cancels,
        }
    }

    /// The configured queues that some kind able to run here uses. Asking a kind
    /// whether it can run may wait for a check it makes of its tools (ffmpeg), so
    /// this runs off the async runtime.
    async fn runnable_queues(&self) -> Queues {
        let rt = self.clone();
        let runnable = tokio::task::spawn_blocking(move || rt.registry().queues())
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
}

impl Workers {
    /// Stops claiming, lets running jobs finish within the grace period, then releases
    /// (requeues) the rest and waits for that to be recorded; the maintenance ticks
    /// stop (handing the reconciler's lease on), and this worker's row is deleted.
    pub async fn drain(self) {
        self.stop.cancel();
        let grace = self.rt.config().grace;
        let running = self.rt.running().lock().expect("running lock").len();
        tracing::info!(
            running,
            "shutting down: waiting up to {grace:?} for {running} running jobs"
        );
        let mut monitor = self.monitor;
        if tokio::time::timeout(grace, &mut monitor).await.is_err() {
            let aborts: Vec<Abort> = self
                .rt
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
            monitor.await.ok();
        }
        self.cancels.await.ok();
        crate::maintenance::hand_over(&self.rt).await;
        unregister(&self.rt).await;
    }
}

/// Puts back a job claimed while the worker was stopping, before it started: queued
/// again at once, its attempt not spent.
pub(crate) async fn release_unstarted(rt: &Runtime, c: &Claim) {
    match rt.store().release(c.job.id, &c.token, now_ms()).await {
        Ok(Some(job)) => {
            rt.changed(job.clone());
            rt.dispatch(&job).await;
        }
        Ok(None) => {}
        Err(e) => {
            tracing::warn!(job_id = %c.job.id, error = %e, "releasing job {} failed: {e}; it is requeued when its lease ends", c.job.id)
        }
    }
}

/// This worker's row in the `workers` table, as of `now`.
fn worker_record(rt: &Runtime, queues: &Queues, started_at: Millis, now: Millis) -> WorkerRecord {
    WorkerRecord {
        name: rt.config().worker_name.clone(),
        queues: queues.keys().cloned().collect(),
        slots: queues.values().map(|&n| n.max(1) as i64).sum(),
        started_at,
        last_seen_at: now,
    }
}

/// Records or refreshes this worker's row. A failure is only logged: the next tick
/// reports again.
pub(crate) async fn report_worker(rt: &Runtime, queues: &Queues, started_at: Millis) {
    let row = worker_record(rt, queues, started_at, now_ms());
    if let Err(e) = rt.store().upsert_worker(&row).await {
        tracing::warn!(worker = %row.name, error = %e, "reporting worker {} failed: {e}", row.name);
    }
}

/// Deletes this worker's row (the ticks, which report it, have stopped).
async fn unregister(rt: &Runtime) {
    let name = &rt.config().worker_name;
    if let Err(e) = rt.store().delete_worker(name).await {
        tracing::warn!(worker = %name, error = %e,
            "removing worker {name} from the workers table failed: {e}; the admin overview drops it once it is not seen for a while");
    }
}

/// Stops local attempts whose owner asked to cancel.
async fn listen_for_cancels(rt: Runtime, stop: CancellationToken) {
    let mut rx = rt.bus().subscribe();
    loop {
        let ev = tokio::select! {
            _ = stop.cancelled() => return,
            ev = rx.recv() => ev,
        };
        match ev {
            Ok(Event::CancelRequested(id)) => {
                let abort = rt.running().lock().expect("running lock").get(&id).cloned();
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
