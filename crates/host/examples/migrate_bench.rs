//! How fast `forklift-jobs admin migrate` moves a unified installation into PostgreSQL
//! and S3-compatible storage: builds an installation of FILES files of KIB KiB each
//! (and a job for every ten files) in a fresh data directory, then runs the command
//! (the release binary beside this example) into a fresh PostgreSQL database and a
//! fresh bucket on a local S3-compatible server (moto), twice: the copy, then a re-run
//! that verifies everything and copies nothing; and once into PostgreSQL and a local
//! directory, which shows the command's own speed where moto (one Python process)
//! bounds the first.
//!
//! `cargo build --release -p forklift-jobs && cargo run --release -p forklift-host
//! --example migrate_bench [FILES] [KIB]` (defaults: 10,000 files of 100 KiB: the shape
//! of a 100,000-file, 10 GB installation at a tenth of its size).

use forklift_blob::Blobs;
use forklift_domain::{FileId, JobId, Role, now_ms};
use forklift_store::{JobInsert, NewFile, Store};
use std::time::Instant;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let files: usize = args.next().map_or(Ok(10_000), |a| a.parse())?;
    let kib: usize = args.next().map_or(Ok(100), |a| a.parse())?;
    let jobs_binary = std::env::current_exe()?
        .parent()
        .and_then(|examples| examples.parent())
        .map(|dir| dir.join("forklift-jobs"))
        .filter(|p| p.exists())
        .ok_or_else(|| anyhow::anyhow!("build it first: cargo build --release -p forklift-jobs"))?;

    // ---- the unified installation ----
    let data = tempfile::tempdir()?;
    let db_url = format!("sqlite://{}", data.path().join("forklift.db").display());
    let db = forklift_db::Db::open(&db_url).await?;
    let store = Store::new(db.clone());
    let accounts = forklift_accounts::Accounts::new(db);
    let owner = accounts
        .create_user("bench@example.com", Role::User)
        .await?
        .id;
    let blobs = Blobs::local(&data.path().join("files"))?;
    let started = Instant::now();
    let made = futures::future::try_join_all((0..8).map(|worker| {
        let (store, blobs) = (store.clone(), blobs.clone());
        async move {
            let mut inputs = Vec::new();
            for i in (worker..files).step_by(8) {
                let bytes: Vec<u8> = (0..kib * 1024)
                    .map(|b| {
                        (b as u32)
                            .wrapping_mul(2_654_435_761)
                            .wrapping_add(i as u32) as u8
                    })
                    .collect();
                let id = FileId::new();
                let key = format!("uploads/{id}");
                let stored = blobs.put_bytes(&key, bytes.into()).await?;
                let new = NewFile {
                    owner_id: owner,
                    name: format!("file-{i}.bin"),
                    content_type: "application/octet-stream".into(),
                    size_bytes: stored.size_bytes,
                    sha256: stored.sha256,
                    blob_key: key,
                };
                store.insert_file(id, &new, now_ms()).await?;
                inputs.push(id);
                if inputs.len() == 10 {
                    let now = now_ms();
                    let job = JobInsert {
                        id: JobId::new(),
                        owner_id: owner,
                        kind: "debug.noop".into(),
                        queue: "debug".into(),
                        params: serde_json::json!({}),
                        input_file_ids: std::mem::take(&mut inputs),
                        priority: 0,
                        max_attempts: 3,
                        run_at: now,
                        idempotency_key: None,
                    };
                    store.insert_job(&job, now).await?;
                }
            }
            anyhow::Ok(())
        }
    }))
    .await;
    made?;
    store.close().await;
    println!(
        "made {files} files of {kib} KiB ({:.2} GB) and {} jobs in {:.1} s",
        (files * kib * 1024) as f64 / 1e9,
        files / 10,
        started.elapsed().as_secs_f64()
    );

    // ---- the targets ----
    let s3 = forklift_testkit::S3::shared();
    let bucket = format!("s3://{}/files", s3.bucket());
    let local = tempfile::tempdir()?;
    let local = format!("file://{}", local.path().display());
    let from = [
        "admin".to_owned(),
        "migrate".to_owned(),
        "--from-database".to_owned(),
        db_url,
        "--from-storage".to_owned(),
        format!("file://{}", data.path().join("files").display()),
    ];
    let to = |db: &str, storage: &str| {
        let mut args = from.to_vec();
        args.extend(["--to-database", db, "--to-storage", storage].map(String::from));
        args
    };
    let to_s3 = to(&forklift_testkit::Postgres::shared().database(), &bucket);
    let to_local = to(&forklift_testkit::Postgres::shared().database(), &local);
    let mb = (files * kib * 1024) as f64 / 1e6;
    let rows = 1 + files + files / 10;
    println!("| run | seconds | rows/s | MB/s |");
    println!("|---|---:|---:|---:|");
    for (run, args) in [
        ("copy into PostgreSQL + S3 (moto)", &to_s3),
        ("again: verify and skip", &to_s3),
        ("copy into PostgreSQL + a local directory", &to_local),
    ] {
        let started = Instant::now();
        let out = std::process::Command::new(&jobs_binary)
            .args(args)
            .envs(s3.env())
            .output()?;
        let secs = started.elapsed().as_secs_f64();
        if !out.status.success() {
            anyhow::bail!("{}", String::from_utf8_lossy(&out.stderr));
        }
        println!(
            "| {run} | {secs:.1} | {:.0} | {:.1} |",
            rows as f64 / secs,
            mb / secs
        );
    }
    Ok(())
}
