// The job manager: the QueueManager `migrate scaffold` generates (GENERATED_DIR/runbook/queue-manager.js:
// routing by the three flags, createQueue before use, several work() calls per queue, the legacy fallback when
// pg-boss cannot start, a graceful stop), given only what is this app's own: the legacy "Job" table, its
// settings (concurrency, polling, the evaluation retry options), fault injection in the pg-boss handlers, and
// the idempotency ledger (public.ledger). A job bound for pg-boss gets its ledger row before it is sent (the
// generated beforeSend hook), so its handler always finds it; the legacy path writes the row in the job's own
// transaction (createLegacyJob).
import { randomUUID } from 'node:crypto'
import { createLegacyJob } from './legacy.mjs'
import { deleteEntry, findByKey, insertEntry, markFailed, markProcessed, setJobId } from './ledger.mjs'

export const JOB_TYPES = ['import-article', 'evaluation']

export class Manager {
  constructor ({ generated, config, pool, flags, faults, log }) {
    this.pool = pool
    this.faults = faults
    this.entered = new WeakSet() // send()'s data objects whose ledger row beforeSend wrote
    const { QueueManager, JOB_OPTIONS } = generated.queueManager
    const handle = (data, job) => this._handle(data, job)
    this.queue = new QueueManager({
      flags,
      pool,
      connectionString: config.databaseUrl,
      start: config.pgbossStart === 'always' ? 'always' : 'on-enable',
      legacy: (type, { key, ...payload }) => createLegacyJob(pool, { type, key, payload }),
      beforeSend: (type, data, route) => this._enter(type, data, route),
      handlers: config.pgbossWorkers ? Object.fromEntries(JOB_TYPES.map((type) => [type, handle])) : {},
      concurrency: { 'import-article': config.importConcurrency, evaluation: config.evalConcurrency },
      jobOptions: {
        evaluation: { ...JOB_OPTIONS.evaluation, retryDelay: config.evalRetryDelay, expireInSeconds: config.evalExpireSeconds }
      },
      pollingIntervalSeconds: config.workPollSeconds,
      log
    })
  }

  /** Create one job; an already-used idempotency key returns the original job with duplicate: true. */
  async create (type, payload, key = randomUUID()) {
    const existing = await findByKey(this.pool, key)
    if (existing) return this._duplicate(existing)
    const data = { ...payload, key }
    let sent
    try {
      sent = await this.queue.send(type, data)
    } catch (err) {
      // unique_violation: the same key raced in concurrently
      if (err.code === '23505') return this._duplicate(await findByKey(this.pool, key))
      if (this.entered.has(data)) await deleteEntry(this.pool, key).catch(() => {})
      throw err
    }
    if (sent.routedTo === 'pgboss') await setJobId(this.pool, key, sent.id)
    return { jobId: sent.id, key, type, routedTo: sent.routedTo, duplicate: false }
  }

  _duplicate (row) {
    return { jobId: row.job_id, key: row.key, type: row.type, routedTo: row.routed_to, duplicate: true }
  }

  async _enter (type, data, routedTo) {
    if (routedTo !== 'pgboss') return
    const { key, ...payload } = data
    await insertEntry(this.pool, { key, type, payload, routedTo })
    this.entered.add(data)
  }

  /** One pg-boss job: the faults first (a throw fails this attempt; pg-boss retries it), then the ledger. */
  async _handle (data, job) {
    const key = data?.key
    try {
      await this.faults.work(job.name, 'pgboss')
    } catch (err) {
      const last = Number.isInteger(job.retryLimit) && job.retryCount >= job.retryLimit
      if (key) await markFailed(this.pool, key, err.message, last)
      throw err
    }
    if (key) await markProcessed(this.pool, key, 'pgboss')
  }
}
