// Tables the app owns: the legacy Prisma-style "Job" table (real columns, enum "JobStatus", quoted
// identifiers; plus one extra nullable "type" TEXT column for the plan's import jobs) and the ledger.
export const LEGACY_DDL = `
DO $$ BEGIN
  CREATE TYPE "JobStatus" AS ENUM ('PENDING', 'RUNNING', 'COMPLETED', 'FAILED', 'CANCELLED');
EXCEPTION WHEN duplicate_object THEN NULL; END $$;
CREATE TABLE IF NOT EXISTS "Job" (
  "id" TEXT NOT NULL,
  "status" "JobStatus" NOT NULL DEFAULT 'PENDING',
  "attempts" INTEGER NOT NULL DEFAULT 0,
  "error" TEXT,
  "startedAt" TIMESTAMP(3),
  "completedAt" TIMESTAMP(3),
  "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
  "updatedAt" TIMESTAMP(3) NOT NULL,
  "llmThinking" TEXT,
  "durationInSeconds" INTEGER,
  "logs" TEXT,
  "evaluationId" TEXT NOT NULL,
  "evaluationVersionId" TEXT,
  "agentEvalBatchId" TEXT,
  "originalJobId" TEXT,
  "priceInDollars" DECIMAL(10,6),
  "cancelledAt" TIMESTAMP(3),
  "cancelledById" TEXT,
  "cancellationReason" TEXT,
  CONSTRAINT "Job_pkey" PRIMARY KEY ("id")
);
CREATE UNIQUE INDEX IF NOT EXISTS "Job_evaluationVersionId_key" ON "Job"("evaluationVersionId");
CREATE INDEX IF NOT EXISTS "Job_evaluationId_idx" ON "Job"("evaluationId");
CREATE INDEX IF NOT EXISTS "Job_agentEvalBatchId_idx" ON "Job"("agentEvalBatchId");
CREATE INDEX IF NOT EXISTS "Job_originalJobId_idx" ON "Job"("originalJobId");
CREATE INDEX IF NOT EXISTS "Job_cancelledById_idx" ON "Job"("cancelledById");
DO $$ BEGIN
  ALTER TABLE "Job" ADD CONSTRAINT "Job_originalJobId_fkey" FOREIGN KEY ("originalJobId")
    REFERENCES "Job"("id") ON DELETE SET NULL ON UPDATE CASCADE;
EXCEPTION WHEN duplicate_object THEN NULL; END $$;
-- Not in the real table: the plan's import-article jobs need a job type ('evaluation' | 'import-article').
ALTER TABLE "Job" ADD COLUMN IF NOT EXISTS "type" TEXT;
`

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
    await client.query(LEGACY_DDL)
    await client.query(LEDGER_DDL)
    await client.query('COMMIT')
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {})
    throw err
  } finally {
    client.release()
  }
}
