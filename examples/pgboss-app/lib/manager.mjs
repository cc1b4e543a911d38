// The plan's manager, generalised: import jobs go to pg-boss when PGBOSS_ENABLED; evaluation jobs when
// PGBOSS_ENABLED and PGBOSS_FOR_NEW_EVALS; every job when PGBOSS_ENABLED and PGBOSS_FOR_ALL_JOBS; otherwise
// to the legacy "Job" table. If pg-boss cannot start, jobs fall back to the legacy table (as in the plan).
import { randomUUID } from 'node:crypto'
import { createLegacyJob } from './legacy.mjs'
import { deleteEntry, findByKey, insertEntry, setJobId } from './ledger.mjs'

export const JOB_TYPES = ['import-article', 'evaluation']

export class Manager {
  constructor ({ pool, flags, boss, log }) {
    Object.assign(this, { pool, flags, boss, log })
    this.created = { pgboss: 0, legacy: 0 }
  }

  route (type) {
    if (!this.flags.bool('PGBOSS_ENABLED')) return 'legacy'
    if (this.flags.bool('PGBOSS_FOR_ALL_JOBS')) return 'pgboss'
    if (type === 'import-article') return 'pgboss'
    if (type === 'evaluation' && this.flags.bool('PGBOSS_FOR_NEW_EVALS')) return 'pgboss'
    return 'legacy'
  }

  /** Create one job; an already-used idempotency key returns the original job with duplicate: true. */
  async create (type, payload, key = randomUUID()) {
    const existing = await findByKey(this.pool, key)
    if (existing) return this._duplicate(existing)
    try {
      return await this._create(type, payload, key)
    } catch (err) {
      if (err.code !== '23505') throw err // unique_violation: the same key raced in concurrently
      return this._duplicate(await findByKey(this.pool, key))
    }
  }

  _duplicate (row) {
    return { jobId: row.job_id, key: row.key, type: row.type, routedTo: row.routed_to, duplicate: true }
  }

  async _create (type, payload, key) {
    let routedTo = this.route(type)
    if (routedTo === 'pgboss') {
      try {
        await this.boss.ensureStarted()
      } catch (err) {
        this.log(`pg-boss unavailable (${err.message}); sending ${type} to the legacy table`)
        routedTo = 'legacy'
      }
    }
    let jobId
    if (routedTo === 'pgboss') {
      await insertEntry(this.pool, { key, type, payload, routedTo })
      try {
        jobId = await this.boss.send(type, { ...payload, key })
      } catch (err) {
        await deleteEntry(this.pool, key).catch(() => {})
        throw err
      }
      await setJobId(this.pool, key, jobId)
    } else {
      jobId = await createLegacyJob(this.pool, { type, key, payload })
    }
    this.created[routedTo] += 1
    return { jobId, key, type, routedTo, duplicate: false }
  }
}
