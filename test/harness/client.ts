// A test's view of the API: GraphQL over real HTTP, uploads with the multipart request spec, and
// subscriptions over a real graphql-ws connection.
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';

export interface GqlResult<T = any> {
  status: number;
  data?: T;
  errors?: { message: string; extensions?: { code?: string; details?: { path?: string; message: string }[] } }[];
}

export function apiClient(baseUrl: string, token: string | null) {
  const headers = (extra: Record<string, string> = {}) => ({ ...(token ? { authorization: `Bearer ${token}` } : {}), ...extra });

  async function raw<T = any>(query: string, variables: Record<string, unknown> = {}): Promise<GqlResult<T>> {
    const res = await fetch(`${baseUrl}/graphql`, {
      method: 'POST',
      headers: headers({ 'content-type': 'application/json', accept: 'application/graphql-response+json, application/json' }),
      body: JSON.stringify({ query, variables }),
    });
    return { status: res.status, ...((await res.json()) as object) };
  }

  /** Runs an operation and returns its data, throwing with the errors when there are any. */
  async function gql<T = any>(query: string, variables: Record<string, unknown> = {}): Promise<T> {
    const result = await raw<T>(query, variables);
    if (result.errors?.length) throw Object.assign(new Error(result.errors.map((e) => `[${e.extensions?.code}] ${e.message}`).join('\n')), { result });
    return result.data!;
  }

  async function upload<T = any>(
    query: string,
    variables: Record<string, unknown>,
    fileVar: string,
    bytes: Uint8Array,
    filename = 'module.tar.gz',
  ): Promise<GqlResult<T>> {
    const form = new FormData();
    form.set('operations', JSON.stringify({ query, variables: { ...variables, [fileVar]: null } }));
    form.set('map', JSON.stringify({ 0: [`variables.${fileVar}`] }));
    form.set('0', new Blob([new Uint8Array(bytes)], { type: 'application/gzip' }), filename);
    const res = await fetch(`${baseUrl}/graphql`, { method: 'POST', headers: headers({ 'graphql-require-preflight': '1' }), body: form });
    return { status: res.status, ...((await res.json()) as object) };
  }

  /** Collects every event of a subscription until it completes (or `until` says stop). */
  function subscribe<T = any>(
    query: string,
    variables: Record<string, unknown>,
    until?: (event: T, all: T[]) => boolean,
    onEvent?: (event: T) => void,
  ): Promise<T[]> {
    const ws = createClient({
      url: `${baseUrl.replace(/^http/, 'ws')}/graphql`,
      webSocketImpl: WebSocket,
      connectionParams: token ? { authorization: `Bearer ${token}` } : {},
      retryAttempts: 0,
      lazy: true,
    });
    const events: T[] = [];
    return new Promise<T[]>((resolve, reject) => {
      const dispose = ws.subscribe<T>(
        { query, variables },
        {
          next: (value) => {
            if (value.errors?.length) {
              reject(Object.assign(new Error(value.errors.map((e) => e.message).join('\n')), { errors: value.errors }));
              return;
            }
            const event = value.data as T;
            events.push(event);
            onEvent?.(event);
            if (until?.(event, events)) {
              dispose();
              void ws.dispose();
              resolve(events);
            }
          },
          error: (error) => {
            void ws.dispose();
            // A closed socket arrives as a CloseEvent: keep its code and reason.
            const close = error as { code?: number; reason?: string };
            if (!(error instanceof Error) && typeof close?.code === 'number')
              reject(Object.assign(new Error(`socket closed ${close.code} ${close.reason ?? ''}`), { code: close.code }));
            else reject(error instanceof Error ? error : new Error(JSON.stringify(error)));
          },
          complete: () => {
            void ws.dispose();
            resolve(events);
          },
        },
      );
    });
  }

  return { raw, gql, upload, subscribe };
}

export type ApiClient = ReturnType<typeof apiClient>;

export const RUN_EVENTS = /* GraphQL */ `
  subscription ($runId: ID!) {
    runEvents(runId: $runId) {
      __typename
      ... on RunStatusEvent { runStatus message at }
      ... on TaskStatusEvent { node status attempt reason message }
      ... on TaskProgressEvent { node fraction message }
      ... on TaskLogEvent { node stream lines }
      ... on TaskMetricEvent { node metrics step }
    }
  }
`;

export const PUBLISH = /* GraphQL */ `
  mutation ($artifact: File!, $digest: String, $tags: [String!]) {
    publishModuleVersion(artifact: $artifact, digest: $digest, tags: $tags) { created version { id version digest ref } }
  }
`;
