// The outbox relay: publishes committed outbox rows to the bus, oldest first, many in flight at once, and
// marks them published. Rows are claimed with SKIP LOCKED so several replicas can relay side by side; a
// row published twice (a crash before it was marked) is dropped by the bus's message-id dedupe.
import { sql } from 'drizzle-orm';
import type { Bus } from '../../plugins/bus/types';
import type { CancelMessage, ExecutorEvent, TaskMessage } from '../../plugins/protocol';
import { type Db, queryRows } from '../db/client';
import { kickedLoop } from '../lifecycle/kicked-loop';

export interface OutboxRelay {
  start(): void;
  /** Ask for a relay pass soon (after a transaction that wrote outbox rows has committed). */
  kick(): void;
  /** Relays until the outbox is empty. */
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

  const relayOnce = async (): Promise<number> =>
    db.transaction(async (tx) => {
      const rows = await queryRows<Row>(tx, sql`select id, kind, pool, msg_id, payload from outbox order by id limit ${batchSize} for update skip locked`);
      if (!rows.length) return 0;
      await Promise.all(
        rows.map((row) =>
          row.kind === 'task'
            ? bus.publishTask(row.pool!, row.payload as TaskMessage, row.msg_id)
            : row.kind === 'event'
              ? bus.publishEvent(row.payload as ExecutorEvent, row.msg_id)
              : bus.publishCancel(row.payload as CancelMessage),
        ),
      );
      await tx.execute(sql`delete from outbox where id in ${sql.raw(`(${rows.map((r) => Number(r.id)).join(',')})`)}`);
      return rows.length;
    });

  const { start, kick, drain, stop } = kickedLoop({
    pass: relayOnce,
    batchSize,
    pollMs: options.pollMs ?? 1000,
    onError: (error) => options.onError?.(error),
  });
  return { start, kick, drain, stop };
}
