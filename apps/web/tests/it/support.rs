//! Test support: start the app in-process on free ports, talk to it over gRPC, make
//! test images, wait on events with deadlines.

use forklift_rpc::v1 as pb;
use forklift_rpc::v1::admin_client::AdminClient;
use forklift_rpc::v1::files_client::FilesClient;
use forklift_rpc::v1::jobs_client::JobsClient;
use futures::StreamExt;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::TcpListener;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

/// Longest any test waits for something to happen.
pub const DEADLINE: Duration = Duration::from_secs(60);

/// Adds credentials to every call: `authorization: Bearer <token>`, or any headers.
#[derive(Clone)]
pub struct Bearer(pub Vec<(&'static str, MetadataValue<Ascii>)>);

impl Interceptor for Bearer {
    fn call(&mut self, mut req: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        for (k, v) in &self.0 {
            req.metadata_mut().insert(*k, v.clone());
        }
        Ok(req)
    }
}

/// A gRPC client acting as one user.
#[derive(Clone)]
pub struct Client {
    pub jobs: JobsClient<InterceptedService<Channel, Bearer>>,
    pub files: FilesClient<InterceptedService<Channel, Bearer>>,
    pub admin: AdminClient<InterceptedService<Channel, Bearer>>,
}

impl Client {
    pub async fn connect(addr: SocketAddr, token: Option<&str>) -> Self {
        let headers = token
            .map(|t| vec![("authorization", format!("Bearer {t}"))])
            .unwrap_or_default();
        Self::connect_with(addr, &headers).await
    }

    /// A client sending these metadata headers with every call.
    pub async fn connect_with(addr: SocketAddr, headers: &[(&'static str, String)]) -> Self {
        let channel = Channel::from_shared(format!("http://{addr}"))
            .unwrap()
            .connect()
            .await
            .expect("connect to gRPC");
        let bearer = Bearer(
            headers
                .iter()
                .map(|(k, v)| (*k, v.parse().unwrap()))
                .collect(),
        );
        Self {
            jobs: JobsClient::with_interceptor(channel.clone(), bearer.clone()),
            admin: AdminClient::with_interceptor(channel.clone(), bearer.clone()),
            files: FilesClient::with_interceptor(channel, bearer)
                .max_decoding_message_size(8 << 20),
        }
    }

    /// Uploads `bytes` in 64 KiB chunks.
    pub async fn upload(&self, name: &str, bytes: &[u8]) -> Result<pb::File, tonic::Status> {
        let mut msgs = vec![pb::UploadFileRequest {
            data: Some(pb::upload_file_request::Data::Metadata(pb::FileMetadata {
                name: name.into(),
                content_type: String::new(),
            })),
        }];
        for c in bytes.chunks(64 * 1024) {
            msgs.push(pb::UploadFileRequest {
                data: Some(pb::upload_file_request::Data::Chunk(c.to_vec())),
            });
        }
        self.files
            .clone()
            .upload_file(futures::stream::iter(msgs))
            .await
            .map(|r| r.into_inner())
    }

    /// Downloads a file: its metadata and content.
    pub async fn download(&self, id: &str) -> Result<(pb::File, Vec<u8>), tonic::Status> {
        let mut s = self
            .files
            .clone()
            .download_file(pb::DownloadFileRequest { id: id.into() })
            .await?
            .into_inner();
        let mut file = None;
        let mut content = Vec::new();
        while let Some(msg) = s.message().await? {
            match msg.data {
                Some(pb::download_file_response::Data::File(f)) => file = Some(f),
                Some(pb::download_file_response::Data::Chunk(c)) => content.extend(c),
                None => {}
            }
        }
        Ok((file.expect("metadata first"), content))
    }

    pub async fn submit(&self, req: pb::SubmitJobRequest) -> Result<pb::Job, tonic::Status> {
        self.jobs
            .clone()
            .submit_job(req)
            .await
            .map(|r| r.into_inner())
    }

    pub async fn cancel(&self, id: &str) -> Result<pb::Job, tonic::Status> {
        let req = pb::CancelJobRequest { id: id.into() };
        self.jobs
            .clone()
            .cancel_job(req)
            .await
            .map(|r| r.into_inner())
    }

    pub async fn retry(&self, id: &str) -> Result<pb::Job, tonic::Status> {
        let req = pb::RetryJobRequest { id: id.into() };
        self.jobs
            .clone()
            .retry_job(req)
            .await
            .map(|r| r.into_inner())
    }

    pub async fn list_jobs(
        &self,
        req: pb::ListJobsRequest,
    ) -> Result<pb::ListJobsResponse, tonic::Status> {
        self.jobs
            .clone()
            .list_jobs(req)
            .await
            .map(|r| r.into_inner())
    }

    pub async fn list_files(&self) -> Result<Vec<pb::File>, tonic::Status> {
        let req = pb::ListFilesRequest::default();
        self.files
            .clone()
            .list_files(req)
            .await
            .map(|r| r.into_inner().files)
    }

    pub async fn get_file(&self, id: &str) -> Result<pb::File, tonic::Status> {
        let req = pb::GetFileRequest { id: id.into() };
        self.files
            .clone()
            .get_file(req)
            .await
            .map(|r| r.into_inner())
    }

    pub async fn delete_file(&self, id: &str) -> Result<(), tonic::Status> {
        let req = pb::DeleteFileRequest { id: id.into() };
        self.files.clone().delete_file(req).await.map(|_| ())
    }

    pub async fn get(&self, id: &str) -> Result<pb::Job, tonic::Status> {
        self.jobs
            .clone()
            .get_job(pb::GetJobRequest { id: id.into() })
            .await
            .map(|r| r.into_inner())
    }

    /// Every update of a job until it is final (the first is the snapshot).
    pub async fn watch_to_end(&self, id: &str) -> Vec<pb::Job> {
        self.watch_until(id, is_final).await
    }

    /// Updates of a job until one matches `done` (included).
    pub async fn watch_until(&self, id: &str, done: impl Fn(&pb::Job) -> bool) -> Vec<pb::Job> {
        let mut s = self
            .jobs
            .clone()
            .watch_job(pb::WatchJobRequest { id: id.into() })
            .await
            .expect("watch")
            .into_inner();
        let mut seen = Vec::new();
        tokio::time::timeout(DEADLINE, async {
            while let Some(j) = s.next().await {
                let j = j.expect("watch item");
                let stop = done(&j);
                seen.push(j);
                if stop {
                    return;
                }
            }
        })
        .await
        .unwrap_or_else(|_| panic!("job {id} did not get there in time; saw {seen:#?}"));
        seen
    }
}

pub fn is_final(j: &pb::Job) -> bool {
    matches!(
        j.state(),
        pb::JobState::Succeeded | pb::JobState::Failed | pb::JobState::Cancelled
    )
}

/// Which topology the suite runs against, from `FORKLIFT_TEST_MODE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// One process: the web app hosting the jobs service (SQLite, in-process queue).
    Unified,
    /// Separate processes: jobs API, jobs worker and web app, over PostgreSQL and Redis.
    Extracted,
}

pub fn mode() -> Mode {
    match std::env::var("FORKLIFT_TEST_MODE").as_deref() {
        Ok("extracted") => Mode::Extracted,
        Ok("unified") | Err(_) => Mode::Unified,
        Ok(other) => panic!("FORKLIFT_TEST_MODE={other:?}: expected unified or extracted"),
    }
}

/// Forklift running on free ports with fresh data, in the suite's [`Mode`].
pub struct TestApp {
    pub grpc_addr: SocketAddr,
    pub http_addr: SocketAddr,
    pub client: Client,
    /// The job record (for checks the API does not offer).
    pub store: forklift_store::Store,
    /// Users, sessions and API tokens.
    pub accounts: forklift_accounts::Accounts,
    /// The web password of `admin@localhost`.
    pub admin_password: String,
    _dir: tempfile::TempDir,
    running: Running,
}

enum Running {
    InProcess {
        stop: tokio::sync::oneshot::Sender<()>,
        task: tokio::task::JoinHandle<anyhow::Result<()>>,
    },
    Processes {
        procs: Vec<Proc>,
        _redis: forklift_testkit::Redis,
        bucket: Bucket,
        dirs: DataDirs,
    },
}

/// Flags every test app starts with: debug kinds on, short retries and leases.
pub fn test_flags(data_dir: &std::path::Path) -> Vec<String> {
    [
        "--data-dir",
        data_dir.to_str().unwrap(),
        "--debug-kinds",
        "true",
        "--retry-base",
        "100ms",
        "--lease",
        "3s",
        "--reconcile-every",
        "1s",
        "--log",
        "warn",
        "--service-token",
        "test-service-secret",
    ]
    .map(String::from)
    .to_vec()
}

/// Path of one of the workspace's binaries (built beside `forklift-web`).
pub fn binary(name: &str) -> std::path::PathBuf {
    let path = std::path::Path::new(env!("CARGO_BIN_EXE_forklift-web")).with_file_name(name);
    assert!(
        path.exists(),
        "{} is missing: run `cargo build --workspace` first",
        path.display()
    );
    path
}

/// A child process of ours, stopped with SIGTERM (and reaped) on drop.
pub struct Proc {
    pub child: tokio::process::Child,
    /// The start-up banner's lines.
    pub banner: Vec<String>,
}

impl Proc {
    /// Starts `bin` with `args` and reads its banner up to the line starting with `last`.
    pub async fn start(
        bin: &std::path::Path,
        args: &[String],
        env: &[(String, String)],
        last: &str,
    ) -> Self {
        use tokio::io::AsyncBufReadExt;
        let mut child = tokio::process::Command::new(bin)
            .args(args)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", bin.display()));
        let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
        let mut banner = Vec::new();
        tokio::time::timeout(DEADLINE, async {
            while let Some(line) = lines.next_line().await.unwrap() {
                let done = line.trim_start().starts_with(last);
                banner.push(line);
                if done {
                    return;
                }
            }
            panic!(
                "{} exited during start-up; it printed {banner:?}",
                bin.display()
            );
        })
        .await
        .expect("start-up banner in time");
        // Keep draining stdout so the child never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Self { child, banner }
    }

    /// The address after `label` in the banner, e.g. `gRPC:` or `Web:`.
    pub fn addr(&self, label: &str) -> SocketAddr {
        let line = self
            .banner
            .iter()
            .find_map(|l| l.trim_start().strip_prefix(label))
            .unwrap_or_else(|| panic!("no {label} in {:?}", self.banner));
        let word = line.split_whitespace().next().unwrap();
        word.trim_start_matches("http://").parse().unwrap()
    }

    pub fn pid(&self) -> u32 {
        self.child.id().expect("running")
    }

    /// SIGTERM, then wait for the exit.
    pub async fn terminate(&mut self) -> std::process::ExitStatus {
        signal(self.pid(), "TERM");
        tokio::time::timeout(DEADLINE, self.child.wait())
            .await
            .expect("exit after SIGTERM in time")
            .unwrap()
    }

    /// SIGKILL, then wait.
    pub async fn kill9(&mut self) {
        self.child.start_kill().unwrap();
        self.child.wait().await.unwrap();
    }
}

pub fn signal(pid: u32, sig: &str) {
    let status = std::process::Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status()
        .unwrap();
    assert!(status.success());
}

/// Runs `forklift-jobs <common> admin <args>` to completion (an operator's command) and
/// returns what it printed on standard output, trimmed.
pub async fn admin_command(common: &[String], args: &[&str]) -> Result<String, String> {
    admin_command_with_input(common, args, "").await
}

/// [`admin_command`] with `input` on its standard input.
pub async fn admin_command_with_input(
    common: &[String],
    args: &[&str],
    input: &str,
) -> Result<String, String> {
    use tokio::io::AsyncWriteExt;
    let mut child = tokio::process::Command::new(binary("forklift-jobs"))
        .args(common)
        .arg("admin")
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run forklift-jobs admin");
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(input.as_bytes()).await.unwrap();
    drop(stdin);
    let out = tokio::time::timeout(DEADLINE, child.wait_with_output())
        .await
        .expect("forklift-jobs admin ends in time")
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).trim().to_owned();
    if out.status.success() {
        Ok(stdout)
    } else {
        Err(stderr)
    }
}

/// Creates an admin account and an API token with the operators' commands, as on a
/// fresh deployment; returns (password, token).
pub async fn create_admin(common: &[String], email: &str) -> (String, String) {
    let password = admin_command(common, &["create-user", "--email", email, "--admin"])
        .await
        .expect("create-user");
    let token = admin_command(common, &["create-token", "--email", email])
        .await
        .expect("create-token");
    (password, token)
}

/// A PostgreSQL role for the web app on the (migrated) database at `url`, with rights on
/// the accounts tables (`users`, `sessions`, `api_tokens`) and none on `jobs`, `files` or
/// `workers`; returns the database's URL for that role.
pub fn accounts_only_role(url: &str) -> String {
    let pg = forklift_testkit::Postgres::shared();
    let db = url.rsplit('/').next().unwrap();
    let role = format!("web_{db}");
    pg.query(
        url,
        &format!(
            "CREATE ROLE {role} LOGIN;
             GRANT USAGE, CREATE ON SCHEMA public TO {role};
             GRANT SELECT ON _sqlx_migrations TO {role};
             GRANT SELECT, INSERT, UPDATE, DELETE ON users, sessions, api_tokens TO {role};"
        ),
    );
    for table in ["jobs", "files", "workers"] {
        assert_eq!(
            pg.query(
                url,
                &format!("SELECT has_table_privilege('{role}', '{table}', 'SELECT')")
            ),
            "f",
            "the web app's role must not read {table}"
        );
    }
    url.replacen("://forklift@", &format!("://{role}@"), 1)
}

/// The storage a test deployment's processes share: a fresh bucket on the
/// S3-compatible server, named to every process by URL and read back here by listing.
pub struct Bucket {
    /// `s3://<bucket>/files`.
    pub url: String,
    /// The `AWS_*` variables the processes need.
    pub env: Vec<(String, String)>,
    blobs: forklift_blob::Blobs,
}

impl Bucket {
    pub fn new() -> Self {
        let s3 = forklift_testkit::S3::shared();
        let url = format!("s3://{}/files", s3.bucket());
        let opts = s3.options();
        let opts: Vec<(&str, &str)> = opts.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let blobs = forklift_blob::Blobs::from_url_with(&url, &opts).expect("bucket");
        Self {
            url,
            env: s3.env(),
            blobs,
        }
    }

    /// The flags that name it.
    pub fn flags(&self) -> [String; 2] {
        ["--storage-url".to_owned(), self.url.clone()]
    }

    /// The object keys under `prefix` (e.g. `uploads/` or `jobs/<id>/`), from the server.
    pub async fn keys(&self, prefix: &str) -> Vec<String> {
        let mut keys = self.blobs.list(prefix).await.expect("list the bucket");
        keys.sort();
        keys
    }
}

/// Data directories of separate processes, each its own as a pod's volume is: a test
/// of the extracted topology shares nothing between processes but PostgreSQL, Redis and
/// the storage URL.
pub struct DataDirs {
    root: tempfile::TempDir,
}

impl DataDirs {
    pub fn new() -> Self {
        Self {
            root: tempfile::Builder::new()
                .prefix("forklift-pods")
                .tempdir()
                .unwrap(),
        }
    }

    /// `--data-dir` for the process `name` (a directory no other process is given).
    pub fn flags(&self, name: &str) -> [String; 2] {
        let dir = self.root.path().join(name);
        assert!(!dir.exists(), "{name} has a data directory already");
        ["--data-dir".to_owned(), dir.display().to_string()]
    }

    pub fn path(&self) -> &std::path::Path {
        self.root.path()
    }

    /// Panics if any process's data directory holds a file: uploads, outputs and
    /// scratch files belong in the shared storage or are gone once a job ends.
    pub fn assert_no_files(&self) {
        let mut files = Vec::new();
        let mut dirs = vec![self.root.path().to_owned()];
        while let Some(d) = dirs.pop() {
            for e in std::fs::read_dir(&d).unwrap() {
                let e = e.unwrap();
                if e.file_type().unwrap().is_dir() {
                    dirs.push(e.path());
                } else {
                    files.push(e.path());
                }
            }
        }
        assert!(
            files.is_empty(),
            "processes kept files in their own data directories: {files:?}"
        );
    }
}

/// Starts a jobs-service process with `role`, its settings and environment.
pub async fn start_jobs_with_env(role: &str, common: &[String], env: &[(String, String)]) -> Proc {
    let mut args = common.to_vec();
    args.extend(
        [
            "--role",
            role,
            "--grpc-addr",
            "127.0.0.1:0",
            "--http-addr",
            "127.0.0.1:0",
        ]
        .map(String::from),
    );
    Proc::start(&binary("forklift-jobs"), &args, env, "HTTP:").await
}

impl TestApp {
    pub async fn start() -> Self {
        Self::start_with(&[]).await
    }

    /// Starts with extra flags, e.g. `["--max-upload-mb", "1"]`.
    pub async fn start_with(extra: &[&str]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut common = test_flags(dir.path());
        common.extend(extra.iter().map(|s| s.to_string()));
        match mode() {
            Mode::Unified => Self::unified(dir, common).await,
            Mode::Extracted => Self::extracted(dir, common).await,
        }
    }

    async fn unified(dir: tempfile::TempDir, common: Vec<String>) -> Self {
        let mut args = vec!["forklift-web".to_owned()];
        args.extend(common);
        let cfg: forklift_config::WebConfig = forklift_config::parse_from(args).expect("config");
        let app = forklift_web::build(&cfg).await.expect("build app");
        let accounts = app.accounts().clone();
        // The app holds no handle on the record; the suite opens one on the same file.
        let store = forklift_store::Store::open(&cfg.common.database_url())
            .await
            .unwrap();
        let token = std::fs::read_to_string(app.admin_token_file().expect("first start")).unwrap();
        let admin_password = std::fs::read_to_string(dir.path().join("admin-password"))
            .unwrap()
            .trim()
            .to_owned();
        let http = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let grpc = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let (http_addr, grpc_addr) = (http.local_addr().unwrap(), grpc.local_addr().unwrap());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let mut started = app.workers_started();
        let task = tokio::spawn(forklift_web::serve(app, http, Some(grpc), async {
            rx.await.ok();
        }));
        tokio::time::timeout(DEADLINE, started.wait_for(|s| *s))
            .await
            .expect("the workers start")
            .expect("the app runs");
        let client = Client::connect(grpc_addr, Some(token.trim())).await;
        Self {
            grpc_addr,
            http_addr,
            client,
            store,
            accounts,
            admin_password,
            _dir: dir,
            running: Running::InProcess { stop: tx, task },
        }
    }
}

/// Flags only the web app knows; in extracted mode the jobs service gets the rest.
const WEB_ONLY: [&str; 4] = [
    "--signin-attempts",
    "--submit-per-minute",
    "--secure-cookies",
    "--public-url",
];

/// Splits flags into (common, web-only).
fn split_web_only(flags: Vec<String>) -> (Vec<String>, Vec<String>) {
    let (mut common, mut web) = (Vec::new(), Vec::new());
    let mut it = flags.into_iter();
    while let Some(f) = it.next() {
        if WEB_ONLY.contains(&f.as_str()) {
            web.push(f);
            web.extend(it.next());
        } else {
            common.push(f);
        }
    }
    (common, web)
}

impl TestApp {
    async fn extracted(dir: tempfile::TempDir, common: Vec<String>) -> Self {
        let (mut common, web_only) = split_web_only(common);
        let redis = forklift_testkit::Redis::start();
        let database = forklift_testkit::Postgres::shared().database();
        // Files in S3-compatible storage and a data directory per process, as pods have.
        let bucket = Bucket::new();
        let dirs = DataDirs::new();
        common.extend([
            "--database-url".to_owned(),
            database.clone(),
            "--redis-url".to_owned(),
            redis.url(),
        ]);
        common.extend(bucket.flags());
        let with_dir = |name: &str| {
            let mut args = common.clone();
            args.extend(dirs.flags(name));
            args
        };
        let api = start_jobs_with_env("api", &with_dir("jobs-api"), &bucket.env).await;
        let worker = start_jobs_with_env("worker", &with_dir("jobs-worker"), &bucket.env).await;
        let grpc_addr = api.addr("gRPC:");
        // The web app signs in to PostgreSQL as a role that may read and write accounts
        // only: a query of a job or file table from it fails the suite.
        let web_database = accounts_only_role(&database);
        let mut web_args = with_dir("web");
        web_args.extend(["--database-url".to_owned(), web_database]);
        web_args.extend(web_only);
        web_args.extend(
            [
                "--jobs-url",
                &format!("http://{grpc_addr}"),
                "--http-addr",
                "127.0.0.1:0",
            ]
            .map(String::from),
        );
        let web = Proc::start(
            &binary("forklift-web"),
            &web_args,
            &bucket.env,
            "Press Ctrl-C",
        )
        .await;
        let http_addr = web.addr("Web:");
        let db = forklift_db::Db::open(&database).await.unwrap();
        let store = forklift_store::Store::new(db.clone());
        let accounts = forklift_accounts::Accounts::new(db);
        // The first admin, made as an operator makes one.
        let (admin_password, token) = create_admin(&common, "admin@localhost").await;
        let client = Client::connect(grpc_addr, Some(&token)).await;
        Self {
            grpc_addr,
            http_addr,
            client,
            store,
            accounts,
            admin_password,
            _dir: dir,
            running: Running::Processes {
                procs: vec![web, worker, api],
                _redis: redis,
                bucket,
                dirs,
            },
        }
    }

    /// Every object key under `prefix` in the storage the app uses (the bucket when
    /// extracted, `files/` in the data directory when unified).
    pub async fn stored_keys(&self, prefix: &str) -> Vec<String> {
        match &self.running {
            Running::Processes { bucket, .. } => bucket.keys(prefix).await,
            Running::InProcess { .. } => {
                let local = forklift_blob::Blobs::local(&self._dir.path().join("files")).unwrap();
                let mut keys = local.list(prefix).await.unwrap();
                keys.sort();
                keys
            }
        }
    }

    /// Where the app's processes keep local data: the data directory (unified), or the
    /// directory holding each process's own (extracted).
    pub fn data_dir(&self) -> &std::path::Path {
        match &self.running {
            Running::Processes { dirs, .. } => dirs.path(),
            Running::InProcess { .. } => self._dir.path(),
        }
    }

    /// A client for a new, separate user.
    pub async fn new_user(&self, email: &str) -> Client {
        let (_, token) = forklift_accounts::create_user_with_token(
            &self.accounts,
            email,
            forklift_domain::Role::User,
            "test",
        )
        .await
        .unwrap();
        Client::connect(self.grpc_addr, Some(&token)).await
    }

    /// Shuts down gracefully and checks that every part stopped cleanly.
    pub async fn stop(self) {
        match self.running {
            Running::InProcess { stop, task } => {
                stop.send(()).ok();
                tokio::time::timeout(DEADLINE, task)
                    .await
                    .expect("shutdown in time")
                    .unwrap()
                    .unwrap();
            }
            Running::Processes {
                mut procs, dirs, ..
            } => {
                for p in &mut procs {
                    let status = p.terminate().await;
                    assert!(status.success(), "clean exit: {status:?}");
                }
                dirs.assert_no_files();
            }
        }
    }
}

/// A JPEG `w`×`h` whose left half is red and right half blue, optionally tagged with
/// an EXIF orientation (6 = rotate 90° clockwise to display).
pub fn test_jpeg(w: u32, h: u32, orientation: Option<u16>) -> Vec<u8> {
    let img = image::RgbImage::from_fn(w, h, |x, _| {
        if x < w / 2 {
            image::Rgb([220, 20, 20])
        } else {
            image::Rgb([20, 20, 220])
        }
    });
    let mut jpeg = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 90)
        .encode_image(&img)
        .unwrap();
    match orientation {
        None => jpeg,
        Some(o) => forklift_testkit::with_exif_orientation(&jpeg, o),
    }
}

/// A test video from ffmpeg's own test source (pattern and tone), `seconds` long.
pub fn test_video(dir: &std::path::Path, seconds: u32, size: &str) -> Vec<u8> {
    let path = dir.join(format!("source-{seconds}-{size}.mp4"));
    let out = std::process::Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-f", "lavfi", "-i"])
        .arg(format!("testsrc=duration={seconds}:size={size}:rate=25"))
        .args(["-f", "lavfi", "-i"])
        .arg(format!("sine=duration={seconds}"))
        .args([
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-c:a",
            "aac",
            "-shortest",
        ])
        .arg(&path)
        .output()
        .expect("ffmpeg is installed (apt-get install ffmpeg)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::read(&path).unwrap()
}

/// ffprobe's JSON (streams and format) of a video's bytes.
pub fn probe_video(bytes: &[u8]) -> serde_json::Value {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("video.mp4");
    std::fs::write(&path, bytes).unwrap();
    let out = std::process::Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-print_format",
            "json",
            "-show_streams",
            "-show_format",
        ])
        .arg(&path)
        .output()
        .unwrap();
    serde_json::from_slice(&out.stdout).unwrap()
}

pub fn thumbnail_params(
    sizes: &[(u32, u32)],
    fit: pb::Fit,
    format: pb::ImageFormat,
) -> pb::JobParams {
    pb::JobParams {
        kind: Some(pb::job_params::Kind::ImageThumbnail(
            pb::ImageThumbnailParams {
                sizes: sizes
                    .iter()
                    .map(|&(width, height)| pb::ThumbnailSize { width, height })
                    .collect(),
                fit: fit as i32,
                format: format as i32,
                quality: 0,
            },
        )),
    }
}

pub fn sleep_params(duration_ms: u32) -> pb::JobParams {
    pb::JobParams {
        kind: Some(pb::job_params::Kind::DebugSleep(pb::DebugSleepParams {
            duration_ms,
            blocking: false,
        })),
    }
}

/// `debug.sleep` spending its time as blocking work on the CPU pool.
pub fn blocking_sleep_params(duration_ms: u32) -> pb::JobParams {
    pb::JobParams {
        kind: Some(pb::job_params::Kind::DebugSleep(pb::DebugSleepParams {
            duration_ms,
            blocking: true,
        })),
    }
}

pub fn flaky_params(failures: u32) -> pb::JobParams {
    pb::JobParams {
        kind: Some(pb::job_params::Kind::DebugFlaky(pb::DebugFlakyParams {
            failures,
        })),
    }
}

pub fn submit(params: pb::JobParams, inputs: &[&str]) -> pb::SubmitJobRequest {
    pb::SubmitJobRequest {
        params: Some(params),
        input_file_ids: inputs.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    }
}

/// The field names of a status's BadRequest detail.
pub fn violated_fields(status: &tonic::Status) -> Vec<String> {
    use tonic_types::StatusExt;
    status
        .get_details_bad_request()
        .map(|b| b.field_violations.into_iter().map(|v| v.field).collect())
        .unwrap_or_default()
}

/// A plain HTTP/1.1 GET: the status code and body.
pub async fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut buf = String::new();
    s.read_to_string(&mut buf).await.unwrap();
    let status = buf.split_whitespace().nth(1).unwrap().parse().unwrap();
    let body = buf
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}
