// Experiments, run names, tags and notes over GraphQL: a run named into another experiment (made on first use),
// tags set and replaced and deleted after the run ended with who and when, notes, and the limits on each.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../harness/app';
import type { ApiClient, GqlResult } from '../harness/client';

let t: TestApp;
let alice: ApiClient & { token: string };
let runId = '';
const code = (r: GqlResult) => r.errors?.[0]?.extensions?.code;
const RUN = `query ($id: ID!) { run(id: $id) { name experiment { name workflow { name } createdBy { name } } tags { key value setBy { name } setAt } note noteBy { name } noteAt } }`;

beforeAll(async () => {
  t = await startTestApp();
  await t.publishFixture('echo');
  alice = await t.user('alice');
  await t.createWorkflow({ name: 'lab', domain: 'experimentation', tasks: [{ name: 'hello', module: 'test/echo' }] });
  const own = await alice.gql(`mutation { startRun(workflow: "lab") { id experiment { name workflow { name } } } }`);
  expect(own.startRun.experiment).toEqual({ name: 'lab', workflow: { name: 'lab' } });
  const named = await alice.gql(
    `mutation { startRun(workflow: "lab", experiment: "sweep-1") { id experiment { name workflow { name } createdBy { name } } } }`,
  );
  runId = named.startRun.id;
  expect(named.startRun.experiment).toEqual({ name: 'sweep-1', workflow: null, createdBy: { name: 'alice' } });
}, 60_000);

afterAll(() => t?.stop());

it('lists experiments by name as a connection and finds one by name', async () => {
  const { experiments } = await alice.gql(`{ experiments(first: 1) { edges { node { name } } pageInfo { hasNextPage endCursor } } }`);
  expect(experiments.edges.map((e: any) => e.node.name)).toEqual(['lab']);
  const next = await alice.gql(`query ($a: String) { experiments(first: 5, after: $a) { edges { node { name } } } }`, { a: experiments.pageInfo.endCursor });
  expect(next.experiments.edges.map((e: any) => e.node.name)).toEqual(['sweep-1']);
  expect((await alice.gql(`{ experiment(name: "sweep-1") { name } }`)).experiment.name).toBe('sweep-1');
  expect((await alice.gql(`{ experiment(name: "nope") { name } }`)).experiment).toBeNull();
  // A second run naming it joins the same one.
  const again = await alice.gql(`mutation { startRun(workflow: "lab", experiment: "sweep-1") { experiment { id } } }`);
  expect(again.startRun.experiment.id).toBeTruthy();
  const bad = await alice.raw(`mutation { startRun(workflow: "lab", experiment: "${'x'.repeat(201)}") { id } }`);
  expect(code(bad)).toBe('BAD_USER_INPUT');
});

it('sets, replaces and deletes tags, recording who and when', async () => {
  await alice.gql(`mutation ($id: ID!) { setRunTags(runId: $id, tags: [{ key: "dataset", value: "v1" }, { key: "owner", value: "alice" }]) { id } }`, {
    id: runId,
  });
  await alice.gql(`mutation ($id: ID!) { setRunTags(runId: $id, tags: [{ key: "dataset", value: "v2" }]) { id } }`, { id: runId });
  let { run } = await alice.gql(RUN, { id: runId });
  expect(run.tags.map((x: any) => [x.key, x.value, x.setBy.name])).toEqual([
    ['dataset', 'v2', 'alice'],
    ['owner', 'alice', 'alice'],
  ]);
  expect(new Date(run.tags[0].setAt).getTime()).toBeGreaterThan(0);
  await alice.gql(`mutation ($id: ID!) { deleteRunTag(runId: $id, key: "owner") { id } }`, { id: runId });
  ({ run } = await alice.gql(RUN, { id: runId }));
  expect(run.tags.map((x: any) => x.key)).toEqual(['dataset']);
});

it('refuses tags over the limits and changes nothing', async () => {
  const long = await alice.raw(
    `mutation ($id: ID!, $k: String!) { setRunTags(runId: $id, tags: [{ key: "ok", value: "1" }, { key: $k, value: "x" }]) { id } }`,
    {
      id: runId,
      k: 'k'.repeat(251),
    },
  );
  expect(code(long)).toBe('BAD_USER_INPUT');
  expect(long.errors?.[0]?.message).toMatch(/tags\.1\.key must be 1 to 250/);
  const value = await alice.raw(`mutation ($id: ID!, $v: String!) { setRunTags(runId: $id, tags: [{ key: "big", value: $v }]) { id } }`, {
    id: runId,
    v: 'v'.repeat(8001),
  });
  expect(code(value)).toBe('BAD_USER_INPUT');
  const { run } = await alice.gql(RUN, { id: runId });
  expect(run.tags.map((x: any) => x.key)).toEqual(['dataset']);
  const missing = await alice.raw(`mutation { setRunTags(runId: "00000000-0000-4000-8000-000000000009", tags: []) { id } }`);
  expect(code(missing)).toBe('NOT_FOUND');
});

it('sets and clears a note, with who and when; refuses one over 64 KiB', async () => {
  await alice.gql(`mutation ($id: ID!) { setRunNote(runId: $id, note: "lr too high; try 1e-4") { id } }`, { id: runId });
  let { run } = await alice.gql(RUN, { id: runId });
  expect(run).toMatchObject({ note: 'lr too high; try 1e-4', noteBy: { name: 'alice' } });
  expect(run.noteAt).toBeTruthy();
  const big = await alice.raw(`mutation ($id: ID!, $n: String!) { setRunNote(runId: $id, note: $n) { id } }`, { id: runId, n: 'n'.repeat(64 * 1024 + 1) });
  expect(code(big)).toBe('BAD_USER_INPUT');
  ({ run } = await alice.gql(RUN, { id: runId }));
  expect(run.note).toBe('lr too high; try 1e-4');
  await alice.gql(`mutation ($id: ID!) { setRunNote(runId: $id, note: "") { id } }`, { id: runId });
  ({ run } = await alice.gql(RUN, { id: runId }));
  expect(run.note).toBeNull();
});

it('renames, tags, deletes and restores an experiment; only its creator or an admin may; new runs are refused while it is deleted', async () => {
  const UPDATE = `mutation ($e: ID!, $name: String, $deleted: Boolean, $set: [RunTagInput!], $del: [String!]) {
    updateExperiment(experiment: $e, name: $name, deleted: $deleted, setTags: $set, deleteTags: $del) { id name deletedAt tags { key value } } }`;
  const made = await alice.gql(`mutation { startRun(workflow: "lab", experiment: "to-change") { experiment { id } } }`);
  const id = made.startRun.experiment.id as string;
  const renamed = await alice.gql(UPDATE, {
    e: id,
    name: 'changed',
    set: [
      { key: 'owner', value: 'alice' },
      { key: 'stage', value: 'dev' },
    ],
  });
  expect(renamed.updateExperiment).toMatchObject({
    name: 'changed',
    deletedAt: null,
    tags: [
      { key: 'owner', value: 'alice' },
      { key: 'stage', value: 'dev' },
    ],
  });
  expect((await alice.gql(UPDATE, { e: 'changed', del: ['stage'] })).updateExperiment.tags).toEqual([{ key: 'owner', value: 'alice' }]);

  // Someone else (not an admin): refused, audited, nothing changed.
  const bob = await t.user('bob-experiments');
  const refused = await bob.raw(UPDATE, { e: id, name: 'bobs' });
  expect(code(refused)).toBe('FORBIDDEN');
  expect(refused.errors?.[0]?.message).toContain('Experiment "changed"');
  // Bad input: each refused, nothing changed.
  for (const [vars, expected] of [
    [{ e: id, name: 'lab' }, 'CONFLICT'],
    [{ e: id, name: ' ' }, 'BAD_USER_INPUT'],
    [{ e: id, name: 'x'.repeat(501) }, 'BAD_USER_INPUT'],
    [{ e: id, set: [{ key: '../up', value: 'v' }] }, 'BAD_USER_INPUT'],
    [{ e: id, set: [{ key: 'k', value: 'v'.repeat(5001) }] }, 'BAD_USER_INPUT'],
    [{ e: id, del: ['absent'] }, 'NOT_FOUND'],
    [{ e: id }, 'BAD_USER_INPUT'],
    [{ e: 'no-such-experiment', name: 'x' }, 'NOT_FOUND'],
    [{ e: 'lab', deleted: true }, 'FORBIDDEN'], // the workflow's own experiment: its owner's (here an admin's)
  ] as const) {
    expect(code(await alice.raw(UPDATE, vars)), JSON.stringify(vars).slice(0, 60)).toBe(expected);
  }
  // Even its owner may not delete a workflow's own experiment (the workflow's runs go there).
  expect(code(await t.api.raw(UPDATE, { e: 'lab', deleted: true }))).toBe('BAD_USER_INPUT');
  const { experiment } = await alice.gql(`{ experiment(name: "changed") { name tags { key } deletedAt } }`);
  expect(experiment).toEqual({ name: 'changed', tags: [{ key: 'owner' }], deletedAt: null });

  // Deleted: out of the list, runs naming it refused; restored: back.
  expect((await alice.gql(UPDATE, { e: id, deleted: true })).updateExperiment.deletedAt).not.toBeNull();
  expect((await alice.gql(`{ experiment(name: "changed") { name } }`)).experiment).toBeNull();
  expect(code(await alice.raw(`mutation { startRun(workflow: "lab", experiment: "changed") { id } }`))).toBe('CONFLICT');
  expect((await alice.gql(UPDATE, { e: id, deleted: false })).updateExperiment.deletedAt).toBeNull();
  expect((await alice.gql(`mutation { startRun(workflow: "lab", experiment: "changed") { experiment { id } } }`)).startRun.experiment.id).toBe(id);
});
