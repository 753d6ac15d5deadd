//! Store throughput on a temporary SQLite file, under 50 concurrent callers (what the
//! HTTP benchmarks put on it): token lookups, 20-row job lists, job inserts, and whole
//! insert + claim + succeed cycles.
//!
//! `cargo run --release -p forklift-store --example store_bench [SECONDS_PER_CASE]`

use forklift_accounts::Accounts;
use forklift_db::Db;
use forklift_domain::{JobId, Role, UserId, now_ms};
use forklift_store::{JobInsert, JobQuery, NewOutput, Store};
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

const TASKS: usize = 50;

#[tokio::main]
async fn main() {
    let secs: u64 = std::env::args()
        .nth(1)
        .map(|s| s.parse().expect("seconds per case"))
        .unwrap_or(5);
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("bench.db").display());
    // One database for both, as in the unified app: one SQLite writer thread.
    let db = Db::open(&url).await.unwrap();
    let store = Arc::new(Store::new(db.clone()));
    let accounts = Accounts::new(db);

    let user = accounts
        .create_user("bench@example.com", Role::User)
        .await
        .unwrap();
    accounts
        .create_api_token(user.id, "bench", "hash-of-the-token")
        .await
        .unwrap();
    for _ in 0..500 {
        store.insert_job(&new_job(user.id), now_ms()).await.unwrap();
    }

    let run = Duration::from_secs(secs);
    println!("{TASKS} concurrent tasks, {secs} s per case");
    println!(
        "{:<28} {:>10} {:>10} {:>10}",
        "case", "ops/s", "p50 µs", "p99 µs"
    );

    let s = accounts.clone();
    bench("user_by_token_hash", run, move || {
        let s = s.clone();
        async move {
            assert!(
                s.user_by_token_hash("hash-of-the-token")
                    .await
                    .unwrap()
                    .is_some()
            );
        }
    })
    .await;

    let s = store.clone();
    let owner = user.id;
    bench("list_jobs (20 rows)", run, move || {
        let s = s.clone();
        async move {
            let filter = JobQuery {
                owner: Some(owner),
                limit: 20,
                ..Default::default()
            };
            assert_eq!(s.list_jobs(&filter).await.unwrap().len(), 20);
        }
    })
    .await;

    let s = store.clone();
    bench("insert_job", run, move || {
        let s = s.clone();
        async move {
            assert!(s.insert_job(&new_job(owner), now_ms()).await.unwrap().1);
        }
    })
    .await;

    let s = store.clone();
    bench("insert + claim + succeed", run, move || {
        let s = s.clone();
        async move {
            let now = now_ms();
            let new = JobInsert {
                run_at: now,
                ..new_job(owner)
            };
            let (job, _) = s.insert_job(&new, now).await.unwrap();
            let token = JobId::new().to_string();
            s.claim(job.id, "bench", &token, now + 60_000, now)
                .await
                .unwrap()
                .expect("claimed");
            let output = NewOutput {
                name: "thumbnail".into(),
                content_type: "image/jpeg".into(),
                size_bytes: 12_345,
                sha256: "ab".repeat(32),
                blob_key: format!("jobs/{}/thumbnail", job.id),
            };
            s.succeed(job.id, &token, &[output], now_ms())
                .await
                .unwrap()
                .expect("succeeded");
        }
    })
    .await;

    store.close().await;
}

/// A job shaped like an image thumbnail request.
fn new_job(owner: UserId) -> JobInsert {
    JobInsert {
        id: JobId::new(),
        owner_id: owner,
        kind: "image.thumbnail".into(),
        queue: "media".into(),
        params: serde_json::json!({"width": 320, "height": 240, "format": "jpeg", "quality": 80}),
        input_file_ids: vec![forklift_domain::FileId::new()],
        priority: 0,
        max_attempts: 3,
        run_at: now_ms(),
        idempotency_key: None,
    }
}

/// Runs `op` in a loop on `TASKS` tasks for `run`, then prints the rate and latencies.
async fn bench<F, Fut>(name: &str, run: Duration, op: F)
where
    F: Fn() -> Fut + Clone + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    let start = Instant::now();
    let deadline = start + run;
    let tasks: Vec<_> = (0..TASKS)
        .map(|_| {
            let op = op.clone();
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                while Instant::now() < deadline {
                    let t = Instant::now();
                    op().await;
                    latencies.push(t.elapsed());
                }
                latencies
            })
        })
        .collect();
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    let elapsed = start.elapsed().as_secs_f64();
    all.sort();
    let pct = |p: f64| all[((all.len() - 1) as f64 * p) as usize].as_micros();
    println!(
        "{:<28} {:>10.0} {:>10} {:>10}",
        name,
        all.len() as f64 / elapsed,
        pct(0.50),
        pct(0.99)
    );
}
