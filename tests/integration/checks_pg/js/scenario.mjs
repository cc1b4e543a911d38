// Drive real pg-boss (10, 11 or 12) into a known state for the check tests.
//   node scenario.mjs outcomes   -> queues with known outcomes, then a clean stop; prints one JSON line
//   node scenario.mjs worker Q   -> a process with work() on queue Q; prints READY and runs until killed
// Environment: DATABASE_URL, PGBOSS_SCHEMA. pg-boss is resolved from ./node_modules (a symlink the
// test fixture places next to a copy of this file).
import pg from 'pg';

const mod = await import('pg-boss');
const PgBoss = mod.PgBoss ?? mod.default; // 12: named export only; 10 and 11: default export
const schema = process.env.PGBOSS_SCHEMA || 'pgboss';
const connectionString = process.env.DATABASE_URL;
const sleep = ms => new Promise(resolve => setTimeout(resolve, ms));

function newBoss() {
  // instanceHeartbeatSeconds exists from 12.x (instance registry); older versions ignore unknown options.
  const options = { connectionString, schema, instanceHeartbeatSeconds: 1 };
  if (process.env.FAST_MONITOR) {
    // 11 and 12: refresh the cached queue counters every second instead of every minute.
    Object.assign(options, { superviseIntervalSeconds: 1, monitorIntervalSeconds: 1, queueCacheIntervalSeconds: 1 });
  }
  if (process.env.NO_REGISTRY) options.registerInstance = false; // 12.x: stay out of the instance registry
  const boss = new PgBoss(options);
  boss.on('error', err => console.error('pg-boss error:', err.message));
  return boss;
}

async function finished(client, queue) {
  const { rows } = await client.query(
    `SELECT count(*)::int AS n FROM "${schema}".job WHERE name = $1 AND state IN ('completed', 'failed')`, [queue]);
  return rows[0].n;
}

async function outcomes() {
  const boss = newBoss();
  await boss.start();
  for (const q of ['q-main', 'q-backlog', 'q-active', 'q-empty']) await boss.createQueue(q);

  // q-main: 3 succeed, 2 fail for good (no retry), 1 fails once then succeeds on its retry.
  const ids = { ok: [], fail: [], flaky: [] };
  for (let i = 0; i < 3; i++) ids.ok.push(await boss.send('q-main', { outcome: 'ok', i }));
  for (let i = 0; i < 2; i++) ids.fail.push(await boss.send('q-main', { outcome: 'fail', i }, { retryLimit: 0 }));
  ids.flaky.push(await boss.send('q-main', { outcome: 'flaky' }, { retryLimit: 1, retryDelay: 0 }));
  const attempts = new Map();
  await boss.work('q-main', { pollingIntervalSeconds: 0.5 }, async jobs => {
    for (const job of jobs) { // handlers receive an array in 10, 11 and 12
      const n = (attempts.get(job.id) ?? 0) + 1;
      attempts.set(job.id, n);
      if (job.data.outcome === 'fail') throw new Error('planned failure');
      if (job.data.outcome === 'flaky' && n === 1) throw new Error('planned transient failure');
    }
  });
  const client = new pg.Client({ connectionString });
  await client.connect();
  const deadline = Date.now() + 60000;
  while ((await finished(client, 'q-main')) < 6) {
    if (Date.now() > deadline) throw new Error('q-main did not finish 6 jobs within 60 s');
    await sleep(100);
  }
  await boss.offWork('q-main');

  // q-backlog: 3 ready now, 2 deferred by an hour; nobody works this queue.
  const backlog = { ready: [], deferred: [] };
  for (let i = 0; i < 3; i++) backlog.ready.push(await boss.send('q-backlog', { i }));
  for (let i = 0; i < 2; i++) backlog.deferred.push(await boss.send('q-backlog', { i }, { startAfter: 3600 }));

  // q-active: 2 jobs fetched and never completed (as a crashed worker leaves them).
  const active = [await boss.send('q-active', { i: 0 }), await boss.send('q-active', { i: 1 })];
  const fetched = await boss.fetch('q-active', { batchSize: 2 });
  if ((fetched ?? []).length !== 2) throw new Error(`fetched ${fetched?.length} jobs from q-active, expected 2`);

  await client.end();
  await boss.stop({ graceful: true, wait: true, timeout: 5000 });
  console.log(JSON.stringify({ main: ids, backlog, active, attempts: Object.fromEntries(attempts) }));
}

async function worker(queue) {
  const boss = newBoss();
  await boss.start();
  await boss.createQueue(queue);
  await boss.work(queue, { pollingIntervalSeconds: 0.5 }, async () => {});
  console.log(`READY ${process.pid}`);
  setInterval(() => {}, 1 << 30); // stay alive until killed
}

const [command, arg] = process.argv.slice(2);
if (command === 'outcomes') await outcomes();
else if (command === 'worker') await worker(arg);
else { console.error(`unknown command ${command}`); process.exit(2); }
