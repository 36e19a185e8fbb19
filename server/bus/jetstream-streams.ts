// Creating and checking the JetStream streams the bus owns, and the naming rules its subjects follow.
import { JetStreamApiError, type JetStreamManager, type RetentionPolicy, type StreamConfig } from '@nats-io/jetstream';

const API_STREAM_NOT_FOUND = 10059;
const API_STREAM_NAME_IN_USE = 10058;

/** Creates the stream, or brings an existing one's subjects, dedupe window and age in line; refuses a retention change. */
export async function ensureStream(
  jsm: JetStreamManager,
  config: Partial<StreamConfig> & { name: string; subjects: string[]; retention: RetentionPolicy },
): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    let existing: StreamConfig | undefined;
    try {
      existing = (await jsm.streams.info(config.name)).config;
    } catch (err) {
      if (!isApiError(err, API_STREAM_NOT_FOUND)) throw err;
    }
    if (!existing) {
      try {
        await jsm.streams.add(config);
        return;
      } catch (err) {
        // Another process created it between our look and our add: look again.
        if (attempt === 0 && isApiError(err, API_STREAM_NAME_IN_USE)) continue;
        throw err;
      }
    }
    if (existing.retention !== config.retention) {
      throw new Error(`stream ${config.name} exists with ${existing.retention} retention, not ${config.retention}; it cannot be changed in place`);
    }
    const same =
      existing.subjects?.length === config.subjects.length &&
      config.subjects.every((s) => existing.subjects?.includes(s)) &&
      existing.duplicate_window === config.duplicate_window &&
      (config.max_age === undefined || existing.max_age === config.max_age);
    if (!same) {
      // The client merges this into the current config, so an undefined key would erase a setting.
      const { subjects, duplicate_window, max_age } = config;
      await jsm.streams.update(config.name, { subjects, duplicate_window, ...(max_age === undefined ? {} : { max_age }) });
    }
    return;
  }
}

/**
 * Keeps the bus's streams there: `restore()` creates whichever is missing (one call at a time), for a publish or a
 * consumer that found its stream gone. A nats-server started again without its store (no persistent volume, or
 * the store removed) has none, and every publish and pull failed until each process was restarted.
 */
export function streamKeeper(jsm: JetStreamManager, configs: Parameters<typeof ensureStream>[1][]): { restore(): Promise<void> } {
  let restoring: Promise<void> | undefined;
  return {
    restore() {
      restoring ??= (async () => {
        for (const config of configs) await ensureStream(jsm, config);
      })().finally(() => (restoring = undefined));
      return restoring;
    },
  };
}

/** Whether a publish or a consumer call failed because its stream is not there (JetStream answers nothing for its subject). */
export function streamMissing(err: unknown): boolean {
  return isApiError(err, API_STREAM_NOT_FOUND) || /no responders|jetstream is not enabled|stream not found/i.test((err as Error)?.message ?? '');
}

export function isApiError(err: unknown, code: number): boolean {
  return err instanceof JetStreamApiError && err.code === code;
}

/** Subject tokens and consumer names cannot hold `.`, `*`, `>` or whitespace. */
export function subjectToken(value: string): string {
  return value.replace(/[^A-Za-z0-9_-]/g, '_');
}
