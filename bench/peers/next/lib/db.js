// The PostgreSQL pool (one per server process) and the queries the route handlers and
// the dashboard share, over the peers' tables (bench/peers/express/schema.sql).
import crypto from 'node:crypto';
import pg from 'pg';

const pool = globalThis.__benchPool ?? new pg.Pool({
  connectionString: process.env.DATABASE_URL,
  max: Number(process.env.PG_POOL_MAX || 10),
});
globalThis.__benchPool = pool;

const sha256 = (s) => crypto.createHash('sha256').update(s).digest('hex');

export async function userByToken(header) {
  const m = /^Bearer\s+(\S+)$/i.exec(header || '');
  if (!m) return null;
  const { rows } = await pool.query(
    `SELECT u.id, u.email, u.role FROM api_tokens t JOIN users u ON u.id = t.user_id
      WHERE t.token_hash = $1 AND t.revoked_at IS NULL`,
    [sha256(m[1])],
  );
  return rows[0] ?? null;
}

export async function userBySession(sessionId) {
  if (!sessionId) return null;
  const { rows } = await pool.query(
    `SELECT u.id, u.email, u.role FROM sessions s JOIN users u ON u.id = s.user_id
      WHERE s.id_hash = $1 AND s.expires_at > $2`,
    [sha256(sessionId), Date.now()],
  );
  return rows[0] ?? null;
}

const JOB_COLUMNS = `id, kind, state, params, input_file_ids, priority, attempt, max_attempts,
  progress, progress_message, error, outputs, cancel_requested, version,
  created_at, updated_at, started_at, finished_at`;

export async function listJobs(ownerId, limit) {
  const { rows } = await pool.query(
    `SELECT ${JOB_COLUMNS} FROM jobs WHERE owner_id = $1
      ORDER BY created_at DESC, id DESC LIMIT $2`,
    [ownerId, limit + 1],
  );
  return { jobs: rows.slice(0, limit).map(jobJson), more: rows.length > limit };
}

export async function listFiles(ownerId, limit) {
  const { rows } = await pool.query(
    `SELECT id, name, content_type, size_bytes, sha256, source_job_id, created_at
       FROM files WHERE owner_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2`,
    [ownerId, limit + 1],
  );
  return { files: rows.slice(0, limit), more: rows.length > limit };
}

const iso = (ms) => (ms == null ? null : new Date(Number(ms)).toISOString());

export function jobJson(r) {
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
