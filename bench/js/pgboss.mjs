// Real pg-boss for the scale benchmark. pg-boss is resolved from ./node_modules (a symlink the benchmark
// places next to a copy of this file). Environment: DATABASE_URL, PGBOSS_SCHEMA.
//   node pgboss.mjs install Q1,Q2,...   -> start pg-boss once (creates its schema), createQueue each, stop
//   node pgboss.mjs counts Q1,Q2 ROUNDS -> time pg-boss's own count calls per queue; prints one JSON line
//        (10: getQueueSize; 12: getQueueStats, also with { force: true }, which recounts the job table)
//   node pgboss.mjs insert Q N BATCH    -> boss.insert N jobs into Q (12: insert(name, jobs)), BATCH per call,
//        each {id, data: {evaluationId, legacyJobId}} as `migrate transfer legacy` writes them; prints
//        {jobs, batches, ms} (from the first insert to the last, pg-boss already started)
const mod = await import('pg-boss');
const PgBoss = mod.PgBoss ?? mod.default; // 12: named export only; 10: default export
const schema = process.env.PGBOSS_SCHEMA || 'pgboss';
const connectionString = process.env.DATABASE_URL;

function newBoss() {
  // no supervision, scheduling or maintenance: this process only installs or counts
  const options = { connectionString, schema, supervise: false, schedule: false, migrate: true };
  const boss = new PgBoss(options);
  boss.on('error', err => console.error('pg-boss error:', err.message));
  return boss;
}

async function install(queues) {
  const boss = newBoss();
  await boss.start();
  for (const q of queues) await boss.createQueue(q);
  await boss.stop({ graceful: false, wait: true, timeout: 2000 });
  console.log(JSON.stringify({ installed: queues }));
}

async function timeIt(fn) {
  const start = process.hrtime.bigint();
  const value = await fn();
  return { ms: Number(process.hrtime.bigint() - start) / 1e6, value };
}

async function counts(queues, rounds) {
  const boss = newBoss();
  await boss.start();
  const out = {};
  for (const q of queues) {
    const calls = typeof boss.getQueueSize === 'function'
      ? { getQueueSize: () => boss.getQueueSize(q) }
      : { getQueueStats: () => boss.getQueueStats(q), 'getQueueStats(force)': () => boss.getQueueStats(q, { force: true }) };
    out[q] = {};
    for (const [name, fn] of Object.entries(calls)) {
      const runs = [];
      let value;
      for (let i = 0; i < rounds; i++) {
        const r = await timeIt(fn);
        runs.push(r.ms);
        value = r.value;
      }
      out[q][name] = { ms: runs, value };
    }
  }
  await boss.stop({ graceful: false, wait: true, timeout: 2000 });
  console.log(JSON.stringify(out));
}

async function insertJobs(queue, n, batch) {
  const { randomUUID } = await import('node:crypto');
  const boss = newBoss();
  await boss.start();
  const twelve = boss.insert.length >= 2; // 12: insert(name, jobs, options); 10: insert(jobs) with job.name
  const start = process.hrtime.bigint();
  let calls = 0;
  for (let lo = 0; lo < n; lo += batch) {
    const jobs = [];
    for (let i = lo; i < Math.min(n, lo + batch); i++) {
      const data = { evaluationId: `eval_${i % 250000}`, legacyJobId: `node_${String(i).padStart(16, '0')}` };
      jobs.push(twelve ? { id: randomUUID(), data } : { id: randomUUID(), name: queue, data });
    }
    if (twelve) await boss.insert(queue, jobs);
    else await boss.insert(jobs);
    calls++;
  }
  const ms = Number(process.hrtime.bigint() - start) / 1e6;
  await boss.stop({ graceful: false, wait: true, timeout: 2000 });
  console.log(JSON.stringify({ jobs: n, batches: calls, ms }));
}

const [command, list, rounds, batchSize] = process.argv.slice(2);
const queues = (list || '').split(',').filter(Boolean);
if (command === 'install') await install(queues);
else if (command === 'counts') await counts(queues, Number(rounds || 5));
else if (command === 'insert') await insertJobs(queues[0], Number(rounds), Number(batchSize || 1000));
else { console.error(`unknown command ${command}`); process.exit(2); }
