//! Forklift's apalis backend: a queue's worker asks it for the next task, and it
//! answers with a job *claimed* on the record — a delivery taken from the transport
//! (Redis, or in-process), then a conditional claim that gives this attempt its own
//! lease token. A duplicate or stale delivery is dropped here, an early one goes back
//! until it is due, so every task a worker sees is a job it alone holds.
//!
//! apalis-redis's own storage is not used: it cannot drain a backlog of more than about
//! 8,000 due jobs (one unbounded Lua `unpack`), recovers orphans per worker rather than
//! per job, and has no priorities. The transport here has none of those limits, and
//! the record, not the transport, says who holds a job.

use crate::runtime::Runtime;
use crate::workers::Abort;
use apalis_core::backend::finalize::Ephemeral;
use apalis_core::backend::{Backend, BackendConfig};
use apalis_core::layers::Identity;
use apalis_core::task::Task;
use apalis_core::task::builder::TaskBuilder;
use apalis_core::task::task_id::TaskId;
use apalis_core::worker::context::WorkerContext;
use forklift_domain::{Job, JobState, now_ms};
use forklift_queue::{Delivery, QueueError};
use futures::StreamExt;
use futures::future::BoxFuture;
use futures::stream::FuturesUnordered;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// A job claimed for one attempt: what a worker's service is called with.
#[derive(Clone)]
pub struct Claim {
    /// The job as the claim left it (`running`, `attempt` counting this one).
    pub job: Job,
    /// The claim's lease token: every write about this attempt is conditional on it.
    pub token: String,
    /// Stops the attempt from outside (cancel, release at shutdown, lease lost).
    pub(crate) abort: Abort,
    /// One of the queue's slots, held from the claim to the attempt's recorded end
    /// (freed when the last copy of the claim goes).
    pub(crate) slot: Arc<OwnedSemaphorePermit>,
}

/// How long a queue's worker waits after the transport failed before asking again.
const RETRY_TRANSPORT: Duration = Duration::from_secs(1);

/// The backend of one queue's worker.
///
/// The queue's slots are a semaphore: a slot is taken before a delivery is waited
/// for, so nothing is claimed that could not start at once, and given back when the
/// attempt's end is recorded (or the delivery turned out to be a duplicate). One
/// delivery is waited for at a time; the claims of the deliveries taken run side by
/// side, each a database round trip of its own, so a slow claim holds up no other.
pub struct ClaimBackend {
    rt: Runtime,
    queue: String,
    slots: Arc<Semaphore>,
    /// A slot taken for the next delivery.
    slot: Option<OwnedSemaphorePermit>,
    /// Waiting for a slot to come free.
    freeing: Option<BoxFuture<'static, OwnedSemaphorePermit>>,
    /// Waiting for the transport's next delivery (safe to drop: the reconciler
    /// publishes again what a dropped wait took).
    waiting: Option<BoxFuture<'static, Result<Delivery, QueueError>>>,
    /// The transport failed: ask again after a pause.
    pausing: Option<Pin<Box<tokio::time::Sleep>>>,
    /// Claims under way (not dropped at shutdown: a claim that succeeds then is
    /// released).
    claims: FuturesUnordered<BoxFuture<'static, Option<Claim>>>,
    /// Shutting down: releasing what claims under way took.
    releasing: FuturesUnordered<BoxFuture<'static, ()>>,
}

impl ClaimBackend {
    /// The backend of `queue`'s worker, running up to `slots` jobs at once.
    pub fn new(rt: Runtime, queue: impl Into<String>, slots: usize) -> Self {
        Self {
            rt,
            queue: queue.into(),
            slots: Arc::new(Semaphore::new(slots.max(1))),
            slot: None,
            freeing: None,
            waiting: None,
            pausing: None,
            claims: FuturesUnordered::new(),
            releasing: FuturesUnordered::new(),
        }
    }

    /// Takes a free slot for the next delivery; `Pending` (woken when one frees) if
    /// none is free.
    fn poll_slot(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if self.slot.is_some() {
            return Poll::Ready(());
        }
        if self.freeing.is_none() {
            if let Ok(p) = self.slots.clone().try_acquire_owned() {
                self.slot = Some(p);
                return Poll::Ready(());
            }
            let slots = self.slots.clone();
            self.freeing = Some(Box::pin(async move {
                slots
                    .acquire_owned()
                    .await
                    .expect("the slots are never closed")
            }));
        }
        let freeing = self.freeing.as_mut().expect("set just above");
        let p = ready!(freeing.as_mut().poll(cx));
        self.freeing = None;
        self.slot = Some(p);
        Poll::Ready(())
    }
}

impl Backend for ClaimBackend {
    type Task = Task<Claim>;
    type Error = std::convert::Infallible;

    fn poll_ready(
        &mut self,
        _: &mut Context<'_>,
        _: &WorkerContext,
    ) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn poll_next(
        &mut self,
        cx: &mut Context<'_>,
        _: &WorkerContext,
    ) -> Poll<Option<Result<Self::Task, Self::Error>>> {
        loop {
            // A claim that came through is the next task; a dropped delivery frees
            // its slot for the next one.
            match self.claims.poll_next_unpin(cx) {
                Poll::Ready(Some(Some(c))) => return Poll::Ready(Some(Ok(task(c)))),
                Poll::Ready(Some(None)) => continue,
                Poll::Ready(None) | Poll::Pending => {}
            }
            if let Some(pause) = &mut self.pausing {
                ready!(pause.as_mut().poll(cx));
                self.pausing = None;
            }
            ready!(self.poll_slot(cx));
            let waiting = self.waiting.get_or_insert_with(|| {
                let (transport, queue) = (self.rt.transport().clone(), self.queue.clone());
                Box::pin(async move { transport.next(&queue).await })
            });
            let next = ready!(waiting.as_mut().poll(cx));
            self.waiting = None;
            match next {
                Ok(d) => {
                    let slot = self.slot.take().expect("taken above");
                    self.claims.push(Box::pin(claim(self.rt.clone(), d, slot)));
                }
                Err(e) => {
                    tracing::error!(queue = %self.queue, error = %e, "taking from queue {} failed: {e}", self.queue);
                    self.pausing = Some(Box::pin(tokio::time::sleep(RETRY_TRANSPORT)));
                }
            }
        }
    }

    /// At shutdown: a wait for the transport is dropped; claims under way are
    /// finished, and what they took is released (queued again, attempt not spent).
    fn poll_close(
        &mut self,
        cx: &mut Context<'_>,
        _: &WorkerContext,
    ) -> Poll<Result<(), Self::Error>> {
        self.waiting = None;
        self.freeing = None;
        self.pausing = None;
        while let Poll::Ready(Some(claimed)) = self.claims.poll_next_unpin(cx) {
            if let Some(c) = claimed {
                let rt = self.rt.clone();
                self.releasing.push(Box::pin(async move {
                    crate::workers::release_unstarted(&rt, &c).await;
                }));
            }
        }
        while let Poll::Ready(Some(())) = self.releasing.poll_next_unpin(cx) {}
        if self.claims.is_empty() && self.releasing.is_empty() {
            Poll::Ready(Ok(()))
        } else {
            Poll::Pending
        }
    }
}

/// A claim as an apalis task, whose id is the job's: apalis's tracing spans and
/// events name the job.
fn task(c: Claim) -> Task<Claim> {
    let id = TaskId::String(c.job.id.to_string());
    let (attempt, max) = (c.job.attempt as usize, c.job.max_attempts as usize);
    TaskBuilder::new(c)
        .task_id(id)
        .attempt(attempt)
        .max_attempts(max)
        .build()
}

impl BackendConfig for ClaimBackend {
    type Args = Claim;
    type Id = TaskId;
    type Kind = Ephemeral;
    type Config = ();
    type Layer = Identity;

    fn config(&self) -> &Self::Config {
        &()
    }

    fn middleware(&mut self, _: &mut WorkerContext) -> Self::Layer {
        Identity::new()
    }
}

/// Claims a delivery's job on the record with a fresh lease token. `None` for a
/// duplicate or stale delivery (dropped), an early one (published again until due),
/// or a record that failed to answer (the delivery goes back a second later).
async fn claim(rt: Runtime, d: Delivery, slot: OwnedSemaphorePermit) -> Option<Claim> {
    let store = rt.store();
    let cfg = rt.config();
    let token = uuid::Uuid::new_v4().simple().to_string();
    let now = now_ms();
    let lease_ms = cfg.lease.as_millis() as i64;
    match store
        .claim(d.job_id, &cfg.worker_name, &token, now + lease_ms, now)
        .await
    {
        Ok(Some(claim)) => Some(Claim {
            job: claim.job,
            token,
            abort: Abort::new(),
            slot: Arc::new(slot),
        }),
        Ok(None) => {
            if let Ok(Some(job)) = store.get_job(d.job_id).await
                && job.state == JobState::Queued
                && job.run_at > now
            {
                rt.dispatch(&job).await;
            }
            None
        }
        Err(e) => {
            // The job is still queued: hand it back for a moment later.
            tracing::error!(job_id = %d.job_id, error = %e, "claiming job {} failed: {e}", d.job_id);
            let again = Delivery {
                run_at: now_ms() + 1000,
                ..d
            };
            if let Err(e) = rt.transport().publish(again).await {
                tracing::warn!(error = %e, "republishing failed: {e}");
            }
            None
        }
    }
}
