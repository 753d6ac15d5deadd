-- Periodic maintenance (the reconciler) runs on every worker process's ticks, but only
-- one process of a deployment does each task: the one holding its lease here. A tick
-- is taken by moving last_tick forward, which only the holder can do while its lease
-- lasts, and nobody can do twice for the same tick. Times are milliseconds since the
-- Unix epoch.
CREATE TABLE maintenance (
    task        TEXT PRIMARY KEY,
    -- The worker process that ran the last tick.
    holder      TEXT NOT NULL,
    -- Until when nobody else may take a tick (renewed with every tick taken).
    lease_until INTEGER NOT NULL,
    -- The last tick run (the tick's scheduled time).
    last_tick   INTEGER NOT NULL
);
