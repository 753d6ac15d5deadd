-- Forklift's record on PostgreSQL, the same shape as the SQLite schema. Times are
-- milliseconds since the Unix epoch (BIGINT), ids are
-- UUID strings, JSON is TEXT: the same shape works on PostgreSQL.

CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    email         TEXT NOT NULL UNIQUE,
    password_hash TEXT,
    role          TEXT NOT NULL DEFAULT 'user',
    created_at    BIGINT NOT NULL
);

CREATE TABLE api_tokens (
    id           TEXT PRIMARY KEY,
    user_id      TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    -- SHA-256 of the token, hex: tokens are 32 random bytes, so a fast hash is enough.
    token_hash   TEXT NOT NULL UNIQUE,
    created_at   BIGINT NOT NULL,
    last_used_at BIGINT,
    revoked_at   BIGINT
);

CREATE TABLE files (
    id            TEXT PRIMARY KEY,
    owner_id      TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name          TEXT NOT NULL,
    content_type  TEXT NOT NULL,
    size_bytes    BIGINT NOT NULL,
    sha256        TEXT NOT NULL,
    blob_key      TEXT NOT NULL,
    source_job_id TEXT,
    output_name   TEXT,
    created_at    BIGINT NOT NULL,
    -- A re-run of a job replaces its outputs instead of adding more.
    UNIQUE (source_job_id, output_name)
);
CREATE INDEX files_owner ON files (owner_id, id);

CREATE TABLE jobs (
    id               TEXT PRIMARY KEY,
    owner_id         TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    kind             TEXT NOT NULL,
    queue            TEXT NOT NULL,
    params           TEXT NOT NULL,
    input_file_ids   TEXT NOT NULL,
    state            TEXT NOT NULL,
    priority         BIGINT NOT NULL DEFAULT 0,
    attempt          BIGINT NOT NULL DEFAULT 0,
    max_attempts     BIGINT NOT NULL,
    run_at           BIGINT NOT NULL,
    lease_until      BIGINT,
    -- A fresh random value per claim: every transition of a running job is conditional
    -- on it, so a stale or duplicate worker can never overwrite a newer state.
    lease_token      TEXT,
    worker           TEXT,
    progress         BIGINT NOT NULL DEFAULT 0,
    progress_message TEXT NOT NULL DEFAULT '',
    error            TEXT,
    outputs          TEXT NOT NULL DEFAULT '[]',
    cancel_requested BIGINT NOT NULL DEFAULT 0,
    idempotency_key  TEXT,
    version          BIGINT NOT NULL DEFAULT 1,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL,
    started_at       BIGINT,
    finished_at      BIGINT,
    UNIQUE (owner_id, idempotency_key)
);
CREATE INDEX jobs_owner ON jobs (owner_id, id);
CREATE INDEX jobs_state ON jobs (state, run_at);
