-- The admin console and live job lists. Times are milliseconds since the Unix epoch.

-- WatchJobs reads one user's jobs by the time they last changed.
CREATE INDEX jobs_owner_updated ON jobs (owner_id, updated_at);

-- Worker processes report themselves here: on start and every reconcile period while
-- they run; a graceful shutdown deletes the row. A row not seen for a while belongs to
-- a process that died.
CREATE TABLE workers (
    name         TEXT PRIMARY KEY,
    -- The queues it consumes: a JSON array of names.
    queues       TEXT NOT NULL,
    -- How many jobs it runs at once, over all its queues.
    slots        INTEGER NOT NULL,
    started_at   INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL
);
CREATE INDEX workers_last_seen ON workers (last_seen_at);
