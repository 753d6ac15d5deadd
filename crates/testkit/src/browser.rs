//! A small W3C WebDriver client driving a headless Chromium through `chromedriver`.

use std::fmt::Display;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use reqwest::Method;
use serde_json::{Value, json};

const INSTALL: &str =
    "install chromium and chromium-driver (apt-get install chromium chromium-driver)";
/// The key under which WebDriver identifies an element in JSON.
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";
const POLL: Duration = Duration::from_millis(50);

/// How to start the browser.
#[derive(Debug, Clone)]
pub struct BrowserOptions {
    pub javascript: bool,
    /// Where downloads go (without a prompt); needed for [`Browser::wait_for_download`].
    pub download_dir: Option<PathBuf>,
}

impl Default for BrowserOptions {
    fn default() -> Self {
        BrowserOptions {
            javascript: true,
            download_dir: None,
        }
    }
}

/// An error the WebDriver server answered with (`error` is e.g. "no such element").
#[derive(Debug)]
pub struct WebDriverError {
    pub error: String,
    pub message: String,
}

impl Display for WebDriverError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "WebDriver error \"{}\": {}", self.error, self.message)
    }
}

impl std::error::Error for WebDriverError {}

/// Whether `e` is a WebDriver "no such element" (or stale element) error: worth polling on.
fn is_missing(e: &anyhow::Error) -> bool {
    let missing = ["no such element", "stale element reference"];
    e.downcast_ref::<WebDriverError>()
        .is_some_and(|w| missing.contains(&w.error.as_str()))
}

#[derive(Debug)]
struct Session {
    http: reqwest::Client,
    /// `http://127.0.0.1:PORT/session/ID`
    base: String,
}

impl Session {
    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Result<Value> {
        let url = format!("{}{path}", self.base);
        let mut req = self.http.request(method.clone(), &url);
        if let Some(body) = body {
            req = req.json(&body);
        }
        let what = || format!("WebDriver {method} {url}");
        let resp = req.send().await.with_context(what)?;
        let status = resp.status();
        let mut v: Value = resp.json().await.with_context(what)?;
        let value = v["value"].take();
        if status.is_success() {
            return Ok(value);
        }
        let text = |k: &str| value[k].as_str().unwrap_or_default().to_owned();
        let error = WebDriverError {
            error: text("error"),
            message: text("message"),
        };
        Err(anyhow::Error::new(error).context(format!("{} ({status})", what())))
    }
    async fn get(&self, path: &str) -> Result<Value> {
        self.call(Method::GET, path, None).await
    }
    async fn text(&self, path: &str) -> Result<String> {
        match self.get(path).await? {
            Value::String(s) => Ok(s),
            v => bail!("expected a string from WebDriver {path}, got {v}"),
        }
    }
    async fn post(&self, path: &str, body: Value) -> Result<Value> {
        self.call(Method::POST, path, Some(body)).await
    }
    async fn act(&self, path: &str, body: Value) -> Result<()> {
        self.post(path, body).await.map(drop)
    }
    /// Finds the first (`all == false`) or all elements matching `css` within `scope`.
    async fn find(self: &Arc<Self>, scope: &str, css: &str, all: bool) -> Result<Vec<Element>> {
        let path = format!("{scope}/element{}", if all { "s" } else { "" });
        let found = self
            .post(&path, json!({"using": "css selector", "value": css}))
            .await;
        let v = found.with_context(|| format!("find {css:?}"))?;
        let list = if all {
            v.as_array().cloned().unwrap_or_default()
        } else {
            vec![v]
        };
        list.iter().map(|e| Element::from_json(self, e)).collect()
    }
}

/// A headless Chromium under its own `chromedriver`; both are killed on drop.
#[derive(Debug)]
pub struct Browser {
    session: Arc<Session>,
    /// The process-group leader: a shell that runs chromedriver and kills the group once
    /// the test process is gone.
    watchdog: Child,
    id: String,
    timeout: Duration,
    download_dir: Option<PathBuf>,
    /// Chromium's profile and chromedriver's log.
    dir: tempfile::TempDir,
}

impl Browser {
    /// Starts chromedriver on a free port and opens a session. Panics if that fails.
    pub async fn start(options: BrowserOptions) -> Browser {
        let driver = program("FORKLIFT_CHROMEDRIVER", &["chromedriver"]);
        let chromium = program("FORKLIFT_CHROMIUM", &["chromium", "chromium-browser"]);
        let dir = tempfile::TempDir::with_prefix("forklift-chromium").expect("temp dir");
        let log = dir.path().join("chromedriver.log");
        let out = std::fs::File::create(&log).expect("chromedriver log");
        let port = crate::free_port();
        // The shell leads a process group holding chromedriver and Chromium (Chromium's
        // crash handlers leave the group, but exit with Chromium). Should the test process
        // die without dropping the browser, the shell kills the group.
        let script = "export FORKLIFT_BROWSER_ID=$$\n\"$1\" --port=\"$2\" & drv=$!\n\
            while kill -0 \"$3\" 2>/dev/null && kill -0 $drv 2>/dev/null; do sleep 1; done\n\
            kill -KILL 0";
        let watchdog = Command::new("sh")
            .args(["-c", script, "sh"])
            .arg(&driver)
            .args([port.to_string(), std::process::id().to_string()])
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("chromedriver log"))
            .stderr(out)
            .process_group(0)
            .spawn()
            .expect("start sh for chromedriver");
        let http = reqwest::Client::builder().timeout(Duration::from_secs(120));
        let http = http.build().expect("HTTP client");
        let mut browser = Browser {
            session: session(&http, format!("http://127.0.0.1:{port}")),
            id: watchdog.id().to_string(),
            watchdog,
            timeout: Duration::from_secs(30),
            download_dir: options.download_dir.clone(),
            dir,
        };
        let driver_log = || std::fs::read_to_string(&log).unwrap_or_default();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let status = browser.session.get("/status").await;
            if status.is_ok_and(|v| v["ready"] == json!(true)) {
                break;
            }
            let exited = browser.watchdog.try_wait().ok().flatten().is_some();
            assert!(
                !exited && Instant::now() < deadline,
                "{} did not become ready on port {port} ({INSTALL}); its log:\n{}",
                driver.display(),
                driver_log()
            );
            tokio::time::sleep(POLL).await;
        }
        let mut prefs = json!({});
        if !options.javascript {
            prefs["profile.managed_default_content_settings.javascript"] = json!(2);
        }
        if let Some(dir) = &options.download_dir {
            prefs["download.default_directory"] = json!(dir);
            prefs["download.prompt_for_download"] = json!(false);
        }
        let profile = format!(
            "--user-data-dir={}",
            browser.dir.path().join("profile").display()
        );
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "timeouts": {"pageLoad": 60_000, "script": 30_000},
            "goog:chromeOptions": {
                "binary": chromium,
                "args": ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                         "--disable-gpu", "--window-size=1280,900", profile],
                "prefs": prefs,
            },
        }}});
        let created = browser.session.post("/session", caps).await;
        let Some(sid) = created.as_ref().ok().and_then(|v| v["sessionId"].as_str()) else {
            panic!(
                "chromedriver could not start {} ({INSTALL}): {created:?}; its log:\n{}",
                chromium.display(),
                driver_log()
            )
        };
        browser.session = session(&http, format!("http://127.0.0.1:{port}/session/{sid}"));
        browser
    }

    /// Identifies this browser's processes (its process group, also set as the
    /// `FORKLIFT_BROWSER_ID` environment variable); see [`processes`].
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The deadline of the `wait_*` methods (30 s unless set).
    pub fn set_timeout(&mut self, timeout: Duration) {
        self.timeout = timeout;
    }

    pub async fn goto(&self, url: &str) -> Result<()> {
        self.session.act("/url", json!({ "url": url })).await
    }
    pub async fn current_url(&self) -> Result<String> {
        self.session.text("/url").await
    }
    pub async fn title(&self) -> Result<String> {
        self.session.text("/title").await
    }
    pub async fn source(&self) -> Result<String> {
        self.session.text("/source").await
    }
    pub async fn find(&self, css: &str) -> Result<Element> {
        Ok(self.session.find("", css, false).await?.remove(0))
    }
    pub async fn find_all(&self, css: &str) -> Result<Vec<Element>> {
        self.session.find("", css, true).await
    }

    /// Polls `check` until it returns `Some`, an error, or the deadline passes.
    pub async fn wait_until<T>(
        &self,
        what: impl Display,
        mut check: impl AsyncFnMut(&Browser) -> Result<Option<T>>,
    ) -> Result<T> {
        let deadline = Instant::now() + self.timeout;
        loop {
            if let Some(found) = check(self).await? {
                return Ok(found);
            }
            if Instant::now() >= deadline {
                let url = self
                    .current_url()
                    .await
                    .unwrap_or_else(|e| format!("? ({e:#})"));
                bail!(
                    "timed out after {:?} waiting for {what} (at {url})",
                    self.timeout
                );
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Waits until an element matching `css` is present.
    pub async fn wait_for(&self, css: &str) -> Result<Element> {
        self.wait_until(format!("{css:?}"), async |b| match b.find(css).await {
            Err(e) if is_missing(&e) => Ok(None),
            found => found.map(Some),
        })
        .await
    }

    /// Waits until an element matching `css` is present and its text contains `text`.
    pub async fn wait_for_text(&self, css: &str, text: &str) -> Result<Element> {
        let what = format!("{css:?} to contain {text:?}");
        self.wait_until(what, async |b| {
            let el = match b.find(css).await {
                Err(e) if is_missing(&e) => return Ok(None),
                found => found?,
            };
            match el.text().await {
                Ok(t) if t.contains(text) => Ok(Some(el)),
                Err(e) if !is_missing(&e) => Err(e),
                _ => Ok(None),
            }
        })
        .await
    }

    /// Runs `script` (a function body; `arguments[i]` are `args`) and returns its result.
    pub async fn execute(&self, script: &str, args: Vec<Value>) -> Result<Value> {
        let body = json!({ "script": script, "args": args });
        self.session.post("/execute/sync", body).await
    }

    /// The current page's cookies as (name, value).
    pub async fn cookies(&self) -> Result<Vec<(String, String)>> {
        let v = self.session.get("/cookie").await?;
        let text = |c: &Value, k: &str| c[k].as_str().unwrap_or_default().to_owned();
        let list = v.as_array().into_iter().flatten();
        Ok(list.map(|c| (text(c, "name"), text(c, "value"))).collect())
    }

    /// Sets a cookie for the current page's domain.
    pub async fn add_cookie(&self, name: &str, value: &str) -> Result<()> {
        let body = json!({ "cookie": { "name": name, "value": value } });
        self.session.act("/cookie", body).await
    }

    /// Resizes the window so that the page's viewport (`innerWidth` × `innerHeight`) is
    /// `width` × `height` CSS pixels, as on a phone or a laptop.
    pub async fn set_viewport(&self, width: u32, height: u32) -> Result<()> {
        let body = json!({ "width": width, "height": height });
        self.session.act("/window/rect", body).await
    }

    pub async fn back(&self) -> Result<()> {
        self.session.act("/back", json!({})).await
    }

    pub async fn refresh(&self) -> Result<()> {
        self.session.act("/refresh", json!({})).await
    }

    /// Waits until a finished download ending in `.ext` is in the download directory (and
    /// no `.crdownload` is), and returns the newest such file.
    pub async fn wait_for_download(&self, ext: &str) -> Result<PathBuf> {
        let dir = self.download_dir.as_deref();
        let dir = dir.context("wait_for_download needs BrowserOptions::download_dir")?;
        let suffix = format!(".{ext}");
        let what = format!("a {suffix} download in {}", dir.display());
        self.wait_until(what, async |_| {
            let mut done = Vec::new();
            let entries = match std::fs::read_dir(dir) {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
                entries => entries?,
            };
            for entry in entries {
                let entry = entry?;
                let name = entry.file_name().to_string_lossy().into_owned();
                if name.ends_with(".crdownload") {
                    return Ok(None);
                }
                if name.ends_with(&suffix) && !name.starts_with('.') {
                    done.push((entry.metadata()?.modified()?, entry.path()));
                }
            }
            Ok(done.into_iter().max().map(|(_, path)| path))
        })
        .await
    }

    /// Ends the session, then (on drop) stops chromedriver and Chromium.
    pub async fn quit(self) -> Result<()> {
        self.session.call(Method::DELETE, "", None).await.map(drop)
    }
}

impl Drop for Browser {
    /// Kills the process group and waits (10 s at most) until every process is gone.
    fn drop(&mut self) {
        let group = format!("-{}", self.id);
        let mut kill = Command::new("kill");
        kill.args(["-KILL", "--", &group]).stderr(Stdio::null());
        let _ = kill.status();
        let _ = self.watchdog.wait();
        let deadline = Instant::now() + Duration::from_secs(10);
        while !processes(&self.id).is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// The live processes (pid, name) of the browser with this [`Browser::id`]: chromedriver,
/// Chromium and its helpers, found by process group or by the `FORKLIFT_BROWSER_ID`
/// variable in their environment (Chromium's crash handlers leave the group).
pub fn processes(id: &str) -> Vec<(u32, String)> {
    let needle = format!("FORKLIFT_BROWSER_ID={id}\0");
    let tagged = |pid: u32| {
        let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
        environ
            .windows(needle.len())
            .any(|w| w == needle.as_bytes())
    };
    let pids = std::fs::read_dir("/proc").into_iter().flatten();
    pids.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            let (name, rest) = stat.split_once(" (")?.1.rsplit_once(") ")?;
            // Zombies are dead (whoever adopted them reaps them). Chromium's children
            // overwrite their environment with their title: the group finds those.
            let alive = !rest.starts_with(['Z', 'X']);
            let ours = rest.split(' ').nth(2) == Some(id) || tagged(pid);
            (alive && ours).then(|| (pid, name.to_owned()))
        })
        .collect()
}

/// An element of the page, as found by [`Browser::find`] and the like.
#[derive(Debug, Clone)]
pub struct Element {
    session: Arc<Session>,
    id: String,
}

impl Element {
    fn from_json(session: &Arc<Session>, v: &Value) -> Result<Element> {
        let id = v[ELEMENT_KEY].as_str().context("not an element")?;
        let (session, id) = (session.clone(), id.to_owned());
        Ok(Element { session, id })
    }

    /// The element as an argument for [`Browser::execute`].
    pub fn as_arg(&self) -> Value {
        json!({ ELEMENT_KEY: self.id })
    }

    fn path(&self, what: &str) -> String {
        format!("/element/{}{what}", self.id)
    }

    async fn get(&self, what: &str) -> Result<Value> {
        self.session.get(&self.path(what)).await
    }

    async fn act(&self, what: &str, body: Value) -> Result<()> {
        self.session.act(&self.path(what), body).await
    }

    pub async fn click(&self) -> Result<()> {
        self.act("/click", json!({})).await
    }

    /// Types `text`; for a file input, `text` is the path of the file to choose.
    pub async fn send_keys(&self, text: &str) -> Result<()> {
        self.act("/value", json!({ "text": text })).await
    }

    pub async fn clear(&self) -> Result<()> {
        self.act("/clear", json!({})).await
    }

    /// The rendered text.
    pub async fn text(&self) -> Result<String> {
        self.session.text(&self.path("/text")).await
    }

    /// The attribute as written in the HTML, if present.
    pub async fn attr(&self, name: &str) -> Result<Option<String>> {
        let v = self.get(&format!("/attribute/{name}")).await?;
        Ok(v.as_str().map(str::to_owned))
    }

    /// The DOM property (e.g. an input's current `value`).
    pub async fn property(&self, name: &str) -> Result<Value> {
        self.get(&format!("/property/{name}")).await
    }

    pub async fn is_displayed(&self) -> Result<bool> {
        let v = self.get("/displayed").await?;
        v.as_bool().context("displayed: not a bool")
    }

    pub async fn find(&self, css: &str) -> Result<Element> {
        let mut found = self.session.find(&self.path(""), css, false).await?;
        Ok(found.remove(0))
    }

    pub async fn find_all(&self, css: &str) -> Result<Vec<Element>> {
        self.session.find(&self.path(""), css, true).await
    }
}

fn session(http: &reqwest::Client, base: String) -> Arc<Session> {
    let http = http.clone();
    Arc::new(Session { http, base })
}

/// The program named by the environment variable `var`, or the first of `names` in `PATH`.
fn program(var: &str, names: &[&str]) -> PathBuf {
    if let Some(path) = std::env::var_os(var) {
        return PathBuf::from(path);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    let dirs: Vec<PathBuf> = std::env::split_paths(&path).collect();
    let mut found = names
        .iter()
        .flat_map(|n| dirs.iter().map(move |d| d.join(n)));
    let found = found.find(|p| p.is_file());
    found.unwrap_or_else(|| panic!("{} not found in PATH: {INSTALL}", names[0]))
}
