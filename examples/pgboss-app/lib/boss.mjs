// pg-boss, used the way real pg-boss 10 / 12 wants it: queues created before use, concurrency by several
// work() calls (teamSize no longer exists), handlers that receive an array of jobs. Started lazily the first
// time PGBOSS_ENABLED is seen true (or at boot when the schema already exists, so queued jobs drain), and
// kept running after a rollback so jobs already in pg-boss are still processed.
import { markFailed, markProcessed } from './ledger.mjs'

export const QUEUES = ['import-article', 'evaluation']

export class Boss {
  constructor ({ deps, config, pool, faults, log }) {
    this.deps = deps
    this.config = config
    this.pool = pool
    this.faults = faults
    this.log = log
    this.boss = null
    this.started = false
    this.workers = 0
    this.lastError = null
    this._starting = null
  }

  /** Start pg-boss once (create the queues and the workers); concurrent callers share the attempt. */
  async ensureStarted () {
    if (this.started) return this.boss
    if (!this._starting) {
      this._starting = this._start().catch((err) => {
        this.lastError = err.message
        this._starting = null
        throw err
      })
    }
    return this._starting
  }

  async _start () {
    const boss = new this.deps.PgBoss({ connectionString: this.config.databaseUrl, schema: this.config.pgbossSchema })
    boss.on('error', (err) => { this.lastError = err.message; this.log(`pg-boss error: ${err.message}`) })
    await boss.start()
    for (const name of QUEUES) await boss.createQueue(name)
    this.boss = boss
    if (this.config.pgbossWorkers) await this._startWorkers()
    this.started = true
    this.log(`pg-boss ${this.deps.pgbossVersion} started (schema ${this.config.pgbossSchema}, ${this.workers} workers)`)
    return boss
  }

  async _startWorkers () {
    const options = { batchSize: 1, includeMetadata: true, pollingIntervalSeconds: this.config.workPollSeconds }
    const plan = [['import-article', this.config.importConcurrency], ['evaluation', this.config.evalConcurrency]]
    for (const [name, count] of plan) {
      for (let i = 0; i < count; i++) {
        await this.boss.work(name, options, (jobs) => this._handle(name, jobs))
        this.workers += 1
      }
    }
  }

  async _handle (name, jobs) {
    for (const job of jobs) {
      const key = job.data?.key
      try {
        await this.faults.work(name, 'pgboss')
      } catch (err) {
        const last = Number.isInteger(job.retryLimit) && job.retryCount >= job.retryLimit
        if (key) await markFailed(this.pool, key, err.message, last)
        throw err // pg-boss retries per the job's retry options
      }
      if (key) await markProcessed(this.pool, key, 'pgboss')
    }
  }

  evaluationOptions () {
    return {
      priority: 5,
      retryLimit: 3,
      retryDelay: this.config.evalRetryDelay,
      retryBackoff: true,
      expireInSeconds: this.config.evalExpireSeconds
    }
  }

  async send (name, data) {
    const boss = await this.ensureStarted()
    const options = name === 'evaluation' ? this.evaluationOptions() : {}
    const id = await boss.send(name, data, options)
    if (!id) throw new Error(`pg-boss returned no job id for queue ${name} (does the queue exist?)`)
    return id
  }

  async stop () {
    if (!this.boss) return
    await this.boss.stop({ graceful: true, wait: true, timeout: 5000 })
  }
}
