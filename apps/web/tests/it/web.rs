//! The web app over HTTP, against the real app on port 0: pages (with snapshots),
//! accounts and sessions, CSRF, rate limits, uploads, downloads, live events, the
//! JSON API and its OpenAPI document, and the authorization matrix.

use crate::support::{Client, DEADLINE, TestApp, sleep_params, submit, test_jpeg};
use reqwest::StatusCode;
use reqwest::header::{CACHE_CONTROL, CONTENT_SECURITY_POLICY, LOCATION};
use serde_json::{Value, json};
use std::net::SocketAddr;

/// A browser-like HTTP client: keeps cookies, does not follow redirects.
pub struct Web {
    pub http: reqwest::Client,
    pub base: String,
    jar: std::sync::Arc<reqwest::cookie::Jar>,
}

impl Web {
    pub fn new(addr: SocketAddr) -> Self {
        let jar = std::sync::Arc::new(reqwest::cookie::Jar::default());
        Self {
            http: reqwest::Client::builder()
                .cookie_provider(jar.clone())
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            base: format!("http://{addr}"),
            jar,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.http.get(self.url(path)).send().await.unwrap()
    }

    pub async fn text(&self, path: &str) -> String {
        let r = self.get(path).await;
        assert_eq!(r.status(), StatusCode::OK, "GET {path}");
        r.text().await.unwrap()
    }

    /// A cookie's value, as the browser would send it.
    pub fn cookie(&self, name: &str) -> Option<String> {
        use reqwest::cookie::CookieStore;
        let h = self.jar.cookies(&self.base.parse().unwrap())?;
        h.to_str()
            .unwrap()
            .split("; ")
            .filter_map(|kv| kv.split_once('='))
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.to_owned())
    }

    /// The CSRF token of the form on `path` (loading it sets the cookie).
    pub async fn csrf(&self, path: &str) -> String {
        let page = self.text(path).await;
        hidden(&page, "csrf").unwrap_or_else(|| panic!("no csrf field on {path}"))
    }

    /// Posts a form with the CSRF token of `from`.
    pub async fn post(&self, from: &str, to: &str, fields: &[(&str, &str)]) -> reqwest::Response {
        let token = self.csrf(from).await;
        let mut form: Vec<(&str, &str)> = vec![("csrf", &token)];
        form.extend_from_slice(fields);
        self.http
            .post(self.url(to))
            .form(&form)
            .send()
            .await
            .unwrap()
    }

    pub async fn signup(&self, email: &str, password: &str) {
        let r = self
            .post(
                "/signup",
                "/signup",
                &[("email", email), ("password", password)],
            )
            .await;
        assert_eq!(
            r.status(),
            StatusCode::SEE_OTHER,
            "{}",
            r.text().await.unwrap()
        );
        assert_eq!(r.headers()[LOCATION], "/dashboard");
    }

    /// Uploads through the page's multipart form; returns the file id.
    pub async fn upload(&self, name: &str, bytes: Vec<u8>) -> String {
        let r = self.upload_raw(name, bytes).await;
        assert_eq!(
            r.status(),
            StatusCode::SEE_OTHER,
            "{}",
            r.text().await.unwrap()
        );
        location_id(&r, "/files/")
    }

    pub async fn upload_raw(&self, name: &str, bytes: Vec<u8>) -> reqwest::Response {
        let token = self.csrf("/dashboard").await;
        let form = reqwest::multipart::Form::new().text("csrf", token).part(
            "file",
            reqwest::multipart::Part::bytes(bytes).file_name(name.to_owned()),
        );
        self.http
            .post(self.url("/files"))
            .multipart(form)
            .send()
            .await
            .unwrap()
    }

    /// Starts a thumbnail job from the file page's form; returns the job id.
    pub async fn start_thumbnail(&self, file: &str, width: &str) -> String {
        let page = format!("/files/{file}");
        let r = self
            .post(
                &page,
                &format!("{page}/jobs"),
                &[("kind", "image.thumbnail"), ("width", width)],
            )
            .await;
        assert_eq!(
            r.status(),
            StatusCode::SEE_OTHER,
            "{}",
            r.text().await.unwrap()
        );
        location_id(&r, "/jobs/")
    }

    /// Creates an API token on the tokens page and returns it (shown once).
    pub async fn create_token(&self, name: &str) -> String {
        let r = self.post("/tokens", "/tokens", &[("name", name)]).await;
        assert_eq!(r.status(), StatusCode::CREATED);
        assert_eq!(r.headers()[CACHE_CONTROL], "no-store");
        let page = r.text().await.unwrap();
        let start = page.find("fk_").expect("token shown");
        page[start..start + 67].to_owned()
    }

    /// Server-sent `job` events of `path` until one is final.
    pub async fn events_until_final(&self, path: &str, bearer: Option<&str>) -> Vec<Value> {
        let mut req = self.http.get(self.url(path));
        if let Some(t) = bearer {
            req = req.bearer_auth(t);
        }
        let r = req.send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK, "GET {path}");
        assert_eq!(r.headers()["content-type"], "text/event-stream");
        read_events(r).await
    }
}

/// Reads `job` events from an SSE response until a final one.
pub async fn read_events(r: reqwest::Response) -> Vec<Value> {
    read_until(r, |v| v["final"] == true)
        .await
        .into_iter()
        .map(|(_, v)| v)
        .collect()
}

/// The value of a hidden input.
pub fn hidden(page: &str, name: &str) -> Option<String> {
    let at = page.find(&format!("name=\"{name}\" value=\""))?;
    let rest = &page[at + name.len() + 15..];
    Some(rest[..rest.find('"')?].to_owned())
}

fn location_id(r: &reqwest::Response, prefix: &str) -> String {
    let loc = r.headers()[LOCATION].to_str().unwrap();
    loc.strip_prefix(prefix)
        .unwrap_or_else(|| panic!("redirect to {loc}, expected {prefix}…"))
        .to_owned()
}

/// What changes from run to run in a page (ids, hex secrets and asset fingerprints,
/// times, how many progress reports a job made), as insta filters: a regex and its
/// replacement, applied in this order.
const PAGE_FILTERS: &[(&str, &str)] = &[
    (
        r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}",
        "[id]",
    ),
    (r"[0-9a-fA-F]{12,}", "[hex]"),
    (
        r"\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}:\d{2}\.\d{3}Z| \d{2}:\d{2} UTC)?",
        "[time]",
    ),
    (r#"data-version="\d+""#, r#"data-version="[n]""#),
];

/// The current insta settings plus [`PAGE_FILTERS`].
fn page_settings() -> insta::Settings {
    let mut settings = insta::Settings::clone_current();
    for (regex, replacement) in PAGE_FILTERS {
        settings.add_filter(regex, *replacement);
    }
    settings
}

/// The structural accessibility rules every page keeps: a language, one `h1`, a label
/// for every visible form control, text alternatives for images, a main landmark.
fn accessible(name: &str, html: &str) {
    let attr = |tag: &str, a: &str| -> Option<String> {
        let start = tag.find(&format!(" {a}=\""))? + a.len() + 3;
        Some(tag[start..start + tag[start..].find('"')?].to_owned())
    };
    assert!(
        html.contains("<html lang=\"en\">"),
        "{name}: the page's language"
    );
    assert_eq!(html.matches("<h1").count(), 1, "{name}: one h1");
    assert!(html.contains("<main"), "{name}: a main landmark");
    let tags = |open: &'static str| {
        html.split(open)
            .skip(1)
            .map(|rest| rest[..rest.find('>').unwrap_or(rest.len())].to_owned())
            .collect::<Vec<_>>()
    };
    for tag in tags("<img") {
        assert!(
            attr(&tag, "alt").is_some(),
            "{name}: <img{tag}> has alt text"
        );
    }
    let label_for: Vec<String> = tags("<label")
        .iter()
        .filter_map(|t| attr(t, "for"))
        .collect();
    for open in ["<input", "<select", "<textarea"] {
        for tag in tags(open) {
            let kind = attr(&tag, "type").unwrap_or_default();
            if matches!(kind.as_str(), "hidden" | "submit" | "button") {
                continue;
            }
            let labelled = attr(&tag, "aria-label").is_some()
                || attr(&tag, "id").is_some_and(|id| label_for.contains(&id));
            assert!(labelled, "{name}: {open}{tag}> has a label");
        }
    }
}

/// Checks a page's accessibility and compares it, filtered, with its snapshot
/// `snapshots/it__web__<name>.snap` (the same file in both test modes).
fn snapshot(name: &str, html: &str) {
    accessible(name, html);
    page_settings().bind(|| insta::assert_snapshot!(name, html));
}

#[test]
fn page_filters_hide_what_changes_between_runs() {
    page_settings().bind(|| {
        insta::assert_snapshot!(
            "job 0193c1b5-1234-7abc-8def-0123456789ab at 2026-11-22T04:51:51.123Z, 2026-11-22 04:51 UTC /static/app.1a2b3c4d5e6f.css <tr data-version=\"12\">",
            @r#"job [id] at [time], [time] /static/app.[hex].css <tr data-version="[n]">"#
        )
    });
}

#[tokio::test]
async fn the_main_pages_render_as_their_snapshots() {
    let app = TestApp::start_with(&["--public-url", "https://forklift.example.com/"]).await;
    let web = Web::new(app.http_addr);

    let landing = web.get("/").await;
    assert_eq!(landing.status(), StatusCode::OK);
    assert_eq!(landing.headers()[CACHE_CONTROL], "public, max-age=300");
    let csp = landing.headers()[CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    assert!(!csp.contains("unsafe-inline"));
    assert_eq!(landing.headers()["x-content-type-options"], "nosniff");
    assert_eq!(landing.headers()["x-frame-options"], "DENY");
    assert_eq!(landing.headers()["referrer-policy"], "same-origin");
    assert!(landing.headers().contains_key("x-request-id"));
    assert!(
        landing.headers().get("set-cookie").is_none(),
        "a cacheable page sets no cookie"
    );
    let landing = landing.text().await.unwrap();
    assert!(landing.contains("<meta property=\"og:title\""));
    assert!(
        landing.contains(r#"<meta property="og:url" content="https://forklift.example.com/">"#)
    );
    let image = landing
        .split(r#"<meta property="og:image" content="https://forklift.example.com"#)
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("an absolute og:image on the public URL");
    let picture = web.get(image).await;
    assert_eq!(picture.status(), StatusCode::OK, "{image}");
    assert_eq!(picture.headers()["content-type"], "image/png");
    let picture = image::load_from_memory(&picture.bytes().await.unwrap()).unwrap();
    assert_eq!((picture.width(), picture.height()), (1200, 630));
    for tag in landing.split("<script").skip(1) {
        let tag = &tag[..tag.find('>').unwrap()];
        assert!(
            tag.contains(" src=\"/static/"),
            "only our own script files: <script{tag}>"
        );
    }
    snapshot("landing", &landing);
    snapshot("signup", &web.text("/signup").await);
    snapshot("signin", &web.text("/signin").await);

    web.signup("snap@example.com", "a long enough password")
        .await;
    snapshot("dashboard-empty", &web.text("/dashboard").await);
    let file = web.upload("photo.jpg", test_jpeg(640, 480, None)).await;
    snapshot("file", &web.text(&format!("/files/{file}")).await);
    let job = web.start_thumbnail(&file, "128").await;
    let events = web
        .events_until_final(&format!("/jobs/{job}/events"), None)
        .await;
    assert_eq!(events.last().unwrap()["state"], "succeeded");
    snapshot("job-succeeded", &web.text(&format!("/jobs/{job}")).await);
    snapshot("dashboard", &web.text("/dashboard").await);
    snapshot("jobs", &web.text("/jobs").await);
    snapshot("files", &web.text("/files").await);
    snapshot("tokens", &web.text("/tokens").await);
    snapshot(
        "not-found",
        &web.get("/no/such/page").await.text().await.unwrap(),
    );
    app.stop().await;
}

#[tokio::test]
async fn browsing_without_javascript_upload_process_download() {
    let app = TestApp::start().await;
    let web = Web::new(app.http_addr);
    // Anonymous visitors are sent to sign in, and come back afterwards.
    let r = web.get("/dashboard").await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()[LOCATION], "/signin?next=/dashboard");
    web.signup("ann@example.com", "a long enough password")
        .await;
    let again = Web::new(app.http_addr);
    let r = again
        .post(
            "/signin?next=/jobs",
            "/signin",
            &[
                ("email", "ANN@example.com"),
                ("password", "a long enough password"),
                ("next", "/jobs"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()[LOCATION], "/jobs");
    let cookie = r.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );
    // An open redirect is refused.
    let third = Web::new(app.http_addr);
    let r = third
        .post(
            "/signin",
            "/signin",
            &[
                ("email", "ann@example.com"),
                ("password", "a long enough password"),
                ("next", "//evil.example/"),
            ],
        )
        .await;
    assert_eq!(r.headers()[LOCATION], "/dashboard");

    let photo = test_jpeg(800, 600, None);
    let file = web.upload("holiday.jpg", photo.clone()).await;
    let page = web.text(&format!("/files/{file}")).await;
    assert!(
        page.contains(&format!("src=\"/files/{file}/raw\"")),
        "an image preview"
    );
    let raw = web.get(&format!("/files/{file}/raw")).await;
    assert_eq!(raw.headers()["content-type"], "image/jpeg");
    assert!(
        raw.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("inline")
    );
    assert_eq!(raw.bytes().await.unwrap().as_ref(), photo.as_slice());

    let job = web.start_thumbnail(&file, "200").await;
    let events = web
        .events_until_final(&format!("/jobs/{job}/events"), None)
        .await;
    let last = events.last().unwrap();
    assert_eq!(last["state"], "succeeded", "{events:?}");
    assert_eq!(last["progress"], 100);
    // Reconnecting after the end still gets the final state.
    let again = web
        .events_until_final(&format!("/jobs/{job}/events"), None)
        .await;
    assert_eq!(again.len(), 1);
    assert_eq!(again[0]["state"], "succeeded");

    let page = web.text(&format!("/jobs/{job}")).await;
    let href = page
        .split("class=\"download\" href=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("a download link")
        .to_owned();
    let dl = web.get(&href).await;
    assert_eq!(dl.status(), StatusCode::OK);
    assert!(
        dl.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("attachment")
    );
    let thumb = image::load_from_memory(&dl.bytes().await.unwrap()).unwrap();
    assert_eq!((thumb.width(), thumb.height()), (200, 150));

    // Dashboard and job lists show it.
    let dash = web.text("/dashboard").await;
    assert!(dash.contains(&format!("data-job-id=\"{job}\"")) && dash.contains("holiday.jpg"));
    assert!(web.text("/jobs?state=succeeded").await.contains(&job));
    assert!(!web.text("/jobs?state=failed").await.contains(&job));

    // Bad parameters come back on the form with the field named.
    let r = web
        .post(
            &format!("/files/{file}"),
            &format!("/files/{file}/jobs"),
            &[("kind", "image.thumbnail"), ("width", "0"), ("height", "0")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body = r.text().await.unwrap();
    assert!(body.contains("params.sizes[0]"), "{body}");
    let r = web
        .post(
            &format!("/files/{file}"),
            &format!("/files/{file}/jobs"),
            &[("kind", "image.thumbnail"), ("width", "wide")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.text().await.unwrap().contains("not a whole number"));

    // Pages are compressed for clients that accept it.
    let gz = web
        .http
        .get(web.url("/dashboard"))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(gz.headers()["content-encoding"], "gzip");
    // Request metrics are labelled by route, never by id.
    let metrics = web.text("/metrics").await;
    assert!(metrics.contains("route=\"/jobs/{id}\""), "{metrics}");
    assert!(!metrics.contains(&job), "no ids in metric labels");

    // Delete.
    let r = web
        .post(
            &format!("/files/{file}"),
            &format!("/files/{file}/delete"),
            &[],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        web.get(&format!("/files/{file}")).await.status(),
        StatusCode::NOT_FOUND
    );
    app.stop().await;
}

#[tokio::test]
async fn forms_need_their_csrf_token_sign_ins_are_limited_and_sign_out_ends_the_session() {
    let app = TestApp::start_with(&["--signin-attempts", "3"]).await;
    let web = Web::new(app.http_addr);
    web.signup("bo@example.com", "the right password").await;
    let file = web.upload("a.jpg", test_jpeg(64, 64, None)).await;

    // No token, a wrong token, or a token without its cookie: refused, nothing done.
    let no_token = web
        .http
        .post(web.url(&format!("/files/{file}/jobs")))
        .form(&[("kind", "image.thumbnail"), ("width", "32")])
        .send()
        .await
        .unwrap();
    assert_eq!(no_token.status(), StatusCode::FORBIDDEN);
    assert!(no_token.text().await.unwrap().contains("CSRF"));
    let wrong = web
        .http
        .post(web.url(&format!("/files/{file}/delete")))
        .form(&[("csrf", "0".repeat(64).as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::FORBIDDEN);
    let stranger = Web::new(app.http_addr);
    let token = web.csrf("/dashboard").await;
    let r = stranger
        .http
        .post(stranger.url("/signin"))
        .form(&[
            ("csrf", token.as_str()),
            ("email", "bo@example.com"),
            ("password", "the right password"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::FORBIDDEN,
        "a token without its cookie"
    );
    let upload_without = {
        let form = reqwest::multipart::Form::new().part(
            "file",
            reqwest::multipart::Part::bytes(vec![1, 2, 3]).file_name("x.bin"),
        );
        web.http
            .post(web.url("/files"))
            .multipart(form)
            .send()
            .await
            .unwrap()
    };
    assert_eq!(upload_without.status(), StatusCode::FORBIDDEN);
    assert!(
        web.text(&format!("/files/{file}")).await.contains("a.jpg"),
        "not deleted"
    );
    let jobs = app.store.list_jobs(&Default::default()).await.unwrap();
    assert!(jobs.is_empty(), "no job was started");
    // Every other form, posted without its token: refused before anything is looked at.
    let some_id = "01a2024f-6b0d-71a5-b9f3-2f888ad563ad";
    for (path, fields) in [
        (
            "/signup".to_owned(),
            vec![
                ("email", "eve@example.com"),
                ("password", "a long enough password"),
            ],
        ),
        ("/signout".to_owned(), vec![]),
        (format!("/jobs/{some_id}/cancel"), vec![]),
        (format!("/jobs/{some_id}/retry"), vec![]),
        ("/tokens".to_owned(), vec![("name", "sneaky")]),
        (format!("/tokens/{some_id}/revoke"), vec![]),
    ] {
        let r = web
            .http
            .post(web.url(&path))
            .form(&fields)
            .send()
            .await
            .unwrap();
        assert_eq!(
            r.status(),
            StatusCode::FORBIDDEN,
            "POST {path} without its CSRF token"
        );
    }
    assert_eq!(
        web.get("/dashboard").await.status(),
        StatusCode::OK,
        "still signed in"
    );
    // Forms are small: a body past 64 KiB is refused before any handler reads it.
    let huge = "x".repeat(100 * 1024);
    let r = web
        .http
        .post(web.url("/signin"))
        .form(&[("email", huge.as_str()), ("password", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert!(
        !web.text("/tokens").await.contains("sneaky"),
        "no token was made"
    );
    let eve = Web::new(app.http_addr);
    let r = eve
        .post(
            "/signin",
            "/signin",
            &[
                ("email", "eve@example.com"),
                ("password", "a long enough password"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "no account was made");

    // Bad sign-ins: 401 each, then 429 — even with the right password — with Retry-After.
    let attacker = Web::new(app.http_addr);
    for _ in 0..3 {
        let r = attacker
            .post(
                "/signin",
                "/signin",
                &[("email", "bo@example.com"), ("password", "guess")],
            )
            .await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }
    let r = attacker
        .post(
            "/signin",
            "/signin",
            &[
                ("email", "bo@example.com"),
                ("password", "the right password"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(r.headers().contains_key("retry-after"));
    assert!(r.text().await.unwrap().contains("Too many failed sign-ins"));
    // Another account is not affected.
    let r = attacker
        .post(
            "/signin",
            "/signin",
            &[("email", "nobody@example.com"), ("password", "guess")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    // Guesses sent all at once get no more tries than guesses sent one by one.
    let guesses = (0..8).map(|i| {
        let password = format!("guess {i}");
        let attacker = &attacker;
        async move {
            attacker
                .post(
                    "/signin",
                    "/signin",
                    &[("email", "carl@example.com"), ("password", &password)],
                )
                .await
                .status()
        }
    });
    let answers = futures::future::join_all(guesses).await;
    let tried = answers
        .iter()
        .filter(|&&s| s == StatusCode::UNAUTHORIZED)
        .count();
    assert_eq!(tried, 3, "{answers:?}");
    assert_eq!(
        answers
            .iter()
            .filter(|&&s| s == StatusCode::TOO_MANY_REQUESTS)
            .count(),
        5,
        "{answers:?}"
    );

    // A copied session cookie stops working once its owner signs out.
    let session = web.cookie("forklift_session").expect("session cookie");
    let thief = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let steal = || {
        thief
            .get(web.url("/dashboard"))
            .header("cookie", format!("forklift_session={session}"))
            .send()
    };
    assert_eq!(steal().await.unwrap().status(), StatusCode::OK);
    let r = web.post("/dashboard", "/signout", &[]).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let r = steal().await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(
        r.headers()[LOCATION]
            .to_str()
            .unwrap()
            .starts_with("/signin")
    );
    app.stop().await;
}

#[tokio::test]
async fn uploads_over_the_limit_get_413_and_store_nothing() {
    let app = TestApp::start_with(&["--max-upload-mb", "1"]).await;
    let web = Web::new(app.http_addr);
    web.signup("big@example.com", "a long enough password")
        .await;
    let big = vec![7u8; 1024 * 1024 + 10];
    let r = web.upload_raw("big.bin", big.clone()).await;
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    // The rest of the body is unread: the connection must not be reused.
    assert_eq!(r.headers()[reqwest::header::CONNECTION], "close");
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("larger than the upload limit of 1.0 MB")
    );
    let token = web.create_token("uploads").await;
    let form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(big).file_name("big.bin"),
    );
    let r = web
        .http
        .post(web.url("/api/v1/files"))
        .bearer_auth(&token)
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(r.headers()[reqwest::header::CONNECTION], "close");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "too_large");
    // Just under the limit is fine.
    let ok = web.upload("ok.bin", vec![1u8; 1024 * 1024 - 100]).await;
    let list: Value = web
        .http
        .get(web.url("/api/v1/files"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ids: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [ok.as_str()],
        "only the file under the limit was stored"
    );
    app.stop().await;
}

#[tokio::test]
async fn the_json_api_uploads_submits_watches_downloads_and_pages() {
    let app = TestApp::start().await;
    let web = Web::new(app.http_addr);
    web.signup("api@example.com", "a long enough password")
        .await;
    let token = web.create_token("script").await;
    let api = |m: reqwest::Method, p: &str| web.http.request(m, web.url(p)).bearer_auth(&token);

    let spec: Value = web.get("/api/v1/openapi.json").await.json().await.unwrap();
    assert!(spec["openapi"].as_str().unwrap().starts_with("3."));
    for p in [
        "/api/v1/files",
        "/api/v1/files/{id}/content",
        "/api/v1/jobs",
        "/api/v1/jobs/{id}/cancel",
        "/api/v1/jobs/{id}/events",
    ] {
        assert!(spec["paths"][p].is_object(), "{p} documented");
    }
    assert!(spec["components"]["schemas"]["Job"].is_object());

    let mut ids = Vec::new();
    for i in 0..3 {
        let form = reqwest::multipart::Form::new().part(
            "file",
            reqwest::multipart::Part::bytes(test_jpeg(300, 200, None))
                .file_name(format!("p{i}.jpg")),
        );
        let r = api(reqwest::Method::POST, "/api/v1/files")
            .multipart(form)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::CREATED);
        let f: Value = r.json().await.unwrap();
        assert_eq!(f["content_type"], "image/jpeg");
        ids.push(f["id"].as_str().unwrap().to_owned());
    }
    // Cursor pagination: newest first, every file once.
    let mut seen = Vec::new();
    let mut cursor = String::new();
    loop {
        let page: Value = api(
            reqwest::Method::GET,
            &format!("/api/v1/files?limit=2&cursor={cursor}"),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
        seen.extend(
            page["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| f["id"].as_str().unwrap().to_owned()),
        );
        match page["next_cursor"].as_str() {
            Some(c) => cursor = c.to_owned(),
            None => break,
        }
    }
    ids.reverse();
    assert_eq!(seen, ids);

    // Bad parameters: 400, each field named, nothing stored.
    let r = api(reqwest::Method::POST, "/api/v1/jobs")
        .json(&json!({"kind": "image.thumbnail", "params": {"sizes": [{"width": 0, "height": 0}], "fit": "squash"}, "input_file_ids": [ids[0]]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["error"]["code"], "invalid_argument");
    assert!(
        e["error"]["fields"][0]["field"]
            .as_str()
            .unwrap()
            .starts_with("params"),
        "{e}"
    );
    insta::assert_json_snapshot!("api-invalid-params", e);
    let r = api(reqwest::Method::POST, "/api/v1/jobs")
        .json(&json!({"kind": "image.nope", "input_file_ids": [ids[0]]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    // Whatever refuses a request — the JSON extractor, the body limit, the router —
    // the answer has the API's one error shape.
    let shape = |r: reqwest::Response, status: StatusCode, code: &'static str| async move {
        assert_eq!(r.status(), status);
        assert!(
            r.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("application/json"),
            "{:?}",
            r.headers()
        );
        let e: Value = r.json().await.unwrap();
        assert_eq!(e["error"]["code"], code, "{e}");
        assert!(!e["error"]["message"].as_str().unwrap().is_empty(), "{e}");
        e
    };
    let r = api(reqwest::Method::POST, "/api/v1/jobs")
        .body("{not json")
        .header("content-type", "application/json")
        .send()
        .await
        .unwrap();
    let e = shape(r, StatusCode::BAD_REQUEST, "invalid_argument").await;
    assert!(
        e["error"]["message"].as_str().unwrap().contains("JSON"),
        "{e}"
    );
    let r = api(reqwest::Method::POST, "/api/v1/jobs")
        .body(r#"{"kind": "image.thumbnail"}"#)
        .send()
        .await
        .unwrap();
    shape(
        r,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    )
    .await;
    let r = api(reqwest::Method::POST, "/api/v1/jobs")
        .header("content-type", "application/json")
        .body(format!(r#"{{"kind": "{}"}}"#, "x".repeat(100 * 1024)))
        .send()
        .await
        .unwrap();
    shape(r, StatusCode::PAYLOAD_TOO_LARGE, "too_large").await;
    let r = api(reqwest::Method::PUT, "/api/v1/jobs")
        .send()
        .await
        .unwrap();
    let allow = r.headers().get("allow").cloned();
    shape(r, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed").await;
    assert!(allow.is_some(), "405 keeps its Allow header");
    let r = api(reqwest::Method::GET, "/api/v1/jobs?state=done")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);

    let r = api(reqwest::Method::POST, "/api/v1/jobs")
        .json(&json!({"kind": "image.thumbnail", "params": {"sizes": [{"width": 64}]}, "input_file_ids": [ids[0]], "idempotency_key": "k1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let job: Value = r.json().await.unwrap();
    assert_eq!(job["params"]["sizes"][0]["width"], 64);
    let id = job["id"].as_str().unwrap().to_owned();
    let events = web
        .events_until_final(&format!("/api/v1/jobs/{id}/events"), Some(&token))
        .await;
    assert_eq!(events.last().unwrap()["state"], "succeeded");
    let job: Value = api(reqwest::Method::GET, &format!("/api/v1/jobs/{id}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(job["progress"], 100);
    insta::assert_json_snapshot!("api-job-succeeded", job, {
        ".id" => "[id]",
        ".input_file_ids[]" => "[id]",
        ".outputs[].file_id" => "[id]",
        ".owner_id" => "[id]",
        ".created_at" => "[time]",
        ".updated_at" => "[time]",
        ".started_at" => "[time]",
        ".finished_at" => "[time]",
        // How many progress reports the job made varies from run to run.
        ".version" => "[n]",
    });
    let out = job["outputs"][0]["file_id"].as_str().unwrap();
    let bytes = api(
        reqwest::Method::GET,
        &format!("/api/v1/files/{out}/content"),
    )
    .send()
    .await
    .unwrap()
    .bytes()
    .await
    .unwrap();
    assert_eq!(image::load_from_memory(&bytes).unwrap().width(), 64);
    let r = api(reqwest::Method::POST, &format!("/api/v1/jobs/{id}/cancel"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CONFLICT, "already finished");
    let listed: Value = api(reqwest::Method::GET, "/api/v1/jobs?state=succeeded&limit=5")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed["items"][0]["id"], id.as_str());

    // The same token works over gRPC; revoked, it works nowhere.
    let grpc = Client::connect(app.grpc_addr, Some(&token)).await;
    assert_eq!(grpc.get(&id).await.unwrap().id, id);
    let r = api(
        reqwest::Method::DELETE,
        &format!("/api/v1/files/{}", ids[2]),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        api(reqwest::Method::GET, &format!("/api/v1/files/{}", ids[2]))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::NOT_FOUND
    );
    let tokens = web.text("/tokens").await;
    let revoke = tokens
        .split("action=\"/tokens/")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned();
    let r = web.post("/tokens", &format!("/tokens/{revoke}"), &[]).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let r = api(reqwest::Method::GET, "/api/v1/jobs")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["error"]["code"], "unauthenticated");
    assert_eq!(
        grpc.get(&id).await.unwrap_err().code(),
        tonic::Code::Unauthenticated
    );
    let r = web.get("/api/v1/nothing/here").await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"]["code"],
        "not_found"
    );
    app.stop().await;
}

#[tokio::test]
async fn owners_see_why_a_job_failed_and_cancel_and_retry_by_form_and_api() {
    let app = TestApp::start().await;
    let web = Web::new(app.http_addr);
    web.signup("olga@example.com", "a long enough password")
        .await;
    let token = web.create_token("api").await;
    let api = |m: reqwest::Method, p: &str| web.http.request(m, web.url(p)).bearer_auth(&token);

    // A failed job's page says why, and offers a retry; the form's retry runs it again.
    let bad = web
        .upload("broken.jpg", b"\xff\xd8\xff\xe0 not really a jpeg".to_vec())
        .await;
    let job = web.start_thumbnail(&bad, "20").await;
    let events = web
        .events_until_final(&format!("/jobs/{job}/events"), None)
        .await;
    assert_eq!(events.last().unwrap()["state"], "failed");
    let page = web.text(&format!("/jobs/{job}")).await;
    assert!(page.contains("role=\"alert\""), "the error is shown");
    let error = events.last().unwrap()["error"].as_str().unwrap().to_owned();
    assert!(!error.is_empty());
    assert!(
        page.contains(&askama_escape(&error)),
        "the page shows the job's error {error:?}"
    );
    assert!(page.contains(&format!("/jobs/{job}/retry")), "a retry form");
    let r = web
        .post(&format!("/jobs/{job}"), &format!("/jobs/{job}/retry"), &[])
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()[LOCATION], format!("/jobs/{job}"));
    let again = web
        .events_until_final(&format!("/jobs/{job}/events"), None)
        .await;
    assert_eq!(again.last().unwrap()["state"], "failed");
    assert!(
        again.last().unwrap()["version"].as_u64() > events.last().unwrap()["version"].as_u64(),
        "ran again: {again:?}"
    );

    // The same over the JSON API.
    let r = api(reqwest::Method::POST, &format!("/api/v1/jobs/{job}/retry"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let j: Value = r.json().await.unwrap();
    assert!(
        matches!(j["state"].as_str(), Some("queued" | "running" | "failed")),
        "{j}"
    );

    // Cancel: a job that waits (far in the future) is cancelled by the page's form ...
    let submit_sleep = || async {
        let r = api(reqwest::Method::POST, "/api/v1/jobs")
            .json(&json!({"kind": "debug.sleep", "params": {"duration_ms": 60000}}))
            .send()
            .await
            .unwrap();
        assert_eq!(
            r.status(),
            StatusCode::CREATED,
            "{}",
            r.text().await.unwrap()
        );
        let j: Value = r.json().await.unwrap();
        j["id"].as_str().unwrap().to_owned()
    };
    let by_form = submit_sleep().await;
    let page = web.text(&format!("/jobs/{by_form}")).await;
    assert!(
        page.contains(&format!("/jobs/{by_form}/cancel")),
        "a cancel form"
    );
    let r = web
        .post(
            &format!("/jobs/{by_form}"),
            &format!("/jobs/{by_form}/cancel"),
            &[],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let end = web
        .events_until_final(&format!("/jobs/{by_form}/events"), None)
        .await;
    assert_eq!(end.last().unwrap()["state"], "cancelled");
    // ... and one by the API.
    let by_api = submit_sleep().await;
    let r = api(
        reqwest::Method::POST,
        &format!("/api/v1/jobs/{by_api}/cancel"),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let end = web
        .events_until_final(&format!("/jobs/{by_api}/events"), None)
        .await;
    assert_eq!(end.last().unwrap()["state"], "cancelled");
    let r = api(
        reqwest::Method::POST,
        &format!("/api/v1/jobs/{by_api}/cancel"),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::CONFLICT, "already cancelled");
    app.stop().await;
}

/// Text as askama's HTML escaping writes it.
fn askama_escape(s: &str) -> String {
    s.replace('&', "&#38;")
        .replace('<', "&#60;")
        .replace('>', "&#62;")
        .replace('"', "&#34;")
        .replace('\'', "&#39;")
}

#[tokio::test]
async fn job_submissions_are_rate_limited() {
    let app = TestApp::start_with(&["--submit-per-minute", "2"]).await;
    let web = Web::new(app.http_addr);
    web.signup("fast@example.com", "a long enough password")
        .await;
    let file = web.upload("a.jpg", test_jpeg(64, 64, None)).await;
    web.start_thumbnail(&file, "16").await;
    let token = web.create_token("t").await;
    let submit = || {
        web.http
            .post(web.url("/api/v1/jobs"))
            .bearer_auth(&token)
            .json(&json!({"kind": "image.thumbnail", "params": {"sizes": [{"width": 8}]}, "input_file_ids": [file]}))
            .send()
    };
    assert_eq!(submit().await.unwrap().status(), StatusCode::CREATED);
    let r = submit().await.unwrap();
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(r.headers().contains_key("retry-after"));
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"]["code"],
        "rate_limited"
    );
    let r = web
        .post(
            &format!("/files/{file}"),
            &format!("/files/{file}/jobs"),
            &[("kind", "image.thumbnail"), ("width", "16")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    // The limit is each user's own: another user, by form and by API, still gets
    // through while the first one waits.
    let other = Web::new(app.http_addr);
    other
        .signup("other@example.com", "a long enough password")
        .await;
    let theirs = other.upload("b.jpg", test_jpeg(64, 64, None)).await;
    other.start_thumbnail(&theirs, "16").await;
    let their_token = other.create_token("t").await;
    let r = other
        .http
        .post(other.url("/api/v1/jobs"))
        .bearer_auth(&their_token)
        .json(&json!({"kind": "image.thumbnail", "params": {"sizes": [{"width": 8}]}, "input_file_ids": [theirs]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(
        submit().await.unwrap().status(),
        StatusCode::TOO_MANY_REQUESTS,
        "the first user is still limited"
    );
    app.stop().await;
}

#[tokio::test]
async fn the_data_profile_report_is_a_page_with_server_side_charts() {
    let app = TestApp::start().await;
    let web = Web::new(app.http_addr);
    web.signup("data@example.com", "a long enough password")
        .await;
    let mut csv = String::from("id,amount,city\n");
    for i in 0..500 {
        csv.push_str(&format!(
            "{i},{}.5,{}\n",
            i % 50,
            ["Oslo", "Lima", "<script>x</script>"][i % 3]
        ));
    }
    let file = web.upload("sales.csv", csv.into_bytes()).await;
    let page = web.text(&format!("/files/{file}")).await;
    assert!(page.contains("Profile this CSV"));
    let r = web
        .post(
            &format!("/files/{file}"),
            &format!("/files/{file}/jobs"),
            &[("kind", "data.profile"), ("delimiter", ""), ("header", "")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let job = location_id(&r, "/jobs/");
    let events = web
        .events_until_final(&format!("/jobs/{job}/events"), None)
        .await;
    assert_eq!(events.last().unwrap()["state"], "succeeded", "{events:?}");
    assert!(
        web.text(&format!("/jobs/{job}"))
            .await
            .contains(&format!("/jobs/{job}/report"))
    );
    let report = web.get(&format!("/jobs/{job}/report")).await;
    assert_eq!(report.status(), StatusCode::OK);
    let html = report.text().await.unwrap();
    assert!(
        html.contains("<svg") && html.contains("amount") && html.contains("500 rows"),
        "{html}"
    );
    assert!(!html.contains("<script>x"), "values are escaped");
    assert!(html.contains("Download as HTML"));
    // The layout is the downloadable report's, as a stylesheet: the CSP allows no inline style.
    assert!(html.contains("<div class=\"profile-report\">"), "{html}");
    let css = html
        .split("href=\"")
        .filter_map(|rest| rest.split('"').next())
        .find(|href| href.starts_with("/static/report."))
        .expect("the report's stylesheet");
    let r = web.get(css).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-type"], "text/css; charset=utf-8");
    assert_eq!(r.text().await.unwrap(), forklift_profile::REPORT_CSS);
    accessible("report", &html);
    let other = Web::new(app.http_addr);
    other
        .signup("other@example.com", "a long enough password")
        .await;
    assert_eq!(
        other.get(&format!("/jobs/{job}/report")).await.status(),
        StatusCode::NOT_FOUND
    );
    app.stop().await;
}

/// Reads `job` events of a stream until `done` says so; returns them with their SSE
/// ids.
async fn read_until(r: reqwest::Response, done: impl Fn(&Value) -> bool) -> Vec<(String, Value)> {
    use futures::StreamExt;
    let mut body = r.bytes_stream();
    let mut buf = String::new();
    let mut events = Vec::new();
    tokio::time::timeout(DEADLINE, async {
        while let Some(chunk) = body.next().await {
            buf.push_str(&String::from_utf8_lossy(&chunk.unwrap()));
            while let Some(end) = buf.find("\n\n") {
                let block: String = buf.drain(..end + 2).collect();
                let id = block
                    .lines()
                    .find_map(|l| l.strip_prefix("id: "))
                    .unwrap_or("");
                if let Some(data) = block.lines().find_map(|l| l.strip_prefix("data: ")) {
                    let v: Value = serde_json::from_str(data).unwrap();
                    let stop = done(&v);
                    events.push((id.to_owned(), v));
                    if stop {
                        return;
                    }
                }
            }
        }
        panic!("the stream ended");
    })
    .await
    .expect("the awaited event in time");
    events
}

#[tokio::test]
async fn the_user_event_stream_carries_only_my_jobs_and_resumes() {
    let app = TestApp::start().await;
    let ann = Web::new(app.http_addr);
    ann.signup("ann@example.com", "a long enough password")
        .await;
    let bob = Web::new(app.http_addr);
    bob.signup("bob@example.com", "a long enough password")
        .await;
    let ann_file = ann.upload("a.jpg", test_jpeg(300, 200, None)).await;
    let bob_file = bob.upload("b.jpg", test_jpeg(300, 200, None)).await;

    let stream = ann.get("/events").await;
    assert_eq!(stream.status(), StatusCode::OK);
    assert_eq!(stream.headers()["content-type"], "text/event-stream");
    let bob_job = bob.start_thumbnail(&bob_file, "50").await;
    let ann_job = ann.start_thumbnail(&ann_file, "50").await;
    let seen = read_until(stream, |v| {
        v["id"] == ann_job.as_str() && v["final"] == true
    })
    .await;
    assert!(
        seen.iter().all(|(_, v)| v["id"] == ann_job.as_str()),
        "only ann's job: {seen:?}"
    );
    assert!(!seen.iter().any(|(_, v)| v["id"] == bob_job.as_str()));
    let first_id = seen[0].0.clone();
    assert!(
        first_id.parse::<i64>().is_ok(),
        "event ids are update times: {first_id:?}"
    );

    // Reconnecting with the first event's id replays what changed since: the end state.
    let again = ann
        .http
        .get(ann.url("/events"))
        .header("last-event-id", &first_id)
        .send()
        .await
        .unwrap();
    let replay = read_until(again, |v| v["id"] == ann_job.as_str() && v["final"] == true).await;
    assert_eq!(replay.last().unwrap().1["state"], "succeeded");

    // The id really is where the stream resumes: from a point after every change so far,
    // an unfinished job is not replayed (a fresh stream would start with it), and the
    // first event is its next change.
    let token = ann.create_token("watcher").await;
    let ann_grpc = Client::connect(app.grpc_addr, Some(&token)).await;
    let mut waiting = submit(sleep_params(1), &[]);
    waiting.not_before = Some(prost_types::Timestamp {
        seconds: 4_000_000_000,
        nanos: 0,
    });
    let waiting = ann_grpc.submit(waiting).await.unwrap();
    let fresh = read_until(ann.get("/events").await, |v| v["id"] == waiting.id.as_str()).await;
    let latest: i64 = fresh.last().unwrap().0.parse().unwrap();
    let resumed = ann
        .http
        .get(ann.url("/events"))
        .header("last-event-id", (latest + 1).to_string())
        .send()
        .await
        .unwrap();
    ann_grpc.cancel(&waiting.id).await.unwrap();
    let after = read_until(resumed, |v| v["id"] == waiting.id.as_str()).await;
    assert_eq!(
        after.len(),
        1,
        "nothing replayed from before the id: {after:?}"
    );
    assert_eq!(after[0].1["state"], "cancelled", "{after:?}");
    app.stop().await;
}

#[tokio::test]
async fn the_admin_console_shows_every_users_jobs_queues_and_workers_and_retries() {
    let app = TestApp::start().await;
    let user = Web::new(app.http_addr);
    user.signup("cara@example.com", "a long enough password")
        .await;
    let good = user.upload("good.jpg", test_jpeg(100, 100, None)).await;
    let bad = user
        .upload("bad.jpg", b"\xff\xd8\xff\xe0 not really a jpeg".to_vec())
        .await;
    let ok_job = user.start_thumbnail(&good, "20").await;
    let bad_job = user.start_thumbnail(&bad, "20").await;
    for j in [&ok_job, &bad_job] {
        user.events_until_final(&format!("/jobs/{j}/events"), None)
            .await;
    }
    assert_eq!(user.get("/admin").await.status(), StatusCode::FORBIDDEN);

    let admin = Web::new(app.http_addr);
    let password = &app.admin_password;
    let r = admin
        .post(
            "/signin",
            "/signin",
            &[("email", "admin@localhost"), ("password", password.trim())],
        )
        .await;
    assert_eq!(
        r.status(),
        StatusCode::SEE_OTHER,
        "the first-start admin signs in"
    );
    let page = admin.text("/admin").await;
    accessible("admin", &page);
    assert!(
        page.contains(&ok_job) && page.contains(&bad_job),
        "every user's jobs"
    );
    assert!(page.contains(">media<"), "queues listed");
    assert!(
        !page.contains("No worker has reported in recently"),
        "a worker listed"
    );
    let failed = admin.text("/admin?state=failed").await;
    assert!(failed.contains(&bad_job));
    let all_jobs = failed.split("<h2>All jobs</h2>").nth(1).unwrap();
    assert!(!all_jobs.contains(&ok_job), "the state filter applies");
    assert!(
        page.contains("Recent failures") && page.contains(&format!("/admin/jobs/{bad_job}/retry"))
    );
    let r = admin
        .post("/admin", &format!("/admin/jobs/{bad_job}/retry"), &[])
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let events = user
        .events_until_final(&format!("/jobs/{bad_job}/events"), None)
        .await;
    let last = events.last().unwrap();
    assert_eq!(
        last["state"], "failed",
        "retried and failed again: {events:?}"
    );
    assert!(last["version"].as_u64() > Some(3));
    app.stop().await;
}
