// The ledger (public.ledger): one row per job created through the API, keyed by an idempotency key, so
// tests can prove every job was processed exactly once across both systems. processed_count is incremented
// each time a handler runs the work to completion, so a duplicate shows as processed_count > 1.

export async function findByKey (db, key) {
  const { rows } = await db.query('SELECT key, type, routed_to, job_id FROM public.ledger WHERE key = $1', [key])
  return rows[0] ?? null
}

export async function insertEntry (db, { key, type, payload, routedTo, jobId = null }) {
  await db.query(
    'INSERT INTO public.ledger (key, type, payload, routed_to, job_id) VALUES ($1, $2, $3, $4, $5)',
    [key, type, JSON.stringify(payload), routedTo, jobId]
  )
}

export async function setJobId (db, key, jobId) {
  await db.query('UPDATE public.ledger SET job_id = $2 WHERE key = $1', [key, jobId])
}

export async function deleteEntry (db, key) {
  await db.query('DELETE FROM public.ledger WHERE key = $1', [key])
}

/** Record one completed run of the work; returns the new processed_count (0 if the key is unknown). */
export async function markProcessed (db, key, by) {
  const { rows } = await db.query(
    `UPDATE public.ledger SET processed_count = processed_count + 1, processed_by = $2,
       first_processed_at = coalesce(first_processed_at, now()), last_processed_at = now()
     WHERE key = $1 RETURNING processed_count`,
    [key, by]
  )
  return rows[0]?.processed_count ?? 0
}

/** Record one failed run; `gaveUp` marks the last attempt (no retry will follow). */
export async function markFailed (db, key, error, gaveUp) {
  await db.query(
    `UPDATE public.ledger SET failed_attempts = failed_attempts + 1, last_error = left($2, 1000),
       gave_up = gave_up OR $3 WHERE key = $1`,
    [key, String(error), Boolean(gaveUp)]
  )
}
