// The catalog's usage counts (module_version_usage, added to by each run's start) against the truth, the runs whose
// tasks are pinned to each version, on real Postgres: many runs of one module started at once (its rollup row is the
// one row they all write), runs with several tasks of one version, a map's expansion and a nested run. Migration 0055's
// backfill, which fills the rollup from every task of a database that had none, gives the same counts.
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { queryRows } from '../../server/db/client';
import { startTestApp, type TestApp } from '../harness/app';
import { repoRoot } from '../harness/cli';
import { RUN_EVENTS } from '../harness/client';
import { type PostgresServer, startPostgres } from '../harness/postgres';

let pg: PostgresServer;
let t: TestApp;

beforeAll(async () => {
  pg = await startPostgres();
  t = await startTestApp({ DATABASE_URL: pg.url });
  await t.publishFixture('echo');
  await t.publishFixture('sleep');
  await t.createWorkflow({ name: 'inner', tasks: [{ name: 'a', module: 'test/echo' }] });
  await t.createWorkflow({
    name: 'usage',
    parameters: { sizes: { default: [1, 2, 3] } },
    tasks: [
      { name: 'first', module: 'test/echo' },
      { name: 'second', module: 'test/echo', dependsOn: ['first'] },
      { name: 'each', module: 'test/echo', map: { over: '${params.sizes}', as: 'steps' } },
      { name: 'nested', workflow: 'inner' },
    ],
  });
  await t.createWorkflow({ name: 'other', tasks: [{ name: 's', module: 'test/sleep', parameters: { ms: 1 } }] });
}, 120_000);

afterAll(async () => {
  await t?.stop();
  await pg?.stop();
});

const ended = (e: any) => e.runEvents.__typename === 'RunStatusEvent' && ['SUCCEEDED', 'FAILED', 'CANCELLED'].includes(e.runEvents.runStatus);

/** Each version's runs and latest start, counted from the tasks pinned to it. */
const truth = () =>
  queryRows<{ id: string; runs: number; last: string }>(
    t.app.database.db,
    sql`select t.module_version_id as id, count(distinct t.run_id)::int as runs, max(r.created_at)::text as last
      from tasks t join runs r on r.id = t.run_id where t.module_version_id is not null group by 1 order by 1`,
  );
const rollup = () =>
  queryRows<{ id: string; runs: number; last: string }>(
    t.app.database.db,
    sql`select module_version_id as id, runs::int as runs, last_used_at::text as last from module_version_usage order by 1`,
  );

it('counts each run once per version it used, however many of its starts race for the same row', async () => {
  // 24 runs of two workflows at once: every one writes test/echo's row (or test/sleep's) as its last statement
  const started = await Promise.all(
    Array.from({ length: 24 }, (_, i) => t.api.raw(`mutation ($w: String!) { startRun(workflow: $w) { id } }`, { w: i % 3 ? 'usage' : 'other' })),
  );
  for (const r of started) expect(r.errors, JSON.stringify(r.errors)).toBeUndefined();
  for (const r of started) await t.api.subscribe(RUN_EVENTS, { runId: r.data.startRun.id }, ended);

  const expected = await truth();
  expect(await rollup()).toEqual(expected);
  // test/echo: the 16 `usage` runs (two tasks and a map of three each, counted once) and their 16 nested `inner` runs
  const echo = await t.api.gql(`{ module(name: "test/echo") { usage { runs lastUsedAt } versions { usage { runs } } } }`);
  expect(echo.module.usage.runs).toBe(32);
  expect(echo.module.versions[0].usage.runs).toBe(32);
  expect(new Date(echo.module.usage.lastUsedAt).getTime()).toBe(new Date(expected.find((v) => v.runs === 32)!.last).getTime());
  const sleep = await t.api.gql(`{ module(name: "test/sleep") { usage { runs } } }`);
  expect(sleep.module.usage.runs).toBe(8);
});

it('fills the rollup of a database that had none from every task, as migration 0055 does', async () => {
  const migrations = path.join(repoRoot, 'server', 'db', 'migrations');
  const file = (await readdir(migrations)).find((f) => f.startsWith('0055_'))!;
  const backfill = (await readFile(path.join(migrations, file), 'utf8'))
    .split('--> statement-breakpoint')
    .find((s) => /INSERT INTO "module_version_usage"/.test(s));
  expect(backfill, 'migration 0055 fills module_version_usage').toBeDefined();
  const before = await rollup();
  expect(before.length).toBe(2);
  await queryRows(t.app.database.db, sql`delete from module_version_usage`);
  await queryRows(t.app.database.db, sql.raw(backfill!));
  expect(await rollup()).toEqual(before);
});
