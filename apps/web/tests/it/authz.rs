//! The authorization matrix: for every page, API route, download, event stream and
//! gRPC call, another user gets 404 for a user's resources, a non-admin gets 403 for
//! the admin console, and anonymous callers get a redirect to sign-in (pages) or 401
//! (API, gRPC UNAUTHENTICATED). Nothing they try changes anything.

use crate::support::{Client, TestApp, test_jpeg};
use crate::web::Web;
use forklift_rpc::v1 as pb;
use reqwest::{Method, StatusCode};
use serde_json::json;

#[tokio::test]
async fn other_users_get_404_non_admins_403_and_anonymous_callers_sign_in_or_401() {
    let app = TestApp::start().await;
    let ann = Web::new(app.http_addr);
    ann.signup("ann@example.com", "ann's long password").await;
    let ann_token = ann.create_token("ann").await;
    let file = ann.upload("ann.jpg", test_jpeg(120, 80, None)).await;
    let job = ann.start_thumbnail(&file, "60").await;
    let events = ann
        .events_until_final(&format!("/jobs/{job}/events"), None)
        .await;
    assert_eq!(events.last().unwrap()["state"], "succeeded");
    let ann_grpc = Client::connect(app.grpc_addr, Some(&ann_token)).await;
    let output = ann_grpc.get(&job).await.unwrap().outputs[0].file_id.clone();
    let ann_user = app
        .accounts
        .credentials("ann@example.com")
        .await
        .unwrap()
        .unwrap()
        .0;
    let ann_token_id = app.accounts.list_api_tokens(ann_user.id).await.unwrap()[0]
        .id
        .clone();

    let bob = Web::new(app.http_addr);
    bob.signup("bob@example.com", "bob's long password").await;
    let bob_token = bob.create_token("bob").await;
    let bob_grpc = Client::connect(app.grpc_addr, Some(&bob_token)).await;

    let gets = [
        format!("/files/{file}"),
        format!("/files/{file}/download"),
        format!("/files/{file}/raw"),
        format!("/files/{output}/download"),
        format!("/jobs/{job}"),
        format!("/jobs/{job}/events"),
        format!("/jobs/{job}/report"),
    ];
    let posts = [
        format!("/files/{file}/delete"),
        format!("/files/{file}/jobs"),
        format!("/jobs/{job}/cancel"),
        format!("/jobs/{job}/retry"),
        format!("/tokens/{ann_token_id}/revoke"),
    ];
    let api = [
        (Method::GET, format!("/api/v1/files/{file}")),
        (Method::GET, format!("/api/v1/files/{file}/content")),
        (Method::GET, format!("/api/v1/files/{output}/content")),
        (Method::DELETE, format!("/api/v1/files/{file}")),
        (Method::GET, format!("/api/v1/jobs/{job}")),
        (Method::POST, format!("/api/v1/jobs/{job}/cancel")),
        (Method::POST, format!("/api/v1/jobs/{job}/retry")),
        (Method::GET, format!("/api/v1/jobs/{job}/events")),
    ];

    // Another user: 404 everywhere, as if the things did not exist.
    for p in &gets {
        assert_eq!(
            bob.get(p).await.status(),
            StatusCode::NOT_FOUND,
            "bob GET {p}"
        );
    }
    for p in &posts {
        let r = bob
            .post(
                "/dashboard",
                p,
                &[("kind", "image.thumbnail"), ("width", "10")],
            )
            .await;
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "bob POST {p}");
    }
    for (m, p) in &api {
        let r = bob
            .http
            .request(m.clone(), bob.url(p))
            .bearer_auth(&bob_token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "bob {m} {p}");
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(body["error"]["code"], "not_found", "bob {m} {p}");
    }
    let r = bob
        .http
        .post(bob.url("/api/v1/jobs"))
        .bearer_auth(&bob_token)
        .json(&json!({"kind": "image.thumbnail", "params": {"sizes": [{"width": 10}]}, "input_file_ids": [file]}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::NOT_FOUND,
        "bob cannot use ann's file as input"
    );
    for listing in ["/api/v1/files", "/api/v1/jobs"] {
        let body = bob
            .http
            .get(bob.url(listing))
            .bearer_auth(&bob_token)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            !body.contains(&file) && !body.contains(&job),
            "{listing}: {body}"
        );
    }
    for page in ["/dashboard", "/files", "/jobs"] {
        let body = bob.text(page).await;
        assert!(
            !body.contains(&file) && !body.contains(&job) && !body.contains("ann.jpg"),
            "{page}"
        );
    }
    // The same over gRPC with bob's token.
    fn nf<T>(r: Result<T, tonic::Status>, what: &str) {
        match r {
            Ok(_) => panic!("bob gRPC {what}: allowed"),
            Err(e) => assert_eq!(e.code(), tonic::Code::NotFound, "bob gRPC {what}"),
        }
    }
    nf(bob_grpc.get_file(&file).await, "GetFile");
    nf(bob_grpc.download(&file).await, "DownloadFile");
    nf(bob_grpc.download(&output).await, "DownloadFile (output)");
    nf(bob_grpc.delete_file(&file).await, "DeleteFile");
    nf(bob_grpc.get(&job).await, "GetJob");
    nf(bob_grpc.cancel(&job).await, "CancelJob");
    nf(bob_grpc.retry(&job).await, "RetryJob");
    nf(
        bob_grpc
            .jobs
            .clone()
            .watch_job(pb::WatchJobRequest { id: job.clone() })
            .await,
        "WatchJob",
    );
    nf(
        bob_grpc
            .submit(pb::SubmitJobRequest {
                params: Some(pb::JobParams {
                    kind: Some(pb::job_params::Kind::ImageThumbnail(
                        pb::ImageThumbnailParams {
                            sizes: vec![pb::ThumbnailSize {
                                width: 10,
                                height: 0,
                            }],
                            ..Default::default()
                        },
                    )),
                }),
                input_file_ids: vec![file.clone()],
                ..Default::default()
            })
            .await,
        "SubmitJob with ann's file",
    );

    // A non-admin: the admin console is forbidden.
    assert_eq!(bob.get("/admin").await.status(), StatusCode::FORBIDDEN);
    let r = bob
        .post("/dashboard", &format!("/admin/jobs/{job}/retry"), &[])
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);

    // Anonymous: pages send to sign-in (and back), the API answers 401, gRPC UNAUTHENTICATED.
    let anon = Web::new(app.http_addr);
    for p in gets.iter().chain(
        [
            "/dashboard".to_owned(),
            "/files".to_owned(),
            "/jobs".to_owned(),
            "/tokens".to_owned(),
            "/admin".to_owned(),
            "/events".to_owned(),
        ]
        .iter(),
    ) {
        let r = anon.get(p).await;
        assert_eq!(r.status(), StatusCode::SEE_OTHER, "anonymous GET {p}");
        let to = r.headers()["location"].to_str().unwrap();
        assert_eq!(to, format!("/signin?next={p}"), "anonymous GET {p}");
    }
    for p in &posts {
        let r = anon.post("/signin", p, &[]).await;
        assert_eq!(r.status(), StatusCode::SEE_OTHER, "anonymous POST {p}");
        assert!(
            r.headers()["location"]
                .to_str()
                .unwrap()
                .starts_with("/signin")
        );
    }
    for (m, p) in api.iter().chain(
        [
            (Method::GET, "/api/v1/files".to_owned()),
            (Method::GET, "/api/v1/jobs".to_owned()),
            (Method::POST, "/api/v1/jobs".to_owned()),
        ]
        .iter(),
    ) {
        let r = anon
            .http
            .request(m.clone(), anon.url(p))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "anonymous {m} {p}");
        assert!(r.headers().contains_key("www-authenticate"));
        let r = anon
            .http
            .request(m.clone(), anon.url(p))
            .bearer_auth("fk_not-a-token")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "bad token {m} {p}");
    }
    // Every gRPC method, without a token and with one that is not valid.
    for caller in [
        Client::connect(app.grpc_addr, None).await,
        Client::connect(app.grpc_addr, Some("fk_not-a-token")).await,
    ] {
        every_grpc_method_is_unauthenticated(&caller, &file, &job).await;
    }

    // Nothing changed for ann.
    assert_eq!(
        ann.get(&format!("/files/{file}")).await.status(),
        StatusCode::OK
    );
    let j = ann_grpc.get(&job).await.unwrap();
    assert_eq!(j.state(), pb::JobState::Succeeded);
    assert_eq!(
        ann_grpc
            .list_jobs(Default::default())
            .await
            .unwrap()
            .jobs
            .len(),
        1
    );
    assert!(
        ann.text("/tokens").await.contains("active"),
        "ann's token is not revoked"
    );
    app.stop().await;
}

/// Calls each method of Files, Jobs and Admin on `c`, expecting UNAUTHENTICATED from all.
async fn every_grpc_method_is_unauthenticated(c: &Client, file: &str, job: &str) {
    use tonic::Code::Unauthenticated;
    let (mut files, mut jobs, mut admin) = (c.files.clone(), c.jobs.clone(), c.admin.clone());
    let answers = vec![
        ("UploadFile", c.upload("x.txt", b"x").await.map(drop)),
        ("DownloadFile", c.download(file).await.map(drop)),
        ("GetFile", c.get_file(file).await.map(drop)),
        ("ListFiles", c.list_files().await.map(drop)),
        (
            "DeleteFile",
            files
                .delete_file(pb::DeleteFileRequest { id: file.into() })
                .await
                .map(drop),
        ),
        (
            "SubmitJob",
            jobs.submit_job(pb::SubmitJobRequest {
                input_file_ids: vec![file.into()],
                ..Default::default()
            })
            .await
            .map(drop),
        ),
        ("GetJob", c.get(job).await.map(drop)),
        ("ListJobs", c.list_jobs(Default::default()).await.map(drop)),
        (
            "CancelJob",
            jobs.cancel_job(pb::CancelJobRequest { id: job.into() })
                .await
                .map(drop),
        ),
        (
            "RetryJob",
            jobs.retry_job(pb::RetryJobRequest { id: job.into() })
                .await
                .map(drop),
        ),
        (
            "WatchJob",
            jobs.watch_job(pb::WatchJobRequest { id: job.into() })
                .await
                .map(drop),
        ),
        (
            "WatchJobs",
            jobs.watch_jobs(pb::WatchJobsRequest::default())
                .await
                .map(drop),
        ),
        (
            "GetOverview",
            admin
                .get_overview(pb::GetOverviewRequest {})
                .await
                .map(drop),
        ),
    ];
    for (method, r) in answers {
        let code = r.err().map(|s| s.code());
        assert_eq!(code, Some(Unauthenticated), "{method}");
    }
}
