//! Bounded-memory, mergeable summaries of a stream of values.
//!
//! Each sketch can be built over parts of a data set independently and then merged, which is
//! what lets a profile be split across threads or files later without changing the numbers'
//! guarantees.

mod histogram;
mod hll;
mod kll;
mod moments;
mod topk;

pub use histogram::StreamingHistogram;
pub use hll::HyperLogLog;
pub use kll::Kll;
pub use moments::Moments;
pub use topk::{FrequentItems, TopEntry};
