// Example app for runbook: the pg-boss incremental plan, done correctly for real pg-boss 10 and 12.
// Usage: DATABASE_URL=... PGBOSS_DIR=... GENERATED_DIR=... PORT=0 node server.mjs   (see README.md for every setting)
import { readFileSync, unlinkSync, writeFileSync } from 'node:fs'
import { loadEnvFile, readConfig } from './lib/config.mjs'
import { loadDeps } from './lib/deps.mjs'
import { startFlagStore } from './lib/flags.mjs'
import { loadGenerated } from './lib/generated.mjs'
import { Faults } from './lib/faults.mjs'
import { LegacyWorker } from './lib/legacy.mjs'
import { Manager } from './lib/manager.mjs'
import { ensureSchema } from './lib/schema.mjs'
import { buildServer } from './lib/http.mjs'
import { loadEndpoints } from './lib/endpoints.mjs'

const log = (msg) => console.log(`${new Date().toISOString()} [pgboss-app ${process.pid}] ${msg}`)
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

async function connectWithRetry (pool, seconds) {
  const deadline = Date.now() + seconds * 1000
  for (;;) {
    try {
      await pool.query('SELECT 1')
      return
    } catch (err) {
      if (Date.now() > deadline) throw new Error(`cannot reach the database: ${err.message}`)
      await sleep(500)
    }
  }
}

async function main () {
  loadEnvFile()
  const config = readConfig()
  if (!config.databaseUrl) throw new Error('DATABASE_URL is not set')
  const deps = await loadDeps()
  const generated = await loadGenerated(deps)
  const startedAt = new Date()
  const pool = new deps.pg.Pool({ connectionString: config.databaseUrl, max: 15, application_name: 'pgboss-app' })
  pool.on('error', (err) => log(`idle database connection error: ${err.message}`))
  await connectWithRetry(pool, 30)
  await ensureSchema(pool)

  const flags = await startFlagStore({ generated, config, pool, log })
  const faults = new Faults({ flags, config, log })
  const legacy = new LegacyWorker({ pool, config, faults, flags, log })
  const manager = new Manager({ generated, config, pool, flags, faults, log })
  const endpoints = loadEndpoints({ generated, deps, config, pool, flags, queue: manager.queue, legacy, faults, startedAt })
  await manager.queue.start() // now if PGBOSS_ENABLED, PGBOSS_START=always or its schema exists; else on the flag
  if (manager.queue.lastError) log(`pg-boss could not start: ${manager.queue.lastError}`)
  if (config.legacyWorkers) legacy.start()
  const app = { log, flags, faults, manager, status: endpoints.status, health: endpoints.health }

  const server = buildServer(app)
  await new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(config.port, config.host, resolve)
  })
  const { port } = server.address()
  const pidFile = process.env.PID_FILE
  if (pidFile) writeFileSync(pidFile, `${process.pid}\n`)
  console.log(`listening on http://127.0.0.1:${port}`)

  let stopping = false
  const shutdown = async (signal) => {
    if (stopping) return
    stopping = true
    log(`${signal}: stopping`)
    setTimeout(() => { log('stop timed out; exiting'); process.exit(0) }, 10000).unref()
    await new Promise((resolve) => server.close(resolve)) // finish requests in flight; idle keep-alives close
    await legacy.stop().catch((e) => log(`legacy stop: ${e.message}`))
    await manager.queue.stop().catch((e) => log(`pg-boss stop: ${e.message}`))
    await flags.stop()
    await pool.end().catch(() => {})
    try {
      if (pidFile && readFileSync(pidFile, 'utf8').trim() === String(process.pid)) unlinkSync(pidFile)
    } catch {}
    process.exit(0)
  }
  if (process.env.EXIT_WITH_PARENT === '1') { // a controller that dies without stopping us leaves no orphan
    const parent = process.ppid
    setInterval(() => { if (process.ppid !== parent) shutdown('parent process gone') }, 1000).unref()
  }
  process.on('SIGTERM', () => shutdown('SIGTERM'))
  process.on('SIGINT', () => shutdown('SIGINT'))
  process.on('SIGHUP', () => {
    const names = loadEnvFile()
    flags.version += 1
    log(`SIGHUP: re-read ENV_FILE (${names.length} values); flags now ${JSON.stringify(flags.routing())}`)
  })
}

process.on('unhandledRejection', (err) => log(`unhandled rejection: ${err?.stack ?? err}`))
main().catch((err) => {
  console.error(`pgboss-app failed to start: ${err.message}`)
  process.exit(2)
})
