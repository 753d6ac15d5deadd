//! The runner's apalis workers over Forklift's own backend, on a real PostgreSQL
//! database and a real Redis (the extracted shape): the properties for which
//! apalis-redis's own storage was not used — a 20,000-job due backlog drains, each
//! orphaned job is recovered on its own, priorities are honoured — and that a kind's
//! panic fails its job, not the worker.

use async_trait::async_trait;
use forklift_accounts::Accounts;
use forklift_domain::{JobId, JobState, Role, UserId, now_ms};
use forklift_queue::{EventBus, RedisBus, RedisTransport, Transport};
use forklift_rpc::v1 as pb;
use forklift_runner::{JobCtx, JobError, Kind, Registry, RunnerConfig, Runtime, Violation};
use forklift_store::{JobInsert, Store};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;

/// Job ids in the order their attempts started.
type Started = Arc<Mutex<Vec<JobId>>>;

/// `test.note`: notes that it started, then succeeds.
struct Note(Started);
/// `test.hold`: waits until the gate opens.
struct Hold(watch::Receiver<bool>);
/// `test.panic`: panics.
struct Panic;

fn info() -> pb::KindInfo {
    pb::KindInfo::default()
}

macro_rules! kind_basics {
    ($name:literal) => {
        fn name(&self) -> &'static str {
            $name
        }
        fn queue(&self) -> &'static str {
            "test"
        }
        fn proto_field(&self) -> &'static str {
            ""
        }
        fn describe(&self) -> pb::KindInfo {
            info()
        }
        fn validate(
            &self,
            params: serde_json::Value,
            _: usize,
        ) -> Result<serde_json::Value, Vec<Violation>> {
            Ok(params)
        }
    };
}

#[async_trait]
impl Kind for Note {
    kind_basics!("test.note");
    async fn run(&self, ctx: &mut JobCtx) -> Result<(), JobError> {
        self.0.lock().unwrap().push(ctx.job().id);
        Ok(())
    }
}

#[async_trait]
impl Kind for Hold {
    kind_basics!("test.hold");
    async fn run(&self, _: &mut JobCtx) -> Result<(), JobError> {
        let mut gate = self.0.clone();
        gate.wait_for(|open| *open).await.ok();
        Ok(())
    }
}

#[async_trait]
impl Kind for Panic {
    kind_basics!("test.panic");
    async fn run(&self, _: &mut JobCtx) -> Result<(), JobError> {
        panic!("a bug in a kind");
    }
}

/// A runtime over a fresh PostgreSQL database and its own Redis, with the test kinds
/// on queue `test`.
struct Rig {
    rt: Runtime,
    owner: UserId,
    started: Started,
    gate: watch::Sender<bool>,
    _redis: forklift_testkit::Redis,
    _files: tempfile::TempDir,
}

impl Rig {
    async fn new(slots: usize) -> Self {
        let redis = forklift_testkit::Redis::start();
        let db = forklift_db::Db::open(&forklift_testkit::Postgres::shared().database())
            .await
            .unwrap();
        let owner = Accounts::new(db.clone())
            .create_user("runner@x", Role::User)
            .await
            .unwrap()
            .id;
        let files = tempfile::tempdir().unwrap();
        let started = Started::default();
        let (gate, gate_rx) = watch::channel(false);
        let mut registry = Registry::new();
        registry
            .register(Note(started.clone()))
            .register(Hold(gate_rx))
            .register(Panic);
        let transport: Arc<dyn Transport> =
            Arc::new(RedisTransport::connect(&redis.url()).await.unwrap());
        let bus: Arc<dyn EventBus> = Arc::new(RedisBus::connect(&redis.url()).await.unwrap());
        let cfg = RunnerConfig {
            worker_name: format!("runner-{}", uuid::Uuid::new_v4().simple()),
            queues: BTreeMap::from([("test".to_owned(), slots)]),
            lease: Duration::from_secs(3),
            grace: Duration::from_secs(1),
            reconcile_every: Duration::from_secs(1),
            exclusive_store: false,
            scratch_dir: files.path().to_owned(),
            ..RunnerConfig::default()
        };
        let rt = Runtime::new(
            Store::new(db),
            forklift_blob::Blobs::local(files.path()).unwrap(),
            transport,
            bus,
            registry,
            cfg,
        );
        Self {
            rt,
            owner,
            started,
            gate,
            _redis: redis,
            _files: files,
        }
    }

    fn store(&self) -> &Store {
        self.rt.store()
    }

    /// Records a job of `kind` with `priority` (not yet published).
    async fn insert(&self, kind: &str, priority: i32) -> JobId {
        let now = now_ms();
        let new = JobInsert {
            id: JobId::new(),
            owner_id: self.owner,
            kind: kind.to_owned(),
            queue: "test".to_owned(),
            params: serde_json::json!({}),
            input_file_ids: vec![],
            priority,
            max_attempts: 3,
            run_at: now,
            idempotency_key: None,
        };
        self.store().insert_job(&new, now).await.unwrap().0.id
    }

    /// Records and publishes a job.
    async fn submit(&self, kind: &str, priority: i32) -> JobId {
        let id = self.insert(kind, priority).await;
        let job = self.store().get_job(id).await.unwrap().unwrap();
        self.rt.dispatch(&job).await;
        id
    }

    /// Waits (up to `within`) until job `id` is in `state`; returns the job.
    async fn wait_for(&self, id: JobId, state: JobState, within: Duration) -> forklift_domain::Job {
        let mut last = None;
        tokio::time::timeout(within, async {
            loop {
                let job = self.store().get_job(id).await.unwrap().unwrap();
                if job.state == state {
                    return job;
                }
                last = Some(job);
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
        .await
        .unwrap_or_else(|_| panic!("job {id} not {state} within {within:?}: {last:#?}"))
    }

    /// Jobs in `state`.
    async fn count(&self, state: JobState) -> i64 {
        self.store()
            .count_jobs_by_state()
            .await
            .unwrap()
            .into_iter()
            .find(|(s, _)| *s == state)
            .map_or(0, |(_, n)| n)
    }
}

#[tokio::test]
async fn a_due_backlog_of_twenty_thousand_jobs_drains() {
    const N: usize = 20_000;
    let rig = Rig::new(16).await;
    // Recorded, then all published at once, all due: the backlog apalis-redis's own
    // storage cannot get past (its fetch unpacks every due job in one Lua call).
    futures::future::join_all((0..16).map(|_| async {
        for _ in 0..N / 16 {
            rig.insert("test.note", 0).await;
        }
    }))
    .await;
    rig.rt.recover().await.unwrap();
    assert_eq!(rig.rt.transport().depth("test").await.unwrap(), N as u64);
    let workers = rig.rt.start_workers().await;
    tokio::time::timeout(Duration::from_secs(600), async {
        while rig.count(JobState::Succeeded).await < N as i64 {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("the backlog did not drain"));
    // The reconciler may have published again a job taken from Redis whose claim was
    // still under way (it looks lost from there); the claim drops such a duplicate,
    // and the queue empties.
    tokio::time::timeout(Duration::from_secs(60), async {
        while rig.rt.transport().depth("test").await.unwrap() > 0 {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .expect("the queue empties");
    workers.drain().await;
    let started = rig.started.lock().unwrap().clone();
    assert_eq!(started.len(), N, "every job ran once");
}

#[tokio::test]
async fn each_orphaned_job_is_put_back_on_its_own_when_its_lease_ends() {
    let rig = Rig::new(2).await;
    // A dead worker holds two jobs: one lease ends in a second, the other in two minutes
    // (a worker that renews some leases and not others — stuck on one job, say).
    let (short, long) = (
        rig.insert("test.note", 0).await,
        rig.insert("test.note", 0).await,
    );
    let now = now_ms();
    for (id, lease) in [(short, 1_000), (long, 120_000)] {
        let claimed = rig
            .store()
            .claim(id, "ghost", &format!("t-{id}"), now + lease, now)
            .await
            .unwrap();
        assert!(claimed.is_some());
    }
    let workers = rig.rt.start_workers().await;
    let done = rig
        .wait_for(short, JobState::Succeeded, Duration::from_secs(30))
        .await;
    assert_eq!(done.attempt, 2, "put back once, run again: {done:#?}");
    let held = rig.store().get_job(long).await.unwrap().unwrap();
    assert_eq!(
        (held.state, held.worker.as_deref(), held.attempt),
        (JobState::Running, Some("ghost"), 1),
        "a live lease is left alone"
    );
    workers.drain().await;
}

#[tokio::test]
async fn with_the_only_slot_busy_waiting_jobs_start_highest_priority_first() {
    let rig = Rig::new(1).await;
    let workers = rig.rt.start_workers().await;
    let hold = rig.submit("test.hold", 0).await;
    rig.wait_for(hold, JobState::Running, Duration::from_secs(30))
        .await;
    let low = rig.submit("test.note", -10).await;
    let high = rig.submit("test.note", 50).await;
    let mid = rig.submit("test.note", 0).await;
    rig.gate.send_replace(true);
    for id in [low, high, mid] {
        rig.wait_for(id, JobState::Succeeded, Duration::from_secs(30))
            .await;
    }
    assert_eq!(*rig.started.lock().unwrap(), [high, mid, low]);
    workers.drain().await;
}

#[tokio::test]
async fn a_kind_that_panics_fails_its_job_and_the_worker_goes_on() {
    let rig = Rig::new(1).await;
    let workers = rig.rt.start_workers().await;
    let bad = rig.submit("test.panic", 0).await;
    let failed = rig
        .wait_for(bad, JobState::Failed, Duration::from_secs(30))
        .await;
    assert_eq!(
        failed.error.as_deref(),
        Some("the test.panic kind failed unexpectedly; the operator's logs have the details")
    );
    assert_eq!(failed.attempt, 1, "a panic is not retried");
    let good = rig.submit("test.note", 0).await;
    rig.wait_for(good, JobState::Succeeded, Duration::from_secs(30))
        .await;
    workers.drain().await;
}
