//! Settings checked by their effect, each with a value the default would fail: job
//! slots per queue, cookies for HTTPS only, the video input limit.

use crate::support::*;
use forklift_rpc::v1 as pb;
use reqwest::StatusCode;
use reqwest::header::{COOKIE, SET_COOKIE};

fn ms(t: &Option<prost_types::Timestamp>) -> i64 {
    let t = t.as_ref().expect("a time");
    t.seconds * 1000 + i64::from(t.nanos) / 1_000_000
}

#[tokio::test]
async fn with_concurrency_1_the_jobs_of_a_queue_run_one_at_a_time() {
    // No FORKLIFT_QUEUES: every queue gets FORKLIFT_CONCURRENCY slots.
    let app = TestApp::start_with(&["--concurrency", "1"]).await;
    let c = &app.client;
    let a = c.submit(submit(sleep_params(300), &[])).await.unwrap();
    let b = c.submit(submit(sleep_params(300), &[])).await.unwrap();
    let a = c.watch_to_end(&a.id).await.pop().unwrap();
    let b = c.watch_to_end(&b.id).await.pop().unwrap();
    for j in [&a, &b] {
        assert_eq!(j.state(), pb::JobState::Succeeded, "{j:#?}");
    }
    let (a_run, b_run) = (
        ms(&a.start_time)..ms(&a.end_time),
        ms(&b.start_time)..ms(&b.end_time),
    );
    assert!(
        a_run.end <= b_run.start || b_run.end <= a_run.start,
        "never at once: {a_run:?} and {b_run:?}"
    );
    app.stop().await;
}

#[tokio::test]
async fn with_concurrency_2_two_jobs_of_a_queue_run_at_once() {
    let app = TestApp::start_with(&["--concurrency", "2"]).await;
    let c = &app.client;
    // Neither ends on its own for ten minutes: seeing both run means both slots.
    let a = c.submit(submit(sleep_params(600_000), &[])).await.unwrap();
    let b = c.submit(submit(sleep_params(600_000), &[])).await.unwrap();
    for j in [&a, &b] {
        c.watch_until(&j.id, |j| j.state() == pb::JobState::Running)
            .await;
    }
    for j in [&a, &b] {
        assert_eq!(c.get(&j.id).await.unwrap().state(), pb::JobState::Running);
    }
    for j in [&a, &b] {
        c.cancel(&j.id).await.unwrap();
        c.watch_to_end(&j.id).await;
    }
    app.stop().await;
}

/// The `Set-Cookie` header of `r` that sets cookie `name`.
fn set_cookie(r: &reqwest::Response, name: &str) -> String {
    r.headers()
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|v| v.starts_with(&format!("{name}=")))
        .unwrap_or_else(|| panic!("no {name} cookie set: {:?}", r.headers()))
}

fn is_secure(set_cookie: &str) -> bool {
    set_cookie
        .split(';')
        .any(|a| a.trim().eq_ignore_ascii_case("secure"))
}

/// Signs up on the form and signs out again, sending cookies by hand (a cookie jar
/// keeps `Secure` cookies from plain HTTP); returns the `Set-Cookie` headers of the
/// CSRF cookie, the session, and the session's removal.
async fn cookies_of_a_visit(addr: std::net::SocketAddr) -> [String; 3] {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let url = |p: &str| format!("http://{addr}{p}");
    let r = http.get(url("/signup")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let csrf = set_cookie(&r, "forklift_csrf");
    let token = csrf["forklift_csrf=".len()..]
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let r = http
        .post(url("/signup"))
        .header(COOKIE, format!("forklift_csrf={token}"))
        .form(&[
            ("csrf", token.as_str()),
            ("email", "cookies@example.com"),
            ("password", "a long enough password"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let session = set_cookie(&r, "forklift_session");
    let id = session["forklift_session=".len()..]
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let r = http
        .post(url("/signout"))
        .header(
            COOKIE,
            format!("forklift_csrf={token}; forklift_session={id}"),
        )
        .form(&[("csrf", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let cleared = set_cookie(&r, "forklift_session");
    [csrf, session, cleared]
}

#[tokio::test]
async fn with_secure_cookies_every_cookie_is_for_https_only() {
    for secure in [true, false] {
        let app = TestApp::start_with(&["--secure-cookies", &secure.to_string()]).await;
        for cookie in cookies_of_a_visit(app.http_addr).await {
            assert_eq!(
                is_secure(&cookie),
                secure,
                "secure cookies {secure}: {cookie}"
            );
            assert!(cookie.contains("HttpOnly"), "{cookie}");
        }
        app.stop().await;
    }
}

#[tokio::test]
async fn videos_over_the_input_limit_fail_naming_it() {
    let app = TestApp::start_with(&["--video-max-input-mb", "1"]).await;
    let c = &app.client;
    // The size is checked before ffmpeg sees a byte, so the content does not matter.
    let file = c
        .upload("big.mp4", &vec![0u8; 1024 * 1024 + 1])
        .await
        .unwrap();
    let params = pb::JobParams {
        kind: Some(pb::job_params::Kind::VideoTranscode(
            pb::VideoTranscodeParams { height: 360 },
        )),
    };
    let job = c.submit(submit(params, &[&file.id])).await.unwrap();
    let done = c.watch_to_end(&job.id).await.pop().unwrap();
    assert_eq!(done.state(), pb::JobState::Failed, "{done:#?}");
    assert_eq!(done.attempt, 1, "refused for good, not retried");
    assert!(
        done.error
            .contains("is 1048577 bytes, above this kind's limit of 1048576 bytes"),
        "{}",
        done.error
    );
    app.stop().await;
}
