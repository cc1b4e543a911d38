// A real pg-boss worker process for the uptime check: registers in pg-boss 12's instance registry
// (heartbeat every second), works one queue, prints READY, and runs until killed.
// Environment: DATABASE_URL. pg-boss is resolved from ./node_modules (a symlink placed by the fixture).
const mod = await import('pg-boss');
const PgBoss = mod.PgBoss ?? mod.default;
const boss = new PgBoss({ connectionString: process.env.DATABASE_URL, instanceHeartbeatSeconds: 1 });
boss.on('error', err => console.error('pg-boss error:', err.message));
await boss.start();
await boss.createQueue('uptime-q');
await boss.work('uptime-q', { pollingIntervalSeconds: 0.5 }, async () => {});
console.log('READY');
process.on('SIGTERM', async () => { await boss.stop({ graceful: false }); process.exit(0); });
setInterval(() => {}, 1 << 30);
