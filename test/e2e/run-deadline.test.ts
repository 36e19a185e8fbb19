// Run deadlines against the real control plane (embedded PGlite, in-process bus and host): a run still open at its
// deadline ends FAILED ("ran past its time limit of N s") with its running attempt stopped and its process gone, its
// task waiting for a pool no host serves cancelled, its nested run ended with it; a control plane down across the
// deadline ends the run once when it is back; a run that finishes in time is untouched; bad limits change nothing.
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { processAlive } from '../../plugins/process-group';
import { queryRows } from '../../server/db/client';
import { until } from '../batch/until';
import { startTestApp, type TestApp } from '../harness/app';
import { seedEmbeddedDatabase } from '../harness/pglite-template';

let t: TestApp;
let dir: string;

beforeAll(async () => {
  process.env.ATELIER_MODULE_ISOLATION = 'none'; // the module's own process group is what is watched
  t = await startTestApp();
  await t.publishFixture('runaway');
  await t.publishFixture('echo');
  dir = await mkdtemp(path.join(os.tmpdir(), 'atelier-run-deadline-'));
}, 120_000);
afterAll(async () => {
  delete process.env.ATELIER_MODULE_ISOLATION;
  await t?.stop();
  await rm(dir, { recursive: true, force: true });
});

const START = `mutation ($w: String!, $s: Float) { startRun(workflow: $w, timeoutSeconds: $s) { id createdAt timeoutSeconds deadlineAt } }`;
const RUN = `query ($id: ID!) { run(id: $id) { status message timeoutSeconds deadlineAt finishedAt
  tasks { node status reason message } childRuns { id status message deadlineAt tasks { status reason message } } } }`;
const AUDIT = `query ($s: String!) { auditEvents(subject: $s) { action decision details } }`;
/** A pool no host serves: a task sent there waits for ever. */
const NOWHERE = 'nowhere';

const ended = (api: TestApp['api'], id: string) =>
  until(
    `run ${id} to end`,
    async () => {
      const { run } = await api.gql(RUN, { id });
      return !['QUEUED', 'RUNNING'].includes(run.status) && run;
    },
    60_000,
  );

it('ends a run past its deadline FAILED, its running attempt stopped and its process gone', async () => {
  const log = path.join(dir, 'children');
  await t.createWorkflow({
    name: 'deadline-running',
    timeoutSeconds: 3600,
    tasks: [{ name: 'wild', module: 'test/runaway', executor: 'local', timeoutSeconds: 7200, parameters: { mode: 'fork', log } }],
  });
  const { startRun } = await t.api.gql(START, { w: 'deadline-running' });
  // Admitted at once: its deadline is its start plus the spec's limit.
  expect(startRun.timeoutSeconds).toBe(3600);
  expect(Date.parse(startRun.deadlineAt) - Date.parse(startRun.createdAt)).toBe(3600 * 1000);
  const pids = await until('the module and its children to start', async () => {
    try {
      const found = readFileSync(log, 'utf8').trim().split('\n').map(Number);
      return found.length === 2 && found;
    } catch {
      return undefined;
    }
  });
  // An hour passes: the deadline is moved to now rather than waited for (the process is known to run first).
  await t.app.database.db.execute(sql`update runs set deadline_at = now() where id = ${startRun.id}`);
  const run = await ended(t.api, startRun.id);
  expect(run.status).toBe('FAILED');
  expect(run.message).toBe('ran past its time limit of 3600 s');
  expect(run.tasks).toEqual([{ node: 'wild', status: 'CANCELLED', reason: 'run-timed-out', message: 'ran past its time limit of 3600 s' }]);
  await until('every process of the attempt to end', async () => (await Promise.all(pids.map((pid) => processAlive(pid, null)))).every((a) => !a));
  const { auditEvents } = await t.api.gql(AUDIT, { s: `run:${startRun.id}` });
  expect(auditEvents.filter((e: { action: string }) => e.action === 'run.timeout')).toHaveLength(1);
}, 90_000);

it('ends a run whose task waits for a pool no host serves, from startRun’s own limit', async () => {
  await t.createWorkflow({ name: 'deadline-nowhere', tasks: [{ name: 'stuck', module: 'test/echo', pool: NOWHERE, parameters: { message: 'deadline-1' } }] });
  const { startRun } = await t.api.gql(START, { w: 'deadline-nowhere', s: 1 });
  expect(startRun.timeoutSeconds).toBe(1);
  const run = await ended(t.api, startRun.id);
  expect(run.status).toBe('FAILED');
  expect(run.message).toBe('ran past its time limit of 1 s');
  expect(run.tasks[0]).toMatchObject({ status: 'CANCELLED', reason: 'run-timed-out' });
  expect(Date.parse(run.finishedAt)).toBeGreaterThanOrEqual(Date.parse(run.deadlineAt));
}, 90_000);

it('ends a nested run with its parent: the child’s deadline is never later than the parent’s', async () => {
  await t.createWorkflow({
    name: 'deadline-child',
    timeoutSeconds: 3600, // its own is longer than what its parent has left: the parent's wins
    tasks: [{ name: 'stuck', module: 'test/echo', pool: NOWHERE, parameters: { message: 'deadline-2' } }],
  });
  await t.createWorkflow({ name: 'deadline-parent', timeoutSeconds: 2, tasks: [{ name: 'nested', workflow: 'deadline-child' }] });
  const { startRun } = await t.api.gql(START, { w: 'deadline-parent' });
  const run = await ended(t.api, startRun.id);
  expect(run.status).toBe('FAILED');
  expect(run.message).toBe('ran past its time limit of 2 s');
  expect(run.tasks[0]).toMatchObject({ node: 'nested', status: 'CANCELLED', reason: 'run-timed-out' });
  const [child] = run.childRuns;
  expect(child.deadlineAt).toBe(run.deadlineAt);
  expect(child.status).toBe('FAILED');
  expect(child.message).toBe(`ran past its time limit of 2 s (parent run ${startRun.id})`);
  expect(child.tasks[0]).toMatchObject({ status: 'CANCELLED', reason: 'run-timed-out' });
}, 90_000);

it('counts a run’s time from its admission: time queued behind maxActiveRuns does not count', async () => {
  await t.createWorkflow({
    name: 'deadline-queued',
    timeoutSeconds: 1,
    concurrency: { maxActiveRuns: 1 },
    tasks: [{ name: 'stuck', module: 'test/echo', pool: NOWHERE, parameters: { message: 'deadline-5' } }],
  });
  const { startRun: first } = await t.api.gql(START, { w: 'deadline-queued' });
  const { startRun: second } = await t.api.gql(START, { w: 'deadline-queued' });
  expect(second.deadlineAt).toBeNull(); // held back: no deadline yet
  expect((await ended(t.api, first.id)).status).toBe('FAILED');
  const run = await ended(t.api, second.id);
  expect(run.status).toBe('FAILED');
  expect(run.message).toBe('ran past its time limit of 1 s');
  // Admitted only once the first had ended, a second or more after it was made: its deadline is a second after that.
  expect(Date.parse(run.deadlineAt) - Date.parse(second.createdAt)).toBeGreaterThan(1000);
}, 90_000);

it('leaves a run that finishes in time as it was', async () => {
  await t.createWorkflow({
    name: 'deadline-in-time',
    timeoutSeconds: 600,
    tasks: [{ name: 'quick', module: 'test/echo', parameters: { message: 'deadline-3' } }],
  });
  const { startRun } = await t.api.gql(START, { w: 'deadline-in-time' });
  const run = await ended(t.api, startRun.id);
  expect(run.status).toBe('SUCCEEDED');
  expect(run.message).toBeNull();
  expect(run.tasks[0].status).toBe('SUCCEEDED');
  const { auditEvents } = await t.api.gql(AUDIT, { s: `run:${startRun.id}` });
  expect(auditEvents.filter((e: { action: string }) => e.action === 'run.timeout')).toHaveLength(0);
}, 90_000);

it('refuses a limit of zero, below zero or beyond 7 days, naming the bound, and starts nothing', async () => {
  const count = async () => (await queryRows<{ n: number }>(t.app.database.db, sql`select count(*)::int as n from runs`))[0];
  const before = await count();
  for (const s of [0, -5, 604801, 1e12]) {
    const result = await t.api.raw(START, { w: 'deadline-in-time', s });
    expect(result.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    expect(result.errors?.[0]?.message).toMatch(/more than 0 and at most 604800/);
  }
  expect(await count()).toEqual(before);
  for (const timeoutSeconds of [0, -1, 604801]) {
    const result = await t.api.raw(`mutation ($spec: String!) { createWorkflow(spec: $spec) { created } }`, {
      spec: JSON.stringify({ name: 'deadline-bad', timeoutSeconds, tasks: [{ name: 'a', module: 'test/echo' }] }),
    });
    expect(result.errors?.[0]?.extensions?.code).toBe('INVALID_WORKFLOW');
    expect(result.errors?.[0]?.message).toMatch(/timeoutSeconds/);
  }
});

it('ends a run once when the control plane comes back after being down across its deadline', async () => {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'atelier-run-deadline-restart-'));
  await seedEmbeddedDatabase(dataDir);
  const first = await startTestApp({ ATELIER_DATA_DIR: dataDir });
  try {
    await first.publishFixture('echo');
    await first.createWorkflow({
      name: 'deadline-restart',
      timeoutSeconds: 5, // longer than the stop below takes: the first control plane never ends it
      tasks: [{ name: 'stuck', module: 'test/echo', pool: NOWHERE, parameters: { message: 'deadline-4' } }],
    });
    const { startRun } = await first.api.gql(START, { w: 'deadline-restart' });
    await first.app.stop();
    const stoppedAt = Date.now();
    // Down until its deadline has passed (the wall clock, not a sleep of a guessed length).
    await until('the deadline to pass while the control plane is down', async () => Date.now() > Date.parse(startRun.deadlineAt) + 50, 10_000);
    const second = await startTestApp({ ATELIER_DATA_DIR: dataDir });
    try {
      const run = await ended(second.api, startRun.id);
      expect(run.status).toBe('FAILED');
      expect(run.message).toBe('ran past its time limit of 5 s');
      expect(Date.parse(run.finishedAt)).toBeGreaterThan(stoppedAt); // ended by the control plane that came back
      expect(run.tasks[0]).toMatchObject({ status: 'CANCELLED', reason: 'run-timed-out' });
      const { auditEvents } = await second.api.gql(AUDIT, { s: `run:${startRun.id}` });
      expect(auditEvents.filter((e: { action: string }) => e.action === 'run.timeout')).toHaveLength(1);
    } finally {
      await second.stop();
    }
  } finally {
    await first.stop();
    await rm(dataDir, { recursive: true, force: true });
  }
}, 120_000);
