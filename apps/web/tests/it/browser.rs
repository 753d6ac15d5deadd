//! The whole flow in a real headless Chromium: sign up, upload an image, start
//! thumbnails, watch the job finish, download the result — once with JavaScript (live
//! progress without reloading, drag-and-drop markup present) and once without (form
//! posts and reloads only).

use crate::support::{
    Client, DEADLINE, TestApp, blocking_sleep_params, sleep_params, submit, test_jpeg,
};
use forklift_testkit::browser::{Browser, BrowserOptions};

async fn start(javascript: bool, downloads: &std::path::Path) -> Browser {
    let mut b = Browser::start(BrowserOptions {
        javascript,
        download_dir: Some(downloads.to_owned()),
    })
    .await;
    b.set_timeout(DEADLINE);
    b
}

/// Signs up on the page and uploads `photo` through the file input; returns the
/// file page's URL.
async fn sign_up_and_upload(
    b: &Browser,
    base: &str,
    email: &str,
    photo: &std::path::Path,
    javascript: bool,
) -> String {
    b.goto(&format!("{base}/")).await.unwrap();
    b.find("a[href='/signup']")
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    b.wait_for("#email")
        .await
        .unwrap()
        .send_keys(email)
        .await
        .unwrap();
    b.find("#password")
        .await
        .unwrap()
        .send_keys("a long enough password")
        .await
        .unwrap();
    b.find("form button[type=submit]")
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    b.wait_for_text("h1", "Dashboard").await.unwrap();
    // Our script enhances the upload form into a drop zone; without JavaScript it
    // stays a plain file input.
    let zone = b.find("form[data-dropzone]").await.unwrap();
    if javascript {
        b.wait_until("the drop zone enhanced", async |b| {
            Ok(b.find("form[data-dropzone][data-dz-ready]").await.ok())
        })
        .await
        .unwrap();
    } else {
        assert_eq!(
            zone.attr("data-dz-ready").await.unwrap(),
            None,
            "no script ran"
        );
    }
    b.find("#file")
        .await
        .unwrap()
        .send_keys(photo.to_str().unwrap())
        .await
        .unwrap();
    b.find("form.upload button[type=submit]")
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    b.wait_for_text("h1", "photo.jpg").await.unwrap();
    b.current_url().await.unwrap()
}

/// Checks the downloaded thumbnail: a JPEG 160 pixels wide.
fn check_download(path: &std::path::Path) {
    let img = image::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!((img.width(), img.height()), (160, 120));
}

/// Takes the one thread of the CPU pool (`--cpu-threads 1`) until the returned job is
/// cancelled: a thumbnail job started meanwhile runs up to its decoding and waits
/// there, unfinished, however long the test takes.
async fn hold_the_cpu_pool(app: &TestApp) -> String {
    let c = &app.client;
    let job = c
        .submit(submit(blocking_sleep_params(600_000), &[]))
        .await
        .unwrap();
    // Its last step before it takes the pool's thread.
    c.watch_until(&job.id, |j| j.progress_message == "waiting on the CPU pool")
        .await;
    job.id
}

#[tokio::test]
async fn with_javascript_progress_is_live_and_the_result_downloads() {
    let app = TestApp::start_with(&["--cpu-threads", "1"]).await;
    let base = format!("http://{}", app.http_addr);
    let dir = tempfile::tempdir().unwrap();
    let photo = dir.path().join("photo.jpg");
    std::fs::write(&photo, test_jpeg(1600, 1200, None)).unwrap();
    let downloads = dir.path().join("downloads");
    std::fs::create_dir_all(&downloads).unwrap();
    let b = start(true, &downloads).await;

    let file_page = sign_up_and_upload(&b, &base, "js@example.com", &photo, true).await;
    assert!(file_page.contains("/files/"));
    assert!(
        b.find(".preview img")
            .await
            .unwrap()
            .is_displayed()
            .await
            .unwrap()
    );
    b.find("#image_thumbnail-width")
        .await
        .unwrap()
        .clear()
        .await
        .unwrap();
    b.find("#image_thumbnail-width")
        .await
        .unwrap()
        .send_keys("160")
        .await
        .unwrap();
    let blocker = hold_the_cpu_pool(&app).await;
    b.find("form[aria-labelledby=image_thumbnail-title] button[type=submit]")
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    b.wait_for("#job").await.unwrap();
    // The page opened on a job that cannot finish yet, and follows its event stream.
    let state = b
        .find("#job [data-field=state]")
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(state == "queued" || state == "running", "state {state}");
    b.wait_for("body[data-live=on]").await.unwrap();
    // Mark this page: a reload would lose the mark.
    b.execute("window.__forkliftMark = 42; return true;", vec![])
        .await
        .unwrap();
    // Now let the job finish: only the live stream can tell the page.
    app.client.cancel(&blocker).await.unwrap();
    b.wait_for_text("#job [data-field=state]", "succeeded")
        .await
        .unwrap();
    // The outputs appear without a reload.
    let link = b.wait_for("#job a.download").await.unwrap();
    let mark = b
        .execute("return window.__forkliftMark === 42;", vec![])
        .await
        .unwrap();
    assert_eq!(mark, serde_json::json!(true), "the page was not reloaded");
    assert_eq!(
        b.find("#job progress")
            .await
            .unwrap()
            .property("value")
            .await
            .unwrap(),
        serde_json::json!(100)
    );
    link.click().await.unwrap();
    let got = b.wait_for_download("jpg").await.unwrap();
    check_download(&got);

    // The dashboard follows the user's jobs live — a job started elsewhere (here over
    // the API) appears on it without a reload.
    b.goto(&format!("{base}/dashboard")).await.unwrap();
    b.wait_for("body[data-live=on]").await.unwrap();
    b.execute("window.__forkliftMark = 43; return true;", vec![])
        .await
        .unwrap();
    let (user, _) = app
        .accounts
        .credentials("js@example.com")
        .await
        .unwrap()
        .expect("the account");
    let (token, hash) = forklift_accounts::new_token();
    app.accounts
        .create_api_token(user.id, "elsewhere", &hash)
        .await
        .unwrap();
    let api = Client::connect(app.grpc_addr, Some(&token)).await;
    let job = api.submit(submit(sleep_params(1), &[])).await.unwrap();
    b.wait_for(&format!("tr[data-job-id='{}']", job.id))
        .await
        .unwrap();
    b.wait_for_text(
        &format!("tr[data-job-id='{}'] [data-field=state]", job.id),
        "succeeded",
    )
    .await
    .unwrap();
    let mark = b
        .execute("return window.__forkliftMark === 43;", vec![])
        .await
        .unwrap();
    assert_eq!(
        mark,
        serde_json::json!(true),
        "the dashboard was not reloaded"
    );

    // A file dropped on the drop zone is uploaded (the drop is dispatched by script:
    // WebDriver cannot drag files from the desktop).
    b.execute(
        "const dt = new DataTransfer();
         dt.items.add(new File(['a,b\\n1,2\\n'], 'dropped.csv', { type: 'text/csv' }));
         const zone = document.querySelector('form[data-dropzone] .dropzone');
         zone.dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }));
         return true;",
        vec![],
    )
    .await
    .unwrap();
    b.wait_for_text("h1", "dropped.csv").await.unwrap();
    b.quit().await.unwrap();
    app.stop().await;
}

#[tokio::test]
async fn without_javascript_forms_and_reloads_do_everything() {
    let app = TestApp::start().await;
    let base = format!("http://{}", app.http_addr);
    let dir = tempfile::tempdir().unwrap();
    let photo = dir.path().join("photo.jpg");
    std::fs::write(&photo, test_jpeg(1600, 1200, None)).unwrap();
    let downloads = dir.path().join("downloads");
    std::fs::create_dir_all(&downloads).unwrap();
    let b = start(false, &downloads).await;

    sign_up_and_upload(&b, &base, "nojs@example.com", &photo, false).await;
    b.find("#image_thumbnail-width")
        .await
        .unwrap()
        .clear()
        .await
        .unwrap();
    b.find("#image_thumbnail-width")
        .await
        .unwrap()
        .send_keys("160")
        .await
        .unwrap();
    b.find("form[aria-labelledby=image_thumbnail-title] button[type=submit]")
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    b.wait_for("#job").await.unwrap();
    // Reload (the page's own Refresh link) until the job is done, like a person would.
    b.wait_until("the job to succeed after reloads", async |b| {
        // Mid-navigation, Chromium may answer for the page being left: look again.
        let Ok(state) = async { b.find("#job [data-field=state]").await?.text().await }.await
        else {
            return Ok(None);
        };
        if state == "succeeded" {
            return Ok(Some(()));
        }
        assert!(state == "queued" || state == "running", "state {state}");
        let _ = async { b.find("#job a[href^='/jobs/']").await?.click().await }.await;
        Ok(None)
    })
    .await
    .unwrap();
    b.find("#job a.download")
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let got = b.wait_for_download("jpg").await.unwrap();
    check_download(&got);
    // Sign out by the form; the dashboard then asks to sign in.
    b.find("form[action='/signout'] button")
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    // The sign-out lands on the front page; going on before it has would race the
    // form's own navigation.
    b.wait_for_text("h1", "Upload a file").await.unwrap();
    b.goto(&format!("{base}/dashboard")).await.unwrap();
    b.wait_for_text("h1", "Sign in").await.unwrap();
    b.quit().await.unwrap();
    app.stop().await;
}

/// How far the page sticks out beyond the viewport's width, in CSS pixels (0 when it
/// fits), the viewport's width, and the elements that reach past it.
async fn overflow(b: &Browser) -> (i64, i64, serde_json::Value) {
    let v = b
        .execute(
            "const d = document.documentElement;
             const past = [...document.body.querySelectorAll('*')]
               .filter(e => e.getBoundingClientRect().right > d.clientWidth + 0.5)
               .slice(0, 8)
               .map(e => e.tagName.toLowerCase() + (e.id ? '#' + e.id : '')
                 + (typeof e.className === 'string' && e.className.trim()
                    ? '.' + e.className.trim().split(/\\s+/).join('.') : ''));
             return [d.scrollWidth - d.clientWidth, window.innerWidth, past];",
            vec![],
        )
        .await
        .unwrap();
    (v[0].as_i64().unwrap(), v[1].as_i64().unwrap(), v[2].clone())
}

#[tokio::test]
async fn every_page_fits_a_phone_and_a_laptop_screen() {
    let app = TestApp::start().await;
    let base = format!("http://{}", app.http_addr);
    let dir = tempfile::tempdir().unwrap();
    // Wide content: a long column name, long values, a column of every common type.
    let mut csv =
        String::from("id,amount,when,a_rather_long_column_name_for_a_narrow_screen,city\n");
    for i in 0..300 {
        csv.push_str(&format!(
            "{i},{}.25,2024-03-{:02},{},{}\n",
            i % 40,
            i % 28 + 1,
            "some text long enough to need wrapping on a phone ".repeat(1 + i % 2),
            ["Oslo", "Lima", "Ulaanbaatar"][i % 3]
        ));
    }
    let data = dir.path().join("data.csv");
    std::fs::write(&data, csv).unwrap();
    let downloads = dir.path().join("downloads");
    std::fs::create_dir_all(&downloads).unwrap();
    let b = start(true, &downloads).await;

    // The admin sees every page a user sees, and the admin console.
    b.goto(&format!("{base}/signin")).await.unwrap();
    b.find("#email")
        .await
        .unwrap()
        .send_keys("admin@localhost")
        .await
        .unwrap();
    b.find("#password")
        .await
        .unwrap()
        .send_keys(&app.admin_password)
        .await
        .unwrap();
    b.find("form button[type=submit]")
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    b.wait_for_text("h1", "Dashboard").await.unwrap();
    b.find("#file")
        .await
        .unwrap()
        .send_keys(data.to_str().unwrap())
        .await
        .unwrap();
    b.find("form.upload button[type=submit]")
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    b.wait_for_text("h1", "data.csv").await.unwrap();
    let file_page = b.current_url().await.unwrap();
    b.find("form:has(input[value='data.profile']) button[type=submit]")
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    b.wait_for("#job").await.unwrap();
    b.wait_for_text("#job [data-field=state]", "succeeded")
        .await
        .unwrap();
    let job_page = b.current_url().await.unwrap();
    let report = format!("{job_page}/report");
    // The report's column headings: the name, and the type apart from it.
    b.goto(&report).await.unwrap();
    for (i, (name, kind)) in [("id", "integer"), ("amount", "float"), ("when", "date")]
        .into_iter()
        .enumerate()
    {
        let heading = b.find(&format!("#col-{i} h3")).await.unwrap();
        assert_eq!(heading.text().await.unwrap(), name);
        let tag = b.find(&format!("#col-{i} .type")).await.unwrap();
        assert_eq!(tag.text().await.unwrap(), kind);
        // Apart: the type starts right of the name's text, or below it.
        let apart = b
            .execute(
                "const r = document.createRange();
                 r.selectNodeContents(arguments[0]);
                 const name = r.getBoundingClientRect();
                 const tag = arguments[1].getBoundingClientRect();
                 return tag.left >= name.right + 4 || tag.top >= name.bottom;",
                vec![heading.as_arg(), tag.as_arg()],
            )
            .await
            .unwrap();
        assert_eq!(apart, serde_json::json!(true), "{name}'s type is apart");
    }

    // A token, shown once on the page that created it.
    b.goto(&format!("{base}/tokens")).await.unwrap();
    b.find("#name")
        .await
        .unwrap()
        .send_keys("a token for the nightly import of the sales data")
        .await
        .unwrap();
    b.find("form[action='/tokens'] button[type=submit]")
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    b.wait_for("[data-copy]").await.unwrap();

    let mut too_wide = Vec::new();
    for width in [390, 1366] {
        b.set_viewport(width, 900).await.unwrap();
        // The page with the new token is a POST's answer: measured where it stands.
        let (over, inner, past) = overflow(&b).await;
        assert_eq!(inner, i64::from(width), "the viewport's width");
        if over > 0 {
            too_wide.push(format!(
                "the new token's page at {width}px: {over}px, {past}"
            ));
        }
        for page in [
            format!("{base}/"),
            format!("{base}/dashboard"),
            format!("{base}/files"),
            file_page.clone(),
            format!("{base}/jobs"),
            job_page.clone(),
            report.clone(),
            format!("{base}/tokens"),
            format!("{base}/admin"),
        ] {
            b.goto(&page).await.unwrap();
            b.wait_for("main h1").await.unwrap();
            let (over, inner, past) = overflow(&b).await;
            assert_eq!(inner, i64::from(width), "{page}: the viewport's width");
            if over > 0 {
                too_wide.push(format!("{page} at {width}px: {over}px, {past}"));
            }
        }
    }
    assert!(
        too_wide.is_empty(),
        "pages wider than the screen:\n{}",
        too_wide.join("\n")
    );

    b.quit().await.unwrap();
    app.stop().await;
}
