// The Express 5 peer: the same endpoints as Forklift's web app for the benchmark.
//   GET  /healthz              "ok"
//   GET  /api/v1/jobs?limit=20 bearer token (SHA-256 looked up in PostgreSQL), JSON page
//   POST /api/v1/jobs          bearer token; row inserted, then queued with BullMQ
//   GET  /dashboard            session cookie; 20 jobs and 10 files rendered with EJS
// Production set-up: NODE_ENV=production (view cache), helmet, compression, one
// cluster worker per core (WEB_CONCURRENCY, as pm2's cluster mode would run it).
'use strict';
const cluster = require('node:cluster');
const os = require('node:os');

const workers = Number(process.env.WEB_CONCURRENCY || os.availableParallelism());
if (cluster.isPrimary && workers > 1) {
  for (let i = 0; i < workers; i++) cluster.fork();
  cluster.on('exit', (w, code, signal) => {
    if (!shuttingDown) {
      console.error(`worker ${w.process.pid} died (${signal || code}); restarting`);
      cluster.fork();
    }
  });
  let shuttingDown = false;
  const stop = () => {
    shuttingDown = true;
    for (const w of Object.values(cluster.workers)) w.process.kill('SIGTERM');
    setTimeout(() => process.exit(0), 2000).unref();
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  return;
}

const crypto = require('node:crypto');
const path = require('node:path');
const express = require('express');
const helmet = require('helmet');
const compression = require('compression');
const cookieParser = require('cookie-parser');
const { Queue } = require('bullmq');
const db = require('./db');

const queue = new Queue(db.QUEUE, { connection: db.connection(false) });
const app = express();
app.set('views', path.join(__dirname, 'views'));
app.set('view engine', 'ejs');
app.disable('x-powered-by');
app.use(helmet());
app.use(compression());
app.use(cookieParser());

app.get('/healthz', (req, res) => {
  res.type('text/plain').send('ok\n');
});

// Bearer-token authentication of the JSON API.
async function apiCaller(req, res, next) {
  const user = await db.userByToken(req.get('authorization'));
  if (!user) {
    res.status(401).json({ error: { code: 'unauthenticated', message: 'a valid API token is required' } });
    return;
  }
  req.user = user;
  next();
}

app.get('/api/v1/jobs', apiCaller, async (req, res) => {
  const limit = Math.min(Math.max(Number.parseInt(req.query.limit, 10) || 50, 1), 1000);
  const { jobs, more } = await db.listJobs(req.user.id, limit);
  res.json({ items: jobs.map(db.jobJson), next_cursor: more ? jobs[jobs.length - 1].id : null });
});

app.post('/api/v1/jobs', apiCaller, express.json({ limit: '64kb' }), async (req, res) => {
  const body = req.body || {};
  if (body.kind !== 'debug.noop') {
    res.status(400).json({ error: { code: 'invalid_argument', message: 'invalid fields',
      fields: [{ field: 'kind', description: `unknown job kind ${JSON.stringify(body.kind)}` }] } });
    return;
  }
  const row = await db.insertJob(req.user.id, body.kind, {});
  await queue.add(body.kind, { id: row.id }, { ...db.jobOptions, jobId: row.id });
  res.status(201).json(db.jobJson(row));
});

app.get('/dashboard', async (req, res) => {
  const user = await db.userBySession(req.cookies.session);
  if (!user) {
    res.redirect(303, '/signin');
    return;
  }
  let csrf = req.cookies.csrf;
  if (!csrf) {
    csrf = crypto.randomBytes(32).toString('base64url');
    res.cookie('csrf', csrf, { httpOnly: true, sameSite: 'lax', path: '/', maxAge: 14 * 86400e3 });
  }
  const [jobs, files] = await Promise.all([db.listJobs(user.id, 20), db.listFiles(user.id, 10)]);
  res.render('dashboard', {
    user, csrf,
    jobs: jobs.jobs.map(db.jobJson), moreJobs: jobs.more,
    files: files.files, moreFiles: files.more,
  });
});

app.use((err, req, res, next) => {
  console.error(err);
  res.status(500).json({ error: { code: 'internal', message: 'internal error' } });
});

const [host, port] = (process.env.HTTP_ADDR || '127.0.0.1:3100').split(':');
const server = app.listen(Number(port), host, () => {
  if (!cluster.isWorker || cluster.worker.id === 1) console.log(`express listening on ${host}:${port}`);
});
server.keepAliveTimeout = 65000;
const stop = () => server.close(async () => {
  await Promise.allSettled([queue.close(), db.pool.end()]);
  process.exit(0);
});
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
