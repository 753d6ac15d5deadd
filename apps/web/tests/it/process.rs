//! The real binary as a child process: kill -9 mid-job, and SIGTERM with jobs running.

use crate::support::*;
use forklift_rpc::v1 as pb;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

/// A running unified `forklift-web` child.
struct Server {
    proc: Proc,
    grpc_addr: SocketAddr,
}

impl Server {
    /// Starts the binary on free ports and waits for its start-up banner.
    async fn start(data_dir: &Path, extra: &[&str]) -> Self {
        let mut args = test_flags(data_dir);
        args.extend(["--http-addr", "127.0.0.1:0", "--grpc-addr", "127.0.0.1:0"].map(String::from));
        args.extend(extra.iter().map(|s| s.to_string()));
        let proc = Proc::start(&binary("forklift-web"), &args, &[], "Press Ctrl-C").await;
        let grpc_addr = proc.addr("gRPC:");
        Self { proc, grpc_addr }
    }

    async fn client(&self, data_dir: &Path) -> Client {
        let token = std::fs::read_to_string(data_dir.join("admin-token")).unwrap();
        Client::connect(self.grpc_addr, Some(token.trim())).await
    }

    async fn kill9(mut self) {
        self.proc.kill9().await;
    }

    async fn terminate(mut self) -> std::process::ExitStatus {
        self.proc.terminate().await
    }
}

async fn open_store(data_dir: &Path) -> forklift_store::Store {
    forklift_store::Store::open(&format!(
        "sqlite://{}",
        data_dir.join("forklift.db").display()
    ))
    .await
    .unwrap()
}

#[tokio::test]
async fn a_job_interrupted_by_kill_9_completes_after_restart_with_its_outputs_once() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]).await;
    let c = server.client(dir.path()).await;
    let job = c.submit(submit(sleep_params(2_000), &[])).await.unwrap();
    c.watch_until(&job.id, |j| {
        j.state() == pb::JobState::Running && j.progress_percent > 0
    })
    .await;
    server.kill9().await;

    let server = Server::start(dir.path(), &[]).await;
    let c = server.client(dir.path()).await;
    let done = c.watch_to_end(&job.id).await.pop().unwrap();
    assert_eq!(done.state(), pb::JobState::Succeeded, "{done:#?}");
    assert_eq!(done.attempt, 2, "the killed attempt counts");
    assert_eq!(done.outputs.len(), 1);
    let (_, body) = c.download(&done.outputs[0].file_id).await.unwrap();
    assert_eq!(
        String::from_utf8(body).unwrap(),
        "slept 2000 ms on attempt 2\n"
    );
    let files = c.list_files().await.unwrap();
    assert_eq!(files.len(), 1, "one output file record");
    let stored: Vec<_> = std::fs::read_dir(dir.path().join("files/jobs").join(&job.id))
        .unwrap()
        .collect();
    assert_eq!(stored.len(), 1, "one output object");
    server.terminate().await;
}

#[tokio::test]
async fn sigterm_lets_running_jobs_finish_and_leaves_queued_ones_queued() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(
        dir.path(),
        &["--queues", "debug=2", "--shutdown-grace", "30s"],
    )
    .await;
    let c = server.client(dir.path()).await;
    let a = c.submit(submit(sleep_params(1_500), &[])).await.unwrap();
    let b = c.submit(submit(sleep_params(1_500), &[])).await.unwrap();
    c.watch_until(&a.id, |j| j.state() == pb::JobState::Running)
        .await;
    c.watch_until(&b.id, |j| j.state() == pb::JobState::Running)
        .await;
    // Both slots are busy, so this one waits in the queue.
    let waiting = c.submit(submit(sleep_params(10), &[])).await.unwrap();
    let status = server.terminate().await;
    assert!(status.success(), "clean exit: {status:?}");

    let store = open_store(dir.path()).await;
    for id in [&a.id, &b.id] {
        let j = store.get_job(id.parse().unwrap()).await.unwrap().unwrap();
        assert_eq!(
            j.state,
            forklift_domain::JobState::Succeeded,
            "running job finished in the grace period"
        );
    }
    let w = store
        .get_job(waiting.id.parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        w.state,
        forklift_domain::JobState::Queued,
        "not started during shutdown"
    );
    store.close().await;

    let server = Server::start(dir.path(), &[]).await;
    let c = server.client(dir.path()).await;
    let done = c.watch_to_end(&waiting.id).await.pop().unwrap();
    assert_eq!(done.state(), pb::JobState::Succeeded);
    server.terminate().await;
}

#[tokio::test]
async fn sigterm_requeues_jobs_that_outlast_the_grace_period() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &["--shutdown-grace", "200ms"]).await;
    let c = server.client(dir.path()).await;
    let long = c.submit(submit(sleep_params(600_000), &[])).await.unwrap();
    c.watch_until(&long.id, |j| j.state() == pb::JobState::Running)
        .await;
    let asked = Instant::now();
    let status = server.terminate().await;
    let took = asked.elapsed();
    assert!(status.success(), "clean exit: {status:?}");
    // The job had its 200ms, and not the default 30s.
    assert!(
        took >= Duration::from_millis(200),
        "exited {took:?} after SIGTERM, before the grace period ended"
    );
    assert!(
        took < Duration::from_secs(15),
        "exited {took:?} after SIGTERM: the grace period was not 200ms"
    );

    let store = open_store(dir.path()).await;
    let j = store
        .get_job(long.id.parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        j.state,
        forklift_domain::JobState::Queued,
        "released, not lost"
    );
    assert_eq!(j.attempt, 0, "a release does not spend an attempt");
    assert!(j.worker.is_none());
    store.close().await;
}

/// Milliseconds since the epoch, now.
fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

fn ms(t: &Option<prost_types::Timestamp>) -> i64 {
    let t = t.as_ref().expect("a time");
    t.seconds * 1000 + i64::from(t.nanos) / 1_000_000
}

#[tokio::test]
async fn a_dead_servers_job_is_taken_back_once_its_lease_ends() {
    // With Redis the server does not own the record alone, so after a restart it
    // takes back only the running jobs whose lease has ended; a worker elsewhere might
    // still hold the others.
    let redis = forklift_testkit::Redis::start();
    let dir = tempfile::tempdir().unwrap();
    let url = redis.url();
    // Sharing a queue through Redis means naming the storage the processes share.
    let storage = format!("file://{}", dir.path().join("files").display());
    let flags = [
        "--redis-url",
        url.as_str(),
        "--storage-url",
        &storage,
        "--lease",
        "3s",
    ];
    let server = Server::start(dir.path(), &flags).await;
    let c = server.client(dir.path()).await;
    let job = c.submit(submit(sleep_params(600_000), &[])).await.unwrap();
    c.watch_until(&job.id, |j| j.state() == pb::JobState::Running)
        .await;
    server.kill9().await;
    let killed = Instant::now();
    let killed_ms = now_ms();

    // The lease the dead server last renewed (every third of it) ends within 3s.
    let store = open_store(dir.path()).await;
    let row = store
        .get_job(job.id.parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    store.close().await;
    assert_eq!(row.state, forklift_domain::JobState::Running);
    let lease_until = row.lease_until.expect("a running job has a lease");
    assert!(
        lease_until > killed_ms && lease_until <= killed_ms + 3_000,
        "the lease ends {}ms after the kill; it is 3s long",
        lease_until - killed_ms
    );

    let server = Server::start(dir.path(), &flags).await;
    let c = server.client(dir.path()).await;
    let again = c
        .watch_until(&job.id, |j| {
            j.state() == pb::JobState::Running && j.attempt == 2
        })
        .await
        .pop()
        .unwrap();
    let took = killed.elapsed();
    assert!(
        ms(&again.start_time) >= lease_until,
        "taken back {}ms before its lease ended",
        lease_until - ms(&again.start_time)
    );
    assert!(
        took < Duration::from_secs(15),
        "taken back {took:?} after the kill: not with a 3s lease"
    );
    c.cancel(&job.id).await.unwrap();
    c.watch_to_end(&job.id).await;
    assert!(server.terminate().await.success());
}

/// Starts `bin` with `args`, waits for its banner's line starting with `last`, sends
/// SIGTERM and returns everything it wrote to stderr, line by line.
async fn stderr_of_a_run(bin: &Path, args: &[String], last: &str) -> Vec<String> {
    use tokio::io::AsyncBufReadExt;
    let mut child = tokio::process::Command::new(bin)
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let stderr = tokio::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let errors = tokio::spawn(async move {
        let mut stderr = stderr;
        let mut out = Vec::new();
        while let Some(line) = stderr.next_line().await.unwrap() {
            out.push(line);
        }
        out
    });
    let mut stdout = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    tokio::time::timeout(DEADLINE, async {
        while let Some(line) = stdout.next_line().await.unwrap() {
            if line.trim_start().starts_with(last) {
                return;
            }
        }
        panic!("{} exited during start-up", bin.display());
    })
    .await
    .expect("start-up banner in time");
    tokio::spawn(async move { while let Ok(Some(_)) = stdout.next_line().await {} });
    signal(child.id().unwrap(), "TERM");
    let status = tokio::time::timeout(DEADLINE, child.wait())
        .await
        .expect("exit after SIGTERM in time")
        .unwrap();
    assert!(status.success(), "clean exit: {status:?}");
    errors.await.unwrap()
}

#[tokio::test]
async fn with_log_format_json_every_log_line_is_a_json_object() {
    for (bin, last) in [("forklift-web", "Press Ctrl-C"), ("forklift-jobs", "HTTP:")] {
        let dir = tempfile::tempdir().unwrap();
        let mut args = test_flags(dir.path());
        args.extend(
            [
                "--http-addr",
                "127.0.0.1:0",
                "--grpc-addr",
                "127.0.0.1:0",
                "--log",
                "info",
                "--log-format",
                "json",
            ]
            .map(String::from),
        );
        let lines = stderr_of_a_run(&binary(bin), &args, last).await;
        let logs: Vec<serde_json::Map<String, serde_json::Value>> = lines
            .iter()
            .map(|l| match serde_json::from_str(l) {
                Ok(serde_json::Value::Object(o)) => o,
                _ => panic!("{bin}: a log line that is not a JSON object: {l}"),
            })
            .collect();
        for log in &logs {
            assert!(
                log.contains_key("timestamp") && log.contains_key("level"),
                "{bin}: {log:?}"
            );
        }
        // Fields are JSON fields, not only text in the message.
        assert!(
            logs.iter().any(|l| l["level"] == "INFO"
                && l.get("queue").is_some_and(|q| q == "debug")
                && l.get("slots").is_some_and(serde_json::Value::is_u64)),
            "{bin}: the start-up lines name the queues they consume: {lines:#?}"
        );
    }
}

#[test]
fn bad_settings_stop_start_up_naming_the_variable() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_forklift-web"))
        .env("FORKLIFT_GRPC_ADDR", "not-an-address")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("FORKLIFT_GRPC_ADDR"), "{err}");
}

#[tokio::test]
async fn sigterm_right_after_the_start_up_banner_is_a_clean_shutdown() {
    // The banner announces readiness; the signal handlers must already be in place.
    let dir = tempfile::tempdir().unwrap();
    for _ in 0..3 {
        let server = Server::start(dir.path(), &[]).await;
        let status = server.terminate().await;
        assert!(status.success(), "clean exit: {status:?}");
    }
}

#[cfg(target_os = "linux")]
#[tokio::test]
async fn the_server_runs_without_transparent_huge_pages() {
    // Huge pages made every barely used 2 MiB of the allocator's arenas resident.
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]).await;
    let status = std::fs::read_to_string(format!("/proc/{}/status", server.proc.pid())).unwrap();
    let thp = status.lines().find(|l| l.starts_with("THP_enabled:"));
    assert_eq!(
        thp.map(|l| l.split_whitespace().collect::<Vec<_>>()),
        Some(vec!["THP_enabled:", "0"]),
        "{status}"
    );
    assert!(server.terminate().await.success());
}

#[tokio::test]
async fn the_data_directory_is_private_and_scratch_a_killed_process_left_is_removed() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = Server::start(&data, &[]).await;
    let mode = std::fs::metadata(&data).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700, "a new data directory is its owner's alone");
    server.terminate().await;

    // What an attempt cut short by kill -9 leaves: its scratch directory with the input.
    let stale = data.join("tmp/forklift-job-stale");
    std::fs::create_dir_all(&stale).unwrap();
    std::fs::write(stale.join("input-0"), vec![0u8; 4096]).unwrap();
    let server = Server::start(&data, &[]).await;
    let c = server.client(&data).await;
    // The workers run once a job can finish; the sweep came before them.
    let job = c.submit(submit(sleep_params(10), &[])).await.unwrap();
    let done = c.watch_to_end(&job.id).await.pop().unwrap();
    assert_eq!(done.state(), pb::JobState::Succeeded);
    assert!(!stale.exists(), "the stale scratch directory is gone");
    assert!(
        data.join("tmp").exists(),
        "the scratch directory itself stays"
    );
    server.terminate().await;
}
