//! One table of what can go wrong, for both faces of the API: each failure's gRPC code,
//! HTTP status and JSON API name, so that a refusal reads the same over gRPC, in the
//! JSON API and on a page.

use tonic::Code;

/// What kind of failure a request met.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorCode {
    /// The request is wrong; fields say where.
    InvalidArgument,
    /// No such thing, or not the caller's.
    NotFound,
    /// It exists already (an idempotency key used for something else).
    AlreadyExists,
    /// Not possible in the current state (a finished job cancelled, a kind that cannot
    /// run here).
    FailedPrecondition,
    /// The caller may not.
    PermissionDenied,
    /// No valid credentials.
    Unauthenticated,
    /// Too much, too fast.
    ResourceExhausted,
    /// A dependency is down or the server is stopping; try again.
    Unavailable,
    /// A bug or an infrastructure failure.
    Internal,
}

/// The table: code, gRPC code, HTTP status, JSON API name.
const TABLE: [(ErrorCode, Code, u16, &str); 9] = [
    (
        ErrorCode::InvalidArgument,
        Code::InvalidArgument,
        400,
        "invalid_argument",
    ),
    (ErrorCode::NotFound, Code::NotFound, 404, "not_found"),
    (
        ErrorCode::AlreadyExists,
        Code::AlreadyExists,
        409,
        "already_exists",
    ),
    (
        ErrorCode::FailedPrecondition,
        Code::FailedPrecondition,
        409,
        "failed_precondition",
    ),
    (
        ErrorCode::PermissionDenied,
        Code::PermissionDenied,
        403,
        "permission_denied",
    ),
    (
        ErrorCode::Unauthenticated,
        Code::Unauthenticated,
        401,
        "unauthenticated",
    ),
    (
        ErrorCode::ResourceExhausted,
        Code::ResourceExhausted,
        429,
        "resource_exhausted",
    ),
    (
        ErrorCode::Unavailable,
        Code::Unavailable,
        503,
        "unavailable",
    ),
    (ErrorCode::Internal, Code::Internal, 500, "internal"),
];

impl ErrorCode {
    fn row(self) -> (ErrorCode, Code, u16, &'static str) {
        TABLE
            .into_iter()
            .find(|r| r.0 == self)
            .expect("every code is in the table")
    }

    /// Its gRPC code.
    pub fn grpc(self) -> Code {
        self.row().1
    }

    /// Its HTTP status.
    pub fn http_status(self) -> u16 {
        self.row().2
    }

    /// Its name in the JSON API's error shape, e.g. `not_found`.
    pub fn name(self) -> &'static str {
        self.row().3
    }

    /// What a gRPC code a server answered with means; codes Forklift does not send map
    /// to their nearest kind (a deadline to `Unavailable`, anything unknown to
    /// `Internal`).
    pub fn from_grpc(code: Code) -> Self {
        match code {
            Code::OutOfRange => ErrorCode::InvalidArgument,
            Code::Aborted => ErrorCode::FailedPrecondition,
            Code::DeadlineExceeded | Code::Cancelled => ErrorCode::Unavailable,
            code => TABLE
                .into_iter()
                .find(|r| r.1 == code)
                .map_or(ErrorCode::Internal, |r| r.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_maps_both_ways() {
        for (code, grpc, http, name) in TABLE {
            assert_eq!(ErrorCode::from_grpc(grpc), code);
            assert_eq!(
                (code.grpc(), code.http_status(), code.name()),
                (grpc, http, name)
            );
        }
        assert_eq!(ErrorCode::from_grpc(Code::DataLoss), ErrorCode::Internal);
        assert_eq!(
            ErrorCode::from_grpc(Code::DeadlineExceeded).http_status(),
            503
        );
    }
}
