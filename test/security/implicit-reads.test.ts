// What a task reads without declaring it column by column is governed like a declared input: the model versions it
// is pinned to (what they learned from) and the partitions a map hands it (every column of them). A read the run's
// domain may not make is refused before anything exists; a production run takes a model trained elsewhere only once
// a second person approved it; a label raised after the start is refused at dispatch; and what the task writes
// carries the labels of what it read, as does a model version registered from it, whose lineage names the model read.

import { mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { auditEvents } from '../../server/db/tables/governance';
import { runs } from '../../server/db/tables/runs';
import { startTestApp, type TestApp } from '../harness/app';
import type { ApiClient } from '../harness/client';
import { publish, REGISTER, runToEnd, setUpRegistryWorld } from '../registry/setup';

const digest = (c: string) => `sha256:${c.repeat(64)}`;
const LABELS = `query ($n: String!) { dataset(name: $n) { columns { name label { level categories } } } }`;
const label = async (t: TestApp, dataset: string, column: string) =>
  (await t.api.gql(LABELS, { n: dataset })).dataset.columns.find((c: any) => c.name === column).label;

describe('implicit reads: pinned models and mapped partitions', () => {
  let t: TestApp;
  let alice: ApiClient;
  let bob: ApiClient;
  const runCount = async () => (await t.app.database.db.select().from(runs)).length;
  const flowers = async (name: string, columns: { name: string; level?: string; categories?: string[] }[]) =>
    t.api.gql(
      `mutation ($n: String!, $c: [DatasetColumnInput!]!, $p: [DatasetPartitionInput!]) { createDataset(name: $n, domain: experimentation, columns: $c, digest: "${digest('a')}", partitions: $p) { id } }`,
      {
        n: name,
        c: columns.map((c) => ({ name: c.name, type: 'float', ...(c.level ? { label: { level: c.level, categories: c.categories ?? [] } } : {}) })),
        p: ['day=1', 'day=2'].map((p, i) => ({ name: p, digest: digest(String(i + 1)), rows: 10 })),
      },
    );

  beforeAll(async () => {
    t = await startTestApp();
    ({ alice, bob } = await setUpRegistryWorld(t));
    const scratch = await mkdtemp(path.join(os.tmpdir(), 'atelier-implicit-'));
    // ml/churn@1 learned from crm/users.id (INTERNAL) and .country (PUBLIC), in experimentation;
    // ml/churn-pii@1 from .email (RESTRICTED, PII), in production.
    await t.api.gql(REGISTER, { m: 'ml/churn', t: (await runToEnd(t, 'train')).task.train!.id, o: 'model' });
    await t.api.gql(REGISTER, { m: 'ml/churn-pii', t: (await runToEnd(t, 'train-pii')).task.train!.id, o: 'model' });
    const writes = (dataset: string) =>
      `parameters:\n  type: object\n  properties:\n    part: { type: object }\noutputs:\n  - name: scores\n    dataset: ${dataset}\n    columns: [{ name: prediction, from: [] }]\n`;
    await publish(t, scratch, 'score-m', writes('ml/scores-m'), `output('scores', '${digest('d')}');\n`);
    await publish(t, scratch, 'score-p', writes('ml/scores-p'), `output('scores', params.part.digest);\n`);
    await flowers('ml/flowers', [
      { name: 'petal', level: 'PUBLIC' },
      { name: 'grower', level: 'CONFIDENTIAL' },
    ]);
    await flowers('ml/raw-flowers', [{ name: 'petal', level: 'PUBLIC' }, { name: 'note' }]);
    const wf = (name: string, domain: string, task: Record<string, unknown>, hold = false) =>
      t.createWorkflow({
        name,
        domain,
        tasks: [
          ...(hold ? [{ name: 'hold', module: 'test/sleep', parameters: { ms: 1500 } }] : []),
          { name: 'score', ...(hold ? { dependsOn: ['hold'] } : {}), ...task },
        ],
      });
    await t.publishFixture('sleep');
    await wf('score-model', 'experimentation', { module: 'ml/score-m', models: { m: 'ml/churn/1' } });
    await wf('score-model-held', 'experimentation', { module: 'ml/score-m', models: { m: 'ml/churn/1' } }, true);
    await wf('score-parts', 'experimentation', { module: 'ml/score-p', map: { over: { partitionsOf: 'ml/flowers' }, as: 'part' } });
    await wf('score-raw-parts', 'experimentation', { module: 'ml/score-p', map: { over: { partitionsOf: 'ml/raw-flowers' }, as: 'part' } });
    await wf('score-pii-model', 'experimentation', { module: 'ml/score-m', models: { m: 'ml/churn-pii/1' } });
    await wf('score-prod', 'production', { module: 'ml/train', models: { m: 'ml/churn/1' } });
  }, 180_000);
  afterAll(() => t?.stop());

  it('labels what a task writes with what its pinned model learned and the partitions it was handed', async () => {
    await runToEnd(t, 'score-model');
    // from: [] alone would be PUBLIC; the model learned crm/users.id (INTERNAL)
    expect(await label(t, 'ml/scores-m', 'prediction')).toEqual({ level: 'INTERNAL', categories: [] });
    await runToEnd(t, 'score-parts');
    // every column of the partitions counts: grower is CONFIDENTIAL
    expect(await label(t, 'ml/scores-p', 'prediction')).toEqual({ level: 'CONFIDENTIAL', categories: [] });
  });

  it('refuses, before anything exists, a model that learned what the domain may not read, and an unclassified partition column', async () => {
    const before = await runCount();
    const pii = await t.api.raw(`mutation { startRun(workflow: "score-pii-model") { id } }`);
    expect(pii.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    expect(pii.errors?.[0]?.message).toContain('crm/users.email');
    expect(pii.errors?.[0]?.message).toContain('model input "m"');
    const raw = await t.api.raw(`mutation { startRun(workflow: "score-raw-parts") { id } }`);
    expect(raw.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    expect(raw.errors?.[0]?.message).toContain('ml/raw-flowers.note');
    expect(raw.errors?.[0]?.message).toContain('UNCLASSIFIED');
    expect(await runCount()).toBe(before);
    const denials = await t.app.database.db.select().from(auditEvents).where(eq(auditEvents.action, 'data.start'));
    expect(denials.filter((d) => d.decision === 'deny').length).toBeGreaterThanOrEqual(2);
  });

  it('lets a production run take a model trained in experimentation only once a second person approved it', async () => {
    const refused = await t.api.raw(`mutation { startRun(workflow: "score-prod") { id } }`);
    expect(refused.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    expect(refused.errors?.[0]?.message).toContain('trained in experimentation and not approved');
    const { requestModelPromotion } = await alice.gql(
      `mutation { requestModelPromotion(model: "ml/churn", version: "1", alias: "champion", reason: "batch scoring") { id } }`,
    );
    await bob.gql(`mutation ($id: ID!) { decideModelPromotion(id: $id, approve: true, reason: "ok") { state } }`, { id: requestModelPromotion.id });
    await runToEnd(t, 'score-prod');
  });

  it('records the model read in the lineage of a version registered downstream, and its label', async () => {
    const run = await runToEnd(t, 'score-model');
    const { registerModelVersion } = await t.api.gql(REGISTER, { m: 'ml/derived', t: run.task.score!.id, o: 'scores' });
    const { modelVersion } = await t.api.gql(
      `query ($r: String!) { modelVersion(ref: $r) { label { level } lineage { models { ref port taskId } datasets { name columns { name } } } } }`,
      { r: registerModelVersion.version.ref },
    );
    expect(modelVersion.lineage.models).toEqual([{ ref: 'ml/churn@1', port: 'm', taskId: run.task.score!.id }]);
    // it learned what ml/churn@1 learned
    expect(modelVersion.lineage.datasets.map((d: any) => [d.name, d.columns.map((c: any) => c.name).sort()])).toEqual([['crm/users', ['country', 'id']]]);
    expect(modelVersion.label.level).toBe('INTERNAL');
    // and crm/users' backward lineage reaches it
    const { dataset } = await t.api.gql(`{ dataset(name: "crm/users") { versions { models { ref } } } }`);
    expect(dataset.versions.flatMap((v: any) => v.models.map((m: any) => m.ref))).toContain(registerModelVersion.version.ref);
  });

  it('re-checks at dispatch: a label raised after the start refuses the task (last: a lowered label needs a second person)', async () => {
    const { startRun } = await t.api.gql(`mutation { startRun(workflow: "score-model-held") { id } }`);
    await t.api.gql(
      `mutation { setColumnLabel(dataset: "crm/users", column: "id", label: { level: INTERNAL, categories: ["PII"] }, reason: "ids are personal") { level } }`,
    );
    const ended = await t.api.subscribe(
      `subscription ($r: ID!) { runEvents(runId: $r) { __typename ... on RunStatusEvent { runStatus } } }`,
      { r: startRun.id },
      (e: any) => e.runEvents.__typename === 'RunStatusEvent' && ['SUCCEEDED', 'FAILED', 'CANCELLED'].includes(e.runEvents.runStatus),
    );
    expect(ended).toBeTruthy();
    const { run } = await t.api.gql(`query ($id: ID!) { run(id: $id) { status tasks { node status message } } }`, { id: startRun.id });
    expect(run.status).toBe('FAILED');
    const score = run.tasks.find((x: any) => x.node === 'score');
    expect(score.status).toBe('FAILED');
    expect(score.message).toContain('refused by data policy');
    expect(score.message).toContain('crm/users.id');
  });
});
