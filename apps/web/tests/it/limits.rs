//! What one careless or hostile client can send: requests built to be expensive are
//! refused or made cheap, never allowed to fail the service.

use crate::support::*;
use forklift_rpc::v1 as pb;

#[tokio::test]
async fn a_state_filter_repeated_seventy_thousand_times_is_one_filter() {
    let app = TestApp::start().await;
    let c = &app.client;
    let job = c.submit(submit(sleep_params(10), &[])).await.unwrap();
    c.watch_to_end(&job.id).await;
    // More than either database takes as bound values in one query (PostgreSQL 65,535,
    // SQLite 32,766): answered only because repeats are dropped first.
    let listed = c
        .list_jobs(pb::ListJobsRequest {
            states: vec![pb::JobState::Succeeded as i32; 70_000],
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(listed.jobs.len(), 1);
    assert_eq!(listed.jobs[0].id, job.id);
    app.stop().await;
}
