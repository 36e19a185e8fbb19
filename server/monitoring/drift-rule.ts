// The DRIFT rule's measurement: which two versions of which dataset it compares (a DATASET target's newest against
// its baseline version; a model version's or alias's training version, as its lineage names it, against the
// dataset's newest), and their drift over stored profiles through `driftOf`, read as the monitor's creator within
// the grants they hold now (so nothing is computed over a column the owner may not read). Anything missing (no
// second version, no profile, a dataset the owner may no longer read) measures as no data, never as a breach.
import { eq, max } from 'drizzle-orm';
import { grantsOf } from '../auth/grants';
import type { Db, Tx } from '../db/client';
import { datasets, datasetVersions } from '../db/tables/governance';
import { identities } from '../db/tables/identities';
import type { Monitor } from '../db/tables/monitoring';
import { AtelierError } from '../errors';
import { columnsRead } from '../governance/model-labels';
import { driftOf } from './drift';
import type { DriftRule, Measured } from './rules';
import { monitoredVersionId } from './targets';

const noData: Measured = { current: null, baseline: null };

async function newestVersion(db: Db | Tx, datasetId: string): Promise<number | null> {
  const [row] = await db
    .select({ v: max(datasetVersions.version) })
    .from(datasetVersions)
    .where(eq(datasetVersions.datasetId, datasetId));
  return row?.v ?? null;
}

/** The dataset and the two versions a DRIFT rule compares now, or null when there are not two to compare. */
export async function driftPair(db: Db | Tx, monitor: Monitor, rule: DriftRule): Promise<{ dataset: string; version: number; baselineVersion: number } | null> {
  if (monitor.targetKind === 'DATASET') {
    const [ds] = await db.select().from(datasets).where(eq(datasets.id, monitor.targetId));
    if (!ds) return null;
    const version = await newestVersion(db, ds.id);
    if (version === null) return null;
    const baselineVersion = rule.baselineVersion ?? version - 1;
    if (baselineVersion < 1 || baselineVersion === version) return null;
    return { dataset: `${ds.namespace}/${ds.name}`, version, baselineVersion };
  }
  const versionId = await monitoredVersionId(db, monitor);
  if (!versionId) return null;
  const read = (await columnsRead(db, [versionId])).get(versionId) ?? [];
  const names = [...new Set(read.map((r) => r.dataset))];
  const dataset = rule.dataset ?? (names.length === 1 ? names[0]! : null);
  const trained = read.filter((r) => r.dataset === dataset);
  if (!dataset || !trained.length) return null;
  const baselineVersion = Math.max(...trained.map((r) => r.version));
  const version = await newestVersion(db, trained[0]!.datasetId);
  if (version === null || version === baselineVersion) return null;
  return { dataset, version, baselineVersion };
}

/**
 * A DRIFT rule's measurement: `current` is how many watched columns cross a threshold, `drift` names them. Read as
 * the monitor's creator with their grants now; not audited per evaluation (the monitor's creation was, and an
 * alert names what it found).
 */
export async function measureDrift(db: Db | Tx, monitor: Monitor, rule: DriftRule): Promise<Measured> {
  const pair = await driftPair(db, monitor, rule);
  if (!pair || !monitor.createdBy) return noData;
  const [owner] = await db.select().from(identities).where(eq(identities.id, monitor.createdBy));
  if (!owner) return noData;
  const reader = { identity: owner, grants: await grantsOf(db, owner) };
  const t = rule.thresholds;
  try {
    const result = await driftOf(
      db as Db,
      reader,
      {
        ...pair,
        columns: rule.columns ?? undefined,
        thresholds: {
          psi: t.psi ?? undefined,
          ks: t.ks ?? undefined,
          chiSquarePValue: t.chiSquarePValue ?? undefined,
          jensenShannon: t.jensenShannon ?? undefined,
        },
      },
      { audit: false },
    );
    const columns = result.columns.map((c) => ({ column: c.column, breaches: c.breaches }));
    if (!columns.length) return noData;
    return { current: columns.filter((c) => c.breaches.length).length, baseline: null, drift: { ...pair, columns } };
  } catch (error) {
    // A version or dataset gone, or no longer readable by the owner: nothing to measure (never a breach).
    if (error instanceof AtelierError && (error.code === 'NOT_FOUND' || error.code === 'FORBIDDEN')) return noData;
    throw error;
  }
}
