// Test harness for the executor host: module archives built with node-tar, an in-memory artifact source, a bus
// wrapper that records publishes and acks in one timeline, and an event collector.
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as tar from 'tar';
import { createMemoryBus } from '../../plugins/bus/memory';
import type { Bus, Delivery } from '../../plugins/bus/types';
import { type ArtifactSource, createExecutorHost, type ExecutorHostOptions } from '../../plugins/host';
import type { ExecutorEvent, TaskMessage } from '../../plugins/protocol';
import { createExecutorRegistry } from '../../plugins/registry';
import type { Executor } from '../../plugins/sdk';

export type ResultEvent = Extract<ExecutorEvent, { kind: 'result' }>;

export function createScratch() {
  const root = mkdtempSync(path.join(tmpdir(), 'atelier-host-test-'));
  return { root, remove: () => rmSync(root, { recursive: true, force: true }) };
}

/** Packs `files` into a tar.gz under `root`; returns its path and digest. */
export async function buildModule(root: string, name: string, files: Record<string, string>) {
  const src = path.join(root, 'src', name);
  for (const [file, body] of Object.entries(files)) {
    await mkdir(path.dirname(path.join(src, file)), { recursive: true });
    await writeFile(path.join(src, file), body, { mode: 0o755 });
  }
  const archive = path.join(root, `${name}.tar.gz`);
  await tar.c({ gzip: true, cwd: src, portable: true, file: archive }, Object.keys(files));
  const digest = `sha256:${createHash('sha256').update(readFileSync(archive)).digest('hex')}`;
  return { archive, digest };
}

export function createArtifacts(): ArtifactSource & { add(digest: string, archive: string): void } {
  const byDigest = new Map<string, string>();
  return {
    add: (digest, archive) => void byDigest.set(digest, archive),
    async fetch(digest) {
      const found = byDigest.get(digest);
      if (!found) throw new Error(`no artifact ${digest}`);
      return found;
    },
  };
}

let taskCounter = 0;
export function makeTask(overrides: Partial<Omit<TaskMessage, 'module'>> & { module?: Partial<TaskMessage['module']> } = {}): TaskMessage {
  const n = ++taskCounter;
  const { module, ...rest } = overrides;
  return {
    taskId: `task-${n}-${Math.random().toString(36).slice(2, 8)}`,
    runId: `run-${n}`,
    attempt: 1,
    node: `node${n}`,
    pool: 'default',
    executor: 'local',
    module: { ref: 'test/mod@1.0.0', digest: 'sha256:none', entrypoint: 'main.sh', runtime: 'shell', ...module },
    parameters: {},
    inputs: {},
    timeoutMs: 20_000,
    settings: {},
    enqueuedAt: new Date().toISOString(),
    ...rest,
  };
}

/** Delegates to `bus`, writing `event:<kind>:<taskId>`, `ack:…`, `nak:…` and `working:…` to `timeline`. */
function recordingBus(bus: Bus, timeline: string[]): Bus {
  const wrap = (d: Delivery<TaskMessage>): Delivery<TaskMessage> => ({
    data: d.data,
    redeliveryCount: d.redeliveryCount,
    ack: async () => {
      timeline.push(`ack:${d.data.taskId}`);
      await d.ack();
    },
    nak: (delayMs) => {
      timeline.push(`nak:${d.data.taskId}`);
      d.nak(delayMs);
    },
    working: () => {
      timeline.push(`working:${d.data.taskId}`);
      d.working();
    },
    term: () => d.term(),
  });
  return {
    kind: bus.kind,
    publishTask: (pool, message, msgId) => bus.publishTask(pool, message, msgId),
    consumeTasks: (pool, handler, options) => bus.consumeTasks(pool, (d) => handler(wrap(d)), options),
    publishEvent: async (event, msgId) => {
      await bus.publishEvent(event, msgId);
      timeline.push(`event:${event.kind}:${event.taskId}`);
    },
    consumeEvents: (handler, options) => bus.consumeEvents(handler, options),
    eventBacklog: (durable) => bus.eventBacklog(durable),
    requestClaim: (claim, timeoutMs) => bus.requestClaim(claim, timeoutMs),
    serveClaims: (handler) => bus.serveClaims(handler),
    publishCancel: (message) => bus.publishCancel(message),
    subscribeCancel: (handler) => bus.subscribeCancel(handler),
    publishControl: (topic, message) => bus.publishControl(topic, message),
    subscribeControl: (topic, handler) => bus.subscribeControl(topic, handler),
    publishFeed: (events) => bus.publishFeed(events),
    subscribeFeed: (handler) => bus.subscribeFeed(handler),
    close: () => bus.close(),
  };
}

export async function waitFor<T>(probe: () => T | undefined | null | false, what: string, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

export type HostOverrides = Partial<Omit<ExecutorHostOptions, 'bus' | 'registry' | 'artifacts' | 'workRoot'>>;

/** A memory bus with an event collector; hosts are started on it with `startHost`. */
export async function createHostWorld(workRoot: string) {
  const bus = createMemoryBus();
  const timeline: string[] = [];
  const events: ExecutorEvent[] = [];
  const recorded = recordingBus(bus, timeline);
  const artifacts = createArtifacts();
  const collector = await bus.consumeEvents(
    async (deliveries) => {
      for (const d of deliveries) {
        events.push(d.data);
        await d.ack();
      }
    },
    { durable: 'test-collector' },
  );
  const hosts: { stop(): Promise<void> }[] = [];

  return {
    bus: recorded,
    timeline,
    events,
    artifacts,
    async startHost(executors: Executor[], overrides: HostOverrides = {}) {
      const host = createExecutorHost({
        bus: recorded,
        registry: createExecutorRegistry(executors),
        pools: ['default'],
        hostName: 'test-host',
        artifacts,
        workRoot,
        ackWaitMs: 3_000,
        heartbeatMs: 1_000,
        logBatch: { bytes: 64 * 1024, ms: 20 },
        warn: () => undefined,
        // No control plane here to claim attempts from, unless a test serves claims itself.
        verifyClaims: false,
        ...overrides,
      });
      await host.start();
      hosts.push(host);
      return host;
    },
    async submit(task: TaskMessage) {
      await recorded.publishTask(task.pool, task, `${task.taskId}:${task.attempt}`);
      return task;
    },
    eventsOf: (taskId: string) => events.filter((e) => e.taskId === taskId),
    resultOf: (taskId: string) => events.find((e): e is ResultEvent => e.kind === 'result' && e.taskId === taskId),
    async result(taskId: string, timeoutMs = 10_000) {
      const result = await waitFor(
        () => events.find((e): e is ResultEvent => e.kind === 'result' && e.taskId === taskId),
        `the result of ${taskId}`,
        timeoutMs,
      );
      // The ack follows the result's publication; wait for it so finalize has run.
      await waitFor(() => timeline.includes(`ack:${taskId}`), `the ack of ${taskId}`, timeoutMs);
      return result;
    },
    logLines: (taskId: string, stream?: 'stdout' | 'stderr') =>
      events.flatMap((e) => (e.kind === 'log' && e.taskId === taskId && (!stream || e.stream === stream) ? e.lines : [])),
    async close() {
      for (const host of hosts) await host.stop();
      await collector.stop();
      await bus.close();
    },
  };
}

export type HostWorld = Awaited<ReturnType<typeof createHostWorld>>;

/** A live (non-zombie) process with this pid exists. */
export function processAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0];
    return state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
}
