// What the executors page shows changes when a host announces itself, changes what it offers or runs, starts
// draining, or goes silent past ATELIER_HOST_STALE_SECONDS, and when a hot cluster is created, gets warm or ends.
// This turns those facts into change signals (server/events/live-changes.ts, topic `executors`) where the control
// plane learns them: each replica records every heartbeat, so each compares it with the host's previous one and
// signals only a difference (a host beating every 5 s with nothing new signals nothing); a host's silence is noticed
// by one timer per host, reset by each beat. Hot-cluster changes made on one replica are signalled to all, and so
// are the pools' queues moving (tasks dispatched, started, settled), at most once a second.
import type { HostHeartbeat } from '../../plugins/protocol';
import type { LiveChanges } from '../events/live-changes';

export interface HostChanges {
  /** After a heartbeat was recorded (its host's row says what it said). */
  onHeartbeat(heartbeat: HostHeartbeat): void;
  /** After a hot cluster's change committed (created, warm, ended). */
  clusterChanged(name: string): void;
  /**
   * After tasks may have entered or left a pool's queue (dispatched, started, settled): the pools' waiting counts.
   * Signalled at most once per POOLS_EVERY_MS (the first at once, the last of a burst at the end of it).
   */
  poolsChanged(): void;
  /** Clears the silence timers (the app stopping). */
  stop(): void;
}

/** Queues move with every task: their signal is held to one a second, whatever the load. */
const POOLS_EVERY_MS = 1000;

/** Past the stale threshold, so that a page reading the hosts again sees this one as not heard from. */
const STALE_MARGIN_MS = 100;

const offered = (h: HostHeartbeat) =>
  JSON.stringify([h.host, h.capacity, h.running, h.gpus, h.draining ?? false, h.executors, h.pools, h.hotClusters, h.hotClusterExecutors, h.version]);

export function createHostChanges(changes: Pick<LiveChanges, 'touch' | 'touchHere'>, hostStaleMs: number): HostChanges {
  const hosts = new Map<string, { print: string; silence: NodeJS.Timeout }>();
  let poolsAt = 0;
  let poolsTimer: NodeJS.Timeout | null = null;
  return {
    onHeartbeat(heartbeat) {
      const key = `host:${heartbeat.hostId}`;
      const print = offered(heartbeat);
      const before = hosts.get(heartbeat.hostId);
      if (before) clearTimeout(before.silence);
      // Silent past the threshold: the host is stale (and forgotten here: a beat after that is news again).
      const silence = setTimeout(() => {
        hosts.delete(heartbeat.hostId);
        changes.touchHere('executors', [key]);
      }, hostStaleMs + STALE_MARGIN_MS);
      silence.unref();
      hosts.set(heartbeat.hostId, { print, silence });
      if (before?.print !== print) changes.touchHere('executors', [key]);
    },
    clusterChanged(name) {
      changes.touch('executors', [`cluster:${name}`]);
    },
    poolsChanged() {
      if (poolsTimer) return;
      poolsTimer = setTimeout(
        () => {
          poolsTimer = null;
          poolsAt = Date.now();
          changes.touch('executors', ['pools']);
        },
        Math.max(0, poolsAt + POOLS_EVERY_MS - Date.now()),
      );
      poolsTimer.unref();
    },
    stop() {
      if (poolsTimer) clearTimeout(poolsTimer);
      for (const { silence } of hosts.values()) clearTimeout(silence);
      hosts.clear();
    },
  };
}
