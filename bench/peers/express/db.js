// What the Express server, the BullMQ worker and the S5 producer share: the pg pool,
// the BullMQ connection, token and session checks, and the job's JSON form (the same
// fields as Forklift's `Job`).
'use strict';
const crypto = require('node:crypto');
const { Pool } = require('pg');

const pool = new Pool({
  connectionString: process.env.DATABASE_URL,
  max: Number(process.env.PG_POOL_MAX || 10),
});

const redisUrl = new URL(process.env.REDIS_URL || 'redis://127.0.0.1:6379/');
// BullMQ workers need maxRetriesPerRequest: null; producers keep ioredis' default.
const connection = (worker) => ({
  host: redisUrl.hostname,
  port: Number(redisUrl.port || 6379),
  ...(worker ? { maxRetriesPerRequest: null } : {}),
});
const QUEUE = 'debug';
const jobOptions = {
  attempts: 3,
  backoff: { type: 'exponential', delay: 2000 },
  removeOnComplete: { count: 1000 },
  removeOnFail: { count: 5000 },
};

const sha256 = (s) => crypto.createHash('sha256').update(s).digest('hex');

async function userByToken(header) {
  const m = /^Bearer\s+(\S+)$/i.exec(header || '');
  if (!m) return null;
  const { rows } = await pool.query(
    `SELECT u.id, u.email, u.role FROM api_tokens t JOIN users u ON u.id = t.user_id
      WHERE t.token_hash = $1 AND t.revoked_at IS NULL`,
    [sha256(m[1])],
  );
  return rows[0] || null;
}

async function userBySession(sessionId) {
  if (!sessionId) return null;
  const { rows } = await pool.query(
    `SELECT u.id, u.email, u.role FROM sessions s JOIN users u ON u.id = s.user_id
      WHERE s.id_hash = $1 AND s.expires_at > $2`,
    [sha256(sessionId), Date.now()],
  );
  return rows[0] || null;
}

const JOB_COLUMNS = `id, kind, state, params, input_file_ids, priority, attempt, max_attempts,
  progress, progress_message, error, outputs, cancel_requested, version,
  created_at, updated_at, started_at, finished_at`;

async function listJobs(ownerId, limit) {
  const { rows } = await pool.query(
    `SELECT ${JOB_COLUMNS} FROM jobs WHERE owner_id = $1
      ORDER BY created_at DESC, id DESC LIMIT $2`,
    [ownerId, limit + 1],
  );
  return { jobs: rows.slice(0, limit), more: rows.length > limit };
}

async function listFiles(ownerId, limit) {
  const { rows } = await pool.query(
    `SELECT id, name, content_type, size_bytes, sha256, source_job_id, created_at
       FROM files WHERE owner_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2`,
    [ownerId, limit + 1],
  );
  return { files: rows.slice(0, limit), more: rows.length > limit };
}

const iso = (ms) => (ms == null ? null : new Date(Number(ms)).toISOString());

function jobJson(r) {
  return {
    id: r.id,
    kind: r.kind,
    state: r.state,
    params: JSON.parse(r.params),
    input_file_ids: JSON.parse(r.input_file_ids),
    priority: r.priority,
    attempt: r.attempt,
    max_attempts: r.max_attempts,
    progress: r.progress,
    progress_message: r.progress_message,
    error: r.error,
    outputs: JSON.parse(r.outputs),
    cancel_requested: r.cancel_requested,
    created_at: iso(r.created_at),
    updated_at: iso(r.updated_at),
    started_at: iso(r.started_at),
    finished_at: iso(r.finished_at),
    version: Number(r.version),
  };
}

// The job's row, committed before it is queued (as Forklift does).
async function insertJob(ownerId, kind, params) {
  const now = Date.now();
  const { rows } = await pool.query(
    `INSERT INTO jobs (id, owner_id, kind, queue, params, input_file_ids, state,
                       max_attempts, created_at, updated_at)
     VALUES ($1, $2, $3, $4, $5, '[]', 'queued', 3, $6, $6)
     RETURNING ${JOB_COLUMNS}`,
    [crypto.randomUUID(), ownerId, kind, QUEUE, JSON.stringify(params), now],
  );
  return rows[0];
}

module.exports = {
  pool, connection, QUEUE, jobOptions, sha256, userByToken, userBySession,
  listJobs, listFiles, jobJson, insertJob, iso,
};
