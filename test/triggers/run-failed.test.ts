// Failure triggers (RUN_FAILED) against one real server: a run whose task fails, and one past its time limit, each fire
// the trigger once with the failed run's id, workflow, status and reason; a cancel fires nothing; a workflow that
// restarts itself on its own failure stops after MAX_FAILURE_CHAIN runs, the stop recorded.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_FAILURE_CHAIN } from '../../server/vocabulary';
import { startTestApp, type TestApp } from '../harness/app';
import { CREATE_TRIGGER, decided, firings, until } from './world';

let t: TestApp;

const create = async (input: object) => (await t.api.gql(CREATE_TRIGGER, { input: { parameterMap: {}, ...input } })).createTrigger;
const start = async (workflow: string, timeoutSeconds?: number) =>
  (await t.api.gql(`mutation ($w: String!, $s: Float) { startRun(workflow: $w, timeoutSeconds: $s) { id } }`, { w: workflow, s: timeoutSeconds ?? null }))
    .startRun.id as string;
const statusOf = async (id: string) => (await t.api.gql(`query ($id: ID!) { run(id: $id) { status message } }`, { id })).run;
const ended = (id: string) => until(`run ${id} to end`, async () => ((await statusOf(id)).status.match(/QUEUED|RUNNING/) ? null : statusOf(id)));

beforeAll(async () => {
  t = await startTestApp();
  await Promise.all([t.publishFixture('echo'), t.publishFixture('fail')]);
  await t.createWorkflow({ name: 'breaks', tasks: [{ name: 'boom', module: 'test/fail' }] });
  // A pool no host serves: its runs stay open until cancelled or past their time limit.
  await t.createWorkflow({ name: 'hangs', tasks: [{ name: 'stuck', module: 'test/echo', pool: 'nowhere', parameters: { message: 'waits' } }] });
  // The pager's runs park too (the test reads their parameters, not their outcome).
  await t.createWorkflow({
    name: 'pager',
    parameters: { failed: { default: '' }, workflow: { default: '' }, status: { default: '' }, reason: { default: '' }, message: { default: '' } },
    tasks: [{ name: 'page', module: 'test/echo', pool: 'parked', parameters: { message: '${params.failed}' } }],
  });
}, 120_000);
afterAll(() => t?.stop());

const MAP = { failed: '/run/id', workflow: '/workflow/name', status: '/run/status', reason: '/run/reason', message: '/run/message' };

describe('a run failing fires its failure triggers', () => {
  it('a task failed: the started run gets the failed run’s id, workflow, status and reason', async () => {
    await create({ workflow: 'pager', name: 'page-on-breaks', kind: 'RUN_FAILED', source: 'breaks', parameterMap: MAP });
    const id = await start('breaks');
    expect((await ended(id)).status).toBe('FAILED');
    const [f] = await decided(t, 'page-on-breaks', 1);
    expect(f).toMatchObject({
      outcome: 'STARTED',
      signalType: 'run.failed',
      signalPayload: { run: { id, status: 'FAILED', reason: 'TASK_FAILED' }, workflow: { name: 'breaks' }, failureChain: 1 },
      run: {
        trigger: 'EVENT',
        parameters: { failed: id, workflow: 'breaks', status: 'FAILED', reason: 'TASK_FAILED', message: expect.stringContaining('boom') },
      },
    });
  });

  it('a run past its time limit fires it (reason TIME_LIMIT); a cancelled run fires nothing', async () => {
    await create({ workflow: 'pager', name: 'page-on-hangs', kind: 'RUN_FAILED', source: 'hangs', parameterMap: MAP });
    const cancelled = await start('hangs');
    await t.api.gql(`mutation ($id: ID!) { cancelRun(id: $id) { id } }`, { id: cancelled });
    expect((await ended(cancelled)).status).toBe('CANCELLED');
    const late = await start('hangs', 1);
    expect(await ended(late)).toMatchObject({ status: 'FAILED', message: expect.stringContaining('time limit') });
    const all = await decided(t, 'page-on-hangs', 1);
    expect(all).toHaveLength(1); // the cancel's run ended first, and recorded no signal
    expect(all[0]).toMatchObject({ outcome: 'STARTED', signalPayload: { run: { id: late, reason: 'TIME_LIMIT' } }, run: { parameters: { failed: late } } });
  });

  it('a RUN_SUCCEEDED trigger does not fire on a failure, nor a RUN_FAILED one on a success', async () => {
    await t.createWorkflow({ name: 'works', tasks: [{ name: 'say', module: 'test/echo', parameters: { message: 'fine' } }] });
    await create({ workflow: 'pager', name: 'after-breaks', kind: 'RUN_SUCCEEDED', source: 'breaks' });
    await create({ workflow: 'pager', name: 'page-on-works', kind: 'RUN_FAILED', source: 'works' });
    expect((await ended(await start('breaks'))).status).toBe('FAILED');
    expect((await ended(await start('works'))).status).toBe('SUCCEEDED');
    await decided(t, 'page-on-breaks', 2);
    t.app.services.triggers.kick();
    await t.app.services.triggers.drain();
    expect(await firings(t, 'after-breaks')).toEqual([]);
    expect(await firings(t, 'page-on-works')).toEqual([]);
  });
});

describe('a chain of failures stops', () => {
  it(`a workflow that reruns itself on failure and always fails starts ${MAX_FAILURE_CHAIN} runs, then records why it stopped`, async () => {
    await t.createWorkflow({ name: 'always-fails', tasks: [{ name: 'boom', module: 'test/fail' }] });
    await create({ workflow: 'always-fails', name: 'retry-always-fails', kind: 'RUN_FAILED', source: 'always-fails' });
    await ended(await start('always-fails'));
    const all = await until(
      `the chain to stop`,
      async () => {
        t.app.services.triggers.kick();
        const fs = await firings(t, 'retry-always-fails');
        return fs.some((f) => f.outcome === 'FAILED') ? fs : null;
      },
      45_000,
    );
    expect(all.map((f) => f.outcome)).toEqual(['FAILED', ...Array(MAX_FAILURE_CHAIN).fill('STARTED')]);
    expect(all[0]).toMatchObject({
      signalPayload: { failureChain: MAX_FAILURE_CHAIN + 1 },
      run: null,
      message: expect.stringMatching(new RegExp(`^stopped: .*chain of ${MAX_FAILURE_CHAIN + 1} failures`)),
    });
    expect(all[0].signalPayload.run.id).toBe(all[1].run.id); // the failure of the last run it started
    t.app.services.triggers.kick();
    await t.app.services.triggers.drain();
    expect(await firings(t, 'retry-always-fails')).toHaveLength(MAX_FAILURE_CHAIN + 1);
  });
});
