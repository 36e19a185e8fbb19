// The embedded default under load, for correctness only (speed is bench/embedded.ts): a run of 2,000 no-op tasks on
// PGlite + the in-process bus + the host inside the control plane completes with every task SUCCEEDED, run exactly
// once and recorded once; a `noop` attempt (its executor declares `workdir: false`) gets no work directory, while an
// executor that declares nothing still gets its own.
import { existsSync, readdirSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createNoopExecutor } from '../../executors/noop';
import { defineExecutor, type Executor, succeeded, type TaskMessage } from '../../plugins/sdk';
import { packDirectory } from '../../server/artifacts/archive';
import { queryRows } from '../../server/db/client';
import { startTestApp, type TestApp } from '../harness/app';
import { PUBLISH } from '../harness/client';

const WIDTH = 2000;
let t: TestApp;
let workRoot: string;
/** The attempts' folders, in the host's own folder under the work root (`host-<pid>-…`). */
const attemptFolders = () => readdirSync(workRoot).flatMap((own) => readdirSync(path.join(workRoot, own)));
let modules: string;

/** Every execution the host started, by `taskId:attempt`. */
const executions = new Map<string, number>();
/** What a noop attempt saw of its work directory: whether one existed, and what reading `ctx.workdir` gave. */
const noopWorkdirs: { existed: boolean; read: string }[] = [];
/** What an attempt of an executor that declares nothing saw: its `ctx.workdir` and whether it existed. */
const probeWorkdirs: { dir: string; existed: boolean }[] = [];

function countingNoop(): Executor {
  const inner = createNoopExecutor();
  return {
    ...inner,
    async submit(task, ctx) {
      const key = `${task.taskId}:${task.attempt}`;
      executions.set(key, (executions.get(key) ?? 0) + 1);
      if (noopWorkdirs.length < 5) {
        let read: string;
        try {
          read = ctx.workdir;
        } catch (error) {
          read = (error as Error).message;
        }
        noopWorkdirs.push({ existed: attemptFolders().includes(`${task.taskId}-${task.attempt}`), read });
      }
      return inner.submit(task, ctx);
    },
  };
}

const probe = defineExecutor<string>({
  name: 'probe',
  async submit(_task: TaskMessage, ctx) {
    probeWorkdirs.push({ dir: ctx.workdir, existed: existsSync(ctx.workdir) });
    return 'probe';
  },
  async wait() {
    return succeeded();
  },
  async cancel() {},
});

async function waitForRun(id: string, deadlineMs: number): Promise<string> {
  const deadline = Date.now() + deadlineMs;
  for (;;) {
    const { run } = await t.api.gql(`query ($id: ID!) { run(id: $id) { status } }`, { id });
    if (!['QUEUED', 'RUNNING'].includes(run.status)) return run.status;
    if (Date.now() > deadline) throw new Error(`run ${id} still ${run.status} after ${deadlineMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

beforeAll(async () => {
  t = await startTestApp({ ATELIER_POOLS: 'noop,probe', ATELIER_TICK_MS: '1000' }, { executors: [countingNoop(), probe] });
  workRoot = path.join(t.dataDir, 'work');
  modules = await mkdtemp(path.join(os.tmpdir(), 'atelier-embedded-modules-'));
  // Uncached, so every task reaches the executor.
  for (const executor of ['noop', 'probe']) {
    const dir = path.join(modules, executor);
    await mkdir(dir);
    await writeFile(
      path.join(dir, 'atelier.module.yaml'),
      `namespace: test\nname: ${executor}\nentrypoint: none\nruntime: shell\nresources:\n  executor: ${executor}\ncache:\n  enabled: false\n`,
    );
    await writeFile(path.join(dir, 'none'), 'exit 0\n');
    const published = await t.api.upload(PUBLISH, { tags: ['latest'] }, 'artifact', await packDirectory(dir));
    if (published.errors) throw new Error(JSON.stringify(published.errors));
  }
});

afterAll(async () => {
  await t?.stop();
  if (modules) await rm(modules, { recursive: true, force: true });
});

it(`runs ${WIDTH} independent no-op tasks to SUCCEEDED, each executed and recorded exactly once`, async () => {
  await t.createWorkflow({ name: 'embedded-wide', tasks: Array.from({ length: WIDTH }, (_, i) => ({ name: `t${i}`, module: 'test/noop' })) });
  const { startRun } = await t.api.gql(`mutation { startRun(workflow: "embedded-wide") { id } }`);
  // A deadline, not a speed claim: on an idle 2-core machine this run takes a few seconds.
  expect(await waitForRun(startRun.id, 120_000)).toBe('SUCCEEDED');

  const db = t.app.database.db;
  const tasks = await queryRows<{ id: string; status: string; attempt: number }>(db, sql`select id, status, attempt from tasks where run_id = ${startRun.id}`);
  expect(tasks).toHaveLength(WIDTH);
  expect(tasks.filter((task) => task.status !== 'SUCCEEDED' || task.attempt !== 1)).toEqual([]);
  for (const task of tasks) expect(executions.get(`${task.id}:1`)).toBe(1);
  expect(executions.size).toBe(WIDTH);

  const results = await queryRows<{ task_id: string; n: number }>(
    db,
    sql`select task_id, count(*)::int as n from task_events where run_id = ${startRun.id} and kind = 'result' group by task_id`,
  );
  expect(results).toHaveLength(WIDTH);
  expect(results.filter((r) => r.n !== 1)).toEqual([]);
});

it('makes no work directory for an executor that declares none, and still makes one for the others', async () => {
  expect(noopWorkdirs.length).toBeGreaterThan(0);
  for (const seen of noopWorkdirs) {
    expect(seen.existed).toBe(false);
    expect(seen.read).toMatch(/declared workdir: false/);
  }
  expect(attemptFolders()).toEqual([]);

  await t.createWorkflow({ name: 'embedded-probe', tasks: [{ name: 'only', module: 'test/probe' }] });
  const { startRun } = await t.api.gql(`mutation { startRun(workflow: "embedded-probe") { id } }`);
  expect(await waitForRun(startRun.id, 60_000)).toBe('SUCCEEDED');
  expect(probeWorkdirs).toHaveLength(1);
  expect(probeWorkdirs[0]!.existed).toBe(true);
  // In the host's own folder under the data directory's work folder.
  expect(path.dirname(path.dirname(probeWorkdirs[0]!.dir))).toBe(workRoot);
  // Removed after the attempt: the host removes it once the result is published, which the run's end may overtake.
  for (let i = 0; i < 100 && existsSync(probeWorkdirs[0]!.dir); i++) await new Promise((r) => setTimeout(r, 50));
  expect(existsSync(probeWorkdirs[0]!.dir)).toBe(false);
});
