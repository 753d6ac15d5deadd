//! File records (uploads and job outputs).

use crate::{Result, Store, corrupt, q};
use forklift_domain::{FileId, FileRecord, UserId};
use sqlx::Row;

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

pub(crate) const FILE_COLUMNS: &str =
    "id, owner_id, name, content_type, size_bytes, sha256, blob_key, source_job_id, created_at";

impl Store {
    /// Records an uploaded file under a fresh id.
    pub async fn insert_file(&self, id: FileId, f: &NewFile, now: i64) -> Result<FileRecord> {
        let row = q!(
            "INSERT INTO files (id, owner_id, name, content_type, size_bytes, sha256, blob_key, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING {FILE_COLUMNS}"
        )
        .bind(id.to_string())
        .bind(f.owner_id.to_string())
        .bind(&f.name)
        .bind(&f.content_type)
        .bind(f.size_bytes as i64)
        .bind(&f.sha256)
        .bind(&f.blob_key)
        .bind(now)
        .fetch_one(&self.writer)
        .await?;
        file_from_row(&row)
    }

    /// A file by id, whoever owns it (callers check the owner).
    pub async fn get_file(&self, id: FileId) -> Result<Option<FileRecord>> {
        let row = q!("SELECT {FILE_COLUMNS} FROM files WHERE id = $1")
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| file_from_row(&r)).transpose()
    }

    /// A page of one owner's files, newest first, older than `before` if given.
    pub async fn list_files(
        &self,
        owner: UserId,
        before: Option<FileId>,
        limit: u32,
    ) -> Result<Vec<FileRecord>> {
        let rows = q!(
            "SELECT {FILE_COLUMNS} FROM files WHERE owner_id = $1 AND ($2 IS NULL OR id < $2)
             ORDER BY id DESC LIMIT $3"
        )
        .bind(owner.to_string())
        .bind(before.map(|b| b.to_string()))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(file_from_row).collect()
    }

    /// Deletes a file's record and returns it (the caller deletes the content).
    pub async fn delete_file(&self, id: FileId) -> Result<Option<FileRecord>> {
        let row = q!("DELETE FROM files WHERE id = $1 RETURNING {FILE_COLUMNS}")
            .bind(id.to_string())
            .fetch_optional(&self.writer)
            .await?;
        row.map(|r| file_from_row(&r)).transpose()
    }
}

pub(crate) fn file_from_row(r: &sqlx::any::AnyRow) -> Result<FileRecord> {
    let id: String = r.try_get("id")?;
    let owner: String = r.try_get("owner_id")?;
    let job: Option<String> = r.try_get("source_job_id")?;
    Ok(FileRecord {
        id: id.parse().map_err(corrupt)?,
        owner_id: owner.parse().map_err(corrupt)?,
        name: r.try_get("name")?,
        content_type: r.try_get("content_type")?,
        size_bytes: r.try_get::<i64, _>("size_bytes")? as u64,
        sha256: r.try_get("sha256")?,
        blob_key: r.try_get("blob_key")?,
        source_job_id: job.map(|j| j.parse()).transpose().map_err(corrupt)?,
        created_at: r.try_get("created_at")?,
    })
}
