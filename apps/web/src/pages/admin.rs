//! The admin console: every user's jobs, queues, workers, failures — all from the jobs
//! service (ListJobs with `all_users`, Admin.GetOverview), which checks the caller is an
//! admin itself.

use super::{Chrome, CsrfOnly, ListQuery, check_csrf, render, see_other};
use crate::error::PageError;
use crate::model::{Job, parse_state, rfc3339};
use crate::session::{AdminUser, Csrf};
use crate::state::Web;
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Form, Router};
use forklift_domain::User;
use forklift_rpc::v1 as pb;

/// `/admin` and its retry form.
pub fn router() -> Router<Web> {
    Router::new()
        .route("/admin", get(admin_page))
        .route("/admin/jobs/{id}/retry", post(admin_retry))
}

#[derive(Template)]
#[template(path = "admin.html")]
struct AdminPage {
    page: Chrome,
    jobs: Vec<Job>,
    failed: Vec<Job>,
    state: String,
    kind: String,
    next: String,
    overview: Overview,
    owners: std::collections::HashMap<String, String>,
}

impl AdminPage {
    /// Who submitted a job, by email when known.
    fn owner(&self, job: &Job) -> String {
        let id = job.owner_id.clone().unwrap_or_default();
        self.owners.get(&id).cloned().unwrap_or(id)
    }
}

/// `GET /admin`: every user's jobs with filters, queues, workers, failed jobs.
pub async fn admin_page(
    State(web): State<Web>,
    AdminUser(user): AdminUser,
    csrf: Csrf,
    Query(q): Query<ListQuery>,
) -> Result<Response, PageError> {
    let state = q.state.as_deref().and_then(parse_state);
    let kind = q.kind.unwrap_or_default();
    let data = load(&web, &user, state, &kind, q.cursor.as_deref().unwrap_or("")).await?;
    render(&AdminPage {
        page: Chrome::new("Admin", "admin", Some(&user), &csrf),
        jobs: data.jobs,
        failed: data.failed,
        state: state
            .and_then(forklift_rpc::state::from_proto)
            .map(|s| s.as_str().to_owned())
            .unwrap_or_default(),
        kind,
        next: data.next,
        overview: data.overview,
        owners: data.owners,
    })
}

/// `POST /admin/jobs/{id}/retry`.
pub async fn admin_retry(
    State(web): State<Web>,
    AdminUser(user): AdminUser,
    csrf: Csrf,
    Path(id): Path<String>,
    Form(f): Form<CsrfOnly>,
) -> Result<Response, PageError> {
    check_csrf(&csrf, &f.csrf)?;
    web.jobs_api().retry(&user, &id).await?;
    Ok(see_other("/admin"))
}

/// One queue's numbers.
pub struct QueueRow {
    /// Its name.
    pub name: String,
    /// Jobs ready to run.
    pub ready: u64,
    /// Jobs running.
    pub running: u64,
}

/// One worker process.
pub struct WorkerRow {
    /// Its name.
    pub name: String,
    /// The queues it takes jobs from.
    pub queues: String,
    /// How many jobs it runs at once.
    pub slots: u32,
    /// How many it runs now.
    pub running: u64,
    /// When it last reported (RFC 3339).
    pub last_seen: String,
}

/// Queues, job counts and workers.
pub struct Overview {
    /// Per queue.
    pub queues: Vec<QueueRow>,
    /// (state, count).
    pub states: Vec<(&'static str, u64)>,
    /// Workers seen recently.
    pub workers: Vec<WorkerRow>,
}

impl Overview {
    fn from_proto(o: pb::Overview) -> Self {
        Self {
            queues: o
                .queues
                .into_iter()
                .map(|q| QueueRow {
                    name: q.name,
                    ready: q.ready,
                    running: q.running,
                })
                .collect(),
            states: o
                .jobs_by_state
                .iter()
                .filter_map(|s| {
                    forklift_rpc::state::from_proto(s.state()).map(|st| (st.as_str(), s.count))
                })
                .collect(),
            workers: o
                .workers
                .into_iter()
                .map(|w| WorkerRow {
                    queues: w.queues.join(", "),
                    slots: w.slots,
                    running: w.running_jobs,
                    last_seen: w
                        .last_seen_time
                        .as_ref()
                        .map(|t| rfc3339(forklift_rpc::time::millis(t)))
                        .unwrap_or_default(),
                    name: w.name,
                })
                .collect(),
        }
    }
}

/// What the admin page shows.
pub struct AdminData {
    /// Jobs matching the filters, every user's.
    pub jobs: Vec<Job>,
    /// The latest failed jobs.
    pub failed: Vec<Job>,
    /// Cursor of the next page.
    pub next: String,
    /// Queues, counts, workers.
    pub overview: Overview,
    /// Owner id to email, for the jobs shown.
    pub owners: std::collections::HashMap<String, String>,
}

/// Loads the admin page's data as `admin`.
pub async fn load(
    web: &Web,
    admin: &User,
    state: Option<pb::JobState>,
    kind: &str,
    cursor: &str,
) -> Result<AdminData, PageError> {
    let b = web.jobs_api();
    let list = b.list_jobs(
        admin,
        pb::ListJobsRequest {
            page_size: 50,
            page_token: cursor.to_owned(),
            states: state.map(|s| vec![s as i32]).unwrap_or_default(),
            kind: kind.trim().to_owned(),
            all_users: true,
        },
    );
    let failed = b.list_jobs(
        admin,
        pb::ListJobsRequest {
            page_size: 10,
            states: vec![pb::JobState::Failed as i32],
            all_users: true,
            ..Default::default()
        },
    );
    let overview = b.overview(admin);
    let kinds = web.kinds();
    let (list, failed, overview, kinds) = tokio::try_join!(list, failed, overview, kinds)?;
    let conv = |jobs: Vec<pb::Job>| {
        jobs.into_iter()
            .map(|j| Job::from_proto(j, &kinds))
            .collect()
    };
    let (jobs, failed): (Vec<Job>, Vec<Job>) = (conv(list.jobs), conv(failed.jobs));
    // Accounts are the web app's own table: show emails rather than ids.
    let mut owners = std::collections::HashMap::new();
    for id in jobs
        .iter()
        .chain(&failed)
        .filter_map(|j| j.owner_id.clone())
    {
        if owners.contains_key(&id) {
            continue;
        }
        if let Some(u) = match id.parse() {
            Ok(uid) => web.accounts().get_user(uid).await?,
            Err(_) => None,
        } {
            owners.insert(id, u.email);
        }
    }
    Ok(AdminData {
        owners,
        jobs,
        failed,
        next: list.next_page_token,
        overview: Overview::from_proto(overview),
    })
}
