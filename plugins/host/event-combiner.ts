// The host's one combiner of event messages (protocol 7): the messages its attempts' reporters hand over within one
// short window, for the same run, go as one bus message (an EventBundle of several attempts' events) instead of one
// each, so S1's host makes one acknowledged publish for many no-op attempts rather than one per attempt. The reporter
// (reporter.ts) decides what one attempt's message is; this file only decides which of them travel together.
import type { Bus } from '../bus/types';
import type { ExecutorEvent } from '../protocol';

/**
 * How long a message waits for others of its run: 0 (the default) until the host's event loop has run what is
 * ready now (a setImmediate), so a task batch's attempts that end in the same turn share a message and a lone attempt
 * waits for nothing but the current turn (docs/performance.md, session 33, measured both).
 */
export const COMBINE_MS = 0;
/**
 * Most attempts' messages in one bus message: the control plane holds up to its event consumer's in-flight count of
 * messages (BUS_DEFAULTS.eventInFlight), so a message's events are bounded to keep what that holds near today's.
 */
export const MAX_COMBINED = 64;

/** One attempt's message as its reporter made it: its events (in seq order), their JSON and the id it goes under alone. */
export interface EventMessage {
  events: ExecutorEvent[];
  /**
   * The events' JSON as array elements, comma-joined (`elementsJson(events)`): `JSON.stringify(events[0])` for one
   * event, `bundleJson(events)` less its `{"bundle":[`…`]}` for several.
   */
  elements: string;
  id: string;
}

/**
 * The bus message an attempt's message went in. `send` publishes it (again, after a failure) as it was made, the same
 * bytes under the same id: a message regrouped under an id the bus had already seen would be dropped as a repeat,
 * losing the events it added. A publish in flight is shared by every attempt in the message, and one that succeeded
 * is not made again.
 */
export interface CombinedMessage {
  send(): Promise<void>;
}

export interface EventCombiner {
  /** Takes `message` of `runId` into the run's open bus message (or a new one); its `send` resolves once published. */
  add(runId: string, message: EventMessage): CombinedMessage;
  /** Publishes every open message now: what an attempt sends alone after it must not overtake it. */
  flush(): void;
}

export interface EventCombinerOptions {
  bus: Pick<Bus, 'publishEvent' | 'publishEvents'>;
  /** Most bytes one message may carry: the bus's max_payload less room for headers (the reporter's maxMessageBytes). */
  maxBytes: () => number;
  /** How long a message waits for others of its run (default COMBINE_MS; 0: the current turn of the event loop). */
  windowMs?: number;
  maxCombined?: number;
}

const BUNDLE_OPEN = '{"bundle":[';
const BUNDLE_CLOSE = ']}';

class Combined implements CombinedMessage {
  readonly messages: EventMessage[] = [];
  /**
   * At least the characters of the bundle's JSON so far (each at most 3 bytes as UTF-8): only a message that could be
   * over the limit is measured. Counts each message's elements and a comma before each: a byte over, never under.
   */
  chars = BUNDLE_OPEN.length + BUNDLE_CLOSE.length;
  private publish: (() => Promise<void>) | undefined;
  private inFlight: Promise<void> | undefined;
  private done = false;
  /** Until it is sealed, every `send` waits for its first publish. */
  private first: { promise: Promise<void>; resolve: () => void; reject: (err: unknown) => void } | undefined;

  constructor(private readonly bus: EventCombinerOptions['bus']) {}

  /** Fixes what the message is (its bytes and id, for good) and makes its first publish. */
  seal() {
    this.publish = this.made();
    const first = this.first;
    this.first = undefined;
    const sent = this.send();
    // A failure is every attempt's in it to retry (their reporters call `send` again), not this call's.
    if (first) sent.then(first.resolve, first.reject);
    else sent.catch(() => undefined);
  }

  send(): Promise<void> {
    if (this.done) return Promise.resolve();
    if (!this.publish) {
      if (!this.first) {
        let resolve!: () => void;
        let reject!: (err: unknown) => void;
        const promise = new Promise<void>((res, rej) => {
          resolve = res;
          reject = rej;
        });
        this.first = { promise, resolve, reject };
      }
      return this.first.promise;
    }
    this.inFlight ??= this.publish().then(
      () => {
        this.done = true;
        this.inFlight = undefined;
      },
      (err) => {
        this.inFlight = undefined;
        throw err;
      },
    );
    return this.inFlight;
  }

  /** The publish this message is: alone, an attempt's message goes as it would without a combiner. */
  private made(): () => Promise<void> {
    const { bus, messages } = this;
    if (messages.length === 1) {
      const [only] = messages as [EventMessage];
      if (only.events.length === 1) return () => bus.publishEvent(only.events[0]!, only.id);
      const json = `${BUNDLE_OPEN}${only.elements}${BUNDLE_CLOSE}`;
      return () => bus.publishEvents!(only.events, only.id, json);
    }
    const events = messages.flatMap((m) => m.events);
    const payload = `${BUNDLE_OPEN}${messages.map((m) => m.elements).join(',')}${BUNDLE_CLOSE}`;
    // Deterministic for the message it is: its first event's id (an execution's own) and its events' count.
    const id = `${messages[0]!.id}+${events.length}`;
    return () => bus.publishEvents!(events, id, payload);
  }
}

export function createEventCombiner(options: EventCombinerOptions): EventCombiner {
  const { bus, maxBytes } = options;
  const windowMs = options.windowMs ?? COMBINE_MS;
  const maxCombined = options.maxCombined ?? MAX_COMBINED;
  const open = new Map<string, Combined>();
  let timer: NodeJS.Immediate | NodeJS.Timeout | undefined;

  const flush = () => {
    if (timer !== undefined) {
      if (windowMs > 0) clearTimeout(timer as NodeJS.Timeout);
      else clearImmediate(timer as NodeJS.Immediate);
      timer = undefined;
    }
    if (!open.size) return;
    const sealing = [...open.values()];
    open.clear();
    for (const combined of sealing) combined.seal();
  };

  const fitsWith = (combined: Combined, elements: string): boolean => {
    const max = maxBytes();
    if ((combined.chars + 1 + elements.length) * 3 <= max) return true;
    let bytes = BUNDLE_OPEN.length + BUNDLE_CLOSE.length + Buffer.byteLength(elements);
    for (const m of combined.messages) bytes += 1 + Buffer.byteLength(m.elements);
    return bytes <= max;
  };

  return {
    add(runId, message) {
      if (!bus.publishEvents) throw new Error('the event combiner needs a bus that carries bundles (Bus.publishEvents)');
      let combined = open.get(runId);
      if (combined && (combined.messages.length >= maxCombined || !fitsWith(combined, message.elements))) {
        open.delete(runId);
        combined.seal();
        combined = undefined;
      }
      if (!combined) {
        combined = new Combined(bus);
        open.set(runId, combined);
      }
      combined.chars += 1 + message.elements.length;
      combined.messages.push(message);
      timer ??= windowMs > 0 ? setTimeout(flush, windowMs) : setImmediate(flush);
      return combined;
    },
    flush,
  };
}
