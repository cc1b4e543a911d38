// Process configuration: environment variables, optionally overlaid by a dotenv file (ENV_FILE) whose
// values win over the inherited environment, so a dotenv flag backend plus a restart switches flags.
import { readFileSync, existsSync } from 'node:fs'
import path from 'node:path'

export function parseDotenv (text) {
  const out = {}
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim()
    if (!line || line.startsWith('#')) continue
    const m = line.match(/^(?:export\s+)?([A-Za-z_][A-Za-z0-9_.-]*)\s*=\s*(.*)$/)
    if (!m) continue
    let value = m[2].trim()
    if ((value.startsWith('"') && value.endsWith('"')) || (value.startsWith("'") && value.endsWith("'"))) {
      value = value.slice(1, -1)
    } else {
      value = value.replace(/\s+#.*$/, '')
    }
    out[m[1]] = value
  }
  return out
}

/** The absolute folder a required setting names; unset, an error saying how to make one (`fix`). */
export function requiredFolder (name, fix) {
  const dir = process.env[name]
  if (!dir) throw new Error(`${name} is not set: ${fix}`)
  return path.resolve(dir)
}

const fromFile = new Map() // name -> the inherited value it replaced (undefined: none)

/** Re-read ENV_FILE (if set) into process.env, undoing values removed from the file; returns its names. */
export function loadEnvFile () {
  const file = process.env.ENV_FILE
  if (!file) return []
  const values = existsSync(file) ? parseDotenv(readFileSync(file, 'utf8')) : {}
  for (const [name, original] of fromFile) {
    if (Object.hasOwn(values, name)) continue
    if (original === undefined) delete process.env[name]
    else process.env[name] = original
    fromFile.delete(name)
  }
  for (const [name, value] of Object.entries(values)) {
    if (!fromFile.has(name)) fromFile.set(name, process.env[name])
    process.env[name] = value
  }
  return Object.keys(values)
}

export function envNumber (name, fallback) {
  const raw = process.env[name]
  if (raw === undefined || raw === '') return fallback
  const n = Number(raw)
  if (!Number.isFinite(n)) throw new Error(`${name}=${raw} is not a number`)
  return n
}

export function envBool (name, fallback) {
  const raw = process.env[name]
  if (raw === undefined || raw === '') return fallback
  return truthy(raw)
}

export function truthy (value) {
  return ['true', '1', 'yes', 'on'].includes(String(value).trim().toLowerCase())
}

export function readConfig () {
  const fast = envBool('FAST', false)
  const workers = envBool('WORKERS', true)
  return {
    databaseUrl: process.env.DATABASE_URL,
    port: envNumber('PORT', 3000),
    host: process.env.HOST || '127.0.0.1',
    fast,
    pgbossSchema: process.env.PGBOSS_SCHEMA || 'pgboss',
    pgbossStart: process.env.PGBOSS_START || 'on-enable', // or 'always'
    flagSource: (process.env.FLAG_SOURCE || 'postgres').toLowerCase(), // or 'env'
    flagsSchema: process.env.FLAGS_SCHEMA || 'runbook',
    flagsTable: process.env.FLAGS_TABLE || 'flags',
    flagsChannel: process.env.FLAGS_CHANNEL || 'runbook_flags',
    flagsPollMs: envNumber('FLAGS_POLL_MS', 2000),
    pgbossWorkers: workers && envBool('PGBOSS_WORKERS', true),
    legacyWorkers: workers && envBool('LEGACY_WORKERS', true),
    importConcurrency: envNumber('IMPORT_CONCURRENCY', 5),
    evalConcurrency: envNumber('EVAL_CONCURRENCY', 10),
    legacyConcurrency: envNumber('LEGACY_CONCURRENCY', 5),
    legacyPollMs: envNumber('LEGACY_POLL_MS', 200),
    legacyMaxAttempts: envNumber('LEGACY_MAX_ATTEMPTS', 3),
    legacyStaleSeconds: envNumber('LEGACY_STALE_SECONDS', 1800),
    workPollSeconds: envNumber('WORK_POLL_SECONDS', fast ? 0.5 : 1),
    evalRetryDelay: envNumber('EVAL_RETRY_DELAY', fast ? 1 : 30),
    evalExpireSeconds: envNumber('EVAL_EXPIRE_SECONDS', 3600),
    jobMs: envNumber('JOB_MS', 20)
  }
}
