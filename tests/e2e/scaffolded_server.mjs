// A tiny app built only on what `migrate scaffold --framework express` wrote into ./runbook-app (--lang js, or
// ts with SCAFFOLD_LANG=ts):
// node:http serving the generated ROUTES (GET /api/health, GET /api/admin/pgboss-status), job creation
// through the generated queue manager (POST /api/import, /api/evaluations, /api/jobs/<type>), handlers that
// complete after JOB_MS, and a minimal legacy worker on the Prisma "Job" table (claim the oldest PENDING row
// FOR UPDATE SKIP LOCKED -> RUNNING, then COMPLETED). GET /test/flag-changes lists when the app saw each flip.
// Settings: DATABASE_URL, PORT, HOST, JOB_MS (default 250), SCAFFOLD_LANG, PGBOSS_START (the generated runtime's).
import { createServer } from 'node:http'
import { randomUUID } from 'node:crypto'

const ext = process.env.SCAFFOLD_LANG === 'ts' ? 'ts' : 'js' // TypeScript runs through Node's type stripping
const { configureRuntime, stopRuntime } = await import(`./runbook-app/runbook/runtime.${ext}`)
const { ROUTES } = await import(`./runbook-app/runbook/express.${ext}`)

const JOB_MS = Number(process.env.JOB_MS ?? 250)
const NOW = "(now() AT TIME ZONE 'UTC')"
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))
const work = () => sleep(JOB_MS)

const rt = configureRuntime({
  legacy: async (type, data) => {
    const id = randomUUID()
    await rt.pool.query(
      `INSERT INTO "Job" ("id", "status", "attempts", "createdAt", "updatedAt", "evaluationId", "logs")
       VALUES ($1, 'PENDING', 0, ${NOW}, ${NOW}, $2, $3)`,
      [id, data.evaluationId ?? id, type]
    )
    return id
  },
  handlers: { 'import-article': work, evaluation: work, report: work },
  flagsPollMs: 1000,
  pollingIntervalSeconds: 0.5
})
const changes = []
rt.flags.on('change', (flags) => changes.push({ at: new Date().toISOString(), flags }))

let running = true
async function legacyOnce () {
  const { rows: [job] } = await rt.pool.query(
    `UPDATE "Job" SET "status" = 'RUNNING', "startedAt" = ${NOW}, "attempts" = "attempts" + 1, "updatedAt" = ${NOW}
     WHERE "id" = (SELECT "id" FROM "Job" WHERE "status" = 'PENDING' ORDER BY "createdAt", "id"
                   LIMIT 1 FOR UPDATE SKIP LOCKED)
     RETURNING "id"`
  )
  if (!job) return false
  await work()
  await rt.pool.query(
    `UPDATE "Job" SET "status" = 'COMPLETED', "completedAt" = ${NOW}, "updatedAt" = ${NOW} WHERE "id" = $1`,
    [job.id]
  )
  return true
}

async function legacyLoop () {
  while (running) {
    const done = await legacyOnce().catch((err) => { console.log(`legacy worker: ${err.message}`); return false })
    if (!done) await sleep(100)
  }
}
const loops = [legacyLoop(), legacyLoop()]

async function readJson (req) {
  const chunks = []
  for await (const chunk of req) chunks.push(chunk)
  return chunks.length ? JSON.parse(Buffer.concat(chunks).toString('utf8')) : {}
}

const POSTS = { '/api/import': 'import-article', '/api/evaluations': 'evaluation' }

const server = createServer(async (req, res) => {
  const path = (req.url ?? '/').split('?')[0]
  let status = 200
  let body
  try {
    if (req.method === 'GET' && Object.hasOwn(ROUTES, path)) {
      await ROUTES[path](req, { status (code) { status = code; return this }, json (b) { body = b } })
    } else if (req.method === 'GET' && path === '/test/flag-changes') {
      body = changes
    } else if (req.method === 'POST' && (POSTS[path] || path.startsWith('/api/jobs/'))) {
      const type = POSTS[path] ?? path.slice('/api/jobs/'.length)
      body = await rt.queue.send(type, await readJson(req))
    } else {
      status = 404
      body = { error: `no route ${req.method} ${path}` }
    }
  } catch (err) {
    status = 500
    body = { error: err.message }
  }
  const text = JSON.stringify(body)
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) })
  res.end(text)
})
server.listen(Number(process.env.PORT ?? 0), process.env.HOST ?? '127.0.0.1', () => {
  console.log(`listening on http://127.0.0.1:${server.address().port}`)
})

const parent = process.ppid
const exitWithParent = setInterval(() => { if (process.ppid !== parent) shutdown() }, 1000)
exitWithParent.unref()
let stopping = false
async function shutdown () {
  if (stopping) return
  stopping = true
  running = false
  await new Promise((resolve) => server.close(resolve))
  await Promise.all(loops)
  await stopRuntime()
  process.exit(0)
}
process.on('SIGTERM', shutdown)
process.on('SIGINT', shutdown)
