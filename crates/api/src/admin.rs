//! The admin overview: queues, job counts by state and live workers.

use crate::api::Api;
use crate::auth::Caller;
use crate::error::ApiError;
use forklift_domain::{JobState, now_ms};
use forklift_store::{RunningCount, WorkerRecord};
use std::collections::{BTreeMap, BTreeSet};

/// A worker counts as live while its last report is at most this many reconcile
/// periods old (it reports once per period).
const LIVE_PERIODS: u32 = 3;

/// The installation at a glance, for admins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminOverview {
    /// Every known queue, by name.
    pub queues: Vec<QueueStats>,
    /// Jobs per state, every state in lifecycle order.
    pub jobs_by_state: Vec<(JobState, u64)>,
    /// The live workers, by name.
    pub workers: Vec<WorkerStats>,
}

/// One queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueStats {
    /// Its name.
    pub name: String,
    /// Deliveries waiting in the transport (due or not).
    pub ready: u64,
    /// Its jobs running now, according to the record.
    pub running: u64,
}

/// One live worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerStats {
    /// Its row: name, queues, slots, start and last report.
    pub worker: WorkerRecord,
    /// Jobs it runs now, according to the record.
    pub running_jobs: u64,
}

impl Api {
    /// The overview; PERMISSION_DENIED for anyone but an admin.
    pub async fn overview(&self, caller: &Caller) -> Result<AdminOverview, ApiError> {
        caller.require_admin("the admin overview")?;
        let running = self.store().running_counts().await?;
        let live_since =
            now_ms() - (self.runtime().config().reconcile_every * LIVE_PERIODS).as_millis() as i64;
        let workers = self.store().workers_seen_since(live_since).await?;
        let queues = self.queue_stats(&running, &workers).await?;
        let jobs_by_state = self.state_counts().await?;
        Ok(AdminOverview {
            queues,
            jobs_by_state,
            workers: worker_stats(workers, &running),
        })
    }

    /// Every queue some kind runs on (whether it can run here or not), some worker
    /// consumes or some running job is on, with its transport depth and running jobs.
    async fn queue_stats(
        &self,
        running: &[RunningCount],
        workers: &[WorkerRecord],
    ) -> Result<Vec<QueueStats>, ApiError> {
        let mut names: BTreeSet<String> = self
            .registry()
            .all_queues()
            .into_iter()
            .map(str::to_owned)
            .collect();
        names.extend(workers.iter().flat_map(|w| w.queues.iter().cloned()));
        names.extend(running.iter().map(|r| r.queue.clone()));
        let mut stats = Vec::with_capacity(names.len());
        for name in names {
            let ready = self.runtime().transport().depth(&name).await.map_err(|e| {
                ApiError::Unavailable(format!(
                    "the queue transport did not answer how many jobs wait in {name}: {e}"
                ))
            })?;
            let running = running
                .iter()
                .filter(|r| r.queue == name)
                .map(|r| r.count.max(0) as u64)
                .sum();
            stats.push(QueueStats {
                name,
                ready,
                running,
            });
        }
        Ok(stats)
    }

    /// Jobs per state, every state listed.
    async fn state_counts(&self) -> Result<Vec<(JobState, u64)>, ApiError> {
        let counts: BTreeMap<&str, i64> = self
            .store()
            .count_jobs_by_state()
            .await?
            .into_iter()
            .map(|(s, n)| (s.as_str(), n))
            .collect();
        Ok(JobState::ALL
            .into_iter()
            .map(|s| {
                (
                    s,
                    counts.get(s.as_str()).copied().unwrap_or(0).max(0) as u64,
                )
            })
            .collect())
    }
}

/// The workers with the number of jobs each runs.
fn worker_stats(workers: Vec<WorkerRecord>, running: &[RunningCount]) -> Vec<WorkerStats> {
    workers
        .into_iter()
        .map(|worker| {
            let running_jobs = running
                .iter()
                .filter(|r| r.worker.as_deref() == Some(worker.name.as_str()))
                .map(|r| r.count.max(0) as u64)
                .sum();
            WorkerStats {
                worker,
                running_jobs,
            }
        })
        .collect()
}
