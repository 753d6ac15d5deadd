// The BullMQ worker of the Express peer: concurrency 50 (WORKER_CONCURRENCY). Each
// debug.noop job claims its row (queued -> running, conditional, as Forklift's claim),
// does nothing, and records success (running -> succeeded).
// BENCH_BARE=1 skips PostgreSQL: BullMQ alone, for its own ceiling.
// BENCH_EXPECT=N: after N jobs, print one JSON line of statistics and exit.
'use strict';
const { Worker } = require('bullmq');
const db = require('./db');

const bare = process.env.BENCH_BARE === '1';
const expect = Number(process.env.BENCH_EXPECT || 0);
const concurrency = Number(process.env.WORKER_CONCURRENCY || 50);
const waits = [];
let firstEnqueued = Infinity;

async function processor(job) {
  const started = Date.now();
  if (!bare) {
    const claimed = await db.pool.query(
      `UPDATE jobs SET state = 'running', attempt = attempt + 1, started_at = $2,
              updated_at = $2, version = version + 1
        WHERE id = $1 AND state = 'queued' RETURNING id`,
      [job.data.id, started],
    );
    if (claimed.rowCount === 0) return 'duplicate';
    // debug.noop: nothing to do.
    const now = Date.now();
    await db.pool.query(
      `UPDATE jobs SET state = 'succeeded', progress = 100, finished_at = $2,
              updated_at = $2, version = version + 1
        WHERE id = $1 AND state = 'running'`,
      [job.data.id, now],
    );
  }
  if (expect) {
    waits.push(started - job.timestamp);
    firstEnqueued = Math.min(firstEnqueued, job.timestamp);
  }
  return 'ok';
}

const worker = new Worker(db.QUEUE, processor, {
  connection: db.connection(true),
  concurrency,
  removeOnComplete: { count: 1000 },
  removeOnFail: { count: 5000 },
});

let done = 0;
worker.on('completed', () => {
  done += 1;
  if (expect && done === expect) {
    const finished = Date.now();
    waits.sort((a, b) => a - b);
    const pct = (p) => waits[Math.min(waits.length - 1, Math.max(0, Math.ceil((p / 100) * waits.length) - 1))];
    console.log(JSON.stringify({
      jobs: done,
      seconds: (finished - firstEnqueued) / 1000,
      jobs_per_s: done / ((finished - firstEnqueued) / 1000),
      wait_p50_ms: pct(50),
      wait_p99_ms: pct(99),
    }));
    stop();
  }
});
worker.on('failed', (job, err) => console.error(`job ${job && job.id} failed: ${err.message}`));
worker.on('ready', () => console.error(`bullmq worker ready (concurrency ${concurrency}${bare ? ', bare' : ''})`));

async function stop() {
  await worker.close();
  await db.pool.end();
  process.exit(0);
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
