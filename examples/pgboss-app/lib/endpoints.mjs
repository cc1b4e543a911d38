// The payloads of the two endpoints runbook reads, GET /api/health and GET /api/admin/pgboss-status: the code
// `migrate scaffold` generated (generated/pgboss<major>/runbook/status.js) over this app's own parts (its flag
// store, pg-boss wrapper and job manager stand in for the generated runtime), plus what only this app reports:
// the pg-boss version it loaded from PGBOSS_DIR, the legacy worker and the faults.
import { generatedFolder } from './flags.mjs'

export async function loadEndpoints ({ deps, config, pool, flags, boss, manager, legacy, faults, startedAt }) {
  const dir = `../generated/${generatedFolder(deps.pgbossMajor)}/runbook`
  const { PGBOSS_SCHEMA } = await import(`${dir}/queue-manager.js`)
  if (config.pgbossSchema !== PGBOSS_SCHEMA) {
    throw new Error(`PGBOSS_SCHEMA=${config.pgbossSchema} differs from the scaffolded code (${PGBOSS_SCHEMA}): ` +
      'unset it, or re-run `migrate scaffold` for examples/pgboss-app with a runbook that names it')
  }
  const { healthPayload, pgbossStatusPayload } = await import(`${dir}/status.js`)
  const runtime = { // what the generated payloads read of a Runtime
    pool,
    flags,
    startedAt,
    queue: {
      get started () { return boss.started },
      get workers () { return boss.workers },
      get lastError () { return boss.lastError },
      get created () { return manager.created }
    }
  }
  return {
    health () {
      const payload = healthPayload(runtime)
      return {
        ...payload,
        pgboss: { ...payload.pgboss, version: deps.pgbossVersion },
        legacyWorker: { running: legacy.running, paused: legacy.paused(), processed: legacy.processed },
        faults: faults.describe()
      }
    },
    async status () {
      const payload = await pgbossStatusPayload(runtime)
      return { ...payload, pgboss: { ...payload.pgboss, packageVersion: deps.pgbossVersion } }
    }
  }
}
