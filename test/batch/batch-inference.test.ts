// Batch inference end to end on the embedded stack: a map over a dataset version's partitions, each task taking a
// model pinned through an alias when the run started. Moving the alias while the run is going does not change the
// version its tasks get (nor its cache key); a clone keeps it; an unknown model and a dataset without partitions are refused.
import { mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tasks } from '../../server/db/tables/runs';
import { startTestApp, type TestApp } from '../harness/app';
import { publish, REGISTER } from '../registry/setup';
import { until } from './until';

const digest = (c: string) => `sha256:${c.repeat(64)}`;
const RUN = `query ($id: ID!) { run(id: $id) { id status tasks { id node status outputs } } }`;

describe('batch inference', () => {
  let t: TestApp;
  const ended = async (id: string) =>
    until(`run ${id} to end`, async () => {
      const { run } = await t.api.gql(RUN, { id });
      return ['SUCCEEDED', 'FAILED', 'CANCELLED'].includes(run.status) && run;
    });
  const start = async (w: string) => (await t.api.gql(`mutation ($w: String!) { startRun(workflow: $w) { id } }`, { w })).startRun.id as string;

  beforeAll(async () => {
    t = await startTestApp();
    const scratch = await mkdtemp(path.join(os.tmpdir(), 'atelier-batch-'));
    await t.publishFixture('sleep');
    const seed = 'parameters:\n  type: object\n  properties:\n    seed: { type: integer }\n';
    await publish(t, scratch, 'fit', seed, `output('model', { centroids: { setosa: [5, 3.4, 1.5, 0.2] }, seed: params.seed });\n`);
    await publish(
      t,
      scratch,
      'score',
      'parameters:\n  type: object\n  properties:\n    part: { type: object }\n',
      `import { readFileSync } from 'node:fs';\nconst models = JSON.parse(process.env.ATELIER_MODELS ?? '{}');\nconst weights = JSON.parse(readFileSync(process.env.ATELIER_MODELS_DIR + '/iris/model.json', 'utf8'));\noutput('scored', { partition: params.part.partition, model: models.iris.model, version: models.iris.version, files: models.iris.files.map((f) => f.path), seed: weights.seed });\n`,
    );
    await t.createWorkflow({
      name: 'fit',
      parameters: { seed: { default: 1 } },
      tasks: [{ name: 'fit', module: 'ml/fit', parameters: { seed: '${params.seed}' } }],
    });
    for (const s of [1, 2]) {
      const { startRun } = await t.api.gql(`mutation ($p: JSON) { startRun(workflow: "fit", parameters: $p) { id } }`, { p: { seed: s } });
      const run = await ended(startRun.id);
      await t.api.gql(REGISTER, { m: 'ml/iris', t: run.tasks[0].id, o: 'model' });
    }
    await t.api.gql(`mutation { setModelAlias(model: "ml/iris", alias: "champion", version: "1") { alias } }`);
    await t.api.gql(
      `mutation ($p: [DatasetPartitionInput!]) { createDataset(name: "ml/flowers", domain: experimentation, columns: [{ name: "sepal_length", type: "float", label: { level: PUBLIC } }], digest: "${digest('a')}", partitions: $p) { id } }`,
      { p: ['day=1', 'day=2', 'day=3'].map((name, i) => ({ name, digest: digest(String(i + 1)), rows: 50 })) },
    );
    await t.createWorkflow({
      name: 'score-flowers',
      tasks: [
        // holds the map back while the test moves the alias
        { name: 'hold', module: 'test/sleep', parameters: { ms: 1500 } },
        {
          name: 'score',
          module: 'ml/score',
          dependsOn: ['hold'],
          models: { iris: 'ml/iris@champion' },
          map: { over: { partitionsOf: 'ml/flowers' }, as: 'part' },
        },
      ],
    });
  }, 120_000);
  afterAll(() => t?.stop());

  it('maps one task per partition, each given the model version the alias named when the run started', async () => {
    const id = await start('score-flowers');
    await t.api.gql(`mutation { setModelAlias(model: "ml/iris", alias: "champion", version: "2") { alias } }`);
    const [map] = await t.app.database.db
      .select()
      .from(tasks)
      .where(eq(tasks.runId, id))
      .then((rows) => rows.filter((r) => r.node === 'score'));
    expect(map!.status).toBe('PENDING'); // the alias moved before the map fanned out
    expect(map!.models).toMatchObject({ iris: { ref: 'ml/iris@champion', model: 'ml/iris', version: 1 } });
    const run = await ended(id);
    expect(run.status).toBe('SUCCEEDED');
    const items = run.tasks.filter((x: any) => x.node.startsWith('score['));
    expect(items.map((x: any) => x.outputs.scored).sort((a: any, b: any) => a.partition.localeCompare(b.partition))).toEqual(
      // the version's files are in the task's models/iris/ folder: version 1 was fitted with seed 1
      ['day=1', 'day=2', 'day=3'].map((partition) => ({ partition, model: 'ml/iris', version: 1, files: ['model.json'], seed: 1 })),
    );
    // a clone keeps the pinned version although the alias now names 2; a new run takes 2
    const { cloneRun } = await t.api.gql(`mutation ($id: ID!) { cloneRun(id: $id) { id } }`, { id });
    const clone = await ended(cloneRun.id);
    expect(clone.tasks.find((x: any) => x.node === 'score[0]').outputs.scored.version).toBe(1);
    const fresh = await ended(await start('score-flowers'));
    expect(fresh.tasks.find((x: any) => x.node === 'score[0]').outputs.scored.version).toBe(2);
  });

  it('refuses an unknown model, a dataset version without partitions, and a malformed model reference', async () => {
    await t.createWorkflow({ name: 'no-model', tasks: [{ name: 's', module: 'ml/score', models: { iris: 'ml/nothing@champion' }, parameters: { part: {} } }] });
    const unknown = await t.api.raw(`mutation { startRun(workflow: "no-model") { id } }`);
    expect(unknown.errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
    expect(unknown.errors?.[0]?.message).toContain('no such model version you may read');
    await t.api.gql(
      `mutation { createDataset(name: "ml/whole", domain: experimentation, columns: [{ name: "x", type: "float" }], digest: "${digest('b')}") { id } }`,
    );
    await t.createWorkflow({ name: 'no-parts', tasks: [{ name: 's', module: 'ml/score', map: { over: { partitionsOf: 'ml/whole' }, as: 'part' } }] });
    const whole = await t.api.raw(`mutation { startRun(workflow: "no-parts") { id } }`);
    expect(whole.errors?.[0]?.message).toContain('lists none');
    const bad = await t.api.raw(
      `mutation { createWorkflow(spec: "{\\"name\\":\\"bad\\",\\"tasks\\":[{\\"name\\":\\"s\\",\\"module\\":\\"ml/score\\",\\"models\\":{\\"m\\":\\"iris\\"}}]}") { created } }`,
    );
    expect(bad.errors?.[0]?.extensions?.code).toBe('INVALID_WORKFLOW');
  });
});
