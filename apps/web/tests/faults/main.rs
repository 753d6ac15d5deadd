//! Fault tests of the extracted topology — jobs API and workers as separate processes
//! over a real PostgreSQL and Redis: workers killed mid-job, Redis losing its data,
//! SIGTERM with work in flight, duplicate deliveries, and churn under load.

#[path = "../it/support.rs"]
#[allow(dead_code)]
mod support;

use forklift_domain::{Event, JobState};
use forklift_queue::{Delivery, EventBus, RedisBus, RedisTransport, Transport};
use forklift_rpc::v1 as pb;
use futures::StreamExt;
use redis::AsyncCommands;
use std::collections::HashSet;
use std::time::{Duration, Instant};
use support::*;

/// A deployment: Redis, a fresh database, a fresh bucket, the jobs API, and workers
/// started on demand — each process with a data directory of its own, as pods have.
struct Cluster {
    redis: forklift_testkit::Redis,
    common: Vec<String>,
    api: Proc,
    client: Client,
    store: forklift_store::Store,
    bucket: Bucket,
    dirs: DataDirs,
}

/// Sets `flag` to `value` in `args` (the processes refuse a flag given twice).
fn set_flag(args: &mut Vec<String>, flag: &str, value: &str) {
    match args.iter().position(|a| a == flag) {
        Some(i) => args[i + 1] = value.to_owned(),
        None => args.extend([flag.to_owned(), value.to_owned()]),
    }
}

/// An hour from now: jobs submitted to start then are not due during any test.
fn in_an_hour() -> prost_types::Timestamp {
    (std::time::SystemTime::now() + Duration::from_secs(3600)).into()
}

impl Cluster {
    async fn start() -> Self {
        Self::start_with(&[]).await
    }

    /// A deployment whose processes all run with some test flags changed, e.g.
    /// `[("--lease", "60s")]`.
    async fn start_with(flags: &[(&str, &str)]) -> Self {
        let dirs = DataDirs::new();
        let bucket = Bucket::new();
        let redis = forklift_testkit::Redis::start();
        let database = forklift_testkit::Postgres::shared().database();
        let mut common = test_flags(dirs.path());
        for (flag, value) in flags {
            set_flag(&mut common, flag, value);
        }
        common.extend([
            "--database-url".to_owned(),
            database.clone(),
            "--redis-url".to_owned(),
            redis.url(),
        ]);
        common.extend(bucket.flags());
        let mut api_args = common.clone();
        api_args.extend(dirs.flags("jobs-api"));
        let api = start_jobs_with_env("api", &api_args, &bucket.env).await;
        let (_, token) = create_admin(&common, "admin@localhost").await;
        let client = Client::connect(api.addr("gRPC:"), Some(&token)).await;
        let store = forklift_store::Store::open(&database).await.unwrap();
        Self {
            redis,
            common,
            api,
            client,
            store,
            bucket,
            dirs,
        }
    }

    /// The record of job `id`.
    async fn job(&self, id: &str) -> forklift_domain::Job {
        self.store
            .get_job(id.parse().unwrap())
            .await
            .unwrap()
            .expect("the job exists")
    }

    /// A worker consuming the debug queue with `slots` slots, named `name`.
    async fn worker(&self, name: &str, slots: usize) -> Proc {
        self.worker_with(name, slots, &[]).await
    }

    /// [`Cluster::worker`] with extra flags.
    async fn worker_with(&self, name: &str, slots: usize, extra: &[&str]) -> Proc {
        let mut args = self.common.clone();
        args.extend(self.dirs.flags(name));
        args.extend([
            "--queues".to_owned(),
            format!("debug={slots}"),
            "--worker-name".to_owned(),
            name.to_owned(),
        ]);
        args.extend(extra.iter().map(|a| a.to_string()));
        start_jobs_with_env("worker", &args, &self.bucket.env).await
    }

    /// A plain connection to the cluster's Redis, to look at what it holds.
    async fn redis_conn(&self) -> redis::aio::MultiplexedConnection {
        redis::Client::open(self.redis.url())
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .expect("connect to Redis")
    }

    /// Submits `n` quick jobs that are not to start for an hour.
    async fn submit_later(&self, n: usize) -> Vec<String> {
        let submits = (0..n).map(|_| {
            let mut req = submit(sleep_params(10), &[]);
            req.not_before = Some(in_an_hour());
            self.client.submit(req)
        });
        futures::stream::iter(submits)
            .buffer_unordered(16)
            .map(|r| r.unwrap().id)
            .collect()
            .await
    }

    async fn state(&self, id: &str) -> JobState {
        self.job(id).await.state
    }

    async fn submit_sleeps(&self, n: usize, ms: u32) -> Vec<String> {
        let mut ids = Vec::with_capacity(n);
        for _ in 0..n {
            ids.push(
                self.client
                    .submit(submit(sleep_params(ms), &[]))
                    .await
                    .unwrap()
                    .id,
            );
        }
        ids
    }

    /// Waits until every job in `ids` has succeeded, as seen on the event bus.
    async fn all_succeed(&self, ids: &[String]) {
        self.all_succeed_within(ids, Duration::from_secs(120)).await;
    }

    /// [`Cluster::all_succeed`], failing unless it happens within `deadline`.
    async fn all_succeed_within(&self, ids: &[String], deadline: Duration) {
        let bus = RedisBus::connect(&self.redis.url()).await.unwrap();
        let mut rx = bus.subscribe();
        let mut pending: HashSet<String> = ids.iter().cloned().collect();
        // Subscribed first, so anything finishing from now on is seen; then drop what
        // has already finished.
        for id in ids {
            let j = self.job(id).await;
            if j.state == JobState::Succeeded {
                pending.remove(id);
            }
        }
        // Events are the fast path; the bus is best-effort across a Redis restart, so the
        // record (the truth) is consulted again every few seconds.
        let mut recheck = tokio::time::interval(std::time::Duration::from_secs(3));
        tokio::time::timeout(deadline, async {
            while !pending.is_empty() {
                tokio::select! {
                    ev = rx.recv() => match ev {
                        Ok(Event::JobChanged(j)) if j.state == JobState::Succeeded => {
                            pending.remove(&j.id.to_string());
                        }
                        Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                        Err(e) => panic!("event stream broke: {e}"),
                    },
                    _ = recheck.tick() => {
                        let mut done = Vec::new();
                        for id in &pending {
                            let j = self.job(id).await;
                            if j.state == JobState::Succeeded {
                                done.push(id.clone());
                            }
                        }
                        for id in done {
                            pending.remove(&id);
                        }
                    }
                }
            }
        })
        .await
        .unwrap_or_else(|_| {
            panic!(
                "{} of {} jobs did not succeed within {deadline:?}",
                pending.len(),
                ids.len()
            )
        });
    }

    /// Every job succeeded with exactly one output file, and the file count matches.
    async fn check_outputs_once(&self, ids: &[String]) {
        for id in ids {
            let j = self.client.get(id).await.unwrap();
            assert_eq!(j.state(), pb::JobState::Succeeded, "{j:#?}");
            assert_eq!(j.outputs.len(), 1, "{j:#?}");
            let stored = self.bucket.keys(&format!("jobs/{id}/")).await;
            assert_eq!(stored.len(), 1, "one output object for {id}: {stored:?}");
        }
        let owner = self.job(&ids[0]).await.owner_id;
        let files = self.store.list_files(owner, None, 10_000).await.unwrap();
        assert_eq!(files.len(), ids.len(), "one output record per job");
        self.dirs.assert_no_files();
    }
}

#[tokio::test]
async fn a_worker_killed_mid_job_and_the_job_completes_on_another() {
    let c = Cluster::start().await;
    let mut a = c.worker("worker-a", 1).await;
    let job = c.submit_sleeps(1, 2_000).await.remove(0);
    let running = c
        .client
        .watch_until(&job, |j| j.state() == pb::JobState::Running)
        .await
        .pop()
        .unwrap();
    assert_eq!(running.attempt, 1);
    a.kill9().await;
    let _b = c.worker("worker-b", 1).await;
    let done = c.client.watch_to_end(&job).await.pop().unwrap();
    assert_eq!(done.state(), pb::JobState::Succeeded, "{done:#?}");
    assert_eq!(
        done.attempt, 2,
        "the killed attempt counts; the second one ran"
    );
    let j = c.job(&job).await;
    assert_eq!(j.worker.as_deref(), Some("worker-b"));
    let (_, body) = c.client.download(&done.outputs[0].file_id).await.unwrap();
    assert_eq!(
        String::from_utf8(body).unwrap(),
        "slept 2000 ms on attempt 2\n"
    );
    let stored = c.bucket.keys(&format!("jobs/{job}/")).await;
    assert_eq!(stored.len(), 1, "outputs exist once: {stored:?}");
    c.dirs.assert_no_files();
}

#[tokio::test]
async fn redis_restarting_empty_loses_no_committed_job() {
    let mut c = Cluster::start().await;
    let _w = c.worker("worker-a", 2).await;
    let ids = c.submit_sleeps(20, 200).await;
    // Most jobs are waiting in Redis when it loses everything.
    c.redis.restart_empty();
    c.all_succeed(&ids).await;
    c.check_outputs_once(&ids).await;
}

#[tokio::test]
async fn due_jobs_lost_with_redis_behind_a_thousand_later_ones_still_run_promptly() {
    let mut c = Cluster::start().await;
    let _w = c.worker("worker-a", 1).await;
    // The oldest queued rows: a thousand jobs for an hour from now, never due in this test.
    let later = c.submit_later(1_000).await;
    // The worker's one slot is busy, so the next jobs wait in Redis...
    let blocker = c.submit_sleeps(1, 600_000).await.remove(0);
    c.client
        .watch_until(&blocker, |j| j.state() == pb::JobState::Running)
        .await;
    let ids = c.submit_sleeps(20, 10).await;
    // ... when Redis loses everything. The record still has them queued; only the
    // reconciler can put them back (no worker starts again, which would dispatch them).
    c.redis.restart_empty();
    for id in &ids {
        assert_eq!(c.state(id).await, JobState::Queued, "job {id} is waiting");
    }
    c.client.cancel(&blocker).await.unwrap();
    // The reconciler runs every second here and republishes a job queued for two
    // periods: the twenty are due again within seconds, not after the thousand others.
    c.all_succeed_within(&ids, Duration::from_secs(15)).await;
    c.check_outputs_once(&ids).await;
    for id in later.iter().step_by(100) {
        assert_eq!(c.state(id).await, JobState::Queued, "job {id} is not due");
    }
}

#[tokio::test]
async fn redis_holds_the_queue_and_hands_a_new_job_to_a_worker_at_once() {
    // The reconciler runs every 30 s here and republishes only jobs queued for two
    // periods, so it delivers nothing within this test's deadlines: only the Redis
    // transport can.
    let c = Cluster::start_with(&[("--reconcile-every", "30s")]).await;
    let mut redis = c.redis_conn().await;
    let (ready, delayed) = (
        RedisTransport::ready_key("debug"),
        RedisTransport::delayed_key("debug"),
    );
    // (a) A job for later waits in Redis, in the queue's delayed set: the API process
    // published it there (no worker runs yet). A transport other than Redis — one in
    // each process's memory — would leave Redis empty.
    let later = c.submit_later(1).await.remove(0);
    let waiting: Vec<String> = redis.zrange(&delayed, 0, -1).await.unwrap();
    assert!(
        waiting.len() == 1 && waiting[0].ends_with(&later),
        "{delayed} holds job {later}: {waiting:?}"
    );
    assert_eq!(redis.zcard::<_, u64>(&ready).await.unwrap(), 0, "{ready}");
    // (b) A job submitted once the worker consumes starts within a second. At start the
    // worker dispatched what was queued then (the job above), and recorded itself in
    // the workers table before consuming; the job below is submitted after that and is
    // not stale for a minute, so the reconciler cannot have handed it over: the API's
    // publish to Redis woke the worker's blocking pop.
    let _w = c.worker("worker-a", 1).await;
    tokio::time::timeout(DEADLINE, async {
        while c.store.workers_seen_since(0).await.unwrap().is_empty() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the worker starts consuming");
    let job = c.submit_sleeps(1, 10).await.remove(0);
    let done = tokio::time::timeout(Duration::from_secs(10), c.client.watch_to_end(&job))
        .await
        .expect("the job runs at once")
        .pop()
        .unwrap();
    assert_eq!(done.state(), pb::JobState::Succeeded, "{done:#?}");
    let j = c.job(&job).await;
    let waited = j.started_at.unwrap() - j.created_at;
    assert!(
        waited < 1_000,
        "job {job} started {waited} ms after it was submitted"
    );
    assert_eq!(redis.zcard::<_, u64>(&ready).await.unwrap(), 0, "taken");
    assert_eq!(c.state(&later).await, JobState::Queued);
}

#[tokio::test]
async fn watch_hears_a_worker_over_the_bus_after_redis_restarts_empty() {
    // With a 60 s lease the worker renews it (and would notice a cancel request in the
    // record) every 20 s; the Watch re-reads the record every 5 s, on Resync and when it
    // lags. Below, a cancel is requested after Redis restarted empty, and the Watch
    // must show the worker's `cancelled` within a second and before its first periodic
    // re-read: only the event bus, through the new Redis, in both directions (the
    // request API -> worker, the result worker -> API), explains that.
    let mut c = Cluster::start_with(&[("--lease", "60s")]).await;
    let _w = c.worker("worker-a", 1).await;
    let job = c.submit_sleeps(1, 600_000).await.remove(0);
    c.client
        .watch_until(&job, |j| j.state() == pb::JobState::Running)
        .await;
    let subscribers = |redis: redis::aio::MultiplexedConnection| async move {
        let mut redis = redis;
        let counts: Vec<(String, u64)> = redis::cmd("PUBSUB")
            .arg("NUMSUB")
            .arg(RedisBus::CHANNEL)
            .query_async(&mut redis)
            .await
            .unwrap();
        counts[0].1
    };
    // The API's and the worker's buses.
    let buses = subscribers(c.redis_conn().await).await;
    assert_eq!(buses, 2, "subscribers of {}", RedisBus::CHANNEL);
    let mut watch = c
        .client
        .jobs
        .clone()
        .watch_job(pb::WatchJobRequest { id: job.clone() })
        .await
        .unwrap()
        .into_inner();
    let opened = Instant::now();
    let first = watch.next().await.unwrap().unwrap();
    assert_eq!(first.state(), pb::JobState::Running);
    c.redis.restart_empty();
    // Both processes subscribe again (each then re-reads, on Resync: before the cancel).
    tokio::time::timeout(DEADLINE, async {
        while subscribers(c.redis_conn().await).await < buses {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the API and the worker subscribe to the new Redis");
    let asked = Instant::now();
    c.client.cancel(&job).await.unwrap();
    let seen = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(j) = watch.next().await {
            if j.unwrap().state() == pb::JobState::Cancelled {
                return Instant::now();
            }
        }
        panic!("the Watch ended without the job's end")
    })
    .await
    .expect("the Watch shows the job cancelled");
    assert!(
        seen - asked < Duration::from_secs(1),
        "cancelled {:?} after the request",
        seen - asked
    );
    assert!(
        seen - opened < Duration::from_secs(5),
        "seen {:?} after the Watch opened: a periodic re-read may explain it (the restart \
         took too long for this test to tell)",
        seen - opened
    );
}

#[tokio::test]
async fn readyz_answers_503_until_the_workers_run_and_while_redis_is_down() {
    // What the Kubernetes readiness probes ask (deploy/k8s/base: `/readyz` on the jobs
    // API's and each worker's HTTP port).
    let mut c = Cluster::start().await;
    let api = c.api.addr("HTTP:");
    assert_eq!(http_get(api, "/readyz").await, (200, "ready\n".into()));
    // A worker's workers start once every kind has said whether it can run here;
    // video.transcode asks ffmpeg. This ffmpeg waits for a file the test creates (or
    // for the worker to go), so the worker answers but cannot start its workers yet.
    let tools = tempfile::tempdir().unwrap();
    let gate = tools.path().join("open");
    let ffmpeg = tools.path().join("ffmpeg");
    std::fs::write(
        &ffmpeg,
        format!(
            "#!/bin/sh\nwhile [ ! -e '{}' ] && kill -0 $PPID 2>/dev/null; do sleep 0.05; done\nexit 1\n",
            gate.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&ffmpeg, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let w = c
        .worker_with("worker-a", 1, &["--ffmpeg", ffmpeg.to_str().unwrap()])
        .await;
    let worker = w.addr("HTTP:");
    assert_eq!(
        http_get(worker, "/readyz").await,
        (503, "starting the workers\n".into())
    );
    assert_eq!(http_get(worker, "/healthz").await.0, 200, "yet alive");
    std::fs::write(&gate, "").unwrap();
    wait_for_readyz(worker, 200).await;
    // Redis goes away: neither process is ready; it comes back (empty): both are.
    let _: redis::RedisResult<()> = redis::cmd("SHUTDOWN")
        .arg("NOSAVE")
        .query_async(&mut c.redis_conn().await)
        .await;
    for addr in [api, worker] {
        let (status, body) = wait_for_readyz(addr, 503).await;
        assert_eq!((status, body.as_str()), (503, "queue unavailable\n"));
    }
    c.redis.restart_empty();
    for addr in [api, worker] {
        wait_for_readyz(addr, 200).await;
    }
}

/// Polls `/readyz` at `addr` until it answers `status`; returns the answer.
async fn wait_for_readyz(addr: std::net::SocketAddr, status: u16) -> (u16, String) {
    let mut last = (0, String::new());
    tokio::time::timeout(DEADLINE, async {
        loop {
            last = http_get(addr, "/readyz").await;
            if last.0 == status {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{addr}/readyz never answered {status}; last {last:?}"));
    last
}

/// The reconciler ticks (apalis-cron) in every worker, but each tick is run by one
/// process only: the holder of the `reconcile` lease in the database. Killed with -9,
/// the holder cannot hand the lease on; the other worker takes the ticks once it ends
/// (three ticks here), and goes on putting back what a dead worker left running.
#[tokio::test]
async fn one_worker_reconciles_each_tick_and_another_takes_over_when_it_is_killed() {
    let c = Cluster::start().await;
    let mut workers = vec![
        ("worker-a", c.worker("worker-a", 1).await),
        ("worker-b", c.worker("worker-b", 1).await),
    ];
    // Both tick every second: wait for five ticks taken after both started.
    let start = wait_for_tick(&c, 0, |_| true).await.2;
    let (holder, _, _) = wait_for_tick(&c, start + 4_000, |_| true).await;
    let ticks: Vec<u64> = futures::future::join_all(
        workers
            .iter()
            .map(|(_, p)| reconcile_ticks(p.addr("HTTP:"))),
    )
    .await;
    let i = workers.iter().position(|(n, _)| *n == holder).unwrap();
    assert!(ticks[i] >= 5, "the holder ran every tick: {ticks:?}");
    assert_eq!(ticks[1 - i], 0, "the other ran none: {ticks:?}");

    // Two jobs, one running on each worker; the holder killed: the survivor gets the
    // lease and reconciles, so the killed worker's job runs again there.
    let jobs = c.submit_sleeps(2, 3_000).await;
    for job in &jobs {
        c.client
            .watch_until(job, |j| j.state() == pb::JobState::Running)
            .await;
    }
    let mut orphan = None;
    for job in &jobs {
        if c.job(job).await.worker.as_deref() == Some(holder.as_str()) {
            orphan = Some(job.clone());
        }
    }
    let orphan = orphan.expect("one job runs on each worker");
    let (_, mut killed) = workers.remove(i);
    killed.kill9().await;
    let (survivor, survivor_proc) = &workers[0];
    wait_for_tick(&c, 0, |h| h == *survivor).await;
    assert!(reconcile_ticks(survivor_proc.addr("HTTP:")).await >= 1);
    let done = c.client.watch_to_end(&orphan).await.pop().unwrap();
    assert_eq!(done.state(), pb::JobState::Succeeded, "{done:#?}");
    assert_eq!(done.attempt, 2, "put back once, run again: {done:#?}");
    assert_eq!(c.job(&orphan).await.worker.as_deref(), Some(*survivor));
}

/// Waits until the `reconcile` task's last tick is at least `tick` and its holder
/// passes `holder`; returns (holder, lease end, last tick).
async fn wait_for_tick(
    c: &Cluster,
    tick: i64,
    holder: impl Fn(&str) -> bool,
) -> (String, i64, i64) {
    let mut last = None;
    tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            last = c.store.tick_holder("reconcile").await.unwrap();
            if let Some((h, until, t)) = &last
                && *t >= tick
                && holder(h)
            {
                return (h.clone(), *until, *t);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no reconcile tick as awaited; last {last:?}"))
}

/// The reconciler ticks a process ran, from its `/metrics`.
async fn reconcile_ticks(addr: std::net::SocketAddr) -> u64 {
    let (status, body) = http_get(addr, "/metrics").await;
    assert_eq!(status, 200);
    body.lines()
        .find_map(|l| l.strip_prefix("forklift_maintenance_ticks_total{task=\"reconcile\"} "))
        .map_or(0, |n| n.trim().parse().unwrap())
}

#[tokio::test]
async fn sigterm_lets_running_jobs_finish_and_queued_ones_wait_for_the_next_worker() {
    let c = Cluster::start().await;
    let mut a = c.worker("worker-a", 2).await;
    let ids = c.submit_sleeps(5, 1_500).await;
    c.client
        .watch_until(&ids[0], |j| j.state() == pb::JobState::Running)
        .await;
    c.client
        .watch_until(&ids[1], |j| j.state() == pb::JobState::Running)
        .await;
    let status = a.terminate().await;
    assert!(status.success(), "clean exit: {status:?}");
    let mut states = Vec::new();
    for id in &ids {
        states.push(c.job(id).await.state);
    }
    assert_eq!(
        states.iter().filter(|s| **s == JobState::Succeeded).count(),
        2,
        "{states:?}"
    );
    assert_eq!(
        states.iter().filter(|s| **s == JobState::Queued).count(),
        3,
        "{states:?}"
    );
    let _b = c.worker("worker-b", 2).await;
    c.all_succeed(&ids).await;
    c.check_outputs_once(&ids).await;
}

#[tokio::test]
async fn duplicate_deliveries_never_run_a_job_twice() {
    let c = Cluster::start().await;
    let _a = c.worker("worker-a", 4).await;
    let _b = c.worker("worker-b", 4).await;
    let ids = c.submit_sleeps(24, 300).await;
    // Publish every job again and again while they run: each must still run once.
    let t = RedisTransport::connect(&c.redis.url()).await.unwrap();
    for _ in 0..5 {
        for id in &ids {
            t.publish(Delivery {
                job_id: id.parse().unwrap(),
                queue: "debug".into(),
                priority: 0,
                run_at: 0,
            })
            .await
            .unwrap();
        }
    }
    c.all_succeed(&ids).await;
    for id in &ids {
        let j = c.job(id).await;
        assert_eq!(j.attempt, 1, "job {id} was claimed once");
    }
    c.check_outputs_once(&ids).await;
}

#[tokio::test]
async fn a_thousand_jobs_with_workers_killed_every_second_all_succeed_once() {
    let c = Cluster::start().await;
    let ids = c.submit_sleeps(1_000, 20).await;
    let done = c.all_succeed(&ids);
    tokio::pin!(done);
    let mut workers = vec![c.worker("w-0", 8).await, c.worker("w-1", 8).await];
    let mut n = 2;
    let mut kills = 0;
    let mut tick = tokio::time::interval(std::time::Duration::from_millis(1_500));
    tick.tick().await;
    loop {
        tokio::select! {
            _ = &mut done => break,
            _ = tick.tick() => {
                // Churn: kill the oldest worker outright and start a fresh one.
                workers.remove(0).kill9().await;
                kills += 1;
                workers.push(c.worker(&format!("w-{n}"), 8).await);
                n += 1;
            }
        }
    }
    assert!(kills >= 1, "at least one worker was killed mid-run");
    c.check_outputs_once(&ids).await;
}

#[tokio::test]
async fn migrate_only_applies_the_schema_and_exits() {
    let pg = forklift_testkit::Postgres::shared();
    let database = pg.database();
    let out = tokio::process::Command::new(binary("forklift-jobs"))
        .args([
            "--migrate-only",
            "--database-url",
            &database,
            "--log",
            "warn",
        ])
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("migrations applied"));
    assert_eq!(
        pg.query(&database, "SELECT count(*) FROM jobs"),
        "0",
        "the schema exists"
    );
    assert_eq!(
        pg.query(&database, "SELECT count(*) FROM users"),
        "0",
        "and nothing else was done"
    );
}

/// Every file of a user, from pages of 1,000.
async fn all_files(c: &Client) -> Vec<pb::File> {
    let req = pb::ListFilesRequest {
        page_size: 1000,
        ..Default::default()
    };
    c.files
        .clone()
        .list_files(req)
        .await
        .unwrap()
        .into_inner()
        .files
}

/// Every job of a user, from pages of 1,000.
async fn all_jobs(c: &Client) -> Vec<pb::Job> {
    let req = pb::ListJobsRequest {
        page_size: 1000,
        ..Default::default()
    };
    c.list_jobs(req).await.unwrap().jobs
}

/// Each file under `dir` (recursively) with its content's SHA-256.
fn tree_digest(dir: &std::path::Path) -> std::collections::BTreeMap<String, String> {
    use sha2::Digest;
    let mut out = std::collections::BTreeMap::new();
    let mut dirs = vec![dir.to_owned()];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                dirs.push(p);
            } else {
                let digest = hex::encode(sha2::Sha256::digest(std::fs::read(&p).unwrap()));
                out.insert(p.strip_prefix(dir).unwrap().display().to_string(), digest);
            }
        }
    }
    out
}

/// `forklift-jobs admin migrate <args>`, with the bucket's credentials.
fn migrate_command(args: &[String], env: &[(String, String)]) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(binary("forklift-jobs"));
    cmd.args(["admin", "migrate"])
        .args(args)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    cmd
}

/// Runs a migration to its end: (success, what it said).
async fn run_migration(args: &[String], env: &[(String, String)]) -> (bool, String) {
    let out = tokio::time::timeout(DEADLINE, migrate_command(args, env).output())
        .await
        .expect("the migration ends in time")
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A unified installation in use — two users, API tokens, uploads, finished, failed,
/// cancelled and queued jobs with outputs and a report — stopped, then moved into
/// PostgreSQL and S3 by `forklift-jobs admin migrate`, killed half-way once and run
/// again; the extracted topology started on the targets serves everything as before,
/// runs the queued job, and the source is as it was.
#[tokio::test]
async fn a_unified_installation_moves_to_postgres_and_s3_with_one_command() {
    // ---- the unified installation ----
    let data = tempfile::tempdir().unwrap();
    let mut unified_args = test_flags(data.path());
    set_flag(&mut unified_args, "--shutdown-grace", "100ms");
    unified_args
        .extend(["--http-addr", "127.0.0.1:0", "--grpc-addr", "127.0.0.1:0"].map(String::from));
    let mut unified =
        Proc::start(&binary("forklift-web"), &unified_args, &[], "Press Ctrl-C").await;
    let admin_token = std::fs::read_to_string(data.path().join("admin-token")).unwrap();
    let admin_token = admin_token.trim().to_owned();
    let grpc = unified.addr("gRPC:");
    let admin = Client::connect(grpc, Some(&admin_token)).await;
    let common = test_flags(data.path());
    admin_command(&common, &["create-user", "--email", "second@example.com"])
        .await
        .unwrap();
    let second_token = admin_command(&common, &["create-token", "--email", "second@example.com"])
        .await
        .unwrap();
    let second = Client::connect(grpc, Some(&second_token)).await;

    let mut contents = std::collections::BTreeMap::new();
    let photo = admin
        .upload("photo.jpg", &test_jpeg(640, 480, None))
        .await
        .unwrap();
    contents.insert(photo.id.clone(), test_jpeg(640, 480, None));
    let csv = b"city,people\nOslo,709000\nBergen,291000\nTromso,77000\n".to_vec();
    let table = admin.upload("cities.csv", &csv).await.unwrap();
    contents.insert(table.id.clone(), csv);
    // Enough content that the migration can be stopped half-way.
    for i in 0..60u32 {
        let bytes: Vec<u8> = (0..256 * 1024u32)
            .map(|b| (b.wrapping_mul(31) ^ i) as u8)
            .collect();
        let f = admin
            .upload(&format!("blob-{i}.bin"), &bytes)
            .await
            .unwrap();
        contents.insert(f.id.clone(), bytes);
    }
    let scratch = tempfile::tempdir().unwrap();
    let video = test_video(scratch.path(), 1, "160x90");
    let clip = admin.upload("clip.mp4", &video).await.unwrap();
    contents.insert(clip.id.clone(), video);
    let theirs = second
        .upload("notes.txt", b"the second user's")
        .await
        .unwrap();
    let thumb = admin
        .submit(submit(
            thumbnail_params(&[(64, 64)], pb::Fit::Contain, pb::ImageFormat::Png),
            &[&photo.id],
        ))
        .await
        .unwrap();
    let profile = admin
        .submit(submit(
            pb::JobParams {
                kind: Some(pb::job_params::Kind::DataProfile(pb::DataProfileParams {
                    delimiter: String::new(),
                    header: 0,
                })),
            },
            &[&table.id],
        ))
        .await
        .unwrap();
    let mut failing = submit(flaky_params(5), &[]);
    failing.max_attempts = 1;
    let failed = second.submit(failing).await.unwrap();
    let mut later = submit(sleep_params(10), &[]);
    later.not_before = Some(in_an_hour());
    let cancelled = second.submit(later).await.unwrap();
    second.cancel(&cancelled.id).await.unwrap();
    for id in [&thumb.id, &profile.id, &failed.id] {
        // Admins may watch every user's jobs.
        admin.watch_to_end(id).await;
    }
    // Running when the installation stops: released (queued again) after the 100 ms grace.
    let waiting = second
        .submit(submit(sleep_params(2_000), &[]))
        .await
        .unwrap();
    second
        .watch_until(&waiting.id, |j| j.state() == pb::JobState::Running)
        .await;
    let mut outputs = Vec::new();
    for id in [&thumb.id, &profile.id] {
        let job = admin.get(id).await.unwrap();
        for o in &job.outputs {
            let (_, bytes) = admin.download(&o.file_id).await.unwrap();
            outputs.push((o.file_id.clone(), bytes));
        }
    }
    assert!(
        outputs.len() >= 3,
        "a thumbnail and the report's files: {outputs:?}"
    );
    let (before_admin_files, before_admin_jobs) = (all_files(&admin).await, all_jobs(&admin).await);
    let before_second_jobs = all_jobs(&second).await;
    assert!(unified.terminate().await.success());
    let source_db = format!("sqlite://{}", data.path().join("forklift.db").display());
    // The 100 ms grace ran out: the running job went back to the queue.
    let snapshot = forklift_db::Db::open_snapshot(&source_db).await.unwrap();
    let released = forklift_store::Store::new(snapshot.clone())
        .get_job(waiting.id.parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(released.state, JobState::Queued, "{released:#?}");
    snapshot.close().await;
    let source_before = tree_digest(data.path());

    let source_files = format!("file://{}", data.path().join("files").display());

    // ---- a dry run counts ----
    let (ok, said) = run_migration(
        &[
            "--from-database",
            &source_db,
            "--from-storage",
            &source_files,
            "--dry-run",
        ]
        .map(String::from),
        &[],
    )
    .await;
    assert!(ok, "{said}");
    let objects = contents.len() + 1 + outputs.len();
    assert!(said.contains("users: 2 rows"), "{said}");
    assert!(said.contains("jobs: 5 rows"), "{said}");
    assert!(said.contains(&format!("files: {objects} rows")), "{said}");
    assert!(
        said.contains(&format!("storage: {objects} objects")),
        "{said}"
    );

    // ---- a corrupt object stops a migration, naming its file ----
    let corrupt_copy = tempfile::tempdir().unwrap();
    let status = std::process::Command::new("cp")
        .args([
            "-a",
            &format!("{}/.", data.path().display()),
            &corrupt_copy.path().display().to_string(),
        ])
        .status()
        .unwrap();
    assert!(status.success());
    std::fs::write(
        corrupt_copy.path().join("files/uploads").join(&table.id),
        b"not the table",
    )
    .unwrap();
    let spare = Bucket::new();
    let (ok, said) = run_migration(
        &[
            "--from-database".to_owned(),
            format!(
                "sqlite://{}",
                corrupt_copy.path().join("forklift.db").display()
            ),
            "--from-storage".to_owned(),
            format!("file://{}", corrupt_copy.path().join("files").display()),
            "--to-database".to_owned(),
            forklift_testkit::Postgres::shared().database(),
            "--to-storage".to_owned(),
            spare.url.clone(),
        ],
        &spare.env,
    )
    .await;
    assert!(!ok, "a corrupt object must stop the migration: {said}");
    assert!(
        said.contains(&format!("file {} (\"cities.csv\")", table.id)) && said.contains("corrupt"),
        "{said}"
    );

    // ---- the migration, killed half-way once, then run again ----
    let target_db = forklift_testkit::Postgres::shared().database();
    let bucket = Bucket::new();
    let args = [
        "--from-database",
        &source_db,
        "--from-storage",
        &source_files,
        "--to-database",
        &target_db,
        "--to-storage",
        &bucket.url,
    ]
    .map(String::from);
    let mut first = migrate_command(&args, &bucket.env).spawn().unwrap();
    tokio::time::timeout(DEADLINE, async {
        while bucket.keys("uploads/").await.len() < 5 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the migration copies objects");
    assert!(
        first.try_wait().unwrap().is_none(),
        "still copying when killed"
    );
    first.start_kill().unwrap();
    first.wait().await.unwrap();
    let copied = bucket.keys("").await.len();
    assert!(
        copied < objects,
        "stopped half-way: {copied} of {objects} objects"
    );
    let (ok, said) = run_migration(&args, &bucket.env).await;
    assert!(ok, "{said}");
    let total_rows = 2 + 2 + objects + 5;
    let new_rows: usize = said
        .split(&format!("{total_rows} rows ("))
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no summary in {said}"));
    assert!(
        new_rows < total_rows,
        "the second run went on, not over: {said}"
    );
    assert_eq!(bucket.keys("").await.len(), objects);
    assert_eq!(
        tree_digest(data.path()),
        source_before,
        "nothing was written to the source"
    );

    // ---- the extracted topology on the targets ----
    let redis = forklift_testkit::Redis::start();
    let dirs = DataDirs::new();
    let mut common = test_flags(dirs.path());
    common.extend([
        "--database-url".to_owned(),
        target_db.clone(),
        "--redis-url".to_owned(),
        redis.url(),
    ]);
    common.extend(bucket.flags());
    let with_dir = |name: &str| {
        let mut a = common.clone();
        a.extend(dirs.flags(name));
        a
    };
    let api = start_jobs_with_env("api", &with_dir("jobs-api"), &bucket.env).await;
    let _worker = start_jobs_with_env("worker", &with_dir("jobs-worker"), &bucket.env).await;
    let admin = Client::connect(api.addr("gRPC:"), Some(&admin_token)).await;
    let second = Client::connect(api.addr("gRPC:"), Some(&second_token)).await;
    assert_eq!(
        all_files(&admin).await,
        before_admin_files,
        "the same ids answer, the old token works"
    );
    assert_eq!(all_jobs(&admin).await, before_admin_jobs);
    for (id, bytes) in contents.iter().chain(outputs.iter().map(|(i, b)| (i, b))) {
        assert_eq!(
            &admin.download(id).await.unwrap().1,
            bytes,
            "file {id} byte for byte"
        );
    }
    assert_eq!(
        second.download(&theirs.id).await.unwrap().1,
        b"the second user's"
    );
    assert_eq!(
        second.get_file(&photo.id).await.unwrap_err().code(),
        tonic::Code::NotFound,
        "owners unchanged"
    );
    for before in before_second_jobs.iter().filter(|j| j.id != waiting.id) {
        assert_eq!(
            &second.get(&before.id).await.unwrap(),
            before,
            "job history intact"
        );
    }
    let done = second.watch_to_end(&waiting.id).await.pop().unwrap();
    assert_eq!(done.state(), pb::JobState::Succeeded, "{done:#?}");
    assert_eq!(done.outputs.len(), 1);
    dirs.assert_no_files();
}
