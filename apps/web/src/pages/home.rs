//! The front page and the signed-in user's dashboard.

use super::{Chrome, OpenGraph, render};
use crate::assets;
use crate::error::PageError;
use crate::model::{File, Job};
use crate::session::{Csrf, SignedIn, Viewer};
use crate::state::Web;
use askama::Template;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::Response;
use axum::routing::get;
use forklift_rpc::v1 as pb;

/// `/` and `/dashboard`.
pub fn router() -> Router<Web> {
    Router::new()
        .route("/", get(landing))
        .route("/dashboard", get(dashboard))
}

#[derive(Template)]
#[template(path = "landing.html")]
struct Landing {
    page: Chrome,
}

/// `/`: what Forklift is; cacheable for visitors.
pub async fn landing(
    State(web): State<Web>,
    Viewer(user): Viewer,
    csrf: Csrf,
    headers: HeaderMap,
) -> Result<Response, PageError> {
    let signed_in = user.is_some();
    let mut page = match &user {
        Some(u) => Chrome::new("File processing, live", "home", Some(u), &csrf),
        None => Chrome::anonymous("File processing, live"),
    };
    page.og = web.origin(&headers).map(|origin| OpenGraph {
        url: format!("{origin}/"),
        image: format!("{origin}{}", assets::og_image_url()),
    });
    let mut res = render(&Landing { page })?;
    let cache = if signed_in {
        "private, no-cache"
    } else {
        "public, max-age=300"
    };
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    res.headers_mut()
        .insert(header::VARY, HeaderValue::from_static("Cookie"));
    Ok(res)
}

#[derive(Template)]
#[template(path = "dashboard.html")]
struct Dashboard {
    page: Chrome,
    files: Vec<File>,
    jobs: Vec<Job>,
    more_files: bool,
    more_jobs: bool,
    max_upload: String,
}

/// `GET /dashboard`: recent files and jobs, an upload form, live job updates.
pub async fn dashboard(
    State(web): State<Web>,
    SignedIn(user): SignedIn,
    csrf: Csrf,
) -> Result<Response, PageError> {
    let b = web.jobs_api();
    let (files, jobs) = tokio::try_join!(
        b.list_files(&user, 10, ""),
        b.list_jobs(
            &user,
            pb::ListJobsRequest {
                page_size: 20,
                ..Default::default()
            }
        )
    )?;
    let kinds = web.kinds().await?;
    render(&Dashboard {
        page: Chrome::new("Dashboard", "dashboard", Some(&user), &csrf),
        more_files: !files.next_page_token.is_empty(),
        more_jobs: !jobs.next_page_token.is_empty(),
        files: files.files.into_iter().map(File::from_proto).collect(),
        jobs: jobs
            .jobs
            .into_iter()
            .map(|j| Job::from_proto(j, &kinds))
            .collect(),
        max_upload: forklift_domain::human_bytes(web.max_upload_bytes()),
    })
}
