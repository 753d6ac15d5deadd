//! Token-bucket rate limits kept in memory, per key (an account's email for sign-in
//! failures, a user for job submissions). Each web replica limits on its own; with N
//! replicas behind a balancer the effective limit is at most N times the setting.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Keys kept before idle buckets are swept.
const SWEEP_AT: usize = 10_000;

/// A bucket of `burst` tokens per key, refilled at `burst / period`.
#[derive(Debug)]
pub struct RateLimiter {
    burst: f64,
    per_sec: f64,
    buckets: Mutex<HashMap<String, (f64, Instant)>>,
}

impl RateLimiter {
    /// `burst` events per `period`, with bursts of up to `burst`. A `burst` of 0
    /// disables the limit.
    pub fn new(burst: u32, period: Duration) -> Self {
        Self {
            burst: f64::from(burst),
            per_sec: f64::from(burst) / period.as_secs_f64().max(0.001),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    fn level(&self, tokens: f64, since: Instant, now: Instant) -> f64 {
        (tokens + now.duration_since(since).as_secs_f64() * self.per_sec).min(self.burst)
    }

    /// Takes a token for `key`; `Err(wait)` when there was none.
    pub fn hit(&self, key: &str) -> Result<(), Duration> {
        if self.burst == 0.0 {
            return Ok(());
        }
        let now = Instant::now();
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if buckets.len() >= SWEEP_AT {
            buckets.retain(|_, (t, at)| self.level(*t, *at, now) < self.burst);
        }
        let (t, at) = buckets.entry(key.to_owned()).or_insert((self.burst, now));
        let level = self.level(*t, *at, now);
        if level < 1.0 {
            return Err(Duration::from_secs_f64((1.0 - level) / self.per_sec));
        }
        *t = level - 1.0;
        *at = now;
        Ok(())
    }

    /// Forgets `key` (e.g. after a successful sign-in).
    pub fn reset(&self, key: &str) {
        self.buckets
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_empties_and_keys_are_separate() {
        let l = RateLimiter::new(3, Duration::from_secs(3600));
        for _ in 0..3 {
            l.hit("a").unwrap();
        }
        let wait = l.hit("a").unwrap_err();
        assert!(wait > Duration::from_secs(1000) && wait <= Duration::from_secs(1200));
        assert!(
            l.hit("a").is_err(),
            "a refused hit takes nothing and gives nothing"
        );
        assert!(l.hit("b").is_ok(), "another key has its own bucket");
        l.reset("a");
        assert!(l.hit("a").is_ok());
    }

    #[test]
    fn zero_means_unlimited() {
        let l = RateLimiter::new(0, Duration::from_secs(1));
        for _ in 0..100 {
            l.hit("a").unwrap();
        }
    }
}
