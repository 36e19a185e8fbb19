// The one write path for observations, used by the `recordObservations` mutation and `POST /api/observations`: the
// whole batch is checked first (shape, limits, targets, the caller's right to write each target), then written in
// ONE statement (each column one array parameter, unnested), with its audit record in the same transaction. Any bad
// observation refuses the batch, naming its index and what to do, and nothing is written.
import { sql } from 'drizzle-orm';
import { audit } from '../audit/audit';
import { refusal } from '../auth/refuse';
import { type Db, queryRows } from '../db/client';
import { type TargetKind, targetKinds } from '../db/tables/monitoring';
import { badInput } from '../errors';
import { isServingMetric, SERVING_METRIC_PREFIX } from '../vocabulary';
import { assertMayOperate, type Caller, mayWriteTarget } from './access';
import { metricNameRe } from './rules';
import { refShape, resolveTarget, type Target, type TargetRef } from './targets';

/** The documented limits (docs/monitoring.md). */
export const observationLimits = {
  batch: 10_000,
  dimensions: 16,
  keyLength: 64,
  valueLength: 256,
  metricLength: 128,
  /** How far ahead of the server's clock an observation may be (clock skew). */
  futureMs: 5 * 60_000,
  /** How old an observation may be. */
  pastMs: 365 * 86_400_000,
};

export interface ObservationInput {
  target: TargetRef;
  metric: string;
  value: number;
  /** Default: now. A Date, or an ISO 8601 string (HTTP bodies). */
  at?: Date | string | null;
  dimensions?: Record<string, unknown> | null;
}

const keyRe = /^[A-Za-z_][A-Za-z0-9_.-]*$/;

/** A Postgres array literal; each element quoted (NULL for null). */
export const arrayLiteral = (values: readonly (string | null)[]) =>
  `{${values.map((v) => (v === null ? 'NULL' : `"${v.replace(/[\\"]/g, '\\$&')}"`)).join(',')}}`;

interface Checked {
  targetKey: string;
  metric: string;
  value: number;
  at: Date;
  dimensions: Record<string, string>;
}

/** Checks one observation's own fields (not its target); throws BAD_USER_INPUT naming `observations.i`. */
function checkObservation(input: ObservationInput, i: number, now: number): Checked {
  const path = `observations.${i}`;
  if (!input || typeof input !== 'object') throw badInput(`${path} must be an object with target, metric, value (and at, dimensions).`);
  const { target } = input;
  if (!target || typeof target !== 'object' || !targetKinds.includes(target.kind) || typeof target.ref !== 'string')
    throw badInput(`${path}.target must be { kind: ${targetKinds.join(' | ')}, ref: "…" }.`);
  if (typeof input.metric !== 'string' || !metricNameRe.test(input.metric))
    throw badInput(`${path}.metric must be 1–${observationLimits.metricLength} letters, digits, "_", ".", ":", "/" or "-".`);
  // What a deployment's router measured is the control plane's to record (a rollout's gates judge by it).
  if (isServingMetric(input.metric))
    throw badInput(
      `${path}.metric "${input.metric}": ${SERVING_METRIC_PREFIX}* metrics are measured by deployments' routers and recorded by Atelier itself; record your own figures under another name (e.g. app.${input.metric.slice(SERVING_METRIC_PREFIX.length) || 'error_rate'}).`,
    );
  if (typeof input.value !== 'number' || !Number.isFinite(input.value))
    throw badInput(`${path}.value must be a finite number (got ${String(input.value)}): leave out observations you could not measure.`);
  const at = input.at === undefined || input.at === null ? new Date(now) : new Date(input.at);
  if (Number.isNaN(at.getTime())) throw badInput(`${path}.at is not a time: use ISO 8601, e.g. 2026-01-31T12:00:00Z.`);
  if (at.getTime() > now + observationLimits.futureMs)
    throw badInput(`${path}.at (${at.toISOString()}) is more than 5 minutes in the future: check the sender's clock.`);
  if (at.getTime() < now - observationLimits.pastMs)
    throw badInput(`${path}.at (${at.toISOString()}) is more than a year old: send observations from the last year (they are about now).`);
  const dims = input.dimensions ?? {};
  if (typeof dims !== 'object' || Array.isArray(dims)) throw badInput(`${path}.dimensions must be an object of names to values.`);
  const entries = Object.entries(dims);
  if (entries.length > observationLimits.dimensions)
    throw badInput(
      `${path}.dimensions has ${entries.length} entries; at most ${observationLimits.dimensions} (send identifiers as their own metric, not as dimensions).`,
    );
  const dimensions: Record<string, string> = {};
  for (const [key, raw] of entries) {
    if (!keyRe.test(key) || key.length > observationLimits.keyLength)
      throw badInput(
        `${path}.dimensions: "${key.slice(0, 80)}" is not a dimension name (1–${observationLimits.keyLength} letters, digits, "_", "." or "-", not starting with a digit).`,
      );
    if (typeof raw !== 'string' && typeof raw !== 'number' && typeof raw !== 'boolean')
      throw badInput(`${path}.dimensions.${key} must be a string, number or boolean.`);
    const value = String(raw);
    if (value.length > observationLimits.valueLength) throw badInput(`${path}.dimensions.${key} is longer than ${observationLimits.valueLength} characters.`);
    dimensions[key] = value;
  }
  return { targetKey: `${target.kind}\u0000${target.ref}`, metric: input.metric, value: input.value, at, dimensions };
}

/**
 * Records a batch of observations; returns how many. Refuses (writing nothing) a batch with any bad observation or
 * any target the caller may not write; a refusal is audited.
 */
export async function recordObservations(
  db: Db,
  caller: Caller,
  inputs: readonly ObservationInput[],
  options: { now?: Date } = {},
): Promise<{ recorded: number }> {
  assertMayOperate(caller, 'observation.record');
  if (!Array.isArray(inputs)) throw badInput('observations must be a list.');
  if (inputs.length > observationLimits.batch)
    throw badInput(`A batch holds at most ${observationLimits.batch} observations (got ${inputs.length}); send it in smaller batches.`);
  if (!inputs.length) return { recorded: 0 };
  const now = (options.now ?? new Date()).getTime();
  const checked = inputs.map((input, i) => checkObservation(input, i, now));
  // Each target once: resolved, then its right to write checked.
  const targets = new Map<string, Target>();
  for (let i = 0; i < inputs.length; i++) {
    const key = checked[i]!.targetKey;
    if (targets.has(key)) continue;
    const ref = inputs[i]!.target;
    const target = await resolveTarget(db, ref);
    if (!target)
      throw badInput(
        `observations.${i}.target: no ${ref.kind} "${String(ref.ref).slice(0, 300)}"; name one as ${refShape[ref.kind as TargetKind]} that exists.`,
      );
    const allowed = await mayWriteTarget(db, caller, target);
    if (!allowed)
      throw refusal(
        {
          identity: caller.identity,
          action: 'observation.record',
          subject: `${target.kind.toLowerCase()}:${target.ref}`,
          rule: 'observations about a target are written by its owning team (its writers) and admins',
          details: { index: i },
        },
        `observations.${i}: you may not write observations about ${target.kind} ${target.ref}; its owning team's writers (members, its service accounts) may.`,
      );
    targets.set(key, target);
  }
  // The batch's few targets travel once; each row carries its target's index (1-based) into them.
  const list = [...targets.values()];
  const index = new Map([...targets.keys()].map((key, i) => [key, String(i + 1)]));
  const each = (f: (t: Target) => string | null) => arrayLiteral(list.map(f));
  const rows = (f: (c: Checked) => string) => arrayLiteral(checked.map(f));
  await db.transaction(async (tx) => {
    await tx.execute(sql`insert into observations (target_kind, target_id, alias, version_id, team_id, metric, value, at, dimensions, recorded_by)
      select t.k, t.id, t.al, t.v, t.tm, o.m, o.x, o.w, o.d::jsonb, ${caller.identity.id}::uuid
      from unnest(${rows((c) => index.get(c.targetKey)!)}::int[], ${rows((c) => c.metric)}::text[], ${rows((c) => String(c.value))}::float8[],
        ${rows((c) => c.at.toISOString())}::timestamptz[], ${rows((c) => JSON.stringify(c.dimensions))}::text[]) as o(ti, m, x, w, d)
      join unnest(${each((t) => t.kind)}::text[], ${each((t) => t.id)}::uuid[], ${each((t) => t.alias)}::text[], ${each((t) => t.versionId)}::uuid[],
        ${each((t) => t.teamId)}::uuid[]) with ordinality as t(k, id, al, v, tm, n) on t.n = o.ti`);
    await audit(tx, {
      identity: caller.identity,
      action: 'observation.record',
      decision: 'allow',
      subject: [...targets.values()]
        .map((t) => `${t.kind.toLowerCase()}:${t.ref}`)
        .join(', ')
        .slice(0, 1000),
      rule: 'observations about a target are written by its owning team (its writers) and admins',
      details: { count: checked.length },
    });
  });
  return { recorded: checked.length };
}

/**
 * Deletes observations taken more than `days` ago (`ATELIER_OBSERVATION_RETENTION_DAYS`), a batch at a time; a
 * monitor's trailing window or a chart older than that finds nothing there. Returns how many went.
 */
export async function pruneObservations(db: Db, days: number, batch = 20_000): Promise<number> {
  let total = 0;
  for (;;) {
    const [row] = await queryRows<{ n: number | string }>(
      db,
      sql`with gone as (
        delete from observations where id in (select id from observations where at < now() - ${`${days} days`}::interval limit ${batch}) returning 1
      ) select count(*) as n from gone`,
    );
    const n = Number(row?.n ?? 0);
    total += n;
    if (n < batch) return total;
  }
}
