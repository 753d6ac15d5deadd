//! WatchJobs: every change of one user's jobs as a stream that never ends on its own,
//! for live pages (the web app's Server-Sent Events).
//!
//! Subscribe first, then read the snapshot, then forward the bus's changes of the
//! user's jobs. Events are best-effort across processes, so the stream also re-reads
//! the record: every [`WATCH_RESYNC`], on `Event::Resync` and when it lags. Each
//! re-read starts [`LOOKBACK`] before the previous one began, which covers a change
//! committed after that read whose `updated_at` is a little older (a transaction that
//! took a while, another process's clock). What was already sent is remembered per
//! job, so a version is never sent twice and never after a newer one.

use crate::api::{Api, WATCH_RESYNC};
use crate::auth::Caller;
use crate::error::ApiError;
use forklift_domain::{Event, Job, JobId, JobState, Millis, UserId, now_ms};
use forklift_store::JobQuery;
use futures::Stream;
use std::collections::HashMap;
use std::time::Duration;
use tokio::sync::{broadcast, mpsc};

/// Most jobs in a snapshot, and per page of a re-read.
pub(crate) const SNAPSHOT_LIMIT: u32 = 500;

/// How far before the previous re-read began the next one starts reading.
const LOOKBACK: Duration = Duration::from_secs(10);

/// What a stream has sent: the newest version and update time per job.
#[derive(Debug, Default)]
struct Sent {
    versions: HashMap<JobId, (i64, Millis)>,
}

impl Sent {
    /// True if `job` is newer than anything sent for it.
    fn is_new(&self, job: &Job) -> bool {
        self.versions
            .get(&job.id)
            .is_none_or(|&(version, _)| job.version > version)
    }

    fn record(&mut self, job: &Job) {
        self.versions.insert(job.id, (job.version, job.updated_at));
    }

    /// Forgets jobs last sent as changed before `before`: re-reads no longer reach
    /// them, and a bus event that late is not expected.
    fn forget_before(&mut self, before: Millis) {
        self.versions.retain(|_, &mut (_, at)| at >= before);
    }
}

/// One open WatchJobs stream's state, owned by its task.
struct JobsWatch {
    api: Api,
    owner: UserId,
    tx: mpsc::Sender<Job>,
    sent: Sent,
    /// Where the next re-read of the record starts.
    next_read: Millis,
}

/// Why a stream stops.
struct Gone;

impl Api {
    /// The caller's jobs that changed at or after `since` (unset: the caller's unfinished
    /// jobs), then every later change of any of the caller's jobs. See `WatchJobs` in
    /// `jobs.proto`; the stream ends only when the receiver is dropped or the API
    /// closes its streams.
    pub async fn watch_jobs(
        &self,
        caller: &Caller,
        since: Option<Millis>,
    ) -> Result<impl Stream<Item = Job> + Send + 'static, ApiError> {
        // Subscribe before reading the snapshot: anything that changes after the read
        // is in the subscription.
        let rx = self.runtime().bus().subscribe();
        let started = now_ms();
        let snapshot = self.jobs_snapshot(caller.user_id, since).await?;
        let mut next_read = started - LOOKBACK.as_millis() as i64;
        if let (Some(_), Some(last)) = (since, snapshot.last())
            && snapshot.len() >= SNAPSHOT_LIMIT as usize
        {
            // A full page: the next re-read also sends the rest.
            next_read = next_read.min(last.updated_at);
        }
        let (tx, out) = mpsc::channel(16);
        let watch = JobsWatch {
            api: self.clone(),
            owner: caller.user_id,
            tx,
            sent: Sent::default(),
            next_read,
        };
        tokio::spawn(watch.run(snapshot, rx));
        Ok(tokio_stream::wrappers::ReceiverStream::new(out))
    }

    /// The first jobs of a WatchJobs stream, oldest change first.
    async fn jobs_snapshot(
        &self,
        owner: UserId,
        since: Option<Millis>,
    ) -> Result<Vec<Job>, ApiError> {
        if let Some(since) = since {
            let jobs = self
                .store()
                .jobs_updated_since(owner, since, None, SNAPSHOT_LIMIT)
                .await?;
            return Ok(jobs);
        }
        let mut jobs = self
            .store()
            .list_jobs(&JobQuery {
                owner: Some(owner),
                states: vec![JobState::Queued, JobState::Running],
                limit: SNAPSHOT_LIMIT,
                ..Default::default()
            })
            .await?;
        jobs.sort_by_key(|j| (j.updated_at, j.id));
        Ok(jobs)
    }
}

impl JobsWatch {
    /// Sends the snapshot, then forwards changes until the client or the API shuts down.
    async fn run(mut self, snapshot: Vec<Job>, mut rx: broadcast::Receiver<Event>) {
        for job in snapshot {
            if self.send(job).await.is_err() {
                return;
            }
        }
        let mut resync = tokio::time::interval(WATCH_RESYNC);
        resync.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        resync.tick().await;
        loop {
            let next = tokio::select! {
                _ = self.api.closing().cancelled() => return,
                _ = self.tx.closed() => return,
                ev = rx.recv() => ev,
                _ = resync.tick() => Ok(Event::Resync),
            };
            let step = match next {
                Ok(Event::JobChanged(job)) => self.forward(*job).await,
                Ok(Event::CancelRequested(_)) => Ok(()),
                // Fell behind or events were lost: the record has everything.
                Ok(Event::Resync) | Err(broadcast::error::RecvError::Lagged(_)) => {
                    self.reread().await
                }
                Err(broadcast::error::RecvError::Closed) => return,
            };
            if step.is_err() {
                return;
            }
        }
    }

    /// Sends a changed job if it is the owner's and newer than what was sent.
    async fn forward(&mut self, job: Job) -> Result<(), Gone> {
        if job.owner_id == self.owner && self.sent.is_new(&job) {
            self.send(job).await?;
        }
        Ok(())
    }

    /// Re-reads the owner's jobs changed since `next_read`, page by page, and sends
    /// those newer than what was sent. A failed read is retried at the next tick.
    async fn reread(&mut self) -> Result<(), Gone> {
        let started = now_ms();
        let (mut since, mut after) = (self.next_read, None);
        loop {
            let page = match self
                .api
                .store()
                .jobs_updated_since(self.owner, since, after, SNAPSHOT_LIMIT)
                .await
            {
                Ok(page) => page,
                Err(e) => {
                    tracing::warn!(user_id = %self.owner, error = %e, "WatchJobs: re-reading jobs failed: {e}");
                    return Ok(());
                }
            };
            let full = page.len() >= SNAPSHOT_LIMIT as usize;
            if let Some(last) = page.last() {
                (since, after) = (last.updated_at, Some(last.id));
            }
            for job in page {
                if self.sent.is_new(&job) {
                    self.send(job).await?;
                }
            }
            if !full {
                break;
            }
        }
        self.next_read = started - LOOKBACK.as_millis() as i64;
        self.sent
            .forget_before(self.next_read - LOOKBACK.as_millis() as i64);
        Ok(())
    }

    async fn send(&mut self, job: Job) -> Result<(), Gone> {
        self.sent.record(&job);
        self.tx.send(job).await.map_err(|_| Gone)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(id: JobId, version: i64, updated_at: Millis) -> Job {
        Job {
            id,
            owner_id: UserId::new(),
            kind: "debug.noop".into(),
            queue: "debug".into(),
            params: serde_json::json!({}),
            input_file_ids: vec![],
            state: JobState::Queued,
            priority: 0,
            attempt: 0,
            max_attempts: 1,
            run_at: 0,
            lease_until: None,
            worker: None,
            progress: 0,
            progress_message: String::new(),
            error: None,
            outputs: vec![],
            cancel_requested: false,
            idempotency_key: None,
            version,
            created_at: 0,
            updated_at,
            started_at: None,
            finished_at: None,
        }
    }

    #[test]
    fn sent_versions_only_move_forward_and_old_ones_are_forgotten() {
        let (a, b) = (JobId::new(), JobId::new());
        let mut sent = Sent::default();
        assert!(sent.is_new(&job(a, 1, 100)));
        sent.record(&job(a, 2, 200));
        assert!(!sent.is_new(&job(a, 1, 100)), "older");
        assert!(!sent.is_new(&job(a, 2, 200)), "the same");
        assert!(sent.is_new(&job(a, 3, 300)));
        sent.record(&job(b, 1, 1000));
        sent.forget_before(500);
        assert!(sent.is_new(&job(a, 2, 200)), "forgotten");
        assert!(!sent.is_new(&job(b, 1, 1000)), "kept");
    }
}
