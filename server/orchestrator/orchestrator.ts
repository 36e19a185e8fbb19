// The orchestrator: starts runs (plan, pin, enqueue the roots through the outbox), records what executors
// report (exactly once per task attempt and sequence number), moves tasks and runs through their states,
// dispatches tasks whose upstreams succeeded, and cancels. All state is in Postgres; each step is one
// transaction that also writes the bus messages it implies (the outbox), so a crash at any point loses nothing.
import { and, eq, inArray, sql } from 'drizzle-orm';
import type { ExecutorEvent, TaskMessage, TaskOutcome } from '../../plugins/protocol';
import { taskMessageId } from '../../plugins/protocol';
import { queryRows, type Db, type Tx } from '../db/client';
import type { Identity } from '../db/tables/identities';
import { moduleVersions } from '../db/tables/modules';
import { outbox } from '../db/tables/outbox';
import { runs, tasks, terminalTaskStatuses, type Run, type RunStatus, type Task, type TaskStatus, type Trigger } from '../db/tables/runs';
import { taskEvents } from '../db/tables/task-events';
import { workflowVersions, workflows } from '../db/tables/workflows';
import { AtelierError, notFound } from '../errors';
import type { FeedEvent, RunFeed } from '../feed';
import { planRun, type PlanDefaults } from './plan';
import { resolveRunParameters } from './spec';

export interface StartRunInput {
  workflow: string; // name or id
  version?: number;
  parameters?: Record<string, unknown>;
  trigger: Trigger;
  sourceRunId?: string;
}

export interface Orchestrator {
  startRun(input: StartRunInput, identity: Identity | null): Promise<Run>;
  cancelRun(runId: string, identity: Identity | null): Promise<Run>;
  /** Records a batch of executor events; safe to call again with events already recorded. */
  recordEvents(events: ExecutorEvent[]): Promise<void>;
}

export interface OrchestratorOptions {
  db: Db;
  feed: RunFeed;
  /** Called after a transaction that wrote outbox rows has committed. */
  onOutbox: () => void;
  defaults: PlanDefaults;
  now?: () => Date;
}

const uuidRe = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const INSERT_CHUNK = 1000;
const isTerminal = (s: TaskStatus) => terminalTaskStatuses.includes(s);

export function createOrchestrator(options: OrchestratorOptions): Orchestrator {
  const { db, feed } = options;
  const now = options.now ?? (() => new Date());

  /** Builds the bus message of a task's next attempt from its row, its module version and its upstreams' outputs. */
  async function enqueue(tx: Tx, run: Pick<Run, 'id'>, ready: Task[], at: Date): Promise<FeedEvent[]> {
    if (!ready.length) return [];
    const versionIds = [...new Set(ready.map((t) => t.moduleVersionId))];
    const versions = new Map(
      (await tx.select().from(moduleVersions).where(inArray(moduleVersions.id, versionIds))).map((v) => [v.id, v]),
    );
    const upstreamNodes = [...new Set(ready.flatMap((t) => t.dependsOn))];
    const outputs = new Map<string, Record<string, unknown>>();
    if (upstreamNodes.length) {
      const rows = await tx
        .select({ node: tasks.node, outputs: tasks.outputs })
        .from(tasks)
        .where(and(eq(tasks.runId, run.id), inArray(tasks.node, upstreamNodes)));
      for (const row of rows) outputs.set(row.node, row.outputs ?? {});
    }
    const messages = ready.map((task) => {
      const version = versions.get(task.moduleVersionId)!;
      const attempt = task.attempt + 1;
      const message: TaskMessage = {
        taskId: task.id,
        runId: run.id,
        attempt,
        node: task.node,
        pool: task.pool,
        executor: task.executor,
        module: { ref: task.moduleRef, digest: version.digest, entrypoint: version.manifest.entrypoint, runtime: version.manifest.runtime },
        parameters: task.parameters,
        inputs: Object.fromEntries(task.dependsOn.map((d) => [d, outputs.get(d) ?? {}])),
        timeoutMs: task.timeoutMs,
        settings: task.settings,
        enqueuedAt: at.toISOString(),
      };
      return message;
    });
    for (let i = 0; i < messages.length; i += INSERT_CHUNK) {
      const chunk = messages.slice(i, i + INSERT_CHUNK);
      await tx.insert(outbox).values(chunk.map((m) => ({ kind: 'task' as const, pool: m.pool, msgId: taskMessageId(m.taskId, m.attempt), payload: m })));
    }
    const ids = ready.map((t) => t.id);
    await tx
      .update(tasks)
      .set({ status: 'QUEUED', attempt: sql`${tasks.attempt} + 1`, queuedAt: at, startedAt: null, finishedAt: null, reason: null, message: null, exitCode: null, progress: null, progressMessage: null })
      .where(inArray(tasks.id, ids));
    return ready.map((t) => ({
      kind: 'task-status' as const,
      runId: run.id,
      taskId: t.id,
      node: t.node,
      status: 'QUEUED' as const,
      attempt: t.attempt + 1,
      reason: null,
      message: null,
      at: at.toISOString(),
    }));
  }

  async function findWorkflow(tx: Tx, ref: string, version?: number) {
    const [workflow] = await tx
      .select()
      .from(workflows)
      .where(uuidRe.test(ref) ? eq(workflows.id, ref) : eq(workflows.name, ref));
    if (!workflow) throw notFound(`No workflow "${ref}". Create it with \`npx atelier workflow create FILE\` or the createWorkflow mutation.`);
    const wanted = version ?? workflow.latestVersion;
    const [wv] = await tx
      .select()
      .from(workflowVersions)
      .where(and(eq(workflowVersions.workflowId, workflow.id), eq(workflowVersions.version, wanted)));
    if (!wv) throw notFound(`Workflow "${workflow.name}" has no version ${wanted}; its latest is ${workflow.latestVersion}.`);
    return { workflow, version: wv };
  }

  async function startRun(input: StartRunInput, identity: Identity | null): Promise<Run> {
    const at = now();
    const feedEvents: FeedEvent[] = [];
    const run = await db.transaction(async (tx) => {
      const { workflow, version } = await findWorkflow(tx, input.workflow, input.version);
      const runParameters = resolveRunParameters(version.spec, input.parameters ?? {});
      const planned = await planRun(tx, version.spec, runParameters, options.defaults);
      const [run] = await tx
        .insert(runs)
        .values({
          workflowId: workflow.id,
          workflowVersionId: version.id,
          status: 'QUEUED',
          parameters: runParameters,
          trigger: input.trigger,
          sourceRunId: input.sourceRunId ?? null,
          createdBy: identity?.id ?? null,
          createdAt: at,
        })
        .returning();
      const rows: Task[] = [];
      for (let i = 0; i < planned.length; i += INSERT_CHUNK) {
        const chunk = planned.slice(i, i + INSERT_CHUNK);
        rows.push(
          ...(await tx
            .insert(tasks)
            .values(
              chunk.map((p) => ({
                runId: run!.id,
                node: p.node,
                moduleRef: p.moduleRef,
                moduleVersionId: p.version.id,
                parameters: p.parameters,
                dependsOn: p.dependsOn,
                status: 'PENDING' as const,
                maxAttempts: p.maxAttempts,
                timeoutMs: p.timeoutMs,
                pool: p.pool,
                executor: p.executor,
                settings: p.settings,
              })),
            )
            .returning()),
        );
      }
      feedEvents.push({ kind: 'run-status', runId: run!.id, status: 'QUEUED', message: null, at: at.toISOString() });
      feedEvents.push(...(await enqueue(tx, run!, rows.filter((t) => t.dependsOn.length === 0), at)));
      return run!;
    });
    options.onOutbox();
    feed.publish(feedEvents);
    return run;
  }

  async function cancelRun(runId: string, identity: Identity | null): Promise<Run> {
    const at = now();
    const feedEvents: FeedEvent[] = [];
    const run = await db.transaction(async (tx) => {
      const [run] = await tx.select().from(runs).where(eq(runs.id, runId)).for('update');
      if (!run) throw notFound(`No run ${runId}.`);
      if (run.status !== 'QUEUED' && run.status !== 'RUNNING') {
        throw new AtelierError('CONFLICT', `Run ${runId} has already ended (${run.status}); there is nothing to cancel.`);
      }
      const open = await tx
        .select()
        .from(tasks)
        .where(and(eq(tasks.runId, runId), inArray(tasks.status, ['PENDING', 'QUEUED', 'RUNNING'])));
      const who = identity ? ` by ${identity.name}` : '';
      const message = `cancelled${who}`;
      if (open.length) {
        await tx
          .update(tasks)
          .set({ status: 'CANCELLED', reason: 'cancelled', message, finishedAt: at })
          .where(inArray(tasks.id, open.map((t) => t.id)));
        // Tasks not yet handed to the bus are stopped before dispatch; the others get a cancel broadcast.
        const dispatched = open.filter((t) => t.status !== 'PENDING');
        if (dispatched.length) {
          await tx.execute(sql`delete from outbox where kind = 'task' and msg_id in ${sql.raw(`(${dispatched.map((t) => `'${taskMessageId(t.id, t.attempt)}'`).join(',')})`)}`);
          await tx.insert(outbox).values(
            dispatched.map((t) => ({
              kind: 'cancel' as const,
              msgId: `cancel:${taskMessageId(t.id, t.attempt)}`,
              payload: { taskId: t.id, attempt: t.attempt, reason: message },
            })),
          );
        }
        for (const t of open) {
          feedEvents.push({ kind: 'task-status', runId, taskId: t.id, node: t.node, status: 'CANCELLED', attempt: t.attempt, reason: 'cancelled', message, at: at.toISOString() });
        }
      }
      const [updated] = await tx.update(runs).set({ status: 'CANCELLED', message, finishedAt: at }).where(eq(runs.id, runId)).returning();
      feedEvents.push({ kind: 'run-status', runId, status: 'CANCELLED', message, at: at.toISOString() });
      return updated!;
    });
    options.onOutbox();
    feed.publish(feedEvents);
    return run;
  }

  async function recordEvents(events: ExecutorEvent[]): Promise<void> {
    if (!events.length) return;
    const feedEvents: FeedEvent[] = [];
    let wroteOutbox = false;
    // Heartbeats only refresh a timestamp; everything else is kept as a task event.
    const kept = events.filter((e) => e.kind !== 'heartbeat');
    const taskIds = [...new Set(events.map((e) => e.taskId))];
    const known = new Map(
      (await db.select({ id: tasks.id, node: tasks.node, runId: tasks.runId, status: tasks.status, attempt: tasks.attempt }).from(tasks).where(inArray(tasks.id, taskIds))).map(
        (t) => [t.id, t],
      ),
    );
    const fresh: ExecutorEvent[] = [];
    if (kept.length) {
      const inserted = await db
        .insert(taskEvents)
        .values(
          kept.map((e) => {
            const { taskId, runId, attempt, seq, kind, at, host, ...payload } = e;
            return { taskId, runId, attempt, seq, kind, at: new Date(at), payload: { host, ...payload } };
          }),
        )
        .onConflictDoNothing()
        .returning({ taskId: taskEvents.taskId, attempt: taskEvents.attempt, seq: taskEvents.seq });
      const isNew = new Set(inserted.map((r) => `${r.taskId}:${r.attempt}:${r.seq}`));
      for (const e of kept) if (isNew.has(`${e.taskId}:${e.attempt}:${e.seq}`)) fresh.push(e);
    }

    const heartbeats = events.filter((e) => e.kind === 'heartbeat' || e.kind === 'progress');
    if (heartbeats.length) {
      await db
        .update(tasks)
        .set({ heartbeatAt: new Date() })
        .where(and(inArray(tasks.id, [...new Set(heartbeats.map((e) => e.taskId))]), inArray(tasks.status, ['QUEUED', 'RUNNING'])));
    }

    const cancelAgain: { taskId: string; attempt: number }[] = [];
    const byRun = new Map<string, ExecutorEvent[]>();
    for (const e of fresh) {
      const task = known.get(e.taskId);
      if (!task) continue;
      const node = task.node;
      const at = e.at;
      if (e.kind === 'progress') {
        feedEvents.push({ kind: 'task-progress', runId: e.runId, taskId: e.taskId, node, fraction: e.fraction, message: e.message, at });
      } else if (e.kind === 'log') {
        feedEvents.push({ kind: 'task-log', runId: e.runId, taskId: e.taskId, node, stream: e.stream, lines: e.lines, at });
      } else if (e.kind === 'metric') {
        feedEvents.push({ kind: 'task-metric', runId: e.runId, taskId: e.taskId, node, metrics: e.metrics, step: e.step, at });
      }
      if (e.kind === 'started' || e.kind === 'result' || e.kind === 'progress') {
        if (task.status === 'CANCELLED' && e.attempt === task.attempt && e.kind !== 'result') cancelAgain.push({ taskId: e.taskId, attempt: e.attempt });
        if (e.kind !== 'progress') {
          if (!byRun.has(e.runId)) byRun.set(e.runId, []);
          byRun.get(e.runId)!.push(e);
        }
      }
    }
    const progressUpdates = fresh.filter((e): e is Extract<ExecutorEvent, { kind: 'progress' }> => e.kind === 'progress');
    for (const p of latestPerTask(progressUpdates)) {
      await db
        .update(tasks)
        .set({ progress: p.fraction, progressMessage: p.message })
        .where(and(eq(tasks.id, p.taskId), eq(tasks.attempt, p.attempt)));
    }

    for (const [runId, runEvents] of byRun) {
      const result = await db.transaction((tx) => applyTransitions(tx, runId, runEvents));
      feedEvents.push(...result.feed);
      wroteOutbox ||= result.wroteOutbox;
    }
    if (cancelAgain.length) {
      // The task was cancelled while its message was already on the bus: stop the attempt that just started.
      await db.insert(outbox).values(
        cancelAgain.map((c) => ({ kind: 'cancel' as const, msgId: `cancel:${taskMessageId(c.taskId, c.attempt)}:${Date.now()}`, payload: { ...c, reason: 'cancelled' } })),
      );
      wroteOutbox = true;
    }
    if (wroteOutbox) options.onOutbox();
    feed.publish(feedEvents);
  }

  /** Applies `started` and `result` events of one run under its row lock, so joins see their upstreams consistently. */
  async function applyTransitions(tx: Tx, runId: string, events: ExecutorEvent[]): Promise<{ feed: FeedEvent[]; wroteOutbox: boolean }> {
    const feedOut: FeedEvent[] = [];
    const [run] = await tx.select().from(runs).where(eq(runs.id, runId)).for('update');
    if (!run) return { feed: feedOut, wroteOutbox: false };
    const at = now();
    const iso = at.toISOString();
    let wroteOutbox = false;
    const taskIds = [...new Set(events.map((e) => e.taskId))];
    const rows = new Map((await tx.select().from(tasks).where(inArray(tasks.id, taskIds))).map((t) => [t.id, t]));
    const finished: Task[] = [];
    const retry: Task[] = [];

    for (const e of events) {
      const task = rows.get(e.taskId);
      // Only the current attempt moves a task; reports from an older attempt or after the end are history.
      if (!task || task.attempt !== e.attempt || isTerminal(task.status)) continue;
      if (e.kind === 'started') {
        if (task.status !== 'QUEUED') continue;
        const [updated] = await tx
          .update(tasks)
          .set({ status: 'RUNNING', startedAt: new Date(e.at), externalHandle: e.handle ?? null, host: e.host })
          .where(eq(tasks.id, task.id))
          .returning();
        rows.set(task.id, updated!);
        feedOut.push({ kind: 'task-status', runId, taskId: task.id, node: task.node, status: 'RUNNING', attempt: task.attempt, reason: null, message: null, at: e.at });
      } else if (e.kind === 'result') {
        const outcome: TaskOutcome = e.outcome;
        const status: TaskStatus = outcome.state;
        const retrying = status !== 'SUCCEEDED' && status !== 'CANCELLED' && outcome.retryable !== false && task.attempt < task.maxAttempts;
        const [updated] = await tx
          .update(tasks)
          .set({
            status: retrying ? 'PENDING' : status,
            reason: outcome.reason ?? null,
            message: outcome.message ?? null,
            exitCode: outcome.exitCode ?? null,
            outputs: outcome.outputs ?? null,
            startedAt: task.startedAt ?? new Date(new Date(e.at).getTime() - e.durationMs),
            finishedAt: retrying ? null : new Date(e.at),
            host: e.host,
            ...(status === 'SUCCEEDED' ? { progress: 1 } : {}),
          })
          .where(eq(tasks.id, task.id))
          .returning();
        rows.set(task.id, updated!);
        if (retrying) retry.push(updated!);
        else finished.push(updated!);
        feedOut.push({
          kind: 'task-status',
          runId,
          taskId: task.id,
          node: task.node,
          status: retrying ? 'PENDING' : status,
          attempt: task.attempt,
          reason: outcome.reason ?? null,
          message: retrying ? `attempt ${task.attempt} ${status.toLowerCase()}: ${outcome.message ?? ''}; retrying` : (outcome.message ?? null),
          at: e.at,
        });
      }
    }

    let runStatus: RunStatus = run.status;
    if (run.status === 'QUEUED' && events.some((e) => e.kind === 'started' || e.kind === 'result')) runStatus = 'RUNNING';

    if (run.status === 'QUEUED' || run.status === 'RUNNING') {
      const toQueue = [...retry];
      const succeeded = finished.filter((t) => t.status === 'SUCCEEDED').map((t) => t.node);
      const failed = finished.filter((t) => t.status !== 'SUCCEEDED').map((t) => t.node);
      if (failed.length) await skipDownstream(tx, runId, failed, at, feedOut);
      if (succeeded.length) {
        // Candidates: pending tasks downstream of something that just succeeded; ready when every upstream has.
        const candidates = await tx
          .select()
          .from(tasks)
          .where(and(eq(tasks.runId, runId), eq(tasks.status, 'PENDING'), sql`${tasks.dependsOn} && ${pgTextArray(succeeded)}`));
        if (candidates.length) {
          const upstream = [...new Set(candidates.flatMap((t) => t.dependsOn))];
          const statuses = new Map(
            (await tx.select({ node: tasks.node, status: tasks.status }).from(tasks).where(and(eq(tasks.runId, runId), inArray(tasks.node, upstream)))).map((r) => [
              r.node,
              r.status,
            ]),
          );
          toQueue.push(...candidates.filter((t) => t.dependsOn.every((d) => statuses.get(d) === 'SUCCEEDED')));
        }
      }
      if (toQueue.length) {
        feedOut.push(...(await enqueue(tx, run, toQueue, at)));
        wroteOutbox = true;
      }
      if (finished.length) {
        const [counts] = await queryRows<{ open: number; failed: number }>(
          tx,
          sql`select count(*) filter (where status not in ('SUCCEEDED','FAILED','CANCELLED','TIMED_OUT','SKIPPED'))::int as open,
                     count(*) filter (where status in ('FAILED','TIMED_OUT'))::int as failed
              from tasks where run_id = ${runId}`,
        );
        if (counts && counts.open === 0) runStatus = counts.failed > 0 ? 'FAILED' : 'SUCCEEDED';
      }
    }

    if (runStatus !== run.status) {
      const ended = runStatus === 'SUCCEEDED' || runStatus === 'FAILED';
      const message = runStatus === 'FAILED' ? await failureSummary(tx, runId) : null;
      await tx
        .update(runs)
        .set({ status: runStatus, ...(runStatus === 'RUNNING' ? { startedAt: at } : {}), ...(ended ? { finishedAt: at, message } : {}) })
        .where(eq(runs.id, runId));
      feedOut.push({ kind: 'run-status', runId, status: runStatus, message, at: iso });
    }
    return { feed: feedOut, wroteOutbox };
  }

  /** Marks every task downstream of failed nodes as SKIPPED (transitively). */
  async function skipDownstream(tx: Tx, runId: string, failedNodes: string[], at: Date, feedOut: FeedEvent[]) {
    let frontier = failedNodes;
    while (frontier.length) {
      const skipped = await tx
        .update(tasks)
        .set({ status: 'SKIPPED', reason: 'upstream-failed', message: `skipped: upstream ${frontier.join(', ')} did not succeed`, finishedAt: at })
        .where(and(eq(tasks.runId, runId), eq(tasks.status, 'PENDING'), sql`${tasks.dependsOn} && ${pgTextArray(frontier)}`))
        .returning({ id: tasks.id, node: tasks.node, attempt: tasks.attempt, message: tasks.message });
      for (const s of skipped) {
        feedOut.push({ kind: 'task-status', runId, taskId: s.id, node: s.node, status: 'SKIPPED', attempt: s.attempt, reason: 'upstream-failed', message: s.message, at: at.toISOString() });
      }
      frontier = skipped.map((s) => s.node);
    }
  }

  async function failureSummary(tx: Tx, runId: string): Promise<string> {
    const failed = await tx
      .select({ node: tasks.node, status: tasks.status, message: tasks.message })
      .from(tasks)
      .where(and(eq(tasks.runId, runId), inArray(tasks.status, ['FAILED', 'TIMED_OUT'])))
      .limit(5);
    return failed.map((t) => `${t.node} ${t.status.toLowerCase().replace('_', ' ')}${t.message ? `: ${t.message.split('\n').slice(-1)[0]}` : ''}`).join('; ');
  }

  return { startRun, cancelRun, recordEvents };
}

function latestPerTask<T extends { taskId: string; seq: number }>(events: T[]): T[] {
  const latest = new Map<string, T>();
  for (const e of events) {
    const prev = latest.get(e.taskId);
    if (!prev || prev.seq < e.seq) latest.set(e.taskId, e);
  }
  return [...latest.values()];
}

const pgTextArray = (values: string[]) => sql`${`{${values.map((v) => `"${v.replaceAll('\\', '\\\\').replaceAll('"', '\\"')}"`).join(',')}}`}::text[]`;
