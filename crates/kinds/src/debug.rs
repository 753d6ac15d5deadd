//! `debug.*`: kinds that exercise the engine itself (no-op throughput, long runs,
//! planned failures). Unavailable unless the server enables debug kinds.

use crate::describe::{self, Param};
use async_trait::async_trait;
use forklift_rpc::v1 as pb;
use forklift_runner::{JobCtx, JobError, Kind, Violation, parse_params};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::time::Duration;

const DISABLED: &str = "debug kinds are disabled; start the server with FORKLIFT_DEBUG_KINDS=true";

/// A debug kind's description: no file suggests it, and it takes any inputs.
fn debug_kind(title: &str, description: &str, params: Vec<Param>) -> pb::KindInfo {
    pb::KindInfo {
        fields: describe::fields(params),
        min_inputs: 0,
        max_inputs: 100,
        ..describe::kind(title, description, "Run")
    }
}

fn available(enabled: bool) -> Result<(), String> {
    if enabled {
        Ok(())
    } else {
        Err(DISABLED.into())
    }
}

/// `debug.noop`: succeeds at once.
pub struct Noop {
    enabled: bool,
}

impl Noop {
    /// The kind; `enabled` makes it available.
    pub fn new(enabled: bool) -> Self {
        Self { enabled }
    }
}

#[async_trait]
impl Kind for Noop {
    fn name(&self) -> &'static str {
        "debug.noop"
    }
    fn queue(&self) -> &'static str {
        "debug"
    }
    fn proto_field(&self) -> &'static str {
        "debug_noop"
    }
    fn available(&self) -> Result<(), String> {
        available(self.enabled)
    }
    fn describe(&self) -> pb::KindInfo {
        debug_kind(
            "No-op",
            "Does nothing: measures the engine's own cost per job.",
            vec![],
        )
    }

    fn validate(&self, _: Value, _: usize) -> Result<Value, Vec<Violation>> {
        Ok(json!({}))
    }
    async fn run(&self, _: &mut JobCtx) -> Result<(), JobError> {
        Ok(())
    }
}

/// Parameters of `debug.sleep`.
#[derive(Debug, Serialize, Deserialize)]
pub struct SleepParams {
    /// How long to wait.
    pub duration_ms: u32,
    /// Wait on the CPU pool, as blocking work that checks its stop flag.
    #[serde(default)]
    pub blocking: bool,
}

/// `debug.sleep`: waits (reporting progress, honouring cancellation), then writes
/// `result.txt`.
pub struct Sleep {
    enabled: bool,
}

impl Sleep {
    /// The kind; `enabled` makes it available.
    pub fn new(enabled: bool) -> Self {
        Self { enabled }
    }
}

#[async_trait]
impl Kind for Sleep {
    fn name(&self) -> &'static str {
        "debug.sleep"
    }
    fn queue(&self) -> &'static str {
        "debug"
    }
    fn proto_field(&self) -> &'static str {
        "debug_sleep"
    }
    fn available(&self) -> Result<(), String> {
        available(self.enabled)
    }
    fn describe(&self) -> pb::KindInfo {
        debug_kind(
            "Sleep",
            "Waits, reporting progress, then writes one output.",
            vec![
                Param::integer("duration_ms", "Duration (ms)").range(0, 600_000),
                Param::boolean("blocking", "On the CPU pool")
                    .help("Spend the time as blocking work on the CPU pool."),
            ],
        )
    }

    fn validate(&self, v: Value, _: usize) -> Result<Value, Vec<Violation>> {
        let p: SleepParams = parse_params(v)?;
        if p.duration_ms > 600_000 {
            return Err(vec![Violation::new(
                "duration_ms",
                "at most 600000 (10 minutes)",
            )]);
        }
        Ok(json!(p))
    }
    async fn run(&self, ctx: &mut JobCtx) -> Result<(), JobError> {
        let p: SleepParams = ctx.params()?;
        if p.blocking {
            let until = std::time::Instant::now() + Duration::from_millis(p.duration_ms.into());
            ctx.progress(0, "waiting on the CPU pool").await;
            ctx.blocking_stoppable(move |stop| {
                while std::time::Instant::now() < until {
                    if stop.load(std::sync::atomic::Ordering::Relaxed) {
                        return Err(JobError::Cancelled);
                    }
                    std::thread::park_timeout(Duration::from_millis(5));
                }
                Ok(())
            })
            .await?;
            let body = format!("waited {} ms on the CPU pool\n", p.duration_ms);
            return ctx
                .put_output("result.txt", "text/plain", body.into())
                .await;
        }
        let step = Duration::from_millis(u64::from(p.duration_ms) / 10);
        for i in 0..10 {
            ctx.progress(i * 10, format!("sleeping {}/10", i + 1)).await;
            tokio::select! {
                _ = ctx.cancellation().cancelled() => return Err(JobError::Cancelled),
                _ = tokio::time::sleep(step) => {}
            }
        }
        let attempt = ctx.job().attempt;
        let body = format!("slept {} ms on attempt {attempt}\n", p.duration_ms);
        ctx.put_output("result.txt", "text/plain", body.into())
            .await
    }
}

/// Parameters of `debug.flaky`.
#[derive(Debug, Serialize, Deserialize)]
pub struct FlakyParams {
    /// How many attempts fail before one succeeds.
    pub failures: u32,
}

/// `debug.flaky`: its first `failures` attempts fail with a retryable error.
pub struct Flaky {
    enabled: bool,
}

impl Flaky {
    /// The kind; `enabled` makes it available.
    pub fn new(enabled: bool) -> Self {
        Self { enabled }
    }
}

#[async_trait]
impl Kind for Flaky {
    fn name(&self) -> &'static str {
        "debug.flaky"
    }
    fn queue(&self) -> &'static str {
        "debug"
    }
    fn proto_field(&self) -> &'static str {
        "debug_flaky"
    }
    fn available(&self) -> Result<(), String> {
        available(self.enabled)
    }
    fn describe(&self) -> pb::KindInfo {
        debug_kind(
            "Flaky",
            "Fails with a retryable error on its first attempts, then succeeds.",
            vec![Param::integer("failures", "Failing attempts").range(0, 10)],
        )
    }

    fn validate(&self, v: Value, _: usize) -> Result<Value, Vec<Violation>> {
        let p: FlakyParams = parse_params(v)?;
        if p.failures > 10 {
            return Err(vec![Violation::new("failures", "at most 10")]);
        }
        Ok(json!(p))
    }
    async fn run(&self, ctx: &mut JobCtx) -> Result<(), JobError> {
        let p: FlakyParams = ctx.params()?;
        let attempt = ctx.job().attempt;
        if attempt <= p.failures {
            return Err(JobError::retryable(format!(
                "planned failure {attempt} of {}",
                p.failures
            )));
        }
        let body = format!("succeeded on attempt {attempt}\n");
        ctx.put_output("result.txt", "text/plain", body.into())
            .await
    }
}
