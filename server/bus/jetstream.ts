// The NATS JetStream bus for real deployments: owns the TASKS and EVENTS streams, their durable pull consumers
// and the core-NATS cancel broadcast. Written for nats-server 2.9 (one filter subject per consumer, no batch publish).
import { AckPolicy, DeliverPolicy, type JetStreamManager, jetstream, jetstreamManager, RetentionPolicy, StorageType } from '@nats-io/jetstream';
import { connect, nanos } from '@nats-io/transport-node';
import { splitBundle } from '../../plugins/bus/bundle';
import { BUS_DEFAULTS, BUS_NAMES } from '../../plugins/bus/defaults';
import { DEFAULT_MAX_PAYLOAD_BYTES, packWithin } from '../../plugins/bus/payload-limit';
import { splitTaskBatch, tasksIn } from '../../plugins/bus/task-batch';
import type { Bus, Delivery, Subscription } from '../../plugins/bus/types';
import { Batcher, retryDelayMs, taskConsumerName } from '../../plugins/bus/util';
import type { CancelMessage, ControlTopics, EventBundle, ExecutorEvent, TaskBatch, TaskMessage } from '../../plugins/protocol';
import { redactUrl } from '../../plugins/redact-url';
import { traceTaskHop, tracing } from '../../plugins/trace';
import { claimMethods } from './jetstream-claims';
import { PullSubscription } from './jetstream-pull';
import { isApiError, streamKeeper, streamMissing, subjectToken } from './jetstream-streams';
import { taskStoreMethods } from './jetstream-task-store';
import { natsConnectError, natsConnectOptions } from './nats-connect';

export interface JetStreamBusOptions {
  /** nats://host:port, or several separated by commas. */
  url: string;
  /** Connection name shown by the server's monitoring. */
  name?: string;
  /** The streams' duplicate_window: publishing a msgId seen within it is dropped. Default 2 min. */
  dedupeWindowMs?: number;
  /**
   * Isolates a bus on a shared server: streams become `<prefix>_TASKS`/`<prefix>_EVENTS` and subjects
   * `<prefix>.tasks.>` and so on, instead of `TASKS` and `atelier.tasks.>`.
   */
  streamPrefix?: string;
  /** How long events are kept (the EVENTS stream's max_age). Default 7 days. */
  eventMaxAgeMs?: number;
  /** How long silence on a consumer's open pull requests means the server lost them (default 15 s). */
  pullSilenceMs?: number;
}

// Flow control is per subscription, on the client; the server-side cap only guards against a runaway client.
const SERVER_MAX_ACK_PENDING = 20_000;

const API_CONSUMER_NOT_FOUND = 10014;
const API_WORKQUEUE_CONSUMER_NOT_UNIQUE = 10100;

export async function createJetStreamBus(options: JetStreamBusOptions): Promise<Bus> {
  const prefix = options.streamPrefix === undefined ? undefined : subjectToken(options.streamPrefix);
  const root = prefix ?? BUS_NAMES.root;
  const streams = {
    tasks: prefix ? `${prefix}_${BUS_NAMES.tasksStream}` : BUS_NAMES.tasksStream,
    events: prefix ? `${prefix}_${BUS_NAMES.eventsStream}` : BUS_NAMES.eventsStream,
  };
  const subjects = {
    tasks: (pool: string) => `${root}.tasks.${subjectToken(pool)}`,
    events: (runId: string) => `${root}.events.${subjectToken(runId)}`,
    cancel: `${root}.control.cancel`,
    claim: `${root}.control.claim`,
    // Protocol 5's batches: a subject of their own, which only control planes that read them serve.
    claims: `${root}.control.claims`,
    control: (topic: keyof ControlTopics) => `${root}.control.${topic}`,
    feed: `${root}.feed`,
  };
  const dedupeWindow = nanos(options.dedupeWindowMs ?? BUS_DEFAULTS.dedupeWindowMs);

  // noAsyncTraces: otherwise the client allocates an Error (with its stack) for every request, and every
  // acknowledged publish and confirmed ack is a request; that was 9% of the control plane's CPU at 2,000 tasks.
  const nc = await connect({ ...natsConnectOptions(options.url), name: options.name ?? 'atelier', maxReconnectAttempts: -1, noAsyncTraces: true }).catch(
    (error: Error) => {
      throw natsConnectError(error, redactUrl(options.url));
    },
  );
  let jsm: JetStreamManager;
  let keeper: ReturnType<typeof streamKeeper>;
  try {
    jsm = await jetstreamManager(nc).catch((error: Error) => {
      throw /jetstream.*not enabled|not.*jetstream/i.test(error.message)
        ? new Error(
            `NATS at ${redactUrl(options.url)} has no JetStream (${error.message}): start nats-server with -js (or a jetstream {} block in its configuration).`,
          )
        : error;
    });
    keeper = streamKeeper(jsm, [
      { name: streams.tasks, subjects: [`${root}.tasks.>`], retention: RetentionPolicy.Workqueue, storage: StorageType.File, duplicate_window: dedupeWindow },
      {
        name: streams.events,
        subjects: [`${root}.events.>`],
        retention: RetentionPolicy.Limits,
        storage: StorageType.File,
        duplicate_window: dedupeWindow,
        max_age: nanos(options.eventMaxAgeMs ?? BUS_DEFAULTS.eventMaxAgeMs),
      },
    ]);
    await keeper.restore();
  } catch (err) {
    await nc.close();
    throw err;
  }
  const js = jetstream(nc);
  /** The largest message a pull may bring, as the server counts it: a payload (headers in it) of max_payload, its subjects. */
  const largestMessage = () => (nc.info?.max_payload ?? DEFAULT_MAX_PAYLOAD_BYTES) + 4096;
  /** A publish that finds its stream gone (nats-server started again without its store) makes it anew, then is sent again. */
  const publish = (subject: string, data: string, opts?: { msgID: string }) =>
    js.publish(subject, data, opts).catch(async (err: unknown) => {
      if (!streamMissing(err)) throw err;
      await keeper.restore();
      return js.publish(subject, data, opts);
    });

  const pullers = new Set<PullSubscription>();
  const subscriptions = new Set<Subscription>();
  let closed = false;

  /** Told after a reconnect: what core NATS carried while the connection was down is gone. */
  const resyncs = new Set<() => void>();
  // Pull requests die with a connection; after a reconnect every consumer asks again (its consumer made anew if the
  // server lost it).
  void (async () => {
    for await (const status of nc.status()) {
      if (status.type !== 'reconnect') continue;
      for (const puller of pullers) puller.reconnected();
      for (const resync of resyncs) {
        try {
          resync();
        } catch {
          // one failing listener must not keep the others from hearing it
        }
      }
    }
  })().catch(() => undefined);

  /** Makes the durable consumer unless it is there as configured; true when it had to make it. */
  async function ensureConsumer(stream: string, name: string, filter: string, ackWaitMs: number, pool?: string): Promise<boolean> {
    const settings = { ack_wait: nanos(ackWaitMs), max_ack_pending: SERVER_MAX_ACK_PENDING };
    try {
      const info = await jsm.consumers.info(stream, name);
      if (info.config.filter_subject !== filter) {
        throw new Error(`consumer ${name} on stream ${stream} reads ${info.config.filter_subject ?? 'everything'}, not ${filter}`);
      }
      if (info.config.ack_wait !== settings.ack_wait || info.config.max_ack_pending !== settings.max_ack_pending) {
        await jsm.consumers.update(stream, name, settings);
      }
      return false;
    } catch (err) {
      if (streamMissing(err)) await keeper.restore();
      else if (!isApiError(err, API_CONSUMER_NOT_FOUND)) throw err;
    }
    try {
      // Adding a durable that a peer created meanwhile with the same config is a no-op on the server.
      await jsm.consumers.add(stream, {
        durable_name: name,
        filter_subject: filter,
        ack_policy: AckPolicy.Explicit,
        deliver_policy: DeliverPolicy.All,
        max_deliver: -1,
        ...settings,
      });
      return true;
    } catch (err) {
      if (pool !== undefined && isApiError(err, API_WORKQUEUE_CONSUMER_NOT_UNIQUE)) {
        throw new Error(
          `pool "${pool}" is already consumed by another durable: a work queue allows one consumer per pool, so every host must use the same durable name`,
          { cause: err },
        );
      }
      throw err;
    }
  }

  function track(puller: PullSubscription, onStop?: () => void): Subscription {
    pullers.add(puller);
    const subscription: Subscription = {
      async stop() {
        pullers.delete(puller);
        subscriptions.delete(subscription);
        onStop?.();
        await puller.stop();
      },
    };
    subscriptions.add(subscription);
    return subscription;
  }

  /** A core-NATS subscription to a broadcast subject: JSON payloads, a throwing handler never ends it. */
  async function subscribeBroadcast<T>(subject: string, handler: (message: T) => void, wanted?: () => boolean): Promise<Subscription> {
    assertOpen();
    const sub = nc.subscribe(subject, {
      callback: (err, msg) => {
        if (err || (wanted && !wanted())) return;
        let message: T;
        try {
          message = msg.json<T>();
        } catch {
          return;
        }
        try {
          handler(message);
        } catch {
          // A failing handler must not take the subscription down.
        }
      },
    });
    return trackCore(sub);
  }

  /** A core-NATS subscription, resolved once the server has it (so a message published right after is not missed). */
  async function trackCore(sub: ReturnType<typeof nc.subscribe>): Promise<Subscription> {
    await nc.flush();
    const subscription: Subscription = {
      async stop() {
        subscriptions.delete(subscription);
        if (!sub.isClosed()) sub.unsubscribe();
      },
    };
    subscriptions.add(subscription);
    return subscription;
  }

  function assertOpen() {
    if (closed) throw new Error('the JetStream bus is closed');
  }

  return {
    kind: 'jetstream',

    async publishTask(pool, message, msgId) {
      assertOpen();
      await publish(subjects.tasks(pool), JSON.stringify(message), { msgID: msgId });
    },

    async publishTasks(pool, messages, msgId, text) {
      assertOpen();
      if (!messages.length) return;
      const batch: TaskBatch = { tasks: messages };
      await publish(subjects.tasks(pool), text ?? JSON.stringify(batch), { msgID: msgId });
    },

    async consumeTasks(pool, handler, consumeOptions) {
      assertOpen();
      const name = taskConsumerName(pool, consumeOptions.durable);
      const ackWaitMs = consumeOptions.ackWaitMs ?? BUS_DEFAULTS.ackWaitMs;
      const ensure = () => ensureConsumer(streams.tasks, name, subjects.tasks(pool), ackWaitMs, pool);
      await ensure();
      const puller = new PullSubscription({
        nc,
        silenceMs: options.pullSilenceMs,
        stream: streams.tasks,
        consumer: name,
        maxInFlight: consumeOptions.maxInFlight ?? BUS_DEFAULTS.taskInFlight,
        maxInFlightBytes: consumeOptions.maxInFlightBytes,
        largestMessage,
        ackWaitMs,
        // A lost task ack reruns a finished attempt, so task acks wait for the server's confirmation.
        confirmAcks: true,
        recover: ensure,
        // A batch (protocol 3) becomes one delivery per task, and takes as many in-flight slots as it has tasks.
        weigh: tasksIn,
        onDelivery: (delivery) => {
          for (const member of splitTaskBatch(delivery)) void runTaskHandler(handler, member);
        },
      });
      return track(puller);
    },

    async publishEvent(event, msgId) {
      assertOpen();
      await publish(subjects.events(event.runId), JSON.stringify(event), msgId === undefined ? undefined : { msgID: msgId });
    },

    async publishEvents(events, msgId, payload) {
      assertOpen();
      if (!events.length) return;
      const bundle: EventBundle = { bundle: events };
      await publish(subjects.events(events[0]!.runId), payload ?? JSON.stringify(bundle), { msgID: msgId });
    },

    async consumeEvents(handler, consumeOptions) {
      assertOpen();
      const name = subjectToken(consumeOptions.durable);
      const ackWaitMs = consumeOptions.ackWaitMs ?? BUS_DEFAULTS.ackWaitMs;
      const ensure = () => ensureConsumer(streams.events, name, `${root}.events.>`, ackWaitMs);
      await ensure();
      const batcher = new Batcher<Delivery<ExecutorEvent> & { readonly settled: boolean }>(
        consumeOptions.maxBatch ?? BUS_DEFAULTS.maxBatch,
        (delivery) => delivery.settled,
        async (batch) => {
          try {
            await handler(batch);
          } catch {
            for (const delivery of batch) if (!delivery.settled) delivery.nak(retryDelayMs(delivery.redeliveryCount));
          }
        },
      );
      const puller = new PullSubscription({
        nc,
        silenceMs: options.pullSilenceMs,
        stream: streams.events,
        consumer: name,
        maxInFlight: consumeOptions.maxInFlight ?? BUS_DEFAULTS.eventInFlight,
        maxInFlightBytes: consumeOptions.maxInFlightBytes,
        largestMessage,
        ackWaitMs,
        // Events are recorded idempotently: a lost ack only costs a redelivery, so acks are not confirmed.
        confirmAcks: false,
        recover: ensure,
        // A bundle (protocol 2) becomes one delivery per event; the message is acked once all of them are.
        onDelivery: (delivery) => {
          const members = splitBundle(delivery);
          // A bundle may hold several attempts' events (protocol 7): each task's first event in it marks its hop.
          if (tracing()) {
            let last: string | undefined;
            for (const { data } of members) if (data.taskId !== last) traceTaskHop('control plane: event delivered', data.runId, (last = data.taskId));
          }
          consumeOptions.admit?.(members.map((m) => m.data));
          for (const member of members) batcher.add(member);
        },
      });
      return track(puller, () => batcher.clear());
    },

    maxPayloadBytes: () => nc.info?.max_payload ?? DEFAULT_MAX_PAYLOAD_BYTES,

    async eventBacklog(durable) {
      assertOpen();
      const [stream, consumer] = await Promise.all([
        jsm.streams.info(streams.events),
        jsm.consumers.info(streams.events, subjectToken(durable)).catch((err) => {
          if (isApiError(err, API_CONSUMER_NOT_FOUND)) return undefined;
          throw err;
        }),
      ]);
      const published = stream.state.last_seq;
      return { published, recorded: consumer ? consumer.ack_floor.stream_seq : stream.state.first_seq - 1 };
    },

    ...taskStoreMethods({ jsm, stream: streams.tasks, subjects: `${root}.tasks.>`, keeper, assertOpen }),

    ...claimMethods({ nc, subjects, queue: `${root}-control-plane`, track: trackCore, assertOpen }),

    async publishCancel(message) {
      assertOpen();
      nc.publish(subjects.cancel, JSON.stringify(message));
      await nc.flush();
    },

    subscribeCancel(handler) {
      return subscribeBroadcast<CancelMessage>(subjects.cancel, handler);
    },

    async publishControl(topic, message) {
      assertOpen();
      nc.publish(subjects.control(topic), JSON.stringify(message));
      await nc.flush();
    },

    subscribeControl(topic, handler) {
      return subscribeBroadcast(subjects.control(topic), handler);
    },

    publishFeed(events, tooLarge) {
      if (closed || nc.isClosed()) return;
      // Split to fit the server's max_payload (a 10,000-task run's statuses do not fit one message).
      for (const message of packWithin(events, nc.info?.max_payload ?? DEFAULT_MAX_PAYLOAD_BYTES, tooLarge)) {
        try {
          nc.publish(subjects.feed, message);
        } catch {
          // Best effort, after a commit: what is lost is read from the store by the feed's checks.
        }
      }
    },

    async subscribeFeed(handler, onResync, wanted) {
      const subscription = await subscribeBroadcast<unknown[]>(subjects.feed, handler, wanted);
      if (!onResync) return subscription;
      const resync = () => onResync();
      resyncs.add(resync);
      return {
        async stop() {
          resyncs.delete(resync);
          await subscription.stop();
        },
      };
    },

    async close() {
      if (closed) return;
      closed = true;
      await Promise.all([...subscriptions].map((s) => s.stop()));
      if (!nc.isClosed()) await nc.drain();
    },
  };
}

async function runTaskHandler(handler: (delivery: Delivery<TaskMessage>) => Promise<void>, delivery: Delivery<TaskMessage> & { readonly settled: boolean }) {
  try {
    await handler(delivery);
  } catch {
    if (!delivery.settled) delivery.nak(retryDelayMs(delivery.redeliveryCount));
  }
}
