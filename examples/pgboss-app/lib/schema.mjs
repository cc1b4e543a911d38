// Tables the app owns: the legacy Prisma "Job" table, created as Prisma's migration does (legacy-job.sql,
// which the tests' legacy app runs too) when it is absent, plus one extra nullable "type" TEXT column for the
// plan's import jobs; and the ledger.
import { readFileSync } from 'node:fs'

export const LEGACY_DDL = readFileSync(new URL('../legacy-job.sql', import.meta.url), 'utf8')
export const LEGACY_TYPE_COLUMN = 'ALTER TABLE "public"."Job" ADD COLUMN IF NOT EXISTS "type" TEXT'

export const LEDGER_DDL = `
CREATE TABLE IF NOT EXISTS public.ledger (
  key text PRIMARY KEY,
  type text NOT NULL,
  payload jsonb NOT NULL DEFAULT '{}'::jsonb,
  routed_to text NOT NULL CHECK (routed_to IN ('pgboss', 'legacy')),
  job_id text,
  created_at timestamptz NOT NULL DEFAULT now(),
  processed_by text,
  processed_count integer NOT NULL DEFAULT 0,
  first_processed_at timestamptz,
  last_processed_at timestamptz,
  failed_attempts integer NOT NULL DEFAULT 0,
  last_error text,
  gave_up boolean NOT NULL DEFAULT false
);
ALTER TABLE public.ledger ADD COLUMN IF NOT EXISTS gave_up boolean NOT NULL DEFAULT false;
CREATE INDEX IF NOT EXISTS ledger_job_id_idx ON public.ledger (job_id);
`

export async function ensureSchema (pool) {
  const client = await pool.connect()
  try {
    await client.query('BEGIN')
    await client.query("SELECT pg_advisory_xact_lock(hashtext('pgboss-app schema'))")
    const { rows: [job] } = await client.query(`SELECT to_regclass('"public"."Job"') IS NOT NULL AS present`)
    if (!job.present) await client.query(LEGACY_DDL)
    await client.query(LEGACY_TYPE_COLUMN) // not in the real table: import-article jobs need a job type
    await client.query(LEDGER_DDL)
    await client.query('COMMIT')
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {})
    throw err
  } finally {
    client.release()
  }
}
