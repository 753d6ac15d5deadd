//! Worker processes as they report themselves (for the admin console).

use crate::{Result, Store, corrupt};
use forklift_domain::Millis;
use sqlx::Row;

/// A worker process's row: who it is, what it consumes, when it was last heard of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerRecord {
    /// Its name, unique among processes.
    pub name: String,
    /// The queues it consumes.
    pub queues: Vec<String>,
    /// How many jobs it runs at once, over all its queues.
    pub slots: i64,
    /// When it started.
    pub started_at: Millis,
    /// When it last reported itself.
    pub last_seen_at: Millis,
}

impl Store {
    /// Records a worker, or refreshes its row (queues, slots, times) if it has one.
    pub async fn upsert_worker(&self, w: &WorkerRecord) -> Result<()> {
        let queues = serde_json::to_string(&w.queues).map_err(corrupt)?;
        sqlx::query(
            "INSERT INTO workers (name, queues, slots, started_at, last_seen_at)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (name) DO UPDATE SET queues = excluded.queues,
                slots = excluded.slots, started_at = excluded.started_at,
                last_seen_at = excluded.last_seen_at",
        )
        .bind(&w.name)
        .bind(queues)
        .bind(w.slots)
        .bind(w.started_at)
        .bind(w.last_seen_at)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    /// Removes a worker's row (after it stopped gracefully). True if there was one.
    pub async fn delete_worker(&self, name: &str) -> Result<bool> {
        let done = sqlx::query("DELETE FROM workers WHERE name = $1")
            .bind(name)
            .execute(&self.writer)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// The workers that reported themselves at or after `seen_since`, by name.
    pub async fn workers_seen_since(&self, seen_since: Millis) -> Result<Vec<WorkerRecord>> {
        let rows = sqlx::query(
            "SELECT name, queues, slots, started_at, last_seen_at FROM workers
             WHERE last_seen_at >= $1 ORDER BY name",
        )
        .bind(seen_since)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(worker_from_row).collect()
    }
}

fn worker_from_row(r: &sqlx::any::AnyRow) -> Result<WorkerRecord> {
    let queues: String = r.try_get("queues")?;
    Ok(WorkerRecord {
        name: r.try_get("name")?,
        queues: serde_json::from_str(&queues).map_err(corrupt)?,
        slots: r.try_get("slots")?,
        started_at: r.try_get("started_at")?,
        last_seen_at: r.try_get("last_seen_at")?,
    })
}
