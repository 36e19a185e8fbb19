// A start sent in one round trip from what the last start by the same reference read (issue 21,
// server/orchestrator/start-guesses.ts) whose guess no longer holds: a new version of the workflow, a moved module
// tag. Its guard aborts the transaction, nothing of it is kept, and the start is made by reading, with the outcome,
// the run or the typed error, that a start with no guess has. Checks made on the guess before its guard has answered
// (the run's parameters) stand only if the guess held. A replayed idempotency key and a revoked grant are answered as
// before. Real Postgres, an orchestrator on a connection of its own whose statements are counted (counted-app.ts).
import { and, eq, sql } from 'drizzle-orm';
import { expect, it } from 'vitest';
import { queryRows } from '../../server/db/client';
import { modules, moduleVersions } from '../../server/db/tables/modules';
import { runs, tasks } from '../../server/db/tables/runs';
import { workflows, workflowVersions } from '../../server/db/tables/workflows';
import { countedApp, oneTask } from '../harness/counted-app';

const w = countedApp({ fixtures: ['keyed', 'uncached'], workflows: [oneTask('test/keyed')] });

/** A start of `workflow` by the counted orchestrator: its run, whether its guess missed, and the module version its task runs. */
async function start(workflow: string, more: { parameters?: Record<string, unknown>; idempotencyKey?: string } = {}) {
  w.counted.seen.sent.length = 0;
  const run = await w.counted.orchestrator.startRun({ workflow, trigger: 'API', ...more }, null);
  const begins = w.counted.seen.sent.filter((s) => s.statement.startsWith('begin')).length;
  const guards = w.counted.seen.sent.filter((s) => s.statement.startsWith('select atelier_expect(')).length;
  const [task] = await w.db
    .select({ module: modules.name, version: moduleVersions.version })
    .from(tasks)
    .innerJoin(moduleVersions, eq(moduleVersions.id, tasks.moduleVersionId))
    .innerJoin(modules, eq(modules.id, moduleVersions.moduleId))
    .where(eq(tasks.runId, run.id));
  // Guessed and held: one transaction with a guard; missed: the guessed one, then one that reads.
  return { run, guessed: guards > 0, missed: guards > 0 && begins === 2, ...task! };
}

/** A start's error (with its code), and the runs of `workflow` before and after it: bad input changes nothing. */
async function refused(workflow: string, parameters: Record<string, unknown>) {
  const count = async () =>
    (await w.db.select({ id: runs.id }).from(runs).innerJoin(workflows, eq(workflows.id, runs.workflowId)).where(eq(workflows.name, workflow))).length;
  const before = await count();
  const error = await w.counted.orchestrator.startRun({ workflow, trigger: 'API', parameters }, null).then(
    () => undefined,
    (caught: { message: string; code?: string }) => caught,
  );
  return { error, code: error?.code, kept: (await count()) - before };
}

const latestVersionId = async (name: string) =>
  (
    await w.db
      .select({ id: workflowVersions.id })
      .from(workflowVersions)
      .innerJoin(workflows, eq(workflows.id, workflowVersions.workflowId))
      .where(and(eq(workflowVersions.version, workflows.latestVersion), eq(workflows.name, name)))
  )[0]!.id;

it('starts a new version of the workflow when it was edited since the guess', async () => {
  await start('one-task');
  expect(await start('one-task')).toMatchObject({ guessed: true, missed: false, module: 'keyed' });
  await w.createWorkflow(oneTask('test/uncached'));
  const edited = await start('one-task');
  expect(edited).toMatchObject({ guessed: true, missed: true, module: 'uncached' });
  expect(edited.run.workflowVersionId).toBe(await latestVersionId('one-task'));
  // What it read is the next start's guess.
  expect(await start('one-task')).toMatchObject({ guessed: true, missed: false, module: 'uncached' });
}, 60_000);

it('pins the version a module tag points at now when the tag moved since the guess', async () => {
  await w.createWorkflow({ name: 'tagged', tasks: [{ name: 'work', module: 'test/keyed' }] });
  await start('tagged');
  expect(await start('tagged')).toMatchObject({ guessed: true, missed: false, version: w.versions.keyed });
  // A second version of test/keyed (the same artifact under another number), and `latest` moved to it.
  await w.db.execute(
    sql`insert into module_versions (module_id, version, digest, size_bytes, manifest, source)
        select module_id, 'guess-2', digest || '-2', size_bytes, manifest, source from module_versions where version = ${w.versions.keyed}
          and module_id = (select id from modules where namespace = 'test' and name = 'keyed')`,
  );
  await w.t.api.gql(`mutation { setModuleTag(module: "test/keyed", tag: "latest", version: "guess-2") { tag } }`);
  expect(await start('tagged')).toMatchObject({ guessed: true, missed: true, version: 'guess-2' });
  expect(await start('tagged')).toMatchObject({ guessed: true, missed: false, version: 'guess-2' });
}, 60_000);

it('checks the run parameters against the version that is the latest, not the one guessed', async () => {
  // Guessed: a version that does not declare `p`, refused on the guess before the guard's answer; the latest does.
  await w.createWorkflow({ name: 'params', tasks: [{ name: 'work', module: 'test/keyed' }] });
  await start('params');
  await start('params');
  await w.createWorkflow({ name: 'params', parameters: { p: { default: 1 } }, tasks: [{ name: 'work', module: 'test/keyed' }] });
  const declared = await start('params', { parameters: { p: 2 } });
  expect(declared).toMatchObject({ guessed: true, missed: true });
  expect(declared.run.parameters).toEqual({ p: 2 });
  expect(await start('params', { parameters: { p: 3 } })).toMatchObject({ guessed: true, missed: false });
  // Guessed: the version that declares `p`, which the latest no longer does: the start is refused as any would be.
  await w.createWorkflow({ name: 'params', tasks: [{ name: 'work', module: 'test/keyed', parameters: { ms: 1 } }] });
  const { error, code, kept } = await refused('params', { p: 4 });
  expect(code).toBe('BAD_USER_INPUT');
  expect(error?.message).toMatch(/Unknown run parameter "p"; workflow "params" declares: none/);
  expect(kept).toBe(0);
}, 60_000);

it('returns the run an idempotency key started, and one run for the same key sent twice at once', async () => {
  await start('one-task');
  const first = await start('one-task', { idempotencyKey: 'guess-key' });
  expect(first.guessed).toBe(true);
  const replay = await start('one-task', { idempotencyKey: 'guess-key' });
  expect(replay.run.id).toBe(first.run.id);
  const both = await Promise.all(
    [1, 2].map(() => w.counted.orchestrator.startRun({ workflow: 'one-task', trigger: 'API', idempotencyKey: 'guess-key-2' }, null)),
  );
  expect(both[1]!.id).toBe(both[0]!.id);
  const [keyed] = await queryRows<{ n: number }>(w.db, sql`select count(*)::int as n from runs where idempotency_key = 'guess-key-2'`);
  expect(keyed!.n).toBe(1);
}, 60_000);

it('refuses a start once the grant it needed is revoked, as a start with no guess is refused', async () => {
  await w.t.api.gql(`mutation { grantDomain(team: "ml", domain: production) { id } }`);
  await w.createWorkflow({ name: 'guarded', domain: 'production', tasks: [{ name: 'work', module: 'test/keyed', parameters: { ms: 1 } }] });
  // The app's own orchestrator: the second start is its guessed one.
  for (let i = 0; i < 2; i++) expect((await w.alice.raw(`mutation { startRun(workflow: "guarded") { id } }`)).errors).toBeUndefined();
  await w.t.api.gql(`mutation { grantDomain(team: "ml", domain: production, granted: false) { id } }`);
  const [before] = await queryRows<{ n: number }>(w.db, sql`select count(*)::int as n from runs where domain = 'production'`);
  const denied = await w.alice.raw(`mutation { startRun(workflow: "guarded") { id } }`);
  expect(denied.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
  const [after] = await queryRows<{ n: number }>(w.db, sql`select count(*)::int as n from runs where domain = 'production'`);
  expect(after!.n).toBe(before!.n);
}, 60_000);
