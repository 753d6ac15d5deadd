#![doc = include_str!("../README.md")]
mod layer;
mod metrics;
mod process;
mod transport;

pub use layer::{MetricsLayer, Timed};
pub use metrics::Metrics;
pub use process::{shutdown_signal, without_huge_pages};
pub use transport::{GrpcTransport, TransportError, channel_transport};
