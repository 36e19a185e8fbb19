// Signals: the events triggers start workflows on. A source calls `recordSignal` inside the transaction of the change
// that caused it, so the signal exists exactly when the change does, and its unique key makes the same event recorded
// twice (a retried transaction, a redelivered hook) one row. The dispatcher (server/triggers/) reads them after the
// commit. A low folder of its own (features layer) so that governance/ and registry/ record signals without
// importing the runs layer.
import { sql } from 'drizzle-orm';
import { type Db, queryRows, type Tx } from '../db/client';
import { signals } from '../db/tables/triggers';
import type { SignalType } from '../vocabulary';

export interface SignalInput {
  type: SignalType;
  /** The owning team's id (a dataset's namespace's, a model's, a workflow's, a monitor's); null: none. */
  team: string | null;
  /** What it is about, as triggers match it: `dataset:ns/name`, `alias:ns/model@alias`, `workflow:ID`, `monitor:ID`, `trigger:ID`. */
  subject: string;
  /** Unique per event: `dataset:ID:VERSION`, `alias-event:ID`, `run:ID:succeeded`, `alert:ID`, `hook:TRIGGER:DELIVERY`. */
  key: string;
  /** Ids, names and versions only (never run data): what triggers' parameter mappings read. */
  payload: Record<string, unknown>;
}

/** Writes the signal in `tx`; returns its id (the first one's, when its key was recorded before). Kick the dispatcher after the commit. */
export async function recordSignal(tx: Db | Tx, signal: SignalInput): Promise<string> {
  const [row] = await tx
    .insert(signals)
    .values({ type: signal.type, teamId: signal.team, subject: signal.subject, key: signal.key, payload: signal.payload })
    .onConflictDoUpdate({ target: signals.key, set: { key: signal.key } })
    .returning({ id: signals.id });
  return row!.id;
}

/** What a trigger on a dataset matches: `dataset:ns/name`. */
export const datasetSubject = (namespace: string, name: string) => `dataset:${namespace}/${name}`;
/** What a trigger on an alias matches: `alias:ns/model@alias`. */
export const aliasSubject = (model: string, alias: string) => `alias:${model}@${alias}`;
export const workflowSubject = (workflowId: string) => `workflow:${workflowId}`;
export const monitorSubject = (monitorId: string) => `monitor:${monitorId}`;
export const hookSubject = (triggerId: string) => `trigger:${triggerId}`;

/**
 * Deletes handled signals (with their triggers' firings) created more than `days` ago, a batch at a time so no
 * statement holds many rows; unhandled ones stay whatever their age. A key recorded again after its signal was
 * pruned is a new signal: keep `days` longer than any sender's redelivery window. Returns how many went.
 */
export async function pruneHandledSignals(db: Db, days: number, batch = 5_000): Promise<number> {
  let total = 0;
  for (;;) {
    const [row] = await queryRows<{ n: number | string }>(
      db,
      sql`with gone as (
        delete from signals where id in (
          select id from signals where created_at < now() - ${`${days} days`}::interval and handled_at is not null limit ${batch}
        ) returning 1
      ) select count(*) as n from gone`,
    );
    const n = Number(row?.n ?? 0);
    total += n;
    if (n < batch) return total;
  }
}
