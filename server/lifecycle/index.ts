// The control plane's start/stop order: services start in the listed order and stop in reverse, so whatever a
// service relies on (listed before it) outlives it. Also the one periodic-job helper the services share.

/** One long-running part of the process. */
export interface Service {
  /** Names the service in errors and logs. */
  readonly name: string;
  /** Called once, after every service listed before it has started. */
  start(): Promise<void> | void;
  /** Called at most once, and only if `start` resolved; every service listed after it has stopped by then. */
  stop(): Promise<void> | void;
}

export interface Lifecycle {
  /**
   * Starts every service in order. When one fails, the ones already started are stopped (in reverse) and the
   * start's error is thrown.
   */
  start(): Promise<void>;
  /**
   * Stops the started services in reverse order; idempotent (a second call waits for the first). Every service
   * is stopped even if one fails; the first failure is thrown after the rest have stopped.
   */
  stop(): Promise<void>;
}

export function createLifecycle(services: readonly Service[]): Lifecycle {
  const started: Service[] = [];
  let starting: Promise<void> | undefined;
  let stopping: Promise<void> | undefined;

  const stopStarted = async () => {
    let firstError: unknown;
    let failed = false;
    for (const service of started.splice(0).reverse()) {
      try {
        await service.stop();
      } catch (error) {
        if (!failed) [failed, firstError] = [true, error];
      }
    }
    if (failed) throw firstError;
  };

  return {
    start() {
      if (starting) return starting;
      starting = (async () => {
        for (const service of services) {
          if (stopping) return; // stop() was called while starting: start nothing more
          try {
            await service.start();
          } catch (error) {
            await stopStarted().catch(() => {}); // the start's error is the one worth reporting
            throw error;
          }
          started.push(service);
        }
      })();
      return starting;
    },
    stop() {
      stopping ??= (async () => {
        await starting?.catch(() => {});
        await stopStarted();
      })();
      return stopping;
    },
  };
}

/**
 * A service that runs `run` every `everyMs`, never overlapping itself (a slow pass is not joined by the next);
 * stopping waits for a pass in progress. A pass's error is logged as `NAME: message (will retry)` and the next pass
 * runs as usual.
 */
export function periodic(name: string, everyMs: number, run: () => Promise<void>, log: (message: string) => void): Service {
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;
  return {
    name,
    start() {
      timer = setInterval(() => {
        if (running) return;
        running = run()
          .catch((error: unknown) => log(`${name}: ${error instanceof Error ? error.message : String(error)} (will retry)`))
          .finally(() => (running = undefined));
      }, everyMs);
      timer.unref();
    },
    async stop() {
      clearInterval(timer);
      await running;
    },
  };
}
