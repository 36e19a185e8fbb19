// Deployments, live: one watcher per replica turns the change signals of deployments (the reconciler after each
// deployment it worked on, the service after each change people make; server/events/live-changes.ts) into
// CREATED / CHANGED / DELETED events for `deploymentsChanged` and `deploymentChanged`. It reads the touched
// deployments once per batch for all of this replica's subscribers and passes on only those whose visible state
// differs from what it last saw. With no subscriber it holds nothing and reads nothing. Access is each
// subscription's to decide (schema/types/deployment-live.ts).
import { inArray } from 'drizzle-orm';
import type { Db } from '../db/client';
import { type DeploymentRow, deploymentRevisions, deployments } from '../db/tables/deployments';
import { isUuid } from '../db/uuid';
import { type LiveChanges, pushStream } from '../events/live-changes';

export type DeploymentChangeKind = 'CREATED' | 'CHANGED' | 'DELETED';

export interface DeploymentChange {
  kind: DeploymentChangeKind;
  id: string;
  name: string;
  modelId: string;
  /** The owning team: who may read it (server/deployments/access.ts), also for a deletion. */
  teamId: string | null;
  /** The deployment as read now; null once deleted. */
  row: DeploymentRow | null;
  at: Date;
}

export interface DeploymentWatch {
  /** Changes from now on, until `signal` aborts; `ready` resolves once the watcher knows the state they start from. */
  stream(signal: AbortSignal): { ready: Promise<void>; events: AsyncIterableIterator<DeploymentChange> };
  /** How many streams are open on this replica (tests). */
  streams(): number;
}

interface Seen {
  print: string;
  name: string;
  modelId: string;
  teamId: string | null;
}

type RevisionPrint = { deploymentId: string; number: number; state: string; health: string | null; restarts: number };

/** What a page shows of a deployment, as one string: a change to any of it is a change. */
const fingerprint = (d: DeploymentRow, revisions: RevisionPrint[]) =>
  JSON.stringify([
    d.name,
    d.updatedAt,
    d.url,
    d.ready,
    d.message,
    d.traffic,
    d.rollout,
    d.failedOver,
    d.deletingAt,
    d.teamId,
    revisions.map((r) => [r.number, r.state, r.health, r.restarts]),
  ]);

export function createDeploymentWatch(db: Db, changes: Pick<LiveChanges, 'listen'>, onError: (error: unknown) => void): DeploymentWatch {
  const subscribers = new Set<(change: DeploymentChange) => void>();
  let known: Map<string, Seen> | null = null;
  let unlisten: (() => void) | null = null;
  // Reads run one after another, in the order the batches came.
  let work: Promise<void> = Promise.resolve();
  const enqueue = (job: () => Promise<void>) => (work = work.then(job).catch(onError));

  const read = async (ids: string[] | null) => {
    const rows = ids ? await db.select().from(deployments).where(inArray(deployments.id, ids)) : await db.select().from(deployments);
    const wanted = ids ?? rows.map((r) => r.id);
    const revisions: RevisionPrint[] = wanted.length
      ? await db
          .select({
            deploymentId: deploymentRevisions.deploymentId,
            number: deploymentRevisions.number,
            state: deploymentRevisions.state,
            health: deploymentRevisions.health,
            restarts: deploymentRevisions.restarts,
          })
          .from(deploymentRevisions)
          .where(inArray(deploymentRevisions.deploymentId, wanted))
      : [];
    const byDeployment = new Map<string, RevisionPrint[]>();
    for (const r of revisions.sort((a, b) => a.number - b.number)) {
      const list = byDeployment.get(r.deploymentId) ?? [];
      list.push(r);
      byDeployment.set(r.deploymentId, list);
    }
    return { rows, wanted, printOf: (d: DeploymentRow) => fingerprint(d, byDeployment.get(d.id) ?? []) };
  };

  const emit = (change: DeploymentChange) => {
    for (const push of subscribers) push(change);
  };

  async function check(keys: Set<string>) {
    if (!known) return;
    // Keys come from this code only, but one that is not an id must not fail the batch for every subscriber.
    const ids = [...keys].filter(isUuid);
    if (!ids.length) return;
    const { rows, wanted, printOf } = await read(ids);
    if (!known) return;
    const at = new Date();
    const byId = new Map(rows.map((r) => [r.id, r]));
    for (const id of wanted) {
      const row = byId.get(id);
      const before = known.get(id);
      if (!row) {
        if (!before) continue;
        known.delete(id);
        emit({ kind: 'DELETED', id, name: before.name, modelId: before.modelId, teamId: before.teamId, row: null, at });
        continue;
      }
      const print = printOf(row);
      if (before?.print === print) continue;
      known.set(id, { print, name: row.name, modelId: row.modelId, teamId: row.teamId });
      emit({ kind: before ? 'CHANGED' : 'CREATED', id, name: row.name, modelId: row.modelId, teamId: row.teamId, row, at });
    }
  }

  const start = () => {
    known = new Map();
    unlisten = changes.listen('deployments', (keys) => enqueue(() => check(keys)));
    enqueue(async () => {
      const { rows, printOf } = await read(null);
      if (!known) return;
      for (const row of rows) known.set(row.id, { print: printOf(row), name: row.name, modelId: row.modelId, teamId: row.teamId });
    });
  };
  const stop = () => {
    unlisten?.();
    unlisten = null;
    known = null;
  };

  return {
    streams: () => subscribers.size,
    stream(signal) {
      const { push, iterator } = pushStream<DeploymentChange>(signal);
      if (!signal.aborted) {
        if (!subscribers.size) start();
        subscribers.add(push);
        signal.addEventListener(
          'abort',
          () => {
            subscribers.delete(push);
            if (!subscribers.size) stop();
          },
          { once: true },
        );
      }
      return { ready: work, events: iterator };
    },
  };
}
