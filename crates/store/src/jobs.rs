//! Job records and their conditional transitions.

use crate::{Result, Store, StoreError, corrupt, q};
use forklift_domain::{FileId, Job, JobId, JobOutput, JobState, Millis, UserId};
use sqlx::Row;

const JOB_COLUMNS: &str = "id, owner_id, kind, queue, params, input_file_ids, state, priority, \
    attempt, max_attempts, run_at, lease_until, worker, progress, progress_message, error, \
    outputs, cancel_requested, idempotency_key, version, created_at, updated_at, started_at, \
    finished_at";

/// A validated job about to be recorded as `queued`.
#[derive(Debug, Clone)]
pub struct NewJob {
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

/// Which jobs to list.
#[derive(Debug, Clone, Default)]
pub struct JobFilter {
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
    pub async fn insert_job(&self, new: &NewJob, now: Millis) -> Result<(Job, bool)> {
        let inputs = serde_json::to_string(&new.input_file_ids).map_err(corrupt)?;
        let row = q!(
            "INSERT INTO jobs (id, owner_id, kind, queue, params, input_file_ids, state, priority,
                max_attempts, run_at, idempotency_key, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, 'queued', $7, $8, $9, $10, $11, $11)
             ON CONFLICT (owner_id, idempotency_key) DO NOTHING
             RETURNING {JOB_COLUMNS}"
        )
        .bind(new.id.to_string())
        .bind(new.owner_id.to_string())
        .bind(&new.kind)
        .bind(&new.queue)
        .bind(new.params.to_string())
        .bind(inputs)
        .bind(i64::from(new.priority))
        .bind(i64::from(new.max_attempts))
        .bind(new.run_at)
        .bind(&new.idempotency_key)
        .bind(now)
        .fetch_optional(&self.writer)
        .await?;
        if let Some(row) = row {
            return Ok((job_from_row(&row)?, true));
        }
        let row = q!("SELECT {JOB_COLUMNS} FROM jobs WHERE owner_id = $1 AND idempotency_key = $2")
            .bind(new.owner_id.to_string())
            .bind(&new.idempotency_key)
            .fetch_one(&self.pool)
            .await?;
        let existing = job_from_row(&row)?;
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
        let row = q!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = $1")
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| job_from_row(&r)).transpose()
    }

    /// A page of jobs, newest first.
    pub async fn list_jobs(&self, f: &JobFilter) -> Result<Vec<Job>> {
        // `$n` placeholders numbered by hand: they are what both backends accept.
        let mut sql = format!("SELECT {JOB_COLUMNS} FROM jobs WHERE 1 = 1");
        let mut binds: Vec<V<'_>> = Vec::new();
        let param = |binds: &mut Vec<V<'_>>| format!("${}", binds.len());
        let owner = f.owner.map(|o| o.to_string());
        if let Some(owner) = &owner {
            binds.push(V::S(owner));
            sql += &format!(" AND owner_id = {}", param(&mut binds));
        }
        if !f.states.is_empty() {
            let mut ps = Vec::new();
            for st in &f.states {
                binds.push(V::S(st.as_str()));
                ps.push(param(&mut binds));
            }
            sql += &format!(" AND state IN ({})", ps.join(", "));
        }
        if let Some(kind) = &f.kind {
            binds.push(V::S(kind));
            sql += &format!(" AND kind = {}", param(&mut binds));
        }
        let before = f.before.map(|b| b.to_string());
        if let Some(before) = &before {
            binds.push(V::S(before));
            sql += &format!(" AND id < {}", param(&mut binds));
        }
        binds.push(V::I(i64::from(f.limit)));
        sql += &format!(" ORDER BY id DESC LIMIT {}", param(&mut binds));
        let rows = bind_all(sqlx::query(sqlx::AssertSqlSafe(sql)), &binds)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(job_from_row).collect()
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
        let rows = q!("SELECT {JOB_COLUMNS} FROM jobs
             WHERE owner_id = $1 AND (updated_at > $2 OR (updated_at = $2 AND id > $3))
             ORDER BY updated_at, id LIMIT $4")
        .bind(owner.to_string())
        .bind(since)
        .bind(after)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(job_from_row).collect()
    }

    /// How many jobs run now, per queue and worker (for the admin console).
    pub async fn running_counts(&self) -> Result<Vec<RunningCount>> {
        let rows = sqlx::query(
            "SELECT queue, worker, COUNT(*) AS n FROM jobs WHERE state = 'running'
             GROUP BY queue, worker ORDER BY queue, worker",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(RunningCount {
                    queue: r.try_get("queue")?,
                    worker: r.try_get("worker")?,
                    count: r.try_get("n")?,
                })
            })
            .collect()
    }

    /// Every queued job (to dispatch at start and to reconcile with the transport).
    pub async fn queued_jobs(&self) -> Result<Vec<Job>> {
        let rows = q!("SELECT {JOB_COLUMNS} FROM jobs WHERE state = 'queued' ORDER BY run_at")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(job_from_row).collect()
    }

    /// Queued jobs untouched since `before`, oldest first, at most `limit`: the ones a
    /// transport may have lost, to publish again (transports drop duplicates).
    pub async fn stale_queued_jobs(&self, before: Millis, limit: u32) -> Result<Vec<Job>> {
        let rows = q!(
            "SELECT {JOB_COLUMNS} FROM jobs WHERE state = 'queued' AND updated_at < $1
             ORDER BY updated_at LIMIT $2"
        )
        .bind(before)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(job_from_row).collect()
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
        let row = q!(
            "UPDATE jobs SET state = 'running', attempt = attempt + 1, worker = $2,
                lease_token = $3, lease_until = $4, started_at = $5, updated_at = $5,
                progress = 0, progress_message = '', cancel_requested = 0,
                version = version + 1
             WHERE id = $1 AND state = 'queued' AND run_at <= $5
             RETURNING {JOB_COLUMNS}"
        )
        .bind(id.to_string())
        .bind(worker)
        .bind(token)
        .bind(lease_until)
        .bind(now)
        .fetch_optional(&self.writer)
        .await?;
        Ok(row.map(|r| job_from_row(&r)).transpose()?.map(|job| Claim {
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
        let row = sqlx::query(
            "UPDATE jobs SET lease_until = $3
             WHERE id = $1 AND state = 'running' AND lease_token = $2
             RETURNING cancel_requested",
        )
        .bind(id.to_string())
        .bind(token)
        .bind(lease_until)
        .fetch_optional(&self.writer)
        .await?;
        Ok(row
            .map(|r| r.try_get::<i64, _>("cancel_requested"))
            .transpose()?
            .map(|c| c != 0))
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
        self.running_transition(
            id,
            token,
            "progress = $3, progress_message = $4, updated_at = $5",
            &[V::I(i64::from(percent.min(100))), V::S(message), V::I(now)],
        )
        .await
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
        let mut tx = self.writer.begin().await?;
        // Write first, so the transaction takes the write lock at once.
        let owner: Option<String> = sqlx::query_scalar(
            "UPDATE jobs SET updated_at = $3
             WHERE id = $1 AND state = 'running' AND lease_token = $2 RETURNING owner_id",
        )
        .bind(id.to_string())
        .bind(token)
        .bind(now)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(owner) = owner else {
            return Ok(None);
        };
        let mut recorded = Vec::with_capacity(outputs.len());
        for o in outputs {
            let file_id: String = sqlx::query_scalar(
                "INSERT INTO files (id, owner_id, name, content_type, size_bytes, sha256,
                    blob_key, source_job_id, output_name, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $3, $9)
                 ON CONFLICT (source_job_id, output_name) DO UPDATE SET
                    content_type = excluded.content_type, size_bytes = excluded.size_bytes,
                    sha256 = excluded.sha256, blob_key = excluded.blob_key,
                    created_at = excluded.created_at
                 RETURNING id",
            )
            .bind(FileId::new().to_string())
            .bind(&owner)
            .bind(&o.name)
            .bind(&o.content_type)
            .bind(o.size_bytes as i64)
            .bind(&o.sha256)
            .bind(&o.blob_key)
            .bind(id.to_string())
            .bind(now)
            .fetch_one(&mut *tx)
            .await?;
            recorded.push(JobOutput {
                name: o.name.clone(),
                file_id: file_id.parse().map_err(corrupt)?,
            });
        }
        let row = q!(
            "UPDATE jobs SET state = 'succeeded', outputs = $3, progress = 100, error = NULL,
                lease_token = NULL, lease_until = NULL, finished_at = $4, updated_at = $4,
                version = version + 1
             WHERE id = $1 AND lease_token = $2
             RETURNING {JOB_COLUMNS}"
        )
        .bind(id.to_string())
        .bind(token)
        .bind(serde_json::to_string(&recorded).map_err(corrupt)?)
        .bind(now)
        .fetch_one(&mut *tx)
        .await?;
        let job = job_from_row(&row)?;
        tx.commit().await?;
        Ok(Some(job))
    }

    /// `running -> failed` with a message for the user.
    pub async fn fail(
        &self,
        id: JobId,
        token: &str,
        error: &str,
        now: Millis,
    ) -> Result<Option<Job>> {
        self.running_transition(
            id,
            token,
            "state = 'failed', error = $3, finished_at = $4, updated_at = $4,
             lease_token = NULL, lease_until = NULL",
            &[V::S(error), V::I(now)],
        )
        .await
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
        self.running_transition(
            id,
            token,
            "state = 'queued', error = $3, run_at = $4, updated_at = $5,
             lease_token = NULL, lease_until = NULL, worker = NULL",
            &[V::S(error), V::I(run_at), V::I(now)],
        )
        .await
    }

    /// `running -> queued` without spending the attempt: the worker is shutting down.
    pub async fn release(&self, id: JobId, token: &str, now: Millis) -> Result<Option<Job>> {
        self.running_transition(
            id,
            token,
            "state = 'queued', attempt = attempt - 1, run_at = $3, updated_at = $3,
             progress = 0, progress_message = '', lease_token = NULL, lease_until = NULL,
             worker = NULL",
            &[V::I(now)],
        )
        .await
    }

    /// `running -> cancelled`, once the worker has stopped the attempt.
    pub async fn finish_cancelled(
        &self,
        id: JobId,
        token: &str,
        now: Millis,
    ) -> Result<Option<Job>> {
        self.running_transition(
            id,
            token,
            "state = 'cancelled', finished_at = $3, updated_at = $3,
             lease_token = NULL, lease_until = NULL",
            &[V::I(now)],
        )
        .await
    }

    /// Cancels a job: at once if queued, by asking its worker if running.
    pub async fn cancel(&self, id: JobId, now: Millis) -> Result<CancelOutcome> {
        let row = q!(
            "UPDATE jobs SET state = 'cancelled', finished_at = $2, updated_at = $2,
                version = version + 1
             WHERE id = $1 AND state = 'queued' RETURNING {JOB_COLUMNS}"
        )
        .bind(id.to_string())
        .bind(now)
        .fetch_optional(&self.writer)
        .await?;
        if let Some(r) = row {
            return Ok(CancelOutcome::Cancelled(job_from_row(&r)?));
        }
        let row = q!(
            "UPDATE jobs SET cancel_requested = 1, updated_at = $2, version = version + 1
             WHERE id = $1 AND state = 'running' RETURNING {JOB_COLUMNS}"
        )
        .bind(id.to_string())
        .bind(now)
        .fetch_optional(&self.writer)
        .await?;
        if let Some(r) = row {
            return Ok(CancelOutcome::Requested(job_from_row(&r)?));
        }
        Ok(match self.get_job(id).await? {
            Some(job) => CancelOutcome::AlreadyFinal(job),
            None => CancelOutcome::NotFound,
        })
    }

    /// `failed | cancelled -> queued` with a fresh set of attempts. None if the job
    /// is in another state.
    pub async fn retry(&self, id: JobId, now: Millis) -> Result<Option<Job>> {
        let row = q!(
            "UPDATE jobs SET state = 'queued', attempt = 0, error = NULL, run_at = $2,
                progress = 0, progress_message = '', cancel_requested = 0, finished_at = NULL,
                started_at = NULL, updated_at = $2, version = version + 1
             WHERE id = $1 AND state IN ('failed', 'cancelled') RETURNING {JOB_COLUMNS}"
        )
        .bind(id.to_string())
        .bind(now)
        .fetch_optional(&self.writer)
        .await?;
        row.map(|r| job_from_row(&r)).transpose()
    }

    /// Puts back the running jobs whose lease ended before `expired_before` (their
    /// worker died): queued again, or failed when out of attempts. Pass `Millis::MAX`
    /// to recover every running job, when this process owns the database alone.
    pub async fn recover_running(&self, expired_before: Millis, now: Millis) -> Result<Recovered> {
        let failed = q!("UPDATE jobs SET state = 'failed',
                error = 'the worker running it stopped responding, and it has no attempts left',
                finished_at = $2, updated_at = $2, lease_token = NULL, lease_until = NULL,
                version = version + 1
             WHERE state = 'running' AND lease_until < $1 AND attempt >= max_attempts
             RETURNING {JOB_COLUMNS}")
        .bind(expired_before)
        .bind(now)
        .fetch_all(&self.writer)
        .await?;
        let requeued = q!(
            "UPDATE jobs SET state = 'queued', run_at = $2, updated_at = $2, worker = NULL,
                lease_token = NULL, lease_until = NULL, progress = 0, progress_message = '',
                version = version + 1
             WHERE state = 'running' AND lease_until < $1
             RETURNING {JOB_COLUMNS}"
        )
        .bind(expired_before)
        .bind(now)
        .fetch_all(&self.writer)
        .await?;
        Ok(Recovered {
            requeued: requeued.iter().map(job_from_row).collect::<Result<_>>()?,
            failed: failed.iter().map(job_from_row).collect::<Result<_>>()?,
        })
    }

    /// Counts of jobs by state (for metrics and the admin console).
    pub async fn count_jobs_by_state(&self) -> Result<Vec<(JobState, i64)>> {
        let rows = sqlx::query("SELECT state, COUNT(*) AS n FROM jobs GROUP BY state")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                let s: &str = r.try_get("state")?;
                Ok((s.parse().map_err(corrupt)?, r.try_get("n")?))
            })
            .collect()
    }

    /// One conditional update of a running job, matched by its claim token.
    /// `$1` is the id and `$2` the token; `binds` are `$3` onwards.
    async fn running_transition(
        &self,
        id: JobId,
        token: &str,
        set: &str,
        binds: &[V<'_>],
    ) -> Result<Option<Job>> {
        let q = q!("UPDATE jobs SET {set}, version = version + 1
             WHERE id = $1 AND state = 'running' AND lease_token = $2 RETURNING {JOB_COLUMNS}")
        .bind(id.to_string())
        .bind(token.to_owned());
        let row = bind_all(q, binds).fetch_optional(&self.writer).await?;
        row.map(|r| job_from_row(&r)).transpose()
    }
}

/// Binds `binds` in order after whatever `q` has bound already.
fn bind_all<'q>(
    mut q: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>,
    binds: &[V<'_>],
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments> {
    for b in binds {
        q = match *b {
            V::I(i) => q.bind(i),
            V::S(s) => q.bind(s.to_owned()),
        };
    }
    q
}

/// A value bound into a query built at run time.
enum V<'a> {
    I(i64),
    S(&'a str),
}

fn job_from_row(r: &sqlx::any::AnyRow) -> Result<Job> {
    let id: String = r.try_get("id")?;
    let owner: String = r.try_get("owner_id")?;
    let params: String = r.try_get("params")?;
    let inputs: String = r.try_get("input_file_ids")?;
    let outputs: String = r.try_get("outputs")?;
    let state: String = r.try_get("state")?;
    Ok(Job {
        id: id.parse().map_err(corrupt)?,
        owner_id: owner.parse().map_err(corrupt)?,
        kind: r.try_get("kind")?,
        queue: r.try_get("queue")?,
        params: serde_json::from_str(&params).map_err(corrupt)?,
        input_file_ids: serde_json::from_str(&inputs).map_err(corrupt)?,
        state: state.parse().map_err(corrupt)?,
        priority: r.try_get::<i64, _>("priority")? as i32,
        attempt: r.try_get::<i64, _>("attempt")? as u32,
        max_attempts: r.try_get::<i64, _>("max_attempts")? as u32,
        run_at: r.try_get("run_at")?,
        lease_until: r.try_get("lease_until")?,
        worker: r.try_get("worker")?,
        progress: r.try_get::<i64, _>("progress")? as u32,
        progress_message: r.try_get("progress_message")?,
        error: r.try_get("error")?,
        outputs: serde_json::from_str(&outputs).map_err(corrupt)?,
        cancel_requested: r.try_get::<i64, _>("cancel_requested")? != 0,
        idempotency_key: r.try_get("idempotency_key")?,
        version: r.try_get("version")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
        started_at: r.try_get("started_at")?,
        finished_at: r.try_get("finished_at")?,
    })
}
