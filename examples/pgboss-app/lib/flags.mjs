// Feature flags: the toolkit's postgres flag table (default runbook.flags: name text primary key, value
// text), re-read on NOTIFY (channel runbook_flags) and polled every FLAGS_POLL_MS as a fallback. A flag
// with no row (or a NULL value, or no table yet) falls back to the process environment.
// FLAG_SOURCE=env ignores the table: flags then change only by restart (or SIGHUP re-reading ENV_FILE).
import { EventEmitter } from 'node:events'
import { quoteIdent, truthy } from './config.mjs'

export const ROUTING_FLAGS = ['PGBOSS_ENABLED', 'PGBOSS_FOR_NEW_EVALS', 'PGBOSS_FOR_ALL_JOBS']
const MISSING = new Set(['42P01', '3F000']) // undefined_table, invalid_schema_name

export class FlagStore extends EventEmitter {
  constructor ({ pg, config, log }) {
    super()
    this.pg = pg
    this.config = config
    this.log = log
    this.source = config.flagSource === 'env' ? 'env' : 'postgres'
    this.table = {}
    this.tablePresent = false
    this.version = 0
    this.readAt = new Date()
    this.listening = false
    this.lastError = null
    this._reloading = null
    this._again = false
    this._closed = false
    this._timer = null
    this._client = null
    this._query = `SELECT name, value FROM ${quoteIdent(config.flagsSchema)}.${quoteIdent(config.flagsTable)}`
  }

  async start (pool) {
    this.pool = pool
    if (this.source === 'env') return
    await this.reload('start')
    await this._listen()
    this._timer = setInterval(() => { this.reload('poll').catch(() => {}) }, this.config.flagsPollMs)
    this._timer.unref()
  }

  /** Re-read the table; concurrent calls coalesce into one extra read. */
  async reload (reason) {
    if (this.source === 'env') return
    if (this._reloading) { this._again = true; return this._reloading }
    this._reloading = (async () => {
      do {
        this._again = false
        await this._readOnce(reason)
      } while (this._again)
    })().finally(() => { this._reloading = null })
    return this._reloading
  }

  async _readOnce (reason) {
    let rows = []
    let present = true
    try {
      rows = (await this.pool.query(this._query)).rows
      this.lastError = null
    } catch (err) {
      if (!MISSING.has(err.code)) {
        this.lastError = err.message
        this.log(`flags: could not read the flag table (${err.message}); keeping the last values`)
        return
      }
      present = false
    }
    const table = {}
    for (const row of rows) if (row.value !== null) table[row.name] = String(row.value)
    const before = JSON.stringify(this.table)
    this.table = table
    this.tablePresent = present
    this.readAt = new Date()
    if (JSON.stringify(table) !== before) {
      this.version += 1
      this.log(`flags changed (${reason}): ${JSON.stringify(this.routing())}`)
      this.emit('change')
    }
  }

  async _listen () {
    if (this._closed) return
    const client = new this.pg.Client({ connectionString: this.config.databaseUrl, application_name: 'pgboss-app:flags' })
    const retry = (err) => {
      if (this._closed || client !== this._client) return
      this.listening = false
      this._client = null
      this.log(`flags: LISTEN connection lost (${err?.message ?? 'closed'}); reconnecting`)
      client.end().catch(() => {})
      setTimeout(() => { this._listen().catch(() => {}) }, 1000).unref()
    }
    this._client = client
    client.on('error', retry)
    client.on('end', () => retry(null))
    client.on('notification', (msg) => {
      if (msg.channel === this.config.flagsChannel) this.reload('notify').catch(() => {})
    })
    try {
      await client.connect()
      await client.query(`LISTEN ${quoteIdent(this.config.flagsChannel)}`)
      this.listening = true
      await this.reload('listen') // catch changes made while not listening
    } catch (err) {
      retry(err)
    }
  }

  async stop () {
    this._closed = true
    if (this._timer) clearInterval(this._timer)
    if (this._client) await this._client.end().catch(() => {})
  }

  /** The value in use for `name` (table row first, then environment), or undefined. */
  raw (name) {
    if (this.source === 'postgres' && Object.hasOwn(this.table, name)) return this.table[name]
    const env = process.env[name]
    return env === undefined || env === '' ? undefined : env
  }

  origin (name) {
    if (this.source === 'postgres' && Object.hasOwn(this.table, name)) return 'table'
    return this.raw(name) === undefined ? 'unset' : 'env'
  }

  bool (name) {
    const v = this.raw(name)
    return v !== undefined && truthy(v)
  }

  /** A fault setting: flag FAULT_<name>, else environment <name>; a number (0 when unset). */
  faultNumber (name) {
    const v = this.raw(`FAULT_${name}`) ?? this.raw(name)
    const n = Number(v)
    return v === undefined || !Number.isFinite(n) ? 0 : n
  }

  routing () {
    return Object.fromEntries(ROUTING_FLAGS.map((n) => [n, this.bool(n)]))
  }

  describe () {
    const names = new Set([...ROUTING_FLAGS, ...Object.keys(this.table)])
    return {
      source: this.source,
      table: `${this.config.flagsSchema}.${this.config.flagsTable}`,
      tablePresent: this.tablePresent,
      channel: this.config.flagsChannel,
      listening: this.listening,
      version: this.version,
      readAt: this.readAt.toISOString(),
      error: this.lastError,
      flags: this.routing(),
      values: Object.fromEntries([...names].sort().map((n) => [n, { value: this.raw(n) ?? null, origin: this.origin(n) }]))
    }
  }
}
