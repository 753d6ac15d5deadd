//! `forklift-jobs admin migrate`: copies a stopped installation — a unified one's
//! SQLite file and files directory, or a PostgreSQL database and a bucket — into
//! another database and storage, so that extracting is a command.
//!
//! What is copied, ids unchanged: users (with their password hashes), API tokens
//! (hashed, so they keep working), files with their content (streamed; the SHA-256 of
//! every object is checked against its record as it is written, and read back from the
//! target), and jobs (parameters, states, attempts, errors, outputs, idempotency keys).
//! A job that was queued or running on the source is queued on the target. Sessions
//! are not copied: users sign in again. The workers and maintenance tables describe
//! the source's processes and are not copied either.
//!
//! The source is only read: an SQLite file is opened read-only and immutable, storage
//! is only read. A run that stops half-way goes on where it stopped when run again:
//! rows already in the target are compared with the source's and skipped, objects
//! already there are checked by their SHA-256 and skipped. Anything that differs stops
//! the run with the table and id (or the file) named.

use anyhow::{Context, bail};
use forklift_blob::{BlobError, Blobs};
use forklift_db::{Arg, Conn, Db, Query, Row};
use forklift_domain::human_bytes;
use futures::StreamExt;
use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Where to copy from and to.
#[derive(Debug, Clone)]
pub struct MigrateArgs {
    /// The source database URL (`sqlite://…` or `postgres://…`).
    pub from_database: String,
    /// The source storage URL (`file:///…` or `s3://…`).
    pub from_storage: String,
    /// The target database URL; not needed for a dry run.
    pub to_database: Option<String>,
    /// The target storage URL; not needed for a dry run.
    pub to_storage: Option<String>,
    /// Only count what would be copied.
    pub dry_run: bool,
}

/// A column's type (every column of the copied tables is text or an integer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ty {
    Text,
    Int,
}

/// A table to copy, its key and its columns.
struct Table {
    name: &'static str,
    key: &'static str,
    cols: &'static [(&'static str, Ty)],
    /// Columns whose values are never printed (hashes of secrets).
    secret: &'static [&'static str],
}

use Ty::{Int, Text};

/// In dependency order: users before what they own.
const TABLES: [Table; 4] = [
    Table {
        name: "users",
        key: "id",
        cols: &[
            ("id", Text),
            ("email", Text),
            ("password_hash", Text),
            ("role", Text),
            ("created_at", Int),
        ],
        secret: &["password_hash"],
    },
    Table {
        name: "api_tokens",
        key: "id",
        cols: &[
            ("id", Text),
            ("user_id", Text),
            ("name", Text),
            ("token_hash", Text),
            ("created_at", Int),
            ("last_used_at", Int),
            ("revoked_at", Int),
        ],
        secret: &["token_hash"],
    },
    Table {
        name: "files",
        key: "id",
        cols: &[
            ("id", Text),
            ("owner_id", Text),
            ("name", Text),
            ("content_type", Text),
            ("size_bytes", Int),
            ("sha256", Text),
            ("blob_key", Text),
            ("source_job_id", Text),
            ("output_name", Text),
            ("created_at", Int),
        ],
        secret: &[],
    },
    Table {
        name: "jobs",
        key: "id",
        cols: &[
            ("id", Text),
            ("owner_id", Text),
            ("kind", Text),
            ("queue", Text),
            ("params", Text),
            ("input_file_ids", Text),
            ("state", Text),
            ("priority", Int),
            ("attempt", Int),
            ("max_attempts", Int),
            ("run_at", Int),
            ("lease_until", Int),
            ("lease_token", Text),
            ("worker", Text),
            ("progress", Int),
            ("progress_message", Text),
            ("error", Text),
            ("outputs", Text),
            ("cancel_requested", Int),
            ("idempotency_key", Text),
            ("version", Int),
            ("created_at", Int),
            ("updated_at", Int),
            ("started_at", Int),
            ("finished_at", Int),
        ],
        secret: &[],
    },
];

/// Rows read from the source at a time.
const PAGE: i64 = 500;
/// Rows per INSERT statement.
const INSERT_ROWS: usize = 100;
/// Objects copied at once.
const OBJECTS_AT_ONCE: usize = 8;
/// Objects up to this size are read whole and written with one request; larger ones
/// are streamed in parts.
const WHOLE_OBJECT: u64 = 8 << 20;

/// One row's values, every one as text (integers in decimal) or NULL.
type Values = Vec<Option<String>>;

impl Table {
    fn col(&self, name: &str) -> usize {
        self.cols
            .iter()
            .position(|(c, _)| *c == name)
            .expect("a column of the table")
    }

    /// `SELECT` of every column as text.
    fn select_list(&self) -> String {
        self.cols
            .iter()
            .map(|(c, ty)| match ty {
                Text => (*c).to_owned(),
                Int => format!("CAST({c} AS TEXT)"),
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The page of rows after `after` (by key).
    fn page(&self, after: &str) -> Query {
        Query {
            sql: format!(
                "SELECT {} FROM {} WHERE {key} > $1 ORDER BY {key} LIMIT $2",
                self.select_list(),
                self.name,
                key = self.key
            )
            .into(),
            args: vec![Arg::from(after), Arg::Int(PAGE)],
        }
    }

    /// The rows with these keys.
    fn rows_with_keys(&self, keys: &[String]) -> Query {
        let marks: Vec<String> = (1..=keys.len()).map(|i| format!("${i}")).collect();
        Query {
            sql: format!(
                "SELECT {} FROM {} WHERE {} IN ({})",
                self.select_list(),
                self.name,
                self.key,
                marks.join(", ")
            )
            .into(),
            args: keys.iter().map(Arg::from).collect(),
        }
    }

    /// Inserts `rows`, leaving any whose key is already there as it is.
    fn insert(&self, rows: &[Values]) -> Query {
        let names: Vec<&str> = self.cols.iter().map(|(c, _)| *c).collect();
        let mut args = Vec::with_capacity(rows.len() * self.cols.len());
        let mut tuples = Vec::with_capacity(rows.len());
        for row in rows {
            let mut marks = Vec::with_capacity(self.cols.len());
            for ((_, ty), v) in self.cols.iter().zip(row) {
                args.push(Arg::from(v.clone()));
                let n = args.len();
                marks.push(match ty {
                    Text => format!("${n}"),
                    Int => format!("CAST(${n} AS BIGINT)"),
                });
            }
            tuples.push(format!("({})", marks.join(", ")));
        }
        Query {
            sql: format!(
                "INSERT INTO {} ({}) VALUES {} ON CONFLICT ({}) DO NOTHING",
                self.name,
                names.join(", "),
                tuples.join(", "),
                self.key
            )
            .into(),
            args,
        }
    }

    /// The source row as the target is to hold it: a job that was waiting or running
    /// is queued afresh (no worker, no lease); a running job whose owner had asked to
    /// cancel it is cancelled.
    fn adapt(&self, mut row: Values) -> Values {
        if self.name != "jobs" {
            return row;
        }
        let state = row[self.col("state")].clone().unwrap_or_default();
        if state != "queued" && state != "running" {
            return row;
        }
        let cancel = row[self.col("cancel_requested")].as_deref() == Some("1");
        for c in ["lease_until", "lease_token", "worker"] {
            row[self.col(c)] = None;
        }
        row[self.col("cancel_requested")] = Some("0".to_owned());
        row[self.col("progress")] = Some("0".to_owned());
        row[self.col("progress_message")] = Some(String::new());
        if state == "running" && cancel {
            row[self.col("state")] = Some("cancelled".to_owned());
            row[self.col("error")] = Some("cancelled by its owner".to_owned());
            row[self.col("finished_at")] = row[self.col("updated_at")].clone();
        } else {
            row[self.col("state")] = Some("queued".to_owned());
            row[self.col("started_at")] = None;
        }
        row
    }

    /// Why `target` is not `source`, naming the first column that differs.
    fn difference(&self, source: &Values, target: &Values) -> Option<String> {
        let i = (0..self.cols.len()).find(|&i| source[i] != target[i])?;
        let col = self.cols[i].0;
        Some(if self.secret.contains(&col) {
            format!("its {col} differs")
        } else {
            format!(
                "its {col} is {:?} there and {:?} in the source",
                target[i], source[i]
            )
        })
    }
}

fn values(r: &dyn Row) -> forklift_db::Result<Values> {
    (0..r.len())
        .map(|i| r.opt_str(i).map(|v| v.map(str::to_owned)))
        .collect()
}

/// What there is to copy.
#[derive(Debug, Clone, Default)]
struct Plan {
    /// Rows per table, in copy order.
    rows: Vec<(&'static str, u64)>,
    /// Bytes of all objects in storage (one per `files` row).
    bytes: u64,
}

impl Plan {
    fn total_rows(&self) -> u64 {
        self.rows.iter().map(|(_, n)| n).sum()
    }

    fn objects(&self) -> u64 {
        self.rows
            .iter()
            .find(|(t, _)| *t == "files")
            .map_or(0, |(_, n)| *n)
    }
}

async fn plan(db: &Db) -> anyhow::Result<Plan> {
    let mut plan = Plan::default();
    for t in &TABLES {
        let q = Query {
            sql: format!("SELECT COUNT(*) FROM {}", t.name).into(),
            args: vec![],
        };
        let n = db.read().one(q, |r| r.int(0)).await?;
        plan.rows.push((t.name, n.max(0) as u64));
    }
    let q = Query {
        sql: "SELECT CAST(COALESCE(SUM(size_bytes), 0) AS BIGINT) FROM files".into(),
        args: vec![],
    };
    plan.bytes = db.read().one(q, |r| r.int(0)).await?.max(0) as u64;
    Ok(plan)
}

/// Progress shared with the reporter.
#[derive(Default)]
struct Progress {
    rows: AtomicU64,
    bytes: AtomicU64,
}

/// Runs a migration (or, with `dry_run`, only counts), telling `say` what happens.
pub async fn migrate(
    args: &MigrateArgs,
    say: impl Fn(&str) + Send + Sync + 'static,
) -> anyhow::Result<()> {
    let started = Instant::now();
    let source = Db::open_snapshot(&args.from_database)
        .await
        .with_context(|| format!("--from-database {}: cannot read it", args.from_database))?;
    let source_blobs = open_blobs(&args.from_storage, "--from-storage").await?;
    let plan = plan(&source).await.context("counting the source's rows")?;
    for (table, n) in &plan.rows {
        say(&format!("{table}: {n} rows"));
    }
    say(&format!(
        "storage: {} objects, {}",
        plan.objects(),
        human_bytes(plan.bytes)
    ));
    say("sessions: not copied (users sign in again)");
    if args.dry_run {
        say("dry run: nothing was copied");
        source.close().await;
        return Ok(());
    }
    let (Some(to_database), Some(to_storage)) = (&args.to_database, &args.to_storage) else {
        bail!("--to-database and --to-storage are required (or --dry-run)");
    };
    if *to_database == args.from_database || *to_storage == args.from_storage {
        bail!("the target must be another database and another storage than the source");
    }
    let target = Db::open(to_database)
        .await
        .with_context(|| format!("--to-database {to_database}: cannot open it"))?;
    let target_blobs = open_blobs(to_storage, "--to-storage").await?;

    let progress = Arc::new(Progress::default());
    let say = Arc::new(say);
    let reporter = tokio::spawn(report_progress(progress.clone(), plan.clone(), say.clone()));
    let copied = copy_all(&source, &target, &source_blobs, &target_blobs, &progress).await;
    reporter.abort();
    source.close().await;
    target.close().await;
    let (rows_copied, bytes_copied) = copied?;
    let secs = started.elapsed().as_secs_f64().max(0.001);
    say(&format!(
        "done in {:.1} s: {} rows ({} new, {:.0} rows/s), {} of objects ({} new, {:.1} MB/s)",
        secs,
        plan.total_rows(),
        rows_copied,
        plan.total_rows() as f64 / secs,
        human_bytes(plan.bytes),
        human_bytes(bytes_copied),
        plan.bytes as f64 / secs / 1e6,
    ));
    Ok(())
}

async fn open_blobs(url: &str, flag: &str) -> anyhow::Result<Blobs> {
    let blobs = Blobs::from_url(url).with_context(|| format!("{flag} {url}: cannot use it"))?;
    blobs
        .ping()
        .await
        .with_context(|| format!("{flag} {url}: the storage does not answer"))?;
    Ok(blobs)
}

/// Copies every table (and, with the files, their objects); answers the rows and
/// object bytes written.
async fn copy_all(
    source: &Db,
    target: &Db,
    source_blobs: &Blobs,
    target_blobs: &Blobs,
    progress: &Progress,
) -> anyhow::Result<(u64, u64)> {
    let (mut rows_copied, mut bytes_copied) = (0, 0);
    // What the target storage holds already (one listing, instead of a request per
    // object): only those objects are read back to be checked.
    let present: HashSet<String> = target_blobs
        .list("")
        .await
        .context("listing the target storage")?
        .into_iter()
        .collect();
    for t in &TABLES {
        let mut after = String::new();
        loop {
            let page = source
                .read()
                .all(t.page(&after), values)
                .await
                .with_context(|| format!("reading {} from the source", t.name))?;
            let Some(last) = page.last() else { break };
            after = last[0].clone().unwrap_or_default();
            if t.name == "files" {
                bytes_copied +=
                    copy_objects(t, &page, source_blobs, target_blobs, &present, progress).await?;
            }
            let rows: Vec<Values> = page.into_iter().map(|r| t.adapt(r)).collect();
            rows_copied += write_rows(t, &rows, target).await?;
            progress
                .rows
                .fetch_add(rows.len() as u64, Ordering::Relaxed);
        }
    }
    Ok((rows_copied, bytes_copied))
}

/// Inserts the rows missing from the target, then checks that every row is there as
/// the source has it; answers how many were inserted.
async fn write_rows(t: &Table, rows: &[Values], target: &Db) -> anyhow::Result<u64> {
    let mut inserted = 0;
    for chunk in rows.chunks(INSERT_ROWS) {
        inserted += target
            .write()
            .execute(t.insert(chunk))
            .await
            .with_context(|| {
                format!(
                    "writing {} {}…{} to the target",
                    t.name,
                    chunk[0][0].as_deref().unwrap_or(""),
                    chunk[chunk.len() - 1][0].as_deref().unwrap_or("")
                )
            })?;
        let keys: Vec<String> = chunk
            .iter()
            .map(|r| r[0].clone().unwrap_or_default())
            .collect();
        let there = target
            .read()
            .all(t.rows_with_keys(&keys), values)
            .await
            .with_context(|| format!("reading {} back from the target", t.name))?;
        let there: std::collections::HashMap<&str, &Values> = there
            .iter()
            .map(|r| (r[0].as_deref().unwrap_or(""), r))
            .collect();
        for row in chunk {
            let key = row[0].as_deref().unwrap_or("");
            match there.get(key) {
                None => bail!("{} {key}: missing from the target after writing it", t.name),
                Some(got) => {
                    if let Some(why) = t.difference(row, got) {
                        bail!(
                            "{} {key}: the target already holds a different row ({why}); \
                             nothing more was copied",
                            t.name
                        );
                    }
                }
            }
        }
    }
    Ok(inserted)
}

/// Copies the objects of a page of files (a few at once); answers the bytes written.
async fn copy_objects(
    t: &Table,
    files: &[Values],
    source: &Blobs,
    target: &Blobs,
    present: &HashSet<String>,
    progress: &Progress,
) -> anyhow::Result<u64> {
    let (id, name, key, size, sha) = (
        t.col("id"),
        t.col("name"),
        t.col("blob_key"),
        t.col("size_bytes"),
        t.col("sha256"),
    );
    let copies = files.iter().map(|f| {
        let text = |i: usize| f[i].clone().unwrap_or_default();
        let file = FileObject {
            id: text(id),
            name: text(name),
            key: text(key),
            size: text(size).parse().unwrap_or(0),
            sha256: text(sha),
        };
        async move {
            let there = present.contains(&file.key);
            let written = copy_object(&file, source, target, there).await?;
            progress.bytes.fetch_add(file.size, Ordering::Relaxed);
            anyhow::Ok(written)
        }
    });
    let mut copies = futures::stream::iter(copies).buffer_unordered(OBJECTS_AT_ONCE);
    let mut written = 0;
    while let Some(n) = copies.next().await {
        written += n?;
    }
    Ok(written)
}

struct FileObject {
    id: String,
    name: String,
    key: String,
    size: u64,
    sha256: String,
}

/// Copies one file's object unless the target holds it already (`there`) with the
/// recorded SHA-256; answers the bytes written.
async fn copy_object(
    f: &FileObject,
    source: &Blobs,
    target: &Blobs,
    there: bool,
) -> anyhow::Result<u64> {
    let matches = |size: u64, sha: &str| size == f.size && sha == f.sha256;
    let named = |what: &str| format!("file {} ({:?}): {what}", f.id, f.name);
    if there {
        match target.digest(&f.key).await {
            Ok(d) if matches(d.size_bytes, &d.sha256) => return Ok(0),
            // A copy cut short, or something else: written again below.
            Ok(_) | Err(BlobError::NotFound(_)) => {}
            Err(e) => return Err(e).with_context(|| named("reading the target's copy")),
        }
    }
    let missing = || {
        anyhow::anyhow!(named(&format!(
            "its content ({}) is missing from the source storage; nothing more was copied",
            f.key
        )))
    };
    let stored = if f.size <= WHOLE_OBJECT {
        let content = match source.get_bytes(&f.key, WHOLE_OBJECT).await {
            Ok(c) => c,
            Err(BlobError::NotFound(_)) => return Err(missing()),
            Err(BlobError::TooLarge { .. }) => bail!(named(&format!(
                "the source's content is larger than its record's {} bytes: the source \
                 storage is corrupt; nothing more was copied",
                f.size
            ))),
            Err(e) => return Err(e).with_context(|| named("reading it")),
        };
        target
            .put_bytes(&f.key, content)
            .await
            .with_context(|| named("copying it"))?
    } else {
        let content = match source.get_stream(&f.key).await {
            Ok(c) => c,
            Err(BlobError::NotFound(_)) => return Err(missing()),
            Err(e) => return Err(e).with_context(|| named("reading it")),
        };
        target
            .put_stream(&f.key, content, u64::MAX)
            .await
            .with_context(|| named("copying it"))?
    };
    if !matches(stored.size_bytes, &stored.sha256) {
        target.delete(&f.key).await.ok();
        bail!(named(&format!(
            "the source's content does not match its record ({} bytes with SHA-256 {}, the \
             record says {} bytes with {}): the source storage is corrupt; nothing more was \
             copied",
            stored.size_bytes, stored.sha256, f.size, f.sha256
        )));
    }
    let check = target
        .digest(&f.key)
        .await
        .with_context(|| named("reading the copy back"))?;
    if !matches(check.size_bytes, &check.sha256) {
        bail!(named(
            "the target storage gives back other content than was written"
        ));
    }
    Ok(stored.size_bytes)
}

/// Says every few seconds how far the copy is, with a rate and an estimate.
async fn report_progress(progress: Arc<Progress>, plan: Plan, say: Arc<impl Fn(&str)>) {
    let started = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_secs(2));
    tick.tick().await;
    loop {
        tick.tick().await;
        let rows = progress.rows.load(Ordering::Relaxed);
        let bytes = progress.bytes.load(Ordering::Relaxed);
        let secs = started.elapsed().as_secs_f64().max(0.001);
        let (total_rows, total_bytes) = (plan.total_rows().max(1), plan.bytes.max(1));
        // The larger share of what is left, rows or bytes, at the rate so far.
        let mut done = rows as f64 / total_rows as f64;
        if plan.bytes > 0 {
            done = done.min(bytes as f64 / total_bytes as f64);
        }
        let eta = if done > 0.0 {
            format!("about {:.0} s left", secs / done - secs)
        } else {
            "estimating".to_owned()
        };
        say(&format!(
            "copied {rows} of {} rows ({:.0} rows/s), {} of {} ({:.1} MB/s), {eta}",
            plan.total_rows(),
            rows as f64 / secs,
            human_bytes(bytes),
            human_bytes(plan.bytes),
            bytes as f64 / secs / 1e6,
        ));
    }
}
