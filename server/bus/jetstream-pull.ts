// The JetStream bus's pull subscriptions: one pull loop per subscription asking for exactly its free slots, and
// the deliveries it hands out (ack, nak, working, term over the reply subject). See jetstream.ts for the bus.
import { createInbox, type Msg, type NatsConnection, type Subscription as NatsSubscription, nanos } from '@nats-io/transport-node';
import type { Delivery } from '../../plugins/bus/types';

const PULL_EXPIRES_MS = 30_000;
const PULL_HEARTBEAT_MS = 5_000;
const SWEEP_EXPIRES_MS = 50;
const SWEEP_TIMEOUT_MS = 2_000;
const RESYNC_BACKOFF_MS = 1_000;
const ACK_TIMEOUT_MS = 5_000;

/**
 * A message's size as the server counts it against a pull request's max_bytes: subject, reply subject, headers and
 * data (what the client's messages say with size(), which the Msg type leaves out).
 */
function messageBytes(msg: Msg): number {
  const sized = msg as Msg & { size?: () => number };
  return sized.size?.() ?? msg.subject.length + msg.reply!.length + msg.data.length;
}

/** The delivery count from a `$JS.ACK` reply subject (9 tokens before server 2.10, 12 from it). */
function deliveryCount(reply: string): number {
  const tokens = reply.split('.');
  const count = Number(tokens.length === 9 ? tokens[4] : tokens[6]);
  return Number.isFinite(count) && count > 0 ? count : 1;
}

export interface PullSubscriptionOptions {
  nc: NatsConnection;
  stream: string;
  consumer: string;
  maxInFlight: number;
  ackWaitMs: number;
  confirmAcks: boolean;
  /** Re-creates the consumer when the server says it is gone; true when it had to (the server had lost it). */
  recover: () => Promise<boolean>;
  onDelivery: (delivery: JsDelivery<unknown>) => void;
  /**
   * How many of `maxInFlight` a message takes (default 1): a task batch counts its tasks, so a host holds about as
   * many tasks as it has room for, whatever the messages carry, and leaves the rest of a pool's queue to other hosts.
   */
  weigh?: (data: unknown) => number;
  /**
   * The most bytes the messages held at once may take (as the server counts them, messageBytes): each pull request
   * carries the room left as its max_bytes, so the server hands out no more, whatever the messages weigh. Raised to
   * `largestMessage` if below, so that any one message can be taken. None: bounded by `maxInFlight` alone.
   */
  maxInFlightBytes?: number;
  /** The largest message the server may hand out (its max_payload, with room for subjects): read when pulling. */
  largestMessage?: () => number;
  /** How long the server's silence on open pull requests means it lost them (default three missed heartbeats). */
  silenceMs?: number;
}

/**
 * One subscription's pull loop. It asks the server for exactly the free slots (unlike `consume()`, which
 * prefetches), so a busy host never holds tasks it has not started while their ack-wait runs out.
 *
 * nats-server 2.9 mishandles a redelivery when every waiting pull request of the consumer is expired or has lost
 * its subscriber: the message leaves the redelivery queue (it waits out another ack-wait) and the last new message
 * is delivered again as if new. So requests live long, with jittered expiry (so expiries do not line up with nak
 * delays or ack-waits), and stop() clears its requests from the server before handing messages back (see shutDown()).
 */
export class PullSubscription {
  readonly nc: NatsConnection;
  readonly ackWaitMs: number;
  readonly confirmAcks: boolean;
  private readonly nextSubject: string;
  /** Each delivery held, with its weight (PullSubscriptionOptions.weigh) and its size (messageBytes). */
  private readonly deliveries = new Map<JsDelivery<unknown>, { weight: number; bytes: number }>();
  /** What the deliveries held weigh together (see PullSubscriptionOptions.weigh). */
  private held = 0;
  /** What the deliveries held take, in bytes (see PullSubscriptionOptions.maxInFlightBytes). */
  private heldBytes = 0;
  /** Bytes the open pull requests may still bring (their max_bytes, less what each has brought). */
  private requestedBytes = 0;
  /** What a message has weighed lately (a moving average, 1 until one arrives): pulls ask for the messages that fit. */
  private meanWeight = 1;
  private weighed = false;
  private sub: NatsSubscription | undefined;
  private inbox = '';
  /** Messages asked for and not yet received, across this subscription's open pull requests. */
  private requested = 0;
  private lastHeard = Date.now();
  private stopping: Promise<void> | undefined;
  private resyncTimer: ReturnType<typeof setTimeout> | undefined;
  private pullScheduled = false;
  private readonly topUpThreshold: number;
  private readonly watchdog: ReturnType<typeof setInterval>;

  constructor(private readonly options: PullSubscriptionOptions) {
    this.nc = options.nc;
    this.ackWaitMs = options.ackWaitMs;
    this.confirmAcks = options.confirmAcks;
    this.nextSubject = `$JS.API.CONSUMER.MSG.NEXT.${options.stream}.${options.consumer}`;
    this.topUpThreshold = Math.max(1, Math.floor(options.maxInFlight / 4));
    this.open();
    // The server sends heartbeats while a request waits; silence means it lost our requests (restart, consumer
    // deleted): ask again, after making the consumer anew if it is gone. A pull for a consumer that is not there is
    // not answered at all (nats-server 2.9), so silence is all a consumer lost with the server's store ever says:
    // without `recover` here it stayed dead until its process restarted.
    const silenceMs = options.silenceMs ?? 3 * PULL_HEARTBEAT_MS;
    this.watchdog = setInterval(() => {
      if (this.requested > 0 && Date.now() - this.lastHeard > silenceMs) this.resync(true);
    }, PULL_HEARTBEAT_MS);
    this.watchdog.unref();
  }

  /**
   * Forget every open pull request and start over on a new inbox; late replies to the old one are dropped. The
   * new request is live, so the server never faces only abandoned ones.
   */
  resync(backoff = false) {
    if (this.stopping || this.resyncTimer) return;
    this.sub?.unsubscribe();
    this.sub = undefined;
    this.requested = 0;
    this.requestedBytes = 0;
    if (!backoff) {
      this.open();
      return;
    }
    this.resyncTimer = setTimeout(() => {
      void this.options
        .recover()
        .catch(() => undefined)
        .finally(() => {
          this.resyncTimer = undefined;
          if (!this.stopping) this.open();
        });
    }, RESYNC_BACKOFF_MS);
    this.resyncTimer.unref();
  }

  /**
   * After a reconnect: ask again at once, and check that the consumer is still there. A server that came back without
   * its store has lost it, and a pull for a consumer that is not there is never answered: made anew, it is asked
   * again now, not after the watchdog's 15 s of silence (every task and event waited them out after such a restart).
   */
  reconnected() {
    this.resync();
    void this.options
      .recover()
      .then((made) => {
        if (made && !this.stopping) this.resync();
      })
      .catch(() => undefined); // the server not ready yet: the watchdog's silence check remains
  }

  /** The bytes held at once, and the most they may be (undefined: no bound). */
  bytesInFlight(): { held: number; bound: number | undefined } {
    return { held: this.heldBytes, bound: this.byteBound() };
  }

  release(delivery: JsDelivery<unknown>) {
    const entry = this.deliveries.get(delivery);
    if (entry === undefined) return;
    this.deliveries.delete(delivery);
    this.held -= entry.weight;
    this.heldBytes -= entry.bytes;
    this.schedulePull();
  }

  send(subject: string, payload: string) {
    try {
      this.nc.publish(subject, payload);
    } catch {
      // The connection is closed: the server redelivers after ack-wait, which is all a nak could achieve.
    }
  }

  stop(): Promise<void> {
    this.stopping ??= this.shutDown();
    return this.stopping;
  }

  /**
   * Unsubscribing leaves our open requests on the server without a subscriber. Before handing our messages back,
   * a one-message pull from a fresh inbox makes the server walk its waiting list and drop them (see the class
   * comment); whatever that pull catches goes straight back too.
   */
  private async shutDown() {
    clearInterval(this.watchdog);
    clearTimeout(this.resyncTimer);
    const abandoned = this.sub !== undefined && this.requested > 0;
    this.sub?.unsubscribe();
    this.sub = undefined;
    this.requested = 0;
    if (abandoned && !this.nc.isClosed() && !this.nc.isDraining()) await this.sweep();
    for (const delivery of [...this.deliveries.keys()]) delivery.handBack();
    if (!this.nc.isClosed()) await this.nc.flush().catch(() => undefined);
  }

  private sweep(): Promise<void> {
    return new Promise<void>((resolve) => {
      const inbox = createInbox();
      const timer = setTimeout(done, SWEEP_TIMEOUT_MS);
      const sub = this.nc.subscribe(inbox, {
        callback: (_err, msg) => {
          if (msg?.reply) this.send(msg.reply, '-NAK');
          else if (msg?.headers?.code === 100) return;
          done();
        },
      });
      function done() {
        clearTimeout(timer);
        if (!sub.isClosed()) sub.unsubscribe();
        resolve();
      }
      try {
        this.nc.publish(this.nextSubject, JSON.stringify({ batch: 1, expires: nanos(SWEEP_EXPIRES_MS) }), { reply: inbox });
      } catch {
        done();
      }
    });
  }

  private open() {
    this.inbox = createInbox();
    this.sub = this.nc.subscribe(this.inbox, { callback: (err, msg) => this.onMessage(err, msg) });
    this.pull();
  }

  /** Acks of a whole batch free many slots in one tick: ask once for all of them. */
  private schedulePull() {
    if (this.pullScheduled) return;
    this.pullScheduled = true;
    queueMicrotask(() => {
      this.pullScheduled = false;
      this.pull();
    });
  }

  private pull() {
    if (this.stopping || !this.sub || this.nc.isClosed() || this.nc.isDraining()) return;
    // Pull requests count messages, and a message may carry many tasks: ask for as many as fit at their recent
    // weight, and for one alone until the first has arrived, so a host does not take a pool's whole queue of batches
    // with its first request.
    const room = this.options.maxInFlight - this.held;
    const fit = room > 0 ? Math.max(1, Math.floor(room / this.meanWeight)) : 0;
    const want = Math.min(this.weighed || !this.options.weigh ? fit : 1, fit) - this.requested;
    // While requests are open, top up only in sizeable steps: one small request per freed slot would flood the
    // server's waiting list (max_waiting) and cost a round trip per message.
    if (want <= 0 || (this.requested > 0 && want * this.meanWeight < this.topUpThreshold)) return;
    // The bytes left after what is held and what open requests may still bring, all of it this request's max_bytes;
    // none asked for until one largest message fits, so every request can bring at least one.
    const bound = this.byteBound();
    const byteRoom = bound === undefined ? undefined : bound - this.heldBytes - this.requestedBytes;
    if (byteRoom !== undefined && byteRoom < this.options.largestMessage!()) return;
    if (this.requested === 0) this.lastHeard = Date.now();
    this.requested += want;
    if (byteRoom !== undefined) this.requestedBytes += byteRoom;
    const expires = PULL_EXPIRES_MS * (0.9 + 0.2 * Math.random());
    const request = {
      batch: want,
      expires: nanos(Math.round(expires)),
      idle_heartbeat: nanos(PULL_HEARTBEAT_MS),
      ...(byteRoom === undefined ? {} : { max_bytes: byteRoom }),
    };
    this.nc.publish(this.nextSubject, JSON.stringify(request), { reply: this.inbox });
  }

  private onMessage(err: Error | null, msg: Msg) {
    if (this.stopping) return;
    if (err) {
      this.resync(true);
      return;
    }
    this.lastHeard = Date.now();
    if (!msg.reply) this.onStatus(msg);
    else this.onTransfer(msg, msg.reply);
  }

  /** The byte bound in force: the setting, raised to one largest message. */
  private byteBound(): number | undefined {
    const { maxInFlightBytes, largestMessage } = this.options;
    return maxInFlightBytes === undefined || !largestMessage ? undefined : Math.max(maxInFlightBytes, largestMessage());
  }

  /** `messages` and `bytes` of what open requests may bring have come, or will not come (a request ended). */
  private requestsSettled(messages: number, bytes: number) {
    this.requested = Math.max(0, this.requested - messages);
    // With no request open none may bring anything: whatever the byte count says then is gone with them.
    this.requestedBytes = this.requested === 0 ? 0 : Math.max(0, this.requestedBytes - bytes);
  }

  private onTransfer(msg: Msg, reply: string) {
    const asked = this.requested > 0;
    const bytes = messageBytes(msg);
    this.requestsSettled(1, bytes);
    const bound = this.byteBound();
    // A message we asked for is taken even when a batch before it filled the slots (the host queues its tasks);
    // only one we did not ask for (after a resync) goes straight back.
    if (!asked && (this.held >= this.options.maxInFlight || (bound !== undefined && this.heldBytes + bytes > bound))) {
      // Only after a resync can more arrive than asked for: hand the surplus straight back.
      this.send(reply, '-NAK');
      return;
    }
    let data: unknown;
    try {
      data = msg.json();
    } catch {
      // Not ours to decode: redelivering it would fail the same way forever.
      this.send(reply, '+TERM');
      this.pull();
      return;
    }
    const delivery = new JsDelivery(this, reply, data, deliveryCount(reply) - 1);
    const weight = this.options.weigh?.(data) ?? 1;
    this.deliveries.set(delivery, { weight, bytes });
    this.held += weight;
    this.heldBytes += bytes;
    this.meanWeight = this.weighed ? 0.8 * this.meanWeight + 0.2 * weight : weight;
    if (!this.weighed) {
      this.weighed = true;
      this.schedulePull(); // the first pull asked for one message: now ask for what fits
    }
    this.options.onDelivery(delivery);
  }

  private onStatus(msg: Msg) {
    const code = msg.headers?.code ?? 0;
    if (code === 100) return; // idle heartbeat
    const left = msg.headers?.get('Nats-Pending-Messages');
    // 409 "Message Size Exceeds MaxBytes": the next message is larger than what is left of the request's max_bytes.
    const bytesSpent = code === 409 && /^Message Size Exceeds MaxBytes$/i.test(msg.headers?.description ?? '');
    if ((code === 404 || code === 408 || bytesSpent) && left) {
      // A request ended (expired, or its bytes spent) with this many messages and bytes undelivered: ask again.
      this.requestsSettled(Number(left), Number(msg.headers?.get('Nats-Pending-Bytes') || 0));
      this.pull();
      return;
    }
    // Consumer deleted, too many waiting requests, leadership change, no responders: our request bookkeeping
    // is off, so start over after a pause (re-creating the consumer if it is gone).
    this.resync(true);
  }
}

export class JsDelivery<T> implements Delivery<T> {
  /** The subscription's slot is given back (ack, nak, term, local ack-wait expiry or the subscription stopping). */
  settled = false;
  private readonly timer: ReturnType<typeof setTimeout>;

  constructor(
    private readonly owner: PullSubscription,
    private readonly reply: string,
    readonly data: T,
    readonly redeliveryCount: number,
  ) {
    // Past ack-wait the server redelivers; free the slot then too, or a forgotten message would pin it forever.
    this.timer = setTimeout(() => this.settle(), owner.ackWaitMs);
    this.timer.unref();
  }

  async ack() {
    // A late ack still goes out: the server acks by stream sequence, even after a redelivery.
    this.settle();
    if (this.owner.confirmAcks) await this.owner.nc.request(this.reply, '+ACK', { timeout: ACK_TIMEOUT_MS });
    else this.owner.send(this.reply, '+ACK');
  }

  nak(delayMs?: number) {
    if (!this.settle()) return;
    this.owner.send(this.reply, delayMs && delayMs > 0 ? `-NAK ${JSON.stringify({ delay: nanos(delayMs) })}` : '-NAK');
  }

  working() {
    if (this.settled) return;
    this.owner.send(this.reply, '+WPI');
    this.timer.refresh();
  }

  term() {
    this.settle();
    this.owner.send(this.reply, '+TERM');
  }

  handBack() {
    if (this.settle()) this.owner.send(this.reply, '-NAK');
  }

  private settle(): boolean {
    if (this.settled) return false;
    this.settled = true;
    clearTimeout(this.timer);
    this.owner.release(this);
    return true;
  }
}
