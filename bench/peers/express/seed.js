// Creates the peers' schema in DATABASE_URL, one user with an API token and a session,
// and J jobs (succeeded) for the list and dashboard scenarios. Prints
// {"user_id", "token", "session"} as JSON.
// Usage: node seed.js [jobs]   (default 25)
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const crypto = require('node:crypto');
const db = require('./db');

async function main() {
  const jobs = Number(process.argv[2] || 25);
  await db.pool.query(fs.readFileSync(path.join(__dirname, 'schema.sql'), 'utf8'));
  const now = Date.now();
  const userId = crypto.randomUUID();
  const token = 'fk_' + crypto.randomBytes(32).toString('hex');
  const session = crypto.randomBytes(32).toString('base64url');
  await db.pool.query('INSERT INTO users (id, email, created_at) VALUES ($1, $2, $3)',
    [userId, 'bench@localhost', now]);
  await db.pool.query(
    'INSERT INTO api_tokens (id, user_id, name, token_hash, created_at) VALUES ($1, $2, $3, $4, $5)',
    [crypto.randomUUID(), userId, 'bench', db.sha256(token), now]);
  await db.pool.query(
    'INSERT INTO sessions (id_hash, user_id, created_at, expires_at) VALUES ($1, $2, $3, $4)',
    [db.sha256(session), userId, now, now + 14 * 86400e3]);
  for (let i = 0; i < jobs; i++) {
    const row = await db.insertJob(userId, 'debug.noop', {});
    await db.pool.query(
      `UPDATE jobs SET state = 'succeeded', attempt = 1, progress = 100, progress_message = 'done',
              started_at = $2, finished_at = $2, updated_at = $2, version = 3 WHERE id = $1`,
      [row.id, Date.now()]);
  }
  console.log(JSON.stringify({ user_id: userId, token, session }));
  await db.pool.end();
}
main().catch((e) => { console.error(e); process.exit(1); });
