// startRun of a workflow started before in two round trips (issue 21): BEGIN, the workflow's read (its experiment
// joined), and its modules' reads, sent together for the module references the last start by that reference found
// (server/orchestrator/start-guesses.ts); then the run's and tasks' inserts, the events and the COMMIT. A start that
// finds another workflow or other references reads them again and plans as before. Real Postgres, an orchestrator on a
// connection of its own whose statements and Postgres' answers are counted on the socket. Each of those statements is
// kept prepared on that connection, so Postgres neither parses nor plans it again on each start.
import { eq } from 'drizzle-orm';
import { expect, it } from 'vitest';
import { modules, moduleVersions } from '../../server/db/tables/modules';
import { tasks } from '../../server/db/tables/runs';
import { countedApp, oneTask } from '../harness/counted-app';
import { roundTrips } from '../harness/counting-pool';

const w = countedApp({ fixtures: ['keyed', 'uncached'], workflows: [oneTask('test/keyed')] });

/** A start of `one-task` by the counted orchestrator: its round trips, and the module its task runs. */
async function start(useModules?: string[]) {
  w.counted.seen.sent.length = 0;
  const run = await w.counted.orchestrator.startRun({ workflow: 'one-task', trigger: 'API', useModules }, null);
  const trips = roundTrips(w.counted.seen.sent);
  // The statements that read a module by its name (its row, and its versions by tag and by number).
  const moduleReads = w.counted.seen.sent.filter((s) => /"modules"\."namespace" = \$/.test(s.statement)).length;
  // The statements of their own that read an experiment.
  const experimentReads = w.counted.seen.sent.filter((s) => /^select [^(]* from "experiments"/.test(s.statement)).length;
  const [task] = await w.db
    .select({ ref: tasks.moduleRef, module: modules.name })
    .from(tasks)
    .innerJoin(moduleVersions, eq(moduleVersions.id, tasks.moduleVersionId))
    .innerJoin(modules, eq(modules.id, moduleVersions.moduleId))
    .where(eq(tasks.runId, run.id));
  return { run, trips, moduleReads, experimentReads, module: task!.module, ref: task!.ref };
}

it('starts a run of a workflow started before in two round trips, its experiment and modules read with the workflow', async () => {
  // The first start by this reference reads its modules after the workflow (and describes the statements kept
  // prepared, a round trip each on their first use on a connection), and makes the workflow's experiment.
  const first = await start();
  expect(first.module).toBe('keyed');
  const again = await start();
  expect(again.trips).toBe(2);
  // Its module's row and the version its tag picks in one statement (three before: the row, by tag, by number), and
  // its experiment in the workflow's read (a statement of its own before).
  expect(again.moduleReads).toBe(1);
  expect(again.experimentReads).toBe(0);
  expect(again.module).toBe('keyed');
  expect(again.run.experimentId).toBe(first.run.experimentId);
}, 60_000);

it('plans what the workflow asks for now when the references read ahead are not those: a new version, a swapped module', async () => {
  await start();
  // A new version runs another module: the reads sent for the old one go unused, and the new one's are made.
  await w.createWorkflow(oneTask('test/uncached'));
  const changed = await start();
  expect(changed.module).toBe('uncached');
  expect((await start()).trips).toBe(2);
  // A start that names the module's version reads that one.
  const swapped = await start([`test/uncached@${w.versions.uncached}`]);
  expect(swapped).toMatchObject({ module: 'uncached', ref: `test/uncached@${w.versions.uncached}` });
  expect(swapped.run.experimentId).toBe(changed.run.experimentId);
  expect(await start()).toMatchObject({ module: 'uncached', ref: 'test/uncached@latest' });
}, 60_000);

it('sends every statement of a start prepared: Postgres parses and plans none of them again on the next start', async () => {
  for (let i = 0; i < 3; i++) await start();
  const sent = w.counted.seen.sent.map((s) => s.statement);
  const held = new Set((await w.counted.sql<{ statement: string }[]>`select statement from pg_prepared_statements`).map((p) => p.statement));
  // BEGIN goes as a simple query (nothing to plan). The tasks' insert with their outbox rows was the one sent unnamed:
  // ~0.25 ms of Postgres' planning in the start's last round trip.
  const unnamed = sent.filter((s) => !s.startsWith('begin') && !held.has(s)).map((s) => s.replace(/\s+/g, ' ').slice(0, 60));
  expect(unnamed).toEqual([]);
  expect(sent.some((s) => s.startsWith('with created as (insert into "tasks"'))).toBe(true);
}, 60_000);
