// Monitors: a team's rules over one metric of one target, evaluated every `intervalSeconds` by the evaluator
// (evaluator.ts). Created by whoever may read the target, for one of their teams; changed, paused and deleted by the
// writing members of that team (and admins). Every change is a monitor event (the monitor's history) and audited.
import { subject } from '@casl/ability';
import { and, desc, eq, inArray, isNull, sql } from 'drizzle-orm';
import { audit, audited } from '../audit/audit';
import { isAdmin } from '../auth/ability';
import type { Db, Tx } from '../db/client';
import { type Monitor, type MonitorEvent, type MonitorEventKind, monitorEvents, monitors } from '../db/tables/monitoring';
import { teamMembers } from '../db/tables/teams';
import { workflows } from '../db/tables/workflows';
import { badInput, notFound } from '../errors';
import { assertOwnerMay, newOwnerTeam, ownerOf } from '../teams/ownership';
import { checkStoredParameters } from '../workflows/stored-parameters';
import { assertMayOperate, type Caller, isTeamMember, mayReadTarget } from './access';
import { type ActionInput, checkActions, type MonitorAction } from './actions';
import { checkRules, type MonitorRule, metricNameRe, type RuleInput, type RuleState } from './rules';
import { readableTarget } from './series';
import { type TargetRef, targetOf } from './targets';

export interface MonitorInput {
  name: string;
  target: TargetRef;
  metric: string;
  rules: RuleInput[];
  /** How often it is evaluated (default 60 s; 10 s to 1 day). */
  intervalSeconds?: number | null;
  /** The owning team (default: the creator's only team). */
  team?: string | null;
  /** What an alert's opening does besides notifying (actions.ts). */
  actions?: ActionInput[] | null;
}

export interface MonitorChange {
  name?: string | null;
  metric?: string | null;
  rules?: RuleInput[] | null;
  intervalSeconds?: number | null;
  actions?: ActionInput[] | null;
  reason?: string | null;
}

const nameRe = /^[A-Za-z0-9][A-Za-z0-9 ._:/-]{0,99}$/;

export const rulesOf = (monitor: Pick<Monitor, 'rules'>): MonitorRule[] => monitor.rules as MonitorRule[];
export const stateOf = (monitor: Pick<Monitor, 'state'>): Record<string, RuleState> => monitor.state as Record<string, RuleState>;

function checkInterval(seconds: number | null | undefined): number {
  const interval = seconds ?? 60;
  if (!Number.isInteger(interval) || interval < 10 || interval > 86_400) throw badInput('intervalSeconds must be a whole number from 10 to 86400.');
  return interval;
}

function checkFields(input: { name?: string | null; metric?: string | null }) {
  if (input.name != null && !nameRe.test(input.name)) throw badInput('name must be 1–100 letters, digits, spaces, ".", "_", ":", "/" or "-".');
  if (input.metric != null && !metricNameRe.test(input.metric)) throw badInput('metric must be 1–128 letters, digits, "_", ".", ":", "/" or "-".');
}

function checkBaselines(rules: MonitorRule[], kind: TargetRef['kind']) {
  const bad = rules.find((r) => r.kind === 'REGRESSION' && r.baseline === 'EVALUATION');
  if (bad && kind !== 'MODEL_VERSION' && kind !== 'ALIAS')
    throw badInput(`Rule ${bad.id}: an EVALUATION baseline needs a model version or alias target (a ${kind} has no evaluation metrics); use TRAILING.`);
  const drift = rules.find((r) => r.kind === 'DRIFT');
  if (drift && kind === 'WORKFLOW') throw badInput(`Rule ${drift.id}: a DRIFT rule needs a dataset, model version or alias target (a workflow has no data).`);
  if (drift?.kind === 'DRIFT' && drift.baselineVersion !== null && kind !== 'DATASET')
    throw badInput(
      `Rule ${drift.id}: baselineVersion is for a DATASET target; a model's baseline is the version its lineage names (set dataset to choose which).`,
    );
}

export async function monitorEvent(
  tx: Db | Tx,
  event: {
    monitorId: string | null;
    alertId?: string | null;
    kind: MonitorEventKind;
    actorId: string | null;
    reason?: string;
    details?: Record<string, unknown>;
  },
) {
  await tx.insert(monitorEvents).values({ ...event, reason: event.reason ?? '', details: event.details ?? {} });
}

const noMonitor = (id: string) => notFound(`No monitor ${id} that you may read; \`atelier monitor list TARGET\` lists a target's monitors.`);

/** Whether the caller may read the monitor: admins, members of its team, and readers of its target. */
export async function mayReadMonitor(db: Db | Tx, caller: Caller, monitor: Monitor): Promise<boolean> {
  if (isAdmin(caller.ability) || (await isTeamMember(db, caller.identity.id, monitor.teamId))) return true;
  const target = await targetOf(db, monitor);
  return !!target && mayReadTarget(db, caller, target);
}

/** The monitor (locked for update in a transaction), when it exists, is not deleted and the caller may read it. */
export async function findMonitor(db: Db | Tx, caller: Caller, id: string, options: { lock?: boolean } = {}): Promise<Monitor> {
  if (!/^[0-9a-f-]{36}$/i.test(id)) throw noMonitor(id);
  const query = db
    .select()
    .from(monitors)
    .where(and(eq(monitors.id, id), isNull(monitors.deletedAt)));
  const [monitor] = options.lock ? await query.for('update') : await query;
  if (!monitor || !(await mayReadMonitor(db, caller, monitor))) throw noMonitor(id);
  return monitor;
}

const thing = (m: Pick<Monitor, 'id' | 'name'>, action: string) => ({ action, subject: `monitor:${m.id}`, label: `Monitor "${m.name}"` });

/**
 * A START_WORKFLOW action's parameters, checked as the runs it starts would be, when its workflow is one the caller
 * may read; one it may not (or not created yet) is left to the run an alert starts, refused then as any other.
 */
async function checkActionParameters(db: Db, caller: Caller, actions: MonitorAction[]): Promise<void> {
  for (const action of actions) {
    if (action.kind !== 'START_WORKFLOW') continue;
    const [workflow] = await db.select().from(workflows).where(eq(workflows.name, action.workflow));
    if (!workflow || !caller.ability.can('read', subject('Workflow', { domain: workflow.domain }), 'spec')) continue;
    await checkStoredParameters(db, workflow, action.parameters, { owner: 'monitor' });
  }
}

export async function createMonitor(db: Db, caller: Caller, input: MonitorInput): Promise<Monitor> {
  assertMayOperate(caller, 'monitor.create');
  checkFields(input);
  if (!input.name) throw badInput('A monitor needs a name.');
  const rules = checkRules(input.rules);
  const intervalSeconds = checkInterval(input.intervalSeconds);
  const actions = checkActions(input.actions);
  await checkActionParameters(db, caller, actions);
  checkBaselines(rules, input.target.kind);
  return audited(db, () =>
    db.transaction(async (tx) => {
      const target = await readableTarget(tx, caller, input.target);
      const teamId = await newOwnerTeam(tx, ownerOf(caller.identity, caller.ability), input.team, {
        action: 'monitor.create',
        subject: `monitor:${input.name}`,
        label: `a monitor`,
      });
      const [monitor] = await tx
        .insert(monitors)
        .values({
          name: input.name,
          teamId,
          createdBy: caller.identity.id,
          scopes: caller.scopes ?? null,
          targetKind: target.kind,
          targetId: target.id,
          alias: target.alias,
          metric: input.metric,
          rules,
          actions,
          intervalSeconds,
        })
        .returning();
      await monitorEvent(tx, { monitorId: monitor!.id, kind: 'CREATED', actorId: caller.identity.id, details: { rules, actions } });
      await audit(tx, {
        identity: caller.identity,
        action: 'monitor.create',
        decision: 'allow',
        subject: `monitor:${monitor!.id}`,
        rule: 'readers of a target create monitors of it for their team',
        details: { name: input.name, target: `${target.kind.toLowerCase()}:${target.ref}`, metric: input.metric },
      });
      return monitor!;
    }),
  );
}

/** Runs a change of a monitor by a writer of its team, in one transaction, with its event and audit record. */
async function changeMonitor(
  db: Db,
  caller: Caller,
  id: string,
  action: string,
  verb: string,
  change: (
    tx: Tx,
    monitor: Monitor,
  ) => Promise<{ kind: MonitorEventKind; set: Partial<typeof monitors.$inferInsert>; reason?: string; details?: Record<string, unknown> }>,
): Promise<Monitor> {
  assertMayOperate(caller, action);
  return audited(db, () =>
    db.transaction(async (tx) => {
      const monitor = await findMonitor(tx, caller, id, { lock: true });
      await assertOwnerMay(tx, ownerOf(caller.identity, caller.ability), monitor, thing(monitor, action), verb);
      const { kind, set, reason, details } = await change(tx, monitor);
      const [after] = await tx
        .update(monitors)
        .set({ ...set, updatedAt: new Date() })
        .where(eq(monitors.id, monitor.id))
        .returning();
      await monitorEvent(tx, { monitorId: monitor.id, kind, actorId: caller.identity.id, reason, details });
      return after!;
    }),
  );
}

export function updateMonitor(db: Db, caller: Caller, id: string, input: MonitorChange): Promise<Monitor> {
  return changeMonitor(db, caller, id, 'monitor.update', 'change', async (tx, monitor) => {
    checkFields(input);
    const set: Partial<typeof monitors.$inferInsert> = {};
    if (input.name != null) set.name = input.name;
    if (input.metric != null) set.metric = input.metric;
    if (input.intervalSeconds != null) set.intervalSeconds = checkInterval(input.intervalSeconds);
    if (input.actions != null) {
      set.actions = checkActions(input.actions);
      await checkActionParameters(tx, caller, set.actions as MonitorAction[]);
    }
    if (input.rules != null) {
      const rules = checkRules(input.rules);
      checkBaselines(rules, monitor.targetKind);
      set.rules = rules;
      // A rule that changed starts over; state of rules kept as they were stays.
      const before = new Map(rulesOf(monitor).map((r) => [r.id, JSON.stringify(r)]));
      const state = stateOf(monitor);
      set.state = Object.fromEntries(rules.filter((r) => before.get(r.id) === JSON.stringify(r) && state[r.id]).map((r) => [r.id, state[r.id]]));
    }
    if (set.metric && set.metric !== monitor.metric) set.state = {};
    return { kind: 'UPDATED', set, reason: input.reason ?? '', details: { changed: Object.keys(set).filter((k) => k !== 'state') } };
  });
}

export function pauseMonitor(db: Db, caller: Caller, id: string, paused: boolean, reason: string | null | undefined): Promise<Monitor> {
  return changeMonitor(db, caller, id, 'monitor.pause', paused ? 'pause' : 'resume', async () => ({
    kind: paused ? 'PAUSED' : 'RESUMED',
    set: paused ? { paused } : { paused, nextDueAt: new Date() },
    reason: reason ?? '',
  }));
}

/** Deletes the monitor (kept, with its history, as deleted); its open alerts are resolved. */
export function deleteMonitor(db: Db, caller: Caller, id: string, reason: string | null | undefined): Promise<Monitor> {
  return changeMonitor(db, caller, id, 'monitor.delete', 'delete', async (tx, monitor) => {
    await tx.execute(
      sql`update alerts set state = 'RESOLVED', closed_at = now(), updated_at = now() where monitor_id = ${monitor.id}::uuid and state in ('OPEN', 'ACKNOWLEDGED')`,
    );
    return { kind: 'DELETED', set: { deletedAt: new Date() }, reason: reason ?? '' };
  });
}

/** The monitors of a target the caller may read (NOT_FOUND, as for none, otherwise). */
export async function monitorsOf(db: Db, caller: Caller, ref: TargetRef): Promise<Monitor[]> {
  const target = await readableTarget(db, caller, ref);
  return db
    .select()
    .from(monitors)
    .where(
      and(
        eq(monitors.targetKind, target.kind),
        eq(monitors.targetId, target.id),
        target.alias === null ? isNull(monitors.alias) : eq(monitors.alias, target.alias),
        isNull(monitors.deletedAt),
      ),
    )
    .orderBy(monitors.name);
}

/** The monitors of the teams the caller is in (admins: all), by name; a monitor's target is readable to its team. */
export async function monitorsOfTeams(db: Db, caller: Caller): Promise<Monitor[]> {
  const where = [isNull(monitors.deletedAt)];
  if (!isAdmin(caller.ability)) {
    where.push(inArray(monitors.teamId, db.select({ id: teamMembers.teamId }).from(teamMembers).where(eq(teamMembers.identityId, caller.identity.id))));
  }
  return db
    .select()
    .from(monitors)
    .where(and(...where))
    .orderBy(monitors.name)
    .limit(500);
}

export const monitorsByIds = (db: Db, ids: string[]): Promise<Monitor[]> =>
  ids.length ? db.select().from(monitors).where(inArray(monitors.id, ids)) : Promise.resolve([]);

/** A monitor's history, newest first: its changes, its alerts' openings and people's feedback on them. */
export const historyOf = (db: Db, monitorId: string, limit = 200): Promise<MonitorEvent[]> =>
  db.select().from(monitorEvents).where(eq(monitorEvents.monitorId, monitorId)).orderBy(desc(monitorEvents.id)).limit(limit);
