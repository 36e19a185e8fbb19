// The control plane's log caps count each event once and bound lines as well as bytes. A batch delivered again after it
// committed (a crash before its ack: here the same events published again under another message id, which the bus
// does not take for a repeat) once counted its bytes twice, so an honest host's log read high and could be cut early;
// and a host sending one tiny line per event stayed under the byte cap while writing a row per line.
import { eq, sql } from 'drizzle-orm';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { Bus } from '../../plugins/bus/types';
import type { ExecutorEvent } from '../../plugins/protocol';
import { createJetStreamBus } from '../../server/bus/jetstream';
import { queryRows } from '../../server/db/client';
import { tasks } from '../../server/db/tables/runs';
import { EVENTS_DURABLE } from '../../server/events/recorder';
import { LOG_CAP_SLACK_BYTES, LOG_CAP_SLACK_LINES } from '../../server/orchestrator/log-cap';
import { until } from '../batch/until';
import { startTestApp, type TestApp } from '../harness/app';
import { type NatsServer, startNats } from '../harness/nats';

const MAX_LOG_BYTES = 1024;
const MAX_LOG_LINES = 100;
let nats: NatsServer;
let t: TestApp;
let hostile: Bus;

beforeAll(async () => {
  nats = await startNats();
  t = await startTestApp({ NATS_URL: nats.url, ATELIER_MAX_LOG_BYTES: String(MAX_LOG_BYTES), ATELIER_MAX_LOG_LINES: String(MAX_LOG_LINES) });
  hostile = await createJetStreamBus({ url: nats.url, name: 'a-host-that-ignores-the-cap' });
  await t.publishFixture('sleep');
  // A pool no host serves: only the "host" below reports for the task.
  await t.createWorkflow({ name: 'counts', tasks: [{ name: 'only', module: 'test/sleep', executor: 'noop', pool: 'nobody', parameters: { ms: 0 } }] });
}, 180_000);
afterAll(async () => {
  await hostile?.close();
  await t?.stop();
  await nats?.stop();
});

/** A queued task's attempt, reported by hand: `log` makes its log events, `publish` sends them as one message. */
async function queuedAttempt() {
  const { startRun } = await t.api.gql(`mutation { startRun(workflow: "counts") { id } }`);
  const { db } = t.app.services;
  const queued = await until('the task to be queued', async () => {
    const [task] = await db.select().from(tasks).where(eq(tasks.runId, startRun.id));
    return task?.status === 'QUEUED' && task;
  });
  const base = { taskId: queued.id, runId: startRun.id, attempt: queued.attempt, host: 'hostile' };
  let seq = 0;
  let message = 0;
  await hostile.publishEvent({ ...base, seq: seq++, at: new Date().toISOString(), kind: 'started', handle: null }, `${base.taskId}:started`);
  return {
    runId: startRun as { id: string },
    taskId: queued.id,
    attempt: queued.attempt,
    log: (count: number, lines: string[]): ExecutorEvent[] =>
      Array.from({ length: count }, () => ({ ...base, seq: seq++, at: new Date().toISOString(), kind: 'log', stream: 'stdout', lines })),
    // Each message its own id, so the bus stores the same events sent again, as a redelivery after a crash hands them back.
    publish: async (events: ExecutorEvent[]) => {
      await hostile.publishEvents!(events, `${base.taskId}:${message++}`);
    },
  };
}

/** Waits until the recorder has recorded every event message published so far. */
async function recorded() {
  await until('the recorder to catch up', async () => {
    const { published, recorded } = await hostile.eventBacklog(EVENTS_DURABLE);
    return recorded >= published;
  });
}

async function counts(taskId: string, attempt: number) {
  const { db } = t.app.services;
  const [row] = await queryRows<{ stored: string; lines: string; dropped: string; dropped_lines: string }>(
    db,
    sql`select stored, lines, dropped, dropped_lines from task_log_bytes where task_id = ${taskId} and attempt = ${attempt}`,
  );
  const [rows] = await queryRows<{ n: number }>(db, sql`select count(*)::int as n from task_events where task_id = ${taskId} and kind = 'log'`);
  return { stored: Number(row!.stored), lines: Number(row!.lines), dropped: Number(row!.dropped), droppedLines: Number(row!.dropped_lines), rows: rows!.n };
}

it('counts a batch delivered again after it committed once, under the cap and past it', async () => {
  const a = await queuedAttempt();
  const line = 'x'.repeat(99); // 100 bytes with its end
  const first = a.log(5, Array(2).fill(line)); // 1000 bytes, 10 lines: under both caps
  await a.publish(first);
  await recorded();
  expect(await counts(a.taskId, a.attempt)).toEqual({ stored: 1000, lines: 10, dropped: 0, droppedLines: 0, rows: 5 });
  await a.publish(first);
  await recorded();
  // Counted once: before, 2000 bytes and 20 lines.
  expect(await counts(a.taskId, a.attempt)).toEqual({ stored: 1000, lines: 10, dropped: 0, droppedLines: 0, rows: 5 });

  // Past the byte cap (1024 + 64 KiB), then each of those batches again: nothing counted twice, nothing dropped stored.
  const cap = MAX_LOG_BYTES + LOG_CAP_SLACK_BYTES;
  const flood = Array.from({ length: 10 }, () => a.log(10, Array(10).fill(line))); // 100,000 bytes in 10 messages
  for (const events of flood) await a.publish(events);
  await recorded();
  const once = await counts(a.taskId, a.attempt);
  expect(once.stored).toBeLessThanOrEqual(cap);
  expect(once.stored + once.dropped).toBe(101_000);
  expect(once.lines + once.droppedLines).toBe(1010);
  for (const events of flood) await a.publish(events);
  await a.publish(first);
  await recorded();
  expect(await counts(a.taskId, a.attempt)).toEqual(once);
  // The count said at the end of the log is the one kept.
  const { run } = await t.api.gql(`query ($id: ID!) { run(id: $id) { tasks { logs(limit: 5000) { line } } } }`, { id: a.runId.id });
  const said = (run.tasks[0].logs as { line: string }[]).filter((l) => /truncated: \d+ bytes dropped/.test(l.line)).map((l) => l.line);
  expect(said).toEqual([expect.stringContaining(`log output truncated: ${once.dropped} bytes dropped (${once.droppedLines} lines;`)]);
}, 120_000);

it('keeps at most the line cap of an attempt that sends one tiny line per event, and says what it dropped', async () => {
  const a = await queuedAttempt();
  const cap = MAX_LOG_LINES + LOG_CAP_SLACK_LINES;
  const sent = 2 * cap; // 2 bytes each: far under the byte cap
  for (let m = 0; m < sent / 100; m++) await a.publish(a.log(100, ['y']));
  await recorded();
  const after = await counts(a.taskId, a.attempt);
  expect(after).toMatchObject({ stored: 2 * cap, lines: cap, dropped: 2 * cap, droppedLines: cap });
  // A row per kept line, the line that says the log was cut and the one with the count.
  expect(after.rows).toBe(cap + 2);
  const { run } = await t.api.gql(`query ($id: ID!) { run(id: $id) { tasks { logs(limit: 5000) { line stream } } } }`, { id: a.runId.id });
  const notices = (run.tasks[0].logs as { line: string; stream: string }[]).filter((l) => l.line.includes('log output truncated'));
  expect(notices).toEqual([
    { line: expect.stringMatching(/its first 100 lines \(ATELIER_MAX_LOG_LINES\).*counted at the end/), stream: 'stderr' },
    { line: expect.stringContaining(`log output truncated: ${2 * cap} bytes dropped (${cap} lines;`), stream: 'stderr' },
  ]);
}, 120_000);
