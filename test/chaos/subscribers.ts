// Subscribers that watch a run as a dashboard would, over graphql-ws or SSE, through whichever control plane is
// up: on a dropped connection they subscribe again (the server sends a fresh snapshot first). Their end state
// (each task's status and attempt, the run's status) is compared with the database when the suite ends.
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';

export type Transport = 'graphql-ws' | 'sse';

export interface RunWatch {
  runId: string;
  transport: Transport;
  /** When the subscriber started watching (ms since the epoch). */
  since: number;
  tasks: Map<string, { status: string; attempt: number }>;
  runStatus?: string;
  /** The server completed the stream after the run ended. */
  done: boolean;
  /** Connections after the first (a control plane went away, or a subscribe failed). */
  reconnects: number;
  lastError?: string;
  /** Resolves when done, or when `stop()` gave up on it. */
  finished: Promise<void>;
  stop(): void;
}

const QUERY = /* GraphQL */ `
  subscription ($runId: ID!) {
    runEvents(runId: $runId) {
      __typename
      ... on RunStatusEvent { runStatus }
      ... on TaskStatusEvent { node status attempt }
    }
  }
`;

const TERMINAL = new Set(['SUCCEEDED', 'FAILED', 'CANCELLED']);
type Event = { __typename: string; runStatus?: string; node?: string; status?: string; attempt?: number };

export function watchRun(runId: string, transport: Transport, pickUrl: () => string, token: string): RunWatch {
  const abort = new AbortController();
  const watch: RunWatch = {
    runId,
    transport,
    since: Date.now(),
    tasks: new Map(),
    done: false,
    reconnects: 0,
    finished: Promise.resolve(),
    stop: () => abort.abort(),
  };
  const apply = (e: Event) => {
    if (e.__typename === 'TaskStatusEvent') watch.tasks.set(e.node!, { status: e.status!, attempt: e.attempt! });
    else if (e.__typename === 'RunStatusEvent') watch.runStatus = e.runStatus;
  };
  watch.finished = (async () => {
    for (let connection = 0; !abort.signal.aborted; connection++) {
      if (connection) watch.reconnects++;
      try {
        const completed = await (transport === 'sse' ? viaSse : viaGraphqlWs)(pickUrl(), token, runId, apply, abort.signal);
        if (completed && watch.runStatus && TERMINAL.has(watch.runStatus)) {
          watch.done = true;
          return;
        }
      } catch (err) {
        watch.lastError = (err as Error).message;
      }
      await new Promise((r) => setTimeout(r, 300));
    }
  })();
  return watch;
}

/** One subscription over graphql-ws; true when the server completed it. */
function viaGraphqlWs(url: string, token: string, runId: string, apply: (e: Event) => void, signal: AbortSignal): Promise<boolean> {
  const client = createClient({
    url: `${url.replace(/^http/, 'ws')}/graphql`,
    webSocketImpl: WebSocket,
    connectionParams: { authorization: `Bearer ${token}` },
    retryAttempts: 0,
    lazy: true,
  });
  return new Promise<boolean>((resolve, reject) => {
    const onAbort = () => {
      dispose();
      void client.dispose();
      resolve(false);
    };
    const dispose = client.subscribe<Event>(
      { query: QUERY, variables: { runId } },
      {
        next: (value) => {
          if (value.errors?.length) reject(new Error(value.errors.map((e) => e.message).join('; ')));
          else if (value.data) apply((value.data as unknown as { runEvents: Event }).runEvents);
        },
        error: (error) => {
          signal.removeEventListener('abort', onAbort);
          void client.dispose();
          const close = error as { code?: number; reason?: string };
          reject(error instanceof Error ? error : new Error(`socket closed ${close?.code ?? ''} ${close?.reason ?? ''}`));
        },
        complete: () => {
          signal.removeEventListener('abort', onAbort);
          void client.dispose();
          resolve(true);
        },
      },
    );
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

/** One subscription over SSE (GraphQL over HTTP with `accept: text/event-stream`); true when it completed. */
async function viaSse(url: string, token: string, runId: string, apply: (e: Event) => void, signal: AbortSignal): Promise<boolean> {
  const res = await fetch(`${url}/graphql`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: 'text/event-stream' },
    body: JSON.stringify({ query: QUERY, variables: { runId } }),
    signal,
  }).catch((err) => {
    if (signal.aborted) return null;
    throw err;
  });
  if (!res) return false;
  if (!res.ok || !res.body) throw new Error(`SSE answered ${res.status}`);
  const decoder = new TextDecoder();
  let buffer = '';
  try {
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      buffer += decoder.decode(chunk, { stream: true });
      for (let end = buffer.indexOf('\n\n'); end >= 0; end = buffer.indexOf('\n\n')) {
        const message = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const event = /^event: (\w+)/m.exec(message)?.[1];
        const data = message
          .split('\n')
          .filter((l) => l.startsWith('data:'))
          .map((l) => l.slice(5).trimStart())
          .join('\n');
        if (event === 'complete') return true;
        if (event === 'next' && data) {
          const value = JSON.parse(data) as { data?: { runEvents: Event }; errors?: { message: string }[] };
          if (value.errors?.length) throw new Error(value.errors.map((e) => e.message).join('; '));
          if (value.data) apply(value.data.runEvents);
        }
      }
    }
  } catch (err) {
    if (signal.aborted) return false;
    throw err;
  }
  // The stream ended without `complete`: the server went away.
  return false;
}
