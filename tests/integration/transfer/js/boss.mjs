// Real pg-boss (10 or 12) for the transfer tests.
//   node boss.mjs setup Q...      -> createQueue for each Q (QUEUE_OPTIONS, JSON, applies to all), then stop
//   node boss.mjs send Q N        -> boss.send N jobs {ref: i} with SEND_OPTIONS (JSON), data + SEND_DATA; ids
//   node boss.mjs work Q N        -> work() Q until N jobs were handled; prints [{id, data}] as one JSON line
//   node boss.mjs maintain Q      -> run pg-boss's maintenance now (12: supervise(Q), 10: maintain())
//   node boss.mjs fail Q N        -> fetch and fail() jobs of Q one at a time until N attempts were made or
//                                    none was ready for 3 s; prints [{id, retryCount}], one per attempt
// Environment: DATABASE_URL, PGBOSS_SCHEMA. pg-boss resolves from ./node_modules (a symlink the fixture adds).
const mod = await import('pg-boss');
const PgBoss = mod.PgBoss ?? mod.default; // 12: named export only; 10: default export
const connectionString = process.env.DATABASE_URL;
const schema = process.env.PGBOSS_SCHEMA || 'pgboss';
const sleep = ms => new Promise(resolve => setTimeout(resolve, ms));

const boss = new PgBoss({ connectionString, schema, supervise: false, schedule: false });
boss.on('error', err => console.error('pg-boss error:', err.message));
await boss.start();
const [command, queue, ...rest] = process.argv.slice(2);

if (command === 'setup') {
  const options = JSON.parse(process.env.QUEUE_OPTIONS || '{}');
  for (const q of [queue, ...rest]) await boss.createQueue(q, options);
  console.log(JSON.stringify({ ok: true }));
} else if (command === 'send') {
  const options = JSON.parse(process.env.SEND_OPTIONS || '{}');
  const ids = [];
  const extra = JSON.parse(process.env.SEND_DATA || '{}'); // merged into each job's data
  for (let i = 0; i < Number(rest[0]); i++) ids.push(await boss.send(queue, { ref: i, ...extra }, options));
  console.log(JSON.stringify(ids));
} else if (command === 'work') {
  const want = Number(rest[0]);
  const seen = [];
  await boss.work(queue, { pollingIntervalSeconds: 0.5, batchSize: 50 }, async jobs => {
    for (const job of jobs) seen.push({ id: job.id, data: job.data }); // handlers get an array in 10 and 12
  });
  const deadline = Date.now() + 40000;
  while (seen.length < want && Date.now() < deadline) await sleep(100);
  await sleep(800); // let pg-boss complete the last batch
  await boss.offWork(queue);
  console.log(JSON.stringify(seen));
} else if (command === 'maintain') {
  if (typeof boss.supervise === 'function') await boss.supervise(queue);
  else await boss.maintain();
  console.log(JSON.stringify({ ok: true }));
} else if (command === 'fail') {
  const want = Number(rest[0]);
  const seen = [];
  let last = Date.now();
  while (seen.length < want && Date.now() - last < 3000) {
    const jobs = (await boss.fetch(queue, { batchSize: 1, includeMetadata: true })) ?? [];
    if (!jobs.length) {
      await sleep(100);
      continue;
    }
    for (const job of jobs) {
      seen.push({ id: job.id, retryCount: job.retryCount });
      await boss.fail(queue, job.id, { why: `attempt ${seen.length}` });
    }
    last = Date.now();
  }
  console.log(JSON.stringify(seen));
} else {
  throw new Error(`unknown command ${command}`);
}
await boss.stop({ graceful: true, wait: true, timeout: 5000 });
