//! The store's guarantees, on a real SQLite file and a real PostgreSQL database per
//! test: every transition is conditional, so stale or duplicate workers change nothing;
//! concurrent writes each land exactly once, and a read sees every write that was
//! answered before it. (That a failing write among concurrent ones fails alone is shown
//! on the accounts' writes, in forklift-accounts' tests.)

use forklift_accounts::Accounts;
use forklift_domain::{JobId, JobState, Role, User, now_ms};
use forklift_store::{
    CancelOutcome, JobInsert, JobQuery, NewOutput, RunningCount, Store, StoreError, WorkerRecord,
};

// Each test runs on a fresh database of either backend.
use forklift_testkit::TestDb as Db;

async fn store(db: Db) -> (Record, Option<tempfile::TempDir>) {
    let (url, dir) = db.fresh_url();
    let db = forklift_db::Db::open(&url).await.unwrap();
    let record = Record {
        store: Store::new(db.clone()),
        accounts: Accounts::new(db),
    };
    (record, dir)
}

/// The store under test, and the accounts its jobs and files belong to (on the same
/// database, as in the unified app).
#[derive(Clone)]
struct Record {
    store: Store,
    accounts: Accounts,
}

impl std::ops::Deref for Record {
    type Target = Store;

    fn deref(&self) -> &Store {
        &self.store
    }
}

impl Record {
    /// A user to own jobs and files.
    async fn create_user(&self, email: &str, role: Role) -> forklift_accounts::Result<User> {
        self.accounts.create_user(email, role).await
    }
}

forklift_testkit::on_both_databases!(
    a_duplicate_claim_is_dropped_and_a_stale_token_changes_nothing,
    a_manual_retry_starts_afresh_and_records_outputs_once,
    cancel_queued_at_once_and_running_by_request,
    recovery_fails_jobs_out_of_attempts_and_respects_live_leases,
    release_does_not_spend_the_attempt_and_claims_respect_run_at,
    idempotency_keys_are_per_owner_and_must_match,
    lists_filter_and_page,
    jobs_updated_since_are_one_owners_in_change_order_and_page,
    queued_jobs_page_through_the_stale_ones_in_run_order,
    workers_are_upserted_listed_by_last_report_and_deleted,
    each_maintenance_tick_goes_to_one_holder_while_its_lease_lasts,
    concurrent_inserts_and_claims_each_land_exactly_once,
    a_read_right_after_a_write_sees_it,
);

async fn new_job(s: &Record, key: Option<&str>) -> forklift_domain::Job {
    let user = match s
        .list_jobs(&JobQuery {
            limit: 1,
            ..Default::default()
        })
        .await
        .unwrap()
        .first()
    {
        Some(j) => j.owner_id,
        None => {
            s.create_user(&format!("{}@x", JobId::new()), Role::User)
                .await
                .unwrap()
                .id
        }
    };
    let new = JobInsert {
        params: serde_json::json!({"a": 1}),
        max_attempts: 2,
        idempotency_key: key.map(str::to_owned),
        ..noop(user, now_ms())
    };
    s.insert_job(&new, now_ms()).await.unwrap().0
}

fn output(name: &str) -> NewOutput {
    NewOutput {
        name: name.into(),
        content_type: "text/plain".into(),
        size_bytes: 1,
        sha256: "00".into(),
        blob_key: format!("k/{name}"),
    }
}

async fn a_duplicate_claim_is_dropped_and_a_stale_token_changes_nothing(db: Db) {
    let (s, _d) = store(db).await;
    let job = new_job(&s, None).await;
    let now = now_ms();
    let first = s
        .claim(job.id, "w1", "t1", now + 1000, now)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((first.job.state, first.job.attempt), (JobState::Running, 1));
    assert!(
        s.claim(job.id, "w2", "t2", now + 1000, now)
            .await
            .unwrap()
            .is_none(),
        "duplicate delivery"
    );

    // The lease expires; the reconciler requeues; another worker claims it.
    let rec = s.recover_running(now + 2000, now + 2000).await.unwrap();
    assert_eq!(rec.requeued.len(), 1);
    let second = s
        .claim(job.id, "w2", "t2", now + 5000, now + 2000)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(second.job.attempt, 2);

    // The first worker wakes up: none of its changes land.
    assert!(
        s.set_progress(job.id, "t1", 50, "x", now)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        s.succeed(job.id, "t1", &[output("a")], now)
            .await
            .unwrap()
            .is_none()
    );
    assert!(s.fail(job.id, "t1", "boom", now).await.unwrap().is_none());
    assert!(
        s.retry_later(job.id, "t1", "x", now, now)
            .await
            .unwrap()
            .is_none()
    );
    assert!(s.release(job.id, "t1", now).await.unwrap().is_none());
    assert!(
        s.finish_cancelled(job.id, "t1", now)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        s.renew_lease(job.id, "t1", now + 9999)
            .await
            .unwrap()
            .is_none()
    );
    let current = s.get_job(job.id).await.unwrap().unwrap();
    assert_eq!(
        (current.state, current.worker.as_deref()),
        (JobState::Running, Some("w2"))
    );

    // The current holder finishes, and no output file was recorded for the stale one.
    let done = s
        .succeed(job.id, "t2", &[output("b")], now)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(done.state, JobState::Succeeded);
    assert_eq!(done.outputs.len(), 1);
    assert_eq!(done.outputs[0].name, "b");
    assert!(done.version > current.version);
}

async fn a_manual_retry_starts_afresh_and_records_outputs_once(db: Db) {
    let (s, _d) = store(db).await;
    let job = new_job(&s, None).await;
    let now = now_ms();
    s.claim(job.id, "w", "t1", now + 1000, now)
        .await
        .unwrap()
        .unwrap();
    let failed = s.fail(job.id, "t1", "corrupt", now).await.unwrap().unwrap();
    assert_eq!(failed.state, JobState::Failed);
    let again = s.retry(job.id, now).await.unwrap().unwrap();
    assert_eq!(
        (again.state, again.attempt, again.error.clone()),
        (JobState::Queued, 0, None)
    );
    s.claim(job.id, "w", "t2", now + 1000, now)
        .await
        .unwrap()
        .unwrap();
    let done = s
        .succeed(job.id, "t2", &[output("a"), output("b")], now)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(done.outputs.len(), 2);
    assert!(
        s.retry(job.id, now).await.unwrap().is_none(),
        "succeeded jobs are not retried"
    );
    let files = s.list_files(job.owner_id, None, 10).await.unwrap();
    assert_eq!(files.len(), 2);
    assert!(files.iter().all(|f| f.source_job_id == Some(job.id)));
}

async fn cancel_queued_at_once_and_running_by_request(db: Db) {
    let (s, _d) = store(db).await;
    let a = new_job(&s, None).await;
    let b = new_job(&s, None).await;
    let now = now_ms();
    assert!(
        matches!(s.cancel(a.id, now).await.unwrap(), CancelOutcome::Cancelled(j) if j.state == JobState::Cancelled)
    );
    assert!(
        s.claim(a.id, "w", "t", now + 1000, now)
            .await
            .unwrap()
            .is_none(),
        "a cancelled job is never claimed"
    );
    s.claim(b.id, "w", "t", now + 1000, now)
        .await
        .unwrap()
        .unwrap();
    match s.cancel(b.id, now).await.unwrap() {
        CancelOutcome::Requested(j) => assert!(j.cancel_requested && j.state == JobState::Running),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        s.renew_lease(b.id, "t", now + 2000).await.unwrap(),
        Some(true)
    );
    let done = s.finish_cancelled(b.id, "t", now).await.unwrap().unwrap();
    assert_eq!(done.state, JobState::Cancelled);
    assert!(matches!(
        s.cancel(JobId::new(), now).await.unwrap(),
        CancelOutcome::NotFound
    ));
}

async fn recovery_fails_jobs_out_of_attempts_and_respects_live_leases(db: Db) {
    let (s, _d) = store(db).await;
    let job = new_job(&s, None).await; // max_attempts = 2
    let now = now_ms();
    s.claim(job.id, "w", "t1", now + 10_000, now)
        .await
        .unwrap()
        .unwrap();
    let none = s.recover_running(now, now).await.unwrap();
    assert!(
        none.requeued.is_empty() && none.failed.is_empty(),
        "lease still live"
    );
    let r = s.recover_running(i64::MAX, now).await.unwrap();
    assert_eq!(r.requeued.len(), 1);
    s.claim(job.id, "w", "t2", now + 10_000, now)
        .await
        .unwrap()
        .unwrap();
    let r = s.recover_running(i64::MAX, now).await.unwrap();
    assert_eq!(
        r.failed.len(),
        1,
        "second crash on the last attempt fails it"
    );
    assert!(
        r.failed[0]
            .error
            .as_deref()
            .unwrap()
            .contains("stopped responding")
    );
}

async fn release_does_not_spend_the_attempt_and_claims_respect_run_at(db: Db) {
    let (s, _d) = store(db).await;
    let job = new_job(&s, None).await;
    let now = now_ms();
    s.claim(job.id, "w", "t", now + 1000, now)
        .await
        .unwrap()
        .unwrap();
    let released = s.release(job.id, "t", now).await.unwrap().unwrap();
    assert_eq!((released.state, released.attempt), (JobState::Queued, 0));
    s.claim(job.id, "w", "t2", now + 1000, now)
        .await
        .unwrap()
        .unwrap();
    let later = s
        .retry_later(job.id, "t2", "flaky", now + 60_000, now)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(later.error.as_deref(), Some("flaky"));
    assert!(
        s.claim(job.id, "w", "t3", now + 1000, now)
            .await
            .unwrap()
            .is_none(),
        "not due yet"
    );
    assert!(
        s.claim(job.id, "w", "t3", now + 61_000, now + 60_000)
            .await
            .unwrap()
            .is_some()
    );
}

async fn idempotency_keys_are_per_owner_and_must_match(db: Db) {
    let (s, _d) = store(db).await;
    let a = new_job(&s, Some("k")).await;
    let again = JobInsert {
        id: JobId::new(),
        owner_id: a.owner_id,
        kind: a.kind.clone(),
        queue: a.queue.clone(),
        params: a.params.clone(),
        input_file_ids: vec![],
        priority: 0,
        max_attempts: 2,
        run_at: now_ms(),
        idempotency_key: Some("k".into()),
    };
    let (same, created) = s.insert_job(&again, now_ms()).await.unwrap();
    assert!(!created);
    assert_eq!(same.id, a.id);
    let different = JobInsert {
        params: serde_json::json!({"a": 2}),
        ..again.clone()
    };
    assert!(matches!(
        s.insert_job(&different, now_ms()).await,
        Err(StoreError::IdempotencyConflict)
    ));
    let other_user = s.create_user("other@x", Role::User).await.unwrap();
    let theirs = JobInsert {
        owner_id: other_user.id,
        id: JobId::new(),
        ..again
    };
    assert!(
        s.insert_job(&theirs, now_ms()).await.unwrap().1,
        "keys are per owner"
    );
}

async fn lists_filter_and_page(db: Db) {
    let (s, _d) = store(db).await;
    let a = new_job(&s, None).await;
    let b = new_job(&s, None).await;
    let c = new_job(&s, None).await;
    let now = now_ms();
    s.claim(b.id, "w", "t", now + 1000, now)
        .await
        .unwrap()
        .unwrap();
    let all = s
        .list_jobs(&JobQuery {
            owner: Some(a.owner_id),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        all.iter().map(|j| j.id).collect::<Vec<_>>(),
        [c.id, b.id, a.id]
    );
    let page = s
        .list_jobs(&JobQuery {
            owner: Some(a.owner_id),
            before: Some(c.id),
            limit: 1,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(page.iter().map(|j| j.id).collect::<Vec<_>>(), [b.id]);
    let running = s
        .list_jobs(&JobQuery {
            states: vec![JobState::Running],
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(running.len(), 1);
    let counts = s.count_jobs_by_state().await.unwrap();
    assert!(counts.contains(&(JobState::Queued, 2)) && counts.contains(&(JobState::Running, 1)));
    assert_eq!(s.queued_jobs().await.unwrap().len(), 2);
}

/// A `debug.noop` job of `owner`, due at `run_at`, one attempt, no inputs.
fn noop(owner: forklift_domain::UserId, run_at: i64) -> JobInsert {
    JobInsert {
        id: JobId::new(),
        owner_id: owner,
        kind: "debug.noop".into(),
        queue: "debug".into(),
        params: serde_json::json!({}),
        input_file_ids: vec![],
        priority: 0,
        max_attempts: 1,
        run_at,
        idempotency_key: None,
    }
}

/// A queued job of `owner` recorded at `at` (its `updated_at`).
async fn job_at(s: &Record, owner: forklift_domain::UserId, at: i64) -> forklift_domain::Job {
    s.insert_job(&noop(owner, at), at).await.unwrap().0
}

async fn jobs_updated_since_are_one_owners_in_change_order_and_page(db: Db) {
    let (s, _d) = store(db).await;
    let me = s.create_user("me@x", Role::User).await.unwrap().id;
    let other = s.create_user("other@x", Role::User).await.unwrap().id;
    let old = job_at(&s, me, 1_000).await;
    let a = job_at(&s, me, 2_000).await;
    let b = job_at(&s, me, 3_000).await;
    let c = job_at(&s, me, 3_000).await;
    job_at(&s, other, 2_500).await;
    // `a` changes last.
    let a = s
        .claim(a.id, "w", "t", 10_000, 4_000)
        .await
        .unwrap()
        .unwrap()
        .job;
    let ids = |jobs: Vec<forklift_domain::Job>| jobs.iter().map(|j| j.id).collect::<Vec<_>>();

    let all = s.jobs_updated_since(me, 2_000, None, 10).await.unwrap();
    assert_eq!(
        ids(all),
        [b.id, c.id, a.id],
        "since is inclusive; oldest change first"
    );
    let all = s.jobs_updated_since(me, 0, None, 10).await.unwrap();
    assert_eq!(all.first().map(|j| j.id), Some(old.id));
    assert!(all.iter().all(|j| j.owner_id == me), "only the owner's");

    // Pages of one: ties on updated_at continue by id.
    let first = s.jobs_updated_since(me, 2_500, None, 1).await.unwrap();
    assert_eq!(ids(first.clone()), [b.id]);
    let next = s
        .jobs_updated_since(me, first[0].updated_at, Some(first[0].id), 1)
        .await
        .unwrap();
    assert_eq!(ids(next.clone()), [c.id]);
    let last = s
        .jobs_updated_since(me, next[0].updated_at, Some(next[0].id), 1)
        .await
        .unwrap();
    assert_eq!(ids(last.clone()), [a.id]);
    assert_eq!(last[0].state, JobState::Running);
    assert!(
        s.jobs_updated_since(me, last[0].updated_at, Some(last[0].id), 1)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        s.running_counts().await.unwrap(),
        [RunningCount {
            queue: "debug".into(),
            worker: Some("w".into()),
            count: 1
        }]
    );
}

async fn queued_jobs_page_through_the_stale_ones_in_run_order(db: Db) {
    let (s, _d) = store(db).await;
    let me = s.create_user("me@x", Role::User).await.unwrap().id;
    let insert = async |run_at: i64, at: i64| s.insert_job(&noop(me, run_at), at).await.unwrap().0;
    let late = insert(9_000, 1_000).await;
    let (a, b) = (insert(2_000, 1_500).await, insert(2_000, 1_200).await);
    let first = insert(1_000, 1_800).await;
    insert(500, 5_000).await; // touched too recently
    let running = insert(100, 1_000).await;
    s.claim(running.id, "w", "t", 10_000, 4_000)
        .await
        .unwrap()
        .unwrap();
    let (a, b) = if a.id < b.id { (a, b) } else { (b, a) };

    let ids = |page: &[forklift_store::QueuedJob]| page.iter().map(|j| j.id).collect::<Vec<_>>();
    let all = s.queued_jobs_page(4_000, None, 10).await.unwrap();
    assert_eq!(
        ids(&all),
        [first.id, a.id, b.id, late.id],
        "run_at order, ties by id"
    );
    assert_eq!(
        all[0],
        forklift_store::QueuedJob {
            id: first.id,
            queue: "debug".into(),
            priority: 0,
            run_at: 1_000
        }
    );
    // Pages of two go on from the last row, ties included.
    let page = s.queued_jobs_page(4_000, None, 2).await.unwrap();
    assert_eq!(ids(&page), [first.id, a.id]);
    let next = s
        .queued_jobs_page(4_000, Some((page[1].run_at, page[1].id)), 2)
        .await
        .unwrap();
    assert_eq!(ids(&next), [b.id, late.id]);
    let end = s
        .queued_jobs_page(4_000, Some((next[1].run_at, next[1].id)), 2)
        .await
        .unwrap();
    assert!(end.is_empty());
}

async fn workers_are_upserted_listed_by_last_report_and_deleted(db: Db) {
    let (s, _d) = store(db).await;
    let mut one = WorkerRecord {
        name: "w1".into(),
        queues: vec!["debug".into(), "media".into()],
        slots: 6,
        started_at: 1_000,
        last_seen_at: 1_000,
    };
    s.upsert_worker(&one).await.unwrap();
    let two = WorkerRecord {
        name: "w2".into(),
        queues: vec!["video".into()],
        slots: 1,
        started_at: 1_000,
        last_seen_at: 5_000,
    };
    s.upsert_worker(&two).await.unwrap();
    assert_eq!(
        s.workers_seen_since(0).await.unwrap(),
        [one.clone(), two.clone()]
    );
    let lately = s.workers_seen_since(2_000).await.unwrap();
    assert_eq!(lately.len(), 1, "w1 not seen lately");
    assert_eq!(lately[0], two);

    // A report refreshes the row instead of adding one.
    one.last_seen_at = 6_000;
    one.slots = 8;
    s.upsert_worker(&one).await.unwrap();
    assert_eq!(
        s.workers_seen_since(2_000).await.unwrap(),
        [one.clone(), two.clone()]
    );

    assert!(s.delete_worker("w1").await.unwrap());
    assert!(!s.delete_worker("w1").await.unwrap(), "already gone");
    assert_eq!(s.workers_seen_since(0).await.unwrap(), [two]);
}

/// The reconciler's ticks: the first asker gets a tick and the lease; nobody gets the
/// same tick twice; another process gets ticks only once the lease ended or was
/// handed over.
async fn each_maintenance_tick_goes_to_one_holder_while_its_lease_lasts(db: Db) {
    let (s, _d) = store(db).await;
    assert_eq!(s.tick_holder("reconcile").await.unwrap(), None);
    // Tick 1000: a takes it (lease until 4000); b asking for the same tick gets nothing.
    assert!(
        s.take_tick("reconcile", "a", 1_000, 4_000, 1_000)
            .await
            .unwrap()
    );
    assert!(
        !s.take_tick("reconcile", "b", 1_000, 4_000, 1_000)
            .await
            .unwrap()
    );
    assert!(
        !s.take_tick("reconcile", "a", 1_000, 4_000, 1_000)
            .await
            .unwrap(),
        "a tick runs once"
    );
    // Tick 2000: b is first to ask, but a's lease lasts.
    assert!(
        !s.take_tick("reconcile", "b", 2_000, 5_000, 2_000)
            .await
            .unwrap()
    );
    assert!(
        s.take_tick("reconcile", "a", 2_000, 5_000, 2_000)
            .await
            .unwrap()
    );
    assert_eq!(
        s.tick_holder("reconcile").await.unwrap(),
        Some(("a".to_owned(), 5_000, 2_000))
    );
    // a dies: from its lease's end b gets the ticks, and a (back) no longer does.
    assert!(
        !s.take_tick("reconcile", "b", 3_000, 6_000, 4_999)
            .await
            .unwrap()
    );
    assert!(
        s.take_tick("reconcile", "b", 5_000, 8_000, 5_000)
            .await
            .unwrap()
    );
    assert!(
        !s.take_tick("reconcile", "a", 6_000, 9_000, 6_000)
            .await
            .unwrap()
    );
    // b stops and hands over: a gets the next tick at once.
    s.hand_over_ticks("b").await.unwrap();
    assert!(
        s.take_tick("reconcile", "a", 6_000, 9_000, 6_000)
            .await
            .unwrap()
    );
    // Tasks are independent.
    assert!(
        s.take_tick("other", "b", 6_000, 9_000, 6_000)
            .await
            .unwrap()
    );
}

/// 200 jobs submitted at once, then two workers racing for each: every insert lands
/// once, and every job is claimed exactly once.
async fn concurrent_inserts_and_claims_each_land_exactly_once(db: Db) {
    let (s, _d) = store(db).await;
    let owner = s.create_user("many@x", Role::User).await.unwrap().id;
    let now = now_ms();
    let inserts: Vec<_> = (0..200)
        .map(|i| {
            let s = s.clone();
            tokio::spawn(async move {
                let new = JobInsert {
                    params: serde_json::json!({ "i": i }),
                    idempotency_key: Some(format!("key-{i}")),
                    ..noop(owner, now)
                };
                let (job, created) = s.insert_job(&new, now).await.unwrap();
                assert!(created);
                assert_eq!(job.id, new.id);
                job.id
            })
        })
        .collect();
    let mut ids = Vec::new();
    for t in inserts {
        ids.push(t.await.unwrap());
    }

    let claims: Vec<_> = ids
        .iter()
        .flat_map(|&id| ["w1", "w2"].map(|w| (id, w)))
        .map(|(id, worker)| {
            let s = s.clone();
            tokio::spawn(async move {
                let token = format!("{worker}-{id}");
                let claim = s
                    .claim(id, worker, &token, now + 60_000, now)
                    .await
                    .unwrap();
                claim.map(|c| (c.job.id, c.job.attempt, c.job.worker))
            })
        })
        .collect();
    let mut won = Vec::new();
    for t in claims {
        won.extend(t.await.unwrap());
    }
    assert_eq!(won.len(), 200, "each job claimed by exactly one of the two");
    won.sort_by_key(|(id, ..)| *id);
    won.dedup_by_key(|(id, ..)| *id);
    assert_eq!(won.len(), 200, "no job claimed twice");
    assert!(won.iter().all(|(_, attempt, _)| *attempt == 1));

    let all = s
        .list_jobs(&JobQuery {
            owner: Some(owner),
            limit: 1000,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(all.len(), 200, "every insert landed once");
    assert!(
        all.iter()
            .all(|j| j.state == JobState::Running && j.attempt == 1)
    );
    let counts = s.count_jobs_by_state().await.unwrap();
    assert_eq!(counts, [(JobState::Running, 200)]);
}

/// Every answered write is visible to the very next read, from many tasks at once.
async fn a_read_right_after_a_write_sees_it(db: Db) {
    let (s, _d) = store(db).await;
    let owner = s.create_user("rw@x", Role::User).await.unwrap().id;
    let tasks: Vec<_> = (0..50)
        .map(|i| {
            let s = s.clone();
            tokio::spawn(async move {
                let now = now_ms();
                let new = JobInsert {
                    params: serde_json::json!({ "i": i }),
                    ..noop(owner, now)
                };
                let (job, _) = s.insert_job(&new, now).await.unwrap();
                let read = s.get_job(job.id).await.unwrap().expect("inserted job");
                assert_eq!((read.version, read.state), (job.version, JobState::Queued));
                assert_eq!((read.created_at, read.updated_at), (now, now));

                let token = format!("t-{i}");
                s.claim(job.id, "w", &token, now + 60_000, now)
                    .await
                    .unwrap()
                    .unwrap();
                assert_eq!(
                    s.get_job(job.id).await.unwrap().unwrap().state,
                    JobState::Running
                );

                s.set_progress(job.id, &token, 40, "half", now)
                    .await
                    .unwrap()
                    .unwrap();
                let read = s.get_job(job.id).await.unwrap().unwrap();
                assert_eq!(
                    (read.progress, read.progress_message.as_str()),
                    (40, "half")
                );

                let done = s
                    .succeed(job.id, &token, &[output("out")], now)
                    .await
                    .unwrap()
                    .unwrap();
                let read = s.get_job(job.id).await.unwrap().unwrap();
                assert_eq!(
                    (read.state, read.version),
                    (JobState::Succeeded, done.version)
                );
                let file = s.get_file(read.outputs[0].file_id).await.unwrap();
                assert_eq!(file.map(|f| f.source_job_id), Some(Some(job.id)));
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
}
