// The outbox relay: publishes committed outbox rows to the bus, oldest first, many in flight at once, and
// deletes them. Task messages are published straight after their transaction commits (publishCommitted); a
// relay pass publishes whatever that did not (a crash between the commit and the publish, a bus failure) and
// every other kind of row. Rows are claimed with SKIP LOCKED so several replicas can relay side by side; a
// row published twice (a crash before it was deleted, a pass racing a direct publish on another replica) is
// dropped by the bus's message-id dedupe. The rows of direct publishes the bus has taken are deleted by the next
// transaction that writes outbox rows, in the statement that writes them (takePublished), or after CLEANUP_DELAY_MS by
// one statement for all of them. A task row may hold a batch of a pool's tasks (protocol 3): it goes out
// as one message under the row's id whoever publishes it, so the dedupe holds for batches too; a bus that cannot
// carry batches gets its tasks one by one, each under its own id. Every id goes to the bus with the database's
// incarnation (incarnation.ts): the ids a database restored from a backup issues again are new to the bus.
import { sql } from 'drizzle-orm';
import type { Bus } from '../../plugins/bus/types';
import { type CancelMessage, type ExecutorEvent, isTaskBatch, type TaskBatch, type TaskMessage, taskMessageId } from '../../plugins/protocol';
import { traceTaskHop, tracing } from '../../plugins/trace';
import { arrayOf } from '../db/arrays';
import { type Db, queryRows } from '../db/client';
import { kickedLoop } from '../lifecycle/kicked-loop';
import type { Instruments } from '../metrics/instruments';
import { busMessageId, databaseIncarnation } from './incarnation';

/**
 * Outbox rows whose messages the bus already has, handed to one transaction to delete: told whether that transaction
 * committed (the rows are gone) or not (they go back to be deleted by another, or by a statement of their own).
 */
export interface PublishedRows {
  ids: number[];
  committed(): void;
  rolledBack(): void;
}

export interface OutboxRelay {
  start(): void;
  /** Ask for a relay pass soon (after a transaction that wrote outbox rows has committed). */
  kick(): void;
  /**
   * Publishes task messages whose outbox rows just committed, all at once; the rows the bus took are deleted soon
   * after (takePublished, or one statement for all after CLEANUP_DELAY_MS). What it could not publish stays for a
   * relay pass. Never throws.
   */
  publishCommitted(messages: { id: number; pool: string; msgId: string; payload: TaskMessage | TaskBatch; text?: string }[]): void;
  /**
   * The rows of direct publishes the bus has taken and nobody has deleted yet, for a transaction to delete with its
   * own outbox rows (dispatch.ts enqueue): one statement less per chain edge than deleting them after each publish.
   * Until told whether that transaction committed, no other transaction and no relay pass touches them.
   */
  takePublished(): PublishedRows | undefined;
  /** Relays until the outbox is empty and no direct publish is in flight (published rows no transaction has taken are deleted). */
  drain(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * How long the rows of direct publishes wait for a transaction to take them before a statement of their own deletes
 * them. A chain's next edge comes within milliseconds (hundreds on a loaded machine); a row left longer is only one
 * the relay's passes skip, and one a crash leaves behind is published again for the bus to drop.
 */
export const CLEANUP_DELAY_MS = 500;

interface Row {
  id: number;
  kind: 'task' | 'cancel' | 'event';
  pool: string | null;
  msg_id: string;
  payload: unknown;
}

export function createOutboxRelay(options: {
  db: Db;
  bus: Bus;
  batchSize?: number;
  pollMs?: number;
  /** Default CLEANUP_DELAY_MS. */
  cleanupDelayMs?: number;
  onError?: (error: unknown) => void;
  /** Observes each task message's delay from its dispatch to the bus taking it (server/metrics/instruments.ts). */
  instruments?: Pick<Instruments, 'dispatchDelays'>;
  /** The database's incarnation (default: databaseIncarnation, read once, before the first publish). */
  incarnation?: () => Promise<string>;
}): OutboxRelay {
  const { db, bus } = options;
  let incarnation: Promise<string> | undefined;
  /** The incarnation, read once (again after a failure: the publish fails, retried). */
  const readIncarnation = () =>
    (incarnation ??= (options.incarnation ?? (() => databaseIncarnation(db)))().catch((error: unknown) => {
      incarnation = undefined;
      throw error;
    }));
  /** `msgId` as the bus dedupes it: with the incarnation. */
  const busId = async (msgId: string) => busMessageId(await readIncarnation(), msgId);
  const batchSize = options.batchSize ?? 500;
  /** Rows this process is publishing directly: its own passes leave them alone. */
  const direct = new Set<number>();
  const directDone = new Set<Promise<void>>();

  const instruments = options.instruments;
  const handOver = async (pool: string, payload: TaskMessage | TaskBatch, msgId: string, text?: string) => {
    if (!isTaskBatch(payload)) return bus.publishTask(pool, payload, await busId(msgId));
    if (bus.publishTasks) return bus.publishTasks(pool, payload.tasks, await busId(msgId), text);
    await Promise.all(payload.tasks.map(async (t) => bus.publishTask(pool, t, await busId(taskMessageId(t.taskId, t.attempt)))));
  };
  const publishTasks = async (pool: string, payload: TaskMessage | TaskBatch, msgId: string, text?: string) => {
    await handOver(pool, payload, msgId, text);
    if (!instruments) return;
    // One observe per task: the dispatch delay from the dispatch's transaction (enqueuedAt) to the bus taking it.
    const now = Date.now();
    const tasks = isTaskBatch(payload) ? payload.tasks : [payload];
    instruments.dispatchDelays(tasks.map((t) => Math.max(0, (now - Date.parse(t.enqueuedAt)) / 1000)));
  };
  // A stale execution's stop goes where only hosts that key their executions listen (protocol.ts, CancelMessage.stale).
  const publishCancel = (message: CancelMessage) =>
    message.stale && message.attemptKey
      ? bus.publishControl('stale-execution', { ...message, attemptKey: message.attemptKey, stale: true })
      : bus.publishCancel(message);
  const publish = (row: Row) =>
    row.kind === 'task'
      ? publishTasks(row.pool!, row.payload as TaskMessage | TaskBatch, row.msg_id)
      : row.kind === 'event'
        ? busId(row.msg_id).then((id) => bus.publishEvent(row.payload as ExecutorEvent, id))
        : publishCancel(row.payload as CancelMessage);
  const remove = (ids: number[]) => db.execute(sql`delete from outbox where id = any(${arrayOf(ids, 'bigint')})`);

  const relayOnce = async (): Promise<number> => {
    // Read before the pass's transaction, never inside it: its first read queries `db`, which on the embedded database
    // (one connection) waits for that transaction to end, for ever (the relay's first pass after a crash hung a start).
    await readIncarnation();
    return db.transaction(async (tx) => {
      const skip = direct.size ? sql`where id <> all(${arrayOf([...direct], 'bigint')})` : sql``;
      const rows = await queryRows<Row>(
        tx,
        sql`select id, kind, pool, msg_id, payload from outbox ${skip} order by id limit ${batchSize} for update skip locked`,
      );
      if (!rows.length) return 0;
      await Promise.all(rows.map(publish));
      await tx.execute(
        sql`delete from outbox where id = any(${arrayOf(
          rows.map((r) => Number(r.id)),
          'bigint',
        )})`,
      );
      return rows.length;
    });
  };

  const loop = kickedLoop({
    pass: relayOnce,
    batchSize,
    pollMs: options.pollMs ?? 1000,
    onError: (error) => options.onError?.(error),
  });

  /** Rows whose messages the bus has taken, not yet deleted nor taken by a transaction (all in `direct` too). */
  const published = new Set<number>();
  let cleanupTimer: NodeJS.Timeout | undefined;
  /** Deletes the published rows no transaction took; one that fails leaves them to a relay pass (the bus drops repeats). */
  const cleanUp = async () => {
    clearTimeout(cleanupTimer);
    cleanupTimer = undefined;
    if (!published.size) return;
    const ids = [...published];
    published.clear();
    try {
      await remove(ids);
    } catch (error) {
      options.onError?.(error);
    } finally {
      for (const id of ids) direct.delete(id);
    }
  };
  const scheduleCleanUp = () => {
    if (cleanupTimer || !published.size) return;
    cleanupTimer = setTimeout(() => void cleanUp(), options.cleanupDelayMs ?? CLEANUP_DELAY_MS);
    cleanupTimer.unref();
  };

  async function publishDirect(messages: Parameters<OutboxRelay['publishCommitted']>[0]) {
    if (tracing())
      for (const m of messages)
        for (const t of isTaskBatch(m.payload) ? m.payload.tasks : [m.payload]) traceTaskHop('control plane: task publishing', t.runId, t.taskId);
    // Every publish in flight at once, acknowledged together: one round trip for the lot, not one per message.
    const outcomes = await Promise.allSettled(messages.map((m) => publishTasks(m.pool, m.payload, m.msgId, m.text)));
    if (tracing())
      for (const m of messages)
        for (const t of isTaskBatch(m.payload) ? m.payload.tasks : [m.payload]) traceTaskHop('control plane: task published', t.runId, t.taskId);
    for (const [i, m] of messages.entries()) {
      if (outcomes[i]!.status === 'fulfilled') published.add(m.id);
      else direct.delete(m.id); // the relay's now
    }
    scheduleCleanUp();
    const failed = outcomes.find((o) => o.status === 'rejected') as PromiseRejectedResult | undefined;
    if (failed) {
      options.onError?.(failed.reason);
      loop.kick(); // the rest now, by the relay
    }
  }

  return {
    start: loop.start,
    kick: loop.kick,
    publishCommitted(messages) {
      if (!messages.length) return;
      for (const m of messages) direct.add(m.id);
      const done = publishDirect(messages).catch((error) => options.onError?.(error));
      directDone.add(done);
      void done.finally(() => directDone.delete(done));
    },
    takePublished() {
      if (!published.size) return undefined;
      const ids = [...published];
      published.clear();
      clearTimeout(cleanupTimer);
      cleanupTimer = undefined;
      return {
        ids,
        committed: () => {
          for (const id of ids) direct.delete(id);
        },
        rolledBack: () => {
          for (const id of ids) published.add(id);
          scheduleCleanUp();
        },
      };
    },
    async drain() {
      await Promise.all([...directDone]);
      await cleanUp();
      await loop.drain();
    },
    async stop() {
      await Promise.all([...directDone]);
      await cleanUp();
      await loop.stop();
    },
  };
}
