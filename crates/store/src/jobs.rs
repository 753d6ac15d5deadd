//! Job records and their conditional transitions.

use crate::{Result, Store, StoreError};
use forklift_db::{Arg, Atomic, Cols, Conn, Query, Row, corrupt, q};
use forklift_domain::{FileId, Job, JobId, JobOutput, JobState, Millis, UserId};

/// The columns [`job_from_row`] reads, in its order (that of [`Job`]'s fields).
macro_rules! job_columns {
    () => {
        "id, owner_id, kind, queue, params, input_file_ids, state, priority, attempt, \
         max_attempts, run_at, lease_until, worker, progress, progress_message, error, outputs, \
         cancel_requested, idempotency_key, version, created_at, updated_at, started_at, \
         finished_at"
    };
}

/// One conditional update of a running job, matched by its id (`$1`) and claim token
/// (`$2`), returning the job: `running_update!("state = 'failed', error = $3")`.
macro_rules! running_update {
    ($set:literal) => {
        concat!(
            "UPDATE jobs SET ",
            $set,
            ", version = version + 1
             WHERE id = $1 AND state = 'running' AND lease_token = $2 RETURNING ",
            job_columns!()
        )
    };
}

/// A validated job about to be recorded as `queued`.
#[derive(Debug, Clone)]
pub struct JobInsert {
    /// Its id.
    pub id: JobId,
    /// Who submits it.
    pub owner_id: UserId,
    /// The kind's name.
    pub kind: String,
    /// The kind's queue.
    pub queue: String,
    /// Validated parameters.
    pub params: serde_json::Value,
    /// The files it works on (already checked to belong to the owner).
    pub input_file_ids: Vec<FileId>,
    /// Higher runs first.
    pub priority: i32,
    /// Attempts allowed.
    pub max_attempts: u32,
    /// Not before this time.
    pub run_at: Millis,
    /// The client's retry-safety key.
    pub idempotency_key: Option<String>,
}

/// A job a worker now holds, with the token every later change must present.
#[derive(Debug, Clone)]
pub struct Claim {
    /// The job as it is now (`running`).
    pub job: Job,
    /// The claim's token.
    pub token: String,
}

/// An output file a finished attempt produced.
#[derive(Debug, Clone)]
pub struct NewOutput {
    /// The output's name within the job.
    pub name: String,
    /// Media type.
    pub content_type: String,
    /// Content length.
    pub size_bytes: u64,
    /// Hex SHA-256.
    pub sha256: String,
    /// Object storage key (derived from job id and output name).
    pub blob_key: String,
}

/// What a cancel did.
#[derive(Debug, Clone)]
pub enum CancelOutcome {
    /// The job was queued and is now cancelled.
    Cancelled(Job),
    /// The job is running; cancellation is asked of its worker.
    Requested(Job),
    /// The job is already final.
    AlreadyFinal(Job),
    /// No such job.
    NotFound,
}

/// Jobs whose worker went away, put back in order.
#[derive(Debug, Default)]
pub struct Recovered {
    /// Queued again, to be published.
    pub requeued: Vec<Job>,
    /// Out of attempts: failed.
    pub failed: Vec<Job>,
}

/// What it takes to publish a queued job again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedJob {
    /// Its id.
    pub id: JobId,
    /// Its kind's queue.
    pub queue: String,
    /// Higher runs first.
    pub priority: i32,
    /// Not before this time.
    pub run_at: Millis,
}

/// Which jobs to list.
#[derive(Debug, Clone, Default)]
pub struct JobQuery {
    /// Only this owner's (None: everyone's, for admins).
    pub owner: Option<UserId>,
    /// Only these states (empty: all).
    pub states: Vec<JobState>,
    /// Only this kind.
    pub kind: Option<String>,
    /// Only jobs older than this one (the page token).
    pub before: Option<JobId>,
    /// At most this many.
    pub limit: u32,
}

/// How many jobs of one queue one worker runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunningCount {
    /// The queue.
    pub queue: String,
    /// The worker holding them (None only for rows written by something else).
    pub worker: Option<String>,
    /// How many.
    pub count: i64,
}

impl Store {
    /// Records a new queued job. With an idempotency key already used by the same owner,
    /// returns the existing job and `false` instead (or an error if it differs).
    pub async fn insert_job(&self, new: &JobInsert, now: Millis) -> Result<(Job, bool)> {
        let inputs = serde_json::to_string(&new.input_file_ids).map_err(corrupt)?;
        let q = q!(
            concat!(
                "INSERT INTO jobs (id, owner_id, kind, queue, params, input_file_ids, state,
                    priority, max_attempts, run_at, idempotency_key, created_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, 'queued', $7, $8, $9, $10, $11, $11)
                 ON CONFLICT (owner_id, idempotency_key) DO NOTHING
                 RETURNING ",
                job_columns!()
            ),
            new.id.to_string(),
            new.owner_id.to_string(),
            &new.kind,
            &new.queue,
            new.params.to_string(),
            inputs,
            i64::from(new.priority),
            i64::from(new.max_attempts),
            new.run_at,
            new.idempotency_key.clone(),
            now,
        );
        if let Some(job) = self.db.write().optional(q, job_from_row).await? {
            return Ok((job, true));
        }
        let q = q!(
            concat!(
                "SELECT ",
                job_columns!(),
                " FROM jobs WHERE owner_id = $1 AND idempotency_key = $2"
            ),
            new.owner_id.to_string(),
            new.idempotency_key.clone(),
        );
        let existing = self.db.read().one(q, job_from_row).await?;
        if existing.kind != new.kind
            || existing.params != new.params
            || existing.input_file_ids != new.input_file_ids
        {
            return Err(StoreError::IdempotencyConflict);
        }
        Ok((existing, false))
    }

    /// A job by id, whoever owns it (callers check the owner).
    pub async fn get_job(&self, id: JobId) -> Result<Option<Job>> {
        let q = q!(
            concat!("SELECT ", job_columns!(), " FROM jobs WHERE id = $1"),
            id.to_string()
        );
        Ok(self.db.read().optional(q, job_from_row).await?)
    }

    /// A page of jobs, newest first.
    pub async fn list_jobs(&self, f: &JobQuery) -> Result<Vec<Job>> {
        // `$n` placeholders numbered by hand: they are what both backends accept.
        let mut sql = String::from(concat!("SELECT ", job_columns!(), " FROM jobs WHERE 1 = 1"));
        let mut args = Vec::new();
        let mut param = |arg: Arg| {
            args.push(arg);
            format!("${}", args.len())
        };
        if let Some(owner) = f.owner {
            sql += &format!(" AND owner_id = {}", param(owner.to_string().into()));
        }
        if !f.states.is_empty() {
            let ps: Vec<String> = f
                .states
                .iter()
                .map(|st| param(st.as_str().into()))
                .collect();
            sql += &format!(" AND state IN ({})", ps.join(", "));
        }
        if let Some(kind) = &f.kind {
            sql += &format!(" AND kind = {}", param(kind.into()));
        }
        if let Some(before) = f.before {
            sql += &format!(" AND id < {}", param(before.to_string().into()));
        }
        sql += &format!(
            " ORDER BY id DESC LIMIT {}",
            param(i64::from(f.limit).into())
        );
        let q = Query {
            sql: sql.into(),
            args,
        };
        Ok(self.db.read().all(q, job_from_row).await?)
    }

    /// The owner's jobs that changed at or after `since`, oldest change first (ties in
    /// id order), at most `limit`. `after` continues a previous page: of the jobs that
    /// changed exactly at `since`, only those with a greater id are returned (pass the
    /// last row's `updated_at` and id).
    pub async fn jobs_updated_since(
        &self,
        owner: UserId,
        since: Millis,
        after: Option<JobId>,
        limit: u32,
    ) -> Result<Vec<Job>> {
        // Ids are UUID text, so the empty string sorts before every one of them.
        let after = after.map(|id| id.to_string()).unwrap_or_default();
        let q = q!(
            concat!(
                "SELECT ",
                job_columns!(),
                " FROM jobs
                 WHERE owner_id = $1 AND (updated_at > $2 OR (updated_at = $2 AND id > $3))
                 ORDER BY updated_at, id LIMIT $4"
            ),
            owner.to_string(),
            since,
            after,
            i64::from(limit),
        );
        Ok(self.db.read().all(q, job_from_row).await?)
    }

    /// How many jobs run now, per queue and worker (for the admin console).
    pub async fn running_counts(&self) -> Result<Vec<RunningCount>> {
        let q = q!(
            "SELECT queue, worker, COUNT(*) AS n FROM jobs WHERE state = 'running'
             GROUP BY queue, worker ORDER BY queue, worker"
        );
        Ok(self
            .db
            .read()
            .all(q, |r| {
                let mut c = Cols::new(r);
                Ok(RunningCount {
                    queue: c.text()?,
                    worker: c.opt_text()?,
                    count: c.int()?,
                })
            })
            .await?)
    }

    /// Every queued job (to dispatch at start and to reconcile with the transport).
    pub async fn queued_jobs(&self) -> Result<Vec<Job>> {
        let q = q!(concat!(
            "SELECT ",
            job_columns!(),
            " FROM jobs WHERE state = 'queued' ORDER BY run_at"
        ));
        Ok(self.db.read().all(q, job_from_row).await?)
    }

    /// A page of the queued jobs untouched since `before` — the ones a transport may
    /// have lost — in `(run_at, id)` order (due first), at most `limit`. `after`
    /// continues from the previous page's last row (`None`: from the start), so a
    /// backlog of any size is gone through in turn rather than its first page again.
    pub async fn queued_jobs_page(
        &self,
        before: Millis,
        after: Option<(Millis, JobId)>,
        limit: u32,
    ) -> Result<Vec<QueuedJob>> {
        // Ids are UUID text, so the empty string sorts before every one of them.
        let (run_at, id) = after.map_or((Millis::MIN, String::new()), |(at, id)| {
            (at, id.to_string())
        });
        let q = q!(
            "SELECT id, queue, priority, run_at FROM jobs
             WHERE state = 'queued' AND updated_at < $1
                AND (run_at > $2 OR (run_at = $2 AND id > $3))
             ORDER BY run_at, id LIMIT $4",
            before,
            run_at,
            id,
            i64::from(limit),
        );
        Ok(self
            .db
            .read()
            .all(q, |r| {
                let mut c = Cols::new(r);
                Ok(QueuedJob {
                    id: c.parse()?,
                    queue: c.text()?,
                    priority: c.int()? as i32,
                    run_at: c.int()?,
                })
            })
            .await?)
    }

    /// `queued -> running` for `worker`, if the job is queued and due. None means the
    /// delivery was a duplicate, stale, or early: drop it (and republish if early).
    pub async fn claim(
        &self,
        id: JobId,
        worker: &str,
        token: &str,
        lease_until: Millis,
        now: Millis,
    ) -> Result<Option<Claim>> {
        let q = q!(
            concat!(
                "UPDATE jobs SET state = 'running', attempt = attempt + 1, worker = $2,
                    lease_token = $3, lease_until = $4, started_at = $5, updated_at = $5,
                    progress = 0, progress_message = '', cancel_requested = 0,
                    version = version + 1
                 WHERE id = $1 AND state = 'queued' AND run_at <= $5
                 RETURNING ",
                job_columns!()
            ),
            id.to_string(),
            worker,
            token,
            lease_until,
            now,
        );
        let job = self.db.write().optional(q, job_from_row).await?;
        Ok(job.map(|job| Claim {
            job,
            token: token.to_owned(),
        }))
    }

    /// Extends a claim's lease. None: the claim is no longer ours. Some(true): the
    /// owner asked to cancel the job.
    pub async fn renew_lease(
        &self,
        id: JobId,
        token: &str,
        lease_until: Millis,
    ) -> Result<Option<bool>> {
        let q = q!(
            "UPDATE jobs SET lease_until = $3
             WHERE id = $1 AND state = 'running' AND lease_token = $2
             RETURNING cancel_requested",
            id.to_string(),
            token,
            lease_until,
        );
        Ok(self.db.write().optional(q, |r| Ok(r.int(0)? != 0)).await?)
    }

    /// Records progress of a running attempt.
    pub async fn set_progress(
        &self,
        id: JobId,
        token: &str,
        percent: u32,
        message: &str,
        now: Millis,
    ) -> Result<Option<Job>> {
        let q = q!(
            running_update!("progress = $3, progress_message = $4, updated_at = $5"),
            id.to_string(),
            token,
            i64::from(percent.min(100)),
            message,
            now,
        );
        Ok(self.db.write().optional(q, job_from_row).await?)
    }

    /// `running -> succeeded`, recording the outputs (replacing any of an earlier
    /// attempt) in the same transaction.
    pub async fn succeed(
        &self,
        id: JobId,
        token: &str,
        outputs: &[NewOutput],
        now: Millis,
    ) -> Result<Option<Job>> {
        Ok(self
            .db
            .atomic(Succeed {
                id: id.to_string(),
                token: token.to_owned(),
                outputs: outputs.to_vec(),
                now,
            })
            .await?)
    }

    /// `running -> failed` with a message for the user.
    pub async fn fail(
        &self,
        id: JobId,
        token: &str,
        error: &str,
        now: Millis,
    ) -> Result<Option<Job>> {
        let q = q!(
            running_update!(
                "state = 'failed', error = $3, finished_at = $4, updated_at = $4,
                 lease_token = NULL, lease_until = NULL"
            ),
            id.to_string(),
            token,
            error,
            now,
        );
        Ok(self.db.write().optional(q, job_from_row).await?)
    }

    /// `running -> queued` after a retryable failure, to run again at `run_at`.
    pub async fn retry_later(
        &self,
        id: JobId,
        token: &str,
        error: &str,
        run_at: Millis,
        now: Millis,
    ) -> Result<Option<Job>> {
        let q = q!(
            running_update!(
                "state = 'queued', error = $3, run_at = $4, updated_at = $5,
                 lease_token = NULL, lease_until = NULL, worker = NULL"
            ),
            id.to_string(),
            token,
            error,
            run_at,
            now,
        );
        Ok(self.db.write().optional(q, job_from_row).await?)
    }

    /// `running -> queued` without spending the attempt: the worker is shutting down.
    pub async fn release(&self, id: JobId, token: &str, now: Millis) -> Result<Option<Job>> {
        let q = q!(
            running_update!(
                "state = 'queued', attempt = attempt - 1, run_at = $3, updated_at = $3,
                 progress = 0, progress_message = '', lease_token = NULL, lease_until = NULL,
                 worker = NULL"
            ),
            id.to_string(),
            token,
            now,
        );
        Ok(self.db.write().optional(q, job_from_row).await?)
    }

    /// `running -> cancelled`, once the worker has stopped the attempt.
    pub async fn finish_cancelled(
        &self,
        id: JobId,
        token: &str,
        now: Millis,
    ) -> Result<Option<Job>> {
        let q = q!(
            running_update!(
                "state = 'cancelled', finished_at = $3, updated_at = $3,
                 lease_token = NULL, lease_until = NULL"
            ),
            id.to_string(),
            token,
            now,
        );
        Ok(self.db.write().optional(q, job_from_row).await?)
    }

    /// Cancels a job: at once if queued, by asking its worker if running.
    pub async fn cancel(&self, id: JobId, now: Millis) -> Result<CancelOutcome> {
        let q = q!(
            concat!(
                "UPDATE jobs SET state = 'cancelled', finished_at = $2, updated_at = $2,
                    version = version + 1
                 WHERE id = $1 AND state = 'queued' RETURNING ",
                job_columns!()
            ),
            id.to_string(),
            now,
        );
        if let Some(job) = self.db.write().optional(q, job_from_row).await? {
            return Ok(CancelOutcome::Cancelled(job));
        }
        let q = q!(
            concat!(
                "UPDATE jobs SET cancel_requested = 1, updated_at = $2, version = version + 1
                 WHERE id = $1 AND state = 'running' RETURNING ",
                job_columns!()
            ),
            id.to_string(),
            now,
        );
        if let Some(job) = self.db.write().optional(q, job_from_row).await? {
            return Ok(CancelOutcome::Requested(job));
        }
        Ok(match self.get_job(id).await? {
            Some(job) => CancelOutcome::AlreadyFinal(job),
            None => CancelOutcome::NotFound,
        })
    }

    /// `failed | cancelled -> queued` with a fresh set of attempts. None if the job
    /// is in another state.
    pub async fn retry(&self, id: JobId, now: Millis) -> Result<Option<Job>> {
        let q = q!(
            concat!(
                "UPDATE jobs SET state = 'queued', attempt = 0, error = NULL, run_at = $2,
                    progress = 0, progress_message = '', cancel_requested = 0,
                    finished_at = NULL, started_at = NULL, updated_at = $2,
                    version = version + 1
                 WHERE id = $1 AND state IN ('failed', 'cancelled') RETURNING ",
                job_columns!()
            ),
            id.to_string(),
            now,
        );
        Ok(self.db.write().optional(q, job_from_row).await?)
    }

    /// Puts back the running jobs whose lease ended before `expired_before` (their
    /// worker died): queued again, or failed when out of attempts. Pass `Millis::MAX`
    /// to recover every running job, when this process owns the database alone.
    pub async fn recover_running(&self, expired_before: Millis, now: Millis) -> Result<Recovered> {
        let q = q!(
            concat!(
                "UPDATE jobs SET state = 'failed',
                    error = 'the worker running it stopped responding, and it has no attempts left',
                    finished_at = $2, updated_at = $2, lease_token = NULL, lease_until = NULL,
                    version = version + 1
                 WHERE state = 'running' AND lease_until < $1 AND attempt >= max_attempts
                 RETURNING ",
                job_columns!()
            ),
            expired_before,
            now,
        );
        let failed = self.db.write().all(q, job_from_row).await?;
        let q = q!(
            concat!(
                "UPDATE jobs SET state = 'queued', run_at = $2, updated_at = $2, worker = NULL,
                    lease_token = NULL, lease_until = NULL, progress = 0, progress_message = '',
                    version = version + 1
                 WHERE state = 'running' AND lease_until < $1
                 RETURNING ",
                job_columns!()
            ),
            expired_before,
            now,
        );
        let requeued = self.db.write().all(q, job_from_row).await?;
        Ok(Recovered { requeued, failed })
    }

    /// Counts of jobs by state (for metrics and the admin console).
    pub async fn count_jobs_by_state(&self) -> Result<Vec<(JobState, i64)>> {
        let q = q!("SELECT state, COUNT(*) AS n FROM jobs GROUP BY state");
        Ok(self
            .db
            .read()
            .all(q, |r| {
                let mut c = Cols::new(r);
                Ok((c.parse()?, c.int()?))
            })
            .await?)
    }
}

/// [`Store::succeed`]'s statements, which commit together.
struct Succeed {
    id: String,
    token: String,
    outputs: Vec<NewOutput>,
    now: Millis,
}

impl Atomic for Succeed {
    type Output = Option<Job>;

    async fn run(self, c: &mut impl Conn) -> forklift_db::Result<Option<Job>> {
        let Succeed {
            id,
            token,
            outputs,
            now,
        } = self;
        // Write first, so that on PostgreSQL the transaction takes the row lock at once.
        let q = q!(
            "UPDATE jobs SET updated_at = $3
             WHERE id = $1 AND state = 'running' AND lease_token = $2 RETURNING owner_id",
            &id,
            &token,
            now,
        );
        let Some(owner) = c.optional(q, |r| Ok(r.str(0)?.to_owned())).await? else {
            return Ok(None);
        };
        let mut recorded = Vec::with_capacity(outputs.len());
        for o in outputs {
            let q = q!(
                "INSERT INTO files (id, owner_id, name, content_type, size_bytes, sha256,
                    blob_key, source_job_id, output_name, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $3, $9)
                 ON CONFLICT (source_job_id, output_name) DO UPDATE SET
                    content_type = excluded.content_type, size_bytes = excluded.size_bytes,
                    sha256 = excluded.sha256, blob_key = excluded.blob_key,
                    created_at = excluded.created_at
                 RETURNING id",
                FileId::new().to_string(),
                &owner,
                &o.name,
                o.content_type,
                o.size_bytes as i64,
                o.sha256,
                o.blob_key,
                &id,
                now,
            );
            let file_id = c.one(q, |r| r.str(0)?.parse().map_err(corrupt)).await?;
            recorded.push(JobOutput {
                name: o.name,
                file_id,
            });
        }
        let q = q!(
            concat!(
                "UPDATE jobs SET state = 'succeeded', outputs = $3, progress = 100, error = NULL,
                    lease_token = NULL, lease_until = NULL, finished_at = $4, updated_at = $4,
                    version = version + 1
                 WHERE id = $1 AND lease_token = $2
                 RETURNING ",
                job_columns!()
            ),
            id,
            token,
            serde_json::to_string(&recorded).map_err(corrupt)?,
            now,
        );
        Ok(Some(c.one(q, job_from_row).await?))
    }
}

fn job_from_row(r: &dyn Row) -> forklift_db::Result<Job> {
    let mut c = Cols::new(r);
    Ok(Job {
        id: c.parse()?,
        owner_id: c.parse()?,
        kind: c.text()?,
        queue: c.text()?,
        params: serde_json::from_str(c.str()?).map_err(corrupt)?,
        input_file_ids: serde_json::from_str(c.str()?).map_err(corrupt)?,
        state: c.parse()?,
        priority: c.int()? as i32,
        attempt: c.int()? as u32,
        max_attempts: c.int()? as u32,
        run_at: c.int()?,
        lease_until: c.opt_int()?,
        worker: c.opt_text()?,
        progress: c.int()? as u32,
        progress_message: c.text()?,
        error: c.opt_text()?,
        outputs: serde_json::from_str(c.str()?).map_err(corrupt)?,
        cancel_requested: c.int()? != 0,
        idempotency_key: c.opt_text()?,
        version: c.int()?,
        created_at: c.int()?,
        updated_at: c.int()?,
        started_at: c.opt_int()?,
        finished_at: c.opt_int()?,
    })
}
