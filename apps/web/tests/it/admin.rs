//! Admins: every user's jobs, the Admin overview; and WatchJobs, the stream of all of
//! a user's job changes.

use crate::support::*;
use forklift_rpc::v1 as pb;
use futures::StreamExt;
use tonic::Code;

type JobStream = tonic::Streaming<pb::Job>;

/// A job that waits in its queue for a century.
fn far_future(params: pb::JobParams) -> pb::SubmitJobRequest {
    let mut req = submit(params, &[]);
    req.not_before = Some(prost_types::Timestamp {
        seconds: 4_000_000_000,
        nanos: 0,
    });
    req
}

async fn list_all(c: &Client) -> Result<Vec<pb::Job>, tonic::Status> {
    let req = pb::ListJobsRequest {
        all_users: true,
        page_size: 1000,
        ..Default::default()
    };
    c.list_jobs(req).await.map(|r| r.jobs)
}

async fn watch_jobs(c: &Client, since: Option<prost_types::Timestamp>) -> JobStream {
    c.jobs
        .clone()
        .watch_jobs(pb::WatchJobsRequest { since })
        .await
        .expect("WatchJobs")
        .into_inner()
}

/// Items of a WatchJobs stream until one matches `done` (included), within the deadline.
async fn read_until(s: &mut JobStream, done: impl Fn(&pb::Job) -> bool) -> Vec<pb::Job> {
    let mut seen = Vec::new();
    tokio::time::timeout(DEADLINE, async {
        while let Some(j) = s.next().await {
            let j = j.expect("WatchJobs item");
            let stop = done(&j);
            seen.push(j);
            if stop {
                return;
            }
        }
        panic!("WatchJobs ended; it never should on its own");
    })
    .await
    .unwrap_or_else(|_| panic!("WatchJobs did not get there in time; saw {seen:#?}"));
    seen
}

fn ms(t: &Option<prost_types::Timestamp>) -> i64 {
    let t = t.as_ref().expect("a time");
    t.seconds * 1000 + i64::from(t.nanos) / 1_000_000
}

#[tokio::test]
async fn admins_list_every_users_jobs_and_nobody_else_may() {
    let app = TestApp::start().await;
    let alice = app.new_user("alice@example.com").await;
    let bob = app.new_user("bob@example.com").await;
    let a = alice.submit(far_future(sleep_params(1))).await.unwrap();
    let b = bob.submit(far_future(sleep_params(1))).await.unwrap();
    assert!(!a.owner_id.is_empty() && a.owner_id != b.owner_id);

    let all = list_all(&app.client).await.unwrap();
    for mine in [&a, &b] {
        let listed = all.iter().find(|j| j.id == mine.id).expect("listed");
        assert_eq!(listed.owner_id, mine.owner_id, "whose job it is");
    }
    let own = app
        .client
        .list_jobs(pb::ListJobsRequest::default())
        .await
        .unwrap();
    assert!(
        own.jobs.is_empty(),
        "without all_users, only the admin's own"
    );

    let err = list_all(&alice).await.unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");
    assert!(err.message().contains("admin"), "{}", err.message());
    let mine = alice
        .list_jobs(pb::ListJobsRequest::default())
        .await
        .unwrap();
    assert_eq!(mine.jobs.iter().map(|j| &j.id).collect::<Vec<_>>(), [&a.id]);
    app.stop().await;
}

#[tokio::test]
async fn other_users_jobs_are_not_found_except_for_admins() {
    let app = TestApp::start().await;
    let admin = &app.client;
    let alice = app.new_user("alice@example.com").await;
    let bob = app.new_user("bob@example.com").await;
    let mut req = submit(flaky_params(1), &[]);
    req.max_attempts = 1;
    let job = alice.submit(req).await.unwrap();
    let failed = alice.watch_to_end(&job.id).await.pop().unwrap();
    assert_eq!(failed.state(), pb::JobState::Failed);

    for err in [
        bob.get(&job.id).await.unwrap_err(),
        bob.cancel(&job.id).await.unwrap_err(),
        bob.retry(&job.id).await.unwrap_err(),
        bob.jobs
            .clone()
            .watch_job(pb::WatchJobRequest { id: job.id.clone() })
            .await
            .unwrap_err(),
    ] {
        assert_eq!(err.code(), Code::NotFound, "{err:?}");
    }
    assert_eq!(
        bob.get(&job.id).await.unwrap_err().code(),
        Code::NotFound,
        "bob's failed retry changed nothing"
    );

    let seen = admin.get(&job.id).await.unwrap();
    assert_eq!(
        (seen.owner_id.as_str(), seen.version),
        (job.owner_id.as_str(), failed.version)
    );
    let retried = admin.retry(&job.id).await.unwrap();
    assert_eq!(retried.state(), pb::JobState::Queued);
    let again = admin.watch_to_end(&job.id).await.pop().unwrap();
    assert_eq!(again.state(), pb::JobState::Failed, "ran again");
    assert!(again.version > failed.version);
    assert_eq!(alice.get(&job.id).await.unwrap().version, again.version);

    let waiting = alice.submit(far_future(sleep_params(1))).await.unwrap();
    assert_eq!(
        bob.cancel(&waiting.id).await.unwrap_err().code(),
        Code::NotFound
    );
    let cancelled = admin.cancel(&waiting.id).await.unwrap();
    assert_eq!(cancelled.state(), pb::JobState::Cancelled);

    // Files stay their owner's alone.
    let file = alice.upload("a.txt", b"hello").await.unwrap();
    assert_eq!(
        admin.get_file(&file.id).await.unwrap_err().code(),
        Code::NotFound
    );
    app.stop().await;
}

#[tokio::test]
async fn watch_jobs_streams_the_callers_changes_and_resumes_from_since() {
    let app = TestApp::start().await;
    let alice = app.new_user("alice@example.com").await;
    let bob = app.new_user("bob@example.com").await;
    let waiting = alice.submit(far_future(sleep_params(1))).await.unwrap();

    // Without `since`: the unfinished jobs first.
    let mut stream = watch_jobs(&alice, None).await;
    let first = read_until(&mut stream, |_| true).await;
    assert_eq!(first[0].id, waiting.id);
    assert_eq!(first[0].state(), pb::JobState::Queued);

    // Bob's job runs to the end while Alice watches; then Alice's.
    let theirs = bob.submit(submit(flaky_params(0), &[])).await.unwrap();
    bob.watch_to_end(&theirs.id).await;
    let job = alice.submit(submit(flaky_params(0), &[])).await.unwrap();
    let seen = read_until(&mut stream, |j| {
        j.id == job.id && j.state() == pb::JobState::Succeeded
    })
    .await;
    assert!(
        seen.iter()
            .all(|j| j.id != theirs.id && j.owner_id == job.owner_id),
        "only Alice's jobs: {seen:#?}"
    );
    let updates: Vec<_> = seen.iter().filter(|j| j.id == job.id).collect();
    assert!(
        updates.windows(2).all(|w| w[0].version < w[1].version),
        "every version once, in order: {updates:#?}"
    );
    assert!(
        updates.iter().any(|j| j.state() != pb::JobState::Succeeded),
        "the changes before the end too: {updates:#?}"
    );
    let done = updates.last().unwrap();
    assert!(!done.outputs.is_empty());

    // A client reconnecting with the update time of an earlier item gets the job's
    // final state in the snapshot.
    drop(stream);
    let mut again = watch_jobs(&alice, updates[0].update_time).await;
    let snapshot = read_until(&mut again, |_| true).await;
    assert_eq!(snapshot[0].id, job.id);
    assert_eq!(snapshot[0].state(), pb::JobState::Succeeded);
    assert_eq!(snapshot[0].version, done.version);
    assert!(ms(&snapshot[0].update_time) >= ms(&updates[0].update_time));
    drop(again);
    app.stop().await;
}

#[tokio::test]
async fn the_overview_shows_queues_states_and_live_workers_to_admins_only() {
    let app = TestApp::start().await;
    let admin = &app.client;
    // Once a job ran, the worker that ran it has reported itself.
    let ran = admin.submit(submit(flaky_params(0), &[])).await.unwrap();
    admin.watch_to_end(&ran.id).await;
    admin.submit(far_future(sleep_params(1))).await.unwrap();
    let long = admin
        .submit(submit(sleep_params(120_000), &[]))
        .await
        .unwrap();
    admin
        .watch_until(&long.id, |j| j.state() == pb::JobState::Running)
        .await;

    let o = admin
        .admin
        .clone()
        .get_overview(pb::GetOverviewRequest {})
        .await
        .unwrap()
        .into_inner();
    let queue = |name: &str| {
        o.queues
            .iter()
            .find(|q| q.name == name)
            .unwrap_or_else(|| panic!("queue {name} in {:#?}", o.queues))
    };
    queue("media");
    let debug = queue("debug");
    assert!(debug.ready >= 1, "the far-future job waits: {debug:?}");
    assert_eq!(debug.running, 1, "{debug:?}");

    let count = |state: pb::JobState| {
        o.jobs_by_state
            .iter()
            .find(|s| s.state() == state)
            .map(|s| s.count)
    };
    assert_eq!(
        o.jobs_by_state.len(),
        5,
        "every state: {:#?}",
        o.jobs_by_state
    );
    assert_eq!(count(pb::JobState::Succeeded), Some(1));
    assert_eq!(count(pb::JobState::Running), Some(1));
    assert_eq!(count(pb::JobState::Queued), Some(1));
    assert_eq!(count(pb::JobState::Failed), Some(0));

    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let worker = o
        .workers
        .iter()
        .find(|w| w.queues.iter().any(|q| q == "debug"))
        .unwrap_or_else(|| panic!("a worker of the debug queue in {:#?}", o.workers));
    let seen = ms(&worker.last_seen_time);
    assert!((now - seen).abs() < 60_000, "seen recently: {worker:?}");
    assert!(ms(&worker.start_time) <= seen, "{worker:?}");
    assert!(worker.slots >= 1 && worker.running_jobs == 1, "{worker:?}");

    let alice = app.new_user("alice@example.com").await;
    let err = alice
        .admin
        .clone()
        .get_overview(pb::GetOverviewRequest {})
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");

    admin.cancel(&long.id).await.unwrap();
    admin.watch_to_end(&long.id).await;
    app.stop().await;
}
