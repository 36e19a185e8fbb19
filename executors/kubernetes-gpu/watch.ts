// A resilient list → watch of one Job's pods: resumes from the last resourceVersion (bookmarks included), asks the
// server to end each watch after a while, aborts a connection that goes quiet (stall timer), re-lists on 410 Gone,
// ERROR events and malformed lines, and backs off with jitter between failures. It never gives up by itself: the
// Job GET that the executor polls is the source of truth for the end of an attempt.
import type { IncomingMessage } from 'node:http';
import { backoffMs, errorMessage, type KubeClient, type Sleep, toKubeError } from './api';
import type { PodView } from './status';

export interface PodWatchOptions {
  client: KubeClient;
  labelSelector: string;
  /** Server-side limit of one watch request; each request adds up to 25% jitter so hosts do not reconnect together. */
  timeoutSeconds: number;
  /** A watch that delivers nothing (not even a bookmark) for this long is presumed dead and reopened. */
  stallMs: number;
  backoff: { baseMs: number; maxMs: number };
  sleep: Sleep;
  /** Called after every change to the pods (and after each list). */
  onChange: () => void;
  /** Problems worth a line in the attempt's log. */
  onNote: (message: string) => void;
}

export interface PodWatchStats {
  lists: number;
  watches: number;
  /** Re-lists forced by 410 Gone (the resourceVersion fell out of the server's history). */
  expired: number;
  stalls: number;
  errors: number;
}

export interface PodWatch {
  /** Pods as they are now. */
  pods(): PodView[];
  /** Pods as they are now, and the last state of the ones deleted since the watch started. */
  history(): PodView[];
  pod(name: string): PodView | undefined;
  /** Lists the pods afresh (the caller wants the latest state before deciding an outcome). */
  relist(): Promise<void>;
  readonly stats: PodWatchStats;
  stop(): void;
}

type WatchEnd = { kind: 'closed' } | { kind: 'expired' } | { kind: 'error'; error: unknown; relist: boolean };

export function startPodWatch(options: PodWatchOptions): PodWatch {
  const { client, labelSelector } = options;
  const live = new Map<string, PodView>();
  const gone = new Map<string, PodView>();
  const stats: PodWatchStats = { lists: 0, watches: 0, expired: 0, stalls: 0, errors: 0 };
  const stopper = new AbortController();
  let resourceVersion: string | undefined;

  const upsert = (pod: PodView) => {
    if (!pod?.metadata?.name) return;
    live.set(pod.metadata.name, pod);
    gone.delete(pod.metadata.name);
  };
  const remove = (pod: PodView) => {
    if (!pod?.metadata?.name) return;
    live.delete(pod.metadata.name);
    gone.set(pod.metadata.name, pod);
  };

  async function list() {
    const result = await client.listPods(labelSelector, stopper.signal);
    for (const [name, pod] of live) if (!result.items.some((p) => p.metadata?.name === name)) gone.set(name, pod);
    live.clear();
    for (const pod of result.items) upsert(pod);
    resourceVersion = result.resourceVersion;
    stats.lists++;
    options.onChange();
  }

  async function watchOnce(): Promise<WatchEnd> {
    const connection = new AbortController();
    const abort = () => connection.abort();
    stopper.signal.addEventListener('abort', abort, { once: true });
    let stalled = false;
    let stallTimer: NodeJS.Timeout | undefined;
    const armStall = () => {
      if (stallTimer) clearTimeout(stallTimer);
      stallTimer = setTimeout(() => {
        stalled = true;
        connection.abort();
      }, options.stallMs);
    };
    try {
      armStall();
      const timeoutSeconds = Math.max(1, Math.round(options.timeoutSeconds * (1 + Math.random() * 0.25)));
      let res: IncomingMessage;
      try {
        res = await client.watchPods(labelSelector, { resourceVersion, allowWatchBookmarks: true, timeoutSeconds }, connection.signal);
      } catch (err) {
        if (stalled) return { kind: 'error', error: new Error(`no answer to a watch request within ${options.stallMs} ms`), relist: false };
        const e = toKubeError(err, 'watching pods');
        // A watch refused with 410 (rather than an ERROR event) means the same: our resourceVersion is too old.
        if (e.kind === 'gone') return { kind: 'expired' };
        return { kind: 'error', error: e, relist: false };
      }
      stats.watches++;
      return await new Promise<WatchEnd>((resolve) => {
        let buffered = '';
        let settled = false;
        const finish = (end: WatchEnd) => {
          if (settled) return;
          settled = true;
          res.destroy();
          resolve(end);
        };
        const handleLine = (line: string) => {
          if (line.trim() === '') return;
          let event: { type?: string; object?: PodView & { code?: number; message?: string; reason?: string } };
          try {
            event = JSON.parse(line);
          } catch {
            finish({ kind: 'error', error: new Error(`malformed watch event: ${line.slice(0, 120)}`), relist: true });
            return;
          }
          const object = event.object;
          switch (event.type) {
            case 'ADDED':
            case 'MODIFIED':
              if (object) upsert(object);
              break;
            case 'DELETED':
              if (object) remove(object);
              break;
            case 'BOOKMARK':
              break;
            case 'ERROR':
              if (object?.code === 410) finish({ kind: 'expired' });
              else finish({ kind: 'error', error: new Error(`watch ERROR event: ${object?.message ?? JSON.stringify(object).slice(0, 200)}`), relist: true });
              return;
            default:
              options.onNote(`ignored a watch event of unknown type ${JSON.stringify(event.type)}`);
              return;
          }
          const rv = object?.metadata?.resourceVersion;
          if (typeof rv === 'string' && rv !== '') resourceVersion = rv;
          if (event.type !== 'BOOKMARK') options.onChange();
        };
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          armStall();
          buffered += chunk;
          let newline: number;
          while (!settled && (newline = buffered.indexOf('\n')) !== -1) {
            const line = buffered.slice(0, newline);
            buffered = buffered.slice(newline + 1);
            handleLine(line);
          }
        });
        res.on('end', () => {
          if (!settled && buffered.trim()) handleLine(buffered);
          finish({ kind: 'closed' });
        });
        res.on('error', (err) => finish({ kind: 'error', error: stalled ? new Error(`the watch stalled for ${options.stallMs} ms`) : err, relist: false }));
        res.on('close', () =>
          finish(stalled ? { kind: 'error', error: new Error(`the watch stalled for ${options.stallMs} ms`), relist: false } : { kind: 'closed' }),
        );
      });
    } finally {
      if (stallTimer) clearTimeout(stallTimer);
      stopper.signal.removeEventListener('abort', abort);
      if (stalled) stats.stalls++;
    }
  }

  async function run() {
    let failures = 0;
    while (!stopper.signal.aborted) {
      try {
        if (resourceVersion === undefined) await list();
        const end = await watchOnce();
        if (stopper.signal.aborted) return;
        if (end.kind === 'closed') {
          failures = 0; // the server ended the watch as asked: resume from where we are
          continue;
        }
        if (end.kind === 'expired') {
          stats.expired++;
          resourceVersion = undefined;
          continue;
        }
        if (end.relist) resourceVersion = undefined;
        throw end.error;
      } catch (err) {
        if (stopper.signal.aborted) return;
        failures++;
        stats.errors++;
        if (failures === 1 || failures % 10 === 0) options.onNote(`pod watch interrupted (${errorMessage(err)}); reconnecting`);
        await options.sleep(backoffMs(options.backoff, failures), stopper.signal).catch(() => undefined);
      }
    }
  }

  void run();

  return {
    pods: () => [...live.values()],
    history: () => [...live.values(), ...gone.values()],
    pod: (name) => live.get(name) ?? gone.get(name),
    async relist() {
      await list();
    },
    stats,
    stop: () => stopper.abort(),
  };
}
