// startRun of a workflow started before in one round trip (issue 21): BEGIN, a guard, the run's and tasks' inserts,
// the events and the COMMIT, all built from what the last start by that reference read (the workflow with its version
// and experiment, its modules' tags: server/orchestrator/start-guesses.ts); the guard aborts the transaction unless
// those still hold, and the start is then made by reading (test/db/start-guesses.test.ts). A start with no guess
// sends its modules' reads with the workflow's, for the references the last start found, then the writes: two round
// trips. A start that finds another workflow or other references reads them again and plans as before. Real Postgres,
// an orchestrator on a connection of its own whose statements and Postgres' answers are counted on the socket. Each
// of those statements is kept prepared on that connection, so Postgres neither parses nor plans it again on each start.
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

it('starts a run of a workflow started before in one round trip, from what the last start read', async () => {
  // The first start by this reference reads its modules after the workflow (and describes the statements kept
  // prepared, a round trip each on their first use on a connection), and makes the workflow's experiment. The second
  // is the first guessed one: it describes the guard, on its first use on this connection.
  const first = await start();
  expect(first.module).toBe('keyed');
  expect((await start()).run.experimentId).toBe(first.run.experimentId);
  const again = await start();
  expect(again.trips).toBe(1);
  const statements = w.counted.seen.sent.map((s) => s.statement.replace(/\s+/g, ' ').slice(0, 40));
  expect(statements[0]).toMatch(/^begin/);
  expect(statements[1]).toMatch(/^select atelier_expect\(/);
  expect(statements.at(-1)).toMatch(/^commit/);
  // Neither its module nor its workflow is read: the guard checks what they were read as.
  expect(again.moduleReads).toBe(0);
  expect(statements.filter((s) => s.includes('from "workflows"'))).toEqual([]);
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
  expect((await start()).trips).toBe(1);
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
