// The stored live feed (server/events/run-event-log.ts): a transaction's events of a run go in rows of up to
// EVENTS_PER_ROW, and a reader gets them one by one, numbered, from any number on, a page at a time, with rows of
// one event written before the grouping read as they are; a metric event's points stored once, as points, and read
// back with it. Embedded database (PGlite), migrated as the app does.
import { mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { encodeMetricValue } from '../../plugins/metric-values';
import { type Database, openDatabase, queryRows } from '../../server/db/client';
import type { FeedEventBody } from '../../server/events/feed';
import { appendRunEvents, EVENTS_PER_ROW, RUN_EVENTS_PAGE, runEventsAfter } from '../../server/events/run-event-log';
import { storeMetricPoints } from '../../server/tracking/metrics';
import { seedEmbeddedDatabase } from '../harness/pglite-template';

let database: Database;
const runId = '00000000-0000-4000-8000-000000000001';

beforeAll(async () => {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'atelier-run-event-log-'));
  await seedEmbeddedDatabase(dataDir);
  database = await openDatabase({ dataDir });
  const [experiment] = await queryRows<{ id: string }>(database.db, sql`insert into experiments (name) values ('run-event-log') returning id`);
  await database.db.execute(
    sql`insert into runs (id, experiment_id, status, trigger, domain) values (${runId}, ${experiment!.id}, 'RUNNING', 'EXTERNAL', 'adhoc')`,
  );
}, 60_000);
afterAll(async () => {
  await database?.close();
});

const progress = (n: number): FeedEventBody => ({ kind: 'task-progress', runId, taskId: 't', node: 'n', fraction: n / 10_000, message: `${n}`, at: '' });

it('stores a transaction’s events a few rows to a run, and reads them back one by one from any number, a page at a time', async () => {
  // Written before events were grouped: a row per event, its number inside.
  await database.db.execute(sql`update runs set event_seq = 2 where id = ${runId}`);
  for (const seq of [1, 2])
    await database.db.execute(sql`insert into run_events (run_id, seq, event) values (${runId}, ${seq}, ${JSON.stringify({ ...progress(seq), seq })}::jsonb)`);
  const given = [progress(3), progress(4), progress(5)];
  const first = await database.db.transaction((tx) => appendRunEvents(tx, given));
  expect(first.map((e) => e.seq)).toEqual([3, 4, 5]);
  // Numbered where they are (the transaction's own events, not a copy of each), and stored without their number inside.
  expect(first.every((e, i) => e === given[i])).toBe(true);
  const [row] = await queryRows<{ event: { events: object[] } }>(database.db, sql`select event from run_events where run_id = ${runId} and seq = 5`);
  expect(row!.event.events.map((e) => 'seq' in e)).toEqual([false, false, false]);
  const wide = Array.from({ length: 2 * RUN_EVENTS_PAGE + 7 }, (_, i) => progress(6 + i));
  const second = await database.db.transaction((tx) => appendRunEvents(tx, wide));
  expect(second.at(-1)!.seq).toBe(5 + wide.length);

  const rows = await queryRows<{ n: number }>(database.db, sql`select count(*)::int as n from run_events where run_id = ${runId}`);
  expect(rows[0]!.n).toBe(2 + 1 + Math.ceil(wide.length / EVENTS_PER_ROW));

  // Every event once, in order, numbered as when it was appended, whichever number a reader starts after.
  const last = 5 + wide.length;
  for (const after of [0, 1, 3, 4, 5, 6, 6 + EVENTS_PER_ROW, last - 1, last]) {
    const seen: number[] = [];
    for (let from = after; ; ) {
      const page = await runEventsAfter(database.db, runId, from);
      expect(page.length).toBeLessThanOrEqual(RUN_EVENTS_PAGE);
      for (const e of page) expect((e as { message: string }).message).toBe(`${e.seq}`);
      seen.push(...page.map((e) => e.seq));
      if (page.length < RUN_EVENTS_PAGE) break;
      from = page.at(-1)!.seq;
    }
    expect(seen).toEqual(Array.from({ length: last - after }, (_, i) => after + 1 + i));
  }
});

it('keeps a metric event’s points once, in metric_blocks, and reads them back with the event, NaN and ±Infinity kept', async () => {
  const taskId = '00000000-0000-4000-8000-0000000000aa';
  const special = [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, -0.5, 1 / 3];
  // Two events of one attempt, two metrics interleaved, and one of a retry whose seqs start again: each reads its own.
  const batch = (attempt: number, from: number, n: number) =>
    Array.from({ length: n }, (_, i) => ({
      taskId,
      runId,
      attempt,
      seq: from + i,
      name: i % 2 ? 'acc' : 'loss',
      step: 10 * (from + i),
      value: special[i % 5]! * (i + 1),
      at: new Date(),
    }));
  const batches = [batch(1, 0, 1_500), batch(1, 1_500, 7), batch(2, 0, 3)];
  const events: FeedEventBody[] = batches.map((points) => ({
    kind: 'task-metric',
    runId,
    taskId,
    node: 'train',
    attempt: points[0]!.attempt,
    points: points.map((p) => ({ name: p.name, value: encodeMetricValue(p.value), step: p.step, seq: p.seq })),
    metrics: { loss: 1 },
    step: points.at(-1)!.step,
    at: '',
  }));
  const appended = await database.db.transaction(async (tx) => {
    for (const points of batches) await storeMetricPoints(tx, points);
    return appendRunEvents(tx, [progress(0), ...events]);
  });
  // The stored row holds no copy of the points.
  const [row] = await queryRows<{ size: number }>(
    database.db,
    sql`select pg_column_size(event)::int as size from run_events where run_id = ${runId} and seq = ${appended.at(-1)!.seq}`,
  );
  expect(row!.size).toBeLessThan(2_000);
  const read = await runEventsAfter(database.db, runId, appended[0]!.seq - 1);
  expect(read.map((e) => e.seq)).toEqual(appended.map((e) => e.seq));
  expect(read.slice(1)).toEqual(events.map((e, i) => ({ ...e, seq: appended[i + 1]!.seq })));
  const [last] = await runEventsAfter(database.db, runId, appended.at(-2)!.seq);
  expect(last).toEqual({ ...events[2], seq: appended.at(-1)!.seq });
});

it('sends each stored row’s events as a parameter of its own, the statement one of a few texts whatever the number of rows', async () => {
  // Postgres parsed one jsonb array of a statement's rows at twice the CPU of the same rows as parameters of their own
  // (bench/peers/run-events-probe.ts). What appendRunEvents sends is read where the driver is handed it.
  const sent: { text: string; params: unknown[] }[] = [];
  const append = (n: number) =>
    database.db.transaction(async (tx) => {
      const session = tx._.session;
      const prepare = session.prepareQuery.bind(session);
      session.prepareQuery = ((query: { sql: string; params: unknown[] }, ...rest: unknown[]) => {
        sent.push({ text: query.sql, params: query.params });
        return (prepare as (...args: unknown[]) => unknown)(query, ...rest);
      }) as typeof session.prepareQuery;
      return appendRunEvents(
        tx,
        Array.from({ length: n }, (_, i) => progress(i)),
      );
    });
  await append(5 * EVENTS_PER_ROW);
  await append(7 * EVENTS_PER_ROW + 1);
  expect(sent).toHaveLength(2);
  for (const [i, rows] of [5, 8].entries()) {
    const events = sent[i]!.params.filter((p): p is string => typeof p === 'string' && p.includes('"events"'));
    expect(events).toHaveLength(rows);
    for (const row of events) expect(JSON.parse(row)).toEqual({ events: expect.any(Array) });
  }
  // Five rows padded to eight, as eight are: one text.
  expect(sent[0]!.text).toBe(sent[1]!.text);
});
