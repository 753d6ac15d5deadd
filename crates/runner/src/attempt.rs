//! One attempt as tower services under an apalis worker: [`RunKind`] runs the job's
//! kind (inputs, context, timeout, cancellation) and says how it went; [`Record`]
//! around it holds the claim while it runs (lease renewal, the cancel handle) and
//! writes the outcome to the record, conditional on the claim's token. apalis's
//! panic layer sits between the two, so a kind that panics fails its job instead of
//! taking the worker down.

use crate::backend::Claim;
use crate::ctx::JobCtx;
use crate::kind::JobError;
use crate::runtime::Runtime;
use crate::workers::{Abort, AbortReason};
use apalis_core::error::BoxDynError;
use apalis_core::task::Task;
use forklift_domain::{Job, JobId, JobState, now_ms};
use futures::future::BoxFuture;
use rand::Rng;
use std::task::{Context, Poll};
use std::time::Duration;
use tower::{Layer, Service};

/// How an attempt ended, before it is recorded.
pub enum Outcome {
    /// The kind finished; these outputs count.
    Succeeded(Vec<forklift_store::NewOutput>),
    /// The kind failed.
    Failed(JobError),
    /// The kind ran past its limit and was stopped.
    TimedOut(Duration),
    /// Stopped from outside (the abort handle says why).
    Aborted,
}

/// The innermost service: runs a claimed job's kind.
#[derive(Clone)]
pub struct RunKind {
    rt: Runtime,
}

impl RunKind {
    /// Runs kinds from `rt`'s registry.
    pub fn new(rt: Runtime) -> Self {
        Self { rt }
    }
}

impl Service<Task<Claim>> for RunKind {
    type Response = Outcome;
    type Error = std::convert::Infallible;
    type Future = BoxFuture<'static, Result<Outcome, Self::Error>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, task: Task<Claim>) -> Self::Future {
        let rt = self.rt.clone();
        let c = task.args;
        Box::pin(async move { Ok(run_attempt(&rt, &c.job, &c.token, &c.abort).await) })
    }
}

async fn run_attempt(rt: &Runtime, job: &Job, token: &str, abort: &Abort) -> Outcome {
    let Some(kind) = rt.registry().get(&job.kind).cloned() else {
        return Outcome::Failed(JobError::permanent(format!(
            "this worker cannot run {} jobs",
            job.kind
        )));
    };
    let mut inputs = Vec::with_capacity(job.input_file_ids.len());
    for id in &job.input_file_ids {
        match rt.store().get_file(*id).await {
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
        rt.clone(),
        job.clone(),
        inputs,
        token.to_owned(),
        abort.token().clone(),
    );
    // Each kind has its own limit, and a timed-out attempt is recorded as a retry
    // naming it: a per-kind timeout here rather than one tower timeout per queue.
    let timeout = kind.timeout();
    let result = tokio::select! {
        r = tokio::time::timeout(timeout, kind.run(&mut ctx)) => r,
        _ = abort.token().cancelled() => return Outcome::Aborted,
    };
    match result {
        _ if abort.token().is_cancelled() => Outcome::Aborted,
        Ok(Ok(())) => Outcome::Succeeded(std::mem::take(&mut ctx.outputs)),
        Ok(Err(JobError::Cancelled)) => Outcome::Aborted,
        Ok(Err(e)) => Outcome::Failed(e),
        Err(_) => {
            abort.token().cancel();
            Outcome::TimedOut(timeout)
        }
    }
}

/// Wraps a worker's service in [`Record`].
#[derive(Clone)]
pub struct RecordLayer {
    rt: Runtime,
}

impl RecordLayer {
    /// Records attempts on `rt`'s store.
    pub fn new(rt: Runtime) -> Self {
        Self { rt }
    }
}

impl<S> Layer<S> for RecordLayer {
    type Service = Record<S>;

    fn layer(&self, inner: S) -> Record<S> {
        Record {
            rt: self.rt.clone(),
            inner,
        }
    }
}

/// Holds a claim while the inner service runs it, then records the outcome. Its
/// response is the outcome's label for the metrics (`succeeded`, `retried`, …).
#[derive(Clone)]
pub struct Record<S> {
    rt: Runtime,
    inner: S,
}

impl<S> Service<Task<Claim>> for Record<S>
where
    S: Service<Task<Claim>, Response = Outcome>,
    S::Error: Into<BoxDynError>,
    S::Future: Send + 'static,
{
    type Response = &'static str;
    type Error = std::convert::Infallible;
    type Future = BoxFuture<'static, Result<&'static str, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // The inner services are always ready (the kind runner and the panic guard).
        match self.inner.poll_ready(cx) {
            Poll::Ready(_) => Poll::Ready(Ok(())),
            Poll::Pending => Poll::Pending,
        }
    }

    fn call(&mut self, task: Task<Claim>) -> Self::Future {
        let rt = self.rt.clone();
        let Claim {
            job,
            token,
            abort,
            slot,
        } = task.args.clone();
        tracing::info!(job_id = %job.id, kind = %job.kind, attempt = job.attempt, "job {} ({}) started, attempt {}", job.id, job.kind, job.attempt);
        rt.changed(job.clone());
        rt.running()
            .lock()
            .expect("running lock")
            .insert(job.id, abort.clone());
        let renewer = tokio::spawn(renew_lease(
            rt.clone(),
            job.id,
            token.clone(),
            abort.clone(),
        ));
        let started = std::time::Instant::now();
        let attempt = self.inner.call(task);
        Box::pin(async move {
            let outcome = match attempt.await {
                Ok(outcome) => outcome,
                Err(e) => {
                    let e: BoxDynError = e.into();
                    tracing::error!(job_id = %job.id, error = %e, "job {}: its kind failed unexpectedly: {e}", job.id);
                    Outcome::Failed(JobError::permanent(format!(
                        "the {} kind failed unexpectedly; the operator's logs have the details",
                        job.kind
                    )))
                }
            };
            let took = started.elapsed();
            renewer.abort();
            rt.running().lock().expect("running lock").remove(&job.id);
            let label = finish(&rt, &job, &token, outcome, abort.reason()).await;
            rt.metrics().observe_job(&job.kind, label, took);
            // The slot is free once the end is recorded.
            drop(slot);
            Ok(label)
        })
    }
}

/// Records the attempt's end, conditional on the claim still being ours.
async fn finish(
    rt: &Runtime,
    job: &Job,
    token: &str,
    outcome: Outcome,
    reason: Option<AbortReason>,
) -> &'static str {
    let store = rt.store();
    let now = now_ms();
    let result = match outcome {
        Outcome::Aborted => match reason {
            Some(AbortReason::Cancel) | None => store.finish_cancelled(job.id, token, now).await,
            Some(AbortReason::Release) => store.release(job.id, token, now).await,
            Some(AbortReason::Lost) => Ok(None),
        },
        Outcome::Succeeded(outputs) => store.succeed(job.id, token, &outputs, now).await,
        Outcome::Failed(JobError::Permanent(msg)) => store.fail(job.id, token, &msg, now).await,
        Outcome::Failed(JobError::Retryable(msg)) => retry_or_fail(rt, job, token, &msg).await,
        Outcome::Failed(JobError::Cancelled) => store.finish_cancelled(job.id, token, now).await,
        Outcome::TimedOut(t) => {
            let msg = format!(
                "the attempt took longer than this kind's limit of {}s",
                t.as_secs()
            );
            retry_or_fail(rt, job, token, &msg).await
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
                rt.changed(after.clone());
                rt.dispatch(&after).await;
            } else {
                rt.changed(after);
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
    rt: &Runtime,
    job: &Job,
    token: &str,
    msg: &str,
) -> Result<Option<Job>, forklift_store::StoreError> {
    let now = now_ms();
    if job.attempt >= job.max_attempts {
        let msg = format!("{msg} (gave up after {} attempts)", job.attempt);
        return rt.store().fail(job.id, token, &msg, now).await;
    }
    let delay = backoff(rt.config().retry_base, rt.config().retry_max, job.attempt);
    rt.store()
        .retry_later(job.id, token, msg, now + delay.as_millis() as i64, now)
        .await
}

/// Exponential backoff with jitter: base·2^(attempt-1), capped, then scaled by a
/// random factor in [0.5, 1) so that retries of many jobs spread out.
fn backoff(base: Duration, max: Duration, attempt: u32) -> Duration {
    let exp = base.saturating_mul(1u32 << attempt.saturating_sub(1).min(20));
    let capped = exp.min(max);
    capped.mul_f64(rand::rng().random_range(0.5..1.0))
}

/// Renews the claim's lease every third of the lease; trips the abort if the claim
/// is lost or its owner asked to cancel.
async fn renew_lease(rt: Runtime, id: JobId, token: String, abort: Abort) {
    let lease = rt.config().lease;
    let mut tick = tokio::time::interval(lease / 3);
    tick.tick().await;
    loop {
        tick.tick().await;
        let until = now_ms() + lease.as_millis() as i64;
        match rt.store().renew_lease(id, &token, until).await {
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
