// S5's producer for the BullMQ peer: enqueues N debug.noop jobs with C submissions in
// flight, each as the Express server's POST does it (row inserted, then queue.add), or
// with --bare only queue.add. Prints one JSON line when everything is enqueued.
// Usage: node s5.js <N> <C> <owner id> [--bare]
'use strict';
const { Queue } = require('bullmq');
const db = require('./db');

async function main() {
  const [n, c, owner] = [Number(process.argv[2]), Number(process.argv[3]), process.argv[4]];
  const bare = process.argv.includes('--bare');
  const queue = new Queue(db.QUEUE, { connection: db.connection(false) });
  await queue.waitUntilReady();
  let next = 0;
  const started = Date.now();
  const loop = async () => {
    while (next < n) {
      next += 1;
      if (bare) {
        await queue.add('debug.noop', {}, db.jobOptions);
      } else {
        const row = await db.insertJob(owner, 'debug.noop', {});
        await queue.add('debug.noop', { id: row.id }, { ...db.jobOptions, jobId: row.id });
      }
    }
  };
  await Promise.all(Array.from({ length: c }, loop));
  const seconds = (Date.now() - started) / 1000;
  console.log(JSON.stringify({ enqueued: n, enqueue_seconds: seconds, started_ms: started }));
  await queue.close();
  await db.pool.end();
}
main().catch((e) => { console.error(e); process.exit(1); });
