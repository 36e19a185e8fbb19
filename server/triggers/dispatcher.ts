// The trigger dispatcher: a kicked loop (kicked after commits that recorded signals, polling as the fallback).
// Each pass (1) claims unhandled signals (FOR UPDATE SKIP LOCKED, so replicas split them) and, in the same
// transaction, writes one PENDING firing per matching trigger under the UNIQUE (trigger, signal) key and marks the
// signals handled; (2) decides each trigger's pending firings under its storm policy and overlap policy, starting a
// run with the idempotency key of its (trigger, signal): a crash between the run and its record finds the same run
// again, so each trigger fires exactly once per signal across replicas and restarts.
//
// Storm policy (docs/triggers.md): per pass and trigger, only the newest pending signal starts a run; the older ones
// are recorded COALESCED into it (at most one run waits per trigger). A trigger starts at most `maxRunsPerMinute`
// runs in any minute; a signal beyond is recorded RATE_LIMITED (never dropped silently).
import { and, asc, eq, gt, inArray, isNull, or, sql } from 'drizzle-orm';
import { audited } from '../audit/audit';
import { type Db, withTryAdvisoryLock } from '../db/client';
import { builtOnce } from '../db/prepared';
import { runs } from '../db/tables/runs';
import { type Signal, signals, type TriggerFiring, triggerFirings, type WorkflowTrigger, workflowTriggers } from '../db/tables/triggers';
import { type Workflow, workflows } from '../db/tables/workflows';
import { AtelierError } from '../errors';
import { crashPoint } from '../lifecycle/crash-hook';
import { type KickedLoop, kickedLoop } from '../lifecycle/kicked-loop';
import { cancelPrevious } from '../orchestrator/cancel-previous';
import type { Orchestrator } from '../orchestrator/orchestrator';
import { scheduleActor } from '../orchestrator/run-actor';
import { type Domain, type FiringOutcome, MAX_FAILURE_CHAIN, moreGuarded, signalTypeOfKind, type TriggerKind } from '../vocabulary';
import { mapParameters } from './mapping';
import { ownersMayNotStart } from './may-start';

export interface DispatcherOptions {
  db: Db;
  orchestrator: Pick<Orchestrator, 'startRun' | 'cancelRun'>;
  clock?: { now(): Date };
  /** The fallback poll when no kick comes (default 1 s). */
  pollMs?: number;
  /** Postgres: decide firings under an advisory lock, one replica at a time (default off, as on PGlite). */
  leaderLock?: boolean;
  log?: (message: string) => void;
}

export type TriggerDispatcher = KickedLoop & { name: string; pass(): Promise<number> };

const BATCH = 500;
const LEADER_LOCK = 0x61747267;

/** The run of a (trigger, signal) has this idempotency key: starting it twice returns the first run. */
export const firingKey = (triggerId: string, signalId: string) => `trigger:${triggerId}:${signalId}`;

export function createTriggerDispatcher(options: DispatcherOptions): TriggerDispatcher {
  const { db, orchestrator } = options;
  const now = () => options.clock?.now() ?? new Date();
  const log = options.log ?? (() => {});

  /** Claims unhandled signals and writes their firings; returns how many signals it handled. */
  async function match(): Promise<number> {
    return db.transaction(async (tx) => {
      const claimed = await unhandledSignals(tx, {});
      if (!claimed.length) return 0;
      const subjects = [...new Set(claimed.map((s) => s.subject))];
      const alertTeams = [...new Set(claimed.filter((s) => s.type === 'alert.opened' && s.teamId).map((s) => s.teamId!))];
      const candidates = await tx
        .select()
        .from(workflowTriggers)
        .where(
          and(
            eq(workflowTriggers.paused, false),
            or(
              inArray(workflowTriggers.matchSubject, subjects),
              alertTeams.length
                ? and(eq(workflowTriggers.kind, 'ALERT_OPENED'), isNull(workflowTriggers.matchSubject), inArray(workflowTriggers.teamId, alertTeams))
                : sql`false`,
            ),
          ),
        );
      const rows = claimed.flatMap((s) =>
        candidates.filter((t) => matches(t, s)).map((t) => ({ triggerId: t.id, signalId: s.id, outcome: 'PENDING' as const, createdAt: s.createdAt })),
      );
      for (let i = 0; i < rows.length; i += 1000)
        await tx
          .insert(triggerFirings)
          .values(rows.slice(i, i + 1000))
          .onConflictDoNothing({ target: [triggerFirings.triggerId, triggerFirings.signalId] });
      await tx
        .update(signals)
        .set({ handledAt: now() })
        .where(
          inArray(
            signals.id,
            claimed.map((s) => s.id),
          ),
        );
      return claimed.length;
    });
  }

  // --- deciding ------------------------------------------------------------------------------------------

  async function record(ids: string[], outcome: FiringOutcome, runId: string | null, message: string | null): Promise<void> {
    if (!ids.length) return;
    await db
      .update(triggerFirings)
      .set({ outcome, runId, message, decidedAt: now() })
      .where(and(inArray(triggerFirings.id, ids), eq(triggerFirings.outcome, 'PENDING')));
  }

  async function activeRuns(triggerId: string): Promise<{ id: string; status: string }[]> {
    return db
      .select({ id: runs.id, status: runs.status })
      .from(triggerFirings)
      .innerJoin(runs, eq(runs.id, triggerFirings.runId))
      .where(and(eq(triggerFirings.triggerId, triggerId), eq(triggerFirings.outcome, 'STARTED'), inArray(runs.status, ['QUEUED', 'RUNNING'])));
  }

  async function startedLastMinute(triggerId: string, at: Date): Promise<number> {
    const [row] = await db
      .select({ n: sql<number>`count(*)::int` })
      .from(triggerFirings)
      .where(
        and(eq(triggerFirings.triggerId, triggerId), eq(triggerFirings.outcome, 'STARTED'), gt(triggerFirings.decidedAt, new Date(at.getTime() - 60_000))),
      );
    return row?.n ?? 0;
  }

  /** Why the trigger's owners may not start this run now (audited), or null: as for a schedule's fire. */
  const mayNotFire = (trigger: WorkflowTrigger, workflow: Workflow, domain: Domain) =>
    ownersMayNotStart(
      db,
      { kind: 'trigger', name: trigger.name, teamId: trigger.teamId, createdBy: trigger.createdBy, scopes: trigger.scopes },
      workflow,
      domain,
    );

  /** Decides one trigger's pending firings (oldest first); returns how many it decided. */
  async function decide(trigger: WorkflowTrigger, pending: (TriggerFiring & { signal: Signal })[]): Promise<number> {
    const at = now();
    // Started before a crash (or by another replica) but not recorded yet: those are STARTED, with their run.
    const keys = pending.map((f) => firingKey(trigger.id, f.signalId));
    const earlier = await db
      .select({ id: runs.id, key: runs.idempotencyKey })
      .from(runs)
      .where(and(isNull(runs.createdBy), inArray(runs.idempotencyKey, keys)));
    const byKey = new Map(earlier.map((r) => [r.key, r.id]));
    let open = pending;
    if (byKey.size) {
      for (const f of pending) {
        const runId = byKey.get(firingKey(trigger.id, f.signalId));
        if (runId) await record([f.id], 'STARTED', runId, null);
      }
      open = pending.filter((f) => !byKey.has(firingKey(trigger.id, f.signalId)));
      if (!open.length) return pending.length;
    }
    const newest = open.at(-1)!;
    const older = open.slice(0, -1).map((f) => f.id);
    const coalesce = async (outcome: FiringOutcome, runId: string | null, message: string | null) => {
      await record([newest.id], outcome, runId, message);
      await record(
        older,
        'COALESCED',
        runId,
        `coalesced with ${older.length > 1 ? `${older.length - 1} other signals and ` : ''}signal ${newest.signalId}, which ended ${outcome}`,
      );
    };
    const chain = failureChain(newest.signal);
    if (chain > MAX_FAILURE_CHAIN) {
      await coalesce(
        'FAILED',
        null,
        `stopped: run ${String((newest.signal.payload.run as { id?: unknown } | undefined)?.id)} ended a chain of ${chain} failures of runs started one from another (failure triggers restart at most ${MAX_FAILURE_CHAIN} in a row); no run started. Fix the failing workflow and start it by hand to begin a new chain`,
      );
      return pending.length;
    }
    const [workflow] = await db.select().from(workflows).where(eq(workflows.id, trigger.workflowId));
    const domain = moreGuarded(workflow!.domain, trigger.parametersDomain);
    const refused = await mayNotFire(trigger, workflow!, domain);
    if (refused) {
      await coalesce('FAILED', null, refused);
      return pending.length;
    }
    const [started, active] = await Promise.all([startedLastMinute(trigger.id, at), activeRuns(trigger.id)]);
    if (started >= trigger.maxRunsPerMinute) {
      await record(
        open.map((f) => f.id),
        'RATE_LIMITED',
        null,
        `rate-limited: trigger "${trigger.name}" started ${started} runs in the last minute (at most ${trigger.maxRunsPerMinute}); no run started for this signal`,
      );
      return pending.length;
    }
    if (trigger.overlap === 'SKIP' && active.length) {
      await coalesce('SKIPPED_OVERLAP', null, `skipped: run ${active[0]!.id} of this trigger is still ${active[0]!.status} (overlap policy SKIP)`);
      return pending.length;
    }
    let parameters: Record<string, unknown>;
    try {
      parameters = mapParameters(trigger.parameters, trigger.parameterMap, newest.signal.payload);
    } catch (error) {
      await coalesce('FAILED', null, `the run could not start: ${(error as Error).message}`);
      return pending.length;
    }
    const cancelled = trigger.overlap === 'CANCEL_PREVIOUS' ? await cancelPrevious(orchestrator, active) : [];
    try {
      const actingFor = await scheduleActor(db, trigger);
      const run = await audited(db, () =>
        orchestrator.startRun(
          {
            workflow: trigger.workflowId,
            parameters,
            trigger: 'EVENT',
            idempotencyKey: firingKey(trigger.id, newest.signalId),
            domain,
            actingFor,
            priority: trigger.priority,
          },
          null,
        ),
      );
      crashPoint('trigger-run-started');
      await coalesce(
        'STARTED',
        run.id,
        cancelled.length ? `cancelled the previous run${cancelled.length > 1 ? 's' : ''} ${cancelled.join(', ')} (overlap policy CANCEL_PREVIOUS)` : null,
      );
    } catch (error) {
      // A typed error is the workflow's or the input's fault and will not heal by retrying; anything else might.
      if (!(error instanceof AtelierError)) throw error;
      await coalesce('FAILED', null, `the run could not start: ${error.message}`);
    }
    return pending.length;
  }

  async function startPending(): Promise<number> {
    const rows = await pendingFirings(db, {});
    const byTrigger = new Map<string, { trigger: WorkflowTrigger; pending: (TriggerFiring & { signal: Signal })[] }>();
    for (const r of rows) {
      const entry = byTrigger.get(r.trigger.id) ?? { trigger: r.trigger, pending: [] };
      entry.pending.push({ ...r.firing, signal: r.signal });
      byTrigger.set(r.trigger.id, entry);
    }
    let decided = 0;
    for (const { trigger, pending } of byTrigger.values()) {
      decided += await decide(trigger, pending).catch((error) => {
        log(`trigger ${trigger.name} (${trigger.id}): ${(error as Error).message} (will retry)`);
        return 0;
      });
    }
    return decided;
  }

  async function pass(): Promise<number> {
    const matched = await match();
    let decided = 0;
    const work = async () => {
      decided = await startPending();
    };
    if (options.leaderLock) await withTryAdvisoryLock(db, LEADER_LOCK, work);
    else await work();
    return Math.max(matched, decided ? 1 : 0) >= BATCH ? BATCH : matched + decided;
  }

  const loop = kickedLoop({
    pass,
    batchSize: BATCH,
    pollMs: options.pollMs ?? 1000,
    onError: (e) => log(`trigger dispatcher: ${(e as Error).message} (will retry)`),
  });
  return { ...loop, name: 'trigger dispatcher', pass };
}

// Each pass's two reads, made every second and after every commit that recorded a signal: built once
// (server/db/prepared.ts; the firings' read joins three whole rows, ~0.4 ms of CPU to build each time).
const unhandledSignals = builtOnce()((tx) =>
  tx.select().from(signals).where(isNull(signals.handledAt)).orderBy(asc(signals.createdAt)).limit(BATCH).for('update', { skipLocked: true }),
);
const pendingFirings = builtOnce()((db) =>
  db
    .select({ firing: triggerFirings, signal: signals, trigger: workflowTriggers })
    .from(triggerFirings)
    .innerJoin(signals, eq(signals.id, triggerFirings.signalId))
    .innerJoin(workflowTriggers, eq(workflowTriggers.id, triggerFirings.triggerId))
    .where(eq(triggerFirings.outcome, 'PENDING'))
    .orderBy(asc(triggerFirings.createdAt), asc(triggerFirings.id))
    .limit(BATCH * 10),
);

/** Whether a trigger listens to a signal (the query chose candidates by subject; this checks the kind and team too). */
function matches(t: WorkflowTrigger, s: Signal): boolean {
  if (signalTypeOfKind[t.kind as TriggerKind] !== s.type) return false;
  if (t.matchSubject) return t.matchSubject === s.subject;
  return t.kind === 'ALERT_OPENED' && !!t.teamId && t.teamId === s.teamId;
}

/** How many failures in a row of runs started by failure triggers a `run.failed` signal ends (0 for any other signal). */
function failureChain(s: Signal): number {
  const n = s.type === 'run.failed' ? s.payload.failureChain : 0;
  return typeof n === 'number' ? n : 0;
}
