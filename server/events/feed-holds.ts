// Runs held back from readers of the store: a transaction whose after-commit work must be done before anyone sees its
// events (a success's model registrations, server/registry/from-tasks.ts) holds its runs from before its COMMIT until
// that work is done, as its live events wait for it. Per replica: another control plane's readers are not held.

export interface FeedHolds {
  /** Holds `runIds` until the returned function is called (calling it again does nothing). */
  hold(runIds: Iterable<string>): () => void;
  /**
   * `read` of one run's stored state, made once nothing holds the run: read again if a hold began while it ran (its
   * transaction may have committed before the read, its after-commit work not yet done).
   */
  settled<T>(runId: string, read: () => Promise<T>): Promise<T>;
}

export function createFeedHolds(): FeedHolds {
  const held = new Map<string, Set<Promise<void>>>();
  return {
    hold(runIds) {
      let release!: () => void;
      const until = new Promise<void>((resolve) => (release = resolve));
      const ids = [...new Set(runIds)];
      for (const id of ids) held.set(id, (held.get(id) ?? new Set()).add(until));
      return () => {
        release();
        for (const id of ids) if (held.get(id)?.delete(until) && !held.get(id)!.size) held.delete(id);
      };
    },
    async settled(runId, read) {
      for (;;) {
        const holds = held.get(runId);
        if (holds) await Promise.all(holds);
        const value = await read();
        if (!held.has(runId)) return value;
      }
    },
  };
}
