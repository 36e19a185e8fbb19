// Follows one container's log (follow + timestamps) and survives broken streams: it reconnects with sinceSeconds
// reaching a little before the last line it saw and drops the lines it already has by their timestamps.
import type { IncomingMessage } from 'node:http';
import { backoffMs, errorMessage, type KubeClient, type Sleep, toKubeError } from './api';
import { CONTAINER_NAME } from './manifest';

/** Where the container is, as far as the pod watch knows. */
export type ContainerProgress = 'waiting' | 'running' | 'terminated' | 'gone';

export interface LogFollowerOptions {
  client: KubeClient;
  pod: string;
  clock: () => number;
  sleep: Sleep;
  backoff: { baseMs: number; maxMs: number };
  /** Seconds added to sinceSeconds on a resume, for clock skew between us and the node. */
  resumeMarginSeconds: number;
  state: () => ContainerProgress;
  /** Resolves when the pod changes (the watch saw an event), so a waiting follower looks again. */
  changed: () => Promise<void>;
  onLine: (line: string) => void;
  onNote: (message: string) => void;
}

export interface LogFollower {
  /** Resolves once the log has been read to its end (the container ended) or the follower was stopped. */
  readonly done: Promise<void>;
  readonly stats: { connections: number; duplicatesDropped: number };
  stop(): void;
}

export function followLog(options: LogFollowerOptions): LogFollower {
  const stopper = new AbortController();
  const stats = { connections: 0, duplicatesDropped: 0 };
  /** The newest timestamp read (ns since the epoch) and the lines read at exactly that instant. */
  let last: { ns: bigint; lines: Set<string> } | undefined;

  const accept = (raw: string) => {
    const space = raw.indexOf(' ');
    const ns = space > 0 ? parseTimestamp(raw.slice(0, space)) : undefined;
    if (ns === undefined) {
      options.onLine(raw); // no timestamp (an old kubelet, a proxy): nothing to dedupe by
      return;
    }
    const text = raw.slice(space + 1);
    if (last && (ns < last.ns || (ns === last.ns && last.lines.has(text)))) {
      stats.duplicatesDropped++;
      return;
    }
    if (!last || ns > last.ns) last = { ns, lines: new Set() };
    last.lines.add(text);
    options.onLine(text);
  };

  async function readStream(res: IncomingMessage): Promise<'ended' | 'broken'> {
    return new Promise((resolve) => {
      let buffered = '';
      let settled = false;
      const settle = (how: 'ended' | 'broken') => {
        if (settled) return;
        settled = true;
        resolve(how);
      };
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        buffered += chunk;
        let newline: number;
        while ((newline = buffered.indexOf('\n')) !== -1) {
          accept(buffered.slice(0, newline).replace(/\r$/, ''));
          buffered = buffered.slice(newline + 1);
        }
      });
      res.on('end', () => {
        if (buffered) accept(buffered.replace(/\r$/, ''));
        settle('ended');
      });
      res.on('error', () => settle('broken'));
      res.on('close', () => settle(res.complete ? 'ended' : 'broken'));
    });
  }

  async function run() {
    let failures = 0;
    while (!stopper.signal.aborted) {
      const state = options.state();
      if (state === 'gone') return;
      if (state === 'waiting') {
        await Promise.race([options.changed(), options.sleep(1_000, stopper.signal)]);
        continue;
      }
      const lastMs = last ? Number(last.ns / 1_000_000n) : undefined;
      const sinceSeconds = lastMs === undefined ? undefined : Math.max(1, Math.ceil((options.clock() - lastMs) / 1000) + options.resumeMarginSeconds);
      try {
        const res = await options.client.podLog(options.pod, { container: CONTAINER_NAME, follow: true, timestamps: true, sinceSeconds }, stopper.signal);
        stats.connections++;
        const how = await readStream(res);
        if (stopper.signal.aborted) return;
        if (how === 'ended' && options.state() !== 'running') return; // the container ended and so did its log
        // A follow stream that ends while the container runs was cut (API server or kubelet restart, a proxy's
        // idle timeout): resume from the last line.
        if (how === 'ended') {
          failures = 0;
          // Often the container has just ended and the watch has not said so yet: give it a moment.
          await Promise.race([options.changed(), options.sleep(backoffMs(options.backoff, 1), stopper.signal)]);
        } else {
          failures++;
          await options.sleep(backoffMs(options.backoff, failures), stopper.signal);
        }
      } catch (err) {
        if (stopper.signal.aborted) return;
        const e = toKubeError(err, `reading the log of pod ${options.pod}`);
        if (e.kind === 'not-found') return; // the pod is gone, and its log with it
        if (e.kind === 'invalid') {
          // 400 "waiting to start": the container has not started yet (or never will): look again on a change
          await Promise.race([options.changed(), options.sleep(backoffMs(options.backoff, 1), stopper.signal)]);
          if (options.state() === 'terminated' && ++failures > 3) return;
          continue;
        }
        failures++;
        if (failures === 1 || failures % 10 === 0) options.onNote(`log stream of pod ${options.pod} interrupted (${errorMessage(e)}); resuming`);
        if (options.state() !== 'running' && failures > 5) {
          options.onNote(`gave up reading the log of pod ${options.pod}: ${errorMessage(e)}`);
          return;
        }
        await options.sleep(backoffMs(options.backoff, failures), stopper.signal);
      }
    }
  }

  const done = run().catch((err) => options.onNote(`log follower of pod ${options.pod} failed: ${errorMessage(err)}`));
  return { done, stats, stop: () => stopper.abort() };
}

const TIMESTAMP = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})$/;

/** An RFC 3339 timestamp with up to nanosecond digits, as nanoseconds since the epoch (exact, unlike a Date). */
export function parseTimestamp(text: string): bigint | undefined {
  const m = TIMESTAMP.exec(text);
  if (!m) return undefined;
  const ms = Date.parse(`${m[1]}${m[3]}`);
  if (!Number.isFinite(ms)) return undefined;
  return BigInt(ms) * 1_000_000n + BigInt((m[2] ?? '').padEnd(9, '0'));
}
