//! The file pages: the list with its upload form, uploads, one file's page, its
//! downloads and deletion.

use super::{Chrome, CsrfOnly, ListQuery, check_csrf, render, see_other};
use crate::error::{FieldError, PageError};
use crate::model::File;
use crate::session::{Csrf, SignedIn};
use crate::state::Web;
use crate::upload::{UploadError, receive_upload};
use askama::Template;
use axum::extract::{Multipart, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Form, Router};
use forklift_domain::User;

/// The file pages that answer quickly.
pub fn router() -> Router<Web> {
    Router::new()
        .route("/files", get(files_index))
        .route("/files/{id}", get(file_page))
        .route("/files/{id}/delete", post(file_delete))
}

/// Uploads and downloads: streams of any size, which `routes` gives other limits.
pub fn streams() -> Router<Web> {
    Router::new()
        .route("/files", post(upload))
        .route("/files/{id}/download", get(file_download))
        .route("/files/{id}/raw", get(file_raw))
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
        .jobs_api()
        .list_files(&user, 50, q.cursor.as_deref().unwrap_or(""))
        .await?;
    render(&FilesPage {
        page: Chrome::new("Files", "files", Some(&user), &csrf),
        files: r.files.into_iter().map(File::from_proto).collect(),
        next: r.next_page_token,
        max_upload: forklift_domain::human_bytes(web.max_upload_bytes()),
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
    forms: Vec<KindForm>,
    error: String,
    fields: Vec<FieldError>,
}

/// A form that starts a job of one kind, as the kind's description has it.
struct KindForm {
    kind: String,
    id: String,
    title: String,
    action: String,
    inputs: Vec<crate::kinds::FormInput>,
}

/// The file page, with a start-a-job form's problems when it is answering one.
pub(super) async fn file_page_with(
    web: &Web,
    user: &User,
    csrf: &Csrf,
    id: &str,
    error: String,
    fields: Vec<FieldError>,
    status: StatusCode,
) -> Result<Response, PageError> {
    let (file, kinds) = tokio::try_join!(web.jobs_api().get_file(user, id), web.kinds())?;
    let file = File::from_proto(file);
    let forms = kinds
        .for_file(&file.content_type, &file.name)
        .into_iter()
        .map(|k| KindForm {
            kind: k.name.clone(),
            id: k.params_field.clone(),
            title: k.title.clone(),
            action: k.action.clone(),
            inputs: crate::kinds::form_inputs(k),
        })
        .collect();
    let mut res = render(&FilePage {
        page: Chrome::new(&file.name, "files", Some(user), csrf),
        forms,
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
    web.jobs_api().delete_file(&user, &id).await?;
    Ok(see_other("/files"))
}
