//! What a handler gets for one attempt: parameters, inputs, progress, outputs,
//! cancellation and the bounded CPU pool.

use crate::engine::Engine;
use crate::kind::JobError;
use bytes::Bytes;
use forklift_blob::BlobError;
use forklift_domain::{Event, FileRecord, Job, now_ms};
use forklift_store::NewOutput;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// How often progress is written at most (the last one always is).
const PROGRESS_EVERY: Duration = Duration::from_millis(250);

/// One attempt's view of its job.
pub struct JobCtx {
    job: Job,
    inputs: Vec<FileRecord>,
    cancel: CancellationToken,
    engine: Engine,
    token: String,
    pub(crate) outputs: Vec<NewOutput>,
    last_progress: Option<Instant>,
}

impl JobCtx {
    pub(crate) fn new(
        engine: Engine,
        job: Job,
        inputs: Vec<FileRecord>,
        token: String,
        cancel: CancellationToken,
    ) -> Self {
        Self {
            job,
            inputs,
            cancel,
            engine,
            token,
            outputs: Vec::new(),
            last_progress: None,
        }
    }

    /// The job as it was claimed (`attempt` counts this attempt).
    pub fn job(&self) -> &Job {
        &self.job
    }

    /// The parameters, as validated at submit, in the kind's own type.
    pub fn params<P: serde::de::DeserializeOwned>(&self) -> Result<P, JobError> {
        serde_json::from_value(self.job.params.clone())
            .map_err(|e| JobError::permanent(format!("the stored parameters do not parse: {e}")))
    }

    /// The input files' records.
    pub fn inputs(&self) -> &[FileRecord] {
        &self.inputs
    }

    /// Tripped when the job is cancelled, released at shutdown, or times out. Long
    /// loops should check it; the engine also drops the attempt's future.
    pub fn cancellation(&self) -> &CancellationToken {
        &self.cancel
    }

    /// Reads a whole input into memory, refusing inputs over `limit` bytes with a
    /// message that names the limit.
    pub async fn input_bytes(&self, index: usize, limit: u64) -> Result<Bytes, JobError> {
        let file = self
            .inputs
            .get(index)
            .ok_or_else(|| JobError::permanent(format!("the job has no input #{}", index + 1)))?;
        if file.size_bytes > limit {
            return Err(JobError::permanent(format!(
                "the input {:?} is {} bytes, above this kind's limit of {} bytes",
                file.name, file.size_bytes, limit
            )));
        }
        match self.engine.blobs().get_bytes(&file.blob_key, limit).await {
            Ok(b) => Ok(b),
            Err(BlobError::NotFound(_)) => Err(JobError::permanent(format!(
                "the content of input {:?} is missing from storage",
                file.name
            ))),
            Err(BlobError::TooLarge { limit }) => Err(JobError::permanent(format!(
                "the input {:?} is above this kind's limit of {limit} bytes",
                file.name
            ))),
            Err(e) => Err(JobError::retryable(format!(
                "reading the input failed: {e}"
            ))),
        }
    }

    /// Reports progress (0-100) with a short note. Throttled: at most a few writes a
    /// second; failures to record progress are logged, never fatal.
    pub async fn progress(&mut self, percent: u32, message: impl Into<String>) {
        let percent = percent.min(100);
        if let Some(at) = self.last_progress
            && percent < 100
            && at.elapsed() < PROGRESS_EVERY
        {
            return;
        }
        self.last_progress = Some(Instant::now());
        let message = message.into();
        match self
            .engine
            .store()
            .set_progress(self.job.id, &self.token, percent, &message, now_ms())
            .await
        {
            Ok(Some(job)) => self.engine.bus().publish(Event::JobChanged(Box::new(job))),
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(job_id = %self.job.id, error = %e, "recording progress failed: {e}")
            }
        }
    }

    /// Stores an output under a key derived from the job id and `name`, so a re-run
    /// replaces it. It becomes a file of the job's owner when the attempt succeeds.
    pub async fn put_output(
        &mut self,
        name: &str,
        content_type: &str,
        bytes: Bytes,
    ) -> Result<(), JobError> {
        let key = format!("jobs/{}/{}", self.job.id, name);
        let stored = self
            .engine
            .blobs()
            .put_bytes(&key, bytes)
            .await
            .map_err(|e| JobError::retryable(format!("storing output {name:?} failed: {e}")))?;
        self.outputs.retain(|o| o.name != name);
        self.outputs.push(NewOutput {
            name: name.to_owned(),
            content_type: content_type.to_owned(),
            size_bytes: stored.size_bytes,
            sha256: stored.sha256,
            blob_key: key,
        });
        Ok(())
    }

    /// Runs CPU-heavy work off the async runtime, on a pool bounded to the configured
    /// number of CPU threads. A panic in `f` fails the attempt, not the worker.
    pub async fn blocking<T, F>(&self, f: F) -> Result<T, JobError>
    where
        F: FnOnce() -> Result<T, JobError> + Send + 'static,
        T: Send + 'static,
    {
        let _permit = self
            .engine
            .cpu()
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| JobError::Cancelled)?;
        match tokio::task::spawn_blocking(f).await {
            Ok(r) => r,
            Err(e) if e.is_panic() => Err(JobError::permanent(
                "the worker hit an internal error processing this input",
            )),
            Err(_) => Err(JobError::Cancelled),
        }
    }
}
