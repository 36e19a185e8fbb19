// The event recorder: takes executor events off the bus in batches and hands them to the orchestrator (task
// state, logs, metrics, results) and the hot-cluster service; also records the hosts' heartbeats.

import type { Bus, Subscription } from '../../plugins/bus/types';
import type { ExecutorEvent, HostHeartbeat } from '../../plugins/protocol';
import { traceTaskHop, tracing } from '../../plugins/trace';
import type { Service } from '../lifecycle';
import type { Instruments } from '../metrics/instruments';

export interface EventRecorderOptions {
  bus: Bus;
  /**
   * Records a batch idempotently (delivery is at least once); returns, of the events it accepted, those of tasks on hot
   * clusters. `admitEvents`: lets go of what of a message's events no recording could keep, as it arrives.
   */
  orchestrator: { recordEvents(events: ExecutorEvent[]): Promise<{ onHotClusters: ExecutorEvent[] }>; admitEvents?(events: ExecutorEvent[]): void };
  hotClusters: { recordEvents(events: ExecutorEvent[]): Promise<void>; onHeartbeat(heartbeat: HostHeartbeat): Promise<void> };
  log: (message: string) => void;
  /** Counts the events taken again (server/metrics/instruments.ts). */
  instruments?: Pick<Instruments, 'redelivered'>;
  /** The shared consumer's ack wait (default 10 s): a test that waits it out may shorten it. */
  ackWaitMs?: number;
  /** The most bytes of events held off the bus and not yet recorded (ATELIER_EVENT_IN_FLIGHT_MB; default: no bound but the count). */
  maxInFlightBytes?: number;
}

/**
 * The durable consumer every control-plane replica shares: each event is recorded by one of them. No decision
 * depends on its ack wait (the sweep asks the bus how far it has recorded, Bus.eventBacklog); the ack wait only
 * says how soon the events a crashed replica held go to another, so it is short, and a replica still recording
 * a batch extends it.
 */
export const EVENTS_DURABLE = 'control-plane';
/**
 * `maxBatch`: a batch is one transaction with a few statements whatever its size (each planned, each a round trip, one
 * commit), then ~0.1 ms of Postgres a task; a backlog (a wide run's results) drains in fewer, larger batches. At 512
 * events (~170 no-op tasks) the fixed part was about a third of a batch.
 */
const CONSUMER = { durable: EVENTS_DURABLE, maxBatch: 2048, maxInFlight: 4096, ackWaitMs: 10_000 };
/** A batch that failed to record comes back after this long. */
const RETRY_DELAY_MS = 1000;

export function createEventRecorder(options: EventRecorderOptions): Service {
  const { bus, orchestrator, hotClusters, log } = options;
  const consumer = {
    ...CONSUMER,
    ackWaitMs: options.ackWaitMs ?? CONSUMER.ackWaitMs,
    maxInFlightBytes: options.maxInFlightBytes,
    admit: orchestrator.admitEvents && ((events: ExecutorEvent[]) => orchestrator.admitEvents!(events)),
  };
  let events: Subscription | undefined;
  let heartbeats: Subscription | undefined;
  return {
    name: 'event recorder',
    async start() {
      events = await bus.consumeEvents(async (deliveries) => {
        const working = setInterval(() => {
          for (const d of deliveries) d.working();
        }, consumer.ackWaitMs / 3);
        try {
          const batch = deliveries.map((d) => d.data);
          if (options.instruments) {
            const again = deliveries.filter((d) => d.redeliveryCount > 0).length;
            if (again) options.instruments.redelivered('event', again);
          }
          if (tracing()) for (const e of batch) traceTaskHop('control plane: recording begun', e.runId, e.taskId);
          // Stale reports the orchestrator refused change nothing anywhere.
          const { onHotClusters } = await orchestrator.recordEvents(batch);
          // Only the starts and results of tasks on a hot cluster (told apart by the recording): most batches have none.
          if (onHotClusters.length) await hotClusters.recordEvents(onHotClusters);
          // A message's members but its last answer with one shared promise: waited for once, not once an event.
          await Promise.all(new Set(deliveries.map((d) => d.ack())));
        } catch (error) {
          log(`recording ${deliveries.length} executor events failed, will retry: ${(error as Error).message}`);
          for (const d of deliveries) d.nak(RETRY_DELAY_MS);
        } finally {
          clearInterval(working);
        }
      }, consumer);
      try {
        heartbeats = await bus.subscribeControl('host-heartbeat', (heartbeat) => {
          hotClusters.onHeartbeat(heartbeat).catch((e) => log(`recording the heartbeat of host ${heartbeat.host}: ${(e as Error).message}`));
        });
      } catch (error) {
        await events.stop(); // a start that fails is not stopped: let go of what it made
        throw error;
      }
    },
    async stop() {
      await events?.stop();
      await heartbeats?.stop();
    },
  };
}
