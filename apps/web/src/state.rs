//! The web app's shared state: accounts, the jobs service's API, limits.

use crate::jobs_api::JobsApi;
use crate::kinds::{Catalog, Kinds};
use crate::ratelimit::RateLimiter;
use forklift_accounts::Accounts;
use forklift_serve::Metrics;
use std::sync::Arc;
use std::time::Duration;

/// Everything a handler needs; cheap to clone.
#[derive(Clone)]
pub struct Web(Arc<Inner>);

struct Inner {
    accounts: Accounts,
    jobs_api: JobsApi,
    kinds: Catalog,
    metrics: Arc<Metrics>,
    max_upload_bytes: u64,
    secure_cookies: bool,
    public_url: Option<String>,
    signin: RateLimiter,
    submit: RateLimiter,
    /// Password hashing (argon2id: 12 MiB and tens of milliseconds each) runs on
    /// blocking threads, at most this many at once, so that a burst of sign-ins
    /// cannot starve every other request of CPU.
    hashing: tokio::sync::Semaphore,
}

/// What [`Web::new`] needs.
pub struct WebParts {
    /// Accounts, sessions and API tokens.
    pub accounts: Accounts,
    /// The jobs service.
    pub jobs_api: JobsApi,
    /// Request metrics.
    pub metrics: Arc<Metrics>,
    /// Largest upload.
    pub max_upload_bytes: u64,
    /// Mark cookies Secure.
    pub secure_cookies: bool,
    /// The site's public origin, if configured.
    pub public_url: Option<String>,
    /// Failed sign-ins per account per 15 minutes.
    pub signin_attempts: u32,
    /// Job submissions per user per minute.
    pub submit_per_minute: u32,
}

impl Web {
    /// Assembles the state.
    pub fn new(p: WebParts) -> Self {
        Self(Arc::new(Inner {
            accounts: p.accounts,
            jobs_api: p.jobs_api,
            kinds: Catalog::default(),
            metrics: p.metrics,
            max_upload_bytes: p.max_upload_bytes,
            secure_cookies: p.secure_cookies,
            public_url: p.public_url,
            signin: RateLimiter::new(p.signin_attempts, Duration::from_secs(15 * 60)),
            submit: RateLimiter::new(p.submit_per_minute, Duration::from_secs(60)),
            hashing: tokio::sync::Semaphore::new(
                std::thread::available_parallelism().map_or(2, |n| n.get()),
            ),
        }))
    }

    /// Accounts, sessions and API tokens.
    pub fn accounts(&self) -> &Accounts {
        &self.0.accounts
    }

    /// The jobs service.
    pub fn jobs_api(&self) -> &JobsApi {
        &self.0.jobs_api
    }

    /// The job kinds, as the jobs service describes them (cached).
    pub async fn kinds(&self) -> Result<Kinds, tonic::Status> {
        self.0.kinds.get(|| self.0.jobs_api.list_kinds()).await
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

    /// The site's origin for absolute links: the configured public URL, or else
    /// the request's `Host` (when it looks like a host name) with the scheme cookies
    /// imply.
    pub fn origin(&self, headers: &axum::http::HeaderMap) -> Option<String> {
        if let Some(u) = &self.0.public_url {
            return Some(u.clone());
        }
        let host = headers.get(axum::http::header::HOST)?.to_str().ok()?;
        let plain = !host.is_empty()
            && host.len() <= 255
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b));
        let scheme = if self.0.secure_cookies {
            "https"
        } else {
            "http"
        };
        plain.then(|| format!("{scheme}://{host}"))
    }

    /// Failed sign-ins per account.
    pub fn signin_limit(&self) -> &RateLimiter {
        &self.0.signin
    }

    /// Job submissions per user.
    pub fn submit_limit(&self) -> &RateLimiter {
        &self.0.submit
    }

    /// Runs password hashing or verification off the async runtime, a bounded number
    /// at once.
    pub async fn password_work<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, crate::error::PageError> {
        let _permit = self
            .0
            .hashing
            .acquire()
            .await
            .map_err(|_| crate::error::PageError::internal("password hashing stopped"))?;
        tokio::task::spawn_blocking(f)
            .await
            .map_err(|e| crate::error::PageError::internal(format!("password hashing: {e}")))
    }
}
