// The payloads of the two endpoints runbook reads, GET /api/health and GET /api/admin/pgboss-status: the code
// `migrate scaffold` generated (GENERATED_DIR/runbook/status.js) over this app's parts (its flag store and the
// generated QueueManager stand in for the generated runtime), plus what only this app reports: the pg-boss
// version it loaded from PGBOSS_DIR, the legacy worker and the faults.

export function loadEndpoints ({ generated, deps, config, pool, flags, queue, legacy, faults, startedAt }) {
  const { PGBOSS_SCHEMA } = generated.queueManager
  if (config.pgbossSchema !== PGBOSS_SCHEMA) {
    throw new Error(`PGBOSS_SCHEMA=${config.pgbossSchema} differs from the scaffolded code (${PGBOSS_SCHEMA}): ` +
      'unset it, or re-run `migrate scaffold` into GENERATED_DIR with a runbook that names it')
  }
  const { healthPayload, pgbossStatusPayload } = generated.status
  const runtime = { pool, flags, startedAt, queue } // what the generated payloads read of a Runtime
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
