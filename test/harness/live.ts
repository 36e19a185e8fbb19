// Watching a run as a client would, for tests of the live feed: a run's events over graphql-ws or SSE (a raw
// `fetch` reader that keeps each message's `id:`), folded into the state a dashboard would show.
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';

/** `runEvents` with every event's number, resumable with `after`. */
export const RUN_EVENTS_SEQ = /* GraphQL */ `
  subscription ($runId: ID!, $after: Int) {
    runEvents(runId: $runId, after: $after) {
      __typename
      ... on RunStatusEvent { seq runStatus message }
      ... on TaskStatusEvent { seq node status attempt }
      ... on TaskProgressEvent { seq node fraction }
      ... on TaskLogEvent { seq node lines }
      ... on TaskMetricEvent { seq node }
    }
  }
`;

export interface LiveEvent {
  __typename: string;
  seq?: number;
  node?: string;
  status?: string;
  runStatus?: string;
  [field: string]: unknown;
}

/** A subscriber's view: every event it got (and over SSE each message's id), and whether the stream completed. */
export interface Watcher {
  events: LiveEvent[];
  ids: (string | undefined)[];
  /** Resolves when the stream completes; rejects on an error from the server. */
  done: Promise<void>;
  completed(): boolean;
  /** Goes away (closes the socket or aborts the request). */
  stop(): void;
}

function watcher(): { w: Watcher; finish: () => void; fail: (e: Error) => void; stopWith: (f: () => void) => void } {
  let finish!: () => void;
  let fail!: (e: Error) => void;
  let completed = false;
  let stop = () => {};
  const done = new Promise<void>((resolve, reject) => {
    finish = () => {
      completed = true;
      resolve();
    };
    fail = reject;
  });
  done.catch(() => undefined); // read by the test when it wants it
  const w: Watcher = { events: [], ids: [], done, completed: () => completed, stop: () => stop() };
  return { w, finish, fail, stopWith: (f) => (stop = f) };
}

/** Watches over graphql-ws; `onEvent` may stop it. */
export function watchWs(url: string, token: string, query: string, variables: Record<string, unknown>, onEvent?: (e: LiveEvent, w: Watcher) => void): Watcher {
  const { w, finish, fail, stopWith } = watcher();
  const client = createClient({
    url: `${url.replace(/^http/, 'ws')}/graphql`,
    webSocketImpl: WebSocket,
    connectionParams: { authorization: `Bearer ${token}` },
    retryAttempts: 0,
    lazy: true,
  });
  const off = client.subscribe<{ runEvents: LiveEvent }>(
    { query, variables },
    {
      next: (value) => {
        if (value.errors?.length) return fail(new Error(value.errors.map((e) => e.message).join('\n')));
        w.events.push(value.data!.runEvents);
        w.ids.push(undefined);
        onEvent?.(value.data!.runEvents, w);
      },
      error: (e) => fail(e instanceof Error ? e : new Error(`socket closed ${(e as { code?: number }).code ?? JSON.stringify(e)}`)),
      complete: () => {
        finish();
        void client.dispose();
      },
    },
  );
  stopWith(() => {
    off();
    void client.dispose();
  });
  return w;
}

/** Watches over SSE (a POST, as the dashboards' fetch-based clients do), sending `Last-Event-ID` when given. */
export function watchSse(
  url: string,
  token: string,
  query: string,
  variables: Record<string, unknown>,
  options: { lastEventId?: string; onEvent?: (e: LiveEvent, w: Watcher) => void } = {},
): Watcher {
  const { w, finish, fail, stopWith } = watcher();
  const abort = new AbortController();
  stopWith(() => abort.abort());
  void (async () => {
    const headers: Record<string, string> = { authorization: `Bearer ${token}`, accept: 'text/event-stream', 'content-type': 'application/json' };
    if (options.lastEventId !== undefined) headers['last-event-id'] = options.lastEventId;
    const res = await fetch(`${url}/graphql`, { method: 'POST', headers, body: JSON.stringify({ query, variables }), signal: abort.signal });
    const reader = res.body!.getReader();
    const decoder = new TextDecoder();
    let pending = '';
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      pending += decoder.decode(value, { stream: true });
      let end = pending.indexOf('\n\n');
      while (end >= 0) {
        const message = pending.slice(0, end);
        pending = pending.slice(end + 2);
        end = pending.indexOf('\n\n');
        const field = (name: string) =>
          message
            .split('\n')
            .find((line) => line.startsWith(`${name}:`))
            ?.slice(name.length + 1)
            .trim();
        const event = field('event');
        if (event === 'complete') return finish();
        if (event !== 'next') continue;
        const payload = JSON.parse(field('data')!) as { data?: { runEvents: LiveEvent }; errors?: { message: string }[] };
        if (payload.errors?.length) return fail(new Error(payload.errors.map((e) => e.message).join('\n')));
        w.events.push(payload.data!.runEvents);
        w.ids.push(field('id'));
        options.onEvent?.(payload.data!.runEvents, w);
      }
    }
    fail(new Error('the SSE stream ended without completing'));
  })().catch((error: Error) => {
    if (!abort.signal.aborted) fail(error);
  });
  return w;
}

/** The state the events leave a page showing: each task's last status, and the run's. */
export function stateOf(events: LiveEvent[]): { run: string | undefined; tasks: Record<string, string> } {
  const tasks: Record<string, string> = {};
  let run: string | undefined;
  for (const e of events) {
    if (e.__typename === 'TaskStatusEvent') tasks[e.node!] = e.status!;
    if (e.__typename === 'RunStatusEvent') run = e.runStatus;
  }
  return { run, tasks };
}

/** Waits for `done`, or gives up after `ms` (a subscriber left waiting forever is what the test is about). */
export const within = (done: Promise<void>, ms: number) =>
  Promise.race([done.then(() => true), new Promise<boolean>((resolve) => setTimeout(() => resolve(false), ms))]);
