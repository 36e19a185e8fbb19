// Stored profiles of dataset versions: per column, the summary that drift statistics are computed from (never raw
// rows). A profile is given with addDatasetVersion (checked here: a bad one is refused and nothing is written) or
// computed from the version's sample. Reading one follows the preview rule per column: a column the caller may
// not preview is absent, exactly like a column with no profile.
import { and, eq } from 'drizzle-orm';
import { audit } from '../audit/audit';
import type { Grants } from '../auth/ability';
import type { Db, Tx } from '../db/client';
import { datasetProfiles } from '../db/tables/dataset-health';
import { datasetVersions } from '../db/tables/governance';
import type { Identity } from '../db/tables/identities';
import { badInput, notFound } from '../errors';
import { findDataset, labelsOf } from './datasets';
import { clearanceOf, defineColumnAbility, permittedColumns } from './preview';

/** Most distinct values a numeric profile lists exactly (so KS is exact); above it, only the histogram. */
export const MAX_EXACT_VALUES = 5000;
/** Most categories a categorical profile lists; the rest are counted in `other`. */
export const TOP_K = 200;
/** Equal-width bins of a histogram computed from a sample. */
export const SAMPLE_BINS = 10;
/** Largest profile accepted with a version, as JSON. */
export const MAX_PROFILE_BYTES = 2_000_000;

export interface NumericProfile {
  kind: 'numeric';
  /** Finite values. */
  count: number;
  /** Null, missing, or not a finite number (NaN, ±Infinity, a non-number). */
  nulls: number;
  min: number | null;
  max: number | null;
  /** Bins `[edges[i], edges[i+1])`, the last one closed; `edges.length === counts.length + 1`. */
  histogram: { edges: number[]; counts: number[] };
  /** Each distinct value with its count, ascending, when there are at most MAX_EXACT_VALUES of them; else null. */
  values: [number, number][] | null;
}

export interface CategoricalProfile {
  kind: 'categorical';
  /** Non-null values. */
  count: number;
  nulls: number;
  /** The most frequent values with their counts, most frequent first (at most TOP_K). */
  top: [string, number][];
  /** Values not in `top`. */
  other: number;
}

export type ColumnProfile = NumericProfile | CategoricalProfile;
export type DatasetProfile = Record<string, ColumnProfile>;

const isCount = (n: unknown): n is number => typeof n === 'number' && Number.isSafeInteger(n) && n >= 0;
const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);

/** The profile of one column's values: numeric when every non-null value is a number, else categorical. */
export function profileValues(raw: unknown[]): ColumnProfile {
  const present = raw.filter((v) => v !== null && v !== undefined);
  if (present.length > 0 && present.every((v) => typeof v === 'number')) {
    const finite = (present as number[]).filter(Number.isFinite).sort((a, b) => a - b);
    return numericProfile(finite, raw.length - finite.length);
  }
  const counts = new Map<string, number>();
  for (const v of present) {
    const key = typeof v === 'string' ? v : JSON.stringify(v);
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  const sorted = [...counts].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
  const top = sorted.slice(0, TOP_K);
  return { kind: 'categorical', count: present.length, nulls: raw.length - present.length, top, other: present.length - sum(top.map((t) => t[1])) };
}

function numericProfile(sorted: number[], nulls: number): NumericProfile {
  if (sorted.length === 0) return { kind: 'numeric', count: 0, nulls, min: null, max: null, histogram: { edges: [], counts: [] }, values: [] };
  const min = sorted[0]!;
  const max = sorted[sorted.length - 1]!;
  const bins = min === max ? 1 : SAMPLE_BINS;
  const edges = Array.from({ length: bins + 1 }, (_, i) => (i === bins ? max : min + ((max - min) * i) / bins));
  const counts = new Array<number>(bins).fill(0);
  for (const v of sorted) counts[binOf(edges, v)]!++;
  const values: [number, number][] = [];
  for (const v of sorted) {
    const last = values[values.length - 1];
    if (last && last[0] === v) last[1]++;
    else values.push([v, 1]);
  }
  return { kind: 'numeric', count: sorted.length, nulls, min, max, histogram: { edges, counts }, values: values.length <= MAX_EXACT_VALUES ? values : null };
}

/** The bin of `v` among `edges` (numpy's convention: `[e_i, e_i+1)`, the last bin closed); v within the edges. */
export function binOf(edges: number[], v: number): number {
  const last = edges.length - 2;
  if (v >= edges[last + 1]!) return last;
  let lo = 0;
  let hi = last;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (edges[mid]! <= v) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

/** A profile of every column computed from sample rows (a column absent from a row counts as null). */
export function profileSample(columns: string[], sample: Record<string, unknown>[]): DatasetProfile {
  return Object.fromEntries(columns.map((c) => [c, profileValues(sample.map((row) => row[c]))]));
}

/**
 * Checks a given profile against a version's columns: every column known, every count a non-negative integer,
 * and the parts adding up (histogram and values to `count`, top and other to `count`). Throws BAD_USER_INPUT
 * naming the first problem.
 */
export function checkProfile(input: unknown, columns: string[]): DatasetProfile {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) throw badInput('profile is an object keyed by column name.');
  if (JSON.stringify(input).length > MAX_PROFILE_BYTES)
    throw badInput(`profile is over ${MAX_PROFILE_BYTES} bytes as JSON; list fewer exact values (histogram only) or fewer top categories.`);
  const known = new Set(columns);
  const out: DatasetProfile = {};
  for (const [column, p] of Object.entries(input)) {
    const at = `profile.${column}`;
    if (!known.has(column))
      throw badInput(
        `${at}: the version has no column "${column}"; profile only its columns (${columns.slice(0, 20).join(', ')}${columns.length > 20 ? ', …' : ''}).`,
      );
    out[column] = checkColumn(p, at);
  }
  return out;
}

function checkColumn(p: unknown, at: string): ColumnProfile {
  if (typeof p !== 'object' || p === null) throw badInput(`${at} must be an object with a kind (numeric or categorical).`);
  const r = p as Record<string, unknown>;
  if (!isCount(r.count) || !isCount(r.nulls)) throw badInput(`${at}: count and nulls must be non-negative integers.`);
  if (r.kind === 'categorical') return checkCategorical(r, at);
  if (r.kind === 'numeric') return checkNumeric(r, at);
  throw badInput(`${at}.kind must be numeric or categorical.`);
}

function checkCategorical(r: Record<string, unknown>, at: string): CategoricalProfile {
  const count = r.count as number;
  if (!Array.isArray(r.top) || r.top.length > TOP_K) throw badInput(`${at}.top is a list of at most ${TOP_K} [value, count] pairs.`);
  const top = r.top.map((e, i): [string, number] => {
    if (!Array.isArray(e) || e.length !== 2 || typeof e[0] !== 'string' || !isCount(e[1])) throw badInput(`${at}.top.${i} must be [value, count].`);
    return [e[0], e[1]];
  });
  if (new Set(top.map((t) => t[0])).size !== top.length) throw badInput(`${at}.top lists a value twice; give each value once.`);
  if (!isCount(r.other)) throw badInput(`${at}.other must be a non-negative integer.`);
  if (sum(top.map((t) => t[1])) + r.other !== count)
    throw badInput(`${at}: the top counts and other add up to ${sum(top.map((t) => t[1])) + r.other}, not count ${count}; they must add up to count.`);
  return { kind: 'categorical', count, nulls: r.nulls as number, top: [...top].sort((a, b) => b[1] - a[1]), other: r.other };
}

function checkNumeric(r: Record<string, unknown>, at: string): NumericProfile {
  const count = r.count as number;
  const h = r.histogram as { edges?: unknown; counts?: unknown } | undefined;
  const finite = (x: unknown): x is number => typeof x === 'number' && Number.isFinite(x);
  if (!h || !Array.isArray(h.edges) || !Array.isArray(h.counts) || !h.edges.every(finite) || !h.counts.every(isCount))
    throw badInput(`${at}.histogram must be {edges: finite numbers, counts: non-negative integers}.`);
  const edges = h.edges as number[];
  const counts = h.counts as number[];
  if (count === 0) {
    if (r.min != null || r.max != null || sum(counts) !== 0) throw badInput(`${at}: with count 0, min and max must be null and the histogram empty.`);
    return { kind: 'numeric', count: 0, nulls: r.nulls as number, min: null, max: null, histogram: { edges: [], counts: [] }, values: [] };
  }
  if (!finite(r.min) || !finite(r.max) || r.min > r.max) throw badInput(`${at}: min and max must be finite numbers, min ≤ max.`);
  const { min, max } = r as { min: number; max: number };
  if (counts.length < 1 || counts.length > MAX_EXACT_VALUES || edges.length !== counts.length + 1)
    throw badInput(`${at}.histogram: edges must be one longer than counts (1 to ${MAX_EXACT_VALUES} bins).`);
  const single = counts.length === 1 && edges[0] === edges[1];
  if (!single && edges.some((e, i) => i > 0 && e <= edges[i - 1]!)) throw badInput(`${at}.histogram.edges must increase.`);
  if (edges[0] !== min || edges[edges.length - 1] !== max) throw badInput(`${at}.histogram: the first and last edges must be min and max.`);
  if (sum(counts) !== count) throw badInput(`${at}.histogram.counts add up to ${sum(counts)}, not count ${count}; they must add up to count.`);
  let values: [number, number][] | null = null;
  if (r.values != null) {
    if (!Array.isArray(r.values) || r.values.length > MAX_EXACT_VALUES)
      throw badInput(`${at}.values is a list of at most ${MAX_EXACT_VALUES} [value, count] pairs (or null).`);
    values = r.values.map((e, i): [number, number] => {
      if (!Array.isArray(e) || e.length !== 2 || !finite(e[0]) || !isCount(e[1]) || e[1] === 0) throw badInput(`${at}.values.${i} must be [value, count ≥ 1].`);
      return [e[0], e[1]];
    });
    if (values.some((v, i) => i > 0 && v[0] <= values![i - 1]![0])) throw badInput(`${at}.values must be ascending, each value once.`);
    if (values[0]![0] !== min || values[values.length - 1]![0] !== max) throw badInput(`${at}.values: the first and last values must be min and max.`);
    if (sum(values.map((v) => v[1])) !== count)
      throw badInput(`${at}.values counts add up to ${sum(values.map((v) => v[1]))}, not count ${count}; they must add up to count.`);
  }
  return { kind: 'numeric', count, nulls: r.nulls as number, min, max, histogram: { edges, counts }, values };
}

/** Stores a version's profile in the version's transaction: the one given (already checked), else one from its sample. */
export async function storeProfile(
  tx: Tx,
  versionId: string,
  columns: string[],
  given: DatasetProfile | undefined,
  sample: Record<string, unknown>[] | null | undefined,
): Promise<void> {
  const source: 'given' | 'sample' = given ? 'given' : 'sample';
  const profile = given ?? (sample?.length ? profileSample(columns, sample) : null);
  if (!profile || !Object.keys(profile).length) return;
  await tx
    .insert(datasetProfiles)
    .values(Object.entries(profile).map(([column, p]) => ({ datasetVersionId: versionId, column, profile: p as unknown as Record<string, unknown>, source })));
}

export interface ReadableProfile {
  dataset: string;
  version: number;
  /** Only columns the caller may preview that have a profile; any other column is simply absent. */
  columns: { column: string; profile: ColumnProfile }[];
}

/** Who reads: a person's identity and grants decide the clearance (the preview rule), or columns given outright. */
export type ProfileReader = { identity: Identity; grants: Grants };

/**
 * The profile of a dataset version, per column, only the columns the reader may preview (a withheld column is
 * answered exactly like a column with no profile: absent). A missing dataset or version is NOT_FOUND; the read
 * is audited like a preview, with the columns shown.
 */
export async function readProfile(
  db: Db,
  reader: ProfileReader,
  dataset: string,
  version: number,
  options: { audit?: boolean } = {},
): Promise<ReadableProfile> {
  const row = await findDataset(db, dataset);
  const [v] = await db
    .select({ id: datasetVersions.id, columns: datasetVersions.columns })
    .from(datasetVersions)
    .where(and(eq(datasetVersions.datasetId, row.id), eq(datasetVersions.version, version)));
  if (!v) throw notFound(`Dataset ${dataset} has no version ${version}; \`atelier dataset show ${dataset}\` lists its versions.`);
  const readable = new Set(
    await readableColumns(
      db,
      reader,
      dataset,
      row.id,
      v.columns.map((c) => c.name),
    ),
  );
  const stored = await db.select().from(datasetProfiles).where(eq(datasetProfiles.datasetVersionId, v.id));
  const columns = v.columns
    .map((c) => c.name)
    .filter((c) => readable.has(c))
    .flatMap((c) => {
      const s = stored.find((p) => p.column === c);
      return s ? [{ column: c, profile: s.profile as unknown as ColumnProfile }] : [];
    });
  if (options.audit !== false)
    await audit(db, {
      identity: reader.identity,
      action: 'data.profile',
      decision: 'allow',
      subject: `dataset:${dataset}`,
      rule: `columns within the ${clearanceOf(reader.identity, reader.grants)} read policy`,
      details: { version, shown: columns.map((c) => c.column) },
    });
  return { dataset, version, columns };
}

/** The columns of `all` a reader may preview (its clearance against each column's current label). */
export async function readableColumns(db: Db | Tx, reader: ProfileReader, dataset: string, datasetId: string, all: string[]): Promise<string[]> {
  const labels = await labelsOf(db, datasetId, all);
  const ability = defineColumnAbility(clearanceOf(reader.identity, reader.grants), [{ dataset, labels }]);
  return permittedColumns(ability, dataset, all);
}
