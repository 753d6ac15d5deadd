#![doc = include_str!("../README.md")]

pub mod browser;

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

/// How long a server may take to become ready.
const READY_WITHIN: Duration = Duration::from_secs(60);

/// A free loopback port for a server to bind later, taken from below the system's
/// ephemeral range: a port the OS picked (`bind(0)`) would be free again once this
/// returns, and the OS hands ports of that range to every outgoing connection and
/// `bind(0)` meanwhile — another process's server found "Address already in use".
/// Below the range only callers of this function take ports; each process starts at a
/// place of its own and goes on from there, skipping ports something listens on.
pub fn free_port() -> u16 {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|r| r.split_whitespace().next()?.parse::<u32>().ok())
        .unwrap_or(32768);
    let (first, span) = (10_000u32, low.saturating_sub(10_000).max(1_000));
    let start = std::process::id().wrapping_mul(7919) % span;
    for _ in 0..span {
        let port = first + (start + NEXT.fetch_add(1, Ordering::Relaxed)) % span;
        if let Ok(port) = u16::try_from(port)
            && TcpListener::bind(("127.0.0.1", port)).is_ok()
        {
            return port;
        }
    }
    panic!("no free port between {first} and {}", first + span)
}

fn running_as_root() -> bool {
    std::fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false)
}

/// Starts `argv` under a shell watchdog that stops it (SIGTERM, then SIGKILL) once the
/// test process is gone — and then removes the server's directory (the one holding
/// `log`), which a server kept in a `static` would otherwise leave behind — and waits
/// until a line of its output contains `ready`.
fn spawn_watched(argv: &[String], ready: &str, log: &Path) -> Child {
    let quoted: Vec<String> = argv
        .iter()
        .map(|a| format!("'{}'", a.replace('\'', "'\\''")))
        .collect();
    // The server's output goes to a log file; `tail -F` feeds it back so that the
    // ready line can be awaited without polling.
    let script = format!(
        "{cmd} >>'{log}' 2>&1 & srv=$!\n\
         trap 'kill -TERM $srv 2>/dev/null; wait $srv; exit 0' TERM INT\n\
         while kill -0 {parent} 2>/dev/null && kill -0 $srv 2>/dev/null; do sleep 0.5 & wait $!; done\n\
         kill -TERM $srv 2>/dev/null; sleep 2; kill -KILL $srv 2>/dev/null; wait $srv\n\
         kill -0 {parent} 2>/dev/null || rm -rf '{dir}'",
        cmd = quoted.join(" "),
        log = log.display(),
        dir = log.parent().unwrap_or(log).display(),
        parent = std::process::id(),
    );
    std::fs::write(log, b"").expect("create server log");
    let mut tail = Command::new("tail")
        .args(["-F", "-n", "+1"])
        .arg(log)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("tail the server log");
    let child = Command::new("sh")
        .arg("-c")
        .arg(script)
        .stdin(Stdio::null())
        .spawn()
        .expect("start the server watchdog");
    let lines = BufReader::new(tail.stdout.take().expect("tail stdout"));
    let (tx, rx) = std::sync::mpsc::channel();
    let needle = ready.to_owned();
    std::thread::spawn(move || {
        for line in lines.lines().map_while(Result::ok) {
            if line.contains(&needle) {
                let _ = tx.send(());
                return;
            }
        }
    });
    let ok = rx.recv_timeout(READY_WITHIN).is_ok();
    let _ = tail.kill();
    let _ = tail.wait();
    assert!(
        ok,
        "{} did not become ready; its log:\n{}",
        argv[0],
        std::fs::read_to_string(log).unwrap_or_default()
    );
    child
}

/// Stops a watchdog and so its server, and reaps it.
fn stop_watched(child: &mut Child) {
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status();
    let _ = child.wait();
}

/// Which database a test that runs on both backends has this time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TestDb {
    /// A fresh SQLite file.
    Sqlite,
    /// A fresh database on the shared PostgreSQL server.
    Postgres,
}

impl TestDb {
    /// The URL of a fresh database; the guard keeps an SQLite file alive.
    pub fn fresh_url(self) -> (String, Option<tempfile::TempDir>) {
        match self {
            TestDb::Sqlite => {
                let dir = tempfile::tempdir().expect("a temporary directory");
                let url = format!("sqlite://{}", dir.path().join("t.db").display());
                (url, Some(dir))
            }
            TestDb::Postgres => (Postgres::shared().database(), None),
        }
    }
}

/// Runs each named `async fn name(db: TestDb)` as two tests, `sqlite::name` and
/// `postgres::name`.
#[macro_export]
macro_rules! on_both_databases {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test]
            async fn $name() {
                super::$name($crate::TestDb::Sqlite).await
            })*
        }
        mod postgres {
            $(#[tokio::test]
            async fn $name() {
                super::$name($crate::TestDb::Postgres).await
            })*
        }
    };
}

/// A PostgreSQL server on a free port with a throwaway data directory.
pub struct Postgres {
    port: u16,
    watchdog: Child,
    _dir: tempfile::TempDir,
}

impl Postgres {
    /// One server for the whole test process, started on first use.
    pub fn shared() -> &'static Postgres {
        static SHARED: OnceLock<Postgres> = OnceLock::new();
        SHARED.get_or_init(Postgres::start)
    }

    /// A server of its own (stopped on drop).
    pub fn start() -> Postgres {
        let bin = pg_bin_dir();
        let dir = tempfile::Builder::new()
            .prefix("forklift-pg")
            .tempdir()
            .expect("temp dir");
        let data = dir.path().join("data");
        let as_root = running_as_root();
        if as_root {
            let ok = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(dir.path())
                .status();
            assert!(
                ok.map(|s| s.success()).unwrap_or(false),
                "chown the PostgreSQL directory"
            );
        }
        let as_pg = |argv: Vec<String>| -> Vec<String> {
            if as_root {
                let mut v = vec![
                    "runuser".into(),
                    "-u".into(),
                    "postgres".into(),
                    "--".into(),
                ];
                v.extend(argv);
                v
            } else {
                argv
            }
        };
        let initdb = as_pg(vec![
            bin.join("initdb").display().to_string(),
            "-D".into(),
            data.display().to_string(),
            "-U".into(),
            "forklift".into(),
            "--auth=trust".into(),
            "-E".into(),
            "UTF8".into(),
            "--no-sync".into(),
        ]);
        let out = Command::new(&initdb[0])
            .args(&initdb[1..])
            .output()
            .expect("run initdb");
        assert!(
            out.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let port = free_port();
        let server = as_pg(vec![
            bin.join("postgres").display().to_string(),
            "-D".into(),
            data.display().to_string(),
            "-p".into(),
            port.to_string(),
            "-k".into(),
            dir.path().display().to_string(),
            "-c".into(),
            "listen_addresses=127.0.0.1".into(),
            // Throwaway data: durability costs time and buys nothing here.
            "-c".into(),
            "fsync=off".into(),
            "-c".into(),
            "synchronous_commit=off".into(),
            "-c".into(),
            "full_page_writes=off".into(),
            "-c".into(),
            "max_connections=300".into(),
        ]);
        let log = dir.path().join("server.log");
        if as_root {
            let _ = Command::new("chown")
                .args(["postgres:postgres"])
                .arg(dir.path())
                .status();
        }
        let watchdog = spawn_watched(&server, "ready to accept connections", &log);
        Postgres {
            port,
            watchdog,
            _dir: dir,
        }
    }

    /// The server's port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Creates a fresh, empty database and returns its URL.
    pub fn database(&self) -> String {
        static N: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "t{}_{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        let out = Command::new(pg_bin_dir().join("createdb"))
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                "forklift",
                &name,
            ])
            .output()
            .expect("run createdb");
        assert!(
            out.status.success(),
            "createdb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        format!("postgres://forklift@127.0.0.1:{}/{name}", self.port)
    }
}

impl Postgres {
    /// Runs `sql` with psql on the database at `url` and returns its unaligned output.
    pub fn query(&self, url: &str, sql: &str) -> String {
        let out = Command::new(pg_bin_dir().join("psql"))
            .args(["-tA", "-d", url, "-c", sql])
            .output()
            .expect("run psql");
        assert!(
            out.status.success(),
            "psql failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }
}

impl Postgres {
    /// Sets the server up as a deployment's own PostgreSQL would be: the login role
    /// `role` with `password` (created, or given the password if it exists, as the
    /// superuser `forklift` does) and the database `database` it owns. Connections as
    /// `role` to `database` then need that password (scram-sha-256) — a wrong one is
    /// refused — while every other connection keeps trust authentication. Returns the
    /// database's URL with the password.
    pub fn create_role_and_database(&self, role: &str, password: &str, database: &str) -> String {
        let admin = format!("postgres://forklift@127.0.0.1:{}/postgres", self.port);
        let ident = |s: &str| format!("\"{}\"", s.replace('"', "\"\""));
        let literal = |s: &str| format!("'{}'", s.replace('\'', "''"));
        let exists = |sql: String| !self.query(&admin, &sql).is_empty();
        let verb = if exists(format!(
            "SELECT 1 FROM pg_roles WHERE rolname = {}",
            literal(role)
        )) {
            "ALTER"
        } else {
            "CREATE"
        };
        self.query(
            &admin,
            &format!(
                "{verb} ROLE {} WITH LOGIN PASSWORD {}",
                ident(role),
                literal(password)
            ),
        );
        if exists(format!(
            "SELECT 1 FROM pg_database WHERE datname = {}",
            literal(database)
        )) {
            self.query(
                &admin,
                &format!(
                    "ALTER DATABASE {} OWNER TO {}",
                    ident(database),
                    ident(role)
                ),
            );
        } else {
            self.query(
                &admin,
                &format!("CREATE DATABASE {} OWNER {}", ident(database), ident(role)),
            );
        }
        // The first matching line of pg_hba.conf decides: put the password rule first.
        let hba = PathBuf::from(self.query(&admin, "SHOW hba_file"));
        let old = std::fs::read_to_string(&hba).expect("read pg_hba.conf");
        let (db, user) = (ident(database), ident(role));
        std::fs::write(
            &hba,
            format!("local {db} {user} scram-sha-256\nhost {db} {user} all scram-sha-256\n{old}"),
        )
        .expect("write pg_hba.conf");
        self.query(&admin, "SELECT pg_reload_conf()");
        let url = |pw: &str| {
            format!(
                "postgres://{}:{}@127.0.0.1:{}/{}",
                percent_encode(role),
                percent_encode(pw),
                self.port,
                percent_encode(database)
            )
        };
        // The reload is asynchronous: wait until a wrong password is refused.
        let wrong = format!("not-{password}");
        let deadline = std::time::Instant::now() + READY_WITHIN;
        loop {
            let out = Command::new(pg_bin_dir().join("psql"))
                .args(["-tA", "-w", "-d", &url(&wrong), "-c", "SELECT 1"])
                .env_remove("PGPASSWORD")
                .output()
                .expect("run psql");
            let err = String::from_utf8_lossy(&out.stderr);
            if !out.status.success() && err.contains("password authentication failed") {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "PostgreSQL did not start requiring a password for {role}: {err}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let url = url(password);
        assert_eq!(
            self.query(&url, "SELECT 1"),
            "1",
            "{role} signs in with its password"
        );
        url
    }
}

/// Percent-encodes everything but unreserved characters (RFC 3986), for URL parts.
fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

impl Drop for Postgres {
    fn drop(&mut self) {
        stop_watched(&mut self.watchdog);
    }
}

/// The directory of the newest installed PostgreSQL's server programs.
fn pg_bin_dir() -> PathBuf {
    if let Ok(dir) = std::env::var("FORKLIFT_PG_BIN") {
        return PathBuf::from(dir);
    }
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|d| {
            d.filter_map(|e| e.ok().map(|e| e.path().join("bin")))
                .filter(|p| p.join("postgres").exists())
                .collect()
        })
        .unwrap_or_default();
    versions.sort();
    versions.pop().expect(
        "PostgreSQL server programs not found under /usr/lib/postgresql \
         (apt-get install postgresql, or set FORKLIFT_PG_BIN)",
    )
}

/// A Redis server on a free port, configured as Forklift's queue needs it.
pub struct Redis {
    port: u16,
    watchdog: Child,
    dir: tempfile::TempDir,
    password: Option<String>,
}

impl Redis {
    /// A server of its own (stopped on drop).
    pub fn start() -> Redis {
        let dir = tempfile::Builder::new()
            .prefix("forklift-redis")
            .tempdir()
            .expect("temp dir");
        let port = free_port();
        let watchdog = Self::spawn(dir.path(), port, None);
        Redis {
            port,
            watchdog,
            dir,
            password: None,
        }
    }

    /// A server of its own that requires `password` (`--requirepass`), as a deployed
    /// Redis does; [`Redis::url`] carries it.
    pub fn start_with_password(password: &str) -> Redis {
        let dir = tempfile::Builder::new()
            .prefix("forklift-redis")
            .tempdir()
            .expect("temp dir");
        let port = free_port();
        let watchdog = Self::spawn(dir.path(), port, Some(password));
        Redis {
            port,
            watchdog,
            dir,
            password: Some(password.to_owned()),
        }
    }

    fn spawn(dir: &Path, port: u16, password: Option<&str>) -> Child {
        let data = dir.join("data");
        std::fs::create_dir_all(&data).expect("redis data dir");
        let mut argv: Vec<String> = [
            "redis-server",
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--dir",
            &data.display().to_string(),
            "--appendonly",
            "yes",
            "--appendfsync",
            "everysec",
            "--maxmemory-policy",
            "noeviction",
            "--save",
            "",
        ]
        .map(String::from)
        .to_vec();
        if let Some(p) = password {
            argv.extend(["--requirepass".to_owned(), p.to_owned()]);
        }
        spawn_watched(
            &argv,
            "Ready to accept connections",
            &dir.join(format!("server-{port}-{}.log", next())),
        )
    }

    /// The server's URL (with the password, if it requires one, as given).
    pub fn url(&self) -> String {
        match &self.password {
            None => format!("redis://127.0.0.1:{}/", self.port),
            Some(p) => format!("redis://:{p}@127.0.0.1:{}/", self.port),
        }
    }

    /// The server's port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Stops the server, deletes its data, and starts a new one on the same port:
    /// Redis losing everything it held.
    pub fn restart_empty(&mut self) {
        stop_watched(&mut self.watchdog);
        std::fs::remove_dir_all(self.dir.path().join("data")).expect("delete redis data");
        self.watchdog = Self::spawn(self.dir.path(), self.port, self.password.as_deref());
    }
}

fn next() -> u32 {
    static N: AtomicU32 = AtomicU32::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

impl Drop for Redis {
    fn drop(&mut self) {
        stop_watched(&mut self.watchdog);
    }
}

/// An S3-compatible server (moto's standalone server, from PyPI) on a free port.
pub struct S3 {
    port: u16,
    _watchdog: Child,
    _dir: tempfile::TempDir,
}

impl S3 {
    /// One server for the whole test process, started on first use.
    pub fn shared() -> &'static S3 {
        static SHARED: OnceLock<S3> = OnceLock::new();
        SHARED.get_or_init(S3::start)
    }

    fn start() -> S3 {
        let dir = tempfile::Builder::new()
            .prefix("forklift-s3")
            .tempdir()
            .expect("temp dir");
        let port = free_port();
        let server = std::env::var("FORKLIFT_MOTO_SERVER").unwrap_or_else(|_| "moto_server".into());
        let argv = vec![
            server,
            "-H".into(),
            "127.0.0.1".into(),
            "-p".into(),
            port.to_string(),
        ];
        let watchdog = spawn_watched(&argv, "Running on", &dir.path().join("server.log"));
        S3 {
            port,
            _watchdog: watchdog,
            _dir: dir,
        }
    }

    /// The endpoint URL.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Creates a fresh, empty bucket and returns its name.
    pub fn bucket(&self) -> String {
        use std::io::{Read, Write};
        static N: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "t{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        let mut s = std::net::TcpStream::connect(("127.0.0.1", self.port)).expect("connect to S3");
        write!(s, "PUT /{name} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", self.port)
            .expect("create bucket");
        let mut reply = String::new();
        s.read_to_string(&mut reply).expect("bucket reply");
        assert!(
            reply.starts_with("HTTP/1.1 200"),
            "creating bucket {name} failed: {reply}"
        );
        name
    }

    /// The settings a client needs: as `AWS_*` environment variables for processes.
    pub fn env(&self) -> Vec<(String, String)> {
        [
            ("AWS_ENDPOINT", self.endpoint()),
            ("AWS_ALLOW_HTTP", "true".into()),
            ("AWS_ACCESS_KEY_ID", "test".into()),
            ("AWS_SECRET_ACCESS_KEY", "test".into()),
            ("AWS_REGION", "us-east-1".into()),
        ]
        .map(|(k, v)| (k.to_owned(), v))
        .to_vec()
    }

    /// The same settings as object_store option pairs, for in-process clients.
    pub fn options(&self) -> Vec<(String, String)> {
        self.env()
            .into_iter()
            .map(|(k, v)| (k.trim_start_matches("AWS_").to_ascii_lowercase(), v))
            .collect()
    }
}

/// A JPEG with an APP1 EXIF segment holding only an orientation tag (e.g. 6: rotate 90°
/// clockwise to display), inserted after the SOI marker of `jpeg`.
pub fn with_exif_orientation(jpeg: &[u8], orientation: u16) -> Vec<u8> {
    let mut tiff = vec![b'M', b'M', 0, 42, 0, 0, 0, 8, 0, 1];
    tiff.extend([0x01, 0x12, 0, 3, 0, 0, 0, 1]);
    tiff.extend(orientation.to_be_bytes());
    tiff.extend([0, 0, 0, 0, 0, 0]);
    let mut app1 = b"Exif\0\0".to_vec();
    app1.extend(tiff);
    let len = (app1.len() + 2) as u16;
    let mut out = vec![0xFF, 0xD8, 0xFF, 0xE1];
    out.extend(len.to_be_bytes());
    out.extend(app1);
    out.extend(&jpeg[2..]);
    out
}
