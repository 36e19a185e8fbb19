// A graphql-ws subscriber that stops reading (its socket open, nothing read) while a run logs fast, end to end over
// real sockets: the server's buffer for it stays bounded (server/events/feed-buffer.ts), its `allRunEvents` ends with
// SUBSCRIBER_TOO_SLOW once it reads again (a typed answer that says to subscribe anew), and the subscribers of the
// same run that do read, over `allRunEvents` and `runEvents`, get every event meanwhile: one stalled client holds
// nobody up. And a subscriber that reads is never cut off by one delivery larger than the limit (a wide run's statuses
// from the commit that starts or cancels it), which before ended every allRunEvents at once. The feed's limit is
// lowered for this file so that a few megabytes past the sockets' own buffers, or a 60-task run, pass it.
import { afterAll, beforeAll, expect, it } from 'vitest';
import WebSocket from 'ws';
import { createNoopExecutor } from '../../executors/noop';
import { defineExecutor, succeeded } from '../../plugins/sdk';
import { FEED_BUFFER_LIMIT } from '../../server/events/feed';
import { startTestApp, type TestApp } from '../harness/app';

const TASKS = 3;
/** Per task, ROUNDS of ~64 KiB of log lines (one log event each), a moment apart: many deliveries, ~19 MiB in all. */
const ROUNDS = 100;
const PER_ROUND = 64;
const LINES = ROUNDS * PER_ROUND;
const LINE = 'x'.repeat(1_000);

let t: TestApp;
let talk!: () => void;
const mayTalk = new Promise<void>((r) => (talk = r));
const limitBefore = FEED_BUFFER_LIMIT.all;

// The noop executor, except that its tasks log LINES lines once the test lets them.
const noop = createNoopExecutor();
const chatty = defineExecutor({
  ...noop,
  async wait(_handle, _task, ctx) {
    await mayTalk;
    for (let round = 0; round < ROUNDS; round++) {
      for (let i = 0; i < PER_ROUND; i++) ctx.log('stdout', `${round}.${i} ${LINE}`);
      await new Promise((r) => setTimeout(r, 10));
    }
    return succeeded();
  },
});

beforeAll(async () => {
  FEED_BUFFER_LIMIT.all = 20;
  t = await startTestApp({}, { executors: [chatty] });
  await t.publishFixture('sleep');
  await t.createWorkflow({
    name: 'chatty',
    tasks: Array.from({ length: TASKS }, (_, i) => ({ name: `t${i}`, module: 'test/sleep', executor: 'noop', parameters: { ms: i } })),
  });
  // Wider than the lowered limit, in a pool no host serves: its tasks wait until cancelled.
  await t.createWorkflow({
    name: 'wide',
    tasks: Array.from({ length: 3 * FEED_BUFFER_LIMIT.all }, (_, i) => ({
      name: `w${i}`,
      module: 'test/sleep',
      executor: 'noop',
      pool: 'nobody',
      parameters: { ms: i },
    })),
  });
}, 120_000);

afterAll(async () => {
  FEED_BUFFER_LIMIT.all = limitBefore;
  await t?.stop();
});

const ALL = 'subscription { allRunEvents { __typename ... on RunStatusEvent { runId runStatus } ... on TaskLogEvent { runId lines } } }';
const ONE = 'subscription ($id: ID!) { runEvents(runId: $id) { __typename ... on RunStatusEvent { runId runStatus } ... on TaskLogEvent { runId lines } } }';

/** A raw graphql-transport-ws socket, subscribed to `query`; with `stalled`, it reads nothing until resumed. */
async function subscriber(query: string, variables: Record<string, unknown>, stalled = false) {
  const ws = new WebSocket(`${t.url.replace(/^http/, 'ws')}/graphql`, 'graphql-transport-ws');
  const messages: any[] = [];
  let lines = 0;
  let ended = false;
  ws.on('message', (data) => {
    const message = JSON.parse(String(data));
    const event = message.payload?.data && Object.values(message.payload.data)[0];
    // Only the count of log lines is kept: the messages themselves would hold every megabyte.
    if (event?.lines) lines += event.lines.length;
    else messages.push(message);
    if (message.type === 'error' || message.type === 'complete' || event?.runStatus === 'SUCCEEDED' || event?.runStatus === 'CANCELLED') ended = true;
  });
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  ws.send(JSON.stringify({ type: 'connection_init', payload: { authorization: `Bearer ${t.app.adminToken}` } }));
  await until(() => messages.some((m) => m.type === 'connection_ack'), 'the connection_ack');
  const before = t.app.services.feed.listenerCount();
  ws.send(JSON.stringify({ type: 'subscribe', id: 's', payload: { query, variables } }));
  // Subscribed once the server's feed has its listener: what the run logs after that reaches it.
  await until(() => t.app.services.feed.listenerCount() > before, 'the subscription to listen');
  // From here on the client's socket takes nothing in: the kernel's buffers fill up, then the server's writes wait.
  if (stalled) ws.pause();
  return {
    ws,
    messages,
    lines: () => lines,
    ended: () => ended,
  };
}

async function until(ok: () => boolean, what: string, timeoutMs = 30_000) {
  const deadline = Date.now() + timeoutMs;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

it('ends a stalled allRunEvents with SUBSCRIBER_TOO_SLOW once it reads again, while the readers of the same run get every event', async () => {
  const { startRun } = await t.api.gql('mutation { startRun(workflow: "chatty") { id } }');
  const runId = startRun.id as string;
  const stalled = await subscriber(ALL, {}, true);
  const readers = [await subscriber(ALL, {}), await subscriber(ONE, { id: runId })];
  talk();

  for (const reader of readers) await until(reader.ended, 'a reader to see the run end');
  for (const reader of readers) {
    expect(reader.messages.filter((m) => m.type === 'error')).toEqual([]);
    expect(reader.lines()).toBe(TASKS * LINES);
  }
  // The stalled one is still connected, and has been sent far less than the run logged.
  expect(stalled.ws.readyState).toBe(WebSocket.OPEN);
  expect(stalled.ended()).toBe(false);

  stalled.ws.resume();
  await until(stalled.ended, 'the stalled subscriber to hear how its subscription ended');
  const last = stalled.messages.at(-1);
  expect(last.type).toBe('error');
  expect(last.id).toBe('s');
  expect(last.payload[0].extensions.code).toBe('SUBSCRIBER_TOO_SLOW');
  expect(last.payload[0].message).toMatch(/subscribe again/);
  expect(stalled.lines()).toBeLessThan(TASKS * LINES);
  // The socket itself stays usable: subscribing anew works on it.
  stalled.ws.send(JSON.stringify({ type: 'subscribe', id: 'again', payload: { query: '{ run(id: "' + runId + '") { status } }' } }));
  await until(() => stalled.messages.some((m) => m.id === 'again' && m.type === 'next'), 'an answer on the same socket');
  expect(stalled.messages.find((m) => m.id === 'again' && m.type === 'next').payload.data.run.status).toBe('SUCCEEDED');
  for (const s of [stalled, ...readers]) s.ws.close();
}, 60_000);

it('keeps a subscriber that reads live through a run whose start and cancel each deliver more events than the limit at once', async () => {
  const reader = await subscriber(ALL, {});
  const { startRun } = await t.api.gql('mutation { startRun(workflow: "wide") { id } }');
  const runId = startRun.id as string;
  // Every task's status, from the one commit that starts the run, then from the one that cancels it: before, each
  // such delivery overflowed every allRunEvents subscriber at once (SUBSCRIBER_TOO_SLOW), however fast it read.
  await t.api.gql('mutation ($id: ID!) { cancelRun(id: $id) { id } }', { id: runId });
  await until(reader.ended, 'the reader to see the run cancelled');
  expect(reader.messages.filter((m) => m.type === 'error')).toEqual([]);
  expect(reader.messages.some((m) => m.payload?.data?.allRunEvents?.runId === runId && m.payload.data.allRunEvents.runStatus === 'CANCELLED')).toBe(true);
  reader.ws.close();
}, 60_000);
