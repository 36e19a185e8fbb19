// The kserve deployer against the deployer contract and the Kubernetes stand-in's InferenceServices (KServe and
// Knative simulated as documented: revisions, canaryTrafficPercent, rolled-out tracking, conditions, an ingress that
// answers per revision), then what is KServe's own: the spec it writes (storage URI, model format, GPUs), canary
// percents, rollback after a promotion, a model that fails to load, re-attach from the API alone, and kubectl.
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Deployer, Deployment, Revision } from '../../plugins/deployer-sdk';
import { deployerContract } from '../../plugins/deployer-testkit';
import { createKServeDeployer } from '../../plugins/deployers/kserve';
import { createKubernetesStandIn, type KubernetesStandIn } from '../stand-ins/kubernetes';
import { createPrometheusStandIn } from '../stand-ins/prometheus';

const revision = (number: number, extra: Partial<Revision> = {}): Revision => ({
  number,
  modelVersion: { ref: `contract/iris/${number}`, digest: `sha256:iris-${number}`, files: '/nonexistent' },
  serve: { command: ['python3', 'serve.py'] },
  ...extra,
});
const fast = { storageUri: 's3://models/{ref}', pollMs: 5, readyTimeoutMs: 10_000, trafficTimeoutMs: 10_000 };

deployerContract('kserve', async () => {
  const standIn = await createKubernetesStandIn({ namespaces: ['default', 'serving'] });
  // Knative's queue-proxy metrics, scraped: the contract checks the serving figures status reads from them.
  const prometheus = await createPrometheusStandIn({ targets: () => standIn.kserve.queueProxyMetrics(), scrapeMs: 20 });
  const make = () => createKServeDeployer({ kubeConfig: standIn.kubeConfig(), namespace: 'serving', ...fast, prometheus: { url: prometheus.url, cacheMs: 0 } });
  return {
    deployer: make(),
    restartedDeployer: make,
    revision: (n) => revision(n),
    running: () => standIn.kserve.revisions(),
    request: { path: '/v1/models/iris:predict', body: { instances: [[5.1, 3.5, 1.4, 0.2]] } },
    cleanup: async () => {
      await prometheus.close();
      await standIn.close();
    },
  };
});

describe('kserve deployer on the stand-in', () => {
  let standIn: KubernetesStandIn;
  let deployer: Deployer;
  let n = 0;
  const deployment = (settings: Record<string, unknown> = {}): Deployment => ({
    id: `kserve-${++n}`,
    name: `iris-${n}`,
    model: 'iris/classifier@champion',
    domain: 'production',
    settings,
  });

  beforeAll(async () => {
    standIn = await createKubernetesStandIn({ namespaces: ['default', 'models'] });
    deployer = createKServeDeployer({
      kubeConfig: standIn.kubeConfig(),
      ...fast,
      namespaces: ['models', 'absent'],
      storageUriPrefixes: ['gs://bucket/', 's3://broken/', 's3://flaky/', 'ftp://x/'],
    });
  });
  afterAll(async () => {
    await deployer.close?.();
    await standIn.close();
  });

  it('writes one InferenceService: storage URI from the model version, model format, resources with GPUs, the revision env', async () => {
    const d = deployment({ namespace: 'models', storageUri: 'gs://bucket/{ref}@{digest}', modelFormat: 'sklearn' });
    const status = await deployer.apply(d, revision(1, { resources: { cpu: 2, memoryMb: 4096, gpus: 1 }, env: { LOG_LEVEL: 'debug' } }));
    expect(status).toMatchObject({ ready: true, traffic: { 1: 100 }, revisions: [{ number: 1, health: 'READY' }] });
    const isvc = standIn.inferenceService(d.name, 'models')!;
    expect(isvc.apiVersion).toBe('serving.kserve.io/v1beta1');
    expect(isvc.spec.predictor.canaryTrafficPercent).toBeUndefined();
    expect(isvc.spec.predictor.model).toMatchObject({
      modelFormat: { name: 'sklearn' },
      storageUri: 'gs://bucket/contract/iris/1@iris-1',
      resources: { requests: { cpu: '2', memory: '4096Mi' }, limits: { cpu: '2', memory: '4096Mi', 'nvidia.com/gpu': '1' } },
    });
    expect(isvc.spec.predictor.model.env).toEqual(
      expect.arrayContaining([
        { name: 'ATELIER_REVISION', value: '1' },
        { name: 'LOG_LEVEL', value: 'debug' },
      ]),
    );
    expect(isvc.status.components.predictor).toMatchObject({
      latestReadyRevision: `${d.name}-predictor-00001`,
      latestRolledoutRevision: `${d.name}-predictor-00001`,
    });
    expect(status.message).toContain('is Ready');
    await deployer.delete(d.id);
    expect(standIn.inferenceService(d.name, 'models')).toBeUndefined();
  });

  it('maps splits onto canaryTrafficPercent; promotes, rolls back after a promotion, and refuses splits KServe cannot route', async () => {
    const d = deployment();
    await deployer.apply(d, revision(1));
    const second = await deployer.apply(d, revision(2));
    expect(second.traffic).toEqual({ 1: 100 });
    expect(standIn.inferenceService(d.name)!.spec.predictor.canaryTrafficPercent).toBe(0);
    await deployer.setTraffic(d.id, { 1: 70, 2: 30 });
    const isvc = standIn.inferenceService(d.name)!;
    expect(isvc.spec.predictor.canaryTrafficPercent).toBe(30);
    expect(isvc.status.components.predictor.traffic).toEqual([
      { revisionName: `${d.name}-predictor-00002`, latestRevision: true, percent: 30 },
      expect.objectContaining({ tag: 'prev', revisionName: `${d.name}-predictor-00001`, latestRevision: false, percent: 70 }),
    ]);
    // Promote: revision 2 becomes the rolled-out one, revision 1 the previous.
    expect((await deployer.setTraffic(d.id, { 2: 100 })).traffic).toEqual({ 2: 100 });
    expect(standIn.inferenceService(d.name)!.status.components.predictor).toMatchObject({
      latestRolledoutRevision: `${d.name}-predictor-00002`,
      previousRolledoutRevision: `${d.name}-predictor-00001`,
    });
    // KServe's rollback: canaryTrafficPercent 0 pins all traffic on the previously rolled-out revision.
    const back = await deployer.rollback(d.id, 1);
    expect(back).toMatchObject({ ready: true, traffic: { 1: 100 } });
    expect(standIn.inferenceService(d.name)!.spec.predictor.canaryTrafficPercent).toBe(0);
    expect((await deployer.setTraffic(d.id, { 1: 50, 2: 50 })).traffic).toEqual({ 1: 50, 2: 50 });
    // A third revision: KServe routes between the rolled-out one and the latest only.
    await deployer.setTraffic(d.id, { 1: 100 });
    expect((await deployer.apply(d, revision(3))).traffic).toEqual({ 1: 100 });
    const was = await deployer.status(d.id);
    await expect(deployer.setTraffic(d.id, { 2: 50, 3: 50 })).rejects.toMatchObject({
      code: 'BAD_SPLIT',
      message: expect.stringContaining('last rolled-out one (1) and the latest ready one (3)'),
    });
    await expect(deployer.rollback(d.id, 2)).rejects.toMatchObject({ code: 'BAD_SPLIT' });
    expect(await deployer.status(d.id)).toEqual(was);
    expect((await deployer.setTraffic(d.id, { 1: 80, 3: 20 })).traffic).toEqual({ 1: 80, 3: 20 });
    await deployer.delete(d.id);
  });

  it('a model that fails to load: FAILED with the condition’s message, no traffic to it, surfaced in status().message', async () => {
    standIn.kserve.failStorageUri('s3://broken/contract/iris/2', 'storage-initializer: NoSuchKey: the object does not exist');
    const d = deployment({ storageUri: 's3://broken/{ref}' });
    await deployer.apply(d, revision(1, { env: { STORAGE_URI: 's3://models/contract/iris/1' } }));
    const status = await deployer.apply(d, revision(2));
    expect(status.traffic).toEqual({ 1: 100 });
    expect(status.ready, 'revision 1 still serves all traffic').toBe(true);
    expect(status.revisions[1]).toMatchObject({ number: 2, health: 'FAILED' });
    expect(status.revisions[1]!.message).toContain('RevisionFailed');
    expect(status.revisions[1]!.message).toContain('NoSuchKey');
    expect(status.message).toMatch(/PredictorConfigurationReady is False \(RevisionFailed\): Revision "iris-\d+-predictor-00002" failed/);
    await expect(deployer.setTraffic(d.id, { 1: 50, 2: 50 })).rejects.toMatchObject({ code: 'REVISION_FAILED' });
    // A good revision 3 supersedes it; revision 2 stays FAILED, with its message, from the annotations alone.
    const third = await deployer.apply(d, revision(3, { env: { STORAGE_URI: 's3://models/contract/iris/3' } }));
    expect(third.revisions.map((r) => [r.number, r.health])).toEqual([
      [1, 'READY'],
      [2, 'FAILED'],
      [3, 'READY'],
    ]);
    const fresh = createKServeDeployer({ kubeConfig: standIn.kubeConfig(), ...fast });
    expect(await fresh.status(d.id), 're-attached by a new instance from the API alone').toEqual(third);
    await deployer.delete(d.id);
  });

  it('a first revision that fails to load leaves the deployment not ready, saying why', async () => {
    standIn.kserve.failStorageUri('s3://broken/first', 'model file not found');
    const d = deployment({ storageUri: 's3://broken/first' });
    const status = await deployer.apply(d, revision(1));
    expect(status).toMatchObject({ ready: false, url: null, traffic: {}, revisions: [{ health: 'FAILED' }] });
    expect(status.message).toContain('model file not found');
    await deployer.delete(d.id);
  });

  it('a revision asking for more GPUs than a node has: FAILED, saying so', async () => {
    standIn.kserve.setGpuCapacity(2);
    const d = deployment();
    try {
      const status = await deployer.apply(d, revision(1, { resources: { gpus: 4 } }));
      expect(status).toMatchObject({ ready: false, revisions: [{ health: 'FAILED' }] });
      expect(status.message).toContain('Insufficient nvidia.com/gpu');
    } finally {
      standIn.kserve.setGpuCapacity(Number.POSITIVE_INFINITY);
      await deployer.delete(d.id);
    }
  });

  it('a stopped KServe controller: a traffic change fails saying so, apply answers STARTING at its deadline; both recover', async () => {
    const impatient = createKServeDeployer({ kubeConfig: standIn.kubeConfig(), ...fast, readyTimeoutMs: 100, trafficTimeoutMs: 100 });
    const d = deployment();
    await impatient.apply(d, revision(1));
    await impatient.apply(d, revision(2));
    standIn.kserve.pause();
    try {
      await expect(impatient.setTraffic(d.id, { 1: 50, 2: 50 })).rejects.toThrow(/canaryTrafficPercent 50 but routes \{"1":100\}.* after 100 ms/);
      const starting = await impatient.apply(d, revision(3));
      expect(starting.revisions.map((r) => r.health)).toEqual(['READY', 'READY', 'STARTING']);
      expect(starting.traffic).toEqual({ 1: 100 });
    } finally {
      standIn.kserve.resume();
    }
    const resumed = await deployer.apply(d, revision(3));
    expect(resumed.revisions.map((r) => r.health)).toEqual(['READY', 'READY', 'READY']);
    expect(resumed.traffic, 'applying revision 3 wrote canaryTrafficPercent 0 over the 50 that never routed').toEqual({ 1: 100 });
    expect((await deployer.setTraffic(d.id, { 1: 40, 3: 60 })).traffic).toEqual({ 1: 40, 3: 60 });
    await deployer.delete(d.id);
  });

  it('starts a FAILED latest revision afresh when it is applied again (a new KServe revision)', async () => {
    standIn.kserve.failStorageUri('s3://flaky/contract/iris/1', 'connection reset by peer');
    const d = deployment({ storageUri: 's3://flaky/{ref}' });
    expect((await deployer.apply(d, revision(1))).revisions[0]!.health).toBe('FAILED');
    standIn.kserve.healStorageUri('s3://flaky/contract/iris/1');
    const again = await deployer.apply(d, revision(1));
    expect(again).toMatchObject({ ready: true, traffic: { 1: 100 }, revisions: [{ number: 1, health: 'READY' }] });
    expect(standIn.inferenceService(d.name)!.status.components.predictor.latestReadyRevision).toBe(`${d.name}-predictor-00002`);
    await deployer.delete(d.id);
  });

  it('retries a write that lost a resourceVersion race (409 Conflict), and says what to do about API errors it cannot fix', async () => {
    const d = deployment();
    await deployer.apply(d, revision(1));
    standIn.fault({ method: 'PUT', path: `/inferenceservices/${d.name}`, status: 409 });
    expect((await deployer.apply(d, revision(2))).revisions.map((r) => r.health)).toEqual(['READY', 'READY']);
    standIn.fault({ method: 'PATCH', path: `/inferenceservices/${d.name}`, status: 500, times: 1 });
    await expect(deployer.setTraffic(d.id, { 1: 50, 2: 50 })).rejects.toThrow(/500/);
    standIn.fault({ method: 'GET', path: `/inferenceservices/${d.name}`, status: 403 });
    await expect(deployer.status(d.id)).rejects.toThrow(/RBAC on inferenceservices\.serving\.kserve\.io/);
    await deployer.delete(d.id);
  });

  it('refuses settings it cannot use, creating nothing', async () => {
    const before = standIn.kserve.revisions();
    await expect(deployer.apply(deployment({ namespace: 'Nope!' }), revision(1))).rejects.toMatchObject({ code: 'BAD_SETTINGS' });
    await expect(deployer.apply(deployment({ namespace: 'absent' }), revision(1))).rejects.toMatchObject({
      code: 'BAD_SETTINGS',
      message: expect.stringContaining('namespace'),
    });
    await expect(deployer.apply(deployment({ storageUri: 'ftp://x/{ref}' }), revision(1))).rejects.toMatchObject({
      code: 'BAD_SETTINGS',
      message: expect.stringContaining('storageUri'),
    });
    const noUri = createKServeDeployer({ kubeConfig: standIn.kubeConfig(), pollMs: 5 });
    await expect(noUri.apply(deployment(), revision(1))).rejects.toMatchObject({ code: 'BAD_SETTINGS', message: expect.stringContaining('storage URI') });
    expect(standIn.kserve.revisions()).toBe(before);
  });

  it('refuses a namespace or a storage URI the operator did not give, so no deployment reads another team’s models', async () => {
    const before = standIn.kserve.revisions();
    await expect(deployer.apply(deployment({ namespace: 'kube-system' }), revision(1))).rejects.toMatchObject({
      code: 'BAD_SETTINGS',
      message: expect.stringContaining('ATELIER_KSERVE_NAMESPACES'),
    });
    for (const storageUri of [
      's3://other-team/models/{ref}',
      'gs://bucket-other/{ref}',
      'gs://bucket/../other/{ref}',
      'gs://bucket/a/%2e%2e/b',
      'http://169.254.169.254/latest/meta-data/',
      'pvc://other-team-volume/models',
    ])
      await expect(deployer.apply(deployment({ storageUri }), revision(1)), storageUri).rejects.toMatchObject({
        code: 'BAD_SETTINGS',
        message: expect.stringContaining('ATELIER_KSERVE_STORAGE_URI_PREFIXES'),
      });
    const templateOnly = createKServeDeployer({ kubeConfig: standIn.kubeConfig(), ...fast });
    await expect(templateOnly.apply(deployment({ storageUri: 's3://models/{ref}' }), revision(1))).rejects.toMatchObject({ code: 'BAD_SETTINGS' });
    expect(standIn.kserve.revisions()).toBe(before);
  });

  it('kubectl reads the InferenceService from the stand-in (get -o json, and the printer columns of get isvc)', async () => {
    const kubectl = '/usr/bin/kubectl';
    if (!existsSync(kubectl)) return void console.log('kubectl is not installed here: the wire check against kubectl was skipped');
    const d = deployment();
    await deployer.apply(d, revision(1));
    await deployer.apply(d, revision(2));
    await deployer.setTraffic(d.id, { 1: 90, 2: 10 });
    standIn.allowAnonymousReads();
    const dir = mkdtempSync(path.join(tmpdir(), 'atelier-kubectl-'));
    try {
      const kubeconfig = path.join(dir, 'kubeconfig');
      writeFileSync(kubeconfig, standIn.kubeconfigYaml());
      const run = (...args: string[]) => promisify(execFile)(kubectl, ['--kubeconfig', kubeconfig, ...args], { timeout: 20_000 });
      const { stdout } = await run('get', 'inferenceservices', '-o', 'json');
      const list = JSON.parse(stdout) as { items: { metadata: { name: string }; spec: { predictor: { canaryTrafficPercent: number } } }[] };
      expect(list.items.find((i) => i.metadata.name === d.name)?.spec.predictor.canaryTrafficPercent).toBe(10);
      const table = (await run('get', 'isvc', d.name)).stdout;
      expect(table).toMatch(/NAME\s+URL\s+READY\s+PREV\s+LATEST\s+PREVROLLEDOUTREVISION\s+LATESTREADYREVISION\s+AGE/);
      expect(table).toMatch(new RegExp(`${d.name}\\s+http://127\\.0\\.0\\.1:\\d+\\s+True\\s+90\\s+10\\s+${d.name}-predictor-00002`));
    } finally {
      rmSync(dir, { recursive: true, force: true });
      await deployer.delete(d.id);
    }
  });
  it("labels each InferenceService with its installation: kubectl selects one control plane's, and list answers only those", async () => {
    const kubectl = '/usr/bin/kubectl';
    if (!existsSync(kubectl)) return void console.log('kubectl is not installed here: the label check against kubectl was skipped');
    const mine = { ...deployment(), installation: '6f1c2a8e-0000-4000-8000-00000000000a' };
    const theirs = { ...deployment(), installation: '6f1c2a8e-0000-4000-8000-00000000000b' };
    await deployer.apply(mine, revision(1));
    await deployer.apply(theirs, revision(1));
    standIn.allowAnonymousReads();
    const dir = mkdtempSync(path.join(tmpdir(), 'atelier-kubectl-'));
    try {
      const kubeconfig = path.join(dir, 'kubeconfig');
      writeFileSync(kubeconfig, standIn.kubeconfigYaml());
      const run = (...args: string[]) => promisify(execFile)(kubectl, ['--kubeconfig', kubeconfig, ...args], { timeout: 20_000 });
      const selected = async (installation: string) =>
        (
          JSON.parse((await run('get', 'isvc', '-A', '-l', `serving.atelier.dev/installation=${installation}`, '-o', 'json')).stdout) as {
            items: { metadata: { name: string; labels: Record<string, string> } }[];
          }
        ).items.map((i) => i.metadata.name);
      expect(await selected(mine.installation)).toEqual([mine.name]);
      expect(await selected(theirs.installation)).toEqual([theirs.name]);
      expect(await deployer.list!(mine.installation)).toEqual([{ id: mine.id, name: mine.name }]);
      // Stopping this installation's deployment leaves the other's serving.
      await deployer.delete(mine.id);
      expect(await selected(mine.installation)).toEqual([]);
      expect(await selected(theirs.installation)).toEqual([theirs.name]);
      expect((await deployer.status(theirs.id)).ready).toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
      await deployer.delete(mine.id);
      await deployer.delete(theirs.id);
    }
  });
});

describe('kserve deployer: an InferenceService an older version applied, without an installation label', () => {
  const old: Deployment = { id: 'kserve-old', name: 'iris-old', model: 'iris/classifier@champion', domain: 'production', settings: {} };
  const id = '6f1c2a8e-0000-4000-8000-00000000000c';
  let standIn: KubernetesStandIn;
  let deployer: Deployer;
  afterAll(async () => {
    await deployer?.close?.();
    await standIn?.close();
  });

  it("is labelled when the reconciler's next pass applies its serving revision again with the installation: listed from then on, once, no KServe revision made", async () => {
    // KServe told not to copy the installation label onto revisions (serviceLabelDisallowedList, docs/deployers.md).
    standIn = await createKubernetesStandIn({ namespaces: ['default'], kserveLabelsNotCopied: ['serving.atelier.dev/installation'] });
    deployer = createKServeDeployer({ kubeConfig: standIn.kubeConfig(), ...fast });
    await deployer.apply(old, revision(1));
    const before = await deployer.status(old.id);
    const revisions = standIn.kserve.revisions();
    expect(await deployer.list!(id)).toEqual([]);

    await deployer.apply({ ...old, installation: id }, revision(1));
    expect(await deployer.list!(id)).toEqual([{ id: old.id, name: old.name }]);
    expect(await deployer.status(old.id)).toEqual(before);
    expect(standIn.kserve.revisions()).toBe(revisions);
    // Applied again: nothing written.
    const written = standIn.inferenceService(old.name)!.metadata.resourceVersion;
    await deployer.apply({ ...old, installation: id }, revision(1));
    expect(standIn.inferenceService(old.name)!.metadata.resourceVersion).toBe(written);
    // Its next revision keeps the label.
    await deployer.apply({ ...old, installation: id }, revision(2));
    expect(await deployer.list!(id)).toEqual([{ id: old.id, name: old.name }]);
  });

  it('where KServe copies the label onto revisions: one KServe revision more, of the same model, and the status settles as before', async () => {
    await deployer.close?.();
    await standIn.close();
    standIn = await createKubernetesStandIn({ namespaces: ['default'] });
    deployer = createKServeDeployer({ kubeConfig: standIn.kubeConfig(), ...fast });
    await deployer.apply(old, revision(1));
    const before = await deployer.status(old.id);
    const revisions = standIn.kserve.revisions();
    await deployer.apply({ ...old, installation: id }, revision(1));
    expect(await deployer.list!(id)).toEqual([{ id: old.id, name: old.name }]);
    // Knative moves the traffic to the new revision once it is ready.
    let after = await deployer.status(old.id);
    for (const deadline = Date.now() + 10_000; !(after.ready && standIn.kserve.revisions() > revisions); after = await deployer.status(old.id)) {
      if (Date.now() > deadline) throw new Error(`never settled: ${JSON.stringify(after)}`);
      await new Promise((r) => setTimeout(r, 10));
    }
    expect(standIn.kserve.revisions()).toBe(revisions + 1);
    expect({ ...after, message: '' }).toEqual({ ...before, message: '' });
  });
});

describe('the stand-in’s InferenceService API', () => {
  let standIn: KubernetesStandIn;
  const base = () => `${standIn.url}/apis/serving.kserve.io/v1beta1/namespaces/default/inferenceservices`;
  const call = async (method: string, path: string, body?: unknown, type = 'application/json') => {
    const res = await fetch(`${base()}${path}`, {
      method,
      headers: { authorization: 'Bearer stand-in-token', 'content-type': type },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: res.status, body: (await res.json()) as Record<string, any> };
  };
  const isvc = (name: string, storageUri = 's3://m/1') => ({
    apiVersion: 'serving.kserve.io/v1beta1',
    kind: 'InferenceService',
    metadata: { name },
    spec: { predictor: { model: { modelFormat: { name: 'sklearn' }, storageUri } } },
  });

  beforeAll(async () => {
    standIn = await createKubernetesStandIn();
  });
  afterAll(() => standIn.close());

  it('creates, conflicts on a stale resourceVersion, merge- and JSON-patches, validates, and watches', async () => {
    const events: string[] = [];
    const watch = await fetch(`${base()}?watch=true`, { headers: { authorization: 'Bearer stand-in-token' } });
    const reader = watch.body!.getReader();
    // The stand-in ends the watch when it closes: the read then fails, which is no error of the test.
    void (async () => {
      let text = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        text += new TextDecoder().decode(value);
        const lines = text.split('\n');
        text = lines.pop()!;
        for (const line of lines) events.push(JSON.parse(line).type);
      }
    })().catch(() => undefined);
    const created = await call('POST', '', isvc('sk'));
    expect(created.status).toBe(201);
    expect((await call('POST', '', isvc('sk'))).body).toMatchObject({ code: 409, reason: 'AlreadyExists' });
    expect((await call('POST', '', isvc('9bad'))).body).toMatchObject({ code: 422, reason: 'Invalid' });
    expect((await call('POST', '', { ...isvc('sk2'), spec: { predictor: { canaryTrafficPercent: 150, model: { modelFormat: { name: 'x' } } } } })).status).toBe(
      422,
    );

    const stale = { ...created.body, spec: { predictor: { model: { modelFormat: { name: 'sklearn' }, storageUri: 's3://m/2' } } } };
    expect((await call('PUT', '/sk', stale)).status, 'the create is already superseded by the controller’s status').toBe(409);
    // As a client does (client-go's RetryOnConflict): read again and write again while the controller's status
    // updates keep moving the resourceVersion between the two.
    let put: { status: number; body: Record<string, any> } = { status: 409, body: {} };
    for (let tries = 0; put.status === 409 && tries < 10; tries++) {
      const fresh = (await call('GET', '/sk')).body;
      put = await call('PUT', '/sk', { ...fresh, spec: stale.spec });
    }
    expect(put.status).toBe(200);
    expect(put.body.metadata.generation).toBe(2);

    const merged = await call('PATCH', '/sk', { spec: { predictor: { canaryTrafficPercent: 20 } } }, 'application/merge-patch+json');
    expect(merged.body.spec.predictor).toMatchObject({ canaryTrafficPercent: 20, model: { storageUri: 's3://m/2' } });
    const patched = await call('PATCH', '/sk', [{ op: 'replace', path: '/spec/predictor/canaryTrafficPercent', value: 0 }], 'application/json-patch+json');
    expect(patched.body.spec.predictor.canaryTrafficPercent).toBe(0);
    expect((await call('PATCH', '/sk', [{ op: 'test', path: '/spec/predictor/canaryTrafficPercent', value: 5 }], 'application/json-patch+json')).status).toBe(
      422,
    );
    expect((await call('PATCH', '/sk', { spec: {} }, 'application/strategic-merge-patch+json')).status).toBe(415);

    const deadline = Date.now() + 5_000;
    while (standIn.inferenceService('sk')?.status?.components?.predictor?.latestReadyRevision !== 'sk-predictor-00002') {
      if (Date.now() > deadline) throw new Error(JSON.stringify(standIn.inferenceService('sk')?.status));
      await new Promise((r) => setTimeout(r, 5));
    }
    expect((await call('DELETE', '/sk')).body).toMatchObject({ kind: 'Status', status: 'Success' });
    expect((await call('GET', '/sk')).status).toBe(404);
    while (!events.includes('DELETED')) await new Promise((r) => setTimeout(r, 5));
    expect(events[0]).toBe('ADDED');
    expect(events).toContain('MODIFIED');
    await reader.cancel();
  });
});
