// The orchestrator: starts, clones, reruns and cancels runs; records what executors report (exactly once per task
// attempt and sequence number); moves tasks through their states (trigger rules, retries with backoff,
// concurrency limits); and, on a periodic tick, retries what is due, fails over tasks whose host went silent,
// backs up deadlines, fills freed slots and admits queued runs. All state is in Postgres and every step is one
// transaction under the run's row lock that also writes the bus messages it implies (the outbox), so a crash at
// any point loses nothing and several replicas can work side by side. Before dispatch, a module task whose cache key
// has a usable entry is completed from it, and identical tasks in flight at once are held back for one owner.
import { randomUUID } from 'node:crypto';
import { and, asc, eq, inArray, isNull, lt, sql, type SQL } from 'drizzle-orm';
import type { ExecutorEvent, TaskMessage, TaskOutcome } from '../../plugins/protocol';
import { taskMessageId } from '../../plugins/protocol';
import { readableBy } from '../cache/access';
import type { Grants } from '../auth/ability';
import { grantsOf } from '../governance/grants';
import { audit, AuditedDenial } from '../governance/audit';
import type { CatalogCeiling } from '../governance/catalog';
import { decideDataAccess, hasDataPorts, recordDatasetWrites, type TaskDataAccess } from '../governance/policy';
import type { CacheHit, TaskCache } from '../cache/store';
import { taskKeys } from '../cache/task-keys';
import { bulkInsert } from '../db/bulk';
import { queryRows, type Db, type Tx } from '../db/client';
import { identities, type Identity } from '../db/tables/identities';
import { moduleVersions } from '../db/tables/modules';
import { outbox } from '../db/tables/outbox';
import { runs, tasks, type NewTask, type Run, type RunStatus, type Task, type TaskStatus, type Trigger } from '../db/tables/runs';
import { taskEvents } from '../db/tables/task-events';
import { workflowVersions, workflows, type Domain, type Workflow, type WorkflowVersion } from '../db/tables/workflows';
import { AtelierError, badInput, notFound } from '../errors';
import type { FeedEvent, RunFeed } from '../feed';
import { parseModuleRef } from '../modules/ref';
import { planRun, type PlanDefaults, type PlannedTask } from './plan';
import { decideRetry, finalRunStatus, isTerminal, readiness, readinessFromCounts } from './rules';
import { checkParameters } from '../modules/manifest';
import { outputRef, resolveRunParameters, substituteOutputs } from './spec';

export interface StartRunInput {
  workflow: string; // name or id
  version?: number;
  parameters?: Record<string, unknown>;
  trigger: Trigger;
  /** Starting again with the same key returns the first run instead of starting a second. */
  idempotencyKey?: string;
  /** Module versions to use instead of what the spec names: `ns/name@version` replaces `ns/name` in every node. */
  useModules?: string[];
  /** Default: the workflow's domain. Cache entries never cross domains. */
  domain?: Domain;
  /** Execute cacheable tasks even when a result is cached, replacing the entries. */
  refreshCache?: boolean;
  /** Experimentation runs only: a private cache namespace, so trial results neither feed nor use the shared ones. */
  cacheNamespace?: string;
  /** Run the module nodes that name no hot cluster of their own on this one. */
  hotCluster?: string;
}

export type RerunFrom = 'FAILED' | 'ALL' | 'NODES';
export interface RerunInput {
  from: RerunFrom;
  /** With `NODES`: the nodes to execute again (with everything downstream of them). */
  nodes?: string[];
  /** Swap the module of some nodes: node → `ns/name@tag-or-version`. Those nodes execute again. */
  modules?: Record<string, string>;
}

export interface Orchestrator {
  startRun(input: StartRunInput, identity: Identity | null): Promise<Run>;
  /** A new run of the same workflow version and pinned module versions, with some parameters changed. */
  cloneRun(runId: string, parameters: Record<string, unknown>, identity: Identity | null): Promise<Run>;
  /** A new run that reuses the source run's succeeded results and executes only what is asked. */
  rerunRun(runId: string, input: RerunInput, identity: Identity | null): Promise<Run>;
  cancelRun(runId: string, identity: Identity | null): Promise<Run>;
  /** Records a batch of executor events; safe to call again with events already recorded. */
  recordEvents(events: ExecutorEvent[]): Promise<void>;
  /** One pass of the periodic work (due retries, lost hosts, deadlines, free slots, run admission). */
  tick(): Promise<void>;
}

export interface OrchestratorOptions {
  db: Db;
  feed: RunFeed;
  /** Called after a transaction that wrote outbox rows has committed. */
  onOutbox: () => void;
  defaults: PlanDefaults;
  now?: () => Date;
  /** Most tasks queued or running at once per executor pool. */
  poolLimits?: Record<string, number>;
  /** A running task whose host sent nothing for this long is presumed lost and retried. */
  heartbeatTimeoutMs?: number;
  /** How long past its own deadline a running task may go before the control plane times it out itself. */
  deadlineGraceMs?: number;
  /** The task cache; without it every task executes. */
  cache?: TaskCache;
  /** Whether a run started by `identity` may reuse a result computed by `source` (default: its CASL ability reads it). */
  mayReuse?: (identity: Identity | null, source: Run, grants?: Grants) => boolean;
  /** What the interactive dataset catalog admits: a dataset a task's output puts outside it is withdrawn (default: CONFIDENTIAL, never PII). */
  catalogCeiling?: CatalogCeiling;
}

/** What one transaction produced, published after it commits. */
interface Step {
  at: Date;
  feed: FeedEvent[];
  outbox: boolean;
}

const uuidRe = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const INSERT_CHUNK = 1000;
const TICK_BATCH = 500;
const OPEN: TaskStatus[] = ['PENDING', 'READY', 'QUEUED', 'RUNNING', 'RETRYING'];
const ACTIVE: TaskStatus[] = ['QUEUED', 'RUNNING'];
const EVICT_EVERY_MS = 10_000;

export function createOrchestrator(options: OrchestratorOptions): Orchestrator {
  const { db, feed } = options;
  const now = options.now ?? (() => new Date());
  const heartbeatTimeoutMs = options.heartbeatTimeoutMs ?? 60_000;
  const deadlineGraceMs = options.deadlineGraceMs ?? 30_000;
  const { cache } = options;
  const mayReuse = options.mayReuse ?? readableBy;
  const catalogCeiling = options.catalogCeiling ?? { level: 'CONFIDENTIAL', deniedCategories: ['PII'] };
  let lastEviction = 0;

  /** Runs `fn` in a transaction and publishes what it produced once it has committed. */
  async function transact<T>(fn: (tx: Tx, step: Step) => Promise<T>): Promise<T> {
    const step: Step = { at: now(), feed: [], outbox: false };
    const result = await db.transaction((tx) => fn(tx, step));
    if (step.outbox) options.onOutbox();
    feed.publish(step.feed);
    return result;
  }

  const taskStatusEvent = (step: Step, t: Pick<Task, 'runId' | 'id' | 'node' | 'attempt'>, status: TaskStatus, reason: string | null = null, message: string | null = null) =>
    step.feed.push({ kind: 'task-status', runId: t.runId, taskId: t.id, node: t.node, status, attempt: t.attempt, reason, message, at: step.at.toISOString() });

  // --- dispatch ------------------------------------------------------------------------------------------

  /** Writes the bus message of each task's next attempt, with its module and its upstreams' outputs. */
  async function enqueue(tx: Tx, step: Step, run: Pick<Run, 'id'>, ready: Task[]): Promise<void> {
    if (!ready.length) return;
    const versionIds = [...new Set(ready.map((t) => t.moduleVersionId!))];
    const versions = new Map((await tx.select().from(moduleVersions).where(inArray(moduleVersions.id, versionIds))).map((v) => [v.id, v]));
    const upstreamNodes = [...new Set(ready.flatMap((t) => t.dependsOn))];
    const outputs = new Map<string, Record<string, unknown>>();
    if (upstreamNodes.length) {
      const rows = await tx.select({ node: tasks.node, outputs: tasks.outputs }).from(tasks).where(and(eq(tasks.runId, run.id), inArray(tasks.node, upstreamNodes)));
      for (const row of rows) outputs.set(row.node, row.outputs ?? {});
    }
    const messages: TaskMessage[] = ready.map((task) => {
      const version = versions.get(task.moduleVersionId!)!;
      return {
        taskId: task.id,
        runId: run.id,
        attempt: task.attempt + 1,
        node: task.node,
        pool: task.pool,
        executor: task.executor,
        module: { ref: task.moduleRef!, digest: version.digest, entrypoint: version.manifest.entrypoint, runtime: version.manifest.runtime },
        parameters: task.parameters,
        inputs: Object.fromEntries(task.dependsOn.map((d) => [d, outputs.get(d) ?? {}])),
        timeoutMs: task.timeoutMs,
        settings: task.settings,
        ...(task.hotCluster ? { hotCluster: task.hotCluster } : {}),
        ...(task.dataAccess ? { datasets: handedOver(task.dataAccess) } : {}),
        enqueuedAt: step.at.toISOString(),
      };
    });
    await bulkInsert(tx, outbox, messages.map((m) => ({ kind: 'task' as const, pool: m.pool, msgId: taskMessageId(m.taskId, m.attempt), payload: m })));
    for (let i = 0; i < ready.length; i += INSERT_CHUNK) {
      const ids = ready.slice(i, i + INSERT_CHUNK).map((t) => t.id);
      await tx
        .update(tasks)
        .set({ status: 'QUEUED', attempt: sql`${tasks.attempt} + 1`, queuedAt: step.at, startedAt: null, finishedAt: null, retryAt: null, reason: null, message: null, exitCode: null, progress: null, progressMessage: null, heartbeatAt: null })
        .where(inArray(tasks.id, ids));
    }
    for (const t of ready) taskStatusEvent(step, { ...t, attempt: t.attempt + 1 }, 'QUEUED');
    step.outbox = true;
  }

  /** Hands READY tasks of a run to the bus, as far as the run's and the pools' concurrency limits allow. */
  async function dispatch(tx: Tx, step: Step, run: Run): Promise<void> {
    if (!run.admitted || (run.status !== 'QUEUED' && run.status !== 'RUNNING')) return;
    const all = await tx.select().from(tasks).where(and(eq(tasks.runId, run.id), eq(tasks.status, 'READY'))).orderBy(asc(tasks.queuedAt), asc(tasks.node));
    if (!all.length) return;
    // Nested workflows and maps are the control plane's own work: they take no executor slot.
    const ended: string[] = [];
    let expanded = false;
    for (const task of all) {
      if (task.kind === 'workflow') {
        if (await startChildRun(tx, step, run, task)) ended.push(task.node);
      } else if (task.kind === 'map') {
        expanded = true;
        if (await expandMap(tx, step, run, task)) ended.push(task.node);
      }
    }
    let ready = expanded
      ? await tx.select().from(tasks).where(and(eq(tasks.runId, run.id), eq(tasks.status, 'READY'), eq(tasks.kind, 'module'))).orderBy(asc(tasks.queuedAt), asc(tasks.node))
      : all.filter((t) => t.kind === 'module');
    ready = await wireOutputs(tx, step, run, ready, ended);
    ready = await governData(tx, step, run, ready, ended);
    ready = await fromCache(tx, step, run, ready, ended);
    await enqueue(tx, step, run, await withinLimits(tx, run, ready));
    // Nodes that ended here are settled only now: settling dispatches again, and must find the tasks above
    // already queued rather than queue them a second time.
    if (ended.length) await settle(tx, step, run, ended);
  }

  /**
   * Decides, just before dispatch, which datasets and columns each task that declares some may touch (labels may
   * have changed since the run started). A refused task fails, never retried, naming the columns and the rule;
   * every decision is audited.
   */
  async function governData(tx: Tx, step: Step, run: Run, ready: Task[], ended: string[]): Promise<Task[]> {
    // Tasks that touch datasets were marked when the run was planned; the rest cost nothing here.
    if (!ready.some((t) => t.dataAccess)) return ready;
    const versionIds = [...new Set(ready.filter((t) => t.dataAccess).map((t) => t.moduleVersionId!))];
    const manifests = new Map((await tx.select({ id: moduleVersions.id, manifest: moduleVersions.manifest }).from(moduleVersions).where(inArray(moduleVersions.id, versionIds))).map((v) => [v.id, v.manifest]));
    const [creator] = run.createdBy ? await tx.select().from(identities).where(eq(identities.id, run.createdBy)) : [];
    const allowed: Task[] = [];
    for (const task of ready) {
      const manifest = manifests.get(task.moduleVersionId!);
      if (!task.dataAccess || !manifest) {
        allowed.push(task);
        continue;
      }
      const decision = await decideDataAccess(tx, run.domain, manifest);
      if ('denied' in decision) {
        const { rule, message, subjects } = decision.denied;
        await audit(tx, { identity: creator ?? null, action: 'data.dispatch', decision: 'deny', subject: `task:${task.id}`, rule, details: { run: run.id, node: task.node, domain: run.domain, refused: subjects } });
        const failed = await applyOutcome(tx, step, task, { state: 'FAILED', reason: 'forbidden', message: `refused by data policy: ${message} (${rule})`, retryable: false }, { at: step.at, durationMs: 0, host: null });
        if (isTerminal(failed.status)) ended.push(task.node);
        continue;
      }
      await audit(tx, { identity: creator ?? null, action: 'data.dispatch', decision: 'allow', subject: `task:${task.id}`, rule: `within the ${run.domain} domain's ceiling, sources and sinks`, details: { run: run.id, node: task.node, inputs: Object.fromEntries(Object.entries(decision.access.inputs).map(([p, i]) => [p, `${i.dataset}@${i.version}: ${i.columns.join(',')}`])), outputs: decision.access.outputs } });
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
  async function fromCache(tx: Tx, step: Step, run: Run, ready: Task[], ended: string[]): Promise<Task[]> {
    if (!cache || !ready.length) return ready;
    const keys = await taskKeys(tx, run, ready);
    if (!keys.size) return ready;
    const keyOf = (t: Task) => keys.get(t.id)!.key;
    const keyed = ready.filter((t) => keys.has(t.id));
    const usable = async (wanted: string[]) => {
      const entries = await cache.lookup(tx, wanted, step.at);
      if (!entries.size) return entries;
      const sources = new Map((await tx.select().from(runs).where(inArray(runs.id, [...new Set([...entries.values()].map((e) => e.sourceRunId))]))).map((r) => [r.id, r]));
      const [creator] = run.createdBy ? await tx.select().from(identities).where(eq(identities.id, run.createdBy)) : [];
      const grants = creator ? await grantsOf(tx, creator) : undefined;
      for (const [key, entry] of entries) {
        const source = sources.get(entry.sourceRunId);
        if (!source || !mayReuse(creator ?? null, source, grants)) entries.delete(key);
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
        return { key, taskId: t.id, runId: run.id, components: k.components, module: k.module, moduleVersionId: k.version.id, ttlSeconds: k.version.manifest.cache?.ttlSeconds ?? null };
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
      await cache.release(tx, [...late.keys()].map((key) => claims.get(key)!.id));
    }

    const hits = keyed.filter((t) => entries.has(keyOf(t)));
    if (hits.length) {
      // One JSON parameter for the whole batch: binding a parameter per cell costs more than the update itself.
      const rows = hits.map((t) => {
        const e = entries.get(keyOf(t))!;
        return { id: t.id, outputs: e.outputs, key: e.key, source_task: e.sourceTaskId, source_run: e.sourceRunId, saved: e.durationMs, message: hitMessage(e) };
      });
      await tx.execute(sql`
        update tasks as t set status = 'SUCCEEDED', outputs = v.outputs, cache_key = v.key, cache_source_task_id = v.source_task,
          cache_source_run_id = v.source_run, cache_saved_ms = v.saved, reason = 'cache-hit', message = v.message, progress = 1,
          queued_at = ${step.at.toISOString()}::timestamptz, started_at = ${step.at.toISOString()}::timestamptz, finished_at = ${step.at.toISOString()}::timestamptz
        from json_to_recordset(${JSON.stringify(rows)}::json) as v(id uuid, outputs jsonb, key text, source_task uuid, source_run uuid, saved bigint, message text)
        where t.id = v.id`);
      await cache.markUsed(tx, [...new Set(hits.map(keyOf))], step.at);
      for (const t of hits) {
        taskStatusEvent(step, t, 'SUCCEEDED', 'cache-hit', hitMessage(entries.get(keyOf(t))!));
        ended.push(t.node);
      }
      const mapParents = hits.filter((t) => t.mapParent).map((t) => t.mapParent!);
      if (mapParents.length) ended.push(...(await completeMaps(tx, step, run, mapParents)));
    }

    const owns = (t: Task) => owned.has(keyOf(t)) && claims.get(keyOf(t)) === t;
    const waiting = keyed.filter((t) => !entries.has(keyOf(t)) && !owns(t));
    if (waiting.length) {
      const holders = await cache.holders(tx, [...new Set(waiting.map(keyOf))]);
      for (const t of waiting) {
        const holder = holders.get(keyOf(t));
        const message = holder ? `waiting for task ${holder.taskId} of run ${holder.runId}, which computes the same result, to serve it from cache` : 'waiting for an identical task to finish, to serve its result from cache';
        if (t.message !== message) await tx.update(tasks).set({ message, cacheKey: keyOf(t) }).where(eq(tasks.id, t.id));
      }
    }
    const ownedTasks = keyed.filter(owns);
    if (ownedTasks.length) {
      await tx.execute(sql`
        update tasks as t set cache_key = v.key from json_to_recordset(${JSON.stringify(ownedTasks.map((o) => ({ id: o.id, key: keyOf(o) })))}::json) as v(id uuid, key text)
        where t.id = v.id`);
      for (const o of ownedTasks) o.cacheKey = keyOf(o);
    }
    return ready.filter((t) => !keys.has(t.id) || owns(t));
  }

  /** The part of `ready` that the run's and the pools' concurrency limits let start now. */
  async function withinLimits(tx: Tx, run: Run, ready: Task[]): Promise<Task[]> {
    if (!ready.length) return ready;
    if (run.maxParallelTasks) {
      const [active] = await tx.select({ n: sql<number>`count(*)::int` }).from(tasks).where(and(eq(tasks.runId, run.id), inArray(tasks.status, ACTIVE)));
      ready = ready.slice(0, Math.max(0, run.maxParallelTasks - (active?.n ?? 0)));
    }
    const limited = [...new Set(ready.map((t) => t.pool))].filter((p) => options.poolLimits?.[p] !== undefined).sort();
    if (!limited.length) return ready;
    const budget = new Map<string, number>();
    for (const pool of limited) {
      // Serialises dispatch to a limited pool across runs (and replicas) for the rest of this transaction.
      await tx.execute(sql`select pg_advisory_xact_lock(hashtext(${`atelier-pool:${pool}`}))`);
      const [active] = await tx.select({ n: sql<number>`count(*)::int` }).from(tasks).where(and(eq(tasks.pool, pool), inArray(tasks.status, ACTIVE)));
      budget.set(pool, options.poolLimits![pool]! - (active?.n ?? 0));
    }
    return ready.filter((t) => {
      if (!budget.has(t.pool)) return true;
      const left = budget.get(t.pool)!;
      budget.set(t.pool, left - 1);
      return left > 0;
    });
  }

  /**
   * Replaces "${outputs.NODE.NAME}" in task parameters with the upstream's output, now that it exists, and checks
   * the result against the module's schema. A task whose wired inputs do not fit fails here (pushed to `ended`).
   */
  async function wireOutputs(tx: Tx, step: Step, run: Run, ready: Task[], ended: string[]): Promise<Task[]> {
    const wired = ready.filter((t) => JSON.stringify(t.parameters).includes('${outputs.'));
    if (!wired.length) return ready;
    const upstream = [...new Set(wired.flatMap((t) => t.dependsOn))];
    const outputs = new Map(
      (await tx.select({ node: tasks.node, outputs: tasks.outputs }).from(tasks).where(and(eq(tasks.runId, run.id), inArray(tasks.node, upstream)))).map((r) => [r.node, r.outputs ?? {}]),
    );
    const failed = new Set<string>();
    for (const task of wired) {
      const missing: string[] = [];
      const parameters = substituteOutputs(task.parameters, outputs, missing) as Record<string, unknown>;
      const [version] = await tx.select().from(moduleVersions).where(eq(moduleVersions.id, task.moduleVersionId!));
      const problems = missing.length ? [] : checkParameters(version!.digest, version!.manifest, parameters);
      if (missing.length || problems.length) {
        const message = missing.length
          ? `its parameters are wired to outputs that do not exist: ${missing.join(', ')}`
          : `its parameters, wired from upstream outputs, do not fit ${task.moduleRef}: ${problems.map((p) => `${p.path} ${p.message}`).join('; ')}`;
        const updated = await applyOutcome(tx, step, task, { state: 'FAILED', reason: 'inputs-invalid', retryable: false, message }, { at: step.at, durationMs: 0, host: null });
        if (isTerminal(updated.status)) ended.push(task.node);
        failed.add(task.id);
        continue;
      }
      await tx.update(tasks).set({ parameters }).where(eq(tasks.id, task.id));
      task.parameters = parameters;
    }
    return ready.filter((t) => !failed.has(t.id));
  }

  // --- nested workflows and maps --------------------------------------------------------------------------

  /** A node the control plane runs itself (a nested workflow, a map) starts its next attempt: RUNNING now. */
  async function startControlPlaneAttempt(tx: Tx, step: Step, task: Task): Promise<Task> {
    const [running] = await tx
      .update(tasks)
      .set({ status: 'RUNNING', attempt: task.attempt + 1, queuedAt: step.at, startedAt: step.at, finishedAt: null, retryAt: null, reason: null, message: null })
      .where(eq(tasks.id, task.id))
      .returning();
    taskStatusEvent(step, running!, 'RUNNING');
    return running!;
  }

  /** Starts the child run of a `workflow` node. Returns true when the node ended at once (it could not start). */
  async function startChildRun(tx: Tx, step: Step, run: Run, task: Task): Promise<boolean> {
    const running = await startControlPlaneAttempt(tx, step, task);
    const [version] = await tx.select().from(workflowVersions).where(eq(workflowVersions.id, task.childWorkflowVersionId!));
    const [workflow] = version ? await tx.select().from(workflows).where(eq(workflows.id, version.workflowId)) : [];
    try {
      if (!version || !workflow) throw notFound(`the pinned version of ${task.workflowRef} no longer exists`);
      const [creator] = run.createdBy ? await tx.select().from(identities).where(eq(identities.id, run.createdBy)) : [];
      const child = await createRun(tx, step, { workflow, version, parameters: task.parameters, trigger: 'PARENT', identity: creator ?? null, parent: running, domain: run.domain, refreshCache: run.refreshCache, cacheNamespace: run.cacheNamespace });
      await tx.update(tasks).set({ childRunId: child.id, message: `nested run ${child.id}` }).where(eq(tasks.id, task.id));
      return false;
    } catch (error) {
      if (!(error instanceof AtelierError)) throw error;
      const ended = await applyOutcome(tx, step, running, { state: 'FAILED', reason: 'child-run-invalid', retryable: false, message: `the nested workflow ${task.workflowRef} cannot start: ${error.message}` }, { at: step.at, durationMs: 0, host: null });
      return isTerminal(ended.status);
    }
  }

  /** Tells the parent run that a nested run ended, as an event through the outbox, so locks are never nested upwards. */
  async function notifyParent(tx: Tx, step: Step, run: Run, status: RunStatus, message: string | null) {
    if (!run.parentTaskId) return;
    const [parentTask] = await tx.select().from(tasks).where(eq(tasks.id, run.parentTaskId));
    if (!parentTask || parentTask.childRunId !== run.id || parentTask.status !== 'RUNNING') return;
    const outputs = Object.fromEntries(
      (await tx.select({ node: tasks.node, outputs: tasks.outputs }).from(tasks).where(and(eq(tasks.runId, run.id), eq(tasks.status, 'SUCCEEDED'), isNull(tasks.mapParent)))).map((t) => [t.node, t.outputs ?? {}]),
    );
    const event: ExecutorEvent = {
      kind: 'result',
      taskId: parentTask.id,
      runId: parentTask.runId,
      attempt: parentTask.attempt,
      seq: 0,
      at: step.at.toISOString(),
      host: 'control-plane',
      durationMs: step.at.getTime() - (parentTask.startedAt?.getTime() ?? step.at.getTime()),
      outcome: {
        state: status === 'SUCCEEDED' ? 'SUCCEEDED' : status === 'CANCELLED' ? 'CANCELLED' : 'FAILED',
        reason: 'nested-run',
        message: `nested run ${run.id} ${status.toLowerCase()}${message ? `: ${message}` : ''}`,
        outputs,
      },
    };
    await tx.insert(outbox).values({ kind: 'event', msgId: `nested:${run.id}`, payload: event });
    step.outbox = true;
  }

  /** Fans a `map` node out into one task per item. Returns true when the node ended at once (empty or bad list). */
  async function expandMap(tx: Tx, step: Step, run: Run, task: Task): Promise<boolean> {
    const running = await startControlPlaneAttempt(tx, step, task);
    const fail = async (reason: string, message: string) =>
      isTerminal((await applyOutcome(tx, step, running, { state: 'FAILED', reason, retryable: false, message }, { at: step.at, durationMs: 0, host: null })).status);
    let items = task.mapOver;
    const from = outputRef(items);
    if (from) {
      const [upstream] = await tx.select({ outputs: tasks.outputs }).from(tasks).where(and(eq(tasks.runId, run.id), eq(tasks.node, from.node)));
      items = upstream?.outputs?.[from.name];
    }
    if (!Array.isArray(items)) {
      const what = from ? `output "${from.name}" of ${from.node}` : 'its list';
      return fail('map-over-non-list', `cannot map over ${what}: it is ${items === undefined ? 'missing' : `a ${typeof items}, not a list`}`);
    }
    const [version] = await tx.select().from(moduleVersions).where(eq(moduleVersions.id, task.moduleVersionId!));
    const rows: (NewTask & { id: string })[] = [];
    for (const [i, item] of items.entries()) {
      const parameters = { ...task.parameters, [task.mapAs ?? 'item']: item };
      const problems = checkParameters(version!.digest, version!.manifest, parameters);
      if (problems.length) return fail('map-item-invalid', `item ${i} does not fit ${task.moduleRef}: ${problems.map((p) => `${p.path} ${p.message}`).join('; ')}`);
      rows.push({
        id: randomUUID(),
        runId: run.id,
        node: `${task.node}[${i}]`,
        kind: 'module',
        moduleRef: task.moduleRef,
        moduleVersionId: task.moduleVersionId,
        parameters,
        dependsOn: task.dependsOn,
        status: 'READY',
        queuedAt: step.at,
        maxAttempts: task.maxAttempts,
        retryDelayMs: task.retryDelayMs,
        timeoutMs: task.timeoutMs,
        pool: task.pool,
        executor: task.executor,
        settings: task.settings,
        gpus: task.gpus,
        hotCluster: task.hotCluster,
        dataAccess: task.dataAccess,
        mapParent: task.node,
        mapIndex: i,
      });
    }
    if (!rows.length) {
      const done = await applyOutcome(tx, step, running, { state: 'SUCCEEDED', outputs: { results: [] } }, { at: step.at, durationMs: 0, host: null });
      return isTerminal(done.status);
    }
    await bulkInsert(tx, tasks, rows);
    for (const child of rows) taskStatusEvent(step, { id: child.id, runId: run.id, node: child.node, attempt: 0 }, 'READY');
    await tx.update(tasks).set({ message: `${rows.length} items` }).where(eq(tasks.id, task.id));
    return false;
  }

  /** When every item of a map has ended, the map node ends: its outputs are the items' outputs, in order. */
  async function completeMaps(tx: Tx, step: Step, run: Run, parents: string[]): Promise<string[]> {
    const ended: string[] = [];
    for (const parent of new Set(parents)) {
      const items = await tx.select().from(tasks).where(and(eq(tasks.runId, run.id), eq(tasks.mapParent, parent))).orderBy(asc(tasks.mapIndex));
      if (!items.every((t) => isTerminal(t.status))) continue;
      const [node] = await tx.select().from(tasks).where(and(eq(tasks.runId, run.id), eq(tasks.node, parent)));
      if (!node || node.status !== 'RUNNING') continue;
      const failedItems = items.filter((t) => t.status !== 'SUCCEEDED');
      const outcome: TaskOutcome = failedItems.length
        ? { state: 'FAILED', reason: 'map-items-failed', retryable: false, message: `${failedItems.length} of ${items.length} items did not succeed: ${failedItems.slice(0, 5).map((t) => `${t.node} ${t.status.toLowerCase()}`).join(', ')}` }
        : { state: 'SUCCEEDED', outputs: { results: items.map((t) => t.outputs ?? {}) } };
      const updated = await applyOutcome(tx, step, node, outcome, { at: step.at, durationMs: step.at.getTime() - (node.startedAt?.getTime() ?? step.at.getTime()), host: null });
      if (isTerminal(updated.status)) ended.push(parent);
    }
    return ended;
  }

  // --- readiness -----------------------------------------------------------------------------------------

  /**
   * After `nodes` reached a final state: decides, by trigger rule, which pending tasks downstream become READY and
   * which can never run (SKIPPED, which in turn may decide their own downstream).
   */
  async function evaluate(tx: Tx, step: Step, run: Run, nodes: string[]): Promise<void> {
    let frontier = nodes;
    while (frontier.length) {
      // Count what just ended into each pending downstream task, in SQL: no upstream list is read back.
      const ended = await tx.select({ node: tasks.node, status: tasks.status }).from(tasks).where(and(eq(tasks.runId, run.id), inArray(tasks.node, frontier)));
      const endedAll = textArray(ended.map((e) => e.node));
      const endedOk = textArray(ended.filter((e) => e.status === 'SUCCEEDED').map((e) => e.node));
      const endedFailed = textArray(ended.filter((e) => e.status === 'FAILED' || e.status === 'TIMED_OUT').map((e) => e.node));
      const countIn = (set: SQL) => sql`(select count(*)::int from unnest(${tasks.dependsOn}) as d(n) where d.n = any(${set}))`;
      const candidates = await tx
        .update(tasks)
        .set({
          upstreamDone: sql`${tasks.upstreamDone} + ${countIn(endedAll)}`,
          upstreamSucceeded: sql`${tasks.upstreamSucceeded} + ${countIn(endedOk)}`,
          upstreamFailed: sql`${tasks.upstreamFailed} + ${countIn(endedFailed)}`,
        })
        .where(and(eq(tasks.runId, run.id), eq(tasks.status, 'PENDING'), sql`${tasks.dependsOn} && ${endedAll}`))
        .returning({
          id: tasks.id,
          runId: tasks.runId,
          node: tasks.node,
          attempt: tasks.attempt,
          triggerRule: tasks.triggerRule,
          total: sql<number>`cardinality(${tasks.dependsOn})`,
          done: tasks.upstreamDone,
          succeeded: tasks.upstreamSucceeded,
          failed: tasks.upstreamFailed,
        });
      if (!candidates.length) return;
      const ready = candidates.filter((c) => readinessFromCounts(c.triggerRule, c) === 'ready');
      const skipped = candidates.filter((c) => readinessFromCounts(c.triggerRule, c) === 'skip');
      if (ready.length) {
        await tx.update(tasks).set({ status: 'READY', queuedAt: step.at }).where(inArray(tasks.id, ready.map((t) => t.id)));
        for (const t of ready) taskStatusEvent(step, t, 'READY');
      }
      if (skipped.length) {
        const message = (t: (typeof skipped)[number]) =>
          `skipped: its trigger rule ${t.triggerRule} can no longer be met (${t.succeeded} of ${t.total} upstreams succeeded, ${t.failed} failed, ${t.total - t.done} still open)`;
        for (const t of skipped) {
          await tx.update(tasks).set({ status: 'SKIPPED', reason: 'upstream-failed', message: message(t), finishedAt: step.at }).where(eq(tasks.id, t.id));
          taskStatusEvent(step, t, 'SKIPPED', 'upstream-failed', message(t));
        }
      }
      frontier = skipped.map((t) => t.node);
    }
  }

  /** Ends the run when no task is open any more. */
  async function finishIfDone(tx: Tx, step: Step, run: Run): Promise<void> {
    if (run.status !== 'QUEUED' && run.status !== 'RUNNING') return;
    const [open] = await queryRows<{ open: boolean }>(
      tx,
      sql`select exists (select 1 from tasks where run_id = ${run.id} and status in ('PENDING', 'READY', 'QUEUED', 'RUNNING', 'RETRYING')) as open`,
    );
    if (open?.open) return;
    const rows = await queryRows<{ status: TaskStatus }>(tx, sql`select distinct status from tasks where run_id = ${run.id}`);
    const status = finalRunStatus(rows.map((r) => r.status));
    const message = status === 'FAILED' ? await failureSummary(tx, run.id) : null;
    await tx.update(runs).set({ status, finishedAt: step.at, message, startedAt: run.startedAt ?? step.at }).where(eq(runs.id, run.id));
    step.feed.push({ kind: 'run-status', runId: run.id, status, message, at: step.at.toISOString() });
    run.status = status;
    await notifyParent(tx, step, run, status, message);
  }

  async function failureSummary(tx: Tx, runId: string): Promise<string> {
    const failed = await tx
      .select({ node: tasks.node, status: tasks.status, message: tasks.message })
      .from(tasks)
      .where(and(eq(tasks.runId, runId), inArray(tasks.status, ['FAILED', 'TIMED_OUT'])))
      .limit(5);
    return failed.map((t) => `${t.node} ${t.status.toLowerCase().replace('_', ' ')}${t.message ? `: ${t.message.split('\n').slice(-1)[0]}` : ''}`).join('; ');
  }

  async function lockRun(tx: Tx, runId: string): Promise<Run | undefined> {
    const [run] = await tx.select().from(runs).where(eq(runs.id, runId)).for('update');
    return run;
  }

  // --- creating runs -------------------------------------------------------------------------------------

  async function findWorkflow(tx: Tx, ref: string, version?: number): Promise<{ workflow: Workflow; version: WorkflowVersion }> {
    const [workflow] = await tx.select().from(workflows).where(uuidRe.test(ref) ? eq(workflows.id, ref) : eq(workflows.name, ref));
    if (!workflow) throw notFound(`No workflow "${ref}". Create it with \`npx atelier workflow create FILE\` or the createWorkflow mutation.`);
    const wanted = version ?? workflow.latestVersion;
    const [wv] = await tx.select().from(workflowVersions).where(and(eq(workflowVersions.workflowId, workflow.id), eq(workflowVersions.version, wanted)));
    if (!wv) throw notFound(`Workflow "${workflow.name}" has no version ${wanted}; its latest is ${workflow.latestVersion}.`);
    return { workflow, version: wv };
  }

  interface CreateRun {
    workflow: Workflow;
    version: WorkflowVersion;
    parameters: Record<string, unknown>;
    trigger: Trigger;
    identity: Identity | null;
    sourceRunId?: string;
    idempotencyKey?: string;
    pinned?: Map<string, string>;
    overrides?: Map<string, string>;
    /** Nodes whose result is taken from an earlier run's task instead of executing. */
    reuse?: Map<string, Task>;
    /** For a nested workflow's run: the task that started it. */
    parent?: Pick<Task, 'id' | 'runId'>;
    domain: Domain;
    refreshCache?: boolean;
    cacheNamespace?: string | null;
    stack?: string[];
    hotCluster?: string;
  }

  async function createRun(tx: Tx, step: Step, input: CreateRun): Promise<Run> {
    const spec = input.version.spec;
    const planned = await planRun(tx, spec, input.parameters, options.defaults, {
      pinned: input.pinned,
      overrides: input.overrides,
      stack: [`${input.workflow.name}@${input.version.version}`, ...(input.stack ?? [])],
      hotCluster: input.hotCluster,
    });
    // Refused data is refused now, before anything exists, as well as again at dispatch (labels change).
    const dataAccess = new Map<string, TaskDataAccess>();
    for (const task of planned) {
      if (!task.version || !hasDataPorts(task.version.manifest)) continue;
      const decision = await decideDataAccess(tx, input.domain, task.version.manifest);
      if ('denied' in decision) {
        const { rule, message, subjects } = decision.denied;
        throw new AuditedDenial(
          { identity: input.identity, action: 'data.start', decision: 'deny', subject: `workflow:${input.workflow.name}`, rule, details: { node: task.node, domain: input.domain, refused: subjects } },
          `Node "${task.node}" is refused by data policy: ${message} (${rule}). Change the run's domain, the module's declared inputs, or the labels.`,
        );
      }
      dataAccess.set(task.node, decision.access);
    }
    let admitted = true;
    const maxActiveRuns = spec.concurrency?.maxActiveRuns;
    if (maxActiveRuns) {
      await tx.execute(sql`select pg_advisory_xact_lock(hashtext(${`atelier-workflow:${input.workflow.id}`}))`);
      const [active] = await tx
        .select({ n: sql<number>`count(*)::int` })
        .from(runs)
        .where(and(eq(runs.workflowId, input.workflow.id), eq(runs.admitted, true), inArray(runs.status, ['QUEUED', 'RUNNING'])));
      admitted = (active?.n ?? 0) < maxActiveRuns;
    }
    const [run] = await tx
      .insert(runs)
      .values({
        workflowId: input.workflow.id,
        workflowVersionId: input.version.id,
        status: 'QUEUED',
        parameters: input.parameters,
        trigger: input.trigger,
        sourceRunId: input.sourceRunId ?? null,
        parentRunId: input.parent?.runId ?? null,
        parentTaskId: input.parent?.id ?? null,
        idempotencyKey: input.idempotencyKey ?? null,
        admitted,
        maxParallelTasks: spec.concurrency?.maxParallelTasks ?? null,
        domain: input.domain,
        refreshCache: input.refreshCache ?? false,
        cacheNamespace: input.cacheNamespace ?? null,
        createdBy: input.identity?.id ?? null,
        createdAt: step.at,
        message: admitted ? null : `waiting: workflow ${input.workflow.name} allows ${maxActiveRuns} active run${maxActiveRuns === 1 ? '' : 's'} at once`,
      })
      .returning();
    const statuses = initialStatuses(planned, input.reuse);
    const counts = (p: PlannedTask) => {
      let done = 0;
      let succeeded = 0;
      let failed = 0;
      for (const d of p.dependsOn) {
        const st = statuses.get(d)!;
        if (!isTerminal(st)) continue;
        done++;
        if (st === 'SUCCEEDED') succeeded++;
        else if (st === 'FAILED' || st === 'TIMED_OUT') failed++;
      }
      return { upstreamDone: done, upstreamSucceeded: succeeded, upstreamFailed: failed };
    };
    const rows: (NewTask & { id: string })[] = planned.map((p) => {
      const reused = input.reuse?.get(p.node);
      const status = statuses.get(p.node)!;
      return {
        id: randomUUID(),
        runId: run!.id,
        node: p.node,
        kind: p.kind,
        moduleRef: p.moduleRef,
        moduleVersionId: p.version?.id ?? null,
        workflowRef: p.workflowRef,
        childWorkflowVersionId: p.childWorkflowVersionId,
        mapOver: p.mapOver ?? null,
        mapAs: p.mapAs,
        parameters: p.parameters,
        dependsOn: p.dependsOn,
        triggerRule: p.triggerRule,
        ...counts(p),
        status,
        maxAttempts: p.maxAttempts,
        retryDelayMs: p.retryDelayMs,
        timeoutMs: p.timeoutMs,
        pool: p.pool,
        executor: p.executor,
        settings: p.settings,
        gpus: p.gpus,
        hotCluster: p.hotCluster,
        dataAccess: dataAccess.get(p.node) ?? null,
        queuedAt: status === 'READY' ? step.at : null,
        ...(reused
          ? { outputs: reused.outputs, reusedFromTaskId: reused.id, startedAt: reused.startedAt, finishedAt: reused.finishedAt, host: reused.host, progress: 1, reason: 'reused', message: `reused the result of run ${reused.runId}` }
          : status === 'SKIPPED'
            ? { reason: 'upstream-failed', message: 'skipped: its trigger rule can never be met', finishedAt: step.at }
            : {}),
      };
    });
    await bulkInsert(tx, tasks, rows);
    step.feed.push({ kind: 'run-status', runId: run!.id, status: 'QUEUED', message: run!.message, at: step.at.toISOString() });
    for (const t of rows) if (t.status !== 'PENDING') taskStatusEvent(step, { id: t.id, runId: t.runId, node: t.node, attempt: 0 }, t.status!, t.reason ?? null, t.message ?? null);
    await dispatch(tx, step, run!);
    await finishIfDone(tx, step, run!);
    return run!;
  }

  async function startRun(input: StartRunInput, identity: Identity | null): Promise<Run> {
    if (input.idempotencyKey !== undefined && (input.idempotencyKey.length === 0 || input.idempotencyKey.length > 200)) {
      throw badInput('idempotencyKey must be 1 to 200 characters.');
    }
    const existing = async () => {
      if (!input.idempotencyKey) return undefined;
      const [run] = await db.select().from(runs).where(eq(runs.idempotencyKey, input.idempotencyKey));
      return run;
    };
    const earlier = await existing();
    if (earlier) return checkSameWorkflow(earlier, input);
    try {
      return await transact(async (tx, step) => {
        const { workflow, version } = await findWorkflow(tx, input.workflow, input.version);
        const parameters = resolveRunParameters(version.spec, input.parameters ?? {});
        const overrides = moduleSwaps(version.spec, input.useModules ?? []);
        return createRun(tx, step, {
          workflow,
          version,
          parameters,
          trigger: input.trigger,
          identity,
          idempotencyKey: input.idempotencyKey,
          overrides,
          domain: input.domain ?? workflow.domain,
          refreshCache: input.refreshCache,
          cacheNamespace: privateNamespace(input, input.domain ?? workflow.domain),
          hotCluster: input.hotCluster,
        });
      });
    } catch (error) {
      // Two requests with the same key at once: the loser returns the winner's run.
      const winner = await existing().catch(() => undefined);
      if (winner) return checkSameWorkflow(winner, input);
      throw error;
    }
  }

  /** node → ref for every node of the spec whose module one of `refs` (`ns/name@version`) names. */
  function moduleSwaps(spec: WorkflowVersion['spec'], refs: string[]): Map<string, string> | undefined {
    if (!refs.length) return undefined;
    const swaps = new Map<string, string>();
    for (const ref of refs) {
      const { namespace, name } = parseModuleRef(ref);
      if (!ref.includes('@') || !name) throw badInput(`useModules takes namespace/name@version, not "${ref}".`);
      const nodes = spec.tasks.filter((t) => t.module && t.module.split('@')[0] === `${namespace}/${name}`);
      if (!nodes.length) throw badInput(`The workflow uses no ${namespace}/${name}, so "${ref}" would change nothing.`);
      for (const node of nodes) swaps.set(node.name, ref);
    }
    return swaps;
  }

  async function checkSameWorkflow(run: Run, input: StartRunInput): Promise<Run> {
    const [workflow] = await db.select().from(workflows).where(eq(workflows.id, run.workflowId));
    if (workflow && workflow.name !== input.workflow && workflow.id !== input.workflow) {
      throw new AtelierError('CONFLICT', `idempotencyKey "${input.idempotencyKey}" was already used to start a run of workflow "${workflow.name}"; use a new key for another workflow.`);
    }
    return run;
  }

  async function loadSource(tx: Tx, runId: string) {
    if (!uuidRe.test(runId)) throw badInput(`"${runId}" is not a run id (a UUID).`);
    const [source] = await tx.select().from(runs).where(eq(runs.id, runId));
    if (!source) throw notFound(`No run ${runId}.`);
    const [workflow] = await tx.select().from(workflows).where(eq(workflows.id, source.workflowId));
    const [version] = await tx.select().from(workflowVersions).where(eq(workflowVersions.id, source.workflowVersionId));
    const sourceTasks = await tx.select().from(tasks).where(eq(tasks.runId, runId));
    return { source, workflow: workflow!, version: version!, sourceTasks };
  }

  async function cloneRun(runId: string, parameters: Record<string, unknown>, identity: Identity | null): Promise<Run> {
    return transact(async (tx, step) => {
      const { source, workflow, version, sourceTasks } = await loadSource(tx, runId);
      const merged = resolveRunParameters(version.spec, { ...source.parameters, ...parameters });
      const pinned = pinnedVersions(sourceTasks);
      return createRun(tx, step, { workflow, version, parameters: merged, trigger: 'CLONE', identity, sourceRunId: source.id, pinned, domain: source.domain, cacheNamespace: source.cacheNamespace });
    });
  }

  async function rerunRun(runId: string, input: RerunInput, identity: Identity | null): Promise<Run> {
    return transact(async (tx, step) => {
      const { source, workflow, version, sourceTasks } = await loadSource(tx, runId);
      const byNode = new Map(sourceTasks.map((t) => [t.node, t]));
      const unknown = [...(input.nodes ?? []), ...Object.keys(input.modules ?? {})].filter((n) => !byNode.has(n));
      if (unknown.length) {
        throw new AtelierError('BAD_USER_INPUT', `Run ${runId} has no node${unknown.length > 1 ? 's' : ''} ${unknown.map((n) => `"${n}"`).join(', ')}; its nodes are: ${[...byNode.keys()].join(', ')}`, unknown.map((n) => ({ path: `nodes.${n}`, message: 'is not a node of the run' })));
      }
      if (input.from === 'NODES' && !input.nodes?.length && !Object.keys(input.modules ?? {}).length) throw badInput('from: NODES needs the nodes to execute again.');
      const again = new Set<string>(input.from === 'ALL' ? byNode.keys() : []);
      for (const t of sourceTasks) if (t.status !== 'SUCCEEDED') again.add(t.node); // a failure cannot be reused
      for (const n of input.nodes ?? []) again.add(n);
      for (const n of Object.keys(input.modules ?? {})) again.add(n);
      // Everything downstream of what executes again sees new inputs, so it executes again too.
      const downstream = new Map<string, string[]>();
      for (const t of sourceTasks) for (const d of t.dependsOn) pushTo(downstream, d, t.node);
      const stack = [...again];
      while (stack.length) for (const next of downstream.get(stack.pop()!) ?? []) if (!again.has(next)) (again.add(next), stack.push(next));
      const reuse = new Map(sourceTasks.filter((t) => !again.has(t.node)).map((t) => [t.node, t]));
      const pinned = pinnedVersions(sourceTasks);
      const overrides = new Map(Object.entries(input.modules ?? {}));
      return createRun(tx, step, { workflow, version, parameters: source.parameters, trigger: 'RERUN', identity, sourceRunId: source.id, pinned, overrides, reuse, domain: source.domain, cacheNamespace: source.cacheNamespace });
    });
  }

  // --- cancelling ----------------------------------------------------------------------------------------

  async function cancelRun(runId: string, identity: Identity | null): Promise<Run> {
    return transact(async (tx, step) => {
      const run = await lockRun(tx, runId);
      if (!run) throw notFound(`No run ${runId}.`);
      if (run.status !== 'QUEUED' && run.status !== 'RUNNING') throw new AtelierError('CONFLICT', `Run ${runId} has already ended (${run.status}); there is nothing to cancel.`);
      return cancelInTx(tx, step, run, `cancelled${identity ? ` by ${identity.name}` : ''}`);
    });
  }

  /** Cancels a locked, active run and, through its workflow nodes, its nested runs. */
  async function cancelInTx(tx: Tx, step: Step, run: Run, message: string): Promise<Run> {
    const open = await tx.select().from(tasks).where(and(eq(tasks.runId, run.id), inArray(tasks.status, OPEN)));
    if (open.length) {
      await tx.update(tasks).set({ status: 'CANCELLED', reason: 'cancelled', message, finishedAt: step.at }).where(inArray(tasks.id, open.map((t) => t.id)));
      // Tasks still in the outbox are stopped before dispatch; the ones on the bus get a cancel broadcast.
      const dispatched = open.filter((t) => t.kind === 'module' && ACTIVE.includes(t.status));
      if (dispatched.length) await stopAttempts(tx, step, dispatched.map((t) => ({ taskId: t.id, attempt: t.attempt })), message);
      for (const t of open) taskStatusEvent(step, t, 'CANCELLED', 'cancelled', message);
      await cache?.release(tx, open.filter((t) => t.cacheKey).map((t) => t.id));
      for (const t of open.filter((t) => t.kind === 'workflow' && t.childRunId)) {
        const child = await lockRun(tx, t.childRunId!);
        if (child && (child.status === 'QUEUED' || child.status === 'RUNNING')) await cancelInTx(tx, step, child, `${message} (parent run ${run.id})`);
      }
    }
    const [updated] = await tx.update(runs).set({ status: 'CANCELLED', message, finishedAt: step.at }).where(eq(runs.id, run.id)).returning();
    step.feed.push({ kind: 'run-status', runId: run.id, status: 'CANCELLED', message, at: step.at.toISOString() });
    await notifyParent(tx, step, updated!, 'CANCELLED', message);
    return updated!;
  }

  /** Withdraws attempts not yet published and broadcasts a cancel for the others. */
  async function stopAttempts(tx: Tx, step: Step, attempts: { taskId: string; attempt: number }[], reason: string) {
    if (!attempts.length) return;
    await tx.delete(outbox).where(and(eq(outbox.kind, 'task'), inArray(outbox.msgId, attempts.map((a) => taskMessageId(a.taskId, a.attempt)))));
    await tx.insert(outbox).values(
      attempts.map((a) => ({ kind: 'cancel' as const, msgId: `cancel:${taskMessageId(a.taskId, a.attempt)}:${step.at.getTime()}`, payload: { taskId: a.taskId, attempt: a.attempt, reason } })),
    );
    step.outbox = true;
  }

  // --- recording executor events -------------------------------------------------------------------------

  async function recordEvents(events: ExecutorEvent[]): Promise<void> {
    if (!events.length) return;
    const taskIds = [...new Set(events.map((e) => e.taskId))];
    const known = new Map(
      (await db.select({ id: tasks.id, node: tasks.node, runId: tasks.runId, status: tasks.status, attempt: tasks.attempt }).from(tasks).where(inArray(tasks.id, taskIds))).map((t) => [t.id, t]),
    );
    // Heartbeats only refresh a timestamp; everything else is kept, once, as a task event.
    const kept = events.filter((e) => e.kind !== 'heartbeat' && known.has(e.taskId));
    const fresh: ExecutorEvent[] = [];
    if (kept.length) {
      const inserted = await bulkInsert(
        db,
        taskEvents,
        kept.map((e) => {
          const { taskId, runId, attempt, seq, kind, at, host, ...payload } = e;
          return { taskId, runId, attempt, seq, kind, at: new Date(at), payload: { host, ...payload } };
        }),
        { onConflictDoNothing: true, returning: sql`task_id, attempt, seq` },
      );
      const isNew = new Set(inserted.map((r) => `${r.task_id}:${r.attempt}:${Number(r.seq)}`));
      for (const e of kept) if (isNew.has(`${e.taskId}:${e.attempt}:${e.seq}`)) fresh.push(e);
    }

    const alive = [...new Set(events.filter((e) => e.kind !== 'result' && known.get(e.taskId)?.attempt === e.attempt).map((e) => e.taskId))];
    if (alive.length) {
      await db.update(tasks).set({ heartbeatAt: now() }).where(and(inArray(tasks.id, alive), inArray(tasks.status, ACTIVE)));
      await cache?.renew(db, alive, now());
    }

    const feedOut: FeedEvent[] = [];
    const byRun = new Map<string, ExecutorEvent[]>();
    // An attempt that reports while its task was cancelled or has moved on to a later attempt is a zombie
    // (its message was already on the bus, or its host was presumed lost): stop it.
    const zombies = new Map<string, { taskId: string; attempt: number }>();
    for (const e of events) {
      const task = known.get(e.taskId);
      if (!task || e.kind === 'result') continue;
      if ((task.status === 'CANCELLED' && e.attempt === task.attempt) || e.attempt < task.attempt) zombies.set(`${e.taskId}:${e.attempt}`, { taskId: e.taskId, attempt: e.attempt });
    }
    for (const e of fresh) {
      const node = known.get(e.taskId)!.node;
      if (e.kind === 'progress') feedOut.push({ kind: 'task-progress', runId: e.runId, taskId: e.taskId, node, fraction: e.fraction, message: e.message, at: e.at });
      else if (e.kind === 'log') feedOut.push({ kind: 'task-log', runId: e.runId, taskId: e.taskId, node, stream: e.stream, lines: e.lines, at: e.at });
      else if (e.kind === 'metric') feedOut.push({ kind: 'task-metric', runId: e.runId, taskId: e.taskId, node, metrics: e.metrics, step: e.step, at: e.at });
    }
    // Transitions are applied for every start and result, not only fresh ones: a replica killed between
    // recording an event and applying it leaves the event recorded, and its redelivery must still move the task.
    // Applying is idempotent (the task's state and attempt decide), so a repeat changes nothing.
    for (const e of kept) {
      if (e.kind !== 'started' && e.kind !== 'result') continue;
      if (!byRun.has(e.runId)) byRun.set(e.runId, []);
      byRun.get(e.runId)!.push(e);
    }
    const progress = latestPerTask(fresh.filter((e): e is Extract<ExecutorEvent, { kind: 'progress' }> => e.kind === 'progress'));
    if (progress.length) {
      await db.execute(sql`
        update tasks as t set progress = v.fraction::real, progress_message = v.message
        from (values ${sql.join(progress.map((p) => sql`(${p.taskId}, ${p.attempt}, ${p.fraction}, ${p.message})`), sql`, `)}) as v(id, attempt, fraction, message)
        where t.id = v.id::uuid and t.attempt = v.attempt::int`);
    }
    feed.publish(feedOut);

    for (const [runId, runEvents] of byRun) await transact((tx, step) => applyTransitions(tx, step, runId, runEvents));
    if (zombies.size) await transact((tx, step) => stopAttempts(tx, step, [...zombies.values()], 'superseded: the task was cancelled or moved to a later attempt'));
  }

  /** Applies `started` and `result` events of one run under its row lock, so joins see their upstreams consistently. */
  async function applyTransitions(tx: Tx, step: Step, runId: string, events: ExecutorEvent[]): Promise<void> {
    const run = await lockRun(tx, runId);
    if (!run) return;
    const rows = new Map((await tx.select().from(tasks).where(inArray(tasks.id, [...new Set(events.map((e) => e.taskId))]))).map((t) => [t.id, t]));
    const finished: string[] = [];
    let started = false;
    // Per task, the last report of its current attempt decides; a start and a result in one batch is one update.
    const latest = new Map<string, { started?: Extract<ExecutorEvent, { kind: 'started' }>; result?: Extract<ExecutorEvent, { kind: 'result' }> }>();
    for (const e of events) {
      const task = rows.get(e.taskId);
      // Only the current attempt moves a task; reports from an older attempt or after the end are history.
      if (!task || task.attempt !== e.attempt || isTerminal(task.status) || task.status === 'RETRYING') continue;
      const entry = latest.get(task.id) ?? {};
      if (e.kind === 'started' && !entry.started) entry.started = e;
      if (e.kind === 'result' && !entry.result) entry.result = e;
      latest.set(task.id, entry);
    }
    const startedOnly: { task: Task; event: Extract<ExecutorEvent, { kind: 'started' }> }[] = [];
    const succeeded: { task: Task; event: Extract<ExecutorEvent, { kind: 'result' }> }[] = [];
    for (const [taskId, { started: s, result: r }] of latest) {
      const task = rows.get(taskId)!;
      started = true;
      if (r) {
        if (r.outcome.state === 'SUCCEEDED') succeeded.push({ task, event: r });
        else {
          const updated = await applyOutcome(tx, step, task, r.outcome, { at: new Date(r.at), durationMs: r.durationMs, host: r.host });
          rows.set(task.id, updated);
          if (isTerminal(updated.status)) finished.push(updated.node);
        }
      } else if (s && task.status === 'QUEUED') startedOnly.push({ task, event: s });
    }
    if (startedOnly.length) {
      await tx.execute(sql`
        update tasks as t set status = 'RUNNING', started_at = v.at::timestamptz, host = v.host, external_handle = v.handle::jsonb, heartbeat_at = ${step.at.toISOString()}::timestamptz
        from (values ${sql.join(startedOnly.map(({ task, event }) => sql`(${task.id}, ${event.at}, ${event.host}, ${JSON.stringify(event.handle ?? null)})`), sql`, `)}) as v(id, at, host, handle)
        where t.id = v.id::uuid and t.status = 'QUEUED'`);
      for (const { task } of startedOnly) {
        rows.set(task.id, { ...task, status: 'RUNNING' });
        taskStatusEvent(step, task, 'RUNNING');
      }
    }
    if (succeeded.length) {
      await tx.execute(sql`
        update tasks as t set status = 'SUCCEEDED', outputs = v.outputs::jsonb, progress = 1, reason = v.reason, message = v.message,
          exit_code = v.exit_code::int, finished_at = v.finished::timestamptz, retry_at = null, host = v.host,
          started_at = coalesce(t.started_at, v.started::timestamptz)
        from (values ${sql.join(
          succeeded.map(({ task, event }) => {
            const o = event.outcome;
            const startedAt = new Date(new Date(event.at).getTime() - event.durationMs).toISOString();
            return sql`(${task.id}, ${JSON.stringify(o.outputs ?? null)}, ${o.reason ?? null}, ${o.message ?? null}, ${o.exitCode ?? null}, ${event.at}, ${event.host}, ${startedAt})`;
          }),
          sql`, `,
        )}) as v(id, outputs, reason, message, exit_code, finished, host, started)
        where t.id = v.id::uuid`);
      await cache?.record(
        tx,
        succeeded.filter(({ task }) => task.cacheKey).map(({ task, event }) => ({ taskId: task.id, outputs: event.outcome.outputs ?? {}, durationMs: event.durationMs })),
        step.at,
      );
      const writes = succeeded.filter(({ task }) => task.dataAccess && Object.keys(task.dataAccess.outputs).length);
      if (writes.length) {
        const versions = new Map((await tx.select().from(moduleVersions).where(inArray(moduleVersions.id, writes.map(({ task }) => task.moduleVersionId!)))).map((v) => [v.id, v.manifest]));
        await recordDatasetWrites(
          tx,
          writes.map(({ task, event }) => ({ taskId: task.id, domain: run.domain, createdBy: run.createdBy, manifest: versions.get(task.moduleVersionId!)!, access: task.dataAccess!, outputs: event.outcome.outputs ?? {} })),
          catalogCeiling,
        );
      }
      for (const { task, event } of succeeded) {
        // A start and its result in one batch still show the task running, so every watcher sees the same story.
        if (task.status === 'QUEUED') taskStatusEvent(step, task, 'RUNNING');
        rows.set(task.id, { ...task, status: 'SUCCEEDED' });
        finished.push(task.node);
        taskStatusEvent(step, task, 'SUCCEEDED', event.outcome.reason ?? null, event.outcome.message ?? null);
      }
    }
    const mapParents = [...rows.values()].filter((t) => t.mapParent && isTerminal(t.status) && finished.includes(t.node)).map((t) => t.mapParent!);
    if (mapParents.length) finished.push(...(await completeMaps(tx, step, run, mapParents)));
    if (started && run.status === 'QUEUED') {
      await tx.update(runs).set({ status: 'RUNNING', startedAt: step.at }).where(eq(runs.id, runId));
      run.status = 'RUNNING';
      step.feed.push({ kind: 'run-status', runId, status: 'RUNNING', message: null, at: step.at.toISOString() });
    }
    await settle(tx, step, run, finished);
  }

  /** After some nodes ended: decide their downstream, fill free slots, and end the run if nothing is open. */
  async function settle(tx: Tx, step: Step, run: Run, finished: string[]): Promise<void> {
    if (run.status !== 'QUEUED' && run.status !== 'RUNNING') return;
    if (finished.length) await evaluate(tx, step, run, finished);
    await dispatch(tx, step, run);
    if (finished.length) await finishIfDone(tx, step, run);
  }

  /** Records how an attempt ended: final, or RETRYING with its backoff. */
  async function applyOutcome(tx: Tx, step: Step, task: Task, outcome: TaskOutcome, report: { at: Date; durationMs: number; host: string | null }): Promise<Task> {
    const retry = decideRetry(outcome, task);
    const status: TaskStatus = retry.retry ? 'RETRYING' : outcome.state;
    const retryAt = retry.retry ? new Date(step.at.getTime() + retry.delayMs) : null;
    const message = retry.retry
      ? `attempt ${task.attempt} ${outcome.state.toLowerCase().replace('_', ' ')}${outcome.message ? `: ${outcome.message}` : ''}; retrying in ${Math.round(retry.delayMs / 100) / 10} s${retry.system ? ' (platform failure: not counted against the task’s retries)' : ''}`
      : (outcome.message ?? null);
    const [updated] = await tx
      .update(tasks)
      .set({
        status,
        reason: outcome.reason ?? null,
        message,
        exitCode: outcome.exitCode ?? null,
        outputs: outcome.outputs ?? null,
        startedAt: task.startedAt ?? new Date(report.at.getTime() - report.durationMs),
        finishedAt: retry.retry ? null : report.at,
        retryAt,
        host: report.host ?? task.host,
        ...(retry.system ? { systemFailures: task.systemFailures + 1, maxAttempts: task.maxAttempts + 1 } : {}),
        ...(status === 'SUCCEEDED' ? { progress: 1 } : {}),
      })
      .where(eq(tasks.id, task.id))
      .returning();
    taskStatusEvent(step, task, status, outcome.reason ?? null, message);
    if (task.cacheKey && !retry.retry) await cache?.release(tx, [task.id]);
    return updated!;
  }

  // --- the periodic tick ---------------------------------------------------------------------------------

  async function tick(): Promise<void> {
    const at = now();
    // Retries whose backoff is over become READY.
    const due = await db.select({ id: tasks.id, runId: tasks.runId }).from(tasks).where(and(eq(tasks.status, 'RETRYING'), lt(tasks.retryAt, at))).limit(TICK_BATCH);
    for (const [runId, list] of groupByRun(due)) {
      const ids = list.map((t) => t.id);
      await transact(async (tx, step) => {
        const run = await lockRun(tx, runId);
        if (!run) return;
        const moved = await tx.update(tasks).set({ status: 'READY', retryAt: null, queuedAt: step.at }).where(and(inArray(tasks.id, ids), eq(tasks.status, 'RETRYING'))).returning();
        for (const t of moved) taskStatusEvent(step, t, 'READY');
        await dispatch(tx, step, run);
      });
    }

    // Running tasks whose host went silent, or that ran far past their own deadline.
    const silentSince = new Date(at.getTime() - heartbeatTimeoutMs);
    const stuck = await queryRows<{ id: string; run_id: string; attempt: number; host: string | null; lost: boolean }>(
      db,
      sql`select id, run_id, attempt, host, (heartbeat_at < ${silentSince.toISOString()}::timestamptz) as lost from tasks
          where status = 'RUNNING' and kind = 'module' and (heartbeat_at < ${silentSince.toISOString()}::timestamptz
             or started_at + make_interval(secs => (timeout_ms + ${deadlineGraceMs}) / 1000.0) < ${at.toISOString()}::timestamptz)
          limit ${TICK_BATCH}`,
    );
    for (const [runId, list] of groupByRun(stuck.map((s) => ({ ...s, runId: s.run_id })))) {
      await transact(async (tx, step) => {
        const run = await lockRun(tx, runId);
        if (!run) return;
        const finished: string[] = [];
        for (const s of list) {
          const [task] = await tx.select().from(tasks).where(eq(tasks.id, s.id));
          if (!task || task.status !== 'RUNNING' || task.attempt !== s.attempt) continue;
          const outcome: TaskOutcome = s.lost
            ? { state: 'FAILED', reason: 'lost', retryable: true, systemFailure: true, message: `no heartbeat from host ${s.host ?? '(unknown)'} for ${Math.round(heartbeatTimeoutMs / 1000)} s: the host is presumed lost` }
            : { state: 'TIMED_OUT', reason: 'timeout', message: `ran past its time limit of ${Math.round(task.timeoutMs / 1000)} s and its host did not stop it` };
          await stopAttempts(tx, step, [{ taskId: task.id, attempt: task.attempt }], s.lost ? 'presumed lost' : 'deadline');
          const updated = await applyOutcome(tx, step, task, outcome, { at: step.at, durationMs: step.at.getTime() - (task.startedAt?.getTime() ?? step.at.getTime()), host: task.host });
          if (isTerminal(updated.status)) finished.push(updated.node);
        }
        await settle(tx, step, run, finished);
      });
    }

    // Runs held back by their workflow's maxActiveRuns, admitted in the order they started.
    const waiting = await db.select({ id: runs.id, workflowId: runs.workflowId }).from(runs).where(and(eq(runs.admitted, false), eq(runs.status, 'QUEUED'))).orderBy(asc(runs.createdAt)).limit(TICK_BATCH);
    for (const workflowId of new Set(waiting.map((w) => w.workflowId))) {
      await transact(async (tx, step) => {
        await tx.execute(sql`select pg_advisory_xact_lock(hashtext(${`atelier-workflow:${workflowId}`}))`);
        const queue = await tx.select().from(runs).where(and(eq(runs.workflowId, workflowId), eq(runs.admitted, false), eq(runs.status, 'QUEUED'))).orderBy(asc(runs.createdAt));
        if (!queue.length) return;
        const [version] = await tx.select().from(workflowVersions).where(eq(workflowVersions.id, queue[0]!.workflowVersionId));
        const [active] = await tx.select({ n: sql<number>`count(*)::int` }).from(runs).where(and(eq(runs.workflowId, workflowId), eq(runs.admitted, true), inArray(runs.status, ['QUEUED', 'RUNNING'])));
        const limit = version?.spec.concurrency?.maxActiveRuns ?? Infinity;
        for (const run of queue.slice(0, Math.max(0, limit - (active?.n ?? 0)))) {
          const [admitted] = await tx.update(runs).set({ admitted: true, message: null }).where(eq(runs.id, run.id)).returning();
          step.feed.push({ kind: 'run-status', runId: run.id, status: 'QUEUED', message: null, at: step.at.toISOString() });
          await dispatch(tx, step, admitted!);
        }
      });
    }

    // Expired cache entries, and the least recently used beyond the size budget; not on every tick, the sum is a scan.
    if (cache && at.getTime() - lastEviction >= EVICT_EVERY_MS) {
      lastEviction = at.getTime();
      await cache.evict(db, at);
    }

    // READY tasks waiting for a slot (or for an identical task's cached result) that has since freed.
    const withReady = await queryRows<{ run_id: string }>(db, sql`select distinct run_id from tasks where status = 'READY' limit ${TICK_BATCH}`);
    for (const { run_id } of withReady) {
      await transact(async (tx, step) => {
        const run = await lockRun(tx, run_id);
        if (run) await dispatch(tx, step, run);
      });
    }
  }

  return { startRun, cloneRun, rerunRun, cancelRun, recordEvents, tick };
}

/** Initial statuses of a new run's tasks, deciding in topological order what is READY, SKIPPED or reused. */
function initialStatuses(planned: PlannedTask[], reuse?: Map<string, Task>): Map<string, TaskStatus> {
  const status = new Map<string, TaskStatus>();
  const byNode = new Map(planned.map((p) => [p.node, p]));
  const remaining = new Map(planned.map((p) => [p.node, p.dependsOn.length]));
  const downstream = new Map<string, string[]>();
  for (const p of planned) for (const d of p.dependsOn) pushTo(downstream, d, p.node);
  const order = planned.filter((p) => p.dependsOn.length === 0).map((p) => p.node);
  for (let i = 0; i < order.length; i++) {
    const node = order[i]!;
    const p = byNode.get(node)!;
    if (reuse?.has(node)) status.set(node, 'SUCCEEDED');
    else {
      const decision = readiness(p.triggerRule, p.dependsOn.map((d) => status.get(d)!));
      // Upstreams that will execute leave the task PENDING; readiness is then decided as they finish.
      const undecided = p.dependsOn.some((d) => !isTerminal(status.get(d)!));
      status.set(node, undecided ? 'PENDING' : decision === 'ready' ? 'READY' : decision === 'skip' ? 'SKIPPED' : 'PENDING');
    }
    for (const next of downstream.get(node) ?? []) {
      remaining.set(next, remaining.get(next)! - 1);
      if (remaining.get(next) === 0) order.push(next);
    }
  }
  return status;
}

function pushTo<K, V>(map: Map<K, V[]>, key: K, value: V) {
  const list = map.get(key);
  if (list) list.push(value);
  else map.set(key, [value]);
}

/** Module versions a run pinned, by node (map items and nested workflows are planned afresh). */
function pinnedVersions(sourceTasks: Task[]): Map<string, string> {
  return new Map(sourceTasks.filter((t) => t.moduleVersionId && t.mapParent === null).map((t) => [t.node, t.moduleVersionId!]));
}

function groupByRun<T extends { runId: string }>(rows: T[]): Map<string, T[]> {
  const map = new Map<string, T[]>();
  for (const r of rows) {
    const list = map.get(r.runId);
    if (list) list.push(r);
    else map.set(r.runId, [r]);
  }
  return map;
}

function latestPerTask<T extends { taskId: string; seq: number }>(events: T[]): T[] {
  const latest = new Map<string, T>();
  for (const e of events) {
    const prev = latest.get(e.taskId);
    if (!prev || prev.seq < e.seq) latest.set(e.taskId, e);
  }
  return [...latest.values()];
}

const hitMessage = (e: CacheHit) => `served from cache: the result of task ${e.sourceTaskId} of run ${e.sourceRunId} (saved ${e.durationMs} ms)`;

const textArray = (values: string[]) => sql`${`{${values.map((v) => `"${v.replaceAll('\\', '\\\\').replaceAll('"', '\\"')}"`).join(',')}}`}::text[]`;

/** What a module is told about its datasets: the permitted columns, without the labels that decided them. */
function handedOver(access: TaskDataAccess): NonNullable<TaskMessage['datasets']> {
  return {
    inputs: Object.fromEntries(Object.entries(access.inputs).map(([port, { dataset, version, digest, columns }]) => [port, { dataset, version, digest, columns }])),
    outputs: access.outputs,
  };
}

const cacheNamespaceRe = /^[a-z0-9][a-z0-9._-]{0,62}$/;

/** Checks a run's private cache namespace: experimentation runs only, a short lowercase name. */
function privateNamespace(input: StartRunInput, domain: Domain): string | null {
  if (input.cacheNamespace === undefined) return null;
  if (domain !== 'experimentation') throw badInput(`Only experimentation runs may use a private cache namespace; this run's domain is ${domain}.`);
  if (!cacheNamespaceRe.test(input.cacheNamespace)) throw badInput('cacheNamespace is 1–63 lowercase letters, digits, ".", "_" or "-".');
  return input.cacheNamespace;
}
