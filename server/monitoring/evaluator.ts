// The monitor evaluator: a kicked loop (server/lifecycle/kicked-loop.ts) whose pass claims due monitors with
// `FOR UPDATE SKIP LOCKED` (so each is evaluated once across replicas), measures each rule, keeps its state
// (consecutive breaches, last value and baseline), opens or updates alerts, and moves the monitor's due time on — all
// in the pass's transaction, so a crash mid-pass leaves the monitors due and nothing half-done.
import { and, asc, eq, isNull, lte, sql } from 'drizzle-orm';
import type { Db } from '../db/client';
import { type Monitor, monitors } from '../db/tables/monitoring';
import type { Service } from '../lifecycle';
import { kickedLoop } from '../lifecycle/kicked-loop';
import { queueActions } from './actions';
import { openAlert } from './alerts';
import { measureAll } from './measure';
import { rulesOf, stateOf } from './monitors';
import { arrayLiteral } from './observations';
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
    // Every rule of every claimed monitor measured in one statement.
    const items = due.flatMap((monitor) => rulesOf(monitor).map((rule) => ({ monitor, rule })));
    const measured = await measureAll(tx, items, now);
    const states = new Map(due.map((m) => [m.id, { ...stateOf(m) } as Record<string, RuleState>]));
    for (const [i, { monitor, rule }] of items.entries()) {
      const state = states.get(monitor.id)!;
      const verdict = evaluateRule(rule, measured[i]!, state[rule.id]);
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
      if (!result.opened) continue;
      opened++;
      // The monitor's actions for this alert, queued in its opening transaction: once per alert (actions.ts).
      await queueActions(tx, monitor, result.alert);
    }
    // Their state and next due time, in one statement.
    if (due.length)
      await tx.execute(sql`update monitors m set state = u.s::jsonb, last_evaluated_at = ${now.toISOString()}::timestamptz,
          next_due_at = ${now.toISOString()}::timestamptz + m.interval_seconds * interval '1 second'
        from unnest(${arrayLiteral(due.map((m) => m.id))}::uuid[], ${arrayLiteral(due.map((m) => JSON.stringify(states.get(m.id))))}::text[]) as u(id, s)
        where m.id = u.id`);
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
