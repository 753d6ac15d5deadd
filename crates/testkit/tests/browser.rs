//! Drives the real headless Chromium through chromedriver: no mocks.

use std::path::Path;

use forklift_testkit::browser::{self, Browser, BrowserOptions};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const PAGE: &str = r#"<!doctype html>
<html><head><title>static</title></head>
<body>
<h1 id="greeting" class="big">Hello</h1>
<form id="form" onsubmit="return false">
  <input id="name" name="name" value="">
  <button id="go" type="button">Go</button>
</form>
<div id="out"></div>
<a id="next" href="next.html">next</a>
<noscript><p id="nojs">JavaScript is off</p></noscript>
<script>
  document.title = 'scripted';
  const p = document.createElement('p');
  p.id = 'added';
  p.textContent = 'added by script';
  document.body.appendChild(p);
  document.getElementById('go').addEventListener('click', () => {
    const name = document.getElementById('name').value;
    setTimeout(() => { document.getElementById('out').textContent = 'Hello, ' + name + '!'; }, 100);
  });
</script>
</body></html>"#;

/// Writes the test page (and a second page it links to) and returns the page's file:// URL.
fn write_pages(dir: &Path) -> String {
    std::fs::write(dir.join("index.html"), PAGE).unwrap();
    std::fs::write(
        dir.join("next.html"),
        "<!doctype html><title>next</title><p id=\"here\">next page</p>",
    )
    .unwrap();
    format!("file://{}", dir.join("index.html").display())
}

#[tokio::test]
async fn javascript_on_runs_scripts_and_forms_work() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let url = write_pages(dir.path());
    let b = Browser::start(BrowserOptions {
        javascript: true,
        download_dir: None,
    })
    .await;
    b.goto(&url).await?;
    assert_eq!(b.current_url().await?, url);
    assert_eq!(b.wait_for("#added").await?.text().await?, "added by script");
    assert_eq!(b.title().await?, "scripted");
    assert!(b.source().await?.contains("id=\"greeting\""));
    assert!(b.find_all("#nojs").await?.is_empty());

    let heading = b.find("#greeting").await?;
    assert_eq!(heading.attr("class").await?.as_deref(), Some("big"));
    assert_eq!(heading.attr("data-missing").await?, None);
    assert!(heading.is_displayed().await?);

    let form = b.find("#form").await?;
    let name = form.find("input[name=name]").await?;
    name.send_keys("Grace").await?;
    name.clear().await?;
    name.send_keys("Ada").await?;
    assert_eq!(name.property("value").await?, json!("Ada"));
    form.find("#go").await?.click().await?;
    let out = b.wait_for_text("#out", "Hello, Ada").await?;
    assert_eq!(out.text().await?, "Hello, Ada!");

    let sum = b
        .execute(
            "return arguments[0] + arguments[1];",
            vec![json!(2), json!(3)],
        )
        .await?;
    assert_eq!(sum, json!(5));
    let tag = b
        .execute("return arguments[0].tagName;", vec![heading.as_arg()])
        .await?;
    assert_eq!(tag, json!("H1"));

    // The closure form, and its error message on time-out.
    let found = b
        .wait_until("one paragraph", async |b| {
            Ok((b.find_all("p").await?.len() == 1).then_some("one"))
        })
        .await?;
    assert_eq!(found, "one");
    let mut b = b;
    b.set_timeout(std::time::Duration::from_millis(300));
    let err = b.wait_for("#never").await.unwrap_err().to_string();
    assert!(err.contains("\"#never\"") && err.contains(&url), "{err}");

    b.find("#next").await?.click().await?;
    b.wait_for("#here").await?;
    b.back().await?;
    b.wait_for("#greeting").await?;
    assert_eq!(b.current_url().await?, url);
    b.execute("window.marker = 1;", vec![]).await?;
    b.refresh().await?;
    b.wait_for("#added").await?;
    assert_eq!(
        b.execute("return window.marker === undefined;", vec![])
            .await?,
        json!(true)
    );
    b.quit().await
}

#[tokio::test]
async fn javascript_off_leaves_the_page_static() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let url = write_pages(dir.path());
    let b = Browser::start(BrowserOptions {
        javascript: false,
        download_dir: None,
    })
    .await;
    b.goto(&url).await?;
    // <noscript> renders only with JavaScript off: the proof that the preference took.
    let nojs = b.wait_for("#nojs").await?;
    assert!(nojs.is_displayed().await?);
    assert_eq!(b.title().await?, "static");
    assert!(b.find_all("#added").await?.is_empty());
    b.quit().await
}

/// A one-page HTTP server: `/` links to `/x.txt`, served as an attachment.
async fn serve() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut conn, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match conn.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&head);
                let path = head.split(' ').nth(1).unwrap_or("/");
                let (headers, body) = match path {
                    "/" => (
                        "Content-Type: text/html\r\nSet-Cookie: served=yes; Path=/\r\n",
                        "<!doctype html><title>files</title><a id=\"dl\" href=\"/x.txt\">get it</a>",
                    ),
                    "/x.txt" => (
                        "Content-Type: text/plain\r\nContent-Disposition: attachment; filename=\"x.txt\"\r\n",
                        "hello from forklift\n",
                    ),
                    _ => ("Content-Type: text/plain\r\n", "not found"),
                };
                let status = if body == "not found" {
                    "404 Not Found"
                } else {
                    "200 OK"
                };
                let reply = format!(
                    "HTTP/1.1 {status}\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = conn.write_all(reply.as_bytes()).await;
                let _ = conn.shutdown().await;
            });
        }
    });
    format!("http://{addr}/")
}

#[tokio::test]
async fn downloads_and_cookies_over_http() -> anyhow::Result<()> {
    let downloads = tempfile::tempdir()?;
    let url = serve().await;
    let options = BrowserOptions {
        javascript: true,
        download_dir: Some(downloads.path().to_owned()),
    };
    let b = Browser::start(options).await;
    b.goto(&url).await?;
    assert_eq!(b.title().await?, "files");

    assert_eq!(
        b.cookies().await?,
        vec![("served".to_owned(), "yes".to_owned())]
    );
    b.add_cookie("flavour", "oat").await?;
    let mut cookies = b.cookies().await?;
    cookies.sort();
    assert_eq!(
        cookies,
        [("flavour", "oat"), ("served", "yes")].map(|(n, v)| (n.to_owned(), v.to_owned()))
    );

    b.find("#dl").await?.click().await?;
    let file = b.wait_for_download("txt").await?;
    assert_eq!(file, downloads.path().join("x.txt"));
    assert_eq!(std::fs::read_to_string(&file)?, "hello from forklift\n");
    b.quit().await
}

fn names(processes: &[(u32, String)]) -> Vec<&str> {
    processes.iter().map(|(_, name)| name.as_str()).collect()
}

#[tokio::test]
async fn quit_leaves_no_process_behind() -> anyhow::Result<()> {
    let b = Browser::start(BrowserOptions::default()).await;
    b.goto("about:blank").await?;
    let id = b.id().to_owned();
    let running = browser::processes(&id);
    assert!(names(&running).contains(&"chromedriver"), "{running:?}");
    assert!(names(&running).contains(&"chromium"), "{running:?}");
    b.quit().await?;
    assert_eq!(browser::processes(&id), []);
    for (pid, name) in running {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let state = stat
            .rsplit_once(") ")
            .map(|(_, rest)| &rest[..1])
            .unwrap_or("gone");
        assert!(
            matches!(state, "gone" | "Z"),
            "{name} ({pid}) is still {state}"
        );
    }
    Ok(())
}

#[tokio::test]
async fn a_panicking_test_leaves_no_process_behind() {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let task = tokio::spawn(async move {
        let b = Browser::start(BrowserOptions::default()).await;
        b.goto("about:blank").await.unwrap();
        tx.send((b.id().to_owned(), browser::processes(b.id())))
            .unwrap();
        panic!("the test failed");
    });
    assert!(task.await.unwrap_err().is_panic());
    let (id, running) = rx.await.unwrap();
    assert!(names(&running).contains(&"chromium"), "{running:?}");
    assert_eq!(browser::processes(&id), []);
}
