//! What the Files and Jobs services do, whatever carries them: submit (validated by
//! the job's kind, then recorded and published), read, list, cancel, retry and watch
//! jobs; upload, read, list and delete files — every read checked against its owner.

use crate::auth::Caller;
use crate::error::ApiError;
use bytes::Bytes;
use forklift_blob::BlobError;
use forklift_domain::{Event, FileId, FileRecord, Job, JobId, JobState, Millis, now_ms};
use forklift_runner::{Kind, Registry, Runtime, Violation};
use forklift_store::{CancelOutcome, JobInsert, JobQuery, NewFile, Store};
use futures::Stream;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{broadcast, mpsc};
use tokio_util::sync::CancellationToken;

/// How often a Watch stream re-reads its job, in case an event was lost.
pub(crate) const WATCH_RESYNC: Duration = Duration::from_secs(5);

/// A job's parameters as a client submits them, kind already identified.
#[derive(Debug, Clone)]
pub struct SubmitRequest {
    /// The kind's name.
    pub kind: String,
    /// The parameters' JSON form, not yet validated.
    pub params: serde_json::Value,
    /// Prefix for violation field names (`params.image_thumbnail.` over gRPC).
    pub field_prefix: String,
    /// Input file ids as given.
    pub input_file_ids: Vec<String>,
    /// Optional retry-safety key.
    pub idempotency_key: String,
    /// -100 to 100.
    pub priority: i32,
    /// Optional earliest start.
    pub not_before: Option<Millis>,
    /// 0 for the kind's default.
    pub max_attempts: u32,
}

/// The API's logic, whatever carries it (gRPC here); cheap to clone.
#[derive(Clone)]
pub struct Api {
    inner: Arc<Inner>,
}

struct Inner {
    rt: Runtime,
    max_upload_bytes: u64,
    /// Tripped at shutdown: ends Watch streams so servers can stop.
    closing: CancellationToken,
}

impl Api {
    /// The API over the runner's parts, accepting uploads of up to `max_upload_bytes`.
    pub fn new(rt: Runtime, max_upload_bytes: u64) -> Self {
        Self {
            inner: Arc::new(Inner {
                rt,
                max_upload_bytes,
                closing: CancellationToken::new(),
            }),
        }
    }

    /// The runner's parts: store, storage, transport, bus, kinds, settings, metrics.
    pub fn runtime(&self) -> &Runtime {
        &self.inner.rt
    }
    pub(crate) fn store(&self) -> &Store {
        self.inner.rt.store()
    }
    pub(crate) fn registry(&self) -> &Registry {
        self.inner.rt.registry()
    }
    /// Trips when the API shuts its streams down (at the end of a graceful shutdown).
    pub fn closing(&self) -> &CancellationToken {
        &self.inner.closing
    }

    /// Ends every open Watch stream (at shutdown, so servers can stop).
    pub fn close_streams(&self) {
        self.inner.closing.cancel();
    }

    // ---- jobs ----

    /// Validates and records a job, then publishes it.
    pub async fn submit(&self, caller: &Caller, req: SubmitRequest) -> Result<Job, ApiError> {
        let kind: &Arc<dyn Kind> = self.registry().get(&req.kind).ok_or_else(|| {
            ApiError::invalid("params", format!("unknown job kind {:?}", req.kind))
        })?;
        if let Err(reason) = kind.available() {
            return Err(ApiError::FailedPrecondition(format!(
                "{} jobs cannot run on this server: {reason}",
                kind.name()
            )));
        }
        let mut violations = Vec::new();
        let params = match kind.validate(req.params, req.input_file_ids.len()) {
            Ok(p) => Some(p),
            Err(vs) => {
                for v in vs {
                    let field = if v.field == "input_file_ids" {
                        v.field
                    } else {
                        format!("{}{}", req.field_prefix, v.field)
                    };
                    violations.push(Violation::new(field, v.description));
                }
                None
            }
        };
        let mut inputs = Vec::new();
        for (i, raw) in req.input_file_ids.iter().enumerate() {
            match raw.parse::<FileId>() {
                Ok(id) => inputs.push(id),
                Err(_) => violations.push(Violation::new(
                    format!("input_file_ids[{i}]"),
                    format!("{raw:?} is not a file id"),
                )),
            }
        }
        if req.idempotency_key.len() > 200 {
            violations.push(Violation::new("idempotency_key", "at most 200 characters"));
        }
        if !(-100..=100).contains(&req.priority) {
            violations.push(Violation::new("priority", "must be between -100 and 100"));
        }
        if req.max_attempts > 20 {
            violations.push(Violation::new(
                "max_attempts",
                "must be between 1 and 20 (0 for the default)",
            ));
        }
        let Some(params) = params.filter(|_| violations.is_empty()) else {
            return Err(ApiError::InvalidArgument(violations));
        };
        for id in &inputs {
            self.owned_file(caller, *id).await?;
        }
        let now = now_ms();
        let new = JobInsert {
            id: JobId::new(),
            owner_id: caller.user_id,
            kind: kind.name().to_owned(),
            queue: kind.queue().to_owned(),
            params,
            input_file_ids: inputs,
            priority: req.priority,
            max_attempts: if req.max_attempts == 0 {
                kind.default_max_attempts()
            } else {
                req.max_attempts
            },
            run_at: req.not_before.unwrap_or(now).max(now),
            idempotency_key: Some(req.idempotency_key).filter(|k| !k.is_empty()),
        };
        let (job, created) = self.store().insert_job(&new, now).await?;
        if created {
            tracing::info!(job_id = %job.id, kind = %job.kind, "job {} ({}) queued", job.id, job.kind);
            self.inner.rt.changed(job.clone());
            self.inner.rt.dispatch(&job).await;
        }
        Ok(job)
    }

    /// One of the caller's jobs (any user's, for an admin).
    pub async fn get_job(&self, caller: &Caller, id: &str) -> Result<Job, ApiError> {
        let id: JobId = id
            .parse()
            .map_err(|_| ApiError::invalid("id", "not a job id"))?;
        self.owned_job(caller, id).await
    }

    /// The job if the caller owns it or is an admin; otherwise NOT_FOUND, exactly as if
    /// it did not exist.
    async fn owned_job(&self, caller: &Caller, id: JobId) -> Result<Job, ApiError> {
        match self.store().get_job(id).await? {
            Some(job) if job.owner_id == caller.user_id || caller.is_admin() => Ok(job),
            _ => Err(ApiError::NotFound(format!("job {id}"))),
        }
    }

    /// A page of the caller's jobs (every user's, for an admin asking for
    /// `all_users`), newest first, and the next page's token.
    pub async fn list_jobs(
        &self,
        caller: &Caller,
        page_size: i32,
        page_token: &str,
        states: Vec<JobState>,
        kind: Option<String>,
        all_users: bool,
    ) -> Result<(Vec<Job>, String), ApiError> {
        let owner = if all_users {
            caller.require_admin("listing every user's jobs (all_users)")?;
            None
        } else {
            Some(caller.user_id)
        };
        let limit = page_limit(page_size)?;
        let before = page_after(page_token)?;
        let mut jobs = self
            .store()
            .list_jobs(&JobQuery {
                owner,
                states,
                kind,
                before,
                limit: limit + 1,
            })
            .await?;
        let next = next_token(&mut jobs, limit, |j| j.id.to_string());
        Ok((jobs, next))
    }

    /// Cancels one of the caller's jobs (any user's, for an admin).
    pub async fn cancel_job(&self, caller: &Caller, id: &str) -> Result<Job, ApiError> {
        let job = self.get_job(caller, id).await?;
        match self.store().cancel(job.id, now_ms()).await? {
            CancelOutcome::Cancelled(job) => {
                tracing::info!(job_id = %job.id, "job {} cancelled while queued", job.id);
                self.inner.rt.changed(job.clone());
                Ok(job)
            }
            CancelOutcome::Requested(job) => {
                tracing::info!(job_id = %job.id, "cancellation of running job {} requested", job.id);
                self.inner.rt.changed(job.clone());
                self.inner.rt.bus().publish(Event::CancelRequested(job.id));
                Ok(job)
            }
            CancelOutcome::AlreadyFinal(job) => Err(ApiError::FailedPrecondition(format!(
                "job {} is already {}",
                job.id, job.state
            ))),
            CancelOutcome::NotFound => Err(ApiError::NotFound(format!("job {id}"))),
        }
    }

    /// Queues one of the caller's failed or cancelled jobs (any user's, for an admin)
    /// again.
    pub async fn retry_job(&self, caller: &Caller, id: &str) -> Result<Job, ApiError> {
        let job = self.get_job(caller, id).await?;
        match self.store().retry(job.id, now_ms()).await? {
            Some(job) => {
                tracing::info!(job_id = %job.id, user_id = %caller.user_id, "job {} queued again by user {}", job.id, caller.user_id);
                self.inner.rt.changed(job.clone());
                self.inner.rt.dispatch(&job).await;
                Ok(job)
            }
            None => Err(ApiError::FailedPrecondition(format!(
                "job {} is {}: only failed or cancelled jobs can be retried",
                job.id, job.state
            ))),
        }
    }

    /// The caller's job (any user's, for an admin) now, then every change, with no gap
    /// between the two; ends after a final state.
    pub async fn watch_job(
        &self,
        caller: &Caller,
        id: &str,
    ) -> Result<impl Stream<Item = Job> + Send + 'static, ApiError> {
        let id: JobId = id
            .parse()
            .map_err(|_| ApiError::invalid("id", "not a job id"))?;
        // Subscribe before reading the snapshot: anything that changes after the read
        // is in the subscription.
        let mut rx = self.inner.rt.bus().subscribe();
        let job = self.owned_job(caller, id).await?;
        let (tx, out) = mpsc::channel(16);
        let api = self.clone();
        tokio::spawn(async move {
            let mut last = job.version;
            let done = job.state.is_final();
            if tx.send(job).await.is_err() || done {
                return;
            }
            // Events are best-effort across processes: re-read the record now and then
            // so that a lost event can delay an update but never lose it.
            let mut resync = tokio::time::interval(WATCH_RESYNC);
            resync.tick().await;
            loop {
                let next = tokio::select! {
                    _ = api.closing().cancelled() => return,
                    _ = tx.closed() => return,
                    ev = rx.recv() => ev,
                    _ = resync.tick() => Ok(Event::Resync),
                };
                let job = match next {
                    Ok(Event::JobChanged(j)) if j.id == id && j.version > last => *j,
                    Ok(Event::JobChanged(_) | Event::CancelRequested(_)) => continue,
                    Ok(Event::Resync) | Err(broadcast::error::RecvError::Lagged(_)) => {
                        // Fell behind: the record has everything we may have missed.
                        match api.store().get_job(id).await {
                            Ok(Some(j)) if j.version > last => j,
                            Ok(_) => continue,
                            Err(_) => return,
                        }
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                };
                last = job.version;
                let done = job.state.is_final();
                if tx.send(job).await.is_err() || done {
                    return;
                }
            }
        });
        Ok(tokio_stream::wrappers::ReceiverStream::new(out))
    }

    // ---- files ----

    /// Streams an upload to storage and records it.
    pub async fn upload_file<S>(
        &self,
        caller: &Caller,
        name: &str,
        content_type: &str,
        chunks: S,
    ) -> Result<FileRecord, ApiError>
    where
        S: Stream<Item = Result<Bytes, String>> + Send,
    {
        let name = name.trim();
        if name.is_empty()
            || name.len() > 255
            || name.contains(['/', '\\'])
            || name.chars().any(|c| c.is_control() || is_format_char(c))
        {
            return Err(ApiError::invalid(
                "metadata.name",
                "a file name of 1 to 255 characters without slashes, control or \
                 direction-changing characters is required",
            ));
        }
        let content_type = if content_type.is_empty() {
            guess_content_type(name).to_owned()
        } else if is_media_type(content_type) {
            content_type.to_ascii_lowercase()
        } else {
            return Err(ApiError::invalid(
                "metadata.content_type",
                "a media type such as image/png (type/subtype, at most 127 characters) is required",
            ));
        };
        let id = FileId::new();
        let key = format!("uploads/{id}");
        let limit = self.inner.max_upload_bytes;
        let stored = match self.inner.rt.blobs().put_stream(&key, chunks, limit).await {
            Ok(s) => s,
            Err(BlobError::TooLarge { limit }) => {
                return Err(ApiError::invalid(
                    "chunk",
                    format!("the file is larger than this server's upload limit of {limit} bytes"),
                ));
            }
            Err(BlobError::Source(e)) => return Err(ApiError::invalid("chunk", e)),
            Err(e) => return Err(ApiError::internal("storing upload", e)),
        };
        let new = NewFile {
            owner_id: caller.user_id,
            name: name.to_owned(),
            content_type,
            size_bytes: stored.size_bytes,
            sha256: stored.sha256,
            blob_key: key.clone(),
        };
        match self.store().insert_file(id, &new, now_ms()).await {
            Ok(f) => {
                tracing::info!(file_id = %f.id, size = f.size_bytes, "file {} stored ({} bytes)", f.id, f.size_bytes);
                Ok(f)
            }
            Err(e) => {
                self.inner.rt.blobs().delete(&key).await.ok();
                Err(e.into())
            }
        }
    }

    /// One of the caller's files.
    pub async fn get_file(&self, caller: &Caller, id: &str) -> Result<FileRecord, ApiError> {
        let id: FileId = id
            .parse()
            .map_err(|_| ApiError::invalid("id", "not a file id"))?;
        self.owned_file(caller, id).await
    }

    async fn owned_file(&self, caller: &Caller, id: FileId) -> Result<FileRecord, ApiError> {
        match self.store().get_file(id).await? {
            Some(f) if f.owner_id == caller.user_id => Ok(f),
            _ => Err(ApiError::NotFound(format!("file {id}"))),
        }
    }

    /// One of the caller's files and its content as a stream.
    pub async fn open_file(
        &self,
        caller: &Caller,
        id: &str,
    ) -> Result<
        (
            FileRecord,
            impl Stream<Item = Result<Bytes, BlobError>> + Send + 'static,
        ),
        ApiError,
    > {
        let file = self.get_file(caller, id).await?;
        let stream = self
            .inner
            .rt
            .blobs()
            .get_stream(&file.blob_key)
            .await
            .map_err(|e| ApiError::internal("opening file content", e))?;
        Ok((file, stream))
    }

    /// A page of the caller's files, newest first, and the next page's token.
    pub async fn list_files(
        &self,
        caller: &Caller,
        page_size: i32,
        page_token: &str,
    ) -> Result<(Vec<FileRecord>, String), ApiError> {
        let limit = page_limit(page_size)?;
        let before = page_after(page_token)?;
        let mut files = self
            .store()
            .list_files(caller.user_id, before, limit + 1)
            .await?;
        let next = next_token(&mut files, limit, |f| f.id.to_string());
        Ok((files, next))
    }

    /// Deletes one of the caller's files and its content.
    pub async fn delete_file(&self, caller: &Caller, id: &str) -> Result<(), ApiError> {
        let file = self.get_file(caller, id).await?;
        if let Some(f) = self.store().delete_file(file.id).await? {
            self.inner
                .rt
                .blobs()
                .delete(&f.blob_key)
                .await
                .map_err(|e| ApiError::internal("deleting file content", e))?;
        }
        Ok(())
    }
}

fn page_limit(page_size: i32) -> Result<u32, ApiError> {
    match page_size {
        0 => Ok(50),
        1..=1000 => Ok(page_size as u32),
        _ => Err(ApiError::invalid(
            "page_size",
            "must be between 1 and 1000 (0 for 50)",
        )),
    }
}

fn page_after<Id: std::str::FromStr>(token: &str) -> Result<Option<Id>, ApiError> {
    if token.is_empty() {
        return Ok(None);
    }
    token
        .parse()
        .map(Some)
        .map_err(|_| ApiError::invalid("page_token", "not a token from a previous page"))
}

/// Trims a page fetched with one extra row; the token is the last kept row's id.
fn next_token<T>(rows: &mut Vec<T>, limit: u32, id: impl Fn(&T) -> String) -> String {
    if rows.len() > limit as usize {
        rows.truncate(limit as usize);
        rows.last().map(id).unwrap_or_default()
    } else {
        String::new()
    }
}

/// Invisible formatting characters (Unicode's Cf category, the ones text uses): bidi
/// overrides and isolates could make `exe.jpg` of `gpj.exe` on a page, zero-width ones
/// make two names look alike.
fn is_format_char(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{061C}' | '\u{180E}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{2064}' | '\u{2066}'..='\u{206F}' | '\u{FEFF}' | '\u{FFF9}'..='\u{FFFB}')
}

/// `type/subtype` with RFC 6838's restricted name characters, without parameters, at
/// most 127 characters.
fn is_media_type(s: &str) -> bool {
    let name = |p: &str| {
        !p.is_empty()
            && p.len() <= 63
            && p.starts_with(|c: char| c.is_ascii_alphanumeric())
            && p.chars()
                .all(|c| c.is_ascii_alphanumeric() || "!#$&-^_.+".contains(c))
    };
    s.len() <= 127 && matches!(s.split_once('/'), Some((t, st)) if name(t) && name(st))
}

/// A media type from a file name's extension, for uploads that do not say.
pub fn guess_content_type(name: &str) -> &'static str {
    let ext = name
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    match ext.as_str() {
        "jpg" | "jpeg" => "image/jpeg",
        "png" => "image/png",
        "webp" => "image/webp",
        "gif" => "image/gif",
        "tif" | "tiff" => "image/tiff",
        "csv" => "text/csv",
        "json" => "application/json",
        "txt" => "text/plain",
        "mp4" => "video/mp4",
        "mov" => "video/quicktime",
        "webm" => "video/webm",
        _ => "application/octet-stream",
    }
}
