// The code `migrate scaffold` generates for this app (Express, ESM JavaScript, from the shipped stages.yaml),
// read from the folder GENERATED_DIR names: nothing generated is kept in this app's folder. runbook.demo's
// ExampleApp renders it for the pg-boss in PGBOSS_DIR; by hand, see README.md ("Generated code").
import { existsSync, readFileSync } from 'node:fs'
import path from 'node:path'
import { pathToFileURL } from 'node:url'
import { requiredFolder } from './config.mjs'

/** The generated modules (flags, queueManager, status); call after loadDeps() (their 'pg' resolves from PGBOSS_DIR). */
export async function loadGenerated (deps) {
  const dir = requiredFolder('GENERATED_DIR', 'write the scaffolded code with `migrate -f stages.yaml scaffold ' +
    '--framework express --lang js --pgboss 12 --out DIR` (the major of the pg-boss in PGBOSS_DIR) and set GENERATED_DIR=DIR')
  const major = scaffoldedMajor(dir) // before any import: code for another major does not even link
  if (major !== deps.pgbossMajor) {
    throw new Error(`GENERATED_DIR=${dir} was scaffolded for pg-boss ${major}, but PGBOSS_DIR has pg-boss ` +
      `${deps.pgbossVersion}: re-run scaffold with --pgboss ${deps.pgbossMajor}`)
  }
  const load = (name) => import(pathToFileURL(path.join(dir, 'runbook', `${name}.js`)).href)
  return { flags: await load('flags'), queueManager: await load('queue-manager'), status: await load('status') }
}

/** The major named by the header scaffold wrote: `... ("<runbook>"; pg-boss 12, express, js).` */
function scaffoldedMajor (dir) {
  const files = ['flags', 'queue-manager', 'status'].map((name) => path.join(dir, 'runbook', `${name}.js`))
  const missing = files.find((file) => !existsSync(file))
  if (missing) throw new Error(`GENERATED_DIR=${dir} has no ${path.relative(dir, missing)}: pass that folder as scaffold's --out`)
  const header = readFileSync(files[1], 'utf8').split('\n', 1)[0]
  const found = /; pg-boss (\d+), express, js\)\.$/.exec(header)
  if (!found) throw new Error(`${files[1]} is not \`migrate scaffold --framework express --lang js\` output: pass another --out`)
  return Number(found[1])
}
