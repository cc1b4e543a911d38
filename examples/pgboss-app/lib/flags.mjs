// Feature flags: the client `migrate scaffold` generates (GENERATED_DIR/runbook/flags.js: the runbook.flags
// table, re-read on NOTIFY runbook_flags and polled every FLAGS_POLL_MS, a flag with no row falling back to the
// environment), plus what only this app needs: fault settings read as numbers, and a /api/flags view saying
// where each value came from. FLAG_SOURCE=env ignores the table: flags then change only by restart (or SIGHUP
// re-reading ENV_FILE).

/** A started flag store over the generated flags module (loadGenerated().flags). */
export async function startFlagStore ({ generated, config, pool, log }) {
  const mod = generated.flags
  const table = mod.FLAG_TABLE
  const wanted = { schema: config.flagsSchema, table: config.flagsTable, channel: config.flagsChannel }
  for (const [key, value] of Object.entries(wanted)) {
    if (value !== table[key]) {
      throw new Error(`FLAGS_${key.toUpperCase()}=${value} differs from the scaffolded flags client (${table[key]}): ` +
        'unset it, or re-run `migrate scaffold` into GENERATED_DIR with a runbook that names it')
    }
  }
  const flags = new (flagStoreClass(mod, table))({
    connectionString: config.databaseUrl,
    pool,
    source: config.flagSource === 'env' ? 'env' : 'postgres',
    pollMs: config.flagsPollMs,
    log
  })
  await flags.start()
  if (flags.readAt === null) flags.readAt = new Date() // env source: read once, at start
  return flags
}

function flagStoreClass ({ FlagsClient, FLAG_NAMES }, table) {
  return class FlagStore extends FlagsClient {
    get table () { return Object.fromEntries(this.values) }

    raw (name) { return this.value(name) }

    origin (name) {
      if (this.values.has(name)) return 'table'
      return this.value(name) === undefined ? 'unset' : 'env'
    }

    bool (name) { return this.isOn(name) }

    /** A fault setting: flag FAULT_<name>, else environment <name>; a number (0 when unset). */
    faultNumber (name) {
      const v = this.value(`FAULT_${name}`) ?? this.value(name)
      const n = Number(v)
      return v === undefined || !Number.isFinite(n) ? 0 : n
    }

    routing () { return this.snapshot() }

    describe () {
      const names = new Set([...FLAG_NAMES, ...this.values.keys()])
      return {
        ...super.describe(),
        table: `${table.schema}.${table.table}`,
        tablePresent: this.tablePresent,
        channel: table.channel,
        flags: this.routing(),
        values: Object.fromEntries([...names].sort().map((n) => [n, { value: this.value(n) ?? null, origin: this.origin(n) }]))
      }
    }
  }
}
