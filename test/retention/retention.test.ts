// Retention of what only grows: handled trigger signals (with their firings) and monitoring observations are deleted
// past their days, a batch at a time, on the embedded database; unhandled signals and recent rows stay. The days come
// from the environment and are checked like every other setting. A database without a running app: a live app's
// trigger dispatcher handles an unhandled signal as soon as it is written, which made it prunable mid-test (seen in CI).
import { randomUUID } from 'node:crypto';
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../server/config';
import { type Database, queryRows } from '../../server/db/client';
import { pruneObservations } from '../../server/monitoring/observations';
import { pruneHandledSignals } from '../../server/signals/signals';
import { openTestDatabase } from '../harness/pglite-template';

let opened: { database: Database; close(): Promise<void> };
beforeAll(async () => {
  opened = await openTestDatabase('retention');
}, 120_000);
afterAll(async () => {
  await opened?.close();
});

const count = async (query: ReturnType<typeof sql>) => Number((await queryRows<{ n: string | number }>(opened.database.db, query))[0]!.n);

it('deletes handled signals older than their days, in batches, and keeps unhandled and recent ones', async () => {
  const db = opened.database.db;
  const tag = randomUUID();
  const insert = (age: string, handled: boolean, i: number) =>
    db.execute(sql`insert into signals (type, subject, key, payload, handled_at, created_at)
      values ('DATASET_VERSION', ${`dataset:ret/${tag}`}, ${`${tag}:${age}:${handled}:${i}`}, '{}',
        ${handled ? sql`now() - ${age}::interval` : sql`null`}, now() - ${age}::interval)`);
  for (let i = 0; i < 5; i++) await insert('40 days', true, i);
  await insert('40 days', false, 0);
  await insert('2 days', true, 0);
  const pruned = await pruneHandledSignals(db, 30, 2); // three batches: 2, 2, 1
  expect(pruned).toBeGreaterThanOrEqual(5);
  const left = await queryRows<{ key: string }>(db, sql`select key from signals where subject = ${`dataset:ret/${tag}`} order by key`);
  expect(left.map((r) => r.key)).toEqual([`${tag}:2 days:true:0`, `${tag}:40 days:false:0`]);
});

it('deletes observations taken more than their days ago and keeps the rest', async () => {
  const db = opened.database.db;
  const target = randomUUID();
  for (const age of ['500 days', '401 days', '10 days', '1 minute'])
    await db.execute(
      sql`insert into observations (target_kind, target_id, metric, value, at) values ('DATASET', ${target}::uuid, 'rows', 1, now() - ${age}::interval)`,
    );
  expect(await pruneObservations(db, 400, 1)).toBeGreaterThanOrEqual(2);
  expect(await count(sql`select count(*) as n from observations where target_id = ${target}::uuid`)).toBe(2);
  expect(await pruneObservations(db, 400)).toBe(0);
});

it('reads retention days from the environment and refuses a value out of range', () => {
  expect(loadConfig({}).retention).toEqual({ signalDays: 30, observationDays: 400 });
  expect(loadConfig({ ATELIER_SIGNAL_RETENTION_DAYS: '7', ATELIER_OBSERVATION_RETENTION_DAYS: '90' }).retention).toEqual({
    signalDays: 7,
    observationDays: 90,
  });
  expect(() => loadConfig({ ATELIER_OBSERVATION_RETENTION_DAYS: '0' })).toThrow(ConfigError);
  expect(() => loadConfig({ ATELIER_SIGNAL_RETENTION_DAYS: 'a week' })).toThrow(/ATELIER_SIGNAL_RETENTION_DAYS/);
});
