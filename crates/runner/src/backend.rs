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
use futures::future::BoxFuture;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

/// A job claimed for one attempt: what a worker's service is called with.
#[derive(Clone)]
pub struct Claim {
    /// The job as the claim left it (`running`, `attempt` counting this one).
    pub job: Job,
    /// The claim's lease token: every write about this attempt is conditional on it.
    pub token: String,
    /// Stops the attempt from outside (cancel, release at shutdown, lease lost).
    pub(crate) abort: Abort,
}

/// How long a queue's worker waits after the transport failed before asking again.
const RETRY_TRANSPORT: Duration = Duration::from_secs(1);

/// The backend of one queue's worker.
pub struct ClaimBackend {
    rt: Runtime,
    queue: String,
    state: State,
}

enum State {
    Idle,
    /// Waiting for the transport's next delivery (safe to drop: the reconciler
    /// publishes again what a dropped wait took).
    Waiting(BoxFuture<'static, Result<Delivery, QueueError>>),
    /// Claiming a delivery on the record (not dropped at shutdown: a claim that
    /// succeeds is released).
    Claiming(BoxFuture<'static, Option<Claim>>),
    /// The transport failed: ask again after a pause.
    Pausing(Pin<Box<tokio::time::Sleep>>),
    /// Shutting down: releasing what a claim under way took.
    Releasing(BoxFuture<'static, ()>),
}

impl ClaimBackend {
    /// The backend of `queue`'s worker.
    pub fn new(rt: Runtime, queue: impl Into<String>) -> Self {
        Self {
            rt,
            queue: queue.into(),
            state: State::Idle,
        }
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

    /// Called only when the worker has a free slot (its concurrency limit is ready):
    /// nothing is claimed that could not start at once.
    fn poll_next(
        &mut self,
        cx: &mut Context<'_>,
        _: &WorkerContext,
    ) -> Poll<Option<Result<Self::Task, Self::Error>>> {
        loop {
            match &mut self.state {
                State::Idle => {
                    let (transport, queue) = (self.rt.transport().clone(), self.queue.clone());
                    self.state =
                        State::Waiting(Box::pin(async move { transport.next(&queue).await }));
                }
                State::Waiting(next) => match ready!(next.as_mut().poll(cx)) {
                    Ok(d) => self.state = State::Claiming(Box::pin(claim(self.rt.clone(), d))),
                    Err(e) => {
                        tracing::error!(queue = %self.queue, error = %e, "taking from queue {} failed: {e}", self.queue);
                        self.state = State::Pausing(Box::pin(tokio::time::sleep(RETRY_TRANSPORT)));
                    }
                },
                State::Claiming(claiming) => {
                    let claimed = ready!(claiming.as_mut().poll(cx));
                    self.state = State::Idle;
                    if let Some(c) = claimed {
                        return Poll::Ready(Some(Ok(task(c))));
                    }
                }
                State::Pausing(pause) => {
                    ready!(pause.as_mut().poll(cx));
                    self.state = State::Idle;
                }
                // Not reached: a worker polls for tasks only until it shuts down.
                State::Releasing(_) => return Poll::Pending,
            }
        }
    }

    /// At shutdown: a wait for the transport is dropped; a claim under way is
    /// finished and what it took is released (queued again, attempt not spent).
    fn poll_close(
        &mut self,
        cx: &mut Context<'_>,
        _: &WorkerContext,
    ) -> Poll<Result<(), Self::Error>> {
        loop {
            match std::mem::replace(&mut self.state, State::Idle) {
                State::Claiming(claiming) => {
                    let rt = self.rt.clone();
                    self.state = State::Releasing(Box::pin(async move {
                        if let Some(c) = claiming.await {
                            crate::workers::release_unstarted(&rt, &c).await;
                        }
                    }));
                }
                State::Releasing(mut releasing) => {
                    if releasing.as_mut().poll(cx).is_pending() {
                        self.state = State::Releasing(releasing);
                        return Poll::Pending;
                    }
                }
                State::Idle | State::Waiting(_) | State::Pausing(_) => {
                    return Poll::Ready(Ok(()));
                }
            }
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
async fn claim(rt: Runtime, d: Delivery) -> Option<Claim> {
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
