// A host that ignores ATELIER_MAX_LOG_BYTES (a bug, or a hostile host with valid credentials) could fill the database
// with log lines: the control plane trusted hosts to cap their own logs. It now caps each attempt's log where it records
// events: a raw NATS publisher posing as a host floods one attempt far past the cap, and the rows stored stay within
// it, the log ends with the line saying how many bytes were dropped (as a host's does), and the run still ends.
import { eq, sql } from 'drizzle-orm';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { Bus } from '../../plugins/bus/types';
import type { ExecutorEvent } from '../../plugins/protocol';
import { createJetStreamBus } from '../../server/bus/jetstream';
import { queryRows } from '../../server/db/client';
import { tasks } from '../../server/db/tables/runs';
import { LOG_CAP_SLACK_BYTES } from '../../server/orchestrator/log-cap';
import { until } from '../batch/until';
import { startTestApp, type TestApp } from '../harness/app';
import { type NatsServer, startNats } from '../harness/nats';

const MAX_LOG_BYTES = 1024;
const CAP = MAX_LOG_BYTES + LOG_CAP_SLACK_BYTES;
let nats: NatsServer;
let t: TestApp;
let hostile: Bus;

beforeAll(async () => {
  nats = await startNats();
  t = await startTestApp({ NATS_URL: nats.url, ATELIER_MAX_LOG_BYTES: String(MAX_LOG_BYTES) });
  hostile = await createJetStreamBus({ url: nats.url, name: 'a-host-that-ignores-the-cap' });
  await t.publishFixture('sleep');
  // A pool no host serves: only the flooding "host" below reports for the task.
  await t.createWorkflow({ name: 'flood', tasks: [{ name: 'only', module: 'test/sleep', executor: 'noop', pool: 'nobody', parameters: { ms: 0 } }] });
}, 180_000);
afterAll(async () => {
  await hostile?.close();
  await t?.stop();
  await nats?.stop();
});

it('stores at most the cap of a flooding attempt’s log, says how many bytes it dropped, and still ends the run', async () => {
  const { startRun } = await t.api.gql(`mutation { startRun(workflow: "flood") { id } }`);
  const { db } = t.app.services;
  const queued = await until('the task to be queued', async () => {
    const [task] = await db.select().from(tasks).where(eq(tasks.runId, startRun.id));
    return task?.status === 'QUEUED' && task;
  });
  const base = { taskId: queued.id, runId: startRun.id, attempt: queued.attempt, host: 'hostile' };
  const at = () => new Date().toISOString();
  // 2 MiB of log lines, 100 lines of 100 bytes (and their ends) an event, ten events a message: 31 times the cap.
  const line = 'x'.repeat(100);
  const EVENTS = 210;
  let seq = 0;
  await hostile.publishEvent({ ...base, seq: seq++, at: at(), kind: 'started', handle: null }, `${base.taskId}:started`);
  // Log events of no host's shape: no lines (a row each for nothing), lines that are no text, a stream of its own.
  const odd = [{ lines: [] }, { lines: [{ big: 'y'.repeat(50_000) }] }, { lines: 'z'.repeat(50_000) }, { stream: 'y'.repeat(50_000), lines: ['a'] }];
  for (const [i, shape] of odd.entries())
    await hostile.publishEvent(
      { ...base, seq: seq++, at: at(), kind: 'log', stream: 'stdout', ...shape } as unknown as ExecutorEvent,
      `${base.taskId}:odd:${i}`,
    );
  for (let m = 0; m < EVENTS / 10; m++) {
    const events: ExecutorEvent[] = Array.from({ length: 10 }, () => ({
      ...base,
      seq: seq++,
      at: at(),
      kind: 'log',
      stream: 'stdout',
      lines: Array(100).fill(line),
    }));
    await hostile.publishEvents!(events, `${base.taskId}:logs:${m}`);
  }
  await hostile.publishEvent(
    { ...base, seq: seq++, at: at(), kind: 'result', outcome: { state: 'SUCCEEDED', outputs: {} }, durationMs: 5 },
    `${base.taskId}:result`,
  );

  const sent = EVENTS * 100 * (line.length + 1);
  await until('the run to end', async () => (await t.api.gql(`query ($id: ID!) { run(id: $id) { status } }`, { id: startRun.id })).run.status === 'SUCCEEDED');
  const [stored] = await queryRows<{ bytes: number }>(
    db,
    sql`select coalesce(sum(octet_length(l) + 1), 0)::int as bytes
        from task_events e, jsonb_array_elements_text(e.payload -> 'lines') l
        where e.task_id = ${queued.id} and e.kind = 'log' and l like 'xxx%'`,
  );
  expect(stored!.bytes).toBeLessThanOrEqual(CAP);
  expect(stored!.bytes).toBeGreaterThan(CAP - 2 * (line.length + 1));
  const logRows = await db.select({ n: sql<number>`count(*)::int` }).from(sql`task_events`).where(sql`task_id = ${queued.id} and kind = 'log'`);
  expect(logRows[0]!.n).toBeLessThanOrEqual(Math.ceil(CAP / (100 * (line.length + 1))) + 2);
  // Whatever their shape: the log rows' payloads hold the cap and little more (JSON's quotes, the notices).
  const [payloads] = await queryRows<{ bytes: number }>(
    db,
    sql`select sum(octet_length(payload::text))::int as bytes from task_events where task_id = ${queued.id} and kind = 'log'`,
  );
  expect(payloads!.bytes).toBeLessThanOrEqual(CAP + 4096);

  // The log ends saying that it was cut and how many bytes were dropped, in the words a host uses, once each.
  const { run } = await t.api.gql(`query ($id: ID!) { run(id: $id) { tasks { logs(limit: 5000) { line stream } } } }`, { id: startRun.id });
  const logs = run.tasks[0].logs as { line: string; stream: string }[];
  const notices = logs.filter((l) => l.line.includes('log output truncated'));
  expect(notices).toEqual([
    { line: expect.stringMatching(/truncated: the control plane keeps an attempt's first 1024 bytes .*counted at the end/), stream: 'stderr' },
    { line: expect.stringContaining(`log output truncated: ${sent - stored!.bytes} bytes dropped`), stream: 'stderr' },
  ]);
  expect(logs.slice(-2)).toEqual(notices);
  // Live viewers were told of the cut as it was made (the run's events, replayed from the start).
  const live = await t.api.subscribe<{ runEvents: { __typename: string; lines?: string[]; runStatus?: string } }>(
    `subscription ($id: ID!) { runEvents(runId: $id, after: 0) { __typename ... on TaskLogEvent { lines } ... on RunStatusEvent { runStatus } } }`,
    { id: startRun.id },
    (e) => e.runEvents.runStatus === 'SUCCEEDED',
  );
  const liveNotices = live.flatMap((e) => e.runEvents.lines ?? []).filter((l) => l.includes('log output truncated'));
  expect(liveNotices).toEqual([notices[0]!.line]);
  const [budget] = await queryRows<{ stored: string; dropped: string }>(
    db,
    sql`select stored, dropped from task_log_bytes where task_id = ${queued.id} and attempt = ${queued.attempt}`,
  );
  expect({ stored: Number(budget!.stored), dropped: Number(budget!.dropped) }).toEqual({ stored: stored!.bytes, dropped: sent - stored!.bytes });
}, 180_000);
