// The parts behind the live pages (deployments, executor hosts) as the app wires them: the change signals
// (live-changes.ts), what heartbeats, hot clusters and task queues signal (compute/host-changes.ts), and the
// deployment watcher (deployments/live.ts). One service starts and stops them.
import type { Bus } from '../plugins/bus/types';
import type { ExecutorEvent, HostHeartbeat } from '../plugins/protocol';
import { createHostChanges, type HostChanges } from './compute/host-changes';
import type { Db } from './db/client';
import { createDeploymentWatch, type DeploymentWatch } from './deployments/live';
import { createLiveChanges, type LiveChanges } from './events/live-changes';
import type { Service } from './lifecycle';

export interface LivePages {
  changes: LiveChanges;
  hosts: HostChanges;
  deploymentWatch: DeploymentWatch;
  /**
   * The event recorder's collaborators, each telling `hosts` what it recorded: a batch of executor events may move the
   * pools' queues (tasks started, settled), a heartbeat may change its host.
   */
  recording<
    O extends { recordEvents(events: ExecutorEvent[]): Promise<R>; admitEvents?(events: ExecutorEvent[]): void },
    R,
    H extends { onHeartbeat(h: HostHeartbeat): Promise<void> },
  >(
    orchestrator: O,
    hotClusters: H,
  ): { orchestrator: { recordEvents(events: ExecutorEvent[]): Promise<R>; admitEvents(events: ExecutorEvent[]): void }; hotClusters: H };
  service: Service;
}

export function createLivePages(db: Db, bus: Bus, hostStaleMs: number, log: (message: string) => void): LivePages {
  const changes = createLiveChanges(bus, (e) => log(`live changes: ${(e as Error).message}`));
  const hosts = createHostChanges(changes, hostStaleMs);
  return {
    changes,
    hosts,
    deploymentWatch: createDeploymentWatch(db, changes, (e) => log(`deployments, live: ${(e as Error).message}`)),
    recording: (orchestrator, hotClusters) => ({
      orchestrator: {
        recordEvents: (events) => orchestrator.recordEvents(events).finally(() => hosts.poolsChanged()),
        admitEvents: (events) => orchestrator.admitEvents?.(events),
      },
      hotClusters: { ...hotClusters, onHeartbeat: (h) => hotClusters.onHeartbeat(h).then(() => hosts.onHeartbeat(h)) },
    }),
    service: {
      name: 'live pages',
      start: () => changes.service.start(),
      async stop() {
        hosts.stop();
        await changes.service.stop();
      },
    },
  };
}
