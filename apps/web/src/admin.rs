//! The admin console's data: every user's jobs, queues, workers, failures.

use crate::error::PageError;
use crate::model::Job;
use crate::state::Web;
use forklift_domain::User;
use forklift_rpc::v1 as pb;

/// Queues, job counts and workers.
#[derive(Default)]
pub struct Overview {
    /// (queue, ready, running).
    pub queues: Vec<(String, u64, u64)>,
    /// (state, count).
    pub states: Vec<(String, u64)>,
    /// (name, queues, slots, running jobs, last seen).
    pub workers: Vec<(String, String, u64, u64, String)>,
}

/// What the admin page shows.
pub struct AdminData {
    /// Jobs matching the filters.
    pub jobs: Vec<Job>,
    /// The latest failed jobs.
    pub failed: Vec<Job>,
    /// Cursor of the next page.
    pub next: String,
    /// Queues, counts, workers.
    pub overview: Overview,
}

/// Loads the admin page's data as `admin`.
pub async fn load(
    web: &Web,
    admin: &User,
    state: Option<pb::JobState>,
    kind: &str,
    cursor: &str,
) -> Result<AdminData, PageError> {
    let b = web.backend();
    let list = b.list_jobs(
        admin.id,
        pb::ListJobsRequest {
            page_size: 50,
            page_token: cursor.to_owned(),
            states: state.map(|s| vec![s as i32]).unwrap_or_default(),
            kind: kind.to_owned(),
        },
    );
    let failed = b.list_jobs(
        admin.id,
        pb::ListJobsRequest {
            page_size: 10,
            states: vec![pb::JobState::Failed as i32],
            ..Default::default()
        },
    );
    let (list, failed) = tokio::try_join!(list, failed)?;
    let conv = |jobs: Vec<pb::Job>| {
        jobs.into_iter()
            .map(|j| Job::from_proto(j, web.registry()))
            .collect()
    };
    Ok(AdminData {
        jobs: conv(list.jobs),
        failed: conv(failed.jobs),
        next: list.next_page_token,
        overview: Overview::default(),
    })
}
