//! One error type for the Files, Jobs and Admin services, mapped to gRPC status codes
//! here and to HTTP statuses by the web app, so both faces of a failure agree.

use forklift_rpc::error_code::ErrorCode;
use forklift_runner::Violation;
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

/// A failed call, in terms a client can act on.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApiError {
    /// Bad input: each violation names a field.
    #[error("invalid argument: {}", describe(.0))]
    InvalidArgument(Vec<Violation>),
    /// No such resource, or not the caller's (the two are indistinguishable on purpose).
    #[error("{0} not found")]
    NotFound(String),
    /// The resource is in the wrong state, or the server cannot do this now.
    #[error("{0}")]
    FailedPrecondition(String),
    /// A retried create that does not match the original.
    #[error("{0}")]
    AlreadyExists(String),
    /// No valid credentials.
    #[error("{0}")]
    Unauthenticated(String),
    /// Valid credentials, but the account may not do this (e.g. an admin-only call).
    #[error("{0}")]
    PermissionDenied(String),
    /// The server is shutting down or a dependency is down.
    #[error("{0}")]
    Unavailable(String),
    /// A bug or an infrastructure failure; the detail is logged, not sent.
    #[error("internal error")]
    Internal,
}

fn describe(v: &[Violation]) -> String {
    v.iter()
        .map(|v| format!("{}: {}", v.field, v.description))
        .collect::<Vec<_>>()
        .join("; ")
}

impl ApiError {
    /// Logs an infrastructure failure and hides its detail from the client.
    pub fn internal(context: &str, err: impl std::fmt::Display) -> Self {
        tracing::error!(error = %err, "{context}: {err}");
        ApiError::Internal
    }

    /// One invalid field.
    pub fn invalid(field: impl Into<String>, description: impl Into<String>) -> Self {
        ApiError::InvalidArgument(vec![Violation::new(field, description)])
    }

    /// What kind of failure this is: its gRPC code and HTTP status follow from the
    /// one table in `forklift_rpc::error_code`.
    pub fn error_code(&self) -> ErrorCode {
        match self {
            ApiError::InvalidArgument(_) => ErrorCode::InvalidArgument,
            ApiError::NotFound(_) => ErrorCode::NotFound,
            ApiError::FailedPrecondition(_) => ErrorCode::FailedPrecondition,
            ApiError::AlreadyExists(_) => ErrorCode::AlreadyExists,
            ApiError::Unauthenticated(_) => ErrorCode::Unauthenticated,
            ApiError::PermissionDenied(_) => ErrorCode::PermissionDenied,
            ApiError::Unavailable(_) => ErrorCode::Unavailable,
            ApiError::Internal => ErrorCode::Internal,
        }
    }

    /// The gRPC code of this error.
    pub fn code(&self) -> Code {
        self.error_code().grpc()
    }
}

impl From<ApiError> for Status {
    fn from(e: ApiError) -> Self {
        let msg = e.to_string();
        match e {
            ApiError::InvalidArgument(violations) => {
                let mut details = ErrorDetails::new();
                for v in &violations {
                    details.add_bad_request_violation(v.field.clone(), v.description.clone());
                }
                Status::with_error_details(Code::InvalidArgument, msg, details)
            }
            other => Status::new(other.code(), msg),
        }
    }
}

impl From<forklift_store::StoreError> for ApiError {
    fn from(e: forklift_store::StoreError) -> Self {
        match e {
            forklift_store::StoreError::IdempotencyConflict => {
                ApiError::AlreadyExists(e.to_string())
            }
            e => ApiError::internal("database", e),
        }
    }
}

impl From<forklift_accounts::AccountsError> for ApiError {
    fn from(e: forklift_accounts::AccountsError) -> Self {
        ApiError::internal("database", e)
    }
}
