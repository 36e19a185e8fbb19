// The in-process bus's durable consumers: stored messages, their live deliveries and the subscriptions holding
// them, with JetStream's ack-wait, nak-delay and redelivery-first rules (see memory.ts for the bus around them).
import { BUS_DEFAULTS } from './defaults';
import type { Delivery } from './types';
import { Deque } from './util';

/** One stored message as one durable consumer sees it. Payloads stay JSON so each delivery decodes a fresh copy. */
export class Tracked {
  deliveries = 0;
  /** The delivery that currently holds the message, if any. */
  live: Live | undefined;
  done = false;
  delay: ReturnType<typeof setTimeout> | undefined;
  constructor(
    readonly seq: number,
    readonly payload: string,
  ) {}
}

export class Live implements Delivery<unknown> {
  readonly data: unknown;
  readonly redeliveryCount: number;
  /** The subscription's slot is given back (ack, nak, term, ack-wait expiry or the subscription stopping). */
  settled = false;
  timer: ReturnType<typeof setTimeout> | undefined;
  constructor(
    private readonly consumer: DurableConsumer,
    readonly tracked: Tracked,
    readonly sub: Sub,
  ) {
    this.data = JSON.parse(tracked.payload);
    this.redeliveryCount = tracked.deliveries - 1;
  }
  async ack() {
    this.consumer.finish(this);
  }
  nak(delayMs?: number) {
    this.consumer.giveBack(this, delayMs ?? 0);
  }
  working() {
    if (this.tracked.live === this && !this.settled) this.timer?.refresh();
  }
  term() {
    this.consumer.finish(this);
  }
}

export class Sub {
  inFlight = 0;
  /** What the messages held take: their JSON text's length (ConsumeOptions.maxInFlightBytes). */
  inFlightBytes = 0;
  readonly lives = new Set<Live>();
  constructor(
    readonly maxInFlight: number,
    readonly sink: (delivery: Live) => void,
    /** None: bounded by the count alone. One message is always let in, however large, when nothing is held. */
    readonly maxInFlightBytes?: number,
  ) {}

  /** Whether a message of `bytes` may be handed to this subscription now. */
  fits(bytes: number): boolean {
    if (this.inFlight >= this.maxInFlight) return false;
    return this.maxInFlightBytes === undefined || this.inFlight === 0 || this.inFlightBytes + bytes <= this.maxInFlightBytes;
  }
}

/** What a message takes against a subscription's byte bound: its JSON text, as held (and decoded once per delivery). */
const sizeOf = (tracked: Tracked) => tracked.payload.length;

/**
 * A durable consumer: hands messages from its source to attached subscriptions, one holder at a time, and takes
 * them back on nak, ack-wait expiry or a stopped subscription. Redeliveries go before new messages, as in JetStream.
 */
export class DurableConsumer {
  ackWaitMs: number = BUS_DEFAULTS.ackWaitMs;
  private readonly subs: Sub[] = [];
  private nextSub = 0;
  private readonly redeliver = new Deque<Tracked>();
  /** A new message taken from the source that no subscription had the byte room for yet: the next one handed out. */
  private waiting: Tracked | undefined;
  /** Delivered and not yet acked, in first-delivery order, which is sequence order. */
  private readonly pending = new Map<number, Tracked>();
  private scheduled = false;
  private closed = false;

  constructor(private readonly take: () => Tracked | undefined) {}

  attach(sub: Sub) {
    this.subs.push(sub);
    this.schedule();
  }

  detach(sub: Sub) {
    const index = this.subs.indexOf(sub);
    if (index < 0) return;
    this.subs.splice(index, 1);
    for (const live of [...sub.lives]) {
      const current = live.tracked.live === live && !live.tracked.done;
      this.release(live);
      if (!current) continue;
      live.tracked.live = undefined;
      this.requeue(live.tracked, 0);
    }
  }

  close() {
    this.closed = true;
    for (const tracked of this.pending.values()) if (tracked.delay) clearTimeout(tracked.delay);
  }

  lowestUnacked(): number | undefined {
    for (const seq of this.pending.keys()) return seq;
    return undefined;
  }

  schedule() {
    if (this.scheduled || this.closed) return;
    this.scheduled = true;
    // Deferred so a publisher never runs consumer code on its own stack, and a burst dispatches once.
    queueMicrotask(() => {
      this.scheduled = false;
      this.dispatch();
    });
  }

  private dispatch() {
    // no subscription with a free slot: nothing is taken from the source
    while (!this.closed && this.subs.some((sub) => sub.inFlight < sub.maxInFlight)) {
      const tracked = this.nextMessage();
      if (!tracked) return;
      // one that fits no subscription's byte room stays next, until a slot given back makes room
      const sub = this.pickSub(sizeOf(tracked));
      if (!sub) return;
      if (tracked === this.waiting) this.waiting = undefined;
      else this.redeliver.shift();
      this.deliver(tracked, sub);
    }
  }

  private pickSub(bytes: number): Sub | undefined {
    const n = this.subs.length;
    for (let i = 0; i < n; i++) {
      const sub = this.subs[(this.nextSub + i) % n]!;
      if (sub.fits(bytes)) {
        this.nextSub = (this.nextSub + i + 1) % n;
        return sub;
      }
    }
    return undefined;
  }

  /** The message to hand out next, left where it is (dispatch removes it once a subscription takes it). */
  private nextMessage(): Tracked | undefined {
    while (this.redeliver.peek()?.done) this.redeliver.shift();
    const redelivery = this.redeliver.peek();
    if (redelivery) return redelivery;
    if (!this.waiting) {
      this.waiting = this.take();
      if (this.waiting) this.pending.set(this.waiting.seq, this.waiting);
    }
    return this.waiting;
  }

  private deliver(tracked: Tracked, sub: Sub) {
    tracked.deliveries++;
    const live = new Live(this, tracked, sub);
    tracked.live = live;
    sub.inFlight++;
    sub.inFlightBytes += sizeOf(tracked);
    sub.lives.add(live);
    live.timer = setTimeout(() => this.giveBack(live, 0), this.ackWaitMs);
    live.timer.unref();
    sub.sink(live);
  }

  private release(live: Live) {
    if (live.settled) return;
    live.settled = true;
    clearTimeout(live.timer);
    live.sub.inFlight--;
    live.sub.inFlightBytes -= sizeOf(live.tracked);
    live.sub.lives.delete(live);
    this.schedule();
  }

  /** Ack or term. A late one from a delivery that lapsed still counts, as JetStream acks by stream sequence. */
  finish(live: Live) {
    this.release(live);
    const tracked = live.tracked;
    if (tracked.done) return;
    tracked.done = true;
    if (tracked.live) this.release(tracked.live);
    tracked.live = undefined;
    if (tracked.delay) clearTimeout(tracked.delay);
    tracked.delay = undefined;
    this.pending.delete(tracked.seq);
  }

  /** Nak or ack-wait expiry. Only the current holder can give a message back; stale calls just free the slot. */
  giveBack(live: Live, delayMs: number) {
    const tracked = live.tracked;
    const current = tracked.live === live && !tracked.done;
    this.release(live);
    if (!current) return;
    tracked.live = undefined;
    this.requeue(tracked, delayMs);
  }

  private requeue(tracked: Tracked, delayMs: number) {
    if (delayMs <= 0) {
      this.redeliver.push(tracked);
      this.schedule();
      return;
    }
    tracked.delay = setTimeout(() => {
      tracked.delay = undefined;
      if (tracked.done || this.closed) return;
      this.redeliver.push(tracked);
      this.schedule();
    }, delayMs);
    tracked.delay.unref();
  }
}
