// Alerts: opened by a monitor's rule (or by another check through `openAlert`), at most one open per key (a
// continuing breach updates it), owned by the monitor's team. People's feedback (acknowledge, resolve, false
// positive, annotate a one-off window, re-baseline) is never learned silently: each is a monitor event (who, when,
// why), audited, and sent to the team's webhooks as `alert.*` in the same transaction.
import { and, desc, eq, inArray, type SQL, sql } from 'drizzle-orm';
import { audit, audited } from '../audit/audit';
import { isAdmin } from '../auth/ability';
import { refusal } from '../auth/refuse';
import { type Db, retryingTransaction, type Tx } from '../db/client';
import type { Identity } from '../db/tables/identities';
import {
  type Alert,
  type AlertState,
  alerts,
  type MonitorEvent,
  type MonitorEventKind,
  monitorEvents,
  monitors,
  type TargetKind,
} from '../db/tables/monitoring';
import { teamMembers } from '../db/tables/teams';
import { badInput, conflict, notFound } from '../errors';
import { monitorSubject, recordSignal } from '../signals/signals';
import { OWNERSHIP_RULE, ownerOf, ownershipAllows, ownershipRefusal, owningTeamName } from '../teams/ownership';
import { emitWebhookEvent } from '../webhooks/emit';
import { assertMayOperate, type Caller, isTeamMember, mayReadTarget } from './access';
import { monitorEvent, rulesOf, stateOf } from './monitors';
import { emptyState, hasBaseline } from './rules';
import { targetOf } from './targets';

export interface OpenAlertInput {
  /** What may have one open alert at a time: `monitor:ID:RULE`, `freshness:DATASET_ID`. */
  key: string;
  teamId: string | null;
  monitorId?: string | null;
  ruleId?: string | null;
  target: { kind: TargetKind; id: string; alias?: string | null };
  title: string;
  value?: number | null;
  bound?: number | null;
  details?: Record<string, unknown>;
  at?: Date;
}

const OPEN: AlertState[] = ['OPEN', 'ACKNOWLEDGED'];

/** The webhook payload of an alert event (ids, names and the rule's numbers; no observations). */
async function alertPayload(tx: Db | Tx, alert: Alert, actor: Identity | null, extra: Record<string, unknown> = {}) {
  const target = await targetOf(tx, alert);
  const [monitor] = alert.monitorId ? await tx.select({ id: monitors.id, name: monitors.name }).from(monitors).where(eq(monitors.id, alert.monitorId)) : [];
  return {
    alert: {
      id: alert.id,
      key: alert.key,
      state: alert.state,
      title: alert.title,
      rule: alert.ruleId,
      value: alert.value,
      bound: alert.bound,
      breaches: alert.breaches,
      openedAt: alert.openedAt.toISOString(),
    },
    monitor: monitor ?? null,
    target: { kind: alert.targetKind, ref: target?.ref ?? null },
    actor: actor ? { id: actor.id, name: actor.name } : null,
    ...extra,
  };
}

/**
 * Opens the key's alert in `tx`, or updates the open one (a continuing breach: its value, bound and breach count).
 * Returns the alert and whether it was opened now; an opening is a monitor event, audited and sent as `alert.opened`.
 */
export async function openAlert(tx: Tx, input: OpenAlertInput): Promise<{ alert: Alert; opened: boolean }> {
  const at = input.at ?? new Date();
  const [alert] = await tx
    .insert(alerts)
    .values({
      key: input.key,
      monitorId: input.monitorId ?? null,
      ruleId: input.ruleId ?? null,
      teamId: input.teamId,
      targetKind: input.target.kind,
      targetId: input.target.id,
      alias: input.target.alias ?? null,
      title: input.title,
      value: input.value ?? null,
      bound: input.bound ?? null,
      details: input.details ?? {},
      openedAt: at,
      updatedAt: at,
    })
    .onConflictDoUpdate({
      target: alerts.key,
      targetWhere: sql`state in ('OPEN', 'ACKNOWLEDGED')`,
      set: { breaches: sql`${alerts.breaches} + 1`, value: input.value ?? null, bound: input.bound ?? null, title: input.title, updatedAt: at },
    })
    .returning();
  const opened = alert!.breaches === 1 && alert!.openedAt.getTime() === at.getTime();
  if (!opened) return { alert: alert!, opened };
  // Triggers on alerts (ALERT_OPENED) start their runs from this signal, recorded with the opening.
  await recordSignal(tx, {
    type: 'alert.opened',
    team: alert!.teamId,
    subject: alert!.monitorId ? monitorSubject(alert!.monitorId) : `alert:${alert!.key}`,
    key: `alert:${alert!.id}`,
    payload: {
      alert: { id: alert!.id, key: alert!.key, rule: alert!.ruleId, title: alert!.title, value: alert!.value, bound: alert!.bound },
      monitor: alert!.monitorId ? { id: alert!.monitorId } : null,
    },
  });
  await monitorEvent(tx, {
    monitorId: alert!.monitorId,
    alertId: alert!.id,
    kind: 'OPENED',
    actorId: null,
    reason: input.title,
    details: { value: input.value ?? null, bound: input.bound ?? null },
  });
  await audit(tx, {
    identity: null,
    action: 'alert.open',
    decision: 'allow',
    subject: `alert:${alert!.id}`,
    rule: input.monitorId ? 'a monitor opens an alert when a rule is breached the required number of times in a row' : 'a check opens an alert',
    details: { key: input.key, title: input.title },
  });
  await emitWebhookEvent(tx, { type: 'alert.opened', team: alert!.teamId, subject: `alert:${alert!.id}`, at, payload: await alertPayload(tx, alert!, null) });
  return { alert: alert!, opened };
}

/**
 * Closes the key's open alert when the check that opened it finds the condition gone (a late dataset that got its
 * new version): RESOLVED by the platform, recorded, audited and sent as `alert.resolved`. False when none was open.
 */
export async function resolveAlertByCheck(tx: Tx, key: string, reason: string, at = new Date()): Promise<boolean> {
  const [alert] = await tx
    .update(alerts)
    .set({ state: 'RESOLVED', updatedAt: at, closedAt: at })
    .where(and(eq(alerts.key, key), inArray(alerts.state, OPEN)))
    .returning();
  if (!alert) return false;
  await monitorEvent(tx, { monitorId: alert.monitorId, alertId: alert.id, kind: 'RESOLVED', actorId: null, reason, details: {} });
  await audit(tx, {
    identity: null,
    action: 'alert.resolve',
    decision: 'allow',
    subject: `alert:${alert.id}`,
    rule: 'the check that opened it found the condition gone',
    details: { reason },
  });
  await emitWebhookEvent(tx, {
    type: 'alert.resolved',
    team: alert.teamId,
    subject: `alert:${alert.id}`,
    at,
    payload: await alertPayload(tx, alert, null, { reason, resolution: 'RESOLVED' }),
  });
  return true;
}

const noAlert = (id: string) => notFound(`No alert ${id} that you may read; \`atelier alert list --all\` lists your teams' alerts.`);

/** Whether the caller may read the alert: admins, members of its team, readers of its target. */
export async function mayReadAlert(db: Db | Tx, caller: Caller, alert: Alert): Promise<boolean> {
  if (isAdmin(caller.ability) || (await isTeamMember(db, caller.identity.id, alert.teamId))) return true;
  const target = await targetOf(db, alert);
  return !!target && mayReadTarget(db, caller, target);
}

export async function findAlert(db: Db | Tx, caller: Caller, id: string, options: { lock?: boolean } = {}): Promise<Alert> {
  if (!/^[0-9a-f-]{36}$/i.test(id)) throw noAlert(id);
  const query = db.select().from(alerts).where(eq(alerts.id, id));
  const [alert] = options.lock ? await query.for('update') : await query;
  if (!alert || !(await mayReadAlert(db, caller, alert))) throw noAlert(id);
  return alert;
}

export type AlertAction = 'acknowledge' | 'resolve' | 'falsePositive' | 'annotate' | 'rebaseline';

export interface AlertActionInput {
  id: string;
  action: AlertAction;
  reason?: string | null;
  /** annotate: the one-off window left out of trailing baselines (default: from the alert's opening to now). */
  from?: Date | null;
  to?: Date | null;
}

const kinds: Record<AlertAction, MonitorEventKind> = {
  acknowledge: 'ACKNOWLEDGED',
  resolve: 'RESOLVED',
  falsePositive: 'FALSE_POSITIVE',
  annotate: 'ANNOTATED',
  rebaseline: 'REBASELINED',
};

/** A person's feedback on an alert, by a writer of its team (or an admin); recorded, audited and sent. */
export async function actOnAlert(db: Db, caller: Caller, input: AlertActionInput, options: { now?: Date } = {}): Promise<Alert> {
  const action = `alert.${input.action}`;
  assertMayOperate(caller, action);
  const reason = (input.reason ?? '').trim();
  if (reason.length > 2000) throw badInput('reason is at most 2000 characters.');
  if (!reason && input.action !== 'acknowledge') throw badInput(`Say why (reason): rules learn nothing silently, and the monitor's history shows it.`);
  const now = options.now ?? new Date();
  return audited(db, () =>
    retryingTransaction(db, async (tx) => {
      // The monitor's row before its alert's, as the evaluator (monitors claimed, then their alerts written) and
      // deleteMonitor (its alerts resolved) take them: alert first here deadlocked with either. An alert's monitor never
      // changes, so the unlocked read names the right one.
      const seen = await findAlert(tx, caller, input.id);
      const [monitor] = seen.monitorId ? await tx.select().from(monitors).where(eq(monitors.id, seen.monitorId)).for('update') : [];
      const alert = await findAlert(tx, caller, input.id, { lock: true });
      const owned = { teamId: alert.teamId, createdBy: monitor?.createdBy ?? null };
      const allowed = await ownershipAllows(tx, ownerOf(caller.identity, caller.ability), owned);
      if (!allowed)
        throw refusal(
          { identity: caller.identity, action, subject: `alert:${alert.id}`, rule: OWNERSHIP_RULE },
          ownershipRefusal(`Alert "${alert.title}"`, await owningTeamName(tx, owned), 'act on'),
        );
      const open = OPEN.includes(alert.state);
      let details: Record<string, unknown> = {};
      let state: AlertState = alert.state;
      switch (input.action) {
        case 'acknowledge':
          if (alert.state !== 'OPEN') throw conflict(`Alert ${alert.id} is ${alert.state.toLowerCase()}; only an open alert is acknowledged.`);
          state = 'ACKNOWLEDGED';
          break;
        case 'resolve':
        case 'falsePositive':
          if (!open) throw conflict(`Alert ${alert.id} is closed (${alert.state.toLowerCase()}) already.`);
          state = input.action === 'resolve' ? 'RESOLVED' : 'FALSE_POSITIVE';
          break;
        case 'annotate': {
          const from = input.from ?? alert.openedAt;
          const to = input.to ?? now;
          if (!(from < to)) throw badInput('from must be before to.');
          if (to.getTime() - from.getTime() > 90 * 86_400_000) throw badInput('An annotated window is at most 90 days; a lasting change is a re-baseline.');
          details = { from: from.toISOString(), to: to.toISOString() };
          break;
        }
        case 'rebaseline': {
          const rule = monitor && rulesOf(monitor).find((r) => r.id === alert.ruleId);
          if (!monitor || !rule || !hasBaseline(rule))
            throw badInput(`Alert ${alert.id} is not about a rule with a baseline (a REGRESSION rule); change a threshold with updateMonitor.`);
          // The level the rule measured last (what the alert is about) is the baseline from now on.
          const current = stateOf(monitor)[rule.id]?.lastValue ?? null;
          if (current === null) throw conflict(`Rule ${rule.id} has measured nothing yet: nothing to take as the new baseline.`);
          details = { rule: rule.id, baseline: current, previous: stateOf(monitor)[rule.id]?.lastBaseline ?? null };
          const ruleState = { ...(stateOf(monitor)[rule.id] ?? emptyState()), baseline: { value: current, at: now.toISOString() } };
          await tx
            .update(monitors)
            .set({ state: { ...stateOf(monitor), [rule.id]: ruleState } })
            .where(eq(monitors.id, monitor.id));
          if (open) state = 'RESOLVED';
          break;
        }
      }
      // A person closing it: the rule's breach count starts over, so N more breaches in a row open the next one.
      const closing = open && (state === 'RESOLVED' || state === 'FALSE_POSITIVE');
      if (closing && monitor && alert.ruleId && input.action !== 'rebaseline') {
        const current = stateOf(monitor)[alert.ruleId];
        if (current)
          await tx
            .update(monitors)
            .set({ state: sql`jsonb_set(${monitors.state}, ${`{${alert.ruleId},consecutive}`}::text[], '0')` })
            .where(eq(monitors.id, monitor.id));
      }
      const [after] = await tx
        .update(alerts)
        .set({ state, updatedAt: now, ...(closing ? { closedAt: now } : {}) })
        .where(eq(alerts.id, alert.id))
        .returning();
      await monitorEvent(tx, { monitorId: alert.monitorId, alertId: alert.id, kind: kinds[input.action], actorId: caller.identity.id, reason, details });
      await audit(tx, {
        identity: caller.identity,
        action,
        decision: 'allow',
        subject: `alert:${alert.id}`,
        rule: allowed,
        details: { reason, ...details },
      });
      const type = state === 'ACKNOWLEDGED' && input.action === 'acknowledge' ? 'alert.acknowledged' : closing ? 'alert.resolved' : null;
      if (type)
        await emitWebhookEvent(tx, {
          type,
          team: after!.teamId,
          subject: `alert:${alert.id}`,
          at: now,
          payload: await alertPayload(tx, after!, caller.identity, { reason, ...(closing ? { resolution: kinds[input.action] } : {}) }),
        });
      return after!;
    }),
  );
}

/** Alerts of the teams the caller is in (admins: all), newest first. */
export async function listAlerts(
  db: Db,
  caller: Caller | null,
  filter: { states?: AlertState[] | null; monitorId?: string | null; limit?: number | null },
): Promise<Alert[]> {
  const limit = Math.min(Math.max(filter.limit ?? 100, 1), 500);
  const where: SQL[] = [];
  if (filter.states?.length) where.push(inArray(alerts.state, filter.states));
  if (filter.monitorId) where.push(eq(alerts.monitorId, filter.monitorId));
  // null: a monitor's own alerts, read through the monitor (already checked).
  if (caller && !isAdmin(caller.ability)) {
    const mine = db.select({ id: teamMembers.teamId }).from(teamMembers).where(eq(teamMembers.identityId, caller.identity.id));
    where.push(inArray(alerts.teamId, mine));
  }
  return db
    .select()
    .from(alerts)
    .where(and(...where))
    .orderBy(desc(alerts.openedAt))
    .limit(limit);
}

export const alertsByIds = (db: Db, ids: string[]): Promise<Alert[]> =>
  ids.length ? db.select().from(alerts).where(inArray(alerts.id, ids)) : Promise.resolve([]);

export const eventsOfAlert = (db: Db, alertId: string): Promise<MonitorEvent[]> =>
  db.select().from(monitorEvents).where(eq(monitorEvents.alertId, alertId)).orderBy(monitorEvents.id);
