// Whether anything could still be delivered again once the runs have ended: a task message on the work queue (every
// message a host acked is gone from it, so one still there is unacked, or nakked to be asked again later, and will
// be redelivered), an executor event the control planes have not recorded, or an outbox row not yet published. The
// chaos suite settles once none is left, rather than after a fixed quiet time that a loaded machine may outlast.
import { jetstreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import type postgres from 'postgres';
import { BUS_NAMES } from '../../plugins/bus/defaults';
import { EVENTS_DURABLE } from '../../server/events/recorder';

export interface Undelivered {
  /** Task messages still on the work queue. */
  taskMessages: number;
  /** Executor events published and not yet acked by a control plane. */
  eventsUnrecorded: number;
  /** Outbox rows not yet published. */
  outboxRows: number;
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
        const [tasks, events, outbox] = await Promise.all([
          jsm.streams.info(BUS_NAMES.tasksStream),
          jsm.consumers.info(BUS_NAMES.eventsStream, EVENTS_DURABLE),
          sql<{ n: number }[]>`select count(*)::int as n from outbox`,
        ]);
        return { taskMessages: tasks.state.messages, eventsUnrecorded: events.num_pending + events.num_ack_pending, outboxRows: outbox[0]!.n };
      } catch {
        return undefined;
      }
    },
    async close() {
      await (await nc?.catch(() => undefined))?.close();
    },
  };
}
