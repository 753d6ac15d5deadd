//! The Files, Jobs and Admin gRPC services: authenticate, convert, call the API.

use crate::api::{Api, SubmitRequest};
use crate::auth::{Authenticator, Caller};
use crate::convert::{file_to_proto, job_to_proto, overview_to_proto};
use crate::error::ApiError;
use bytes::Bytes;
use forklift_rpc::time::millis;
use forklift_rpc::v1 as pb;
use forklift_rpc::v1::admin_server::{Admin, AdminServer};
use forklift_rpc::v1::files_server::{Files, FilesServer};
use forklift_rpc::v1::jobs_server::{Jobs, JobsServer};
use futures::{Stream, StreamExt};
use std::pin::Pin;
use tonic::{Request, Response, Status, Streaming};

/// Largest chunk sent in a download stream.
const DOWNLOAD_CHUNK: usize = 256 * 1024;

/// Largest gRPC message accepted (upload chunks up to 4 MiB plus framing).
const MAX_MESSAGE: usize = 5 * 1024 * 1024;

type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

/// The gRPC face of the API.
#[derive(Clone)]
pub struct GrpcApi {
    api: Api,
    auth: Authenticator,
}

impl GrpcApi {
    /// The API over `api`, authenticating with `auth`.
    pub fn new(api: Api, auth: Authenticator) -> Self {
        Self { api, auth }
    }

    /// The Files service, ready to add to a tonic server.
    pub fn files_server(&self) -> FilesServer<Self> {
        FilesServer::new(self.clone())
            .max_decoding_message_size(MAX_MESSAGE)
            .max_encoding_message_size(MAX_MESSAGE)
    }

    /// The Jobs service, ready to add to a tonic server.
    pub fn jobs_server(&self) -> JobsServer<Self> {
        JobsServer::new(self.clone())
    }

    /// The Admin service, ready to add to a tonic server.
    pub fn admin_server(&self) -> AdminServer<Self> {
        AdminServer::new(self.clone())
    }

    async fn caller<T>(&self, req: &Request<T>) -> Result<Caller, Status> {
        Ok(self.auth.caller(req.metadata()).await?)
    }

    fn job(&self, job: &forklift_domain::Job) -> pb::Job {
        job_to_proto(job, self.api.registry())
    }
}

#[tonic::async_trait]
impl Jobs for GrpcApi {
    async fn submit_job(
        &self,
        req: Request<pb::SubmitJobRequest>,
    ) -> Result<Response<pb::Job>, Status> {
        let caller = self.caller(&req).await?;
        let r = req.into_inner();
        let p = r.params.filter(|p| p.kind.is_some()).ok_or_else(|| {
            ApiError::invalid("params", "required: set the parameters of one job kind")
        })?;
        let (k, params) = self.api.registry().params_from_proto(&p).ok_or_else(|| {
            ApiError::FailedPrecondition("this server does not know the requested job kind".into())
        })?;
        let submit = SubmitRequest {
            kind: k.name().to_owned(),
            field_prefix: format!("params.{}.", k.proto_field()),
            params,
            input_file_ids: r.input_file_ids,
            idempotency_key: r.idempotency_key,
            priority: r.priority,
            not_before: r.not_before.as_ref().map(millis),
            max_attempts: r.max_attempts,
        };
        let job = self.api.submit(&caller, submit).await?;
        Ok(Response::new(self.job(&job)))
    }

    async fn get_job(&self, req: Request<pb::GetJobRequest>) -> Result<Response<pb::Job>, Status> {
        let caller = self.caller(&req).await?;
        let job = self.api.get_job(&caller, &req.get_ref().id).await?;
        Ok(Response::new(self.job(&job)))
    }

    async fn list_jobs(
        &self,
        req: Request<pb::ListJobsRequest>,
    ) -> Result<Response<pb::ListJobsResponse>, Status> {
        let caller = self.caller(&req).await?;
        let r = req.into_inner();
        let mut states = Vec::new();
        for (i, s) in r.states.iter().enumerate() {
            let st = pb::JobState::try_from(*s)
                .ok()
                .and_then(forklift_rpc::state::from_proto)
                .ok_or_else(|| ApiError::invalid(format!("states[{i}]"), "not a job state"))?;
            // Repeats would only lengthen the query (a list of the same state many times).
            if !states.contains(&st) {
                states.push(st);
            }
        }
        let kind = Some(r.kind).filter(|k| !k.is_empty());
        let (jobs, next) = self
            .api
            .list_jobs(
                &caller,
                r.page_size,
                &r.page_token,
                states,
                kind,
                r.all_users,
            )
            .await?;
        Ok(Response::new(pb::ListJobsResponse {
            jobs: jobs.iter().map(|j| self.job(j)).collect(),
            next_page_token: next,
        }))
    }

    async fn cancel_job(
        &self,
        req: Request<pb::CancelJobRequest>,
    ) -> Result<Response<pb::Job>, Status> {
        let caller = self.caller(&req).await?;
        let job = self.api.cancel_job(&caller, &req.get_ref().id).await?;
        Ok(Response::new(self.job(&job)))
    }

    async fn retry_job(
        &self,
        req: Request<pb::RetryJobRequest>,
    ) -> Result<Response<pb::Job>, Status> {
        let caller = self.caller(&req).await?;
        let job = self.api.retry_job(&caller, &req.get_ref().id).await?;
        Ok(Response::new(self.job(&job)))
    }

    type WatchJobStream = BoxStream<pb::Job>;

    async fn watch_job(
        &self,
        req: Request<pb::WatchJobRequest>,
    ) -> Result<Response<Self::WatchJobStream>, Status> {
        let caller = self.caller(&req).await?;
        let stream = self.api.watch_job(&caller, &req.get_ref().id).await?;
        let registry = self.api.registry().clone();
        Ok(Response::new(Box::pin(
            stream.map(move |j| Ok(job_to_proto(&j, &registry))),
        )))
    }

    type WatchJobsStream = BoxStream<pb::Job>;

    async fn watch_jobs(
        &self,
        req: Request<pb::WatchJobsRequest>,
    ) -> Result<Response<Self::WatchJobsStream>, Status> {
        let caller = self.caller(&req).await?;
        let since = req.get_ref().since.as_ref().map(millis);
        let stream = self.api.watch_jobs(&caller, since).await?;
        let registry = self.api.registry().clone();
        Ok(Response::new(Box::pin(
            stream.map(move |j| Ok(job_to_proto(&j, &registry))),
        )))
    }

    async fn list_kinds(
        &self,
        // Public, like the contract itself (reflection serves it too): no caller needed.
        _req: Request<pb::ListKindsRequest>,
    ) -> Result<Response<pb::ListKindsResponse>, Status> {
        // A kind may wait for its background check of tools (ffmpeg) to end.
        let registry = self.api.registry().clone();
        let kinds = tokio::task::spawn_blocking(move || registry.describe())
            .await
            .map_err(|e| {
                tracing::error!(error = %e, "describing kinds failed: {e}");
                ApiError::Internal
            })?;
        Ok(Response::new(pb::ListKindsResponse { kinds }))
    }
}

#[tonic::async_trait]
impl Admin for GrpcApi {
    async fn get_overview(
        &self,
        req: Request<pb::GetOverviewRequest>,
    ) -> Result<Response<pb::Overview>, Status> {
        let caller = self.caller(&req).await?;
        let overview = self.api.overview(&caller).await?;
        Ok(Response::new(overview_to_proto(&overview)))
    }
}

#[tonic::async_trait]
impl Files for GrpcApi {
    async fn upload_file(
        &self,
        req: Request<Streaming<pb::UploadFileRequest>>,
    ) -> Result<Response<pb::File>, Status> {
        let caller = self.caller(&req).await?;
        let mut stream = req.into_inner();
        let meta = match stream.message().await? {
            Some(pb::UploadFileRequest {
                data: Some(pb::upload_file_request::Data::Metadata(m)),
            }) => m,
            _ => {
                return Err(ApiError::invalid(
                    "metadata",
                    "the first message of an upload must carry the metadata",
                )
                .into());
            }
        };
        let chunks = stream.map(|m| match m {
            Ok(pb::UploadFileRequest {
                data: Some(pb::upload_file_request::Data::Chunk(c)),
            }) => Ok(Bytes::from(c)),
            Ok(pb::UploadFileRequest {
                data: Some(pb::upload_file_request::Data::Metadata(_)),
            }) => Err("only the first message of an upload may carry metadata".to_owned()),
            Ok(pb::UploadFileRequest { data: None }) => {
                Err("the client abandoned the upload (a message without data)".to_owned())
            }
            Err(s) => Err(format!("the upload stream broke: {}", s.message())),
        });
        let file = self
            .api
            .upload_file(&caller, &meta.name, &meta.content_type, chunks)
            .await?;
        Ok(Response::new(file_to_proto(&file)))
    }

    type DownloadFileStream = BoxStream<pb::DownloadFileResponse>;

    async fn download_file(
        &self,
        req: Request<pb::DownloadFileRequest>,
    ) -> Result<Response<Self::DownloadFileStream>, Status> {
        use pb::download_file_response::Data;
        let caller = self.caller(&req).await?;
        let (file, content) = self.api.open_file(&caller, &req.get_ref().id).await?;
        let head = futures::stream::once(async move {
            Ok(pb::DownloadFileResponse {
                data: Some(Data::File(file_to_proto(&file))),
            })
        });
        let body = content.flat_map(|chunk| {
            let items: Vec<Result<pb::DownloadFileResponse, Status>> = match chunk {
                Ok(bytes) => bytes
                    .chunks(DOWNLOAD_CHUNK)
                    .map(|c| {
                        Ok(pb::DownloadFileResponse {
                            data: Some(Data::Chunk(c.to_vec())),
                        })
                    })
                    .collect(),
                Err(e) => vec![Err(ApiError::internal("reading file content", e).into())],
            };
            futures::stream::iter(items)
        });
        Ok(Response::new(Box::pin(head.chain(body))))
    }

    async fn get_file(
        &self,
        req: Request<pb::GetFileRequest>,
    ) -> Result<Response<pb::File>, Status> {
        let caller = self.caller(&req).await?;
        let f = self.api.get_file(&caller, &req.get_ref().id).await?;
        Ok(Response::new(file_to_proto(&f)))
    }

    async fn list_files(
        &self,
        req: Request<pb::ListFilesRequest>,
    ) -> Result<Response<pb::ListFilesResponse>, Status> {
        let caller = self.caller(&req).await?;
        let r = req.into_inner();
        let (files, next) = self
            .api
            .list_files(&caller, r.page_size, &r.page_token)
            .await?;
        Ok(Response::new(pb::ListFilesResponse {
            files: files.iter().map(file_to_proto).collect(),
            next_page_token: next,
        }))
    }

    async fn delete_file(
        &self,
        req: Request<pb::DeleteFileRequest>,
    ) -> Result<Response<()>, Status> {
        let caller = self.caller(&req).await?;
        self.api.delete_file(&caller, &req.get_ref().id).await?;
        Ok(Response::new(()))
    }
}
