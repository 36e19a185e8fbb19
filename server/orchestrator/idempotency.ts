// Idempotency keys belong to the identity that used them: starting a run again with a key the same identity
// already used returns the run it started (a CONFLICT when that run is of another workflow), and another
// identity's key is no key at all to the caller, so it starts its own run and learns nothing of the other's. Runs
// the control plane starts itself (schedules) have no identity and share one scope of their own. The database
// holds each (identity, key) once (`runs_idempotency_key`, nulls not distinct).
import { and, eq, isNull } from 'drizzle-orm';
import type { Db, Tx } from '../db/client';
import { type Run, runs } from '../db/tables/runs';

/** The run `identityId` (null: the control plane) started with `key`. */
export async function findRunByKey(db: Db | Tx, identityId: string | null, key: string): Promise<Run | undefined> {
  const [run] = await db
    .select()
    .from(runs)
    .where(and(eq(runs.idempotencyKey, key), identityId ? eq(runs.createdBy, identityId) : isNull(runs.createdBy)));
  return run;
}
