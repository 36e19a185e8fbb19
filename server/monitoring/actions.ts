// A monitor's actions: what an alert's opening does besides notifying the team (NOTIFY: the alert.* webhooks, always
// sent). START_WORKFLOW starts a (retraining) run acting for the monitor's owning team, as a trigger's run does;
// ROLLBACK_ALIAS moves an alias back with the registry's rollback, as the monitor's creator with the grants they hold
// (a production alias needs the production grant). Each needs exactly the grants a person would need; a refusal is
// audited and recorded on the alert as an ACTION event, never dropped.
//
// Once per alert across replicas: the opening transaction writes one PENDING `alert_actions` row per action (UNIQUE
// per alert and position); the worker carries each out after it. A run starts with the idempotency key `alert:ID`
// (a crash between the run and its record finds the same run again); a rollback is claimed FOR UPDATE SKIP LOCKED
// and done in the claiming transaction, so it happens once even though rolling back is not idempotent.
import { and, asc, eq, sql } from 'drizzle-orm';
import { audited } from '../audit/audit';
import { defineAbilityFor } from '../auth/ability';
import { grantsOf } from '../auth/grants';
import type { Db, Tx } from '../db/client';
import { identities } from '../db/tables/identities';
import { type Alert, type AlertActionRow, type AlertActionStatus, alertActions, alerts, type Monitor, monitorEvents, monitors } from '../db/tables/monitoring';
import { workflows } from '../db/tables/workflows';
import { AtelierError, badInput } from '../errors';
import type { Service } from '../lifecycle';
import { kickedLoop } from '../lifecycle/kicked-loop';
import type { Orchestrator } from '../orchestrator/orchestrator';
import { scheduleActor } from '../orchestrator/run-actor';
import { rollbackModelAlias } from '../registry/aliases';
import { ownersMayNotStart } from '../triggers/may-start';

export const actionKinds = ['NOTIFY', 'START_WORKFLOW', 'ROLLBACK_ALIAS'] as const;
export type ActionKind = (typeof actionKinds)[number];

export type MonitorAction =
  | { kind: 'NOTIFY' }
  | { kind: 'START_WORKFLOW'; workflow: string; parameters: Record<string, unknown> }
  | { kind: 'ROLLBACK_ALIAS'; model: string; alias: string };

/** What an action's input may carry (GraphQL `MonitorActionInput`). */
export interface ActionInput {
  kind: string;
  workflow?: string | null;
  parameters?: unknown;
  model?: string | null;
  alias?: string | null;
}

const nameRe = /^[A-Za-z0-9][A-Za-z0-9._/-]{0,199}$/;

/** Checks a monitor's actions: at most one of each kind (a run's idempotency key is `alert:ID`). */
export function checkActions(inputs: readonly ActionInput[] | null | undefined): MonitorAction[] {
  const out: MonitorAction[] = [];
  for (const [i, input] of (inputs ?? []).entries()) {
    const path = `actions.${i}`;
    if (out.some((a) => a.kind === input.kind)) throw badInput(`${path}: a monitor has at most one ${input.kind} action.`);
    if (input.kind === 'NOTIFY') out.push({ kind: 'NOTIFY' });
    else if (input.kind === 'START_WORKFLOW') {
      if (!input.workflow || !nameRe.test(input.workflow)) throw badInput(`${path}.workflow must name the workflow to start (START_WORKFLOW).`);
      const parameters = input.parameters ?? {};
      if (typeof parameters !== 'object' || Array.isArray(parameters) || parameters === null)
        throw badInput(`${path}.parameters must be an object of the workflow's parameters.`);
      if (JSON.stringify(parameters).length > 64_000) throw badInput(`${path}.parameters is over 64 kB as JSON.`);
      out.push({ kind: 'START_WORKFLOW', workflow: input.workflow, parameters: parameters as Record<string, unknown> });
    } else if (input.kind === 'ROLLBACK_ALIAS') {
      if (!input.model || !nameRe.test(input.model) || !input.alias)
        throw badInput(`${path}: ROLLBACK_ALIAS needs model (namespace/name) and alias (e.g. champion).`);
      out.push({ kind: 'ROLLBACK_ALIAS', model: input.model, alias: input.alias });
    } else throw badInput(`${path}.kind must be one of ${actionKinds.join(', ')}.`);
  }
  return out;
}

export const actionsOf = (monitor: Pick<Monitor, 'actions'>): MonitorAction[] => (monitor.actions ?? []) as MonitorAction[];

/** In an alert's opening transaction: one PENDING row per action that does something (NOTIFY is the webhook). */
export async function queueActions(tx: Tx, monitor: Monitor, alert: Alert): Promise<number> {
  const rows = actionsOf(monitor)
    .map((action, position) => ({ alertId: alert.id, monitorId: monitor.id, position, action: action as Record<string, unknown> }))
    .filter((r) => r.action.kind !== 'NOTIFY');
  if (!rows.length) return 0;
  await tx
    .insert(alertActions)
    .values(rows)
    .onConflictDoNothing({ target: [alertActions.alertId, alertActions.position] });
  return rows.length;
}

/** The actions an alert's opening queued, in the monitor's order. */
export const actionsOfAlert = (db: Db, alertId: string): Promise<AlertActionRow[]> =>
  db.select().from(alertActions).where(eq(alertActions.alertId, alertId)).orderBy(asc(alertActions.position));

interface Outcome {
  status: Exclude<AlertActionStatus, 'PENDING'>;
  runId?: string | null;
  message: string;
}

/** Records an action's outcome (if still PENDING) and its ACTION event on the alert and the monitor. */
async function decide(db: Db | Tx, row: AlertActionRow, outcome: Outcome): Promise<boolean> {
  const [done] = await db
    .update(alertActions)
    .set({ status: outcome.status, runId: outcome.runId ?? null, message: outcome.message, decidedAt: new Date() })
    .where(and(eq(alertActions.id, row.id), eq(alertActions.status, 'PENDING')))
    .returning({ id: alertActions.id });
  if (!done) return false;
  await db.insert(monitorEvents).values({
    monitorId: row.monitorId,
    alertId: row.alertId,
    kind: 'ACTION',
    actorId: null,
    reason: outcome.message,
    details: { action: row.action, status: outcome.status, runId: outcome.runId ?? null },
  });
  return true;
}

const failure = (error: unknown): Outcome => {
  if (!(error instanceof AtelierError)) throw error; // not the action's fault: retried on the next pass
  return { status: error.code === 'FORBIDDEN' ? 'REFUSED' : 'FAILED', message: error.message };
};

async function startWorkflow(db: Db, orchestrator: Pick<Orchestrator, 'startRun'>, row: AlertActionRow, monitor: Monitor): Promise<void> {
  const action = row.action as Extract<MonitorAction, { kind: 'START_WORKFLOW' }>;
  const [workflow] = await db.select().from(workflows).where(eq(workflows.name, action.workflow));
  if (!workflow) {
    await decide(db, row, {
      status: 'FAILED',
      message: `the run could not start: no workflow "${action.workflow}"; publish it, or change the monitor's action.`,
    });
    return;
  }
  const starter = { kind: 'monitor' as const, name: monitor.name, teamId: monitor.teamId, createdBy: monitor.createdBy, scopes: monitor.scopes };
  const refused = await ownersMayNotStart(db, starter, workflow, workflow.domain);
  if (refused) {
    await decide(db, row, { status: 'REFUSED', message: refused });
    return;
  }
  let outcome: Outcome;
  try {
    const actingFor = await scheduleActor(db, monitor);
    const run = await audited(db, () =>
      orchestrator.startRun(
        { workflow: workflow.id, parameters: action.parameters, trigger: 'EVENT', idempotencyKey: `alert:${row.alertId}`, domain: workflow.domain, actingFor },
        null,
      ),
    );
    outcome = { status: 'DONE', runId: run.id, message: `started run ${run.id} of ${workflow.name}` };
  } catch (error) {
    outcome = failure(error);
    outcome.message = `the run could not start: ${outcome.message}`;
  }
  await decide(db, row, outcome);
}

/** Claims the row and rolls the alias back in ONE transaction (a rollback is not idempotent: it must happen once). */
async function rollbackAlias(db: Db, row: AlertActionRow, monitor: Monitor): Promise<void> {
  const action = row.action as Extract<MonitorAction, { kind: 'ROLLBACK_ALIAS' }>;
  await db.transaction(async (tx) => {
    const [claimed] = await tx
      .select()
      .from(alertActions)
      .where(and(eq(alertActions.id, row.id), eq(alertActions.status, 'PENDING')))
      .for('update', { skipLocked: true });
    if (!claimed) return;
    const [creator] = monitor.createdBy ? await tx.select().from(identities).where(eq(identities.id, monitor.createdBy)) : [];
    if (!creator) {
      await decide(tx, claimed, { status: 'REFUSED', message: 'the monitor has no creator to act as; roll the alias back by hand.' });
      return;
    }
    const [alert] = await tx.select({ title: alerts.title }).from(alerts).where(eq(alerts.id, row.alertId));
    // As the token that created the monitor could: one that may not move aliases makes no monitor that does.
    const ability = defineAbilityFor(creator, await grantsOf(tx, creator), monitor.scopes);
    let outcome: Outcome;
    try {
      // `tx` as the registry's db: its transaction is a savepoint here, and its refusal's audit record is kept.
      const moved = await rollbackModelAlias(tx as unknown as Db, ability, creator, {
        model: action.model,
        alias: action.alias,
        reason: `monitor "${monitor.name}", alert ${row.alertId}: ${alert?.title ?? ''}`.slice(0, 500),
      });
      outcome = {
        status: 'DONE',
        message: `rolled ${action.model} alias "${action.alias}" back from version ${moved.previous?.version ?? '?'} to ${moved.version.version}`,
      };
    } catch (error) {
      outcome = failure(error);
      outcome.message = `the rollback was not done: ${outcome.message}`;
    }
    await decide(tx, claimed, outcome);
  });
}

/** One pass: carries out up to `limit` pending actions, oldest first; returns how many it looked at. */
export async function runAlertActions(db: Db, orchestrator: Pick<Orchestrator, 'startRun'>, limit = 50): Promise<number> {
  const pending = await db
    .select({ row: alertActions, monitor: monitors })
    .from(alertActions)
    .innerJoin(monitors, eq(monitors.id, alertActions.monitorId))
    .where(eq(alertActions.status, 'PENDING'))
    .orderBy(asc(alertActions.createdAt))
    .limit(limit);
  for (const { row, monitor } of pending) {
    const kind = (row.action as MonitorAction).kind;
    if (kind === 'START_WORKFLOW') await startWorkflow(db, orchestrator, row, monitor);
    else if (kind === 'ROLLBACK_ALIAS') await rollbackAlias(db, row, monitor);
    else await decide(db, row, { status: 'FAILED', message: `unknown action ${kind}` });
  }
  return pending.length;
}

/** How many actions are still to be carried out (for tests and health). */
export async function pendingActions(db: Db): Promise<number> {
  const [row] = await db.select({ n: sql<number>`count(*)::int` }).from(alertActions).where(eq(alertActions.status, 'PENDING'));
  return row?.n ?? 0;
}

export interface AlertActionWorker extends Service {
  kick(): void;
}

/** The worker as a service: a pass every `pollMs` and when kicked (after a pass of the evaluator opened alerts). */
export function createAlertActionWorker(options: {
  db: Db;
  orchestrator: Pick<Orchestrator, 'startRun'>;
  pollMs: number;
  log: (message: string) => void;
  afterPass?: () => void;
}): AlertActionWorker {
  const loop = kickedLoop({
    batchSize: 50,
    pollMs: options.pollMs,
    pass: async () => {
      const n = await runAlertActions(options.db, options.orchestrator);
      if (n) options.afterPass?.();
      return n;
    },
    onError: (e) => options.log(`monitor actions: ${(e as Error).message} (will retry)`),
  });
  return { name: 'monitor actions', start: () => loop.start(), stop: () => loop.stop(), kick: () => loop.kick() };
}
