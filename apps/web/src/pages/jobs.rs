//! The job pages: the list, one job (cancel, retry), starting a job from a file page,
//! and a data-profile job's report.

use super::files::file_page_with;
use super::{Chrome, CsrfOnly, ListQuery, check_csrf, render, see_other};
use crate::error::{PageError, field_errors};
use crate::model::{File, Job, parse_state};
use crate::session::{Csrf, SignedIn};
use crate::state::Web;
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Form, Router};
use forklift_rpc::v1 as pb;
use std::collections::HashMap;

/// The job pages, and `POST /files/{id}/jobs`, the start-a-job forms of a file page.
pub fn router() -> Router<Web> {
    Router::new()
        .route("/files/{id}/jobs", post(start_job))
        .route("/jobs", get(jobs_index))
        .route("/jobs/{id}", get(job_page))
        .route("/jobs/{id}/cancel", post(job_cancel))
        .route("/jobs/{id}/retry", post(job_retry))
        .route("/jobs/{id}/report", get(job_report))
}

/// `POST /files/{id}/jobs`: starts a job on the file, then shows it.
pub async fn start_job(
    State(web): State<Web>,
    SignedIn(user): SignedIn,
    csrf: Csrf,
    Path(id): Path<String>,
    Form(f): Form<HashMap<String, String>>,
) -> Result<Response, PageError> {
    check_csrf(&csrf, f.get("csrf").map_or("", String::as_str))?;
    let kind = f.get("kind").map_or("", String::as_str);
    if let Err(wait) = web.submit_limit().hit(&format!("submit:{}", user.id)) {
        return Err(PageError::Bad(
            StatusCode::TOO_MANY_REQUESTS,
            format!(
                "You are starting jobs faster than allowed. Try again in {} seconds.",
                wait.as_secs().max(1)
            ),
        ));
    }
    let rerender = |error: String, fields, status| {
        file_page_with(&web, &user, &csrf, &id, error, fields, status)
    };
    // The form's fields are the kind's description's (see `kinds::form_inputs`).
    let kinds = web.kinds().await?;
    let form = match kinds.get(kind) {
        Some(k) => crate::kinds::form_params(k, &f),
        None => Ok(serde_json::json!({})),
    };
    let params = match form {
        Ok(p) => p,
        Err(fields) => {
            return rerender(
                "Some fields need attention.".into(),
                fields,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await;
        }
    };
    let req = match kinds.submit_request(kind, &params, vec![id.clone()]) {
        Ok(r) => r,
        Err(fields) => {
            return rerender(
                "Some fields need attention.".into(),
                fields,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await;
        }
    };
    match web.jobs_api().submit(&user, req).await {
        Ok(job) => Ok(see_other(&format!("/jobs/{}", job.id))),
        Err(s)
            if s.code() == tonic::Code::InvalidArgument
                || s.code() == tonic::Code::FailedPrecondition =>
        {
            let fields = field_errors(&s)
                .into_iter()
                .map(|mut e| {
                    e.field = kinds.json_field(kind, e.field);
                    e
                })
                .collect();
            // Parameters the jobs service refused read as the form's own checks do.
            let (message, status) = if s.code() == tonic::Code::InvalidArgument {
                (
                    "Some fields need attention.".to_owned(),
                    StatusCode::UNPROCESSABLE_ENTITY,
                )
            } else {
                (s.message().to_owned(), crate::error::http_status(s.code()))
            };
            rerender(message, fields, status).await
        }
        Err(s) => Err(s.into()),
    }
}

#[derive(Template)]
#[template(path = "jobs.html")]
struct JobsPage {
    page: Chrome,
    jobs: Vec<Job>,
    state: String,
    next: String,
}

/// The state filters of job lists.
pub const STATES: [forklift_domain::JobState; 5] = forklift_domain::JobState::ALL;

/// `GET /jobs`: all my jobs, filtered by state, paged.
pub async fn jobs_index(
    State(web): State<Web>,
    SignedIn(user): SignedIn,
    csrf: Csrf,
    Query(q): Query<ListQuery>,
) -> Result<Response, PageError> {
    let state = q.state.as_deref().and_then(parse_state);
    let r = web
        .jobs_api()
        .list_jobs(
            &user,
            pb::ListJobsRequest {
                page_size: 50,
                page_token: q.cursor.unwrap_or_default(),
                states: state.map(|s| vec![s as i32]).unwrap_or_default(),
                kind: String::new(),
                all_users: false,
            },
        )
        .await?;
    let kinds = web.kinds().await?;
    render(&JobsPage {
        page: Chrome::new("Jobs", "jobs", Some(&user), &csrf),
        jobs: r
            .jobs
            .into_iter()
            .map(|j| Job::from_proto(j, &kinds))
            .collect(),
        state: state
            .and_then(forklift_rpc::state::from_proto)
            .map(|s| s.as_str().to_owned())
            .unwrap_or_default(),
        next: r.next_page_token,
    })
}

#[derive(Template)]
#[template(path = "job.html")]
struct JobPage {
    page: Chrome,
    job: Job,
    inputs: Vec<File>,
}

/// `GET /jobs/{id}`: state, live progress, error, outputs, cancel and retry.
pub async fn job_page(
    State(web): State<Web>,
    SignedIn(user): SignedIn,
    csrf: Csrf,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let (job, kinds) = tokio::try_join!(web.jobs_api().get_job(&user, &id), web.kinds())?;
    let job = Job::from_proto(job, &kinds);
    let mut inputs = Vec::new();
    for f in &job.input_file_ids {
        // An input deleted since is simply not listed.
        if let Ok(f) = web.jobs_api().get_file(&user, f).await {
            inputs.push(File::from_proto(f));
        }
    }
    render(&JobPage {
        page: Chrome::new(&format!("{} job", job.kind), "jobs", Some(&user), &csrf),
        job,
        inputs,
    })
}

/// `POST /jobs/{id}/cancel`.
pub async fn job_cancel(
    State(web): State<Web>,
    SignedIn(user): SignedIn,
    csrf: Csrf,
    Path(id): Path<String>,
    Form(f): Form<CsrfOnly>,
) -> Result<Response, PageError> {
    check_csrf(&csrf, &f.csrf)?;
    web.jobs_api().cancel(&user, &id).await?;
    Ok(see_other(&format!("/jobs/{id}")))
}

/// `POST /jobs/{id}/retry`.
pub async fn job_retry(
    State(web): State<Web>,
    SignedIn(user): SignedIn,
    csrf: Csrf,
    Path(id): Path<String>,
    Form(f): Form<CsrfOnly>,
) -> Result<Response, PageError> {
    check_csrf(&csrf, &f.csrf)?;
    web.jobs_api().retry(&user, &id).await?;
    Ok(see_other(&format!("/jobs/{id}")))
}

#[derive(Template)]
#[template(path = "report.html")]
struct ReportPage {
    page: Chrome,
    job: Job,
    html_file: Option<String>,
    json_file: String,
    /// The report's stylesheet, shared with the downloadable report.
    report_css: &'static str,
    /// The report's markup, from `forklift-profile` (escaped there).
    body: String,
}

/// Largest report shown inside the page.
const MAX_REPORT_BYTES: u64 = 32 * 1024 * 1024;

/// `GET /jobs/{id}/report`: a data-profile report with its charts, in the site's layout.
pub async fn job_report(
    State(web): State<Web>,
    SignedIn(user): SignedIn,
    csrf: Csrf,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let (job, kinds) = tokio::try_join!(web.jobs_api().get_job(&user, &id), web.kinds())?;
    let job = Job::from_proto(job, &kinds);
    let report_file = job
        .report_file()
        .ok_or(PageError::NotFound)?
        .file_id
        .clone();
    let bytes = web
        .jobs_api()
        .read_small(&user, &report_file, MAX_REPORT_BYTES)
        .await?;
    let report: forklift_profile::report::Report = serde_json::from_slice(&bytes)
        .map_err(|e| PageError::internal(format!("report.json of job {id}: {e}")))?;
    let html_file = job
        .outputs
        .iter()
        .find(|o| o.name == "report.html")
        .map(|o| o.file_id.clone());
    render(&ReportPage {
        page: Chrome::new("Data profile", "jobs", Some(&user), &csrf),
        report_css: crate::assets::report_css_url(),
        body: forklift_profile::render_body(&report),
        job,
        html_file,
        json_file: report_file,
    })
}
