// The outbox relay: publishes committed outbox rows to the bus, oldest first, many in flight at once, and
// deletes them. Task messages are published straight after their transaction commits (publishCommitted); a
// relay pass publishes whatever that did not (a crash between the commit and the publish, a bus failure) and
// every other kind of row. Rows are claimed with SKIP LOCKED so several replicas can relay side by side; a
// row published twice (a crash before it was deleted, a pass racing a direct publish on another replica) is
// dropped by the bus's message-id dedupe. A task row may hold a batch of a pool's tasks (protocol 3): it goes out
// as one message under the row's id whoever publishes it, so the dedupe holds for batches too; a bus that cannot
// carry batches gets its tasks one by one, each under its own id.
import { sql } from 'drizzle-orm';
import type { Bus } from '../../plugins/bus/types';
import { type CancelMessage, type ExecutorEvent, isTaskBatch, type TaskBatch, type TaskMessage, taskMessageId } from '../../plugins/protocol';
import { arrayOf } from '../db/arrays';
import { type Db, queryRows } from '../db/client';
import { kickedLoop } from '../lifecycle/kicked-loop';

export interface OutboxRelay {
  start(): void;
  /** Ask for a relay pass soon (after a transaction that wrote outbox rows has committed). */
  kick(): void;
  /**
   * Publishes task messages whose outbox rows just committed, all at once, then deletes the rows the bus took.
   * What it could not publish stays for a relay pass. Never throws.
   */
  publishCommitted(messages: { id: number; pool: string; msgId: string; payload: TaskMessage | TaskBatch }[]): void;
  /** Relays until the outbox is empty and no direct publish is in flight. */
  drain(): Promise<void>;
  stop(): Promise<void>;
}

interface Row {
  id: number;
  kind: 'task' | 'cancel' | 'event';
  pool: string | null;
  msg_id: string;
  payload: unknown;
}

export function createOutboxRelay(options: { db: Db; bus: Bus; batchSize?: number; pollMs?: number; onError?: (error: unknown) => void }): OutboxRelay {
  const { db, bus } = options;
  const batchSize = options.batchSize ?? 500;
  /** Rows this process is publishing directly: its own passes leave them alone. */
  const direct = new Set<number>();
  const directDone = new Set<Promise<void>>();

  const publishTasks = async (pool: string, payload: TaskMessage | TaskBatch, msgId: string) => {
    if (!isTaskBatch(payload)) return bus.publishTask(pool, payload, msgId);
    if (bus.publishTasks) return bus.publishTasks(pool, payload.tasks, msgId);
    await Promise.all(payload.tasks.map((t) => bus.publishTask(pool, t, taskMessageId(t.taskId, t.attempt))));
  };
  const publish = (row: Row) =>
    row.kind === 'task'
      ? publishTasks(row.pool!, row.payload as TaskMessage | TaskBatch, row.msg_id)
      : row.kind === 'event'
        ? bus.publishEvent(row.payload as ExecutorEvent, row.msg_id)
        : bus.publishCancel(row.payload as CancelMessage);
  const remove = (ids: number[]) => db.execute(sql`delete from outbox where id = any(${arrayOf(ids, 'bigint')})`);

  const relayOnce = async (): Promise<number> =>
    db.transaction(async (tx) => {
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

  const loop = kickedLoop({
    pass: relayOnce,
    batchSize,
    pollMs: options.pollMs ?? 1000,
    onError: (error) => options.onError?.(error),
  });

  async function publishDirect(messages: Parameters<OutboxRelay['publishCommitted']>[0]) {
    // Every publish in flight at once, acknowledged together: one round trip for the lot, not one per message.
    const outcomes = await Promise.allSettled(messages.map((m) => publishTasks(m.pool, m.payload, m.msgId)));
    const published = messages.filter((_, i) => outcomes[i]!.status === 'fulfilled').map((m) => m.id);
    try {
      if (published.length) await remove(published);
    } catch (error) {
      options.onError?.(error); // the rows stay: a relay pass publishes them again, and the bus drops the repeats
    } finally {
      for (const m of messages) direct.delete(m.id);
    }
    if (published.length < messages.length) {
      const failed = outcomes.find((o) => o.status === 'rejected') as PromiseRejectedResult;
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
    async drain() {
      await Promise.all([...directDone]);
      await loop.drain();
    },
    async stop() {
      await Promise.all([...directDone]);
      await loop.stop();
    },
  };
}
