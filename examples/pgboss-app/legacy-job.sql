-- The legacy "Job" table exactly as Prisma's migration creates it (reference/legacy-job.md):
-- run by the example app (lib/schema.mjs) when the table is absent, and by the tests' legacy app.
CREATE TYPE "JobStatus" AS ENUM ('PENDING', 'RUNNING', 'COMPLETED', 'FAILED', 'CANCELLED');
CREATE TABLE "public"."Job" (
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
CREATE UNIQUE INDEX "Job_evaluationVersionId_key" ON "public"."Job"("evaluationVersionId");
CREATE INDEX "Job_evaluationId_idx" ON "public"."Job"("evaluationId");
CREATE INDEX "Job_agentEvalBatchId_idx" ON "public"."Job"("agentEvalBatchId");
CREATE INDEX "Job_originalJobId_idx" ON "public"."Job"("originalJobId");
CREATE INDEX "Job_cancelledById_idx" ON "public"."Job"("cancelledById");
ALTER TABLE "public"."Job" ADD CONSTRAINT "Job_originalJobId_fkey" FOREIGN KEY ("originalJobId")
    REFERENCES "public"."Job"("id") ON DELETE SET NULL ON UPDATE CASCADE;
