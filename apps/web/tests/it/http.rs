//! The HTTP face: health, readiness and metrics.

use crate::support::*;

#[tokio::test]
async fn health_and_readiness_answer() {
    let app = TestApp::start().await;
    let (status, body) = http_get(app.http_addr, "/healthz").await;
    assert_eq!((status, body.as_str()), (200, "ok\n"));
    let (status, body) = http_get(app.http_addr, "/readyz").await;
    assert_eq!((status, body.as_str()), (200, "ready\n"));
    let (status, _) = http_get(app.http_addr, "/nope").await;
    assert_eq!(status, 404);
    let (status, body) = http_get(app.http_addr, "/metrics").await;
    assert_eq!(status, 200);
    assert!(
        body.contains(r#"forklift_request_duration_seconds_count{surface="http",route="/healthz",status="200"} 1"#),
        "request metrics: {body}"
    );
    // The suite really runs the topology it says it does.
    let backend = app.store.backend();
    match mode() {
        Mode::Unified => assert_eq!(backend, forklift_db::Backend::Sqlite),
        Mode::Extracted => assert_eq!(backend, forklift_db::Backend::Postgres),
    }
    app.stop().await;
}

/// A job that waits in its queue for a century.
fn far_future(params: forklift_rpc::v1::JobParams) -> forklift_rpc::v1::SubmitJobRequest {
    let mut req = submit(params, &[]);
    req.not_before = Some(prost_types::Timestamp {
        seconds: 4_000_000_000,
        nanos: 0,
    });
    req
}

/// Leaves one job in each state, all in the `debug` queue: one succeeded, one failed,
/// one cancelled, one running and one queued (waiting in the transport). Returns the
/// running one, to be cancelled before shutdown.
async fn one_job_in_each_state(c: &Client) -> String {
    use forklift_rpc::v1::JobState;
    let ok = c.submit(submit(flaky_params(0), &[])).await.unwrap();
    let mut once = submit(flaky_params(1), &[]);
    once.max_attempts = 1;
    let failed = c.submit(once).await.unwrap();
    let cancelled = c.submit(submit(sleep_params(600_000), &[])).await.unwrap();
    c.watch_until(&cancelled.id, |j| j.state() == JobState::Running)
        .await;
    c.cancel(&cancelled.id).await.unwrap();
    for (id, state) in [
        (&ok.id, JobState::Succeeded),
        (&failed.id, JobState::Failed),
        (&cancelled.id, JobState::Cancelled),
    ] {
        assert_eq!(c.watch_to_end(id).await.pop().unwrap().state(), state);
    }
    let running = c.submit(submit(sleep_params(600_000), &[])).await.unwrap();
    c.watch_until(&running.id, |j| j.state() == JobState::Running)
        .await;
    c.submit(far_future(sleep_params(1))).await.unwrap();
    running.id
}

/// The value of the series `name{labels}` in a Prometheus text page.
fn series(page: &str, name_and_labels: &str) -> Option<f64> {
    page.lines()
        .find_map(|l| l.strip_prefix(name_and_labels)?.strip_prefix(' '))
        .map(|v| v.trim().parse().unwrap())
}

/// Checks the jobs-by-state and queue-depth gauges after [`one_job_in_each_state`].
fn assert_one_job_in_each_state(page: &str) {
    for state in ["queued", "running", "succeeded", "failed", "cancelled"] {
        assert_eq!(
            series(page, &format!("forklift_jobs{{state=\"{state}\"}}")),
            Some(1.0),
            "jobs {state}: {page}"
        );
    }
    assert_eq!(
        series(page, r#"forklift_queue_depth{queue="debug"}"#),
        Some(1.0),
        "the queued job waits in the debug queue: {page}"
    );
    for queue in ["media", "data", "video"] {
        assert_eq!(
            series(page, &format!("forklift_queue_depth{{queue=\"{queue}\"}}")),
            Some(0.0),
            "{page}"
        );
    }
}

#[tokio::test]
async fn the_web_apps_metrics_count_its_requests_and_unified_its_jobs_and_queues() {
    let app = TestApp::start().await;
    let running = one_job_in_each_state(&app.client).await;
    for path in ["/healthz", "/healthz", "/signin"] {
        assert_eq!(http_get(app.http_addr, path).await.0, 200, "{path}");
    }
    let (status, page) = http_get(app.http_addr, "/metrics").await;
    assert_eq!(status, 200);
    // The web app's requests, counted by route, in both modes.
    let requests = |route: &str, status: u16| {
        series(
            &page,
            &format!(
                "forklift_request_duration_seconds_count{{surface=\"http\",route=\"{route}\",status=\"{status}\"}}"
            ),
        )
    };
    assert_eq!(requests("/healthz", 200), Some(2.0), "{page}");
    assert_eq!(requests("/signin", 200), Some(1.0), "{page}");
    match mode() {
        // One process: its /metrics also counts the jobs, their queues and the gRPC
        // calls this test made.
        Mode::Unified => {
            assert_one_job_in_each_state(&page);
            assert_eq!(
                series(
                    &page,
                    r#"forklift_request_duration_seconds_count{surface="grpc",route="/forklift.v1.Jobs/SubmitJob",status="0"}"#
                ),
                Some(5.0),
                "{page}"
            );
        }
        // The web app runs no jobs and reads no job table: the jobs service exports
        // those (see the test below).
        Mode::Extracted => {
            for absent in [
                "forklift_jobs{",
                "forklift_queue_depth{",
                "surface=\"grpc\"",
            ] {
                assert!(
                    !page.contains(absent),
                    "{absent} in the web app's metrics: {page}"
                );
            }
        }
    }
    app.client.cancel(&running).await.unwrap();
    app.client.watch_to_end(&running).await;
    app.stop().await;
}

#[tokio::test]
async fn the_jobs_service_exports_jobs_by_state_and_queue_depth() {
    let dir = tempfile::tempdir().unwrap();
    let flags = test_flags(dir.path());
    let mut jobs = start_jobs_with_env("both", &flags, &[]).await;
    let (_, token) = create_admin(&flags, "admin@localhost").await;
    let c = Client::connect(jobs.addr("gRPC:"), Some(&token)).await;
    let running = one_job_in_each_state(&c).await;
    // Methods the server does not have are counted under one label, however many names
    // a client makes up.
    let channel = tonic::transport::Channel::from_shared(format!("http://{}", jobs.addr("gRPC:")))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut grpc = tonic::client::Grpc::new(channel);
    for i in 0..3 {
        grpc.ready().await.unwrap();
        let path = format!("/forklift.v1.Jobs/MadeUp{i}").parse().unwrap();
        let err = grpc
            .unary::<(), (), _>(
                tonic::Request::new(()),
                path,
                tonic_prost::ProstCodec::default(),
            )
            .await
            .unwrap_err();
        assert_eq!(err.code(), tonic::Code::Unimplemented);
    }
    let (status, page) = http_get(jobs.addr("HTTP:"), "/metrics").await;
    assert_eq!(status, 200);
    assert_one_job_in_each_state(&page);
    assert!(!page.contains("MadeUp"), "{page}");
    assert_eq!(
        series(
            &page,
            r#"forklift_request_duration_seconds_count{surface="grpc",route="unknown",status="12"}"#
        ),
        Some(3.0),
        "{page}"
    );
    assert!(
        page.contains(r#"route="/forklift.v1.Jobs/SubmitJob""#),
        "known methods keep their names: {page}"
    );
    c.cancel(&running).await.unwrap();
    c.watch_to_end(&running).await;
    assert!(jobs.terminate().await.success());
}
