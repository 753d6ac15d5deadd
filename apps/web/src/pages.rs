//! The server-rendered pages. Every form posts to a handler here and redirects
//! (POST/redirect/GET), so the site works without JavaScript; `static/app.js` only
//! adds live progress and drag-and-drop.

use crate::assets;
use crate::error::{PageError, field_errors};
use crate::model::{File, Job, parse_state};
use crate::session::{
    AdminUser, Csrf, SESSION_COOKIE, SESSION_DAYS, SignedIn, Viewer, new_session_id, set_cookie,
};
use crate::state::Web;
use crate::upload::{UploadError, receive_upload};
use askama::Template;
use axum::Form;
use axum::extract::{Multipart, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use forklift_domain::{Role, User, now_ms};
use forklift_engine::auth::{hash_password, hash_token, new_token, verify_password};
use forklift_rpc::v1 as pb;
use serde::Deserialize;

/// What every page's layout needs.
pub struct Chrome {
    /// The page title (before " · Forklift").
    pub title: String,
    /// The meta description.
    pub description: String,
    /// The signed-in user, if any.
    pub user: Option<ChromeUser>,
    /// The CSRF token for forms on this page (empty when it has none).
    pub csrf: String,
    /// Which navigation entry is current.
    pub nav: &'static str,
    /// Stylesheet URL (content-hashed).
    pub css: &'static str,
    /// Script URL (content-hashed).
    pub js: &'static str,
    /// Absolute addresses for link previews (OpenGraph), on pages worth sharing.
    pub og: Option<OpenGraph>,
}

/// A shareable page's absolute addresses.
pub struct OpenGraph {
    /// The page (`og:url`).
    pub url: String,
    /// Its preview picture (`og:image`).
    pub image: String,
}

/// The signed-in user as the layout shows them.
pub struct ChromeUser {
    /// Their email.
    pub email: String,
    /// Whether to show the admin link.
    pub admin: bool,
}

impl Chrome {
    /// The layout for a visitor who is not signed in and sees no form.
    pub fn anonymous(title: &str) -> Self {
        Self {
            title: title.to_owned(),
            description: DESCRIPTION.to_owned(),
            user: None,
            csrf: String::new(),
            nav: "",
            css: assets::css_url(),
            js: assets::js_url(),
            og: None,
        }
    }

    fn new(title: &str, nav: &'static str, user: Option<&User>, csrf: &Csrf) -> Self {
        Self {
            user: user.map(|u| ChromeUser {
                email: u.email.clone(),
                admin: u.role == Role::Admin,
            }),
            csrf: csrf.token().to_owned(),
            nav,
            ..Self::anonymous(title)
        }
    }
}

const DESCRIPTION: &str = "Forklift turns uploads into results: image thumbnails, data-profile \
reports from CSV and web-ready video, processed in the background with live progress.";

fn render(t: &impl Template) -> Result<Response, PageError> {
    let mut res = Html(t.render()?).into_response();
    res.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-cache"),
    );
    Ok(res)
}

fn see_other(to: &str) -> Response {
    Redirect::to(to).into_response()
}

fn check_csrf(csrf: &Csrf, submitted: &str) -> Result<(), PageError> {
    if csrf.verify(submitted) {
        Ok(())
    } else {
        Err(PageError::Bad(
            StatusCode::FORBIDDEN,
            "This form has expired or did not come from this site (CSRF check failed). \
             Go back, reload the page and try again."
                .into(),
        ))
    }
}

/// Only local paths are followed after sign-in: one leading `/`, then only characters
/// that may stand unescaped in a URL path and query (RFC 3986's unreserved, sub-delims,
/// `:@/?%#`). Anything a browser could read as another host — `//host`, `/\\host`, or a
/// tab or newline that browsers strip (`/\t/host` is `//host`) — gives the dashboard.
fn safe_next(next: Option<&str>) -> &str {
    let allowed = |c: char| c.is_ascii_alphanumeric() || "-._~!$&'()*+,;=:@/?%#".contains(c);
    match next {
        Some(n) if n.starts_with('/') && !n.starts_with("//") && n.chars().all(allowed) => n,
        _ => "/dashboard",
    }
}

// ---- landing ----

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

// ---- accounts ----

#[derive(Template)]
#[template(path = "auth.html")]
struct AuthPage {
    page: Chrome,
    signup: bool,
    email: String,
    next: String,
    error: String,
}

/// `?next=` of the sign-in and sign-up pages.
#[derive(Deserialize)]
pub struct NextQuery {
    next: Option<String>,
}

fn auth_page(
    signup: bool,
    csrf: &Csrf,
    email: &str,
    next: &str,
    error: &str,
    status: StatusCode,
) -> Result<Response, PageError> {
    let title = if signup {
        "Create your account"
    } else {
        "Sign in"
    };
    let page = AuthPage {
        page: Chrome::new(title, if signup { "signup" } else { "signin" }, None, csrf),
        signup,
        email: email.to_owned(),
        next: next.to_owned(),
        error: error.to_owned(),
    };
    let mut res = render(&page)?;
    *res.status_mut() = status;
    Ok(res)
}

/// `GET /signin`.
pub async fn signin_form(
    Viewer(user): Viewer,
    csrf: Csrf,
    Query(q): Query<NextQuery>,
) -> Result<Response, PageError> {
    let next = safe_next(q.next.as_deref());
    if user.is_some() {
        return Ok(see_other(next));
    }
    auth_page(false, &csrf, "", next, "", StatusCode::OK)
}

/// `GET /signup`.
pub async fn signup_form(
    Viewer(user): Viewer,
    csrf: Csrf,
    Query(q): Query<NextQuery>,
) -> Result<Response, PageError> {
    let next = safe_next(q.next.as_deref());
    if user.is_some() {
        return Ok(see_other(next));
    }
    auth_page(true, &csrf, "", next, "", StatusCode::OK)
}

/// The sign-in and sign-up form.
#[derive(Deserialize)]
pub struct Credentials {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    next: Option<String>,
}

/// Starts a session for `user` and redirects to `next`.
async fn start_session(web: &Web, user: &User, next: &str) -> Result<Response, PageError> {
    let (id, hash) = new_session_id();
    let ttl = SESSION_DAYS * 86_400;
    web.store()
        .create_session(&hash, user.id, now_ms() + ttl * 1000)
        .await?;
    let mut res = see_other(next);
    res.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(SESSION_COOKIE, &id, ttl, web.secure_cookies()),
    );
    Ok(res)
}

/// `POST /signup`.
pub async fn signup(
    State(web): State<Web>,
    csrf: Csrf,
    Form(f): Form<Credentials>,
) -> Result<Response, PageError> {
    check_csrf(&csrf, &f.csrf)?;
    let next = safe_next(f.next.as_deref());
    let email = f.email.trim().to_lowercase();
    let problem = if !valid_email(&email) {
        Some("Enter an email address like name@example.com.")
    } else if f.password.chars().count() < 10 {
        Some("Choose a password of at least 10 characters.")
    } else if f.password.len() > 1024 {
        Some("That password is too long (at most 1024 bytes).")
    } else {
        None
    };
    if let Some(p) = problem {
        return auth_page(
            true,
            &csrf,
            &email,
            next,
            p,
            StatusCode::UNPROCESSABLE_ENTITY,
        );
    }
    let password = f.password.clone();
    let hash = web
        .password_work(move || hash_password(&password))
        .await?
        .map_err(PageError::internal)?;
    match web
        .store()
        .create_account(&email, &hash, Role::User)
        .await?
    {
        Some(user) => {
            tracing::info!(user_id = %user.id, "account created");
            start_session(&web, &user, next).await
        }
        None => auth_page(
            true,
            &csrf,
            &email,
            next,
            "An account with this email already exists. Sign in instead.",
            StatusCode::CONFLICT,
        ),
    }
}

fn valid_email(e: &str) -> bool {
    e.len() <= 254
        && e.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty() && !domain.is_empty() && !e.contains(char::is_whitespace)
        })
}

/// `POST /signin`. Failed attempts are limited per account.
pub async fn signin(
    State(web): State<Web>,
    csrf: Csrf,
    Form(f): Form<Credentials>,
) -> Result<Response, PageError> {
    check_csrf(&csrf, &f.csrf)?;
    let next = safe_next(f.next.as_deref());
    let email = f.email.trim().to_lowercase();
    let key = format!("signin:{email}");
    // A token is taken before the password is checked and given back when it is
    // right: concurrent guesses cannot all pass a check made before any failed.
    if let Err(wait) = web.signin_limit().hit(&key) {
        let mins = wait.as_secs().div_ceil(60).max(1);
        let msg = format!(
            "Too many failed sign-ins for this account. Try again in {mins} minute{}.",
            if mins == 1 { "" } else { "s" }
        );
        let mut res = auth_page(
            false,
            &csrf,
            &email,
            next,
            &msg,
            StatusCode::TOO_MANY_REQUESTS,
        )?;
        res.headers_mut().insert(
            header::RETRY_AFTER,
            HeaderValue::from(wait.as_secs().max(1)),
        );
        return Ok(res);
    }
    let found = web.store().credentials(&email).await?;
    // Verify against a fixed hash when the account does not exist, so that timing does
    // not tell which emails have accounts.
    let hash = match &found {
        Some((_, Some(hash))) => Some(hash.clone()),
        _ => None,
    };
    let password = f.password.clone();
    let ok = web
        .password_work(move || match hash {
            Some(hash) => verify_password(&password, &hash),
            None => {
                verify_password(&password, dummy_hash());
                false
            }
        })
        .await?;
    match found {
        Some((user, _)) if ok => {
            web.signin_limit().reset(&key);
            start_session(&web, &user, next).await
        }
        _ => auth_page(
            false,
            &csrf,
            &email,
            next,
            "That email and password do not match an account.",
            StatusCode::UNAUTHORIZED,
        ),
    }
}

fn dummy_hash() -> &'static str {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| hash_password("not a real password").unwrap_or_default())
}

/// A form with only the CSRF token.
#[derive(Deserialize)]
pub struct CsrfOnly {
    #[serde(default)]
    csrf: String,
}

/// `POST /signout`: the session ends server-side, so a copied cookie stops working.
pub async fn signout(
    State(web): State<Web>,
    csrf: Csrf,
    headers: HeaderMap,
    Form(f): Form<CsrfOnly>,
) -> Result<Response, PageError> {
    check_csrf(&csrf, &f.csrf)?;
    if let Some(id) = crate::session::cookie(&headers, SESSION_COOKIE) {
        web.store().delete_session(&hash_token(id)).await?;
    }
    let mut res = see_other("/");
    res.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(SESSION_COOKIE, "", 0, web.secure_cookies()),
    );
    Ok(res)
}

// ---- dashboard, files, jobs ----

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
    let b = web.backend();
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
    render(&Dashboard {
        page: Chrome::new("Dashboard", "dashboard", Some(&user), &csrf),
        more_files: !files.next_page_token.is_empty(),
        more_jobs: !jobs.next_page_token.is_empty(),
        files: files.files.into_iter().map(File::from_proto).collect(),
        jobs: jobs
            .jobs
            .into_iter()
            .map(|j| Job::from_proto(j, web.registry()))
            .collect(),
        max_upload: crate::model::human_bytes(web.max_upload_bytes()),
    })
}

/// `?cursor=` (and filters) of list pages.
#[derive(Deserialize, Default)]
pub struct ListQuery {
    cursor: Option<String>,
    state: Option<String>,
    kind: Option<String>,
}

#[derive(Template)]
#[template(path = "files.html")]
struct FilesPage {
    page: Chrome,
    files: Vec<File>,
    next: String,
    max_upload: String,
}

/// `GET /files`: all my files, paged.
pub async fn files_index(
    State(web): State<Web>,
    SignedIn(user): SignedIn,
    csrf: Csrf,
    Query(q): Query<ListQuery>,
) -> Result<Response, PageError> {
    let r = web
        .backend()
        .list_files(&user, 50, q.cursor.as_deref().unwrap_or(""))
        .await?;
    render(&FilesPage {
        page: Chrome::new("Files", "files", Some(&user), &csrf),
        files: r.files.into_iter().map(File::from_proto).collect(),
        next: r.next_page_token,
        max_upload: crate::model::human_bytes(web.max_upload_bytes()),
    })
}

/// `POST /files`: a multipart upload, streamed to storage as it arrives.
pub async fn upload(
    State(web): State<Web>,
    SignedIn(user): SignedIn,
    csrf: Csrf,
    headers: HeaderMap,
    multipart: Multipart,
) -> Result<Response, PageError> {
    match receive_upload(&web, &user, &headers, multipart, Some(&csrf)).await {
        Ok(file) => Ok(see_other(&format!("/files/{}", file.id))),
        Err(UploadError::Csrf) => check_csrf(&csrf, "").map(|_| see_other("/")),
        Err(UploadError::Status(s)) => Err(PageError::Rpc(s)),
        Err(e) => Err(PageError::Bad(e.status(), e.to_string())),
    }
}

#[derive(Template)]
#[template(path = "file.html")]
struct FilePage {
    page: Chrome,
    file: File,
    kinds: Vec<&'static str>,
    error: String,
    fields: Vec<crate::error::FieldError>,
}

async fn file_page_with(
    web: &Web,
    user: &User,
    csrf: &Csrf,
    id: &str,
    error: String,
    fields: Vec<crate::error::FieldError>,
    status: StatusCode,
) -> Result<Response, PageError> {
    let file = File::from_proto(web.backend().get_file(user, id).await?);
    let mut res = render(&FilePage {
        page: Chrome::new(&file.name, "files", Some(user), csrf),
        kinds: file.kinds(),
        file,
        error,
        fields,
    })?;
    *res.status_mut() = status;
    Ok(res)
}

/// `GET /files/{id}`: details, a preview for images, forms to start jobs.
pub async fn file_page(
    State(web): State<Web>,
    SignedIn(user): SignedIn,
    csrf: Csrf,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    file_page_with(
        &web,
        &user,
        &csrf,
        &id,
        String::new(),
        Vec::new(),
        StatusCode::OK,
    )
    .await
}

/// `GET /files/{id}/download`: the content as an attachment.
pub async fn file_download(
    State(web): State<Web>,
    SignedIn(user): SignedIn,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    Ok(crate::download::respond(&web, &user, &id, false).await?)
}

/// `GET /files/{id}/raw`: images inline (for previews); anything else as a download.
pub async fn file_raw(
    State(web): State<Web>,
    SignedIn(user): SignedIn,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    Ok(crate::download::respond(&web, &user, &id, true).await?)
}

/// `POST /files/{id}/delete`.
pub async fn file_delete(
    State(web): State<Web>,
    SignedIn(user): SignedIn,
    csrf: Csrf,
    Path(id): Path<String>,
    Form(f): Form<CsrfOnly>,
) -> Result<Response, PageError> {
    check_csrf(&csrf, &f.csrf)?;
    web.backend().delete_file(&user, &id).await?;
    Ok(see_other("/files"))
}

/// The start-a-job form on a file page (fields depend on the kind).
#[derive(Deserialize)]
pub struct JobForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    kind: String,
    width: Option<String>,
    height: Option<String>,
    fit: Option<String>,
    format: Option<String>,
    quality: Option<String>,
    delimiter: Option<String>,
    header: Option<String>,
}

fn number(field: &str, v: &Option<String>, errors: &mut Vec<crate::error::FieldError>) -> u32 {
    match v.as_deref().map(str::trim) {
        None | Some("") => 0,
        Some(s) => s.parse().unwrap_or_else(|_| {
            errors.push(crate::error::FieldError {
                field: field.into(),
                description: format!("{s:?} is not a whole number"),
            });
            0
        }),
    }
}

/// The kind's parameters as JSON, from the form.
fn form_params(f: &JobForm) -> Result<serde_json::Value, Vec<crate::error::FieldError>> {
    let mut errors = Vec::new();
    let text = |v: &Option<String>| v.as_deref().unwrap_or("").trim().to_owned();
    let params = match f.kind.as_str() {
        "image.thumbnail" => {
            let width = number("width", &f.width, &mut errors);
            let height = number("height", &f.height, &mut errors);
            let quality = number("quality", &f.quality, &mut errors);
            let mut p = serde_json::json!({
                "sizes": [{"width": width, "height": height}],
                "quality": quality,
            });
            for (k, v) in [("fit", text(&f.fit)), ("format", text(&f.format))] {
                if !v.is_empty() {
                    p[k] = v.into();
                }
            }
            p
        }
        "data.profile" => {
            let mut p = serde_json::json!({ "delimiter": text(&f.delimiter) });
            let header = text(&f.header);
            if !header.is_empty() {
                p["header"] = header.into();
            }
            p
        }
        "video.transcode" => {
            serde_json::json!({ "height": number("height", &f.height, &mut errors) })
        }
        _ => serde_json::json!({}),
    };
    if errors.is_empty() {
        Ok(params)
    } else {
        Err(errors)
    }
}

/// `POST /files/{id}/jobs`: starts a job on the file, then shows it.
pub async fn start_job(
    State(web): State<Web>,
    SignedIn(user): SignedIn,
    csrf: Csrf,
    Path(id): Path<String>,
    Form(f): Form<JobForm>,
) -> Result<Response, PageError> {
    check_csrf(&csrf, &f.csrf)?;
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
    let params = match form_params(&f) {
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
    let req = match crate::api::submit_request(&web, &f.kind, params, vec![id.clone()]) {
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
    match web.backend().submit(&user, req).await {
        Ok(job) => Ok(see_other(&format!("/jobs/{}", job.id))),
        Err(s)
            if s.code() == tonic::Code::InvalidArgument
                || s.code() == tonic::Code::FailedPrecondition =>
        {
            let fields = field_errors(&s);
            rerender(
                s.message().to_owned(),
                fields,
                crate::error::http_status(s.code()),
            )
            .await
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
pub const STATES: [&str; 5] = ["queued", "running", "succeeded", "failed", "cancelled"];

/// `GET /jobs`: all my jobs, filtered by state, paged.
pub async fn jobs_index(
    State(web): State<Web>,
    SignedIn(user): SignedIn,
    csrf: Csrf,
    Query(q): Query<ListQuery>,
) -> Result<Response, PageError> {
    let state = q.state.as_deref().and_then(parse_state);
    let r = web
        .backend()
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
    render(&JobsPage {
        page: Chrome::new("Jobs", "jobs", Some(&user), &csrf),
        jobs: r
            .jobs
            .into_iter()
            .map(|j| Job::from_proto(j, web.registry()))
            .collect(),
        state: state
            .map(|s| crate::model::state_name(s).to_owned())
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
    let job = Job::from_proto(web.backend().get_job(&user, &id).await?, web.registry());
    let mut inputs = Vec::new();
    for f in &job.input_file_ids {
        // An input deleted since is simply not listed.
        if let Ok(f) = web.backend().get_file(&user, f).await {
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
    web.backend().cancel(&user, &id).await?;
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
    web.backend().retry(&user, &id).await?;
    Ok(see_other(&format!("/jobs/{id}")))
}

#[derive(Template)]
#[template(path = "report.html")]
struct ReportPage {
    page: Chrome,
    job: Job,
    html_file: Option<String>,
    json_file: String,
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
    let job = Job::from_proto(web.backend().get_job(&user, &id).await?, web.registry());
    let report_file = job
        .report_file()
        .ok_or(PageError::NotFound)?
        .file_id
        .clone();
    let bytes = web
        .backend()
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
        body: forklift_profile::render_body(&report),
        job,
        html_file,
        json_file: report_file,
    })
}

// ---- API tokens ----

#[derive(Template)]
#[template(path = "tokens.html")]
struct TokensPage {
    page: Chrome,
    tokens: Vec<forklift_store::ApiToken>,
    created: String,
    created_name: String,
    error: String,
}

async fn tokens_page_with(
    web: &Web,
    user: &User,
    csrf: &Csrf,
    created: (String, String),
    error: &str,
    status: StatusCode,
) -> Result<Response, PageError> {
    let tokens = web.store().list_api_tokens(user.id).await?;
    let mut res = render(&TokensPage {
        page: Chrome::new("API tokens", "tokens", Some(user), csrf),
        tokens,
        created: created.0,
        created_name: created.1,
        error: error.to_owned(),
    })?;
    *res.status_mut() = status;
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(res)
}

/// When a token was created (RFC 3339).
pub fn created(t: &forklift_store::ApiToken) -> String {
    crate::model::rfc3339(t.created_at)
}

/// `GET /tokens`.
pub async fn tokens_page(
    State(web): State<Web>,
    SignedIn(user): SignedIn,
    csrf: Csrf,
) -> Result<Response, PageError> {
    tokens_page_with(&web, &user, &csrf, Default::default(), "", StatusCode::OK).await
}

/// The new-token form.
#[derive(Deserialize)]
pub struct NewToken {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
}

/// `POST /tokens`: creates a token and shows it once, on this response only (the
/// page is not cached and the token is never stored).
pub async fn tokens_create(
    State(web): State<Web>,
    SignedIn(user): SignedIn,
    csrf: Csrf,
    Form(f): Form<NewToken>,
) -> Result<Response, PageError> {
    check_csrf(&csrf, &f.csrf)?;
    let name = f.name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return tokens_page_with(
            &web,
            &user,
            &csrf,
            Default::default(),
            "Give the token a name of 1 to 100 characters, e.g. where it will be used.",
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    }
    let (token, hash) = new_token();
    web.store().create_api_token(user.id, name, &hash).await?;
    tokens_page_with(
        &web,
        &user,
        &csrf,
        (token, name.to_owned()),
        "",
        StatusCode::CREATED,
    )
    .await
}

/// `POST /tokens/{id}/revoke`.
pub async fn tokens_revoke(
    State(web): State<Web>,
    SignedIn(user): SignedIn,
    csrf: Csrf,
    Path(id): Path<String>,
    Form(f): Form<CsrfOnly>,
) -> Result<Response, PageError> {
    check_csrf(&csrf, &f.csrf)?;
    if !web.store().revoke_api_token(user.id, &id).await? {
        return Err(PageError::NotFound);
    }
    Ok(see_other("/tokens"))
}

// ---- admin ----

#[derive(Template)]
#[template(path = "admin.html")]
struct AdminPage {
    page: Chrome,
    jobs: Vec<Job>,
    failed: Vec<Job>,
    state: String,
    kind: String,
    next: String,
    overview: crate::admin::Overview,
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
    let data =
        crate::admin::load(&web, &user, state, &kind, q.cursor.as_deref().unwrap_or("")).await?;
    render(&AdminPage {
        page: Chrome::new("Admin", "admin", Some(&user), &csrf),
        jobs: data.jobs,
        failed: data.failed,
        state: state
            .map(|s| crate::model::state_name(s).to_owned())
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
    web.backend().retry(&user, &id).await?;
    Ok(see_other("/admin"))
}

/// Anything else: the 404 page.
pub async fn not_found() -> Response {
    PageError::NotFound.into_response()
}

#[cfg(test)]
mod tests {
    use super::safe_next;

    #[test]
    fn only_local_paths_are_followed() {
        for ok in [
            "/",
            "/jobs/01a2",
            "/files?page=2&x=%2F",
            "/admin#top",
            "/.//x",
        ] {
            assert_eq!(safe_next(Some(ok)), ok, "{ok:?}");
        }
        for bad in [
            "//evil.com",
            "/\t/evil.com",
            "/\n/evil.com",
            "/\\evil.com",
            "/\r/evil.com",
            "https://evil.com",
            "evil.com",
            "/ /evil.com",
            "/\u{3000}/evil.com",
            "",
        ] {
            assert_eq!(safe_next(Some(bad)), "/dashboard", "{bad:?}");
        }
        assert_eq!(safe_next(None), "/dashboard");
    }
}
