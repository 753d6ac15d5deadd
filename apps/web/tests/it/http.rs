//! The HTTP face: health and readiness.

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
        Mode::Unified => assert_eq!(backend, forklift_store::Backend::Sqlite),
        Mode::Extracted => assert_eq!(backend, forklift_store::Backend::Postgres),
    }
    app.stop().await;
}
