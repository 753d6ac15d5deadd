//! The web app's only way to files and jobs: the Files and Jobs gRPC API, called on
//! behalf of a signed-in user with the service credentials. In unified mode the
//! transport calls this process's own gRPC services directly; extracted, it is a
//! network connection to the jobs service. Either way the same code runs and the
//! jobs service checks ownership on every call.

use bytes::Bytes;
use forklift_domain::User;
use forklift_rpc::v1 as pb;
use forklift_rpc::v1::admin_client::AdminClient;
use forklift_rpc::v1::files_client::FilesClient;
use forklift_rpc::v1::jobs_client::JobsClient;
use forklift_rpc::{ACTING_ROLE_HEADER, ACTING_USER_HEADER, SERVICE_TOKEN_HEADER};
use forklift_serve::GrpcTransport;
use futures::{Stream, StreamExt};
use tonic::metadata::{Ascii, MetadataValue};
use tonic::{Request, Status};

/// Largest gRPC message (download chunks are at most 256 KiB; uploads send 1 MiB).
const MAX_MESSAGE: usize = 5 * 1024 * 1024;

/// Upload chunk size sent to the Files service.
pub const UPLOAD_CHUNK: usize = 1024 * 1024;

/// One part of an upload's stream.
#[derive(Debug)]
pub enum UploadPart {
    /// The next bytes of the file.
    Chunk(Bytes),
    /// The upload is given up (too large, the client went away): the stream ends with
    /// a message the Files service refuses, so a partial file is never stored — a
    /// merely ended stream would look like a complete, shorter file.
    Abandon,
}

/// gRPC clients plus the credentials to act for users.
#[derive(Clone)]
pub struct JobsApi {
    files: FilesClient<GrpcTransport>,
    jobs: JobsClient<GrpcTransport>,
    admin: AdminClient<GrpcTransport>,
    transport: GrpcTransport,
    service_token: MetadataValue<Ascii>,
}

impl JobsApi {
    /// Clients over `transport`, authenticating with the shared `service_token`.
    pub fn new(transport: GrpcTransport, service_token: &str) -> anyhow::Result<Self> {
        Ok(Self {
            files: FilesClient::new(transport.clone())
                .max_decoding_message_size(MAX_MESSAGE)
                .max_encoding_message_size(MAX_MESSAGE),
            jobs: JobsClient::new(transport.clone()),
            admin: AdminClient::new(transport.clone()),
            transport,
            service_token: service_token
                .parse()
                .map_err(|_| anyhow::anyhow!("FORKLIFT_SERVICE_TOKEN must be printable ASCII"))?,
        })
    }

    /// The transport (for health checks).
    pub fn transport(&self) -> &GrpcTransport {
        &self.transport
    }

    /// A request acting for `user`: the service token, the user's id and role (the
    /// web app has just checked both against the session or API token, so the jobs
    /// service need not look the account up again).
    fn req<T>(&self, user: &User, msg: T) -> Request<T> {
        let mut r = Request::new(msg);
        let md = r.metadata_mut();
        md.insert(SERVICE_TOKEN_HEADER, self.service_token.clone());
        if let Ok(v) = user.id.to_string().parse() {
            md.insert(ACTING_USER_HEADER, v);
        }
        md.insert(
            ACTING_ROLE_HEADER,
            MetadataValue::from_static(user.role.as_str()),
        );
        r
    }

    /// Streams an upload: `chunks` are forwarded as they arrive, never collected.
    pub async fn upload<S>(
        &self,
        user: &User,
        name: &str,
        content_type: &str,
        chunks: S,
    ) -> Result<pb::File, Status>
    where
        S: Stream<Item = UploadPart> + Send + 'static,
    {
        let first = pb::UploadFileRequest {
            data: Some(pb::upload_file_request::Data::Metadata(pb::FileMetadata {
                name: name.to_owned(),
                content_type: content_type.to_owned(),
            })),
        };
        let rest = chunks.map(|part| pb::UploadFileRequest {
            data: match part {
                UploadPart::Chunk(c) => Some(pb::upload_file_request::Data::Chunk(c.to_vec())),
                // A message without data: the Files service refuses the upload.
                UploadPart::Abandon => None,
            },
        });
        let stream = futures::stream::once(async { first }).chain(rest);
        Ok(self
            .files
            .clone()
            .upload_file(self.req(user, stream))
            .await?
            .into_inner())
    }

    /// A file's metadata and a stream of its content.
    pub async fn download(
        &self,
        user: &User,
        id: &str,
    ) -> Result<
        (
            pb::File,
            impl Stream<Item = Result<Bytes, Status>> + Send + 'static,
        ),
        Status,
    > {
        let mut s = self
            .files
            .clone()
            .download_file(self.req(user, pb::DownloadFileRequest { id: id.into() }))
            .await?
            .into_inner();
        let file = match s.message().await? {
            Some(pb::DownloadFileResponse {
                data: Some(pb::download_file_response::Data::File(f)),
            }) => f,
            _ => {
                return Err(Status::internal(
                    "download stream did not start with metadata",
                ));
            }
        };
        let content = s.filter_map(|m| async move {
            match m {
                Ok(pb::DownloadFileResponse {
                    data: Some(pb::download_file_response::Data::Chunk(c)),
                }) => Some(Ok(Bytes::from(c))),
                Ok(_) => None,
                Err(e) => Some(Err(e)),
            }
        });
        Ok((file, content))
    }

    /// A whole (small) file, e.g. a report, refusing anything over `max` bytes.
    pub async fn read_small(&self, user: &User, id: &str, max: u64) -> Result<Vec<u8>, Status> {
        let (file, content) = self.download(user, id).await?;
        if file.size_bytes > max {
            return Err(Status::failed_precondition(format!(
                "{} is {} bytes; at most {max} can be shown here",
                file.name, file.size_bytes
            )));
        }
        let mut out = Vec::with_capacity(file.size_bytes as usize);
        let mut content = std::pin::pin!(content);
        while let Some(c) = content.next().await {
            out.extend_from_slice(&c?);
        }
        Ok(out)
    }

    /// One file.
    pub async fn get_file(&self, user: &User, id: &str) -> Result<pb::File, Status> {
        let r = pb::GetFileRequest { id: id.into() };
        Ok(self
            .files
            .clone()
            .get_file(self.req(user, r))
            .await?
            .into_inner())
    }

    /// A page of files.
    pub async fn list_files(
        &self,
        user: &User,
        page_size: i32,
        page_token: &str,
    ) -> Result<pb::ListFilesResponse, Status> {
        let r = pb::ListFilesRequest {
            page_size,
            page_token: page_token.into(),
        };
        Ok(self
            .files
            .clone()
            .list_files(self.req(user, r))
            .await?
            .into_inner())
    }

    /// Deletes a file.
    pub async fn delete_file(&self, user: &User, id: &str) -> Result<(), Status> {
        let r = pb::DeleteFileRequest { id: id.into() };
        self.files.clone().delete_file(self.req(user, r)).await?;
        Ok(())
    }

    /// Submits a job.
    pub async fn submit(&self, user: &User, r: pb::SubmitJobRequest) -> Result<pb::Job, Status> {
        Ok(self
            .jobs
            .clone()
            .submit_job(self.req(user, r))
            .await?
            .into_inner())
    }

    /// The job kinds the service knows.
    pub async fn list_kinds(&self) -> Result<Vec<pb::KindInfo>, Status> {
        Ok(self
            .jobs
            .clone()
            .list_kinds(pb::ListKindsRequest {})
            .await?
            .into_inner()
            .kinds)
    }

    /// One job.
    pub async fn get_job(&self, user: &User, id: &str) -> Result<pb::Job, Status> {
        let r = pb::GetJobRequest { id: id.into() };
        Ok(self
            .jobs
            .clone()
            .get_job(self.req(user, r))
            .await?
            .into_inner())
    }

    /// A page of jobs.
    pub async fn list_jobs(
        &self,
        user: &User,
        r: pb::ListJobsRequest,
    ) -> Result<pb::ListJobsResponse, Status> {
        Ok(self
            .jobs
            .clone()
            .list_jobs(self.req(user, r))
            .await?
            .into_inner())
    }

    /// Cancels a job.
    pub async fn cancel(&self, user: &User, id: &str) -> Result<pb::Job, Status> {
        let r = pb::CancelJobRequest { id: id.into() };
        Ok(self
            .jobs
            .clone()
            .cancel_job(self.req(user, r))
            .await?
            .into_inner())
    }

    /// Queues a failed or cancelled job again.
    pub async fn retry(&self, user: &User, id: &str) -> Result<pb::Job, Status> {
        let r = pb::RetryJobRequest { id: id.into() };
        Ok(self
            .jobs
            .clone()
            .retry_job(self.req(user, r))
            .await?
            .into_inner())
    }

    /// A job now, then every change until it is final.
    pub async fn watch(&self, user: &User, id: &str) -> Result<tonic::Streaming<pb::Job>, Status> {
        let r = pb::WatchJobRequest { id: id.into() };
        Ok(self
            .jobs
            .clone()
            .watch_job(self.req(user, r))
            .await?
            .into_inner())
    }

    /// Changes to any of the user's jobs: those changed since `since` (or unfinished
    /// ones) first, then every change.
    pub async fn watch_all(
        &self,
        user: &User,
        since: Option<prost_types::Timestamp>,
    ) -> Result<tonic::Streaming<pb::Job>, Status> {
        let r = pb::WatchJobsRequest { since };
        Ok(self
            .jobs
            .clone()
            .watch_jobs(self.req(user, r))
            .await?
            .into_inner())
    }

    /// Queues, job counts and workers (admins only).
    pub async fn overview(&self, user: &User) -> Result<pb::Overview, Status> {
        let r = pb::GetOverviewRequest {};
        Ok(self
            .admin
            .clone()
            .get_overview(self.req(user, r))
            .await?
            .into_inner())
    }
}
