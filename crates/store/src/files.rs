//! File records (uploads and job outputs).

use crate::{Result, Store};
use forklift_db::{Cols, Conn, Row, q};
use forklift_domain::{FileId, FileRecord, UserId};

/// A file about to be recorded (its content is already in object storage).
#[derive(Debug, Clone)]
pub struct NewFile {
    /// Whose it is.
    pub owner_id: UserId,
    /// Its name.
    pub name: String,
    /// Media type.
    pub content_type: String,
    /// Content length.
    pub size_bytes: u64,
    /// Hex SHA-256.
    pub sha256: String,
    /// Object storage key.
    pub blob_key: String,
}

/// The columns [`file_from_row`] reads, in its order.
macro_rules! file_columns {
    () => {
        "id, owner_id, name, content_type, size_bytes, sha256, blob_key, source_job_id, created_at"
    };
}

impl Store {
    /// Records an uploaded file under a fresh id.
    pub async fn insert_file(&self, id: FileId, f: &NewFile, now: i64) -> Result<FileRecord> {
        let q = q!(
            concat!(
                "INSERT INTO files (id, owner_id, name, content_type, size_bytes, sha256, blob_key,
                    created_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING ",
                file_columns!()
            ),
            id.to_string(),
            f.owner_id.to_string(),
            &f.name,
            &f.content_type,
            f.size_bytes as i64,
            &f.sha256,
            &f.blob_key,
            now,
        );
        Ok(self.db.write().one(q, file_from_row).await?)
    }

    /// A file by id, whoever owns it (callers check the owner).
    pub async fn get_file(&self, id: FileId) -> Result<Option<FileRecord>> {
        let q = q!(
            concat!("SELECT ", file_columns!(), " FROM files WHERE id = $1"),
            id.to_string()
        );
        Ok(self.db.read().optional(q, file_from_row).await?)
    }

    /// A page of one owner's files, newest first, older than `before` if given.
    pub async fn list_files(
        &self,
        owner: UserId,
        before: Option<FileId>,
        limit: u32,
    ) -> Result<Vec<FileRecord>> {
        let q = q!(
            concat!(
                "SELECT ",
                file_columns!(),
                " FROM files WHERE owner_id = $1 AND ($2 IS NULL OR id < $2)
                 ORDER BY id DESC LIMIT $3"
            ),
            owner.to_string(),
            before.map(|b| b.to_string()),
            i64::from(limit),
        );
        Ok(self.db.read().all(q, file_from_row).await?)
    }

    /// Deletes a file's record and returns it (the caller deletes the content).
    pub async fn delete_file(&self, id: FileId) -> Result<Option<FileRecord>> {
        let q = q!(
            concat!(
                "DELETE FROM files WHERE id = $1 RETURNING ",
                file_columns!()
            ),
            id.to_string()
        );
        Ok(self.db.write().optional(q, file_from_row).await?)
    }
}

fn file_from_row(r: &dyn Row) -> forklift_db::Result<FileRecord> {
    let mut c = Cols::new(r);
    Ok(FileRecord {
        id: c.parse()?,
        owner_id: c.parse()?,
        name: c.text()?,
        content_type: c.text()?,
        size_bytes: c.int()? as u64,
        sha256: c.text()?,
        blob_key: c.text()?,
        source_job_id: c.opt_parse()?,
        created_at: c.int()?,
    })
}
