// startRun of a workflow started before in two round trips (issue 21): BEGIN, the workflow's read, and its experiment's
// and modules' reads, sent together for the workflow and module references the last start by that reference found
// (server/orchestrator/start-guesses.ts); then the run's and tasks' inserts, the events and the COMMIT. A start that
// finds another workflow or other references reads them again and plans as before. Real Postgres, an orchestrator on a
// connection of its own whose statements and Postgres' answers are counted on the socket.
import { eq } from 'drizzle-orm';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { Db } from '../../server/db/client';
import { modules, moduleVersions } from '../../server/db/tables/modules';
import { tasks } from '../../server/db/tables/runs';
import { startTestApp, type TestApp } from '../harness/app';
import type { ApiClient } from '../harness/client';
import { type CountedOrchestrator, countedOrchestrator } from '../harness/counted-orchestrator';
import { roundTrips } from '../harness/counting-pool';
import { type PostgresServer, startPostgres } from '../harness/postgres';

let pg: PostgresServer;
let t: TestApp;
let db: Db;
let counted: CountedOrchestrator;
let alice: ApiClient & { token: string };
let uncachedVersion: string;

beforeAll(async () => {
  pg = await startPostgres();
  // No executor host: the runs' tasks stay queued.
  t = await startTestApp({ DATABASE_URL: pg.url, ATELIER_EMBEDDED_EXECUTOR: '0', ATELIER_TICK_MS: '60000' });
  db = t.app.services.db;
  await t.publishFixture('keyed');
  uncachedVersion = (await t.publishFixture('uncached')).version;
  alice = await t.user('alice');
  await t.team('ml', ['alice']);
  await workflowOf('test/keyed');
  counted = countedOrchestrator(pg.url);
}, 120_000);

afterAll(async () => {
  await counted?.end();
  await t?.stop();
  await pg?.stop();
});

/** `one-task` (a new version of it after the first) running `module`. */
const workflowOf = (module: string) =>
  alice.gql(`mutation ($s: String!) { createWorkflow(spec: $s, team: "ml") { created } }`, {
    s: JSON.stringify({ name: 'one-task', tasks: [{ name: 'work', module, parameters: { ms: 1 } }] }),
  });

/** A start of `one-task` by the counted orchestrator: its round trips, and the module its task runs. */
async function start(useModules?: string[]) {
  counted.seen.sent.length = 0;
  const run = await counted.orchestrator.startRun({ workflow: 'one-task', trigger: 'API', useModules }, null);
  const trips = roundTrips(counted.seen.sent);
  const [task] = await db
    .select({ ref: tasks.moduleRef, module: modules.name })
    .from(tasks)
    .innerJoin(moduleVersions, eq(moduleVersions.id, tasks.moduleVersionId))
    .innerJoin(modules, eq(modules.id, moduleVersions.moduleId))
    .where(eq(tasks.runId, run.id));
  return { run, trips, module: task!.module, ref: task!.ref };
}

it('starts a run of a workflow started before in two round trips, its experiment and modules read with the workflow', async () => {
  // The first start by this reference reads its experiment and modules after the workflow (and describes the
  // statements kept prepared, a round trip each on their first use on a connection).
  const first = await start();
  expect(first.module).toBe('keyed');
  const again = await start();
  expect(again.trips).toBe(2);
  expect(again.module).toBe('keyed');
  expect(again.run.experimentId).toBe(first.run.experimentId);
}, 60_000);

it('plans what the workflow asks for now when the references read ahead are not those: a new version, a swapped module', async () => {
  await start();
  // A new version runs another module: the reads sent for the old one go unused, and the new one's are made.
  await workflowOf('test/uncached');
  const changed = await start();
  expect(changed.module).toBe('uncached');
  expect((await start()).trips).toBe(2);
  // A start that names the module's version reads that one.
  const swapped = await start([`test/uncached@${uncachedVersion}`]);
  expect(swapped).toMatchObject({ module: 'uncached', ref: `test/uncached@${uncachedVersion}` });
  expect(swapped.run.experimentId).toBe(changed.run.experimentId);
  expect(await start()).toMatchObject({ module: 'uncached', ref: 'test/uncached@latest' });
}, 60_000);
