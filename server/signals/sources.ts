// The signals each source records, built here so a source's own code adds one call: a dataset version (added by a
// person or written by a run's task), an alias moved or rolled back. A top-level run succeeding is written by
// server/orchestrator/run-signals.ts, in the statement that looks up its triggers. Alerts opening are recorded by
// server/monitoring/ through `recordSignal` with type `alert.opened`, subject `monitor:ID` (monitorSubject).
import { eq } from 'drizzle-orm';
import type { Db, Tx } from '../db/client';
import { namespaces } from '../db/tables/teams';
import { aliasSubject, datasetSubject, recordSignal } from './signals';

async function namespaceTeam(tx: Db | Tx, namespace: string): Promise<string | null> {
  const [row] = await tx.select({ teamId: namespaces.teamId }).from(namespaces).where(eq(namespaces.name, namespace));
  return row?.teamId ?? null;
}

export async function datasetVersionSignal(
  tx: Db | Tx,
  v: { datasetId: string; namespace: string; name: string; version: number; digest: string; producedByTaskId?: string | null },
): Promise<string> {
  return recordSignal(tx, {
    type: 'dataset.version',
    team: await namespaceTeam(tx, v.namespace),
    subject: datasetSubject(v.namespace, v.name),
    key: `dataset:${v.datasetId}:${v.version}`,
    payload: { dataset: `${v.namespace}/${v.name}`, version: v.version, digest: v.digest, producedByTaskId: v.producedByTaskId ?? null },
  });
}

export async function aliasMovedSignal(
  tx: Db | Tx,
  m: { eventId: string; namespace: string; model: string; alias: string; domain: string; from: number | null; to: number; action: string },
): Promise<string> {
  const ref = `${m.namespace}/${m.model}`;
  return recordSignal(tx, {
    type: 'alias.moved',
    team: await namespaceTeam(tx, m.namespace),
    subject: aliasSubject(ref, m.alias),
    key: `alias-event:${m.eventId}`,
    payload: { model: ref, alias: m.alias, domain: m.domain, from: m.from, to: m.to, action: m.action },
  });
}
