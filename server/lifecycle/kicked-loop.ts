// A background worker that makes passes over a table when kicked (right after a commit that gave it work) and on a
// timer as the fallback: one pass at a time; a kick during a pass runs another after it; a full batch runs again at
// once. The outbox relay and the webhook delivery worker are both this, around their own pass.

export interface KickedLoop {
  start(): void;
  /** Ask for a pass soon. */
  kick(): void;
  /** Passes until one finds nothing to do. */
  drain(): Promise<void>;
  /** No more passes; resolves once the current one ends. */
  stop(): Promise<void>;
  /** Whether `stop` was called (work scheduled for later checks it). */
  stopped(): boolean;
}

export function kickedLoop(options: { pass: () => Promise<number>; batchSize: number; pollMs: number; onError: (error: unknown) => void }): KickedLoop {
  const { pass, batchSize } = options;
  let running = false;
  let again = false;
  let stopped = true;
  let current: Promise<void> = Promise.resolve();
  let timer: NodeJS.Timeout | undefined;

  const loop = async () => {
    if (running) {
      again = true;
      return;
    }
    running = true;
    try {
      do {
        again = false;
        while (!stopped && (await pass()) === batchSize) {
          // a full batch: more are probably waiting
        }
      } while (again && !stopped);
    } catch (error) {
      options.onError(error);
    } finally {
      running = false;
    }
  };

  const self: KickedLoop = {
    start() {
      stopped = false;
      timer = setInterval(() => self.kick(), options.pollMs);
      timer.unref();
      self.kick();
    },
    kick() {
      if (stopped) return;
      current = loop();
    },
    async drain() {
      await current;
      while ((await pass()) > 0) {
        // until nothing is left
      }
    },
    async stop() {
      stopped = true;
      clearInterval(timer);
      await current;
    },
    stopped: () => stopped,
  };
  return self;
}
