// Why a task hit or missed: its key components against its own entry or, for a miss, against the nearest earlier
// entry of the same module (the one differing in the fewest components), component by component. Both the task and
// the entries it is compared with are what the caller may read: a task they may not read is not found, exactly like
// one that does not exist, and an entry they may not read is never compared with nor named.
import { and, desc, eq, inArray } from 'drizzle-orm';
import { audit } from '../audit/audit';
import type { Db } from '../db/client';
import { type CacheEntry, cacheEntries } from '../db/tables/cache';
import { runs, tasks } from '../db/tables/runs';
import { notFound } from '../errors';
import { type CacheReader, readRule } from './access';
import { type KeyDifference, keyDifferences } from './key';
import { taskKeys } from './task-keys';

export interface Explanation {
  taskId: string;
  key: string | null;
  hit: boolean;
  message: string;
  /** For a miss: the nearest earlier entry and what differs from it. */
  nearest: CacheEntry | null;
  differences: KeyDifference[];
}

/** How many of a module's latest readable entries a miss is compared with. */
const CANDIDATES = 200;

export async function explainTask(db: Db, taskId: string, reader: CacheReader): Promise<Explanation> {
  const [found] = await db.select({ task: tasks, run: runs }).from(tasks).innerJoin(runs, eq(runs.id, tasks.runId)).where(eq(tasks.id, taskId));
  if (!found || !reader.mayRead(found.run)) {
    if (found) {
      await audit(db, {
        identity: reader.identity,
        action: 'cache.explain',
        decision: 'deny',
        subject: `task:${taskId}`,
        rule: readRule,
        details: { domain: found.run.domain },
      });
    }
    throw notFound(`No task ${taskId}; name it by its run and node instead: \`atelier cache explain RUN_ID NODE\`.`);
  }
  const { task, run } = found;
  const base = { taskId, key: null, hit: false, nearest: null, differences: [] };
  if (task.kind !== 'module')
    return { ...base, message: `${task.node} is a ${task.kind} node: only module tasks are cached (their own tasks are, one by one)` };
  const own = (await taskKeys(db, run, [task])).get(task.id);
  if (!own) return { ...base, message: `${task.moduleRef} opts out of caching (cache.enabled: false in its manifest)` };
  if (task.cacheSourceTaskId) {
    const [source] = await db.select().from(runs).where(eq(runs.id, task.cacheSourceRunId!));
    const from = source && reader.mayRead(source) ? `the result of task ${task.cacheSourceTaskId} of run ${task.cacheSourceRunId}` : 'a cached result';
    return { ...base, key: own.key, hit: true, message: `hit: served ${from}, saving ${task.cacheSavedMs} ms` };
  }
  if (!task.cacheKey) return { ...base, key: own.key, message: `not looked up yet: the task is ${task.status.toLowerCase()}` };
  const candidates = reader.domains.length
    ? (
        await db
          .select({ entry: cacheEntries, run: runs })
          .from(cacheEntries)
          .innerJoin(runs, eq(runs.id, cacheEntries.sourceRunId))
          .where(and(eq(cacheEntries.module, own.module), inArray(runs.domain, reader.domains)))
          .orderBy(desc(cacheEntries.createdAt))
          .limit(CANDIDATES)
      )
        .filter((c) => c.entry.sourceTaskId !== task.id && reader.mayRead(c.run))
        .map((c) => c.entry)
    : [];
  const reason = run.refreshCache ? 'the run asked for a refresh, so the cache was not read' : 'no entry of this key could be used when it was dispatched';
  let nearest: { entry: CacheEntry; differences: KeyDifference[] } | null = null;
  for (const entry of candidates) {
    const differences = keyDifferences(own.components, entry.components);
    if (!nearest || differences.length < nearest.differences.length) nearest = { entry, differences };
  }
  if (!nearest) return { ...base, key: own.key, message: `miss: ${reason}, and there is no earlier entry of ${own.module} to compare with` };
  if (!nearest.differences.length) {
    return {
      ...base,
      key: own.key,
      nearest: nearest.entry,
      message: `miss: ${reason}; an entry of the same key exists now (written by task ${nearest.entry.sourceTaskId} since, or its outputs were gone then)`,
    };
  }
  return {
    ...base,
    key: own.key,
    nearest: nearest.entry,
    differences: nearest.differences,
    message: `miss: against the nearest entry (task ${nearest.entry.sourceTaskId} of run ${nearest.entry.sourceRunId}), ${nearest.differences.map((d) => d.message).join('; ')}`,
  };
}
