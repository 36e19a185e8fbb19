// The message bus between the control plane and executor hosts, part of the executor protocol. Two implementations
// honour one contract (test/bus/contract.ts): JetStream for real deployments (server/bus/jetstream.ts) and an
// in-process bus (memory.ts) for the embedded default and the executor test kit.
//
// Semantics, shared by both:
// - Tasks: a work queue per executor pool (JetStream stream TASKS, subject `atelier.tasks.<pool>`).
//   A message is delivered to one consumer at a time, redelivered if not acked within `ackWaitMs`
//   (`working()` extends that), removed once acked. Publishing twice with the same `msgId` within the
//   dedupe window delivers it once.
// - Events: an append-only stream (EVENTS, subject `atelier.events.<runId>`) read by durable consumers
//   with explicit ack; delivery is at least once, so consumers record idempotently.
// - Control: best-effort broadcast to every host (cancel requests) and, by topic, host heartbeats and hot-cluster
//   commands. Not durable: the control plane resends and hosts announce themselves again.
// - Claims: request/reply. Before running an attempt a host asks whether it is still current; one control-plane
//   replica answers, or the one named (`at`: the replica that reserved the attempt's first claim). No answer (none
//   serving, or too slow) is `undefined`: the host runs nothing and asks again.
// - Feed: best-effort broadcast of live run events to every control-plane replica.
import type { AttemptClaim, CancelMessage, ClaimAnswer, ControlTopics, ExecutorEvent, TaskMessage } from '../protocol';

export interface Delivery<T> {
  readonly data: T;
  /** How many times this message was delivered before (0 on first delivery). */
  readonly redeliveryCount: number;
  ack(): Promise<void>;
  /** Give the message back for redelivery, after `delayMs` if given. */
  nak(delayMs?: number): void;
  /** Tell the bus the message is still being worked on: resets its ack-wait timer. */
  working(): void;
  /** Never redeliver this message. */
  term(): void;
}

export interface ConsumeOptions {
  /** Durable consumer name; consumers with the same name share the work. */
  durable: string;
  /** Redeliver a message not acked (nor `working()`-extended) within this time. */
  ackWaitMs?: number;
  /** Most messages handed out and not yet acked, per subscription. */
  maxInFlight?: number;
  /**
   * Most bytes of messages handed out and not yet acked, per subscription (raised to one message of the bus's largest
   * size); none: bounded by `maxInFlight` alone. JetStream asks the server for no more (a pull's max_bytes); the
   * in-process bus, which has no largest size, counts a message's JSON text and hands out one message of any size when
   * the subscription holds none.
   */
  maxInFlightBytes?: number;
}

export interface BatchConsumeOptions extends ConsumeOptions {
  /** Most messages handed to one handler call. */
  maxBatch?: number;
  /**
   * Called with each message's events (a bundle's, or the one) as it arrives, before they wait for a batch: may shrink
   * them in place (the recorder lets go of log lines it could never keep, so they are not held meanwhile).
   */
  admit?: (events: ExecutorEvent[]) => void;
}

export interface Subscription {
  /** Stop receiving; messages in flight stay unacked and are redelivered elsewhere. */
  stop(): Promise<void>;
}

export interface Bus {
  readonly kind: 'memory' | 'jetstream';

  /** Durably enqueue a task attempt on its pool's queue. Resolves once the bus has stored it. */
  publishTask(pool: string, message: TaskMessage, msgId: string): Promise<void>;
  /**
   * Durably enqueue several task attempts of one pool as one message (protocol 3's TaskBatch), deduped by `msgId`;
   * the caller keeps it within `maxPayloadBytes`. A bus that has it also splits such messages on the consuming side
   * (plugins/bus/task-batch.ts), so `consumeTasks` handlers get one delivery per task. Optional: without it, tasks
   * are published one by one. `text`, when the caller has it, is the batch's JSON (`JSON.stringify({ tasks: messages })`):
   * a bus that sends JSON may send it as it is rather than serialize the messages again.
   */
  publishTasks?(pool: string, messages: TaskMessage[], msgId: string, text?: string): Promise<void>;
  /**
   * Take tasks from a pool's queue, one handler call per task (a batch's tasks come as deliveries of their own), at
   * most `maxInFlight` tasks at once.
   */
  consumeTasks(pool: string, handler: (delivery: Delivery<TaskMessage>) => Promise<void>, options: ConsumeOptions): Promise<Subscription>;

  /** Durably append an executor event. `msgId` (when given) dedupes republished events. */
  publishEvent(event: ExecutorEvent, msgId?: string): Promise<void>;
  /**
   * Durably append several events of one attempt as one message (protocol 2's EventBundle), deduped by `msgId`.
   * A bus that has it also splits such messages on the consuming side (plugins/bus/bundle.ts), so
   * `consumeEvents` handlers still get one delivery per event. Optional: a host without it publishes one by one.
   * `payload`: the bundle as the caller already serialized it (`JSON.stringify({ bundle: events })`, to check its
   * size against the bus's limit), sent as it is instead of serialized a second time.
   */
  publishEvents?(events: ExecutorEvent[], msgId: string, payload?: string): Promise<void>;
  /**
   * Read events in batches: the handler gets every message available (up to `maxBatch`) and acks each one
   * itself. Under light load a batch is one message (no added latency); under load batches grow.
   */
  consumeEvents(handler: (deliveries: Delivery<ExecutorEvent>[]) => Promise<void>, options: BatchConsumeOptions): Promise<Subscription>;

  /**
   * How far a durable event consumer has recorded: `published` is the sequence number of the last event on the
   * stream, `recorded` the highest below which every event has been acked by that consumer. Once `recorded`
   * reaches a `published` read earlier, every event published before that read has been recorded.
   */
  eventBacklog(durable: string): Promise<{ published: number; recorded: number }>;

  /**
   * Since when the bus's store of task messages holds what was published to it: a task message published before
   * then is gone with the store that held it (nats-server started again without its JetStream store). A bus whose
   * messages live as long as its process (the in-process bus) leaves it out.
   */
  taskStoreSince?(): Promise<Date>;

  /**
   * Of the attempts in `wanted` (keyed `taskId:attempt`, protocol.ts taskMessageId), those whose message the bus
   * holds still: published and not yet acked. A message acked (its attempt claimed, or its result published) is no
   * longer held. Reads the whole store at worst, so callers ask rarely. A bus whose messages live as long as its
   * process (the in-process bus), where no message is lost, leaves it out.
   */
  heldTaskMessages?(wanted: ReadonlySet<string>): Promise<Set<string>>;

  /**
   * The largest message the bus takes (nats-server's max_payload). A bus with no limit of its own leaves it out, and
   * callers assume DEFAULT_MAX_PAYLOAD_BYTES, so what runs embedded also runs on a default nats-server.
   */
  maxPayloadBytes?(): number;

  /**
   * Ask the control plane whether an attempt may run; `undefined` when no answer came within `timeoutMs`. `at`: ask
   * only the server that serves as that replica (serveClaims' `own`); `undefined` at once when none does (it is gone,
   * or older), as a request nobody serves is answered over NATS.
   */
  requestClaim(claim: AttemptClaim, timeoutMs: number, at?: string): Promise<ClaimAnswer | undefined>;
  /**
   * Ask several claims in one request (protocol 5's ClaimBatch): one answer per claim, in order, or `undefined` when
   * no answer came within `timeoutMs` (none serving batches: a control plane below 5). `at` as for requestClaim.
   * Optional: without it, a host asks claim by claim.
   */
  requestClaims?(claims: AttemptClaim[], timeoutMs: number, at?: string): Promise<ClaimAnswer[] | undefined>;
  /**
   * Answer claims (the control plane), single ones and batches alike: a batch's claims are handed to `handler` one by
   * one, in the same tick, and its answer goes back once all of them are answered (none if one fails). With several
   * servers, each request goes to one of them; one asked `at` a replica goes to the server whose `own` it is (a
   * subject of its own, beside the shared one: subject-safe, unique to the process).
   */
  serveClaims(handler: (claim: AttemptClaim) => Promise<ClaimAnswer>, own?: string): Promise<Subscription>;

  /** Broadcast a cancel request to every host. */
  publishCancel(message: CancelMessage): Promise<void>;
  subscribeCancel(handler: (message: CancelMessage) => void): Promise<Subscription>;

  /** Broadcast a control message on a topic to every subscriber of that topic. */
  publishControl<K extends keyof ControlTopics>(topic: K, message: ControlTopics[K]): Promise<void>;
  subscribeControl<K extends keyof ControlTopics>(topic: K, handler: (message: ControlTopics[K]) => void): Promise<Subscription>;

  /**
   * Best-effort fan-out to every control-plane replica: the live run events that subscriptions show, so a
   * subscriber sees events whichever replica recorded them. Not durable; a replica that is down misses them.
   * `onResync` is called when messages may have been missed (the connection came back after a loss), so the
   * subscriber can read what it missed from where the events are stored.
   * Never throws (it is called after a commit: the caller's change has happened). Events go in as few messages as
   * fit the bus's payload limit; one too large alone goes as `tooLarge(event)`, a reference the receiver resolves
   * from where the events are stored (left out without one: the feed's checks read what it missed).
   */
  publishFeed(events: unknown[], tooLarge?: (event: unknown) => unknown): void;
  /**
   * `wanted`, asked as each message arrives, before it is decoded: false drops it unread (no one on this replica
   * watches any run, so decoding it would serve nobody; a wide run's statuses are ~100 KB a message).
   */
  subscribeFeed(handler: (events: unknown[]) => void, onResync?: () => void, wanted?: () => boolean): Promise<Subscription>;

  close(): Promise<void>;
}
