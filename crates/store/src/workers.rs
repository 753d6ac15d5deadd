//! Worker processes as they report themselves (for the admin console).

use crate::{Result, Store};
use forklift_db::{Cols, Conn, Row, corrupt, q};
use forklift_domain::Millis;

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
        let q = q!(
            "INSERT INTO workers (name, queues, slots, started_at, last_seen_at)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (name) DO UPDATE SET queues = excluded.queues,
                slots = excluded.slots, started_at = excluded.started_at,
                last_seen_at = excluded.last_seen_at",
            &w.name,
            queues,
            w.slots,
            w.started_at,
            w.last_seen_at,
        );
        self.db.write().execute(q).await?;
        Ok(())
    }

    /// Removes a worker's row (after it stopped gracefully). True if there was one.
    pub async fn delete_worker(&self, name: &str) -> Result<bool> {
        let q = q!("DELETE FROM workers WHERE name = $1", name);
        Ok(self.db.write().execute(q).await? > 0)
    }

    /// The workers that reported themselves at or after `seen_since`, by name.
    pub async fn workers_seen_since(&self, seen_since: Millis) -> Result<Vec<WorkerRecord>> {
        let q = q!(
            "SELECT name, queues, slots, started_at, last_seen_at FROM workers
             WHERE last_seen_at >= $1 ORDER BY name",
            seen_since,
        );
        Ok(self.db.read().all(q, worker_from_row).await?)
    }
}

impl Store {
    /// Takes the maintenance `task`'s tick scheduled at `tick` for `holder`, renewing
    /// its lease until `lease_until`. True if `holder` is to run it: nobody ran this
    /// tick (or a later one) yet, and the lease is `holder`'s or has ended by `now`.
    /// Every process of a deployment asks for every tick; exactly one gets each.
    pub async fn take_tick(
        &self,
        task: &str,
        holder: &str,
        tick: Millis,
        lease_until: Millis,
        now: Millis,
    ) -> Result<bool> {
        let q = q!(
            "INSERT INTO maintenance (task, holder, lease_until, last_tick)
             VALUES ($1, $2, $3, $4)
             ON CONFLICT (task) DO UPDATE SET holder = excluded.holder,
                lease_until = excluded.lease_until, last_tick = excluded.last_tick
             WHERE maintenance.last_tick < excluded.last_tick
               AND (maintenance.holder = excluded.holder OR maintenance.lease_until <= $5)
             RETURNING holder",
            task,
            holder,
            lease_until,
            tick,
            now,
        );
        let taken = self.db.write().optional(q, |r| Cols::new(r).text()).await?;
        Ok(taken.is_some())
    }

    /// Ends `holder`'s maintenance leases (it is stopping): another process takes the
    /// next ticks at once instead of after the lease.
    pub async fn hand_over_ticks(&self, holder: &str) -> Result<()> {
        let q = q!(
            "UPDATE maintenance SET lease_until = 0 WHERE holder = $1",
            holder
        );
        self.db.write().execute(q).await?;
        Ok(())
    }

    /// Who holds the maintenance `task`'s lease, until when, and its last tick.
    pub async fn tick_holder(&self, task: &str) -> Result<Option<(String, Millis, Millis)>> {
        let q = q!(
            "SELECT holder, lease_until, last_tick FROM maintenance WHERE task = $1",
            task
        );
        let row = |r: &dyn Row| {
            let mut c = Cols::new(r);
            Ok((c.text()?, c.int()?, c.int()?))
        };
        Ok(self.db.read().optional(q, row).await?)
    }
}

fn worker_from_row(r: &dyn Row) -> forklift_db::Result<WorkerRecord> {
    let mut c = Cols::new(r);
    Ok(WorkerRecord {
        name: c.text()?,
        queues: serde_json::from_str(c.str()?).map_err(corrupt)?,
        slots: c.int()?,
        started_at: c.int()?,
        last_seen_at: c.int()?,
    })
}
