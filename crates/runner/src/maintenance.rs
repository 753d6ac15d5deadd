//! Periodic maintenance on apalis-cron: every worker process ticks every
//! `reconcile_every` (whole seconds, on the same wall-clock boundaries in every
//! process), and
//!
//! - `heartbeat`: each process refreshes its own row in the `workers` table (the admin
//!   console's live workers);
//! - `reconcile`: one process of the deployment — the holder of the task's lease in
//!   the `maintenance` table — puts back each job whose worker died (its lease ended)
//!   and publishes again the queued jobs the transport lost. The lease passes on when
//!   its holder stops (at once) or dies (when the lease ends), and no tick is run twice.
//!
//! A tick that comes while the previous one still runs is skipped (tower's load
//! shedding in front of a concurrency limit of one).

use crate::runtime::Runtime;
use crate::workers::{Queues, report_worker};
use apalis_core::monitor::Monitor;
use apalis_core::task::Task;
use apalis_core::worker::builder::WorkerBuilder;
use apalis_cron::timezone::Utc;
use apalis_cron::{CronScheduler, Schedule, Tick};
use forklift_domain::{JobId, Millis, now_ms};
use forklift_queue::Delivery;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};
use tower::ServiceBuilder;

/// The reconciler's name in the `maintenance` table.
pub const RECONCILE: &str = "reconcile";

/// Ticks every `period` seconds, on multiples of it since the Unix epoch (so that every
/// process's ticks fall on the same instants and name the same tick).
#[derive(Debug, Clone)]
pub struct Every {
    period: u64,
    last: u64,
}

impl Every {
    /// Every `period`, rounded up to whole seconds (at least one).
    pub fn new(period: Duration) -> Self {
        let secs = period.as_secs() + u64::from(period.subsec_nanos() > 0);
        Self {
            period: secs.max(1),
            last: 0,
        }
    }
}

impl Schedule<Utc> for Every {
    fn next_tick(&mut self, _: &Utc) -> Option<Tick<Utc>> {
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        // Strictly after now (a timer may fire a moment early) and after the last one.
        let next = (now / self.period + 1) * self.period;
        let next = next.max(self.last + self.period);
        self.last = next;
        Some(Tick::new(next))
    }
}

/// Adds the `heartbeat` and `reconcile` workers to `monitor`.
pub(crate) fn register(
    monitor: Monitor,
    rt: &Runtime,
    queues: Arc<Queues>,
    started_at: Millis,
) -> Monitor {
    let every = Every::new(rt.config().reconcile_every);
    let name = rt.config().worker_name.clone();
    let heartbeat = {
        let (rt, every, name) = (rt.clone(), every.clone(), name.clone());
        move |_| {
            let (rt, queues) = (rt.clone(), queues.clone());
            let beat = tower::service_fn(move |_: Task<Tick<Utc>>| {
                let (rt, queues) = (rt.clone(), queues.clone());
                async move {
                    report_worker(&rt, &queues, started_at).await;
                    Ok::<_, std::convert::Infallible>(())
                }
            });
            WorkerBuilder::new(format!("{name}/heartbeat"))
                .backend(CronScheduler::new(every.clone()))
                .layer(ServiceBuilder::new().load_shed().concurrency_limit(1))
                .build(beat)
        }
    };
    let reconcile = {
        let rt = rt.clone();
        // Where the search for lost jobs goes on from (see `republish_lost`).
        let scan = Arc::new(Mutex::new(None));
        move |_| {
            let (rt, scan) = (rt.clone(), scan.clone());
            let tick = tower::service_fn(move |t: Task<Tick<Utc>>| {
                let (rt, scan) = (rt.clone(), scan.clone());
                async move {
                    let tick = t.args.get_timestamp() as i64 * 1000;
                    reconcile_tick(&rt, tick, &scan).await;
                    Ok::<_, std::convert::Infallible>(())
                }
            });
            WorkerBuilder::new(format!("{name}/reconcile"))
                .backend(CronScheduler::new(every.clone()))
                .layer(ServiceBuilder::new().load_shed().concurrency_limit(1))
                .build(tick)
        }
    };
    monitor.register(heartbeat).register(reconcile)
}

/// Runs the reconciler's tick scheduled at `tick` if this process gets it.
async fn reconcile_tick(rt: &Runtime, tick: Millis, scan: &Mutex<Option<(Millis, JobId)>>) {
    let cfg = rt.config();
    let now = now_ms();
    // Three periods: a holder that misses a tick or two keeps it; a dead one hands it
    // on within three.
    let lease_until =
        now + (cfg.reconcile_every.max(Duration::from_secs(1)) * 3).as_millis() as i64;
    match rt
        .store()
        .take_tick(RECONCILE, &cfg.worker_name, tick, lease_until, now)
        .await
    {
        Ok(true) => {}
        Ok(false) => return,
        Err(e) => {
            tracing::warn!(error = %e, "taking the reconciler's tick failed: {e}");
            return;
        }
    }
    rt.metrics().count_maintenance(RECONCILE);
    match rt.reclaim(now, now).await {
        Ok(requeued) => {
            for job in &requeued {
                rt.dispatch(job).await;
            }
        }
        Err(e) => tracing::error!(error = %e, "reconciling failed: {e}"),
    }
    // Jobs the record says are queued but nobody took for a while may be missing
    // from the transport (Redis restarted empty): publish them again.
    let stale = cfg.reconcile_every * 2;
    let mut from = *scan.lock().expect("scan lock");
    if let Err(e) = republish_lost(rt, now - stale.as_millis() as i64, &mut from).await {
        tracing::error!(error = %e, "reconciling queued jobs failed: {e}");
        from = None;
    }
    *scan.lock().expect("scan lock") = from;
}

/// Hands this process's maintenance leases on (it is stopping).
pub(crate) async fn hand_over(rt: &Runtime) {
    if let Err(e) = rt.store().hand_over_ticks(&rt.config().worker_name).await {
        tracing::warn!(error = %e, "handing the maintenance lease on failed: {e}; another process takes it when it ends");
    }
}

/// Queued jobs read per page when looking for ones the transport lost.
const RECONCILE_PAGE: u32 = 1_000;
/// Pages per reconcile pass: a pass compares up to 10,000 queued jobs with the transport.
const RECONCILE_PAGES: usize = 10;

/// Publishes again the queued jobs untouched since `before` that the transport does not
/// hold. The record is read in `(run_at, id)` order from `scan` (the place the previous
/// pass stopped, `None` for the start), at most [`RECONCILE_PAGES`] pages per pass:
/// every lost job is found within a few passes however many others wait, and after the
/// end the next pass starts again with the due ones. (Always reading the first page
/// would let a thousand jobs that are not due yet hide every due one behind them.)
async fn republish_lost(
    rt: &Runtime,
    before: Millis,
    scan: &mut Option<(Millis, JobId)>,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    for _ in 0..RECONCILE_PAGES {
        let page = rt
            .store()
            .queued_jobs_page(before, *scan, RECONCILE_PAGE)
            .await?;
        let full = page.len() == RECONCILE_PAGE as usize;
        *scan = page.last().filter(|_| full).map(|j| (j.run_at, j.id));
        let deliveries = page
            .into_iter()
            .map(|j| Delivery {
                job_id: j.id,
                queue: j.queue,
                priority: j.priority,
                run_at: j.run_at,
            })
            .collect();
        let lost = rt.transport().missing(deliveries).await?;
        if !lost.is_empty() {
            tracing::warn!(
                count = lost.len(),
                "publishing {} queued jobs again: the transport lost them",
                lost.len()
            );
        }
        for d in lost {
            rt.transport().publish(d).await?;
        }
        if !full {
            break;
        }
    }
    Ok(())
}
