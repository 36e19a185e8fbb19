// From the trained iris model to predictions with the real CLI: the registry, a deployment that follows an alias, a
// retrained version, failover and back, and a canary's policy, on a control plane where iris has run (./iris.ts).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { showCli } from '../harness/cli';
import { cliWhen as cliWhenOn, type IrisPlane, irisReady, startIrisPlane } from './iris';

let plane: IrisPlane;
const cli = (args: string[], env: Record<string, string> = {}, command?: string[]) => plane.cli(args, env, command);
const show = showCli;
const gql = (query: string, variables: Record<string, unknown> = {}) => plane.gql(query, variables);
const cliWhen = (args: string[], shows: (stdout: string) => boolean, ready: () => Promise<boolean>, ms?: number) => cliWhenOn(plane, args, shows, ready, ms);

beforeAll(async () => {
  plane = await startIrisPlane();
  await irisReady(plane);
});

afterAll(async () => {
  await plane?.stop();
});

describe('from the trained iris model to predictions: registry, deployment, new version, failover', () => {
  // The iris run of beforeAll registered examples/iris from iris-evaluate (model.json and its server, serve.mjs, left
  // in ATELIER_ARTIFACTS_DIR) as version 1: what the example's README walks through, as written.
  const versions = async () => {
    const shown = await cli(['model', 'show', 'examples/iris']);
    expect(shown.code, show(shown)).toBe(0);
    return [...shown.stdout.matchAll(/^(\d+) +\S+ +iris-softmax /gm)].map((m) => Number(m[1]));
  };
  const deployment = async (serving: number) => {
    const servedBy = (stdout: string) => {
      const ready = /^url +(http:\/\/\S+) +\(ready: serving revision (\d+) \(100%\)\)/m.exec(stdout);
      const version = new RegExp(`^${ready?.[2]} +(\\d+) +SERVING`, 'm').exec(stdout);
      return ready && Number(version?.[1]) === serving && !/FAILED OVER/.test(stdout) ? ready[1]! : null;
    };
    const shown = await cliWhen(
      ['deploy', 'show', 'iris'],
      (stdout) => servedBy(stdout) !== null,
      async () => {
        const { deployment: d } = await gql(
          `{ deployment(name: "iris") { ready failedOver traffic { revision percent } revisions { number state modelVersion { version } } } }`,
        );
        const only = d?.traffic.length === 1 && d.traffic[0].percent === 100 ? d.traffic[0].revision : null;
        const revision = d?.revisions.find((r: { number: number }) => r.number === only);
        return Boolean(d?.ready && !d.failedOver && revision?.state === 'SERVING' && Number(revision.modelVersion?.version) === serving);
      },
    );
    const served = servedBy(shown);
    if (served) return served;
    throw new Error(`deployment iris never served examples/iris version ${serving}:\n${shown}`);
  };
  const predict = async (url: string, body: unknown, path = '/predict') => {
    const res = await fetch(url + path, { method: 'POST', body: JSON.stringify(body) });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };
  const setosa = { features: [5.1, 3.5, 1.4, 0.2] };

  it('serves the registered model through a deployment that follows its alias, moves to a retrained version, fails over and back', async () => {
    expect(await versions()).toContain(1);
    const lineage = await cli(['model', 'lineage', 'examples/iris@1']);
    expect(lineage.stdout).toMatch(/iris-evaluate/);
    // evaluate and train both report an accuracy: each metric under the task that reported it, the model's own first
    expect(lineage.stdout).toMatch(/^metrics evaluate: accuracy=[\d.]+ macroF1=[\d.]+; train: accuracy=[\d.]+ loss=[\d.]+; prepare: /m);
    expect((await cli(['model', 'alias', 'examples/iris', 'champion', '1', '--reason', 'first model'])).code).toBe(0);
    const created = await cli(['deploy', 'create', 'iris', 'examples/iris@champion']);
    expect(created.code, show(created)).toBe(0);
    const url = await deployment(1);
    expect(await predict(url, setosa)).toEqual({
      status: 200,
      body: { class: 'setosa', probabilities: expect.objectContaining({ setosa: expect.any(Number) }), version: 'examples/iris/1' },
    });
    expect(
      await predict(
        url,
        {
          instances: [
            [6.7, 3.0, 5.2, 2.3],
            [5.9, 3.0, 4.2, 1.5],
          ],
        },
        '/v1/models/iris:predict',
      ),
    ).toEqual({
      status: 200,
      body: { predictions: ['virginica', 'versicolor'] },
    });
    expect(await predict(url, { features: [1] })).toEqual({ status: 400, body: { error: expect.stringMatching(/^features must be 4 finite numbers/) } });
    // What the router measured of that traffic, per revision: requests, errors (none: a 400 is the caller's), latency.
    const measuredRow = /^1 +1 +SERVING +READY +0 +\d+ +0\.0% +[\d.]+ +[\d.]+/m;
    const measured = await cliWhen(
      ['deploy', 'show', 'iris'],
      (stdout) => measuredRow.test(stdout),
      async () => {
        await predict(url, setosa);
        const { deployment: d } = await gql(`{ deployment(name: "iris") { revisions { number serving { requests } } } }`);
        return Boolean(d?.revisions.find((r: { number: number }) => r.number === 1)?.serving);
      },
      60_000,
    );
    expect(measured).toMatch(/^REV +VERSION +STATE +HEALTH +RESTARTS +REQ +ERRORS +P50 MS +P99 MS +MESSAGE$/m);
    expect(measured).toMatch(/^1 +1 +SERVING +READY +0 +\d+ +0\.0% +[\d.]+ +[\d.]+/m);

    // Retrained: a new version, registered by the run; moving the alias rolls it out.
    const before = await versions();
    const retrained = await cli(['run', 'start', 'iris', '--param', 'epochs=400', '--param', 'learningRate=0.3', '--watch']);
    expect(retrained.code, show(retrained)).toBe(0);
    const latest = Math.max(...(await versions()));
    expect(before).not.toContain(latest);
    expect((await cli(['model', 'alias', 'examples/iris', 'champion', String(latest), '--reason', 'more epochs'])).code).toBe(0);
    expect(await deployment(latest)).toBe(url);
    expect((await predict(url, setosa)).body.version).toBe(`examples/iris/${latest}`);

    const failover = await cli(['deploy', 'failover', 'iris', '--reason', 'checking the fallback']);
    expect(failover.code, show(failover)).toBe(0);
    // version 1's retired revision takes all traffic, the latest's none: the revisions table says so
    expect(failover.stdout).toMatch(/^1\s+1\s+RETIRED \(fallback 100%\)\s/m);
    expect(failover.stdout).toMatch(new RegExp(`^\\d+\\s+${latest}\\s+HELD \\(failed over\\)\\s`, 'm'));
    expect((await predict(url, setosa)).body.version).toBe('examples/iris/1');
    expect((await cli(['deploy', 'restore', 'iris', '--reason', 'fine'])).code).toBe(0);
    expect((await predict(url, setosa)).body.version).toBe(`examples/iris/${latest}`);

    expect((await cli(['deploy', 'delete', 'iris'])).code).toBe(0);
    await expect(fetch(`${url}/health`)).rejects.toThrow();
  });

  it('creates a canary gated on what its router measures, shows its policy, and refuses a gate it cannot read', async () => {
    const bad = await cli(['deploy', 'create', 'iris-canary', 'examples/iris@champion', '--steps', '10:60,100', '--gate', 'error rate is low']);
    expect(bad.code, show(bad)).not.toBe(0);
    expect(bad.stderr).toMatch(
      /expected METRIC>VALUE \(roll back above\) or METRIC<VALUE \(below\), e\.g\. serving\.error_rate>0\.01; got "error rate is low"/,
    );
    const args = ['--steps', '10:60,100', '--gate', 'serving.error_rate>0.01', '--gate', 'serving.latency_p99_ms>250', '--on-no-data', 'pass'];
    const created = await cli(['deploy', 'create', 'iris-canary', 'examples/iris@champion', ...args]);
    expect(created.code, show(created)).toBe(0);
    const shown = await cli(['deploy', 'show', 'iris-canary']);
    expect(shown.stdout).toMatch(
      /^policy +steps 10% 60s → 100% 60s; gates serving\.error_rate > 0\.01 \(mean\), serving\.latency_p99_ms > 250 \(mean\); no data: pass$/m,
    );
    expect((await cli(['deploy', 'delete', 'iris-canary'])).code).toBe(0);
  });
});
