// The gates a module task passes just before dispatch: data access (decided and audited again, labels change) and
// the cache (completed from a usable entry, or holding its key so identical tasks wait for one owner).
import { eq, inArray, sql } from 'drizzle-orm';
import { permanentFailure } from '../../plugins/outcomes';
import { audit } from '../audit/audit';
import { grantsOf } from '../auth/grants';
import type { CacheHit } from '../cache/store';
import { taskKeys } from '../cache/task-keys';
import { idAmong } from '../db/arrays';
import { identities } from '../db/tables/identities';
import { moduleVersions } from '../db/tables/modules';
import { type Run, runs, type Task, tasks } from '../db/tables/runs';
import { freshnessVerdict } from '../governance/freshness';
import { decideTaskAccess, partitionsRead } from '../governance/task-access';
import { inheritMetricSummaries } from '../tracking/inherit';
import { completeMaps } from './composite';
import { type TxContext, taskStatusEvent } from './context';
import { upstreamOutputs } from './known-facts';
import { cacheHitMessage, cacheWaitMessage } from './outcomes';
import { isTerminal } from './rules';
import { applyOutcome } from './settle';

/**
 * Decides, just before dispatch, which datasets and columns each task that declares some may touch (labels may
 * have changed since the run started). A refused task fails, never retried, naming the columns and the rule;
 * every decision is audited.
 */
export async function governData(tc: TxContext, run: Run, ready: Task[], ended: string[]): Promise<Task[]> {
  const { tx, step } = tc;
  // Tasks that touch datasets were marked when the run was planned; the rest cost nothing here.
  if (!ready.some((t) => t.dataAccess)) return ready;
  const versionIds = [...new Set(ready.filter((t) => t.dataAccess).map((t) => t.moduleVersionId!))];
  const manifests = new Map(
    (await tx.select({ id: moduleVersions.id, manifest: moduleVersions.manifest }).from(moduleVersions).where(inArray(moduleVersions.id, versionIds))).map(
      (v) => [v.id, v.manifest],
    ),
  );
  const [creator] = run.createdBy ? await tx.select().from(identities).where(eq(identities.id, run.createdBy)) : [];
  const allowed: Task[] = [];
  for (const task of ready) {
    const manifest = manifests.get(task.moduleVersionId!);
    if (!task.dataAccess || !manifest) {
      allowed.push(task);
      continue;
    }
    const decision = await decideTaskAccess(tx, run.domain, manifest, { models: task.models, partitions: partitionsRead(task.dataAccess) });
    if ('denied' in decision) {
      const { rule, message, subjects } = decision.denied;
      await audit(tx, {
        identity: creator ?? null,
        action: 'data.dispatch',
        decision: 'deny',
        subject: `task:${task.id}`,
        rule,
        details: { run: run.id, node: task.node, domain: run.domain, refused: subjects },
      });
      const failed = await applyOutcome(tc, task, permanentFailure('forbidden', `refused by data policy: ${message} (${rule})`), {
        at: step.at,
        durationMs: 0,
        host: null,
      });
      if (isTerminal(failed.status)) ended.push(task.node);
      continue;
    }
    // A late dataset read under a WAIT or FAIL freshness policy (governance/freshness.ts): waiting tasks stay READY
    // and are looked at again on every sweep until a fresh version arrives or their wait runs out.
    const fresh = await freshnessVerdict(
      tx,
      Object.values(decision.access.inputs).map((i) => i.dataset),
      task.queuedAt ?? step.at,
      step.at,
    );
    if (!fresh.go) {
      if (fresh.fail) {
        const failed = await applyOutcome(tc, task, permanentFailure('dataset-late', fresh.message), { at: step.at, durationMs: 0, host: null });
        if (isTerminal(failed.status)) ended.push(task.node);
      } else if (task.message !== fresh.message) await tx.update(tasks).set({ message: fresh.message }).where(eq(tasks.id, task.id));
      continue;
    }
    await audit(tx, {
      identity: creator ?? null,
      action: 'data.dispatch',
      decision: 'allow',
      subject: `task:${task.id}`,
      rule: `within the ${run.domain} domain's ceiling, sources and sinks`,
      details: {
        run: run.id,
        node: task.node,
        inputs: Object.fromEntries(Object.entries(decision.access.inputs).map(([p, i]) => [p, `${i.dataset}@${i.version}: ${i.columns.join(',')}`])),
        outputs: decision.access.outputs,
      },
    });
    await tx.update(tasks).set({ dataAccess: decision.access }).where(eq(tasks.id, task.id));
    allowed.push({ ...task, dataAccess: decision.access });
  }
  return allowed;
}

/**
 * Completes from cache the tasks whose key has a usable entry the run may read (pushed to `ended`), reserves the
 * keys of the others, and returns those it may dispatch: a task whose key another task holds stays READY, and
 * hits on a later pass once the owner's entry exists (or takes the key over once the owner's reservation expires).
 */
export async function fromCache(tc: TxContext, run: Run, ready: Task[], ended: string[]): Promise<Task[]> {
  const { ctx, tx, step } = tc;
  const { cache } = ctx;
  if (!cache || !ready.length) return ready;
  // Module versions from the process's cache and upstream outputs this transaction wrote: not read again per edge.
  const keys = await taskKeys(tx, run, ready, {
    versions: (ids) => ctx.versions.get(tx, ids),
    outputs: (keyed) => upstreamOutputs(tc, run, keyed),
  });
  if (!keys.size) return ready;
  const keyOf = (t: Task) => keys.get(t.id)!.key;
  const keyed = ready.filter((t) => keys.has(t.id));
  const usable = async (wanted: string[]) => {
    const entries = await cache.lookup(tx, wanted, step.at);
    if (!entries.size) return entries;
    const sources = new Map(
      (
        await tx
          .select()
          .from(runs)
          .where(inArray(runs.id, [...new Set([...entries.values()].map((e) => e.sourceRunId))]))
      ).map((r) => [r.id, r]),
    );
    const [creator] = run.createdBy ? await tx.select().from(identities).where(eq(identities.id, run.createdBy)) : [];
    const grants = creator ? await grantsOf(tx, creator) : undefined;
    for (const [key, entry] of entries) {
      const source = sources.get(entry.sourceRunId);
      // As its starter with the scopes of the token it was started with: no more than that token may read.
      if (!source || !ctx.mayReuse(creator ?? null, source, grants, run.scopes)) entries.delete(key);
    }
    return entries;
  };
  const entries = run.refreshCache ? new Map<string, CacheHit>() : await usable([...new Set(keyed.map(keyOf))]);

  // The first task of each missed key claims it; identical tasks in this batch wait for it like any other owner.
  const claims = new Map<string, Task>();
  for (const t of keyed) if (!entries.has(keyOf(t)) && !claims.has(keyOf(t))) claims.set(keyOf(t), t);
  const owned = await cache.reserve(
    tx,
    [...claims].map(([key, t]) => {
      const k = keys.get(t.id)!;
      return {
        key,
        taskId: t.id,
        runId: run.id,
        components: k.components,
        module: k.module,
        moduleVersionId: k.version.id,
        ttlSeconds: k.version.manifest.cache?.ttlSeconds ?? null,
      };
    }),
    step.at,
  );
  if (owned.size && !run.refreshCache) {
    // An owner that finished between the lookup above and the reservation left its entry, and no reservation to
    // stop us: look the keys just won up again (each statement sees what committed before it started).
    const late = await usable([...owned]);
    for (const [key, entry] of late) {
      entries.set(key, entry);
      owned.delete(key);
    }
    await cache.release(
      tx,
      [...late.keys()].map((key) => claims.get(key)!.id),
    );
  }

  const hits = keyed.filter((t) => entries.has(keyOf(t)));
  if (hits.length) {
    // One JSON parameter for the whole batch: binding a parameter per cell costs more than the update itself.
    const rows = hits.map((t) => {
      const e = entries.get(keyOf(t))!;
      return {
        id: t.id,
        outputs: e.outputs,
        key: e.key,
        source_task: e.sourceTaskId,
        source_run: e.sourceRunId,
        saved: e.durationMs,
        message: cacheHitMessage(e),
      };
    });
    await tx.execute(sql`
      update tasks as t set status = 'SUCCEEDED', outputs = v.outputs, cache_key = v.key, cache_source_task_id = v.source_task,
        cache_source_run_id = v.source_run, cache_saved_ms = v.saved, reason = 'cache-hit', message = v.message, progress = 1,
        queued_at = ${step.at.toISOString()}::timestamptz, started_at = ${step.at.toISOString()}::timestamptz, finished_at = ${step.at.toISOString()}::timestamptz
      from json_to_recordset(${JSON.stringify(rows)}::json) as v(id uuid, outputs jsonb, key text, source_task uuid, source_run uuid, saved bigint, message text)
      where t.id = v.id and ${idAmong(
        't',
        rows.map((r) => r.id),
      )}`);
    await inheritMetricSummaries(
      tx,
      run.id,
      rows.map((r) => ({ id: r.id, source: r.source_task })),
    );
    await cache.markUsed(tx, [...new Set(hits.map(keyOf))], step.at);
    step.cacheHits.count += rows.length;
    for (const r of rows) step.cacheHits.savedMs += Number(r.saved) || 0;
    for (const t of hits) {
      taskStatusEvent(step, t, 'SUCCEEDED', 'cache-hit', cacheHitMessage(entries.get(keyOf(t))!));
      ended.push(t.node);
    }
    const mapParents = hits.filter((t) => t.mapParent).map((t) => t.mapParent!);
    if (mapParents.length) ended.push(...(await completeMaps(tc, run, mapParents)));
  }

  const owns = (t: Task) => owned.has(keyOf(t)) && claims.get(keyOf(t)) === t;
  const waiting = keyed.filter((t) => !entries.has(keyOf(t)) && !owns(t));
  if (waiting.length) {
    const holders = await cache.holders(tx, [...new Set(waiting.map(keyOf))]);
    for (const t of waiting) {
      const message = cacheWaitMessage(holders.get(keyOf(t)));
      if (t.message !== message)
        await tx
          .update(tasks)
          .set({ message, cacheKey: keyOf(t) })
          .where(eq(tasks.id, t.id));
    }
  }
  const ownedTasks = keyed.filter(owns);
  if (ownedTasks.length) {
    await tx.execute(sql`
      update tasks as t set cache_key = v.key from json_to_recordset(${JSON.stringify(ownedTasks.map((o) => ({ id: o.id, key: keyOf(o) })))}::json) as v(id uuid, key text)
      where t.id = v.id and ${idAmong(
        't',
        ownedTasks.map((o) => o.id),
      )}`);
    for (const o of ownedTasks) o.cacheKey = keyOf(o);
  }
  return ready.filter((t) => !keys.has(t.id) || owns(t));
}
