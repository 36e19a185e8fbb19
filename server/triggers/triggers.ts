// Creating, changing, pausing, resuming, deleting triggers (and rotating an HTTP trigger's secret), and reading them
// with their firings. Every input is checked before anything is written; a trigger belongs to a team like a schedule
// (server/teams/ownership.ts), fires only workflows its owners publish, and its runs act for its owners.

import { randomBytes, randomUUID } from 'node:crypto';
import { and, asc, desc, eq, inArray } from 'drizzle-orm';
import { audited } from '../audit/audit';
import type { TokenScopes } from '../auth/ability';
import type { Db } from '../db/client';
import type { Identity } from '../db/tables/identities';
import { registeredModels } from '../db/tables/registry';
import { type Signal, signals, type TriggerFiring, triggerFirings, type WorkflowTrigger, workflowTriggers } from '../db/tables/triggers';
import type { Workflow } from '../db/tables/workflows';
import { isUuid } from '../db/uuid';
import { AtelierError, badInput, type ErrorDetail, notFound } from '../errors';
import { findDataset } from '../governance/datasets';
import { firingOwnerTeam } from '../scheduler/ownership';
import { findWorkflow } from '../scheduler/schedules';
import { aliasSubject, datasetSubject, hookSubject, monitorSubject, workflowSubject } from '../signals/signals';
import { assertOwnerMay, type OwnedThing, type Owner } from '../teams/ownership';
import { type OverlapPolicy, RUN_PRIORITY_MAX, RUN_PRIORITY_MIN, type TriggerKind } from '../vocabulary';
import { checkStoredParameters } from '../workflows/stored-parameters';
import { checkParameterMap } from './mapping';

export interface TriggerInput {
  workflow: string;
  name: string;
  kind: TriggerKind;
  /** DATASET_VERSION: `ns/name`; ALIAS_MOVED: `ns/model@alias`; RUN_SUCCEEDED, RUN_FAILED: a workflow name; ALERT_OPENED: a monitor id (none: any of its team's); HTTP: none. */
  source?: string | null;
  parameters?: Record<string, unknown> | null;
  parameterMap?: Record<string, string> | null;
  overlap?: OverlapPolicy | null;
  /** Of the runs it starts, -10..10 (default 0). */
  priority?: number | null;
  maxRunsPerMinute?: number | null;
  paused?: boolean | null;
  team?: string | null;
}

export interface TriggerPatch {
  parameters?: Record<string, unknown> | null;
  parameterMap?: Record<string, string> | null;
  overlap?: OverlapPolicy | null;
  priority?: number | null;
  maxRunsPerMinute?: number | null;
}

const nameRe = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;
export const MAX_RUNS_PER_MINUTE = 600;

function checkedPriority(priority: number): number {
  if (!Number.isInteger(priority) || priority < RUN_PRIORITY_MIN || priority > RUN_PRIORITY_MAX)
    throw badInput(
      `Invalid trigger: priority must be a whole number from ${RUN_PRIORITY_MIN} to ${RUN_PRIORITY_MAX} (higher goes first in a saturated pool); got ${priority}.`,
      [{ path: 'priority', message: `must be a whole number from ${RUN_PRIORITY_MIN} to ${RUN_PRIORITY_MAX}` }],
    );
  return priority;
}

/** A new HMAC key for an HTTP trigger: `trsec_` and 32 random bytes (base64url); the key is the whole string. */
export const newTriggerSecret = () => `trsec_${randomBytes(32).toString('base64url')}`;

const invalid = (problems: ErrorDetail[]) => badInput(`Invalid trigger: ${problems.map((p) => `${p.path} ${p.message}`).join('; ')}`, problems);

export async function findTrigger(db: Db, ref: string): Promise<WorkflowTrigger> {
  const [trigger] = await db
    .select()
    .from(workflowTriggers)
    .where(isUuid(ref) ? eq(workflowTriggers.id, ref) : eq(workflowTriggers.name, ref));
  if (!trigger) throw notFound(`No trigger "${ref}". List them with \`atelier trigger list\`.`);
  return trigger;
}

export async function listTriggers(db: Db, workflow?: string | null): Promise<WorkflowTrigger[]> {
  const query = db.select().from(workflowTriggers);
  if (!workflow) return query.orderBy(asc(workflowTriggers.createdAt), asc(workflowTriggers.id)).limit(1000);
  const w = await findWorkflow(db, workflow);
  return query.where(eq(workflowTriggers.workflowId, w.id)).orderBy(asc(workflowTriggers.createdAt), asc(workflowTriggers.id));
}

export const triggersOfWorkflows = (db: Db, workflowIds: string[]): Promise<WorkflowTrigger[]> =>
  db.select().from(workflowTriggers).where(inArray(workflowTriggers.workflowId, workflowIds)).orderBy(asc(workflowTriggers.createdAt));

export type FiringWithSignal = TriggerFiring & { signal: Signal };

/** A trigger's latest `limit` firings with their signals, newest first. */
export async function recentFirings(db: Db, triggerId: string, limit: number): Promise<FiringWithSignal[]> {
  const rows = await db
    .select({ firing: triggerFirings, signal: signals })
    .from(triggerFirings)
    .innerJoin(signals, eq(signals.id, triggerFirings.signalId))
    .where(eq(triggerFirings.triggerId, triggerId))
    .orderBy(desc(triggerFirings.createdAt), desc(triggerFirings.id))
    .limit(limit);
  return rows.map((r) => ({ ...r.firing, signal: r.signal }));
}

/** The firing (with its trigger and signal) that started each of these runs; runs no trigger started are absent. */
export async function firingsOfRuns(db: Db, runIds: string[]): Promise<Map<string, FiringWithSignal & { trigger: WorkflowTrigger }>> {
  const rows = await db
    .select({ firing: triggerFirings, signal: signals, trigger: workflowTriggers })
    .from(triggerFirings)
    .innerJoin(signals, eq(signals.id, triggerFirings.signalId))
    .innerJoin(workflowTriggers, eq(workflowTriggers.id, triggerFirings.triggerId))
    .where(and(inArray(triggerFirings.runId, runIds), eq(triggerFirings.outcome, 'STARTED')));
  return new Map(rows.map((r) => [r.firing.runId!, { ...r.firing, signal: r.signal, trigger: r.trigger }]));
}

/** The subject a trigger matches signals by, from its kind and source; NOT_FOUND for a source that does not exist. */
async function matchOf(
  db: Db,
  id: string,
  kind: TriggerKind,
  source: string | null,
  workflow: Workflow,
): Promise<{ source: string | null; matchSubject: string | null }> {
  const missing = (what: string) => new AtelierError('NOT_FOUND', `No ${what} "${source}".`, [{ path: 'source', message: 'does not exist' }]);
  const need = () => {
    if (!source?.trim()) throw invalid([{ path: 'source', message: `is required for a ${kind} trigger` }]);
    return source.trim();
  };
  switch (kind) {
    case 'DATASET_VERSION': {
      const dataset = await findDataset(db, need()).catch(() => {
        throw missing('dataset');
      });
      return { source: `${dataset.namespace}/${dataset.name}`, matchSubject: datasetSubject(dataset.namespace, dataset.name) };
    }
    case 'ALIAS_MOVED': {
      const m = /^([^/@\s]+)\/([^/@\s]+)@([^/@\s]+)$/.exec(need());
      if (!m) throw invalid([{ path: 'source', message: 'must be ns/model@alias' }]);
      const [model] = await db
        .select({ id: registeredModels.id })
        .from(registeredModels)
        .where(and(eq(registeredModels.namespace, m[1]!), eq(registeredModels.name, m[2]!)));
      if (!model) throw missing('model');
      return { source: m[0], matchSubject: aliasSubject(`${m[1]}/${m[2]}`, m[3]!) };
    }
    case 'RUN_SUCCEEDED': {
      const upstream = await findWorkflow(db, need());
      // A workflow started by its own success would run for ever (bounded only by the rate limit).
      if (upstream.id === workflow.id)
        throw invalid([{ path: 'source', message: 'must be another workflow (a workflow started by its own success never stops)' }]);
      return { source: upstream.name, matchSubject: workflowSubject(upstream.id) };
    }
    case 'RUN_FAILED': {
      // Its own workflow may be its source (rerun on failure): the dispatcher stops a chain of failures at
      // MAX_FAILURE_CHAIN (server/vocabulary/triggers.ts), so one that always fails does not restart itself for ever.
      const upstream = await findWorkflow(db, need());
      return { source: upstream.name, matchSubject: workflowSubject(upstream.id) };
    }
    case 'ALERT_OPENED':
      if (!source) return { source: null, matchSubject: null };
      if (!isUuid(source)) throw invalid([{ path: 'source', message: 'must be a monitor id (a UUID), or none for any monitor of the trigger’s team' }]);
      return { source, matchSubject: monitorSubject(source) };
    case 'HTTP':
      if (source) throw invalid([{ path: 'source', message: 'is not taken by an HTTP trigger (it is reached at POST /hooks/trigger/NAME)' }]);
      return { source: null, matchSubject: hookSubject(id) };
  }
}

function checkJsonObject(value: unknown, path: string): Record<string, unknown> {
  if (value === null || value === undefined) return {};
  if (typeof value !== 'object' || Array.isArray(value)) throw invalid([{ path, message: 'must be a JSON object' }]);
  return value as Record<string, unknown>;
}

function checkRate(n: number): number {
  if (!Number.isInteger(n) || n < 1 || n > MAX_RUNS_PER_MINUTE)
    throw invalid([{ path: 'maxRunsPerMinute', message: `must be a whole number from 1 to ${MAX_RUNS_PER_MINUTE}` }]);
  return n;
}

/** Creates a trigger; an HTTP one comes with its secret, shown this once. */
export async function createTrigger(
  db: Db,
  input: TriggerInput,
  identity: Identity,
  owner: Owner,
  now: Date,
  /** Those of the token creating it (null: unscoped): its runs act for no more than that token may. */
  scopes: TokenScopes = null,
): Promise<{ trigger: WorkflowTrigger; secret: string | null }> {
  if (!nameRe.test(input.name))
    throw invalid([{ path: 'name', message: 'must be 1 to 100 letters, digits, ".", "_" or "-", starting with a letter or digit' }]);
  const parameters = checkJsonObject(input.parameters, 'parameters');
  const parameterMap = checkParameterMap(input.parameterMap);
  const maxRunsPerMinute = checkRate(input.maxRunsPerMinute ?? 10);
  const workflow = await findWorkflow(db, input.workflow);
  const id = randomUUID();
  const match = await matchOf(db, id, input.kind, input.source ?? null, workflow);
  await checkStoredParameters(db, workflow, parameters, { owner: 'trigger', filledLater: Object.keys(parameterMap) });
  const teamId = await audited(db, () =>
    firingOwnerTeam(db, owner, input.team, workflow, {
      kind: 'trigger',
      name: input.name,
      refused: (why) =>
        `You may not add a trigger to workflow "${workflow.name}": ${why.replace('this schedule', 'this trigger').replace('a schedule fires', 'a trigger fires')}. Ask a member of its team.`,
    }),
  );
  if (input.kind === 'ALERT_OPENED' && !match.matchSubject && !teamId)
    throw invalid([{ path: 'source', message: 'is required when the trigger belongs to no team (it would listen to every alert)' }]);
  const secret = input.kind === 'HTTP' ? newTriggerSecret() : null;
  const [created] = await db
    .insert(workflowTriggers)
    .values({
      id,
      name: input.name,
      workflowId: workflow.id,
      kind: input.kind,
      ...match,
      parameters,
      parameterMap,
      parametersDomain: workflow.domain,
      overlap: input.overlap ?? 'ALLOW',
      priority: checkedPriority(input.priority ?? 0),
      maxRunsPerMinute,
      paused: input.paused ?? false,
      secret,
      createdBy: identity.id,
      scopes,
      teamId,
      createdAt: now,
      updatedAt: now,
    })
    .onConflictDoNothing({ target: workflowTriggers.name })
    .returning();
  if (!created)
    throw new AtelierError('CONFLICT', `A trigger named "${input.name}" exists; pick another name.`, [{ path: 'name', message: 'is already used' }]);
  return { trigger: created, secret };
}

const triggerThing = (t: WorkflowTrigger, verb: string): OwnedThing => ({
  action: `trigger.${verb}`,
  subject: `trigger:${t.name}`,
  label: `Trigger "${t.name}"`,
});

async function triggerToChange(db: Db, id: string, verb: 'update' | 'pause' | 'resume' | 'delete' | 'rotate', owner: Owner): Promise<WorkflowTrigger> {
  const trigger = await findTrigger(db, id);
  await audited(db, () => assertOwnerMay(db, owner, trigger, triggerThing(trigger, verb), verb === 'update' ? 'change' : verb));
  return trigger;
}

export async function updateTrigger(db: Db, id: string, patch: TriggerPatch, now: Date, owner: Owner): Promise<WorkflowTrigger> {
  const current = await triggerToChange(db, id, 'update', owner);
  const parameters = patch.parameters === undefined || patch.parameters === null ? current.parameters : checkJsonObject(patch.parameters, 'parameters');
  const parameterMap = patch.parameterMap === undefined || patch.parameterMap === null ? current.parameterMap : checkParameterMap(patch.parameterMap);
  const maxRunsPerMinute = checkRate(patch.maxRunsPerMinute ?? current.maxRunsPerMinute);
  const workflow = await findWorkflow(db, current.workflowId);
  await checkStoredParameters(db, workflow, parameters, { owner: 'trigger', filledLater: Object.keys(parameterMap) });
  const parametersDomain = patch.parameters === undefined || patch.parameters === null ? current.parametersDomain : workflow.domain;
  const [updated] = await db
    .update(workflowTriggers)
    .set({
      parameters,
      parameterMap,
      parametersDomain,
      maxRunsPerMinute,
      overlap: patch.overlap ?? current.overlap,
      priority: checkedPriority(patch.priority ?? current.priority),
      updatedAt: now,
    })
    .where(eq(workflowTriggers.id, current.id))
    .returning();
  return updated!;
}

export async function setTriggerPaused(db: Db, id: string, paused: boolean, now: Date, owner: Owner): Promise<WorkflowTrigger> {
  const current = await triggerToChange(db, id, paused ? 'pause' : 'resume', owner);
  const [updated] = await db.update(workflowTriggers).set({ paused, updatedAt: now }).where(eq(workflowTriggers.id, current.id)).returning();
  return updated!;
}

/** A new secret for an HTTP trigger (the old one stops working at once); shown this once. */
export async function rotateTriggerSecret(db: Db, id: string, now: Date, owner: Owner): Promise<{ trigger: WorkflowTrigger; secret: string }> {
  const current = await triggerToChange(db, id, 'rotate', owner);
  if (current.kind !== 'HTTP') throw badInput(`Trigger "${current.name}" is ${current.kind}: only HTTP triggers have a secret.`);
  const secret = newTriggerSecret();
  const [updated] = await db.update(workflowTriggers).set({ secret, updatedAt: now }).where(eq(workflowTriggers.id, current.id)).returning();
  return { trigger: updated!, secret };
}

/** Deletes a trigger and its firing records; the runs it started stay. */
export async function deleteTrigger(db: Db, id: string, owner: Owner): Promise<WorkflowTrigger> {
  const trigger = await triggerToChange(db, id, 'delete', owner);
  await db.delete(workflowTriggers).where(eq(workflowTriggers.id, trigger.id));
  return trigger;
}
