// Load node-postgres and pg-boss from the folder named by PGBOSS_DIR (nothing is installed in this app's
// folder). pg-boss 10 and 11 have a default export; 12.x is ESM with a named export `PgBoss` only.
import { createRequire, register } from 'node:module'
import { readFileSync } from 'node:fs'
import path from 'node:path'
import { pathToFileURL } from 'node:url'
import { requiredFolder } from './config.mjs'

export async function loadDeps () {
  const dir = requiredFolder('PGBOSS_DIR', 'point it at a folder whose node_modules holds pg-boss and pg ' +
    '(python -c "from runbook.toolchain import ensure_pgboss; print(ensure_pgboss(\'12\'))")')
  const require = createRequire(path.join(dir, 'package.json'))
  let bossMain, pgMain
  try {
    bossMain = require.resolve('pg-boss')
    pgMain = require.resolve('pg')
  } catch (err) {
    throw new Error(`PGBOSS_DIR=${dir} has no node_modules/pg-boss or node_modules/pg (${err.message})`)
  }
  const parentURL = pathToFileURL(path.join(dir, 'package.json')).href
  register('./resolve-hooks.mjs', import.meta.url, { data: { parentURL } }) // 'pg' in GENERATED_DIR -> PGBOSS_DIR
  const bossModule = await import(pathToFileURL(bossMain).href)
  const PgBoss = bossModule.PgBoss ?? bossModule.default?.PgBoss ?? bossModule.default
  if (typeof PgBoss !== 'function') throw new Error(`no PgBoss class exported by ${bossMain}`)
  const pgModule = await import(pathToFileURL(pgMain).href)
  const pg = pgModule.default ?? pgModule
  const pkg = JSON.parse(readFileSync(path.join(dir, 'node_modules', 'pg-boss', 'package.json'), 'utf8'))
  return { PgBoss, pg, pgbossVersion: pkg.version, pgbossMajor: Number(pkg.version.split('.')[0]) }
}
