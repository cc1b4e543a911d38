// Load node-postgres from the folder named by PGBOSS_DIR (nothing is installed in this app's folder), read the
// version of the pg-boss there, and make the generated code's bare 'pg' / 'pg-boss' imports resolve there (the
// generated queue manager imports pg-boss as its major wants: 10 the default export, 12 the named `PgBoss`).
import { createRequire, register } from 'node:module'
import { readFileSync } from 'node:fs'
import path from 'node:path'
import { pathToFileURL } from 'node:url'
import { requiredFolder } from './config.mjs'

export async function loadDeps () {
  const dir = requiredFolder('PGBOSS_DIR', 'point it at a folder whose node_modules holds pg-boss and pg ' +
    '(python -c "from runbook.toolchain import ensure_pgboss; print(ensure_pgboss(\'12\'))")')
  const require = createRequire(path.join(dir, 'package.json'))
  let pgMain
  try {
    require.resolve('pg-boss')
    pgMain = require.resolve('pg')
  } catch (err) {
    throw new Error(`PGBOSS_DIR=${dir} has no node_modules/pg-boss or node_modules/pg (${err.message})`)
  }
  const parentURL = pathToFileURL(path.join(dir, 'package.json')).href
  register('./resolve-hooks.mjs', import.meta.url, { data: { parentURL } }) // 'pg' in GENERATED_DIR -> PGBOSS_DIR
  const pgModule = await import(pathToFileURL(pgMain).href)
  const pg = pgModule.default ?? pgModule
  const pkg = JSON.parse(readFileSync(path.join(dir, 'node_modules', 'pg-boss', 'package.json'), 'utf8'))
  return { pg, pgbossVersion: pkg.version, pgbossMajor: Number(pkg.version.split('.')[0]) }
}
