// A host in another process fetches a pinned model's files from GET /artifacts/<digest> with the task's own token (the
// one its claim's answer carries), so a host whose token reads only module archives still runs batch inference; and
// the route serves a model file to no one else who may not read that version: the host's token, another task's token
// and a user of another team get the 404 an unknown digest gets.
import { mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureIdentity, issueToken } from '../../server/auth/tokens';
import { modelVersions } from '../../server/db/tables/registry';
import { startTestApp, type TestApp } from '../harness/app';
import { type ExecutorProcess, startExecutorProcess } from '../harness/executor-process';
import { type NatsServer, startNats } from '../harness/nats';
import { publish, REGISTER } from '../registry/setup';

describe('model files for hosts in other processes', () => {
  let nats: NatsServer;
  let t: TestApp;
  let host: ExecutorProcess | undefined;
  let hostToken: string;
  let fileDigest: string;
  const get = (digest: string, token: string) => fetch(`${t.url}/artifacts/${digest}`, { headers: { authorization: `Bearer ${token}` } });
  const RUN = `query ($id: ID!) { run(id: $id) { status tasks { id node status message outputs } } }`;
  const ended = async (id: string) => {
    for (const deadline = Date.now() + 90_000; Date.now() < deadline; await new Promise((r) => setTimeout(r, 200))) {
      const { run } = await t.api.gql(RUN, { id });
      if (['SUCCEEDED', 'FAILED', 'CANCELLED'].includes(run.status)) return run;
    }
    throw new Error(`run ${id} did not end in 90 s; host said:\n${host?.output()}`);
  };

  beforeAll(async () => {
    nats = await startNats();
    t = await startTestApp({ NATS_URL: nats.url, ATELIER_EMBEDDED_EXECUTOR: 'true' });
    const scratch = await mkdtemp(path.join(os.tmpdir(), 'atelier-model-files-'));
    await publish(t, scratch, 'fit', '', `output('model', { seed: 42 });\n`);
    await publish(
      t,
      scratch,
      'score',
      '',
      `import { readFileSync } from 'node:fs';\nconst weights = JSON.parse(readFileSync(process.env.ATELIER_MODELS_DIR + '/iris/model.json', 'utf8'));\noutput('seed', weights.seed);\n`,
    );
    // Trained in production: a member of no team granted production may not read the version's files.
    await t.createWorkflow({ name: 'fit', domain: 'production', tasks: [{ name: 'fit', module: 'ml/fit' }] });
    const { startRun } = await t.api.gql(`mutation { startRun(workflow: "fit") { id } }`);
    const fit = await ended(startRun.id);
    await t.api.gql(REGISTER, { m: 'ml/iris', t: fit.tasks[0].id, o: 'model' });
    const [version] = await t.app.database.db.select().from(modelVersions);
    fileDigest = version!.files[0]!.digest;
    await t.createWorkflow({
      name: 'score-remote',
      domain: 'production',
      tasks: [{ name: 'score', module: 'ml/score', pool: 'remote', models: { iris: 'ml/iris/1' } }],
    });
    // The host's token reads module archives and nothing else.
    const service = await ensureIdentity(t.app.services.db, { name: 'remote-host', kind: 'service', role: 'viewer' });
    hostToken = await issueToken(t.app.services.db, service.id, 'remote host', { scopes: ['read:ModuleVersion'] });
    host = await startExecutorProcess(
      { NATS_URL: nats.url, ATELIER_URL: t.url, ATELIER_TOKEN: hostToken, ATELIER_DATA_DIR: await mkdtemp(path.join(os.tmpdir(), 'atelier-remote-host-')) },
      ['remote'],
    );
  }, 180_000);
  afterAll(async () => {
    await host?.stop();
    await t?.stop();
    await nats?.stop();
  });

  it('runs a pinned model on a host whose own token may not read it, with the task’s token', async () => {
    const { startRun } = await t.api.gql(`mutation { startRun(workflow: "score-remote") { id } }`);
    const run = await ended(startRun.id);
    expect(run.tasks[0].message ?? '').not.toContain('404');
    expect(run.status).toBe('SUCCEEDED');
    expect(run.tasks[0].outputs).toEqual({ seed: 42 });
  });

  it('serves the file to a reader of the version, and to no one else', async () => {
    const unknown = `sha256:${'0'.repeat(64)}`;
    const missing = await get(unknown, t.app.adminToken);
    expect(missing.status).toBe(404);
    const missingText = await missing.text();
    const admin = await get(fileDigest, t.app.adminToken);
    expect(admin.status).toBe(200);
    expect(JSON.parse(await admin.text())).toEqual({ seed: 42 });
    // the host's own token (module archives only), another task's token, a member without the production grant: as if
    // it did not exist
    const otherTask = await t.app.database.db.select().from(modelVersions).where(eq(modelVersions.version, 1));
    const tracker = await ensureIdentity(t.app.services.db, { name: 'atelier-task-tracking', kind: 'service', role: 'viewer' });
    const foreignTaskToken = await issueToken(t.app.services.db, tracker.id, 'task of fit', { scopes: [], task: { id: otherTask[0]!.taskId, attempt: 1 } });
    const stranger = await t.user('mallory');
    for (const token of [hostToken, foreignTaskToken, stranger.token]) {
      const res = await get(fileDigest, token);
      expect(res.status).toBe(404);
      expect(await res.text()).toBe(missingText);
    }
  });
});
