//! The JSON API under `/api/v1`: files and jobs for programs, authenticated with
//! bearer API tokens, one error shape ([`ErrorBody`]), cursor pagination. The OpenAPI
//! document at `/api/v1/openapi.json` is generated from these handlers and types.

use crate::error::{ApiFailure, ErrorBody, FieldError};
use crate::model::{File, Job, parse_state};
use crate::session::ApiCaller;
use crate::state::Web;
use crate::upload::{UploadError, receive_upload};
use axum::Json;
use axum::extract::{Multipart, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use forklift_rpc::v1 as pb;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, OpenApi, ToSchema};

/// A page of files.
#[derive(Serialize, ToSchema)]
pub struct FileList {
    /// The files, newest first.
    pub items: Vec<File>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// A page of jobs.
#[derive(Serialize, ToSchema)]
pub struct JobList {
    /// The jobs, newest first.
    pub items: Vec<Job>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// Paging of list endpoints.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Paging {
    /// 1 to 1000 (default 50).
    limit: Option<i32>,
    /// The `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// Filters of the job list.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct JobFilter {
    /// Only jobs in this state: queued, running, succeeded, failed or cancelled.
    state: Option<String>,
    /// Only jobs of this kind, e.g. `image.thumbnail`.
    kind: Option<String>,
}

/// A new job.
#[derive(Deserialize, ToSchema)]
pub struct NewJob {
    /// The kind: `image.thumbnail`, `data.profile` or `video.transcode`.
    pub kind: String,
    /// The kind's parameters, e.g. `{"sizes": [{"width": 256}]}` for thumbnails.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub params: serde_json::Value,
    /// The files to work on.
    #[serde(default)]
    pub input_file_ids: Vec<String>,
    /// A retry-safe key: a second submit with it returns the first job.
    #[serde(default)]
    pub idempotency_key: String,
    /// -100 to 100; higher runs first.
    #[serde(default)]
    pub priority: i32,
    /// 1 to 20; omitted means the kind's default.
    #[serde(default)]
    pub max_attempts: u32,
}

fn cursor(token: String) -> Option<String> {
    Some(token).filter(|t| !t.is_empty())
}

/// Upload a file (multipart form field `file`).
#[utoipa::path(post, path = "/api/v1/files", tag = "files",
    request_body(content_type = "multipart/form-data", description = "A form with one field `file`."),
    responses((status = 201, body = File), (status = 413, body = ErrorBody, description = "Over the upload limit"),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn upload_file(
    State(web): State<Web>,
    ApiCaller(user): ApiCaller,
    headers: HeaderMap,
    multipart: Multipart,
) -> Result<Response, ApiFailure> {
    match receive_upload(&web, &user, &headers, multipart, None).await {
        Ok(f) => Ok((StatusCode::CREATED, Json(File::from_proto(f))).into_response()),
        Err(UploadError::Status(s)) => Err(s.into()),
        Err(e) => {
            let code = match e {
                UploadError::TooLarge(_) => "too_large",
                _ => "invalid_argument",
            };
            Err(ApiFailure::new(e.status(), code, e.to_string()))
        }
    }
}

/// List my files.
#[utoipa::path(get, path = "/api/v1/files", tag = "files", params(Paging),
    responses((status = 200, body = FileList), (status = 401, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn list_files(
    State(web): State<Web>,
    ApiCaller(user): ApiCaller,
    Query(p): Query<Paging>,
) -> Result<Json<FileList>, ApiFailure> {
    let r = web
        .jobs_api()
        .list_files(
            &user,
            p.limit.unwrap_or(0),
            p.cursor.as_deref().unwrap_or(""),
        )
        .await?;
    Ok(Json(FileList {
        items: r.files.into_iter().map(File::from_proto).collect(),
        next_cursor: cursor(r.next_page_token),
    }))
}

/// One file's metadata.
#[utoipa::path(get, path = "/api/v1/files/{id}", tag = "files", params(("id" = String, Path)),
    responses((status = 200, body = File), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn get_file(
    State(web): State<Web>,
    ApiCaller(user): ApiCaller,
    Path(id): Path<String>,
) -> Result<Json<File>, ApiFailure> {
    Ok(Json(File::from_proto(
        web.jobs_api().get_file(&user, &id).await?,
    )))
}

/// Download a file's content.
#[utoipa::path(get, path = "/api/v1/files/{id}/content", tag = "files", params(("id" = String, Path)),
    responses((status = 200, content_type = "application/octet-stream", description = "The content"),
        (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn download_file(
    State(web): State<Web>,
    ApiCaller(user): ApiCaller,
    Path(id): Path<String>,
) -> Result<Response, ApiFailure> {
    Ok(crate::download::respond(&web, &user, &id, false).await?)
}

/// Delete a file.
#[utoipa::path(delete, path = "/api/v1/files/{id}", tag = "files", params(("id" = String, Path)),
    responses((status = 204, description = "Deleted"), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn delete_file(
    State(web): State<Web>,
    ApiCaller(user): ApiCaller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiFailure> {
    web.jobs_api().delete_file(&user, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Submit a job.
#[utoipa::path(post, path = "/api/v1/jobs", tag = "jobs", request_body = NewJob,
    responses((status = 201, body = Job), (status = 400, body = ErrorBody, description = "Invalid fields, each named"),
        (status = 409, body = ErrorBody, description = "The kind cannot run here, or the idempotency key was used for other parameters"),
        (status = 429, body = ErrorBody, description = "Submitting too fast")),
    security(("bearer" = [])))]
pub async fn submit_job(
    State(web): State<Web>,
    ApiCaller(user): ApiCaller,
    Json(j): Json<NewJob>,
) -> Result<Response, ApiFailure> {
    if let Err(wait) = web.submit_limit().hit(&format!("submit:{}", user.id)) {
        return Err(ApiFailure::rate_limited(
            "too many job submissions; slow down",
            wait.as_secs().max(1),
        ));
    }
    let kinds = web.kinds().await?;
    let mut req = kinds
        .submit_request(&j.kind, &j.params, j.input_file_ids)
        .map_err(ApiFailure::invalid)?;
    req.idempotency_key = j.idempotency_key;
    req.priority = j.priority;
    req.max_attempts = j.max_attempts;
    let job = match web.jobs_api().submit(&user, req).await {
        Ok(job) => job,
        Err(s) if s.code() == tonic::Code::InvalidArgument => {
            let fields = crate::error::field_errors(&s)
                .into_iter()
                .map(|mut f| {
                    f.field = kinds.json_field(&j.kind, f.field);
                    f
                })
                .collect();
            return Err(ApiFailure::invalid(fields));
        }
        Err(s) => return Err(s.into()),
    };
    Ok((StatusCode::CREATED, Json(Job::from_proto(job, &kinds))).into_response())
}

/// List my jobs.
#[utoipa::path(get, path = "/api/v1/jobs", tag = "jobs", params(Paging, JobFilter),
    responses((status = 200, body = JobList), (status = 400, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn list_jobs(
    State(web): State<Web>,
    ApiCaller(user): ApiCaller,
    Query(p): Query<Paging>,
    Query(f): Query<JobFilter>,
) -> Result<Json<JobList>, ApiFailure> {
    let states = match f.state.as_deref().filter(|s| !s.is_empty()) {
        None => Vec::new(),
        Some(s) => vec![parse_state(s).ok_or_else(|| {
            ApiFailure::invalid(vec![FieldError {
                field: "state".into(),
                description: format!(
                    "{s:?} is not a state: queued, running, succeeded, failed or cancelled"
                ),
            }])
        })? as i32],
    };
    let kinds = web.kinds().await?;
    let r = web
        .jobs_api()
        .list_jobs(
            &user,
            pb::ListJobsRequest {
                page_size: p.limit.unwrap_or(0),
                page_token: p.cursor.unwrap_or_default(),
                states,
                kind: f.kind.unwrap_or_default(),
                all_users: false,
            },
        )
        .await?;
    Ok(Json(JobList {
        items: r
            .jobs
            .into_iter()
            .map(|j| Job::from_proto(j, &kinds))
            .collect(),
        next_cursor: cursor(r.next_page_token),
    }))
}

/// One job.
#[utoipa::path(get, path = "/api/v1/jobs/{id}", tag = "jobs", params(("id" = String, Path)),
    responses((status = 200, body = Job), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn get_job(
    State(web): State<Web>,
    ApiCaller(user): ApiCaller,
    Path(id): Path<String>,
) -> Result<Json<Job>, ApiFailure> {
    let j = web.jobs_api().get_job(&user, &id).await?;
    Ok(Json(Job::from_proto(j, &web.kinds().await?)))
}

/// Cancel a job (a running job stops shortly after).
#[utoipa::path(post, path = "/api/v1/jobs/{id}/cancel", tag = "jobs", params(("id" = String, Path)),
    responses((status = 200, body = Job), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "Already finished")),
    security(("bearer" = [])))]
pub async fn cancel_job(
    State(web): State<Web>,
    ApiCaller(user): ApiCaller,
    Path(id): Path<String>,
) -> Result<Json<Job>, ApiFailure> {
    let j = web.jobs_api().cancel(&user, &id).await?;
    Ok(Json(Job::from_proto(j, &web.kinds().await?)))
}

/// Queue a failed or cancelled job again.
#[utoipa::path(post, path = "/api/v1/jobs/{id}/retry", tag = "jobs", params(("id" = String, Path)),
    responses((status = 200, body = Job), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "Not failed or cancelled")),
    security(("bearer" = [])))]
pub async fn retry_job(
    State(web): State<Web>,
    ApiCaller(user): ApiCaller,
    Path(id): Path<String>,
) -> Result<Json<Job>, ApiFailure> {
    let j = web.jobs_api().retry(&user, &id).await?;
    Ok(Json(Job::from_proto(j, &web.kinds().await?)))
}

/// The API's OpenAPI document.
#[derive(OpenApi)]
#[openapi(
    info(title = "Forklift API", description = "Files and jobs. Authenticate with `Authorization: Bearer <token>`; create tokens on the API tokens page."),
    paths(upload_file, list_files, get_file, download_file, delete_file,
          submit_job, list_jobs, get_job, cancel_job, retry_job, crate::events::api_job_events),
    components(schemas(File, Job, crate::model::JobOutput, FileList, JobList, NewJob, ErrorBody,
        crate::error::ErrorDetail, FieldError)),
    modifiers(&BearerAuth),
    tags((name = "files", description = "Uploads and outputs"), (name = "jobs", description = "Work on files"))
)]
pub struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        openapi
            .components
            .get_or_insert_with(Default::default)
            .add_security_scheme(
                "bearer",
                SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
            );
    }
}

/// `GET /api/v1/openapi.json`: the document, with each job kind's parameters as the
/// jobs service describes them (without them while it cannot be reached).
pub async fn openapi(State(web): State<Web>) -> impl IntoResponse {
    let mut doc = ApiDoc::openapi();
    if let Ok(kinds) = web.kinds().await {
        crate::kinds::document_params(&kinds, &mut doc);
    }
    Json(doc)
}

/// Unknown API paths: the API's error shape, not the HTML 404 page.
pub async fn not_found() -> ApiFailure {
    ApiFailure::new(StatusCode::NOT_FOUND, "not_found", "no such API endpoint")
}
