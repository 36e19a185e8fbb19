// allRunEvents decides who sees a new run's events on the domain its first event carries (QUEUED, from createRun):
// every way a run is made must carry the run's own domain, and a subscriber without it must see nothing of the run,
// over graphql-ws and SSE alike. Here a production run is started, cloned, rerun, started with a nested workflow (its
// child run) and an experimentation workflow is started in production; a member with no production grant watches
// throughout and sees only the experimentation runs.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../harness/app';
import type { ApiClient } from '../harness/client';

let t: TestApp;
let bob: ApiClient & { token: string };

const ALL =
  'subscription { allRunEvents { __typename ... on RunStatusEvent { runId runStatus } ... on TaskStatusEvent { runId } ... on TaskLogEvent { runId } ... on TaskMetricEvent { runId } ... on TaskProgressEvent { runId } } }';
type Seen = { runId: string; runStatus?: string }[];

async function waitUntil(ok: () => boolean, what: string, timeoutMs = 30_000) {
  const deadline = Date.now() + timeoutMs;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
const ended = (seen: Seen, runId: string) => seen.some((e) => e.runId === runId && e.runStatus === 'SUCCEEDED');

/** allRunEvents over SSE, every event's payload into `seen`, until `signal` aborts. */
async function watchSse(token: string, seen: Seen, signal: AbortSignal) {
  const res = await fetch(`${t.url}/graphql`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, accept: 'text/event-stream', 'content-type': 'application/json' },
    body: JSON.stringify({ query: ALL }),
    signal,
  });
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  let pending = '';
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return;
    pending += decoder.decode(value, { stream: true });
    for (let end = pending.indexOf('\n\n'); end >= 0; end = pending.indexOf('\n\n')) {
      const data = pending
        .slice(0, end)
        .split('\n')
        .find((l) => l.startsWith('data:'));
      pending = pending.slice(end + 2);
      const payload = data ? JSON.parse(data.slice(5)) : null;
      if (payload?.data?.allRunEvents) seen.push(payload.data.allRunEvents);
    }
  }
}

beforeAll(async () => {
  t = await startTestApp();
  await t.publishFixture('echo');
  await t.createWorkflow({ name: 'explore', domain: 'experimentation', tasks: [{ name: 'a', module: 'test/echo' }] });
  await t.createWorkflow({ name: 'nightly', domain: 'production', tasks: [{ name: 'a', module: 'test/echo' }] });
  // Its task is no cache hit (its own message): a nested run served whole from cache leaves its parent waiting, which
  // is not what this test is about.
  await t.createWorkflow({ name: 'inner', domain: 'production', tasks: [{ name: 'a', module: 'test/echo', parameters: { message: 'inner' } }] });
  await t.createWorkflow({ name: 'outer', domain: 'production', tasks: [{ name: 'sub', workflow: 'inner' }] });
  bob = await t.user('bob');
  await t.team('bystanders', ['bob']);
}, 60_000);
afterAll(async () => t?.stop());

it('shows a member without production none of the events of production runs, however they were made', async () => {
  const seen = { admin: [] as Seen, bobWs: [] as Seen, bobSse: [] as Seen };
  const watching = [
    t.api.subscribe<{ allRunEvents: Seen[number] }>(ALL, {}, undefined, (e) => seen.admin.push(e.allRunEvents)),
    bob.subscribe<{ allRunEvents: Seen[number] }>(ALL, {}, undefined, (e) => seen.bobWs.push(e.allRunEvents)),
  ];
  for (const w of watching) w.catch(() => undefined);
  const sse = new AbortController();
  void watchSse(bob.token, seen.bobSse, sse.signal).catch(() => undefined);
  const start = async (extra = '') => (await t.api.gql(`mutation { startRun(workflow: "explore"${extra}) { id } }`)).startRun.id as string;
  const everyoneSaw = (id: string) => ended(seen.admin, id) && ended(seen.bobWs, id) && ended(seen.bobSse, id);
  // Live on every channel once an experimentation run has been seen to end by all.
  const explored: string[] = [];
  for (let i = 0; i < 50 && !explored.some(everyoneSaw); i++) {
    explored.push(await start());
    await waitUntil(() => everyoneSaw(explored.at(-1)!), 'everyone live', 3_000).catch(() => undefined);
  }
  const made: string[] = [];
  const endOf = async (id: string) => {
    made.push(id);
    const over = () => seen.admin.some((e) => e.runId === id && ['SUCCEEDED', 'FAILED', 'CANCELLED'].includes(e.runStatus ?? ''));
    await waitUntil(over, `run ${id} to end`).catch(async (error) => {
      console.log(
        JSON.stringify(
          await t.api.raw(`query ($id: ID!) { run(id: $id) { status message tasks { node status message } childRuns { id status message } } }`, { id }),
        ),
      );
      throw error;
    });
    return id;
  };
  const nightly = await endOf((await t.api.gql(`mutation { startRun(workflow: "nightly") { id } }`)).startRun.id);
  await endOf((await t.api.gql(`mutation ($id: ID!) { cloneRun(id: $id) { id } }`, { id: nightly })).cloneRun.id);
  await endOf((await t.api.gql(`mutation ($id: ID!) { rerunRun(id: $id, from: ALL) { id } }`, { id: nightly })).rerunRun.id);
  await endOf((await t.api.gql(`mutation { startRun(workflow: "outer") { id } }`)).startRun.id);
  await endOf(await start(', domain: production'));
  // The last run bob may see, seen to end on both channels: he was live throughout.
  const sentinel = await start();
  explored.push(sentinel);
  await waitUntil(() => everyoneSaw(sentinel), 'the experimentation run after them, seen by all');
  sse.abort();
  const production = new Set(seen.admin.map((e) => e.runId).filter((id) => !explored.includes(id)));
  expect(production.size).toBeGreaterThan(made.length); // the nested run's child among them
  for (const id of made) expect(production.has(id)).toBe(true);
  expect(seen.bobWs.filter((e) => production.has(e.runId))).toEqual([]);
  expect(seen.bobSse.filter((e) => production.has(e.runId))).toEqual([]);
}, 120_000);
