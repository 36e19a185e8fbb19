// Postgres stopped under a running control plane: every request meanwhile is answered with a typed, retryable
// refusal (GraphQL UNAVAILABLE with HTTP 503, MLflow TEMPORARILY_UNAVAILABLE 503, which MLflow's client retries, and
// 503 from the other routes), and once Postgres is back the same control plane serves them, with no restart. Before,
// each was a 500: "Unexpected error." over GraphQL, INTERNAL_ERROR over MLflow, "Internal error" elsewhere. Over
// graphql-ws, a connection is closed with 1013 (try again later, which its clients retry) and an operation on an open
// socket answered UNAVAILABLE alone; before, both closed the socket with 4500, which graphql-ws clients never retry.
import { afterAll, beforeAll, expect, it, vi } from 'vitest';
import WebSocket from 'ws';
import { tokenCacheOf } from '../../server/auth/token-cache';
import { startTestApp, type TestApp } from '../harness/app';
import type { ApiClient } from '../harness/client';
import { refused } from '../harness/ports';
import { type PostgresServer, startPostgres } from '../harness/postgres';

let pg: PostgresServer;
let t: TestApp;
let alice: ApiClient & { token: string };
// Never used before the graphql-ws test: its lookup needs Postgres. So does that of a token used a moment ago: while
// the connection that hears token changes is down (Postgres stopped) nothing is served from memory
// (server/auth/token-cache.ts).
let unseen: ApiClient & { token: string };

beforeAll(async () => {
  pg = await startPostgres({ durableCommits: true, migrated: true });
  t = await startTestApp({ DATABASE_URL: pg.url, ATELIER_EMBEDDED_EXECUTOR: '0' });
  alice = await t.user('alice-pg-down');
  unseen = await t.user('unseen-pg-down');
}, 120_000);
afterAll(async () => {
  await t?.stop();
  await pg?.stop();
});

const request = async (method: string, path: string, body?: unknown, token = alice.token) => {
  const res = await fetch(`${t.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  let json: any;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, text, json };
};

const calls = {
  query: () => request('POST', '/graphql', { query: '{ experiments(first: 1) { edges { node { name } } } }' }),
  mutation: () => request('POST', '/graphql', { query: 'mutation { createTeam(name: "pg-down") { id } }' }, t.app.adminToken),
  mlflowRead: () => request('POST', '/api/2.0/mlflow/experiments/search', { max_results: 1 }),
  mlflowWrite: () => request('POST', '/api/2.0/mlflow/runs/create', {}),
  artifact: () => request('GET', `/artifacts/sha256:${'0'.repeat(64)}`),
  // An upload's token is checked before its body is read: with the database down, refused as unavailable too.
  upload: async () => {
    const form = new FormData();
    form.set('operations', JSON.stringify({ query: 'mutation ($a: File!) { publishModuleVersion(artifact: $a) { created } }', variables: { a: null } }));
    form.set('map', JSON.stringify({ 0: ['variables.a'] }));
    form.set('0', new Blob([new Uint8Array(16)]), 'm.tar.gz');
    const res = await fetch(`${t.url}/graphql`, {
      method: 'POST',
      headers: { authorization: `Bearer ${alice.token}`, 'graphql-require-preflight': '1' },
      body: form,
    });
    return { status: res.status, json: (await res.json()) as any };
  },
};

/** Postgres stopped until `meanwhile` (what the test asks while it is down) has its answers, then started again. */
async function whileDown<T>(meanwhile: () => Promise<T>): Promise<{ answers: T; restarted: Promise<void> }> {
  let answered!: () => void;
  const restarted = pg.restart('fast', new Promise<void>((resolve) => (answered = resolve)));
  try {
    while (!(await refused(pg.port))) await new Promise((r) => setTimeout(r, 20));
    return { answers: await meanwhile(), restarted };
  } finally {
    answered();
  }
}

it('answers every request with a typed retryable refusal while Postgres is down, and serves them again once it is back', async () => {
  const {
    answers: [query, mutation, mlflowRead, mlflowWrite, artifact, upload],
    restarted,
  } = await whileDown(() => Promise.all([calls.query(), calls.mutation(), calls.mlflowRead(), calls.mlflowWrite(), calls.artifact(), calls.upload()]));
  expect([upload.status, upload.json.errors?.[0]?.extensions?.code]).toEqual([503, 'UNAVAILABLE']);
  for (const gql of [query, mutation]) {
    expect(gql.status, gql.text).toBe(503);
    expect(gql.json.errors[0].extensions.code).toBe('UNAVAILABLE');
    expect(gql.json.errors[0].message).toContain('send the request again shortly');
  }
  for (const mlflow of [mlflowRead, mlflowWrite]) {
    expect(mlflow.status, mlflow.text).toBe(503);
    expect(mlflow.json.error_code).toBe('TEMPORARILY_UNAVAILABLE');
  }
  expect(artifact.status, artifact.text).toBe(503);
  expect(artifact.text).toContain('send the request again shortly');

  await restarted;
  const [queryAfter, mutationAfter] = [await calls.query(), await calls.mutation()];
  expect(queryAfter.json?.data?.experiments, queryAfter.text).toBeTruthy();
  expect(mutationAfter.json?.data?.createTeam?.id, mutationAfter.text).toBeTruthy();
  const [mlflowReadAfter, mlflowWriteAfter, artifactAfter] = [await calls.mlflowRead(), await calls.mlflowWrite(), await calls.artifact()];
  expect(mlflowReadAfter.status, mlflowReadAfter.text).toBe(200);
  expect(mlflowWriteAfter.json?.run?.info?.status, mlflowWriteAfter.text).toBe('RUNNING');
  expect(artifactAfter.status, artifactAfter.text).toBe(404);
}, 120_000);

/**
 * An operation's error code: refused before it ran (an `error` message: its token could not be looked up) or failed as
 * it ran (a `next` whose result carries the error: the socket's identity was known, the resolver's read failed).
 */
const codeOf = (m: any) => (m.type === 'error' ? m.payload[0] : m.payload.errors?.[0])?.extensions?.code;

/** A raw graphql-transport-ws socket: its messages and how it closed. */
function socket() {
  const ws = new WebSocket(`${t.url.replace(/^http/, 'ws')}/graphql`, 'graphql-transport-ws');
  const messages: any[] = [];
  const closed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)));
  ws.on('message', (data) => messages.push(JSON.parse(String(data))));
  const opened = new Promise<void>((resolve) => ws.once('open', () => resolve()));
  const send = async (message: unknown) => {
    await opened;
    ws.send(JSON.stringify(message));
  };
  const waitFor = async (test: (m: any) => boolean) => {
    for (let i = 0; i < 500 && !messages.some(test); i++) await new Promise((r) => setTimeout(r, 20));
    return messages.find(test);
  };
  return { ws, messages, closed, send, waitFor };
}

it('over graphql-ws: a connection meanwhile is closed to be retried, and an operation on an open socket answered UNAVAILABLE alone', async () => {
  const open = socket();
  await open.send({ type: 'connection_init', payload: { authorization: `Bearer ${alice.token}` } });
  expect(await open.waitFor((m) => m.type === 'connection_ack')).toBeTruthy();
  const {
    answers: [answer, freshClosed, rememberedClosed],
    restarted,
  } = await whileDown(async () => {
    await open.send({ type: 'subscribe', id: 'down', payload: { query: '{ experiments(first: 1) { edges { node { name } } } }' } });
    const fresh = socket();
    await fresh.send({ type: 'connection_init', payload: { authorization: `Bearer ${unseen.token}` } });
    // alice's token was looked up a moment ago, but once this replica has seen the connection that hears token changes
    // close, it answers nothing from memory: her new connection is refused for now like any other
    await vi.waitFor(
      async () => {
        const loads = tokenCacheOf(t.app.services.db).loads;
        await calls.query();
        expect(tokenCacheOf(t.app.services.db).loads).toBeGreaterThan(loads);
      },
      { timeout: 20_000, interval: 20 },
    );
    const remembered = socket();
    await remembered.send({ type: 'connection_init', payload: { authorization: `Bearer ${alice.token}` } });
    return [await open.waitFor((m) => m.id === 'down'), await fresh.closed, await remembered.closed] as const;
  });
  expect(codeOf(answer)).toBe('UNAVAILABLE');
  expect(freshClosed).toBe(1013);
  expect(rememberedClosed).toBe(1013);

  await restarted;
  await open.send({ type: 'subscribe', id: 'up', payload: { query: '{ experiments(first: 1) { edges { node { name } } } }' } });
  expect((await open.waitFor((m) => m.id === 'up' && m.type === 'next')).payload.data.experiments).toBeTruthy();
  expect(open.ws.readyState).toBe(WebSocket.OPEN);
  open.ws.close();
}, 120_000);
