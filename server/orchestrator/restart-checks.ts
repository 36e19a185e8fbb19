// The checks a clone or a rerun makes on its source's pins before anything is planned, asked alone: `viewerCan.clone`
// and `viewerCan.rerun` answer what cloneRun and rerunRun would (the same function, over the same readers).

import { eq } from 'drizzle-orm';
import type { TokenScopes } from '../auth/ability';
import { actorOfIdentity } from '../compute/cluster-access';
import type { Db } from '../db/client';
import type { Identity } from '../db/tables/identities';
import { tasks } from '../db/tables/runs';
import { checkKeptModels, pinnedModels } from './batch-inputs';
import { readersOf } from './run-actor';

/** Refuses, as a restart would, when `identity` (as its token's scopes allow) may not read a model version `runId` pinned. */
export async function assertMayReadPinnedModels(db: Db, runId: string, identity: Identity | null, scopes: TokenScopes): Promise<void> {
  const kept = pinnedModels(await db.select().from(tasks).where(eq(tasks.runId, runId)));
  if (!kept.size || !identity) return;
  await checkKeptModels(db, kept, await readersOf(db, await actorOfIdentity(db, identity, scopes)));
}
