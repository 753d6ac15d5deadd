//! The web app's shared state: accounts, the jobs service's API, limits.

use crate::backend::Backend;
use crate::ratelimit::RateLimiter;
use forklift_engine::{Metrics, Registry};
use forklift_store::Store;
use std::sync::Arc;
use std::time::Duration;

/// Everything a handler needs; cheap to clone.
#[derive(Clone)]
pub struct Web(Arc<Inner>);

struct Inner {
    store: Store,
    backend: Backend,
    registry: Registry,
    metrics: Arc<Metrics>,
    max_upload_bytes: u64,
    secure_cookies: bool,
    signin: RateLimiter,
    submit: RateLimiter,
}

/// What [`Web::new`] needs.
pub struct WebParts {
    /// Accounts, sessions and API tokens.
    pub store: Store,
    /// The jobs service.
    pub backend: Backend,
    /// The job kinds, used only to convert parameters between JSON and proto.
    pub registry: Registry,
    /// Request metrics.
    pub metrics: Arc<Metrics>,
    /// Largest upload.
    pub max_upload_bytes: u64,
    /// Mark cookies Secure.
    pub secure_cookies: bool,
    /// Failed sign-ins per account per 15 minutes.
    pub signin_attempts: u32,
    /// Job submissions per user per minute.
    pub submit_per_minute: u32,
}

impl Web {
    /// Assembles the state.
    pub fn new(p: WebParts) -> Self {
        Self(Arc::new(Inner {
            store: p.store,
            backend: p.backend,
            registry: p.registry,
            metrics: p.metrics,
            max_upload_bytes: p.max_upload_bytes,
            secure_cookies: p.secure_cookies,
            signin: RateLimiter::new(p.signin_attempts, Duration::from_secs(15 * 60)),
            submit: RateLimiter::new(p.submit_per_minute, Duration::from_secs(60)),
        }))
    }

    /// Accounts, sessions and API tokens.
    pub fn store(&self) -> &Store {
        &self.0.store
    }

    /// The jobs service.
    pub fn backend(&self) -> &Backend {
        &self.0.backend
    }

    /// Job kinds (for parameter conversion).
    pub fn registry(&self) -> &Registry {
        &self.0.registry
    }

    /// Request metrics.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.0.metrics
    }

    /// Largest upload in bytes.
    pub fn max_upload_bytes(&self) -> u64 {
        self.0.max_upload_bytes
    }

    /// Whether cookies are marked Secure.
    pub fn secure_cookies(&self) -> bool {
        self.0.secure_cookies
    }

    /// Failed sign-ins per account.
    pub fn signin_limit(&self) -> &RateLimiter {
        &self.0.signin
    }

    /// Job submissions per user.
    pub fn submit_limit(&self) -> &RateLimiter {
        &self.0.submit
    }
}
