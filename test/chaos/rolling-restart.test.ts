// A rolling restart: one of two control-plane replicas (one Postgres, one nats-server, one object store) is stopped
// with SIGTERM while a client is uploading a module version to it and others watch a run over graphql-ws and SSE.
// The upload in flight is finished, not reset; subscribers are closed in a way their clients retry, and resume on the
// other replica from the last event they had; new connections are refused (retryable); the process exits cleanly.

import { mkdtemp, rm } from 'node:fs/promises';
import { request } from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { packDirectory } from '../../server/artifacts/archive';
import { fixturesDir } from '../harness/app';
import { apiClient, PUBLISH } from '../harness/client';
import { type ControlPlaneProcess, startControlPlaneProcess } from '../harness/control-plane-process';
import { RUN_EVENTS_SEQ, watchSse, watchWs } from '../harness/live';
import { type NatsServer, startNats } from '../harness/nats';
import { freePort } from '../harness/ports';
import { type PostgresServer, startPostgres } from '../harness/postgres';
import { until } from '../triggers/world';

const TOKEN = 'atl_rolling-restart-admin-token';
let pg: PostgresServer;
let nats: NatsServer;
let dataDir = '';
const planes: ControlPlaneProcess[] = [];

beforeAll(async () => {
  [pg, nats] = await Promise.all([startPostgres({ migrated: true }), startNats()]);
  dataDir = await mkdtemp(path.join(os.tmpdir(), 'atelier-rolling-restart-'));
  const env = (port: number) => ({
    PORT: String(port),
    DATABASE_URL: pg.url,
    NATS_URL: nats.url,
    ATELIER_DATA_DIR: dataDir, // the object store both replicas share
    ATELIER_ADMIN_TOKEN: TOKEN,
    ATELIER_SHUTDOWN_GRACE_SECONDS: '60', // longer than the test: only a drain that waits for the upload passes
  });
  const ports = [await freePort(), await freePort()];
  planes.push(...(await Promise.all(ports.map((port) => startControlPlaneProcess(env(port))))));
}, 120_000);
afterAll(async () => {
  for (const p of planes) await p.kill();
  await nats?.stop();
  await pg?.stop();
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

/** A multipart publishModuleVersion request: its headers, and its body in two halves. */
async function publishRequest(archive: Uint8Array) {
  const form = new FormData();
  form.set('operations', JSON.stringify({ query: PUBLISH, variables: { artifact: null } }));
  form.set('map', JSON.stringify({ 0: ['variables.artifact'] }));
  form.set('0', new Blob([new Uint8Array(archive)], { type: 'application/gzip' }), 'module.tar.gz');
  const encoded = new Response(form);
  const body = Buffer.from(await encoded.arrayBuffer());
  const half = Math.floor(body.length / 2);
  return { contentType: encoded.headers.get('content-type')!, first: body.subarray(0, half), rest: body.subarray(half), length: body.length };
}

it('finishes the upload in flight, closes subscribers retryably, refuses new connections, and exits', async () => {
  const [a, b] = planes as [ControlPlaneProcess, ControlPlaneProcess];
  const api = apiClient(a.url, TOKEN);
  expect((await api.upload(PUBLISH, {}, 'artifact', await packDirectory(path.join(fixturesDir, 'modules', 'echo')))).errors).toBeUndefined();
  await api.gql(`mutation ($s: String!) { createWorkflow(spec: $s) { created } }`, {
    s: JSON.stringify({ name: 'rolling', tasks: [{ name: 'nap', module: 'test/echo', parameters: {} }] }),
  });
  // No executor host: the run stays queued, and its first events are all there is to resume from.
  const upload = await publishRequest(await packDirectory(path.join(fixturesDir, 'modules', 'sleep')));
  const { startRun } = await api.gql(`mutation { startRun(workflow: "rolling", idempotencyKey: "rolling-1") { id } }`);
  const ws = watchWs(a.url, TOKEN, RUN_EVENTS_SEQ, { runId: startRun.id });
  const sse = watchSse(a.url, TOKEN, RUN_EVENTS_SEQ, { runId: startRun.id });
  await until('both subscribers to have the run queued', async () => ws.events.length > 0 && sse.events.length > 0);

  // The upload's headers are read (the server answered 100 Continue) and half its body sent when SIGTERM comes.
  const answer = new Promise<{ status: number; body: string }>((resolve, reject) => {
    const req = request(`${a.url}/graphql`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${TOKEN}`,
        'graphql-require-preflight': '1',
        'content-type': upload.contentType,
        'content-length': String(upload.length),
        expect: '100-continue',
      },
    });
    req.once('continue', () => {
      req.write(upload.first);
      process.kill(a.pid, 'SIGTERM');
      // The stop has begun once the subscribers are told: the rest of the body comes after.
      ws.done.catch(() => req.end(upload.rest));
    });
    req.once('response', (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.once('end', () => resolve({ status: res.statusCode!, body }));
      res.once('error', reject);
    });
    req.once('error', reject);
  });

  // graphql-ws: 1012 Service Restart, which clients reconnect on (a dropped socket, 1006, says nothing).
  await expect(ws.done).rejects.toThrow(/1012/);
  const published = await answer;
  expect(published.status).toBe(200);
  expect(JSON.parse(published.body)).toMatchObject({ data: { publishModuleVersion: { created: true, version: { ref: expect.any(String) } } } });
  // SSE: the stream ends (an EventSource reconnects with Last-Event-ID) instead of holding the drain up.
  await expect(sse.done).rejects.toThrow(/SSE stream ended|terminated|other side closed/);

  await until('the stopped replica to exit', async () => !a.alive(), 30_000);
  expect(a.output()).toMatch(/SIGTERM: stopping/);
  await expect(fetch(`${a.url}/health`)).rejects.toThrow(); // refused: a client tries another replica

  // The other replica: the same upload again changes nothing, the same startRun is the same run, and the
  // subscribers resume after the last event they had.
  const bApi = apiClient(b.url, TOKEN);
  const again = await bApi.upload(PUBLISH, {}, 'artifact', await packDirectory(path.join(fixturesDir, 'modules', 'sleep')));
  expect(again.data).toMatchObject({ publishModuleVersion: { created: false } });
  expect((await bApi.gql(`mutation { startRun(workflow: "rolling", idempotencyKey: "rolling-1") { id } }`)).startRun.id).toBe(startRun.id);
  // What happened while no subscriber was connected reaches the one that resumes from its last event number.
  await bApi.gql(`mutation ($id: ID!) { cancelRun(id: $id) { status } }`, { id: startRun.id });
  const last = ws.events.at(-1)!.seq!;
  const resumed = watchWs(b.url, TOKEN, RUN_EVENTS_SEQ, { runId: startRun.id, after: last });
  await until('the resumed subscriber to see the run cancelled', async () => resumed.events.some((e) => e.runStatus === 'CANCELLED'));
  expect(resumed.events.every((e) => e.seq! > last)).toBe(true);
  resumed.stop();
}, 60_000);
