//! The job lifecycle over gRPC: validation, cancel, retry, backoff, idempotency, watch.

use crate::support::*;
use forklift_rpc::v1 as pb;
use tonic::Code;

#[tokio::test]
async fn bad_parameters_name_the_field_and_store_nothing() {
    let app = TestApp::start().await;
    let c = &app.client;
    let file = c.upload("a.jpg", &test_jpeg(10, 10, None)).await.unwrap();

    let mut params = thumbnail_params(&[(0, 0), (9000, 10)], pb::Fit::Cover, pb::ImageFormat::Jpeg);
    if let Some(pb::job_params::Kind::ImageThumbnail(p)) = &mut params.kind {
        p.quality = 500;
    }
    let err = c
        .submit(submit(params, &[&file.id, &file.id]))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    assert_eq!(
        violated_fields(&err),
        [
            "params.image_thumbnail.sizes[0]",
            "params.image_thumbnail.sizes[1].width",
            "params.image_thumbnail.quality",
            "input_file_ids"
        ]
    );

    let err = c.submit(pb::SubmitJobRequest::default()).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(violated_fields(&err), ["params"]);

    let ok_params = || thumbnail_params(&[(10, 10)], pb::Fit::Cover, pb::ImageFormat::Jpeg);
    let err = c
        .submit(submit(ok_params(), &["not-an-id"]))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(violated_fields(&err), ["input_file_ids[0]"]);

    let mut req = submit(ok_params(), &[&file.id]);
    req.priority = 1000;
    let err = c.submit(req).await.unwrap_err();
    assert_eq!(violated_fields(&err), ["priority"]);

    let missing = "0193c1b5-0000-7000-8000-000000000000";
    let err = c.submit(submit(ok_params(), &[missing])).await.unwrap_err();
    assert_eq!(err.code(), Code::NotFound, "{err:?}");
    assert!(err.message().contains(missing));

    let listed = c.list_jobs(pb::ListJobsRequest::default()).await.unwrap();
    assert!(listed.jobs.is_empty(), "no job row for rejected submits");
    app.stop().await;
}

#[tokio::test]
async fn unknown_ids_and_missing_tokens() {
    let app = TestApp::start().await;
    let err = app
        .client
        .get("0193c1b5-0000-7000-8000-000000000000")
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    let err = app.client.get("nope").await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);

    let anonymous = Client::connect(app.grpc_addr, None).await;
    let err = anonymous.get("nope").await.unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
    let wrong = Client::connect(app.grpc_addr, Some("fk_wrong")).await;
    let err = wrong.upload("x.txt", b"x").await.unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
    app.stop().await;
}

#[tokio::test]
async fn cancel_a_queued_and_a_running_job() {
    let app = TestApp::start().await;
    let c = &app.client;

    let mut later = submit(sleep_params(10), &[]);
    later.not_before = Some(prost_types::Timestamp {
        seconds: 4_000_000_000,
        nanos: 0,
    });
    let queued = c.submit(later).await.unwrap();
    let cancelled = c.cancel(&queued.id).await.unwrap();
    assert_eq!(cancelled.state(), pb::JobState::Cancelled);

    let long = c.submit(submit(sleep_params(120_000), &[])).await.unwrap();
    c.watch_until(&long.id, |j| j.state() == pb::JobState::Running)
        .await;
    let asked = c.cancel(&long.id).await.unwrap();
    assert!(asked.cancel_requested);
    let done = c.watch_to_end(&long.id).await.pop().unwrap();
    assert_eq!(done.state(), pb::JobState::Cancelled);
    assert!(done.outputs.is_empty());

    let err = c.cancel(&long.id).await.unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    app.stop().await;
}

#[tokio::test]
async fn blocking_work_stops_when_its_job_is_cancelled_and_frees_the_cpu_pool() {
    // One CPU thread: while a cancelled job's blocking work ran on, nothing else
    // could use the pool.
    let app = TestApp::start_with(&["--cpu-threads", "1"]).await;
    let c = &app.client;
    let long = c
        .submit(submit(blocking_sleep_params(300_000), &[]))
        .await
        .unwrap();
    c.watch_until(&long.id, |j| j.state() == pb::JobState::Running)
        .await;
    c.cancel(&long.id).await.unwrap();
    let end = c.watch_to_end(&long.id).await.pop().unwrap();
    assert_eq!(end.state(), pb::JobState::Cancelled);
    // The next blocking job gets the pool's one thread long before the first one's
    // five minutes are up.
    let next = c
        .submit(submit(blocking_sleep_params(10), &[]))
        .await
        .unwrap();
    let end = c.watch_to_end(&next.id).await.pop().unwrap();
    assert_eq!(end.state(), pb::JobState::Succeeded, "{end:?}");
    app.stop().await;
}

/// Milliseconds since the epoch of a job's timestamp.
fn ms(t: &Option<prost_types::Timestamp>) -> i64 {
    let t = t.as_ref().expect("a time");
    t.seconds * 1000 + i64::from(t.nanos) / 1_000_000
}

/// For each retry among a job's updates (`seen`, to its end): the backoff the record
/// set (`run_time - update_time`), and how long after the failure the next attempt
/// started.
fn retry_waits(seen: &[pb::Job]) -> Vec<(i64, i64)> {
    seen.iter()
        .filter(|j| j.state() == pb::JobState::Queued && !j.error.is_empty())
        .map(|r| {
            let next_start = seen
                .iter()
                .find(|j| j.state() == pb::JobState::Running && j.attempt == r.attempt + 1)
                .unwrap_or_else(|| panic!("attempt {} ran: {seen:#?}", r.attempt + 1));
            (
                ms(&r.run_time) - ms(&r.update_time),
                ms(&next_start.start_time) - ms(&r.update_time),
            )
        })
        .collect()
}

#[tokio::test]
async fn retryable_failures_back_off_then_succeed() {
    // The default base is 2 s: every bound below fails with it.
    let app = TestApp::start_with(&["--retry-base", "100ms"]).await;
    let c = &app.client;
    let job = c.submit(submit(flaky_params(2), &[])).await.unwrap();
    assert_eq!(job.max_attempts, 3);
    let seen = c.watch_to_end(&job.id).await;
    let done = seen.last().unwrap();
    assert_eq!(done.state(), pb::JobState::Succeeded, "{seen:#?}");
    assert_eq!(done.attempt, 3);

    let retries: Vec<_> = seen
        .iter()
        .filter(|j| j.state() == pb::JobState::Queued && !j.error.is_empty())
        .collect();
    assert_eq!(retries.len(), 2, "{seen:#?}");
    assert_eq!(retries[0].error, "planned failure 1 of 2");
    assert_eq!(retries[1].error, "planned failure 2 of 2");
    // Backoff: base 100ms doubling, times a jitter in [0.5, 1): [50, 100) then
    // [100, 200) ms.
    let waits = retry_waits(&seen);
    for ((backoff, waited), full) in waits.into_iter().zip([100, 200]) {
        assert!(
            (full / 2..full).contains(&backoff),
            "backoff {backoff}ms outside [{}, {full}) ms",
            full / 2
        );
        // The next attempt waited for the backoff, and not for anything like the
        // default base.
        assert!(
            waited >= backoff,
            "the next attempt started {waited}ms after the failure, before its backoff of {backoff}ms"
        );
        assert!(
            waited < 1_000,
            "the next attempt started {waited}ms after the failure (backoff {backoff}ms)"
        );
    }
    app.stop().await;
}

#[tokio::test]
async fn retry_delays_never_exceed_retry_max() {
    // Uncapped, the third delay would be 400ms times the jitter: at least 200ms.
    let app = TestApp::start_with(&["--retry-base", "100ms", "--retry-max", "150ms"]).await;
    let c = &app.client;
    let mut req = submit(flaky_params(3), &[]);
    req.max_attempts = 4;
    let job = c.submit(req).await.unwrap();
    let seen = c.watch_to_end(&job.id).await;
    let done = seen.last().unwrap();
    assert_eq!(done.state(), pb::JobState::Succeeded, "{seen:#?}");
    assert_eq!(done.attempt, 4);
    let backoffs: Vec<i64> = retry_waits(&seen).into_iter().map(|(b, _)| b).collect();
    assert_eq!(backoffs.len(), 3, "{seen:#?}");
    // 100ms, then 200ms and 400ms capped at 150ms; each times a jitter in [0.5, 1).
    for (backoff, full) in backoffs.iter().zip([100, 150, 150]) {
        assert!(
            (full / 2..full).contains(backoff),
            "backoff {backoff}ms outside [{}, {full}) ms: {backoffs:?}",
            full / 2
        );
    }
    app.stop().await;
}

#[tokio::test]
async fn exhausted_attempts_fail_and_a_manual_retry_runs_again() {
    let app = TestApp::start().await;
    let c = &app.client;
    let mut req = submit(flaky_params(1), &[]);
    req.max_attempts = 1;
    let job = c.submit(req).await.unwrap();
    let failed = c.watch_to_end(&job.id).await.pop().unwrap();
    assert_eq!(failed.state(), pb::JobState::Failed);
    assert_eq!(
        failed.error,
        "planned failure 1 of 1 (gave up after 1 attempts)"
    );

    let retried = c.retry(&job.id).await.unwrap();
    assert_eq!(retried.state(), pb::JobState::Queued);
    assert_eq!(retried.attempt, 0);
    assert!(retried.error.is_empty());
    let again = c.watch_to_end(&job.id).await.pop().unwrap();
    assert_eq!(
        again.state(),
        pb::JobState::Failed,
        "ran again, failing the same way"
    );
    assert!(again.version > failed.version);

    let ok = c.submit(submit(flaky_params(0), &[])).await.unwrap();
    c.watch_to_end(&ok.id).await;
    let err = c.retry(&ok.id).await.unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    app.stop().await;
}

#[tokio::test]
async fn the_same_idempotency_key_gives_the_same_job() {
    let app = TestApp::start().await;
    let c = &app.client;
    let mut req = submit(sleep_params(1), &[]);
    req.idempotency_key = "order-42".into();
    let a = c.submit(req.clone()).await.unwrap();
    let b = c.submit(req.clone()).await.unwrap();
    assert_eq!(a.id, b.id);
    req.params = Some(sleep_params(2));
    let err = c.submit(req).await.unwrap_err();
    assert_eq!(err.code(), Code::AlreadyExists);
    let listed = c.list_jobs(pb::ListJobsRequest::default()).await.unwrap();
    assert_eq!(listed.jobs.len(), 1);
    app.stop().await;
}

#[tokio::test]
async fn a_watch_opened_after_the_end_gets_the_final_state() {
    let app = TestApp::start().await;
    let c = &app.client;
    let job = c.submit(submit(flaky_params(0), &[])).await.unwrap();
    let done = c.watch_to_end(&job.id).await.pop().unwrap();
    let late = c.watch_to_end(&job.id).await;
    assert_eq!(late.len(), 1, "one message, then the stream ends");
    assert_eq!(late[0].state(), pb::JobState::Succeeded);
    assert_eq!(late[0].version, done.version);
    app.stop().await;
}

#[tokio::test]
async fn disabled_kinds_are_refused_naming_the_setting() {
    let app = TestApp::start_with(&["--debug-kinds", "false"]).await;
    let err = app
        .client
        .submit(submit(sleep_params(1), &[]))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert!(
        err.message().contains("FORKLIFT_DEBUG_KINDS"),
        "{}",
        err.message()
    );
    app.stop().await;
}

#[tokio::test]
async fn with_the_only_slot_busy_a_later_higher_priority_job_starts_first() {
    let app = TestApp::start_with(&["--queues", "debug=1"]).await;
    let c = &app.client;
    let busy = c.submit(submit(sleep_params(600_000), &[])).await.unwrap();
    c.watch_until(&busy.id, |j| j.state() == pb::JobState::Running)
        .await;
    // Both wait for the one slot: first the low one, then the high one.
    let with_priority = |priority| {
        let mut req = submit(sleep_params(10), &[]);
        req.priority = priority;
        req
    };
    let low = c.submit(with_priority(-5)).await.unwrap();
    let high = c.submit(with_priority(5)).await.unwrap();
    assert_eq!(c.get(&low.id).await.unwrap().state(), pb::JobState::Queued);
    assert_eq!(c.get(&high.id).await.unwrap().state(), pb::JobState::Queued);
    c.cancel(&busy.id).await.unwrap();
    let low = c.watch_to_end(&low.id).await.pop().unwrap();
    let high = c.watch_to_end(&high.id).await.pop().unwrap();
    for j in [&low, &high] {
        assert_eq!(j.state(), pb::JobState::Succeeded, "{j:#?}");
        assert_eq!(j.attempt, 1, "{j:#?}");
    }
    assert!(
        ms(&high.end_time) <= ms(&low.start_time),
        "the later, higher-priority job ran first: high {:?}..{:?}, low from {:?}",
        high.start_time,
        high.end_time,
        low.start_time
    );
    app.stop().await;
}

#[tokio::test]
async fn list_pages_and_filters() {
    let app = TestApp::start().await;
    let c = &app.client;
    let mut ids = Vec::new();
    for _ in 0..5 {
        let j = c.submit(submit(flaky_params(0), &[])).await.unwrap();
        c.watch_to_end(&j.id).await;
        ids.push(j.id);
    }
    let mut got = Vec::new();
    let mut token = String::new();
    loop {
        let page = c
            .list_jobs(pb::ListJobsRequest {
                page_size: 2,
                page_token: token,
                ..Default::default()
            })
            .await
            .unwrap();
        assert!(page.jobs.len() <= 2);
        got.extend(page.jobs.into_iter().map(|j| j.id));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    ids.reverse();
    assert_eq!(got, ids, "newest first, every job once");
    let failed_only = c
        .list_jobs(pb::ListJobsRequest {
            states: vec![pb::JobState::Failed as i32],
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(failed_only.jobs.is_empty());
    let err = c
        .list_jobs(pb::ListJobsRequest {
            page_size: -1,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&err), ["page_size"]);
    app.stop().await;
}

#[tokio::test]
async fn service_credentials_act_for_the_named_user_only() {
    let app = TestApp::start_with(&["--service-token", "s3cret-service-token"]).await;
    let owner = app
        .client
        .submit(submit(flaky_params(0), &[]))
        .await
        .unwrap();
    let (user, _) = forklift_accounts::create_user_with_token(
        &app.accounts,
        "svc@example.com",
        forklift_domain::Role::User,
        "t",
    )
    .await
    .unwrap();
    let service = |token: &str, user: String| {
        vec![
            ("x-forklift-service-token", token.to_owned()),
            ("x-forklift-user", user),
        ]
    };
    let as_user = Client::connect_with(
        app.grpc_addr,
        &service("s3cret-service-token", user.to_string()),
    )
    .await;
    let job = as_user.submit(submit(flaky_params(0), &[])).await.unwrap();
    assert_eq!(as_user.get(&job.id).await.unwrap().id, job.id);
    assert_eq!(
        as_user.get(&owner.id).await.unwrap_err().code(),
        Code::NotFound,
        "only that user's jobs"
    );

    let wrong = Client::connect_with(app.grpc_addr, &service("guess", user.to_string())).await;
    assert_eq!(
        wrong.get(&job.id).await.unwrap_err().code(),
        Code::Unauthenticated
    );
    let nobody = Client::connect_with(
        app.grpc_addr,
        &service("s3cret-service-token", "not-a-user".into()),
    )
    .await;
    assert_eq!(
        nobody.get(&job.id).await.unwrap_err().code(),
        Code::Unauthenticated
    );
    // A user id without the service secret is ignored: no credentials at all.
    let forged =
        Client::connect_with(app.grpc_addr, &[("x-forklift-user", user.to_string())]).await;
    assert_eq!(
        forged.get(&job.id).await.unwrap_err().code(),
        Code::Unauthenticated
    );
    let forged = Client::connect_with(
        app.grpc_addr,
        &[
            ("x-forklift-user", user.to_string()),
            ("x-forklift-role", "admin".to_owned()),
        ],
    )
    .await;
    assert_eq!(
        forged.get(&owner.id).await.unwrap_err().code(),
        Code::Unauthenticated,
        "nor is a role"
    );

    // With the secret, the caller may say the role it has checked (the web app does,
    // so the service need not look the account up again): an admin sees every job,
    // a user only theirs, and a role that is neither is refused.
    let with_role = |role: &str| {
        let mut md = service("s3cret-service-token", user.to_string());
        md.push(("x-forklift-role", role.to_owned()));
        md
    };
    let as_admin = Client::connect_with(app.grpc_addr, &with_role("admin")).await;
    assert_eq!(as_admin.get(&owner.id).await.unwrap().id, owner.id);
    let as_plain = Client::connect_with(app.grpc_addr, &with_role("user")).await;
    assert_eq!(
        as_plain.get(&owner.id).await.unwrap_err().code(),
        Code::NotFound
    );
    assert_eq!(as_plain.get(&job.id).await.unwrap().id, job.id);
    let odd = Client::connect_with(app.grpc_addr, &with_role("root")).await;
    assert_eq!(
        odd.get(&job.id).await.unwrap_err().code(),
        Code::Unauthenticated
    );
    app.stop().await;
}
