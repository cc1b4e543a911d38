// The legacy job system: rows in "Job", claimed like the real worker does (oldest PENDING, FOR UPDATE SKIP
// LOCKED LIMIT 1 -> RUNNING, "startedAt", attempts + 1); success -> COMPLETED with "completedAt" and
// "durationInSeconds"; failure -> FAILED with "error" and "completedAt", and while the retry chain is
// shorter than LEGACY_MAX_ATTEMPTS a NEW PENDING row whose "originalJobId" points at the root job.
// Timestamps are written in UTC into timestamp-without-time-zone columns, as Prisma does.
import { randomUUID } from 'node:crypto'
import { insertEntry, markFailed, markProcessed } from './ledger.mjs'

const NOW = "(now() AT TIME ZONE 'UTC')"
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

async function inTransaction (pool, fn) {
  const client = await pool.connect()
  try {
    await client.query('BEGIN')
    const result = await fn(client)
    await client.query('COMMIT')
    return result
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {})
    throw err
  } finally {
    client.release()
  }
}

/** Insert a PENDING "Job" row and its ledger entry in one transaction; returns the job id. */
export async function createLegacyJob (pool, { type, key, payload }) {
  const id = randomUUID()
  const evaluationId = payload.evaluationId ?? key // import rows have no evaluation: the ledger key stands in
  await inTransaction(pool, async (client) => {
    await client.query(
      `INSERT INTO "Job" ("id", "status", "attempts", "createdAt", "updatedAt", "evaluationId", "type")
       VALUES ($1, 'PENDING', 0, ${NOW}, ${NOW}, $2, $3)`,
      [id, evaluationId, type]
    )
    await insertEntry(client, { key, type, payload, routedTo: 'legacy', jobId: id })
  })
  return id
}

export class LegacyWorker {
  constructor ({ pool, config, faults, flags, log }) {
    Object.assign(this, { pool, config, faults, flags, log })
    this.running = false
    this.loops = []
    this.processed = 0
  }

  start () {
    this.running = true
    for (let i = 0; i < this.config.legacyConcurrency; i++) this.loops.push(this._loop())
    const every = Math.max(200, Math.min(30000, this.config.legacyStaleSeconds * 500))
    this._sweeper = setInterval(() => { this.sweep().catch((e) => this.log(`legacy sweep: ${e.message}`)) }, every)
    this._sweeper.unref()
    this.log(`legacy worker started (${this.config.legacyConcurrency} loops, poll ${this.config.legacyPollMs} ms)`)
  }

  async stop () {
    this.running = false
    clearInterval(this._sweeper)
    await Promise.all(this.loops)
  }

  paused () {
    return this.flags.bool('LEGACY_PAUSED')
  }

  async _loop () {
    while (this.running) {
      if (this.paused()) { await sleep(this.config.legacyPollMs); continue }
      let job
      try {
        job = await this.claim()
      } catch (err) {
        this.log(`legacy claim failed: ${err.message}`)
        await sleep(1000)
        continue
      }
      if (!job) { await sleep(this.config.legacyPollMs); continue }
      try {
        await this._process(job)
      } catch (err) {
        this.log(`legacy job ${job.id} could not be recorded: ${err.message}`)
      }
    }
  }

  async claim () {
    const { rows } = await this.pool.query(
      `UPDATE "Job" SET "status" = 'RUNNING', "startedAt" = ${NOW}, "attempts" = "attempts" + 1, "updatedAt" = ${NOW}
       WHERE "id" = (SELECT "id" FROM "Job" WHERE "status" = 'PENDING' ORDER BY "createdAt", "id"
                     LIMIT 1 FOR UPDATE SKIP LOCKED)
       RETURNING "id", "type", "evaluationId", "originalJobId", "attempts"`
    )
    return rows[0] ?? null
  }

  async _process (job) {
    const root = job.originalJobId ?? job.id
    const type = job.type ?? 'evaluation'
    const { rows } = await this.pool.query('SELECT key FROM public.ledger WHERE job_id = $1', [root])
    const key = rows[0]?.key ?? null
    const started = Date.now()
    try {
      await this.faults.work(type, 'legacy')
    } catch (err) {
      await this._fail(job, root, key, type, err)
      return
    }
    const seconds = Math.round((Date.now() - started) / 1000)
    await inTransaction(this.pool, async (client) => {
      await client.query(
        `UPDATE "Job" SET "status" = 'COMPLETED', "completedAt" = ${NOW}, "updatedAt" = ${NOW},
           "durationInSeconds" = $2, "logs" = $3 WHERE "id" = $1`,
        [job.id, seconds, `processed ${type} by pgboss-app legacy worker pid ${process.pid}`]
      )
      if (key) await markProcessed(client, key, 'legacy')
    })
    this.processed += 1
  }

  async _fail (job, root, key, type, err) {
    await inTransaction(this.pool, async (client) => {
      await client.query(
        `UPDATE "Job" SET "status" = 'FAILED', "error" = left($2, 1000), "completedAt" = ${NOW}, "updatedAt" = ${NOW}
         WHERE "id" = $1`,
        [job.id, err.message]
      )
      const { rows: [chain] } = await client.query(
        'SELECT count(*)::int AS n FROM "Job" WHERE "id" = $1 OR "originalJobId" = $1', [root]
      )
      const retry = chain.n < this.config.legacyMaxAttempts
      if (key) await markFailed(client, key, err.message, !retry)
      if (retry) {
        await client.query(
          `INSERT INTO "Job" ("id", "status", "attempts", "createdAt", "updatedAt", "evaluationId", "type", "originalJobId")
           VALUES ($1, 'PENDING', 0, ${NOW}, ${NOW}, $2, $3, $4)`,
          [randomUUID(), job.evaluationId, type, root]
        )
      }
    })
  }

  /** Fail RUNNING rows whose worker is presumably gone (started longer than LEGACY_STALE_SECONDS ago), as
   * the real sweep does: no retry row. The ledger records the job as given up. */
  async sweep () {
    const error = 'stale: RUNNING too long, worker presumed crashed'
    await inTransaction(this.pool, async (client) => {
      const { rows } = await client.query(
        `UPDATE "Job" SET "status" = 'FAILED', "error" = $2, "completedAt" = ${NOW}, "updatedAt" = ${NOW}
         WHERE "status" = 'RUNNING' AND "startedAt" < ${NOW} - make_interval(secs => $1)
         RETURNING coalesce("originalJobId", "id") AS root`,
        [this.config.legacyStaleSeconds, error]
      )
      if (!rows.length) return
      this.log(`legacy sweep failed ${rows.length} stale RUNNING row(s)`)
      await client.query(
        `UPDATE public.ledger SET failed_attempts = failed_attempts + 1, last_error = $2, gave_up = true
         WHERE job_id = ANY($1::text[])`,
        [rows.map((r) => r.root), error]
      )
    })
  }
}
