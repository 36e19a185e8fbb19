// Data freshness: a dataset may declare how often a new version is expected and what runs reading it do while it
// is late (WAIT, FAIL or IGNORE). Whether it is late is computed from its newest version's time; the freshness
// check records each change (late, then fresh again) once across replicas, with a `dataset.late` or
// `dataset.fresh` webhook event and an alert, and the dispatch gate (orchestrator/gates.ts) applies the policy.
import { and, desc, eq, inArray, sql } from 'drizzle-orm';
import { audit } from '../audit/audit';
import type { AppAbility } from '../auth/ability';
import type { Db, Tx } from '../db/client';
import { type DatasetFreshness, datasetFreshness, type FreshnessPolicy, freshnessPolicies } from '../db/tables/dataset-health';
import { type Dataset, datasets, datasetVersions } from '../db/tables/governance';
import type { Identity } from '../db/tables/identities';
import { namespaces } from '../db/tables/teams';
import { badInput } from '../errors';
import { kickedLoop } from '../lifecycle/kicked-loop';
import { assertMayWriteNamespace } from '../teams/teams';
import { emitWebhookEvent } from '../webhooks/emit';
import { findDataset } from './datasets';

export type { FreshnessPolicy };

const units: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86_400, w: 604_800 };
const MIN_INTERVAL_S = 60;
const MAX_INTERVAL_S = 366 * 86_400;

/** `90s`, `15m`, `6h`, `1d`, `2w` (or several: `1d12h`) in seconds; throws BAD_USER_INPUT naming `what`. */
export function parseInterval(text: string, what: string): number {
  const parts = [...text.trim().matchAll(/(\d+)\s*([smhdw])/g)];
  const seconds = parts.reduce((s, [, n, u]) => s + Number(n) * units[u!]!, 0);
  if (!parts.length || parts.map((p) => p[0]).join('') !== text.trim().replace(/\s+/g, ''))
    throw badInput(`${what} "${text}" is not an interval; write it like 6h, 1d or 1d12h (units s, m, h, d, w).`);
  if (seconds < MIN_INTERVAL_S || seconds > MAX_INTERVAL_S) throw badInput(`${what} must be between 1m and 366d, not ${text}.`);
  return seconds;
}

/** An interval in the largest units that divide it, e.g. 86400 → `1d`, 5400 → `1h30m`. */
export function formatInterval(seconds: number): string {
  let rest = seconds;
  let out = '';
  for (const [u, n] of Object.entries(units).sort((a, b) => b[1] - a[1])) {
    if (rest >= n) {
      out += `${Math.floor(rest / n)}${u}`;
      rest %= n;
    }
  }
  return out || '0s';
}

export interface Freshness {
  expectedEvery: string;
  policy: FreshnessPolicy;
  maxWait: string;
  lastVersionAt: Date;
  dueAt: Date;
  late: boolean;
  /** When it went late (its due time), while it is. */
  lateSince: Date | null;
}

/** The freshness of datasets that declare an expectation (others are absent from the map). */
export async function freshnessOf(db: Db | Tx, datasetIds: string[], now = new Date()): Promise<Map<string, Freshness>> {
  if (!datasetIds.length) return new Map();
  const rows = await db
    .select({
      f: datasetFreshness,
      // Qualified by hand: in a one-table select drizzle writes bare column names, and a bare "dataset_id" = "dataset_id"
      // inside the subquery compared dataset_versions with itself (the newest version of any dataset counted).
      last: sql<string>`(select max(dv.created_at) from dataset_versions dv where dv.dataset_id = dataset_freshness.dataset_id)`,
    })
    .from(datasetFreshness)
    .where(inArray(datasetFreshness.datasetId, datasetIds));
  return new Map(rows.map(({ f, last }) => [f.datasetId, describe(f, new Date(last), now)]));
}

function describe(f: DatasetFreshness, lastVersionAt: Date, now: Date): Freshness {
  const dueAt = new Date(lastVersionAt.getTime() + f.expectedEverySeconds * 1000);
  const late = now.getTime() > dueAt.getTime();
  return {
    expectedEvery: formatInterval(f.expectedEverySeconds),
    policy: f.policy,
    maxWait: formatInterval(f.maxWaitSeconds),
    lastVersionAt,
    dueAt,
    late,
    lateSince: late ? dueAt : null,
  };
}

/**
 * Declares (or, with `expectedEvery: null`, removes) how often a dataset expects a new version and what runs
 * reading it do while it is late; by a writer of the dataset's namespace, audited.
 */
export async function setDatasetFreshness(
  db: Db,
  ability: AppAbility,
  identity: Identity,
  input: { dataset: string; expectedEvery: string | null; policy?: FreshnessPolicy; maxWait?: string },
): Promise<Dataset> {
  const every = input.expectedEvery === null ? null : parseInterval(input.expectedEvery, 'expectedEvery');
  const policy = input.policy ?? 'IGNORE';
  if (!freshnessPolicies.includes(policy)) throw badInput(`policy must be one of ${freshnessPolicies.join(', ')}.`);
  const maxWait = input.maxWait === undefined ? 3600 : parseInterval(input.maxWait, 'maxWait');
  return db.transaction(async (tx) => {
    const dataset = await findDataset(tx, input.dataset);
    await assertMayWriteNamespace(tx, ability, dataset.namespace);
    if (every === null) await tx.delete(datasetFreshness).where(eq(datasetFreshness.datasetId, dataset.id));
    else {
      const values = { expectedEverySeconds: every, policy, maxWaitSeconds: maxWait, setBy: identity.id, updatedAt: new Date() };
      await tx
        .insert(datasetFreshness)
        .values({ datasetId: dataset.id, ...values })
        .onConflictDoUpdate({ target: datasetFreshness.datasetId, set: values });
    }
    await audit(tx, {
      identity,
      action: 'dataset.freshness',
      decision: 'allow',
      subject: `dataset:${input.dataset}`,
      rule: `member of the team owning namespace "${dataset.namespace}"`,
      details: every === null ? { removed: true } : { expectedEvery: formatInterval(every), policy, maxWait: formatInterval(maxWait) },
    });
    return dataset;
  });
}

/** Most datasets one pass of the freshness check records. */
export const FRESHNESS_BATCH = 100;

/**
 * One pass of the freshness check: records every declared dataset whose state changed (went late, or is on time
 * again) since the last pass, with its webhook event and alert, in one transaction. Rows are claimed with
 * `FOR UPDATE SKIP LOCKED`, so each change is recorded once however many replicas run the check.
 */
export async function checkFreshness(db: Db, now = new Date(), alerts: FreshnessAlerts = noAlerts): Promise<number> {
  return db.transaction(async (tx) => {
    const last = sql`(select max(${datasetVersions.createdAt}) from ${datasetVersions} where ${datasetVersions.datasetId} = ${datasetFreshness.datasetId})`;
    const due = sql`${last} + ${datasetFreshness.expectedEverySeconds} * interval '1 second'`;
    const changed = await tx
      .select({ f: datasetFreshness, dataset: datasets, last: sql<string>`${last}`, team: namespaces.teamId })
      .from(datasetFreshness)
      .innerJoin(datasets, eq(datasets.id, datasetFreshness.datasetId))
      .leftJoin(namespaces, eq(namespaces.name, datasets.namespace))
      .where(sql`(${datasetFreshness.lateRecordedAt} is null) = (${due} < ${now.toISOString()}::timestamptz)`)
      .orderBy(desc(datasetFreshness.updatedAt))
      .limit(FRESHNESS_BATCH)
      .for('update', { of: datasetFreshness, skipLocked: true });
    for (const row of changed) {
      const state = describe(row.f, new Date(row.last), now);
      const name = `${row.dataset.namespace}/${row.dataset.name}`;
      await tx
        .update(datasetFreshness)
        .set({ lateRecordedAt: state.late ? now : null })
        .where(and(eq(datasetFreshness.datasetId, row.f.datasetId)));
      const payload = {
        dataset: name,
        expectedEvery: state.expectedEvery,
        lastVersionAt: state.lastVersionAt.toISOString(),
        dueAt: state.dueAt.toISOString(),
        policy: state.policy,
      };
      await emitWebhookEvent(tx, { type: state.late ? 'dataset.late' : 'dataset.fresh', team: row.team, subject: `dataset:${name}`, payload, at: now });
      const change = { datasetId: row.f.datasetId, dataset: name, team: row.team, ...state };
      await (state.late ? alerts.late(tx, change) : alerts.fresh(tx, change));
    }
    return changed.length;
  });
}

/** A dataset's change of freshness, as the check records it. */
export type FreshnessChange = Freshness & { datasetId: string; dataset: string; team: string | null };

/**
 * What the check does besides its webhook event, in the same transaction: open the owning team's alert when a
 * dataset goes late and close it when it is on time again (server/monitoring/freshness-alerts.ts, given by the app:
 * the alerts live in a part above this one).
 */
export interface FreshnessAlerts {
  late(tx: Tx, change: FreshnessChange): Promise<void>;
  fresh(tx: Tx, change: FreshnessChange): Promise<void>;
}

const noAlerts: FreshnessAlerts = { late: async () => {}, fresh: async () => {} };

/** What a task reading a late dataset does, for the dispatch gate: go on, wait (with why), or fail (with why). */
export type FreshnessVerdict = { go: true } | { go: false; fail: boolean; message: string };

/**
 * The verdict for a task reading `names` that has been ready since `readySince`: FAIL fails at once, WAIT waits
 * until a fresh version arrives and fails once it has waited the dataset's maxWait; IGNORE and on-time datasets go.
 */
export async function freshnessVerdict(db: Db | Tx, names: string[], readySince: Date, now = new Date()): Promise<FreshnessVerdict> {
  if (!names.length) return { go: true };
  const rows = await db
    .select({ id: datasets.id, namespace: datasets.namespace, name: datasets.name })
    .from(datasets)
    .innerJoin(datasetFreshness, eq(datasetFreshness.datasetId, datasets.id))
    .where(inArray(sql`${datasets.namespace} || '/' || ${datasets.name}`, names));
  if (!rows.length) return { go: true };
  const states = await freshnessOf(
    db,
    rows.map((r) => r.id),
    now,
  );
  for (const r of rows) {
    const s = states.get(r.id);
    if (!s?.late || s.policy === 'IGNORE') continue;
    const name = `${r.namespace}/${r.name}`;
    const lateBy = formatInterval(Math.max(60, Math.floor((now.getTime() - s.dueAt.getTime()) / 60_000) * 60)); // in whole minutes
    const what = `dataset ${name} is late by ${lateBy} (a new version was expected every ${s.expectedEvery}, the last one is from ${s.lastVersionAt.toISOString()})`;
    if (s.policy === 'FAIL')
      return { go: false, fail: true, message: `${what}; its freshness policy is FAIL: add a new version with addDatasetVersion, then rerun.` };
    const waited = now.getTime() - readySince.getTime();
    if (waited >= parseInterval(s.maxWait, 'maxWait') * 1000)
      return { go: false, fail: true, message: `${what}; waited ${s.maxWait} for a fresh version (policy WAIT) and none came: add one, then rerun.` };
    return { go: false, fail: false, message: `waiting for a fresh version: ${what}; fails after waiting ${s.maxWait}.` };
  }
  return { go: true };
}

/** How often the freshness check looks without a kick (a dataset goes late with the clock, not with a write). */
export const FRESHNESS_POLL_MS = 30_000;

/** The freshness check as a background loop; `onRecorded` runs after a pass recorded changes (kick the webhooks). */
export function createFreshnessCheck(options: { db: Db; onRecorded: () => void; log: (message: string) => void; pollMs?: number; alerts?: FreshnessAlerts }) {
  const loop = kickedLoop({
    pass: async () => {
      const n = await checkFreshness(options.db, new Date(), options.alerts);
      if (n) options.onRecorded();
      return n;
    },
    batchSize: FRESHNESS_BATCH,
    pollMs: options.pollMs ?? FRESHNESS_POLL_MS,
    onError: (error) => options.log(`freshness check: ${(error as Error).message} (will retry)`),
  });
  return { name: 'freshness check', start: loop.start, stop: loop.stop, kick: loop.kick, drain: loop.drain };
}
