//! Stand-ins for the overlay's pods: real PostgreSQL, Redis and S3 servers from
//! forklift-testkit for its PostgreSQL, Redis and MinIO, configured with the credentials
//! the overlay gives them; and Forklift's binaries as child processes, each with the
//! environment its container would have and a fresh directory per volume.

use crate::network::{Connection, Network, PodLayout, listen_port};
use crate::plan::{Container, Plan, Workload};
use crate::support::DEADLINE;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How often a wait looks again.
const POLL: Duration = Duration::from_millis(200);

/// Whether a workload is a server the Forklift workloads connect to (not a one-off Job).
fn is_server(w: &Workload) -> bool {
    !w.is_forklift() && !matches!(w.kind.as_str(), "Job" | "CronJob")
}

/// The port a server's container listens on, from its image's defaults and arguments.
fn server_port(c: &Container) -> u16 {
    let argv = c.written_argv();
    let flag = |f: &str| {
        argv.iter()
            .position(|a| a == f)
            .and_then(|i| argv.get(i + 1))
    };
    let number = |s: &str| -> u16 {
        s.rsplit(':')
            .next()
            .unwrap()
            .parse()
            .unwrap_or_else(|_| panic!("{}: port {s:?}", c.name))
    };
    match c.image_name() {
        "postgres" => c.env.get("PGPORT").map_or(5432, |p| number(p)),
        "redis" => flag("--port").map_or(6379, |p| number(p)),
        "minio" => flag("--address").map_or(9000, |a| number(a)),
        other => panic!(
            "no local stand-in for {} (image {other}): teach tests/manifests/cluster.rs",
            c.name
        ),
    }
}

/// The servers standing in for the overlay's PostgreSQL, Redis and MinIO.
pub struct Servers {
    _postgres: Vec<forklift_testkit::Postgres>,
    _redis: Vec<forklift_testkit::Redis>,
    /// MinIO's stand-in and the credentials MinIO would accept (user, password).
    pub s3: Option<(&'static forklift_testkit::S3, String, String)>,
}

impl Servers {
    /// Starts a stand-in for each server workload, set up as its settings say: the
    /// PostgreSQL role, password and database of POSTGRES_USER, POSTGRES_PASSWORD and
    /// POSTGRES_DB; Redis with its `--requirepass`; MinIO's root credentials noted.
    pub fn start(plan: &Plan, net: &mut Network) -> Servers {
        let mut s = Servers {
            _postgres: Vec::new(),
            _redis: Vec::new(),
            s3: None,
        };
        for w in plan.workloads.iter().filter(|w| is_server(w)) {
            for c in &w.containers {
                let port = server_port(c);
                let argv = c.written_argv();
                let flag = |f: &str| {
                    argv.iter()
                        .position(|a| a == f)
                        .and_then(|i| argv.get(i + 1))
                        .cloned()
                };
                let local = match c.image_name() {
                    "postgres" => {
                        let user = c.env.get("POSTGRES_USER").map_or("postgres", |u| u);
                        let password = c.env.get("POSTGRES_PASSWORD").unwrap_or_else(|| {
                            panic!("{}: the postgres image needs POSTGRES_PASSWORD", w.name)
                        });
                        let db = c.env.get("POSTGRES_DB").map_or(user, |d| d);
                        let pg = forklift_testkit::Postgres::start();
                        pg.create_role_and_database(user, password, db);
                        let port = pg.port();
                        s._postgres.push(pg);
                        port
                    }
                    "redis" => {
                        let redis = match flag("--requirepass") {
                            Some(p) => forklift_testkit::Redis::start_with_password(&p),
                            None => forklift_testkit::Redis::start(),
                        };
                        let port = redis.port();
                        s._redis.push(redis);
                        port
                    }
                    "minio" => {
                        let s3 = forklift_testkit::S3::shared();
                        let cred = |k: &str| c.env.get(k).cloned().unwrap_or_default();
                        s.s3 = Some((s3, cred("MINIO_ROOT_USER"), cred("MINIO_ROOT_PASSWORD")));
                        s3.endpoint().rsplit(':').next().unwrap().parse().unwrap()
                    }
                    _ => unreachable!("server_port knows only these"),
                };
                net.serve(&w.name, port, local);
            }
        }
        s
    }

    /// Registers made-up local ports for the server workloads, for checks that start
    /// nothing.
    pub fn assume(plan: &Plan, net: &mut Network) {
        for w in plan.workloads.iter().filter(|w| is_server(w)) {
            for c in &w.containers {
                net.serve(&w.name, server_port(c), 1);
            }
        }
    }
}

/// A Forklift workload's one pod, as a child process.
pub struct Pod {
    pub workload: String,
    /// What a container runtime sets HOSTNAME to: the pod's name.
    pub hostname: String,
    pub layout: PodLayout,
    program: PathBuf,
    args: Vec<String>,
    /// Its environment, once [`Pod::localize`]d.
    pub env: BTreeMap<String, String>,
    root: tempfile::TempDir,
    child: Option<tokio::process::Child>,
}

/// The one container of a Forklift workload (the test runs no sidecars or init containers).
pub fn container(w: &Workload) -> &Container {
    assert!(
        w.containers.len() == 1 && w.init_containers.is_empty(),
        "{}: this test runs pods of exactly one container",
        w.name
    );
    &w.containers[0]
}

/// Path of one of the workspace's binaries (built beside `forklift-web`).
pub fn binary(name: &str) -> PathBuf {
    let path = Path::new(env!("CARGO_BIN_EXE_forklift-web")).with_file_name(name);
    assert!(
        path.exists(),
        "{} is missing: run `cargo build --workspace` first",
        path.display()
    );
    path
}

impl Pod {
    /// Lays out every Forklift workload's pod: a local directory per volume mount and a
    /// free local port per listen address, registered with `net`.
    pub fn lay_out(plan: &Plan, net: &mut Network) -> Vec<Pod> {
        plan.workloads
            .iter()
            .filter(|w| w.is_forklift())
            .map(|w| Pod::new(w, net))
            .collect()
    }

    fn new(w: &Workload, net: &mut Network) -> Pod {
        let c = container(w);
        let image = c.forklift_image.as_ref().unwrap();
        let argv = c.argv.as_ref().unwrap();
        // The program must be one the image has (its path, or its name on the PATH).
        let program = image
            .files
            .iter()
            .find(|f| *f == &argv[0] || f.rsplit('/').next() == Some(argv[0].as_str()))
            .unwrap_or_else(|| {
                panic!(
                    "{}: runs {:?}, which image {} does not have (it has {:?})",
                    w.name, argv[0], c.image, image.files
                )
            });
        let root = tempfile::Builder::new()
            .prefix(&format!("{}-", w.name))
            .tempdir()
            .unwrap();
        let mut volumes: Vec<(String, PathBuf)> = c
            .volume_mounts
            .iter()
            .map(|m| {
                let dir = root.path().join("volumes").join(&m.name);
                std::fs::create_dir_all(&dir).unwrap();
                (m.mount_path.clone(), dir)
            })
            .collect();
        volumes.sort_by_key(|(m, _)| std::cmp::Reverse(m.len()));
        let mut listen = BTreeMap::new();
        for v in c.env.values() {
            if let Some(p) = listen_port(v) {
                let local = *listen.entry(p).or_insert_with(forklift_testkit::free_port);
                net.serve(&w.name, p, local);
            }
        }
        // The image's tools: what its packages put on the PATH.
        let bin = root.path().join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        if image.packages.iter().any(|p| p == "ffmpeg") {
            for tool in ["ffmpeg", "ffprobe"] {
                let found = std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
                    .map(|d| d.join(tool))
                    .find(|p| p.is_file())
                    .unwrap_or_else(|| panic!("{tool} is not installed (apt-get install ffmpeg)"));
                std::os::unix::fs::symlink(found, bin.join(tool)).unwrap();
            }
        }
        Pod {
            workload: w.name.clone(),
            hostname: format!("{}-0", w.name),
            layout: PodLayout { volumes, listen },
            program: binary(program.rsplit('/').next().unwrap()),
            args: argv[1..].to_vec(),
            env: BTreeMap::new(),
            root,
            child: None,
        }
    }

    /// Sets the pod's environment: its container's, localized, plus what a container
    /// runtime adds (HOSTNAME; PATH holding the image's tools). Returns the connections
    /// its settings make.
    pub fn localize(&mut self, plan: &Plan, net: &Network) -> Result<Vec<Connection>, Vec<String>> {
        let w = plan.workload(&self.workload);
        let l = net.localize(w, container(w), &self.layout)?;
        self.env = l.env;
        self.env.insert("HOSTNAME".into(), self.hostname.clone());
        self.env.insert(
            "PATH".into(),
            self.root.path().join("bin").display().to_string(),
        );
        Ok(l.connections)
    }

    fn log_path(&self) -> PathBuf {
        self.root.path().join("log")
    }

    /// The end of the process's output, for failure messages.
    pub fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.log_path()).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    /// Starts the process, its output going to a log file.
    pub fn start(&mut self) {
        let log = std::fs::File::create(self.log_path()).unwrap();
        let cwd = self.root.path().join("cwd");
        std::fs::create_dir_all(&cwd).unwrap();
        let child = tokio::process::Command::new(&self.program)
            .args(&self.args)
            .env_clear()
            .envs(&self.env)
            .current_dir(cwd)
            .stdin(std::process::Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", self.program.display()));
        self.child = Some(child);
    }

    fn child(&mut self) -> &mut tokio::process::Child {
        self.child.as_mut().expect("started")
    }

    /// Runs the pod to its end (a Job's), which must be a success.
    pub async fn run_to_success(&mut self) {
        self.start();
        let status = tokio::time::timeout(DEADLINE, self.child().wait())
            .await
            .unwrap_or_else(|_| panic!("{} did not finish in time", self.workload))
            .unwrap();
        assert!(
            status.success(),
            "{} ended with {status}; its output:\n{}",
            self.workload,
            self.log_tail()
        );
    }

    /// Waits until every probe of the container (startup, readiness, liveness) passes,
    /// as the kubelet would before sending the pod traffic.
    pub async fn wait_ready(&mut self, c: &Container) {
        let deadline = Instant::now() + DEADLINE;
        loop {
            if let Some(status) = self.child().try_wait().unwrap() {
                panic!(
                    "{} exited ({status}) before it was ready; its output:\n{}",
                    self.workload,
                    self.log_tail()
                );
            }
            let mut failing = None;
            for (kind, probe) in &c.probes {
                if let Err(e) = self.probe(c, probe).await {
                    failing = Some(format!("{kind} probe: {e}"));
                    break;
                }
            }
            let Some(failing) = failing else { return };
            assert!(
                Instant::now() < deadline,
                "{} never became ready ({failing}); its output:\n{}",
                self.workload,
                self.log_tail()
            );
            tokio::time::sleep(POLL).await;
        }
    }

    /// The local port of a probe's `port` (a number or a container port's name).
    fn probe_port(&self, c: &Container, port: &serde_json::Value) -> Result<u16, String> {
        let number = match port {
            serde_json::Value::String(name) => c
                .named_port(name)
                .ok_or_else(|| format!("no container port named {name:?}"))?,
            n => n.as_u64().ok_or_else(|| format!("port {n}"))? as u16,
        };
        self.layout
            .listen
            .get(&number)
            .copied()
            .ok_or_else(|| format!("nothing in the pod listens on port {number}"))
    }

    async fn probe(&self, c: &Container, probe: &serde_json::Value) -> Result<(), String> {
        if let Some(h) = probe.get("httpGet") {
            let port = self.probe_port(c, &h["port"])?;
            let path = h["path"].as_str().unwrap_or("/");
            let r = reqwest::Client::new()
                .get(format!("http://127.0.0.1:{port}{path}"))
                .timeout(Duration::from_secs(3))
                .send()
                .await
                .map_err(|e| format!("GET {path}: {e}"))?;
            let s = r.status().as_u16();
            return if (200..400).contains(&s) {
                Ok(())
            } else {
                Err(format!("GET {path}: {s}"))
            };
        }
        if let Some(g) = probe.get("grpc") {
            use tonic_health::pb::health_client::HealthClient;
            use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus};
            let port = self.probe_port(c, &g["port"])?;
            let channel =
                tonic::transport::Channel::from_shared(format!("http://127.0.0.1:{port}"))
                    .unwrap()
                    .connect()
                    .await
                    .map_err(|e| format!("gRPC health on {port}: {e}"))?;
            let mut client = HealthClient::new(channel);
            let service = g["service"].as_str().unwrap_or_default().to_owned();
            let r = client
                .check(HealthCheckRequest { service })
                .await
                .map_err(|e| format!("gRPC health: {e}"))?;
            return match r.into_inner().status() {
                ServingStatus::Serving => Ok(()),
                s => Err(format!("gRPC health: {s:?}")),
            };
        }
        if let Some(t) = probe.get("tcpSocket") {
            let port = self.probe_port(c, &t["port"])?;
            return tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .map(drop)
                .map_err(|e| format!("connect to {port}: {e}"));
        }
        Err(format!("a probe this test cannot run: {probe}"))
    }

    /// SIGTERM, as a rollout or scale-in sends, and the exit status.
    pub async fn terminate(&mut self) -> std::process::ExitStatus {
        let pid = self.child().id().expect("running");
        let ok = std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .unwrap();
        assert!(ok.success(), "signal {}", self.workload);
        tokio::time::timeout(DEADLINE, self.child().wait())
            .await
            .unwrap_or_else(|_| panic!("{} did not stop after SIGTERM in time", self.workload))
            .unwrap()
    }

    /// Every file in the pod's volumes.
    pub fn volume_files(&self) -> Vec<PathBuf> {
        fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
            for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
                let p = e.path();
                if p.is_dir() {
                    walk(&p, out);
                } else {
                    out.push(p);
                }
            }
        }
        let mut out = Vec::new();
        for (_, dir) in &self.layout.volumes {
            walk(dir, &mut out);
        }
        out
    }
}
