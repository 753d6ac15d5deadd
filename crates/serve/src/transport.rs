//! The transport the generated gRPC clients call through: a network channel, or a
//! server's own services called directly.

/// A gRPC transport as the web app's clients use it: a network [`Channel`] or this
/// process's own services called directly (`JobsHost::local_grpc` in `forklift-host`).
///
/// [`Channel`]: tonic::transport::Channel
pub type GrpcTransport = tower::util::BoxCloneSyncService<
    axum::http::Request<tonic::body::Body>,
    axum::http::Response<tonic::body::Body>,
    TransportError,
>;

/// Why a [`GrpcTransport`] could not carry a call (the network channel's errors; the
/// direct one has none).
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct TransportError(#[from] tonic::transport::Error);

/// A network channel as a [`GrpcTransport`].
pub fn channel_transport(channel: tonic::transport::Channel) -> GrpcTransport {
    use tower::ServiceExt;
    GrpcTransport::new(channel.map_err(TransportError))
}
