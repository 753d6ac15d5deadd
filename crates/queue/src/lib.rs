#![doc = include_str!("../README.md")]
mod bus;
mod memory;
mod redis;

pub use bus::{EventBus, InProcessBus};
pub use memory::InProcessTransport;
pub use redis::{PROMOTE_BATCH, RedisBus, RedisTransport};

use async_trait::async_trait;
use forklift_domain::{JobId, Millis};

/// A transport failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum QueueError {
    /// The transport is shut down.
    #[error("the transport is closed")]
    Closed,
    /// The backing service failed.
    #[error("transport error: {0}")]
    Backend(String),
}

/// A job to be run: what a transport carries. On delivery only `job_id` and `queue`
/// are certain; the claim reads the rest from the record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// The job.
    pub job_id: JobId,
    /// Its queue.
    pub queue: String,
    /// Higher runs first among ready deliveries.
    pub priority: i32,
    /// Not before this time.
    pub run_at: Millis,
}

/// Carries deliveries to the workers of each queue.
#[async_trait]
pub trait Transport: Send + Sync + 'static {
    /// Hands a job to its queue. It is delivered once `run_at` has come, highest
    /// priority first, then in publishing order. A job already waiting in the queue is
    /// not added again, so republishing is always safe.
    async fn publish(&self, delivery: Delivery) -> Result<(), QueueError>;

    /// Waits for the next due delivery of `queue`. Dropping the future may lose a
    /// delivery already taken from a networked transport; the reconciler republishes
    /// it from the record.
    async fn next(&self, queue: &str) -> Result<Delivery, QueueError>;

    /// How many deliveries wait in `queue` (due or not).
    async fn depth(&self, queue: &str) -> Result<u64, QueueError>;

    /// Of `deliveries`, those not waiting in their queue (due or not), in the order
    /// given: the ones the transport lost, which the reconciler publishes again. A
    /// delivery already handed to a consumer counts as missing; publishing it again is
    /// harmless, since the claim drops a duplicate.
    async fn missing(&self, deliveries: Vec<Delivery>) -> Result<Vec<Delivery>, QueueError>;
}
