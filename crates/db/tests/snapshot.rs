//! Reading a stopped installation's SQLite file (what `admin migrate` does): a handle
//! that closes leaves the file whole on its own; a snapshot reads it without writing a
//! byte, and refuses a file whose WAL still holds writes.

use forklift_db::{Conn, Db, q};

fn digest(dir: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let p = e.unwrap().path();
            (p.display().to_string(), std::fs::read(&p).unwrap())
        })
        .collect();
    files.sort();
    files
}

async fn add_user(db: &Db, id: &str) {
    let q = q!(
        "INSERT INTO users (id, email, role, created_at) VALUES ($1, $2, 'user', 0)",
        id,
        format!("{id}@x")
    );
    db.write().execute(q).await.unwrap();
}

#[tokio::test]
async fn a_closed_file_is_whole_and_a_snapshot_reads_it_without_writing() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("f.db").display());
    let db = Db::open(&url).await.unwrap();
    add_user(&db, "u1").await;
    // Reads on every reader thread, so that a reader is as likely as the writer to be
    // the last connection to close.
    for _ in 0..20 {
        db.read()
            .all(q!("SELECT id FROM users"), |r| r.int(0).or(Ok(0)))
            .await
            .ok();
    }
    db.close().await;
    assert!(
        !dir.path().join("f.db-wal").exists(),
        "closing folded the WAL into the file"
    );
    let before = digest(dir.path());
    let snap = Db::open_snapshot(&url).await.unwrap();
    let ids = snap
        .read()
        .all(q!("SELECT id FROM users"), |r| Ok(r.str(0)?.to_owned()))
        .await
        .unwrap();
    assert_eq!(ids, ["u1"]);
    assert!(
        snap.write().execute(q!("DELETE FROM users")).await.is_err(),
        "a snapshot cannot write"
    );
    snap.close().await;
    assert_eq!(
        digest(dir.path()),
        before,
        "not a byte written, no file added"
    );
}

#[tokio::test]
async fn a_file_with_writes_still_in_its_wal_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("f.db").display());
    let db = Db::open(&url).await.unwrap();
    add_user(&db, "u1").await;
    // Still open: the write may be in the WAL only.
    let err = Db::open_snapshot(&url).await.unwrap_err().to_string();
    assert!(err.contains("f.db-wal holds writes"), "{err}");
    db.close().await;
    Db::open_snapshot(&url).await.unwrap().close().await;
}

#[tokio::test]
async fn a_missing_file_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("none.db").display());
    let err = Db::open_snapshot(&url).await.unwrap_err().to_string();
    assert!(err.contains("there is no database file at"), "{err}");
    assert!(!dir.path().join("none.db").exists(), "nothing created");
}
