// The monitor evaluator: a kicked loop (server/lifecycle/kicked-loop.ts) whose pass claims due monitors with
// `FOR UPDATE SKIP LOCKED` (so each is evaluated once across replicas), measures each rule, keeps its state
// (consecutive breaches, last value and baseline), opens or updates alerts, and moves the monitor's due time on — all
// in the pass's transaction, so a crash mid-pass leaves the monitors due and nothing half-done.
import { and, asc, eq, isNull, lte } from 'drizzle-orm';
import type { Db } from '../db/client';
import { type Monitor, monitors } from '../db/tables/monitoring';
import type { Service } from '../lifecycle';
import { kickedLoop } from '../lifecycle/kicked-loop';
import { openAlert } from './alerts';
import { measure } from './measure';
import { rulesOf, stateOf } from './monitors';
import { evaluateRule, type RuleState } from './rules';

/** Monitors per pass (one transaction). */
export const EVALUATION_BATCH = 100;

export interface PassResult {
  evaluated: number;
  opened: number;
}

/** One pass: evaluates up to `limit` due monitors at `now`. */
export async function evaluateDueMonitors(db: Db, options: { now?: Date; limit?: number } = {}): Promise<PassResult> {
  const now = options.now ?? new Date();
  return db.transaction(async (tx) => {
    const due = await tx
      .select()
      .from(monitors)
      .where(and(eq(monitors.paused, false), isNull(monitors.deletedAt), lte(monitors.nextDueAt, now)))
      .orderBy(asc(monitors.nextDueAt))
      .limit(options.limit ?? EVALUATION_BATCH)
      .for('update', { skipLocked: true });
    let opened = 0;
    for (const monitor of due) {
      const state: Record<string, RuleState> = { ...stateOf(monitor) };
      for (const rule of rulesOf(monitor)) {
        const verdict = evaluateRule(rule, await measure(tx, monitor, rule, now), state[rule.id]);
        state[rule.id] = verdict.state;
        if (verdict.status !== 'BREACH' || !verdict.alert) continue;
        const result = await openAlert(tx, {
          key: alertKey(monitor, rule.id),
          teamId: monitor.teamId,
          monitorId: monitor.id,
          ruleId: rule.id,
          target: { kind: monitor.targetKind, id: monitor.targetId, alias: monitor.alias },
          title: `${monitor.name}: ${monitor.metric} ${verdict.message}`,
          value: verdict.value,
          bound: verdict.bound,
          details: { rule: rule.kind, consecutive: verdict.state.consecutive },
          at: now,
        });
        if (result.opened) opened++;
      }
      await tx
        .update(monitors)
        .set({ state, lastEvaluatedAt: now, nextDueAt: new Date(now.getTime() + monitor.intervalSeconds * 1000) })
        .where(eq(monitors.id, monitor.id));
    }
    return { evaluated: due.length, opened };
  });
}

export const alertKey = (monitor: Pick<Monitor, 'id'>, ruleId: string) => `monitor:${monitor.id}:${ruleId}`;

export interface MonitorEvaluator extends Service {
  kick(): void;
}

/** The evaluator as a service: a pass every `pollMs` (and when kicked); `afterOpen` runs after a pass opened alerts. */
export function createMonitorEvaluator(options: { db: Db; pollMs: number; log: (message: string) => void; afterOpen?: () => void }): MonitorEvaluator {
  const loop = kickedLoop({
    batchSize: EVALUATION_BATCH,
    pollMs: options.pollMs,
    pass: async () => {
      const { evaluated, opened } = await evaluateDueMonitors(options.db);
      if (opened) options.afterOpen?.();
      return evaluated;
    },
    onError: (e) => options.log(`monitor evaluator: ${(e as Error).message} (will retry)`),
  });
  return { name: 'monitor evaluator', start: () => loop.start(), stop: () => loop.stop(), kick: () => loop.kick() };
}
