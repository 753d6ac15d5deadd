//! The SQLite backend: rusqlite connections, each owned by one thread. A query is sent
//! to a thread once and its mapped rows come back once, so rows never cross threads
//! one by one and are built into domain types where SQLite hands them out.
//!
//! - Reads go to a few reader threads that share one queue (WAL: they never wait for
//!   the writer).
//! - Writes go to the one writer thread; SQLite allows one writer at a time anyway.
//!   What is waiting when it looks is run in one transaction (group commit), each write
//!   inside its own savepoint, so a failing write rolls back and reports only itself.
//!   Nobody hears of a write before its transaction commits; if the commit fails,
//!   every write in it answers the error.

use crate::query::{Arg, Conn, Map, Query, Row};
use crate::{DbError, Result};
use rusqlite::config::DbConfig;
use rusqlite::{CachedStatement, Connection, OpenFlags, ffi};
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::pin::pin;
use std::sync::{Arc, PoisonError, RwLock};
use std::task::{Context, Poll, Waker};
use std::time::Duration;
use tokio::sync::{oneshot, watch};

/// Reader connections. Reads are short and CPU-bound, so a few cover the cores; more
/// than one keeps a slow read (a large list) from holding up the others.
const READERS: usize = 4;

/// At most this many writes share one transaction, which bounds how long the first of
/// them waits for its answer.
const MAX_BATCH: usize = 256;

/// Another process (a second handle on the same file) may hold the write lock for a
/// while: wait rather than fail.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Which thread a statement runs on.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Side {
    Read,
    Write,
}

/// How the file is opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// For this process to read and write (the one writer thread writes).
    ReadWrite,
    /// A stopped installation's file, read and never written: read-only, and
    /// `immutable`, so SQLite creates no `-wal` or `-shm` file and takes no lock.
    Snapshot,
}

/// Handles on the reader and writer threads; cheap to clone.
#[derive(Clone)]
pub(crate) struct Sqlite {
    inner: Arc<Inner>,
}

struct Inner {
    /// The threads' queues; `None` once closed. Sending under the read lock means no
    /// query can slip in after `close` took them, to wait for an answer forever.
    queues: RwLock<Option<Queues>>,
    /// Changes (to closed) when the last thread has ended.
    ended: watch::Receiver<()>,
    path: PathBuf,
    mode: Mode,
}

struct Queues {
    read: flume::Sender<ReadJob>,
    write: flume::Sender<Box<dyn Write>>,
}

impl std::fmt::Debug for Sqlite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sqlite").finish_non_exhaustive()
    }
}

type ReadJob = Box<dyn FnOnce(&Connection) + Send>;

impl Sqlite {
    /// Opens the (already migrated) database file with one writer and [`READERS`]
    /// reader connections, each on its own thread.
    pub async fn open(path: &Path, mode: Mode) -> Result<Self> {
        let (read, read_queue) = flume::unbounded::<ReadJob>();
        let (write, write_queue) = flume::unbounded::<Box<dyn Write>>();
        // Every thread holds a sender; the receiver sees the channel close when the
        // last one has ended.
        let (alive, ended) = watch::channel(());
        let mut opened = Vec::with_capacity(READERS + 1);
        opened.push(spawn("forklift-sqlite-writer", path, mode, Side::Write, {
            let alive = alive.clone();
            move |c| writer(c, write_queue, alive)
        })?);
        for i in 0..READERS {
            let queue = read_queue.clone();
            let alive = alive.clone();
            opened.push(spawn(
                &format!("forklift-sqlite-reader-{i}"),
                path,
                mode,
                Side::Read,
                move |c| reader(c, queue, alive),
            )?);
        }
        let sqlite = Self {
            inner: Arc::new(Inner {
                queues: RwLock::new(Some(Queues { read, write })),
                ended,
                path: path.to_owned(),
                mode,
            }),
        };
        for o in opened {
            // If one fails, dropping `sqlite` ends the threads that did open.
            o.await
                .map_err(|_| DbError::Db(sqlx::Error::WorkerCrashed))??;
        }
        Ok(sqlite)
    }

    /// Runs `f` with a connection of `side` on its thread, and hands back its result.
    pub async fn run<T, F>(&self, side: Side, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        {
            let queues = self
                .inner
                .queues
                .read()
                .unwrap_or_else(PoisonError::into_inner);
            let Some(queues) = queues.as_ref() else {
                return Err(closed());
            };
            let sent = match side {
                Side::Read => queues
                    .read
                    .send(Box::new(move |c: &Connection| {
                        let _ = reply.send(f(c));
                    }))
                    .is_ok(),
                Side::Write => queues
                    .write
                    .send(Box::new(Queued {
                        f: Some(f),
                        result: None,
                        reply,
                    }))
                    .is_ok(),
            };
            if !sent {
                return Err(closed());
            }
        }
        // A closed reply channel means the thread dropped the job: it panicked.
        answer
            .await
            .map_err(|_| DbError::Db(sqlx::Error::WorkerCrashed))?
    }

    /// Stops taking queries, lets the threads finish what is queued, and waits until
    /// every connection is closed.
    pub async fn close(&self) {
        self.inner
            .queues
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        let mut ended = self.inner.ended.clone();
        // Nothing is ever sent: this returns when the last thread drops its sender.
        while ended.changed().await.is_ok() {}
        if self.inner.mode == Mode::ReadWrite {
            // The last connection to close folds the WAL into the database file and
            // removes it, unless it is a query-only reader: closing one read-write
            // connection last leaves a file that is whole on its own (what a copy of a
            // stopped installation, or `admin migrate`, reads).
            let path = self.inner.path.clone();
            let _ = tokio::task::spawn_blocking(move || {
                if let Ok(c) = Connection::open_with_flags(&path, OpenFlags::SQLITE_OPEN_READ_WRITE)
                {
                    let _ = c.close();
                }
            })
            .await;
        }
    }
}

/// What a query on a closed handle answers (as a closed sqlx pool did).
fn closed() -> DbError {
    DbError::Db(sqlx::Error::PoolClosed)
}

/// Starts a thread owning a new connection to `path`; the answer says whether the
/// connection opened.
fn spawn(
    name: &str,
    path: &Path,
    mode: Mode,
    side: Side,
    run: impl FnOnce(Connection) + Send + 'static,
) -> Result<oneshot::Receiver<Result<()>>> {
    let (opened, answer) = oneshot::channel();
    let path: PathBuf = path.to_owned();
    std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(move || match connect(&path, mode, side) {
            Ok(c) => {
                let _ = opened.send(Ok(()));
                run(c);
            }
            Err(e) => {
                let _ = opened.send(Err(e.into()));
            }
        })
        .map_err(|e| DbError::Db(sqlx::Error::Io(e)))?;
    Ok(answer)
}

fn connect(path: &Path, mode: Mode, side: Side) -> rusqlite::Result<Connection> {
    // Each connection stays on its own thread: SQLite's own mutexes are not needed.
    let c = match mode {
        Mode::ReadWrite => Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?,
        Mode::Snapshot => Connection::open_with_flags(
            snapshot_uri(path),
            OpenFlags::SQLITE_OPEN_READ_ONLY
                | OpenFlags::SQLITE_OPEN_URI
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?,
    };
    c.busy_timeout(BUSY_TIMEOUT)?;
    // WAL is recorded in the file (the migration connection set it); NORMAL syncs the
    // WAL at checkpoints only, which in WAL mode still survives a crash of the process.
    c.execute_batch("PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;")?;
    if let Side::Read = side {
        c.execute_batch("PRAGMA query_only = ON;")?;
    }
    // Every statement the record and the accounts run, and the list variants in use, stay prepared.
    c.set_prepared_statement_cache_capacity(128);
    // Plans never depend on bound values: without this SQLite re-prepares a statement
    // whenever a value it peeked at while planning (`LIMIT $n`, for one) is bound
    // anew, which made every page of a list parse its SQL again.
    c.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)?;
    Ok(c)
}

/// `file:PATH?immutable=1`, with the characters a URI path cannot hold escaped.
fn snapshot_uri(path: &Path) -> String {
    let mut uri = String::from("file:");
    for b in path.to_string_lossy().bytes() {
        match b {
            b'%' | b'?' | b'#' => uri.push_str(&format!("%{b:02X}")),
            _ => uri.push(b as char),
        }
    }
    uri.push_str("?immutable=1");
    uri
}

fn reader(c: Connection, queue: flume::Receiver<ReadJob>, _alive: watch::Sender<()>) {
    while let Ok(job) = queue.recv() {
        // A panic fails that query alone: its reply channel closes as it unwinds.
        let _ = catch_unwind(AssertUnwindSafe(|| job(&c)));
    }
    // Closed before `_alive` goes: `close` hears of the end only once it is closed.
    drop(c);
}

/// A write waiting for the writer thread.
trait Write: Send {
    /// Runs the write's statements; true if they succeeded. The result waits inside
    /// until [`Write::answer`].
    fn run(&mut self, c: &Connection) -> bool;
    /// Tells the caller how it went: the write's own error if it failed, else
    /// `batch`'s error if its transaction did not commit, else its result.
    fn answer(self: Box<Self>, batch: Option<&rusqlite::Error>);
}

struct Queued<F, T> {
    f: Option<F>,
    result: Option<Result<T>>,
    reply: oneshot::Sender<Result<T>>,
}

impl<F, T> Write for Queued<F, T>
where
    F: FnOnce(&Connection) -> Result<T> + Send,
    T: Send,
{
    fn run(&mut self, c: &Connection) -> bool {
        let f = self.f.take().expect("a write runs once");
        let result = f(c);
        let ok = result.is_ok();
        self.result = Some(result);
        ok
    }

    fn answer(self: Box<Self>, batch: Option<&rusqlite::Error>) {
        let answer = match (self.result, batch) {
            (Some(Err(e)), _) => Err(e),
            (_, Some(e)) => Err(again(e).into()),
            (Some(Ok(v)), None) => Ok(v),
            // It panicked (and was rolled back) in a transaction that committed.
            (None, None) => Err(DbError::Db(sqlx::Error::WorkerCrashed)),
        };
        let _ = self.reply.send(answer);
    }
}

fn writer(c: Connection, queue: flume::Receiver<Box<dyn Write>>, _alive: watch::Sender<()>) {
    while let Ok(first) = queue.recv() {
        let mut batch = Vec::with_capacity(16);
        batch.push(first);
        batch.extend(queue.try_iter().take(MAX_BATCH - 1));
        commit_batch(&c, batch);
    }
    // Closed before `_alive` goes: `close` hears of the end only once it is closed.
    drop(c);
}

/// Runs `batch` in one transaction, each write in its own savepoint, and answers every
/// write once the transaction's fate is known.
///
/// Should SQLite roll the whole transaction back by itself (it may, on a full disk or
/// an I/O error), the writes run so far fail with it and the rest go on in a new
/// transaction.
fn commit_batch(c: &Connection, batch: Vec<Box<dyn Write>>) {
    let mut waiting = batch.into_iter().peekable();
    while waiting.peek().is_some() {
        if let Err(e) = begin(c) {
            for w in waiting {
                w.answer(Some(&e));
            }
            return;
        }
        let mut ran = Vec::new();
        let mut outcome = Ok(());
        for mut w in waiting.by_ref() {
            let step = run_in_savepoint(c, &mut *w);
            ran.push(w);
            if let Err(e) = step {
                outcome = Err(e);
                break;
            }
            if c.is_autocommit() {
                outcome = Err(rolled_back());
                break;
            }
        }
        let outcome = outcome.and_then(|()| execute(c, "COMMIT"));
        if outcome.is_err() && !c.is_autocommit() {
            // Whatever failed, nothing of this transaction may commit later.
            let _ = c.execute_batch("ROLLBACK");
        }
        let error = outcome.as_ref().err();
        for w in ran {
            w.answer(error);
        }
    }
}

fn begin(c: &Connection) -> rusqlite::Result<()> {
    if !c.is_autocommit() {
        // Left open by a rollback that failed: start from a clean slate.
        c.execute_batch("ROLLBACK")?;
    }
    // IMMEDIATE takes the write lock now (waiting out another process, if any), so
    // no write in the batch can fail for want of it.
    execute(c, "BEGIN IMMEDIATE")
}

/// Runs one write inside a savepoint: kept if it succeeded, rolled back if it failed
/// (or panicked). An error here is the savepoint's own, and ends the transaction.
fn run_in_savepoint(c: &Connection, w: &mut dyn Write) -> rusqlite::Result<()> {
    execute(c, "SAVEPOINT write")?;
    let ok = catch_unwind(AssertUnwindSafe(|| w.run(c))).unwrap_or(false);
    if c.is_autocommit() {
        // SQLite rolled the whole transaction back; the caller notices.
        return Ok(());
    }
    if !ok {
        execute(c, "ROLLBACK TO write")?;
    }
    execute(c, "RELEASE write")
}

fn execute(c: &Connection, sql: &str) -> rusqlite::Result<()> {
    c.prepare_cached(sql)?.execute([])?;
    Ok(())
}

fn rolled_back() -> rusqlite::Error {
    rusqlite::Error::SqliteFailure(
        ffi::Error::new(ffi::SQLITE_ABORT),
        Some("the transaction was rolled back by a failing write in the same batch".into()),
    )
}

/// A copy of a batch's error for each write in the batch (rusqlite errors are not
/// `Clone`): SQLite's own code and message, or else the message alone.
fn again(e: &rusqlite::Error) -> rusqlite::Error {
    match e {
        rusqlite::Error::SqliteFailure(code, message) => {
            rusqlite::Error::SqliteFailure(*code, message.clone())
        }
        other => rusqlite::Error::SqliteFailure(
            ffi::Error::new(ffi::SQLITE_ERROR),
            Some(other.to_string()),
        ),
    }
}

/// The value of a future that never waits. Statements on a [`Local`] connection run in
/// place, so code written once for both backends (async, for PostgreSQL's sake) runs
/// to completion here in one poll.
pub(crate) fn ready<F: Future>(f: F) -> F::Output {
    match pin!(f).poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(v) => v,
        Poll::Pending => unreachable!("SQLite statements run in place and never wait"),
    }
}

/// A connection on the thread that owns it: statements run in place.
pub(crate) struct Local<'c>(pub &'c Connection);

impl Conn for Local<'_> {
    async fn all<T: Send + 'static>(&mut self, q: Query, map: Map<T>) -> Result<Vec<T>> {
        let mut stmt = prepare(self.0, &q)?;
        let mut rows = stmt.raw_query();
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            out.push(map(row)?);
        }
        Ok(out)
    }

    async fn execute(&mut self, q: Query) -> Result<u64> {
        Ok(prepare(self.0, &q)?.raw_execute()? as u64)
    }
}

/// The cached statement for `q.sql`, with `q.args` bound.
///
/// To SQLite, `$n` is a *named* parameter, and names are numbered by first appearance
/// in the text: in `SET worker = $2 … WHERE id = $1`, `$2` is parameter 1. So each
/// parameter is bound by the number in its name, which is how PostgreSQL reads `$n`,
/// and a name used twice is one parameter.
fn prepare<'c>(c: &'c Connection, q: &Query) -> rusqlite::Result<CachedStatement<'c>> {
    let mut stmt = c.prepare_cached(&q.sql)?;
    for i in 1..=stmt.parameter_count() {
        let name = stmt.parameter_name(i).unwrap_or("?");
        let arg = name
            .strip_prefix('$')
            .and_then(|n| n.parse::<usize>().ok())
            .and_then(|n| q.args.get(n.checked_sub(1)?))
            .ok_or_else(|| rusqlite::Error::InvalidParameterName(name.to_owned()))?;
        match arg {
            Arg::Int(v) => stmt.raw_bind_parameter(i, *v)?,
            Arg::Text(s) => stmt.raw_bind_parameter(i, s.as_str())?,
            Arg::Null => stmt.raw_bind_parameter(i, rusqlite::types::Null)?,
        }
    }
    Ok(stmt)
}

impl Row for rusqlite::Row<'_> {
    fn len(&self) -> usize {
        self.as_ref().column_count()
    }

    fn int(&self, i: usize) -> Result<i64> {
        Ok(self.get(i)?)
    }

    fn opt_int(&self, i: usize) -> Result<Option<i64>> {
        Ok(self.get(i)?)
    }

    fn str(&self, i: usize) -> Result<&str> {
        let v = self.get_ref(i)?;
        v.as_str().map_err(|e| conversion(i, v, e))
    }

    fn opt_str(&self, i: usize) -> Result<Option<&str>> {
        let v = self.get_ref(i)?;
        v.as_str_or_null().map_err(|e| conversion(i, v, e))
    }
}

fn conversion(
    i: usize,
    v: rusqlite::types::ValueRef<'_>,
    e: rusqlite::types::FromSqlError,
) -> DbError {
    rusqlite::Error::FromSqlConversionFailure(i, v.data_type(), Box::new(e)).into()
}

#[cfg(test)]
mod tests {
    //! The writer's group commit, driven batch by batch on a scratch table.

    use super::*;
    use crate::q;

    fn scratch() -> (tempfile::TempDir, Connection) {
        let dir = tempfile::tempdir().unwrap();
        let c = Connection::open(dir.path().join("t.db")).unwrap();
        c.execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA foreign_keys = ON;
             CREATE TABLE parents (id INTEGER PRIMARY KEY);
             CREATE TABLE t (v TEXT PRIMARY KEY, parent INTEGER REFERENCES parents (id));",
        )
        .unwrap();
        (dir, c)
    }

    /// A queued write and the receiver of its answer.
    fn write<T: Send + 'static>(
        f: impl FnOnce(&Connection) -> Result<T> + Send + 'static,
    ) -> (Box<dyn Write>, oneshot::Receiver<Result<T>>) {
        let (reply, answer) = oneshot::channel();
        let w = Box::new(Queued {
            f: Some(f),
            result: None,
            reply,
        });
        (w, answer)
    }

    fn insert(v: &'static str) -> (Box<dyn Write>, oneshot::Receiver<Result<u64>>) {
        write(move |c| ready(Local(c).execute(q!("INSERT INTO t (v) VALUES ($1)", v))))
    }

    fn values(c: &Connection) -> Vec<String> {
        let mut stmt = c.prepare("SELECT v FROM t ORDER BY v").unwrap();
        stmt.query_map([], |r| r.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap()
    }

    fn answer<T>(mut a: oneshot::Receiver<Result<T>>) -> Result<T> {
        a.try_recv().expect("every write is answered")
    }

    #[test]
    fn parameters_bind_by_the_number_in_their_name() {
        let (_dir, c) = scratch();
        // SQLite numbers `$2` first here; it must still get the second argument.
        let q = q!("SELECT $2, $1, $2 || $1", "a", "b");
        let row = ready(Local(&c).one(q, |r| {
            Ok((
                r.str(0)?.to_owned(),
                r.str(1)?.to_owned(),
                r.str(2)?.to_owned(),
            ))
        }))
        .unwrap();
        assert_eq!(row, ("b".into(), "a".into(), "ba".into()));

        // Eleven arguments, the last used twice (as `insert_job` does).
        let q = q!(
            "SELECT $1 + $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9 + $10, $11, $11 * 2",
            1,
            2,
            3,
            4,
            5,
            6,
            7,
            8,
            9,
            10,
            100,
        );
        let row = ready(Local(&c).one(q, |r| Ok((r.int(0)?, r.int(1)?, r.int(2)?)))).unwrap();
        assert_eq!(row, (55, 100, 200));

        let missing = ready(Local(&c).one(q!("SELECT $2", 1), |r| r.int(0)));
        assert!(
            matches!(missing, Err(DbError::Sqlite(rusqlite::Error::InvalidParameterName(n))) if n == "$2")
        );
    }

    #[test]
    fn a_failing_write_rolls_back_only_itself() {
        let (_dir, c) = scratch();
        let (a, a_said) = insert("a");
        // Two statements: the first lands, the second breaks the key; neither may stay.
        let (bad, bad_said) = write(|c| {
            let mut l = Local(c);
            ready(l.execute(q!("INSERT INTO t (v) VALUES ('half')")))?;
            ready(l.execute(q!("INSERT INTO t (v) VALUES ('a')")))
        });
        let (b, b_said) = insert("b");
        commit_batch(&c, vec![a, bad, b]);
        assert_eq!(answer(a_said).unwrap(), 1);
        let err = answer(bad_said).unwrap_err().to_string();
        assert!(err.contains("UNIQUE"), "{err}");
        assert_eq!(answer(b_said).unwrap(), 1);
        assert_eq!(values(&c), ["a", "b"]);
        assert!(c.is_autocommit());
    }

    #[test]
    fn a_panicking_write_fails_alone() {
        let (_dir, c) = scratch();
        let (a, a_said) = insert("a");
        let (boom, boom_said) = write(|c| -> Result<()> {
            ready(Local(c).execute(q!("INSERT INTO t (v) VALUES ('boom')")))?;
            panic!("a bug in a write");
        });
        let (b, b_said) = insert("b");
        commit_batch(&c, vec![a, boom, b]);
        assert!(answer(a_said).is_ok() && answer(b_said).is_ok());
        assert!(answer(boom_said).is_err());
        assert_eq!(values(&c), ["a", "b"]);
    }

    #[test]
    fn when_the_commit_fails_every_write_in_the_batch_fails() {
        let (_dir, c) = scratch();
        let (a, a_said) = insert("a");
        // A deferred foreign key is checked at COMMIT, which then fails.
        let (orphan, orphan_said) = write(|c| {
            let mut l = Local(c);
            ready(l.execute(q!("PRAGMA defer_foreign_keys = ON")))?;
            ready(l.execute(q!("INSERT INTO t (v, parent) VALUES ('orphan', 42)")))
        });
        let (b, b_said) = insert("b");
        commit_batch(&c, vec![a, orphan, b]);
        for said in [a_said, orphan_said, b_said] {
            let err = answer(said).unwrap_err().to_string();
            assert!(err.contains("FOREIGN KEY"), "{err}");
        }
        assert!(values(&c).is_empty(), "nothing of the batch is committed");
        assert!(c.is_autocommit(), "the failed transaction is rolled back");

        // The connection goes on with the next batch.
        let (d, d_said) = insert("d");
        commit_batch(&c, vec![d]);
        assert!(answer(d_said).is_ok());
        assert_eq!(values(&c), ["d"]);
    }

    #[test]
    fn a_transaction_rolled_back_under_the_batch_fails_the_writes_before_and_not_after() {
        let (_dir, c) = scratch();
        let (a, a_said) = insert("a");
        // What SQLite does by itself on a full disk or an I/O error.
        let (rollback, rollback_said) = write(|c| Ok(c.execute_batch("ROLLBACK")?));
        let (b, b_said) = insert("b");
        commit_batch(&c, vec![a, rollback, b]);
        assert!(
            answer(a_said).is_err(),
            "rolled back: must not report success"
        );
        assert!(answer(rollback_said).is_err());
        assert!(answer(b_said).is_ok(), "runs in a transaction of its own");
        assert_eq!(values(&c), ["b"]);
    }

    #[test]
    fn a_cached_statement_is_not_prepared_again_for_new_values() {
        let (dir, c) = scratch();
        c.execute_batch("INSERT INTO t (v) VALUES ('a'), ('b'), ('c')")
            .unwrap();
        drop(c);
        let c = connect(&dir.path().join("t.db"), Mode::ReadWrite, Side::Read).unwrap();
        let sql = "SELECT v FROM t WHERE v > $1 ORDER BY v LIMIT $2";
        for (after, limit) in [("", 1), ("a", 2), ("b", 3), ("", 2)] {
            let rows =
                ready(Local(&c).all(q!(sql, after, limit), |r| Ok(r.str(0)?.to_owned()))).unwrap();
            assert!(rows.len() <= limit as usize, "{rows:?}");
        }
        let stmt = c.prepare_cached(sql).unwrap();
        assert_eq!(
            stmt.get_status(rusqlite::StatementStatus::RePrepare),
            0,
            "binding another LIMIT must not re-plan (and re-parse) the statement"
        );
    }
}
