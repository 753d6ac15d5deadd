//! What a handler gets for one attempt: parameters, inputs, progress, outputs,
//! cancellation and the bounded CPU pool.

use crate::kind::JobError;
use crate::runtime::Runtime;
use bytes::Bytes;
use forklift_blob::BlobError;
use forklift_domain::{Event, FileRecord, Job, now_ms};
use forklift_store::NewOutput;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// How often progress is written at most (the last one always is).
const PROGRESS_EVERY: Duration = Duration::from_millis(250);

/// One attempt's view of its job.
pub struct JobCtx {
    job: Job,
    inputs: Vec<FileRecord>,
    cancel: CancellationToken,
    rt: Runtime,
    pub(crate) outputs: Vec<NewOutput>,
    reporter: Progress,
    scratch: Option<tempfile::TempDir>,
}

/// Reports an attempt's progress; cheap to clone, so work running beside the handler
/// (a blocking task, a child process) can report while the context is borrowed.
#[derive(Clone)]
pub struct Progress {
    rt: Runtime,
    job_id: forklift_domain::JobId,
    token: String,
    last: std::sync::Arc<std::sync::Mutex<Option<Instant>>>,
}

impl Progress {
    /// Records progress (0-100) with a short note. Throttled to a few writes a second
    /// (100 always goes through); failures are logged, never fatal.
    pub async fn report(&self, percent: u32, message: impl Into<String>) {
        let percent = percent.min(100);
        {
            let mut last = self.last.lock().expect("progress lock");
            if let Some(at) = *last
                && percent < 100
                && at.elapsed() < PROGRESS_EVERY
            {
                return;
            }
            *last = Some(Instant::now());
        }
        let message = message.into();
        match self
            .rt
            .store()
            .set_progress(self.job_id, &self.token, percent, &message, now_ms())
            .await
        {
            Ok(Some(job)) => self.rt.bus().publish(Event::JobChanged(Box::new(job))),
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(job_id = %self.job_id, error = %e, "recording progress failed: {e}")
            }
        }
    }
}

impl JobCtx {
    pub(crate) fn new(
        rt: Runtime,
        job: Job,
        inputs: Vec<FileRecord>,
        token: String,
        cancel: CancellationToken,
    ) -> Self {
        let reporter = Progress {
            rt: rt.clone(),
            job_id: job.id,
            token: token.clone(),
            last: Default::default(),
        };
        Self {
            job,
            inputs,
            cancel,
            rt,
            outputs: Vec::new(),
            reporter,
            scratch: None,
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
    /// loops should check it; the runner also drops the attempt's future.
    pub fn cancellation(&self) -> &CancellationToken {
        &self.cancel
    }

    /// Reads a whole input into memory, refusing inputs over `limit` bytes with a
    /// message that names the limit.
    pub async fn input_bytes(&self, index: usize, limit: u64) -> Result<Bytes, JobError> {
        let file = self.input_within(index, limit)?;
        self.rt
            .blobs()
            .get_bytes(&file.blob_key, limit)
            .await
            .map_err(|e| input_error(file, e))
    }

    /// Reports progress (0-100) with a short note; see [`Progress::report`].
    pub async fn progress(&mut self, percent: u32, message: impl Into<String>) {
        self.reporter.report(percent, message).await;
    }

    /// A progress reporter to hand to work running beside the handler.
    pub fn reporter(&self) -> Progress {
        self.reporter.clone()
    }

    /// An input's content as a stream read from storage: for inputs of any size.
    pub async fn input_reader(
        &self,
        index: usize,
    ) -> Result<impl tokio::io::AsyncRead + Send + Unpin + 'static, JobError> {
        use futures::TryStreamExt;
        let file = self.input(index)?;
        let stream = self
            .rt
            .blobs()
            .get_stream(&file.blob_key)
            .await
            .map_err(|e| input_error(file, e))?;
        Ok(tokio_util::io::StreamReader::new(
            stream.map_err(std::io::Error::other),
        ))
    }

    /// This attempt's scratch directory, removed when the attempt ends.
    pub fn scratch_dir(&mut self) -> Result<std::path::PathBuf, JobError> {
        if self.scratch.is_none() {
            let base = &self.rt.config().scratch_dir;
            std::fs::create_dir_all(base)
                .and_then(|_| {
                    tempfile::Builder::new()
                        .prefix("forklift-job-")
                        .tempdir_in(base)
                })
                .map(|d| self.scratch = Some(d))
                .map_err(|e| {
                    JobError::retryable(format!("creating a scratch directory failed: {e}"))
                })?;
        }
        Ok(self
            .scratch
            .as_ref()
            .expect("just created")
            .path()
            .to_owned())
    }

    /// Copies an input into a file in the scratch directory (for tools that need a
    /// seekable file), refusing inputs over `limit` bytes.
    pub async fn input_to_file(
        &mut self,
        index: usize,
        limit: u64,
    ) -> Result<std::path::PathBuf, JobError> {
        self.input_within(index, limit)?;
        let path = self.scratch_dir()?.join(format!("input-{index}"));
        let mut reader = self.input_reader(index).await?;
        let mut out = tokio::fs::File::create(&path)
            .await
            .map_err(|e| JobError::retryable(format!("creating a scratch file failed: {e}")))?;
        tokio::io::copy(&mut reader, &mut out)
            .await
            .map_err(|e| JobError::retryable(format!("copying the input failed: {e}")))?;
        Ok(path)
    }

    fn input(&self, index: usize) -> Result<&FileRecord, JobError> {
        self.inputs
            .get(index)
            .ok_or_else(|| JobError::permanent(format!("the job has no input #{}", index + 1)))
    }

    /// The input's record, refusing inputs over `limit` bytes with a message naming it.
    fn input_within(&self, index: usize, limit: u64) -> Result<&FileRecord, JobError> {
        let file = self.input(index)?;
        if file.size_bytes > limit {
            return Err(JobError::permanent(format!(
                "the input {:?} is {} bytes, above this kind's limit of {limit} bytes",
                file.name, file.size_bytes
            )));
        }
        Ok(file)
    }

    /// Streams a file into an output (see [`JobCtx::put_output`]).
    pub async fn put_output_file(
        &mut self,
        name: &str,
        content_type: &str,
        path: &std::path::Path,
    ) -> Result<(), JobError> {
        let file = tokio::fs::File::open(path)
            .await
            .map_err(|e| JobError::retryable(format!("reading output {name:?} failed: {e}")))?;
        let key = format!("jobs/{}/{}", self.job.id, name);
        let stored = self
            .rt
            .blobs()
            .put_stream(&key, tokio_util::io::ReaderStream::new(file), u64::MAX)
            .await
            .map_err(|e| JobError::retryable(format!("storing output {name:?} failed: {e}")))?;
        self.record_output(name, content_type, stored, key);
        Ok(())
    }

    fn record_output(
        &mut self,
        name: &str,
        content_type: &str,
        stored: forklift_blob::Stored,
        key: String,
    ) {
        self.outputs.retain(|o| o.name != name);
        self.outputs.push(NewOutput {
            name: name.to_owned(),
            content_type: content_type.to_owned(),
            size_bytes: stored.size_bytes,
            sha256: stored.sha256,
            blob_key: key,
        });
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
            .rt
            .blobs()
            .put_bytes(&key, bytes)
            .await
            .map_err(|e| JobError::retryable(format!("storing output {name:?} failed: {e}")))?;
        self.record_output(name, content_type, stored, key);
        Ok(())
    }

    /// Runs CPU-heavy work off the async runtime, on a pool bounded to the configured
    /// number of CPU threads. A panic in `f` fails the attempt, not the worker.
    ///
    /// If the attempt ends first (cancelled, timed out, released at shutdown), the
    /// thread runs `f` to its end regardless, still counted against the pool: for
    /// work longer than a moment, use [`JobCtx::blocking_stoppable`].
    pub async fn blocking<T, F>(&self, f: F) -> Result<T, JobError>
    where
        F: FnOnce() -> Result<T, JobError> + Send + 'static,
        T: Send + 'static,
    {
        let permit = self
            .rt
            .cpu()
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| JobError::Cancelled)?;
        let work = tokio::task::spawn_blocking(move || {
            // Held by the thread, not the future: a dropped attempt whose work is
            // still running keeps its place in the pool until the work ends.
            let _permit = permit;
            f()
        });
        match work.await {
            Ok(r) => r,
            Err(e) if e.is_panic() => Err(JobError::permanent(
                "the worker hit an internal error processing this input",
            )),
            Err(_) => Err(JobError::Cancelled),
        }
    }

    /// [`JobCtx::blocking`] for long work that looks at `stop` now and then and
    /// returns early once it is set. It is set when the attempt's cancellation token
    /// trips or the attempt stops waiting for the work (cancelled, timed out, the
    /// worker shutting down), so the thread does not run on after its job ended.
    pub async fn blocking_stoppable<T, F>(&self, f: F) -> Result<T, JobError>
    where
        F: FnOnce(&AtomicBool) -> Result<T, JobError> + Send + 'static,
        T: Send + 'static,
    {
        /// Sets the flag when the waiting future goes, however it goes.
        struct StopOnDrop(Arc<AtomicBool>);
        impl Drop for StopOnDrop {
            fn drop(&mut self) {
                self.0.store(true, Ordering::Relaxed);
            }
        }
        let stop = Arc::new(AtomicBool::new(false));
        let _on_drop = StopOnDrop(stop.clone());
        let work = self.blocking({
            let stop = stop.clone();
            move || f(&stop)
        });
        tokio::pin!(work);
        let cancel = self.cancellation().clone();
        tokio::select! {
            r = &mut work => r,
            () = cancel.cancelled() => {
                stop.store(true, Ordering::Relaxed);
                // The work sees the flag soon; its answer (Cancelled, usually) is the attempt's.
                work.await
            }
        }
    }
}

/// What a storage failure reading an input means for the attempt.
fn input_error(file: &FileRecord, e: BlobError) -> JobError {
    match e {
        BlobError::NotFound(_) => JobError::permanent(format!(
            "the content of input {:?} is missing from storage",
            file.name
        )),
        BlobError::TooLarge { limit } => JobError::permanent(format!(
            "the input {:?} is above this kind's limit of {limit} bytes",
            file.name
        )),
        e => JobError::retryable(format!("reading the input failed: {e}")),
    }
}
