//! Multipart uploads, streamed: each chunk goes on to the Files service as it arrives,
//! so memory stays flat whatever the file size, and an upload over the limit is cut
//! off (and nothing stored) as soon as it crosses it.

use crate::jobs_api::UploadPart;
use crate::session::Csrf;
use crate::state::Web;
use axum::extract::Multipart;
use axum::http::{HeaderMap, StatusCode, header};
use forklift_domain::User;
use forklift_rpc::v1 as pb;
use tokio_stream::wrappers::ReceiverStream;

/// Why an upload was refused.
#[derive(Debug)]
pub enum UploadError {
    /// Larger than the limit.
    TooLarge(u64),
    /// No `file` field.
    NoFile,
    /// The form's CSRF token is missing or wrong.
    Csrf,
    /// The multipart body is malformed.
    Malformed(String),
    /// The Files service refused it.
    Status(tonic::Status),
}

impl std::error::Error for UploadError {}

impl std::fmt::Display for UploadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            UploadError::TooLarge(max) => write!(
                f,
                "The file is larger than the upload limit of {}.",
                forklift_domain::human_bytes(*max)
            ),
            UploadError::NoFile => f.write_str("Choose a file to upload (form field \"file\")."),
            UploadError::Csrf => f.write_str("The form's CSRF token is missing or wrong."),
            UploadError::Malformed(m) => write!(f, "The upload could not be read: {m}"),
            UploadError::Status(s) => f.write_str(s.message()),
        }
    }
}

impl UploadError {
    /// The HTTP status to answer with.
    pub fn status(&self) -> StatusCode {
        match self {
            UploadError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            UploadError::Csrf => StatusCode::FORBIDDEN,
            UploadError::NoFile | UploadError::Malformed(_) => StatusCode::BAD_REQUEST,
            UploadError::Status(s) => crate::error::http_status(s.code()),
        }
    }
}

/// Reads a multipart body: an optional `csrf` field (checked when `csrf` is given; it
/// must come before the file, as browsers send fields in form order), then `file`,
/// which is streamed to storage.
pub async fn receive_upload(
    web: &Web,
    user: &User,
    headers: &HeaderMap,
    mut multipart: Multipart,
    csrf: Option<&Csrf>,
) -> Result<pb::File, UploadError> {
    let max = web.max_upload_bytes();
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    // The multipart framing adds a little; anything far over the limit is refused
    // before a byte is read.
    if declared.is_some_and(|n| n > max + 64 * 1024) {
        return Err(UploadError::TooLarge(max));
    }
    let mut csrf_ok = csrf.is_none();
    loop {
        let field = multipart
            .next_field()
            .await
            .map_err(|e| malformed(e, max))?
            .ok_or(UploadError::NoFile)?;
        match field.name() {
            Some("csrf") => {
                let v = field.text().await.map_err(|e| malformed(e, max))?;
                csrf_ok = csrf.is_none_or(|c| c.verify(&v));
            }
            Some("file") => {
                if !csrf_ok {
                    return Err(UploadError::Csrf);
                }
                let name = field
                    .file_name()
                    .map(|n| n.rsplit(['/', '\\']).next().unwrap_or(n).to_owned())
                    .filter(|n| !n.is_empty())
                    .ok_or(UploadError::NoFile)?;
                // The media type without parameters (`; charset=…`), which files keep none of.
                let content_type = field
                    .content_type()
                    .map(|ct| ct.split(';').next().unwrap_or_default().trim())
                    .filter(|ct| *ct != "application/octet-stream")
                    .unwrap_or("")
                    .to_owned();
                return stream_field(web, user, &name, &content_type, field, max).await;
            }
            _ => {}
        }
    }
}

fn malformed(e: axum::extract::multipart::MultipartError, max: u64) -> UploadError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        UploadError::TooLarge(max)
    } else {
        UploadError::Malformed(e.body_text())
    }
}

async fn stream_field(
    web: &Web,
    user: &User,
    name: &str,
    content_type: &str,
    mut field: axum::extract::multipart::Field<'_>,
    max: u64,
) -> Result<pb::File, UploadError> {
    let (tx, rx) = tokio::sync::mpsc::channel::<UploadPart>(4);
    let upload = web
        .jobs_api()
        .upload(user, name, content_type, ReceiverStream::new(rx));
    // Why the pump gave up, if it did: the upload's answer to the abandoned stream
    // is then beside the point.
    let gave_up = std::sync::Mutex::new(None);
    let gave_up_ref = &gave_up;
    // Owns the sender: the stream ends when the pump does.
    let pump = async move {
        let mut total = 0u64;
        let failure = loop {
            let chunk = match field.chunk().await {
                Ok(Some(chunk)) => chunk,
                Ok(None) => return,
                Err(e) => break malformed(e, max),
            };
            total += chunk.len() as u64;
            if total > max {
                break UploadError::TooLarge(max);
            }
            for part in chunk.chunks(crate::jobs_api::UPLOAD_CHUNK) {
                if tx
                    .send(UploadPart::Chunk(chunk.slice_ref(part)))
                    .await
                    .is_err()
                {
                    // The upload call ended early; its result says why.
                    return;
                }
            }
        };
        *gave_up_ref.lock().unwrap_or_else(|e| e.into_inner()) = Some(failure);
        // Said before the stream ends, so that the Files service refuses what it has
        // (an ended stream alone would be a complete file to it).
        let _ = tx.send(UploadPart::Abandon).await;
    };
    tokio::pin!(upload, pump);
    let mut pumped = false;
    loop {
        tokio::select! {
            r = &mut upload => {
                return match gave_up.lock().unwrap_or_else(|e| e.into_inner()).take() {
                    Some(e) => Err(e),
                    None => r.map_err(UploadError::Status),
                };
            }
            () = &mut pump, if !pumped => {
                pumped = true;
                if let Some(e) = gave_up.lock().unwrap_or_else(|e| e.into_inner()).take() {
                    // The Files service refuses the upload (or sees it cancelled as
                    // the call is dropped here) and stores nothing.
                    return Err(e);
                }
            }
        }
    }
}
