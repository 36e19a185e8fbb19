// Stored metrics are run data: Task.metricHistory and Run.metrics answer a caller without a grant to the run's
// domain exactly as Task.metrics (today's run-data field) does: null with a FORBIDDEN error, and nothing of the
// series (no count, no value) leaks; a caller whose team is granted the domain reads them.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../harness/app';
import { type ApiClient, type GqlResult, PUBLISH, RUN_EVENTS } from '../harness/client';
import { metricsModuleArchive } from '../tracking/metric-module';

let t: TestApp;
let runId: string;
let outsider: ApiClient;
let insider: ApiClient;

const ended = (e: any) => e.runEvents.__typename === 'RunStatusEvent' && ['SUCCEEDED', 'FAILED', 'CANCELLED'].includes(e.runEvents.runStatus);

beforeAll(async () => {
  t = await startTestApp();
  expect((await t.api.upload(PUBLISH, { tags: ['latest'] }, 'artifact', await metricsModuleArchive())).errors).toBeUndefined();
  await t.createWorkflow({ name: 'guarded-metrics', domain: 'production', tasks: [{ name: 'train', module: 'test/metrics', parameters: { count: 10 } }] });
  const { startRun } = await t.api.gql(`mutation { startRun(workflow: "guarded-metrics") { id } }`);
  runId = startRun.id;
  await t.api.subscribe<any>(RUN_EVENTS, { runId }, ended);
  outsider = await t.user('metrics-outsider');
  insider = await t.user('metrics-insider');
  await t.team('metrics-readers', ['metrics-insider']);
  await t.api.gql(`mutation { grantDomain(team: "metrics-readers", domain: production) { id } }`);
}, 120_000);
afterAll(async () => t?.stop());

const field = (selection: string) => `query ($id: ID!) { run(id: $id) { id status ${selection} } }`;
const OLD = field('tasks { id metrics }');
const HISTORY = field('tasks { id metricHistory(name: "loss") { total points { step value } } }');
const SUMMARY = field('metrics { name count last min max }');

/** The errors' codes and paths, and the data with the refused field's value. */
const shape = (r: GqlResult) => ({ codes: r.errors?.map((e) => e.extensions?.code), paths: r.errors?.map((e: any) => e.path?.at(-1)) });

it('refuses metricHistory and Run.metrics to a caller without the domain’s grant, exactly like Task.metrics', async () => {
  const old = await outsider.raw(OLD, { id: runId });
  const history = await outsider.raw(HISTORY, { id: runId });
  const summary = await outsider.raw(SUMMARY, { id: runId });
  // What decides: the run itself stays visible or not the same way for all three.
  expect(history.data?.run?.id ?? null).toBe(old.data?.run?.id ?? null);
  expect(summary.data?.run?.id ?? null).toBe(old.data?.run?.id ?? null);
  expect(shape(old).codes).toEqual(['FORBIDDEN']);
  expect(shape(history)).toEqual({ codes: ['FORBIDDEN'], paths: ['metricHistory'] });
  expect(shape(summary)).toEqual({ codes: ['FORBIDDEN'], paths: ['metrics'] });
  if (history.data?.run) expect(history.data.run.tasks[0].metricHistory).toBeNull();
  if (summary.data?.run) expect(summary.data.run.metrics).toBeNull();
  expect(JSON.stringify([history, summary])).not.toMatch(/"total"|"count"|"loss"/);
});

it('answers a run that does not exist the same way', async () => {
  const missing = await outsider.raw(HISTORY, { id: '00000000-0000-4000-8000-00000000abcd' });
  expect(missing.data?.run ?? null).toBeNull();
});

it('serves them to a caller whose team is granted the domain', async () => {
  const history = await insider.raw(HISTORY, { id: runId });
  expect(history.errors).toBeUndefined();
  expect(history.data.run.tasks[0].metricHistory.total).toBe(10);
  const summary = await insider.raw(SUMMARY, { id: runId });
  expect(summary.errors).toBeUndefined();
  expect(summary.data.run.metrics).toEqual([{ name: 'loss', count: 10, last: 0.1, min: 0.1, max: 1 }]);
});
