// Why a task hit or missed: its key components against its own entry or, for a miss, against the nearest earlier
// entry of the same module (the one differing in the fewest components), component by component.
import { desc, eq } from 'drizzle-orm';
import type { Db } from '../db/client';
import { type CacheEntry, cacheEntries } from '../db/tables/cache';
import { runs, tasks } from '../db/tables/runs';
import { notFound } from '../errors';
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

/** How many of a module's latest entries a miss is compared with. */
const CANDIDATES = 200;

export async function explainTask(db: Db, taskId: string): Promise<Explanation> {
  const [task] = await db.select().from(tasks).where(eq(tasks.id, taskId));
  if (!task) throw notFound(`No task ${taskId}.`);
  const base = { taskId, key: null, hit: false, nearest: null, differences: [] };
  if (task.kind !== 'module')
    return { ...base, message: `${task.node} is a ${task.kind} node: only module tasks are cached (their own tasks are, one by one)` };
  const [run] = await db.select().from(runs).where(eq(runs.id, task.runId));
  const own = (await taskKeys(db, run!, [task])).get(task.id);
  if (!own) return { ...base, message: `${task.moduleRef} opts out of caching (cache.enabled: false in its manifest)` };
  if (task.cacheSourceTaskId) {
    return {
      ...base,
      key: own.key,
      hit: true,
      message: `hit: served the result of task ${task.cacheSourceTaskId} of run ${task.cacheSourceRunId}, saving ${task.cacheSavedMs} ms`,
    };
  }
  if (!task.cacheKey) return { ...base, key: own.key, message: `not looked up yet: the task is ${task.status.toLowerCase()}` };
  const candidates = (
    await db.select().from(cacheEntries).where(eq(cacheEntries.module, own.module)).orderBy(desc(cacheEntries.createdAt)).limit(CANDIDATES)
  ).filter((e) => e.sourceTaskId !== task.id);
  const reason = run!.refreshCache ? 'the run asked for a refresh, so the cache was not read' : 'no entry of this key could be used when it was dispatched';
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
