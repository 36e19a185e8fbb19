// Whether anything could still be delivered again once the runs have ended: a task message the pool's consumer has
// not delivered yet or has delivered and not seen acked (a nakked one waits there to be asked again later), an
// executor event the control planes have not recorded, or an outbox row not yet published. The chaos suite settles
// once none is left, rather than after a fixed quiet time that a loaded machine may outlast. (The work queue's own
// message count is not the measure: after nats-server restarts it was seen to keep a message its consumer had
// already passed, which nothing will ever deliver again.)
import { jetstreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import type postgres from 'postgres';
import { BUS_NAMES } from '../../plugins/bus/defaults';
import { EVENTS_DURABLE } from '../../server/events/recorder';

export interface Undelivered {
  /** Task messages the pools' consumers have still to deliver, or to see acked. */
  taskMessages: number;
  /** Executor events published and not yet acked by a control plane. */
  eventsUnrecorded: number;
  /** Outbox rows not yet published. */
  outboxRows: number;
  /** The work queue's own message count (shown, not waited for). */
  queueMessages: number;
}

export const nothingLeft = (u: Undelivered | undefined) => !!u && u.taskMessages === 0 && u.eventsUnrecorded === 0 && u.outboxRows === 0;

export interface DrainWatch {
  /** What is left now; undefined when nats-server or Postgres did not answer (counts as not drained). */
  left(): Promise<Undelivered | undefined>;
  close(): Promise<void>;
}

export function watchUndelivered(natsUrl: string, sql: postgres.Sql): DrainWatch {
  let nc: Promise<NatsConnection> | undefined;
  const connection = () => {
    nc ??= connect({ servers: natsUrl, name: 'chaos-drain-watch', maxReconnectAttempts: -1 });
    nc.catch(() => (nc = undefined));
    return nc;
  };
  return {
    async left() {
      try {
        const jsm = await jetstreamManager(await connection());
        const [queue, pools, events, outbox] = await Promise.all([
          jsm.streams.info(BUS_NAMES.tasksStream),
          jsm.consumers.list(BUS_NAMES.tasksStream).next(),
          jsm.consumers.info(BUS_NAMES.eventsStream, EVENTS_DURABLE),
          sql<{ n: number }[]>`select count(*)::int as n from outbox`,
        ]);
        return {
          taskMessages: pools.reduce((n, c) => n + c.num_pending + c.num_ack_pending, 0),
          eventsUnrecorded: events.num_pending + events.num_ack_pending,
          outboxRows: outbox[0]!.n,
          queueMessages: queue.state.messages,
        };
      } catch {
        return undefined;
      }
    },
    async close() {
      await (await nc?.catch(() => undefined))?.close();
    },
  };
}
